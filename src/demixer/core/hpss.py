"""Harmonic–percussive separation by median filtering (Fitzgerald 2010; FMP C8S1; DESIGN.md §2.7).

Harmonic sounds are horizontal lines in a magnitude spectrogram, percussive sounds vertical ones: a
median filter along time keeps the first and removes the second, one along frequency the reverse.
The two filtered spectrograms give soft masks ``M_h = Ỹ_h^p / (Ỹ_h^p + Ỹ_p^p)`` and ``M_p = 1 − M_h``
(``p = 2``: Wiener-like), or binary masks; they add up to one, so the two sources add up to the
mixture. numpy + scipy only.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import median_filter

__all__ = ["hpss_lengths", "hpss_masks"]


def hpss_lengths(
    sr: float, n_fft: int, hop: int, harmonic_s: float = 0.2, percussive_hz: float = 500.0
) -> tuple[int, int]:
    """Odd filter lengths (frames along time, bins along frequency) for ``harmonic_s`` seconds and
    ``percussive_hz`` Hz at this STFT grid (FMP C8S1's conversion)."""
    if not (sr > 0 and n_fft > 0 and hop > 0 and harmonic_s > 0 and percussive_hz > 0):
        raise ValueError("sr, n_fft, hop and both filter lengths must be positive")
    l_h = 2 * math.ceil(harmonic_s * sr / hop / 2) + 1
    l_p = 2 * math.ceil(percussive_hz * n_fft / sr / 2) + 1
    return int(l_h), int(l_p)


def hpss_masks(V, l_h: int, l_p: int, *, power: float = 2.0, binary: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Masks ``(M_h, M_p)`` (each K × N, float32, adding up to 1) for a magnitude spectrogram ``V``.

    ``l_h``: median length along time (frames), ``l_p``: along frequency (bins), both odd >= 1.
    ``binary``: ``M_h = 1`` where ``Ỹ_h >= Ỹ_p`` (ties harmonic), else soft masks with exponent
    ``power``; where both filtered values are 0 the frame is split evenly.
    """
    V = np.asarray(V)
    if V.ndim != 2 or V.size == 0:
        raise ValueError(f"V must be a non-empty K × N matrix, got shape {V.shape}")
    if not np.all(np.isfinite(V)) or V.min() < 0:
        raise ValueError("V must be finite and nonnegative")
    for name, n in (("l_h", l_h), ("l_p", l_p)):
        if isinstance(n, bool) or int(n) != n or n < 1 or n % 2 == 0:
            raise ValueError(f"{name} must be an odd whole number >= 1, got {n!r}")
    if not (power > 0 and math.isfinite(power)):
        raise ValueError(f"power must be a positive number, got {power!r}")
    Vf = V.astype(np.float32, copy=False)
    Yh = median_filter(Vf, size=(1, int(l_h)), mode="reflect")
    Yp = median_filter(Vf, size=(int(l_p), 1), mode="reflect")
    if binary:
        Mh = (Yh >= Yp).astype(np.float32)
    else:
        a = Yh.astype(np.float64) ** power
        b = Yp.astype(np.float64) ** power
        tot = a + b
        Mh = np.where(tot > 0, a / np.where(tot > 0, tot, 1.0), 0.5).astype(np.float32)
    return Mh, (1.0 - Mh).astype(np.float32)
