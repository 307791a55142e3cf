"""Mixing sources for audition: numpy only, so the engine (which renders audition buffers) and the
player both use it without importing each other (DESIGN.md §3)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["mix_sources"]


def mix_sources(
    stems: Sequence[np.ndarray],
    gains: Sequence[float],
    mute: Sequence[bool],
    solo: Sequence[bool],
) -> np.ndarray:
    """Mix separated sources into one buffer for playback.

    Source ``i`` is audible when it is not muted and either no source is soloed or it is soloed itself
    (mute wins over solo); an audible source contributes ``gains[i] * stems[i]``.

    Parameters
    ----------
    stems : list of arrays, all with the same shape, typically (channels, n)
    gains, mute, solo : one entry per stem

    Returns
    -------
    A new array with the stems' shape, float32 unless the stems need a wider float type. All zeros when
    no source is audible. The inputs are never modified.
    """
    n = len(stems)
    if n == 0:
        raise ValueError("mix_sources needs at least one stem")
    if not (len(gains) == len(mute) == len(solo) == n):
        raise ValueError(
            f"gains, mute and solo need one entry per stem ({n}); got {len(gains)}, {len(mute)}, {len(solo)}"
        )
    arrays = [np.asarray(s) for s in stems]
    shape = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != shape:
            raise ValueError(f"stem {i} has shape {a.shape}, stem 0 has {shape}")
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise TypeError(f"stem {i} has non-real dtype {a.dtype}")
    gain_values = [float(g) for g in gains]
    for i, g in enumerate(gain_values):
        if not math.isfinite(g):
            raise ValueError(f"gain {i} is not finite: {g}")

    dtype = np.result_type(np.float32, *(a.dtype for a in arrays))
    out = np.zeros(shape, dtype=dtype)
    any_solo = any(bool(s) for s in solo)
    for a, g, m, s in zip(arrays, gain_values, mute, solo, strict=True):
        if bool(m) or (any_solo and not bool(s)) or g == 0.0:
            continue
        if g == 1.0:
            out += a
        else:
            out += a * dtype.type(g)
    return out
