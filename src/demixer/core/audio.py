"""Decoded audio as a value (DESIGN.md §3): the data type every layer passes around, and the mono
downmix / resampling the analysis starts from. numpy + scipy only; reading and writing files is
``demixer.io.audio``'s job."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Audio", "analysis_signal", "resample", "to_mono"]


@dataclass(frozen=True, eq=False)
class Audio:
    """Decoded audio: ``samples`` float32 (channels, n_samples) C-contiguous, rate ``sr`` in Hz.

    ``path`` is the file it came from, or None. A 1-D ``samples`` is taken as one channel.
    Equality is identity (arrays do not compare as booleans).
    """

    samples: np.ndarray
    sr: int
    path: str | None = None

    def __post_init__(self) -> None:
        x = np.asarray(self.samples)
        if x.ndim == 1:
            x = x[np.newaxis, :]
        if x.ndim != 2:
            raise ValueError(f"audio samples must be (channels, samples), got shape {x.shape}")
        object.__setattr__(self, "samples", np.ascontiguousarray(x, dtype=np.float32))
        if int(self.sr) != self.sr or self.sr <= 0:
            raise ValueError(f"sample rate must be a positive integer, got {self.sr}")
        object.__setattr__(self, "sr", int(self.sr))

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sr


_MONO_BLOCK = 1 << 20  # sample frames downmixed at a time


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Downmix (channels, n) → 1-D float32 by the mean over channels; a 1-D input is returned as float32."""
    x = np.asarray(samples)
    if x.ndim == 1:
        return x.astype(np.float32, copy=True)
    if x.ndim != 2:
        raise ValueError(f"samples must be 1-D or (channels, samples), got shape {x.shape}")
    out = np.empty(x.shape[1], dtype=np.float32)
    for i in range(0, x.shape[1], _MONO_BLOCK):  # in blocks: no float64 copy of a long recording
        out[i : i + _MONO_BLOCK] = x[:, i : i + _MONO_BLOCK].mean(axis=0, dtype=np.float64)
    return out


def resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Resample along the last axis from ``sr_from`` to ``sr_to`` Hz (polyphase, scipy ``resample_poly``).

    Output length is ``ceil(n * sr_to / sr_from)``; equal rates return a float32 copy.
    """
    for name, rate in (("sr_from", sr_from), ("sr_to", sr_to)):
        if int(rate) != rate or rate <= 0:
            raise ValueError(f"{name} must be a positive integer sample rate, got {rate}")
    sr_from, sr_to = int(sr_from), int(sr_to)
    x = np.asarray(x)
    if sr_from == sr_to:
        return x.astype(np.float32, copy=True)
    from scipy.signal import resample_poly  # ~1 s to import: only when resampling

    g = math.gcd(sr_from, sr_to)
    y = resample_poly(x.astype(np.float32, copy=False), sr_to // g, sr_from // g, axis=-1)
    return np.ascontiguousarray(y, dtype=np.float32)


def analysis_signal(audio: Audio, sr: int = 22050) -> np.ndarray:
    """The signal the decomposition analyses: mono downmix resampled to ``sr`` (1-D float32)."""
    return resample(to_mono(audio.samples), audio.sr, sr)
