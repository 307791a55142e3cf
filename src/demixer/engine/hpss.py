"""Harmonic / percussive stems of a recording (DESIGN.md §2.7): a score-free two-source start.

The masks come from the mono downmix's STFT at the file's own rate and apply to every channel, so
stereo stays stereo and the two stems add up to the input.
"""

from __future__ import annotations

import numpy as np

from demixer.core.hpss import hpss_lengths, hpss_masks
from demixer.core.masks import separate
from demixer.core.stft import STFTParams, magnitude, stft
from demixer.io.audio import Audio, to_mono

__all__ = ["HPSS_SOURCES", "hpss_stems"]

HPSS_SOURCES = ("harmonic", "percussive")


def hpss_stems(
    audio: Audio,
    params: STFTParams | None = None,
    *,
    harmonic_s: float = 0.2,
    percussive_hz: float = 500.0,
    power: float = 2.0,
) -> dict[str, np.ndarray]:
    """``{"harmonic": …, "percussive": …}``, each channels × samples float32 like the input.

    ``params`` (default 2048 / 512 at 22050 Hz, as FMP C8S1's 1024 / 512 at 22050 Hz but with finer
    frequency resolution) is scaled to the file's rate so the filters cover the same seconds and Hz.
    """
    p = (params or STFTParams()).scaled_to(audio.sr)
    X = stft(audio.samples, p.n_fft, p.hop, p.window)
    V = magnitude(stft(to_mono(audio.samples), p.n_fft, p.hop, p.window))
    l_h, l_p = hpss_lengths(p.sr, p.n_fft, p.hop, harmonic_s, percussive_hz)
    Mh, Mp = hpss_masks(V, l_h, l_p, power=power)
    masks = np.stack([Mh, Mp])
    out = {}
    for name, sig in zip(HPSS_SOURCES, separate(X, masks, audio.n_samples, p.n_fft, p.hop, p.window), strict=True):
        out[name] = np.asarray(sig, dtype=np.float32).reshape(audio.samples.shape)
    return out
