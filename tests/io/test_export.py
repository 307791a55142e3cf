"""io.export: stems (WAV/FLAC, the input's rate and channels, adding up to the mixture), W/H as npy and
CSV with named columns, loss curves as CSV, and errors that name the path."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from demixer.io.audio import read_audio
from demixer.io.errors import InputError
from demixer.io.export import (
    check_folder,
    safe_filename,
    stem_paths,
    write_factors,
    write_loss_csv,
    write_stems,
)


def _stems(channels: int, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: (0.2 * rng.standard_normal((channels, n))).astype(np.float32) for name in ("lh", "rh", "residual")}


@pytest.mark.parametrize(("sr", "channels"), [(44100, 2), (22050, 1)])
def test_wav_stems_reload_with_the_rate_and_channels_and_add_up(tmp_path: Path, sr: int, channels: int) -> None:
    stems = _stems(channels, 5000)
    mixture = sum(stems.values())
    written = write_stems(tmp_path / "out", stems, sr, "wav")
    assert [p.name for p in written] == ["lh.wav", "rh.wav", "residual.wav"]
    back = [read_audio(p) for p in written]
    for a, (name, s) in zip(back, stems.items(), strict=True):
        assert a.sr == sr and a.channels == channels and a.n_samples == 5000, name
        np.testing.assert_array_equal(a.samples, s)  # 32-bit float: exact
    np.testing.assert_allclose(sum(a.samples for a in back), mixture, atol=1e-6)


def test_flac_stems_are_24_bit(tmp_path: Path) -> None:
    stems = _stems(2, 3000, seed=1)
    written = write_stems(tmp_path, stems, 44100, "flac")
    assert all(p.suffix == ".flac" for p in written)
    for p, s in zip(written, stems.values(), strict=True):
        a = read_audio(p)
        assert a.sr == 44100 and a.channels == 2
        np.testing.assert_allclose(a.samples, np.clip(s, -1, 1), atol=2.0**-23 * 1.01)


def test_stem_file_names_are_safe_and_unique(tmp_path: Path) -> None:
    assert safe_filename("left hand/1") == "left_hand_1" and safe_filename("..") == "source"
    paths = stem_paths(tmp_path, ["a b", "a_b", "A B"], "wav")
    assert [p.name for p in paths.values()] == ["a_b.wav", "a_b_2.wav", "A_B_3.wav"]
    with pytest.raises(ValueError):
        stem_paths(tmp_path, ["x"], "mp3")


def test_factors_npy_and_csv_with_component_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    K, R, N = 9, 3, 7
    W = rng.random((K, R)).astype(np.float32)
    H = rng.random((R, N)).astype(np.float32)
    names = ["C4", "E4, onset", 'G "4"']  # commas and quotes survive CSV quoting
    freqs = np.linspace(0, 11025, K)
    times = np.arange(N) * 512 / 22050
    written = write_factors(tmp_path / "f", W, H, names, freqs, times)
    assert sorted(p.name for p in written) == ["H.csv", "H.npy", "W.csv", "W.npy"]
    np.testing.assert_array_equal(np.load(tmp_path / "f" / "W.npy"), W)
    np.testing.assert_array_equal(np.load(tmp_path / "f" / "H.npy"), H)
    with open(tmp_path / "f" / "W.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["freq_hz", *names]
    assert len(rows) == K + 1
    table = np.array(rows[1:], dtype=np.float64)
    np.testing.assert_allclose(table[:, 0], freqs)
    np.testing.assert_array_equal(table[:, 1:].astype(np.float32), W)  # 9 digits: float32 round-trips
    with open(tmp_path / "f" / "H.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time_s", *names] and len(rows) == N + 1  # one row per frame: H transposed
    table = np.array(rows[1:], dtype=np.float64)
    np.testing.assert_allclose(table[:, 0], times)
    np.testing.assert_array_equal(table[:, 1:].astype(np.float32), H.T)
    with pytest.raises(ValueError):
        write_factors(tmp_path, W, H, names[:2], freqs, times)


@dataclass
class _Run:
    label: str
    model: str
    losses: list = field(default_factory=list)


def test_loss_curves_csv(tmp_path: Path) -> None:
    runs = [_Run("#1 NMF (KL)", "nmf-kl", [3.0, 2.0, 1.5]), _Run("#2 NAE", "nae", [5.0, 4.25])]
    path = write_loss_csv(tmp_path / "losses.csv", runs)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["run", "model", "iteration", "loss"]
    assert rows[1:] == [
        ["#1 NMF (KL)", "nmf-kl", "1", "3.0"],
        ["#1 NMF (KL)", "nmf-kl", "2", "2.0"],
        ["#1 NMF (KL)", "nmf-kl", "3", "1.5"],
        ["#2 NAE", "nae", "1", "5.0"],
        ["#2 NAE", "nae", "2", "4.25"],
    ]


def test_unwritable_destinations_raise_input_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError) as e:
        check_folder(blocker)
    assert e.value.path == str(blocker) and "not a folder" in e.value.reason
    with pytest.raises(InputError) as e:
        write_stems(blocker / "sub", _stems(1, 10), 8000)
    assert e.value.path == str(blocker / "sub") and "cannot create" in e.value.reason
    with pytest.raises(InputError) as e:
        write_loss_csv(blocker / "losses.csv", [])
    assert "losses.csv" in e.value.path
    with pytest.raises(InputError):
        check_folder(tmp_path / "missing", create=False)
    # a failed write leaves no temporary file behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
