"""io/limits.py: the memory estimate (linear, an upper bound of the measured peaks) and its inverse."""

from __future__ import annotations

import pytest

from demixer.io.limits import estimate_memory, frames_that_fit

GIB = 1024**3


@pytest.mark.parametrize("limit", [1, 50 * 1024**2, 700 * 1024**2, 2 * GIB, 16 * GIB])
@pytest.mark.parametrize("sr,channels", [(44100, 2), (22050, 1), (48000, 6)])
def test_frames_that_fit_is_the_longest_whole_second_prefix_within_the_limit(limit, sr, channels):
    frames = frames_that_fit(limit, sr, channels)
    seconds = frames // sr
    assert frames == seconds * sr and seconds >= 1
    if seconds > 1:  # one second is the floor even when nothing fits
        assert estimate_memory(frames, sr, channels) <= limit
    assert estimate_memory(frames + sr, sr, channels) > limit


def test_the_estimate_is_above_the_measured_peaks_but_not_far_above():
    """bench_scale.py, 44.1 kHz stereo, peak RSS less the loaded interpreter: 10 min 0.45 GiB, 60 min
    2.65 GiB. An upper estimate that refuses a recording a 4 GiB machine could separate is a defect
    too (the first estimate said 8.9 GiB for the hour)."""
    for minutes, measured in ((10, 0.45), (60, 2.65)):
        est = estimate_memory(minutes * 60 * 44100, 44100, 2) / GIB
        assert measured < est < 2.5 * measured, (minutes, est)


def test_a_draft_counts_its_own_finer_spectrogram():
    """`demixer transcribe` on a 60-minute 22.05 kHz mono recording: peak 4.08 GiB, less the loaded
    interpreter ~3.9 GiB (the draft holds its whole hop-256 spectrogram; the NMF runs in blocks).
    Without the draft term the estimate (the separation's) was below what drafting needs at 10 min."""
    from types import SimpleNamespace

    sep = SimpleNamespace(n_fft=5120, hop=512, sr=22050)  # the separation's default grid
    draft = SimpleNamespace(n_fft=4096, hop=256, sr=22050)
    for minutes, measured in ((10, 0.70), (60, 3.9)):
        frames = minutes * 60 * 22050
        est = estimate_memory(frames, 22050, 1, sep, draft) / GIB
        assert measured < est < 2.5 * measured, (minutes, est)
        assert est >= estimate_memory(frames, 22050, 1, sep) / GIB  # the larger of the two needs
    # a coarse separation grid (separate --hop 2048) needs less than the draft: the draft decides
    sep = SimpleNamespace(n_fft=4096, hop=2048, sr=22050)
    frames = 60 * 60 * 22050
    assert estimate_memory(frames, 22050, 1, sep, draft) > 1.5 * estimate_memory(frames, 22050, 1, sep)
    assert estimate_memory(frames, 22050, 1, sep, draft) / GIB > 3.9
    # the prefix that fits counts the draft too
    limit = 700 * 1024**2
    fit = frames_that_fit(limit, 22050, 1, sep, draft)
    assert estimate_memory(fit, 22050, 1, sep, draft) <= limit < estimate_memory(fit + 22050, 22050, 1, sep, draft)
    assert fit < frames_that_fit(limit, 22050, 1, sep)
