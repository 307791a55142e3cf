"""demixer.gui.display: dB conversion and the log-frequency grid (numpy only)."""

from __future__ import annotations

import math

import numpy as np

from demixer.gui.display import DB_FLOOR, LogFreqMap, db_top, format_hz, to_db


def test_to_db_floors_zeros_and_is_float32():
    a = np.array([[0.0, 1.0, 10.0, 1e-12]])
    d = to_db(a)
    assert d.dtype == np.float32
    np.testing.assert_allclose(d[0, 1:3], [0.0, 20.0], atol=1e-5)
    assert d[0, 0] == np.float32(DB_FLOOR) and d[0, 3] == np.float32(DB_FLOOR)
    assert db_top(d) == 20.0
    assert db_top(to_db(np.zeros((2, 2)))) == DB_FLOOR + 1
    assert db_top(np.zeros((0, 3), np.float32)) == DB_FLOOR + 1


def test_log_freq_map_rows_cover_the_bins_with_maxima():
    K, sr = 1025, 22050
    m = LogFreqMap(K, sr, n_rows=300)
    assert m.f_hi == sr / 2 and m.y1 == math.log2(sr / 2)
    assert m.y0 == math.log2(m.f_lo) and m.f_lo >= 25.0
    a = np.arange(K, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    out = m.apply(a)
    assert out.shape == (300, 3)
    col = out[:, 0]
    assert np.all(np.diff(col) >= 0)  # bins increase with frequency, so do rows
    assert col[-1] == K - 1  # the Nyquist bin is in the top row
    # a single peak bin shows up in the row that contains its frequency
    b = np.zeros(K, np.float32)
    k = 400  # 4306.6 Hz
    b[k] = 1.0
    rows = np.flatnonzero(m.apply(b))
    f = k * sr / 2048
    assert rows.size == 1
    y = m.y0 + (rows[0] + 0.5) * m.dy
    assert abs(y - math.log2(f)) <= m.dy
    assert math.isclose(m.to_hz(m.to_y(440.0)), 440.0)


def test_low_rows_repeat_the_nearest_bin():
    m = LogFreqMap(513, 8000, n_rows=400)  # bins 7.8 Hz apart: low rows are narrower than a bin
    a = np.arange(513, dtype=np.float32)
    out = m.apply(a)
    assert out.shape == (400,)
    assert (np.diff(out[:40]) == 0).any()  # stretched: several rows show one bin
    assert out.min() >= 3  # 25 Hz ≈ bin 3.2: the DC bins are below the display


def test_format_hz():
    assert [format_hz(f) for f in (50, 440, 1000, 2500, 10000)] == ["50", "440", "1k", "2.5k", "10k"]
