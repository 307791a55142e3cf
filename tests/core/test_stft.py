"""STFT (DESIGN.md §2.1): round trip, dtypes, shapes, framing, frequency axis, validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demixer.core.stft import (
    STFTParams,
    bin_freqs,
    frame_times,
    freq_to_bin,
    istft,
    log_compress,
    magnitude,
    n_frames_for,
    stft,
    time_to_frame,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def signals(draw, max_len=700):
    """(x, n_fft, hop, window): random length (1 sample upwards), hop ≤ n_fft/2, mono or C channels."""
    n_fft = draw(st.sampled_from([16, 32, 64, 128]))
    hop = draw(st.one_of(st.just(n_fft // 2), st.integers(1, n_fft // 2)))  # the largest hop allowed, often
    length = draw(st.one_of(st.integers(1, 3), st.integers(1, max_len)))
    channels = draw(st.sampled_from([None, 1, 2, 3]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    window = draw(st.sampled_from(["hann", "hamming", "blackman"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = (length,) if channels is None else (channels, length)
    x = rng.standard_normal(shape).astype(dtype)
    return x, n_fft, hop, window


def rel_err(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


# ------------------------------------------------------------------------------------------- round trip
@FAST
@given(signals())
def test_round_trip_is_identity(args):
    x, n_fft, hop, window = args
    x0 = x.copy()
    X = stft(x, n_fft, hop, window)
    y = istft(X, x.shape[-1], n_fft, hop, window)
    assert np.array_equal(x, x0), "stft mutated its input"
    assert y.shape == x.shape
    assert y.dtype == x.dtype
    assert rel_err(y, x) <= 1e-5
    # per sample too, so an error confined to the edges cannot hide in the global norm
    tol = 1e-4 if x.dtype == np.float32 else 1e-10
    assert np.max(np.abs(y - x)) <= tol * max(1.0, float(np.max(np.abs(x))))


@FAST
@given(signals())
def test_shape_and_dtype(args):
    x, n_fft, hop, window = args
    X = stft(x, n_fft, hop, window)
    K = n_fft // 2 + 1
    N = n_frames_for(x.shape[-1], hop)
    assert N == -(-x.shape[-1] // hop) + 1
    assert X.shape == x.shape[:-1] + (K, N)
    assert X.dtype == (np.complex64 if x.dtype == np.float32 else np.complex128)
    assert X.flags.c_contiguous
    assert np.all(np.isfinite(X))
    y = istft(X, x.shape[-1], n_fft, hop, window)
    assert y.dtype == (np.float32 if x.dtype == np.float32 else np.float64)


@FAST
@given(signals(max_len=300))
def test_frames_match_the_definition(args):
    """Frame n is rfft(window · x_padded[n·hop : n·hop + n_fft]) with n_fft/2 zeros in front."""
    x, n_fft, hop, window = args
    import scipy.signal

    X = stft(x, n_fft, hop, window)
    x64 = np.atleast_2d(x).astype(np.float64)
    N = X.shape[-1]
    half = n_fft // 2
    padded = np.zeros((x64.shape[0], (N - 1) * hop + n_fft + x64.shape[1]))
    padded[:, half : half + x64.shape[1]] = x64
    win = scipy.signal.get_window(window, n_fft, fftbins=True)
    Xc = X.reshape((-1,) + X.shape[-2:])
    for n in range(N):
        ref = np.fft.rfft(padded[:, n * hop : n * hop + n_fft] * win, axis=-1)
        tol = 1e-4 if x.dtype == np.float32 else 1e-10
        scale = max(1.0, float(np.max(np.abs(ref))))
        assert np.max(np.abs(Xc[:, :, n] - ref)) <= tol * scale


@FAST
@given(signals(max_len=300))
def test_multichannel_is_per_channel_mono(args):
    x, n_fft, hop, window = args
    if x.ndim == 1:
        x = x[None, :]
    X = stft(x, n_fft, hop, window)
    for c in range(x.shape[0]):
        assert np.allclose(X[c], stft(x[c], n_fft, hop, window), rtol=1e-5, atol=1e-5)


def test_one_sample_signal():
    for dtype in (np.float32, np.float64):
        x = np.array([0.75], dtype=dtype)
        X = stft(x, 16, 4)
        assert X.shape == (9, 2)
        y = istft(X, 1, 16, 4)
        assert y.shape == (1,)
        assert abs(float(y[0]) - 0.75) < 1e-6


def test_istft_longer_length_pads_with_zeros():
    x = np.random.default_rng(1).standard_normal(100)
    X = stft(x, 32, 8)
    y = istft(X, 150, 32, 8)
    assert y.shape == (150,)
    assert np.allclose(y[:100], x, atol=1e-10)
    assert np.all(np.isfinite(y))


def test_integer_input_is_accepted():
    x = np.arange(50) % 7
    X = stft(x, 16, 4)
    assert X.dtype == np.complex128
    assert np.allclose(istft(X, 50, 16, 4), x, atol=1e-9)


# ------------------------------------------------------------------------------------------- frequency
@settings(max_examples=30, deadline=None)
@given(
    sr=st.sampled_from([8000, 16000, 22050, 44100]),
    n_fft=st.sampled_from([256, 512, 1024]),
    k_frac=st.floats(0.03, 0.95),
    delta=st.floats(-0.4, 0.4),
    phase=st.floats(0, 2 * np.pi),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_sine_peaks_at_its_bin(sr, n_fft, k_frac, delta, phase, dtype):
    K = n_fft // 2 + 1
    k = int(round(3 + k_frac * (K - 8)))
    f = (k + delta) * sr / n_fft
    t = np.arange(4 * n_fft) / sr
    x = (0.5 * np.sin(2 * np.pi * f * t + phase)).astype(dtype)
    X = stft(x, n_fft, n_fft // 4)
    interior = np.abs(X[:, 2:-2]).mean(axis=1)  # frames fully inside the signal
    expected = int(round(f * n_fft / sr))
    assert int(np.argmax(interior)) == expected
    assert freq_to_bin(f, sr, n_fft) == expected
    assert abs(bin_freqs(n_fft, sr)[expected] - f) <= 0.5 * sr / n_fft


def test_frame_times_and_bin_freqs_values():
    assert np.allclose(frame_times(4, 22050, 512), [0, 512 / 22050, 1024 / 22050, 1536 / 22050])
    assert np.allclose(frame_times(3, 100, 10), [0.0, 0.1, 0.2])
    assert frame_times(0, 100, 10).shape == (0,)
    f = bin_freqs(8, 16000)
    assert np.allclose(f, [0, 2000, 4000, 6000, 8000])
    f = bin_freqs(2048, 22050)
    assert f.shape == (1025,)
    assert f[0] == 0 and np.isclose(f[-1], 11025.0)
    assert np.allclose(np.diff(f), 22050 / 2048)


@settings(max_examples=30, deadline=None)
@given(
    sr=st.sampled_from([8000, 22050, 44100]),
    n_fft=st.sampled_from([16, 512, 2048]),
    hop=st.sampled_from([4, 128, 512]),
    i=st.integers(0, 500),
)
def test_time_and_frequency_index_round_trip(sr, n_fft, hop, i):
    k = i % (n_fft // 2 + 1)
    assert freq_to_bin(bin_freqs(n_fft, sr)[k], sr, n_fft) == k
    assert time_to_frame(frame_times(i + 1, sr, hop)[i], sr, hop) == i


def test_frame_centres():
    """Frame n is centred at n·hop: an impulse at sample s has most energy in frame round(s/hop)."""
    n_fft, hop = 64, 16
    for s in (0, 5, 40, 63, 99):
        x = np.zeros(100)
        x[s] = 1.0
        energy = (np.abs(stft(x, n_fft, hop)) ** 2).sum(axis=0)
        assert abs(int(np.argmax(energy)) - s / hop) <= 0.5


# ------------------------------------------------------------------------------------------- helpers
def test_magnitude_and_log_compress():
    X = stft(np.random.default_rng(0).standard_normal(200).astype(np.float32), 32, 8)
    M = magnitude(X)
    assert M.dtype == np.float32 and np.all(M >= 0)
    assert np.allclose(M, np.abs(X))
    assert magnitude(X, np.float64).dtype == np.float64
    L = log_compress(M, 10.0)
    assert L.dtype == np.float32
    assert np.allclose(L, np.log1p(10.0 * M.astype(np.float64)), rtol=1e-6)
    assert np.all(L >= 0)
    M0 = M.copy()
    log_compress(M)
    assert np.array_equal(M, M0)
    with pytest.raises(ValueError, match="gamma"):
        log_compress(M, 0.0)


def test_params_defaults_and_scaling():
    p = STFTParams()
    assert (p.n_fft, p.hop, p.window, p.sr) == (2048, 512, "hann", 22050)
    assert p.n_bins == 1025
    q = p.scaled_to(44100)
    assert (q.n_fft, q.hop, q.sr) == (4096, 1024, 44100)
    assert q.n_fft % 2 == 0


# ------------------------------------------------------------------------------------------- errors
def test_unknown_window():
    with pytest.raises(ValueError, match="window"):
        stft(np.ones(100), 32, 8, window="no-such-window")
    with pytest.raises(ValueError, match="window"):
        STFTParams(window="no-such-window")


def test_empty_signal():
    with pytest.raises(ValueError, match="empty"):
        stft(np.zeros(0), 32, 8)
    with pytest.raises(ValueError, match="empty"):
        stft(np.zeros((2, 0)), 32, 8)


@pytest.mark.parametrize(
    "x, n_fft, hop, match",
    [
        (np.ones(100), 31, 8, "n_fft"),
        (np.ones(100), 8, 2, "n_fft"),
        (np.ones(100), 32, 0, "hop"),
        (np.ones(100), 32, 33, "hop"),
        (np.ones(100), 32, 17, "hop"),  # hop > n_fft/2 leaves samples unweighted by a Hann window
        (np.ones((2, 2, 100)), 32, 8, "1-D"),
        (np.array([0.0, np.nan, 1.0]), 32, 8, "NaN"),
        (np.array([0.0, np.inf, 1.0]), 32, 8, "infinite"),
    ],
)
def test_invalid_stft_arguments(x, n_fft, hop, match):
    with pytest.raises(ValueError, match=match):
        stft(x, n_fft, hop)


def test_invalid_istft_arguments():
    X = stft(np.ones(100), 32, 8)
    with pytest.raises(ValueError, match="bins"):
        istft(X, 100, 64, 8)
    with pytest.raises(ValueError, match="length"):
        istft(X, 0, 32, 8)
    with pytest.raises(ValueError, match="K × N"):
        istft(X[0], 100, 32, 8)


@pytest.mark.parametrize("shape", [(3, 600, 512), (1000, 256), (7, 64)])
def test_rfft_float32_is_single_precision_and_matches_double(shape):
    """The float32 path goes through float64 in chunks: every chunk (and a partial last one) lands in
    the right rows, the result is complex64 and equals the double-precision transform."""
    from demixer.core.stft import irfft, rfft

    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    X = rfft(x)
    assert X.dtype == np.complex64 and X.shape == shape[:-1] + (shape[-1] // 2 + 1,)
    ref = np.fft.rfft(x.astype(np.float64), axis=-1)
    assert np.allclose(X, ref, rtol=1e-5, atol=1e-4 * np.sqrt(shape[-1]))
    y = irfft(X, shape[-1], np.float32)
    assert y.dtype == np.float32 and np.allclose(y, x, atol=1e-5)
    assert rfft(x.astype(np.float64)).dtype == np.complex128
