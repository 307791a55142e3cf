"""Audition, headless: the sources of the current W·H as audio, and the mix the player plays (DESIGN.md §4).

Pure numpy (no Qt, no sounddevice): the GUI calls :func:`compute_stems` from a worker thread and
:func:`build_mix` when the listening settings change, then hands the result to the player, which swaps it
in by reference.

    request = StemRequest.make(audio, analysis, W, H, components, sources, alpha)   # copies W and H
    stem_set = compute_stems(request)            # masks from W·H → iSTFT per source (the slow part)
    samples = build_mix(stem_set, {"lh": SourceMix(gain_db=-6.0), "rh": SourceMix(solo=True)})

The stems are exactly those of ``demixer separate`` (:func:`demixer.engine.separation.stems`): each
has the input's sample rate, channels and length, and together they add up to the mixture.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from demixer.core.mix import mix_sources

__all__ = [
    "MIN_GAIN_DB",
    "MAX_GAIN_DB",
    "SourceMix",
    "StemRequest",
    "StemSet",
    "StemCache",
    "stem_key",
    "compute_stems",
    "build_mix",
    "db_to_gain",
]

#: Gains at or below this are silence (the gain control's bottom end reads "−∞").
MIN_GAIN_DB = -60.0
MAX_GAIN_DB = 12.0


def db_to_gain(db: float) -> float:
    """Linear gain of ``db`` decibels; 0 at or below :data:`MIN_GAIN_DB`, exactly 1 for 0 dB."""
    db = float(db)
    if math.isnan(db) or db == math.inf:
        raise ValueError(f"gain must be a number of dB below +inf, got {db}")
    if db <= MIN_GAIN_DB:
        return 0.0
    if db == 0.0:
        return 1.0
    return float(10.0 ** (db / 20.0))


@dataclass(frozen=True)
class SourceMix:
    """How one source is heard in the "sources" mix: gain in dB, mute, solo (mute wins over solo)."""

    gain_db: float = 0.0
    mute: bool = False
    solo: bool = False

    @property
    def gain(self) -> float:
        return db_to_gain(self.gain_db)


def _digest(h: Any, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    h.update(str((a.shape, a.dtype.str)).encode())
    h.update(memoryview(a).cast("B"))


def stem_key(audio: Any, analysis: Any, W: np.ndarray, H: np.ndarray, components: Sequence[Any],
             sources: Sequence[str], alpha: float) -> str:
    """A fingerprint of everything the stems depend on: the recording and analysis (by identity — they
    are never modified), the factors' contents, each component's source, the source list and α."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{id(audio)}:{id(analysis)}:{float(alpha)!r}".encode())
    _digest(h, np.asarray(W))
    _digest(h, np.asarray(H))
    h.update(repr([getattr(c, "source", "") for c in components]).encode())
    h.update(repr(list(sources)).encode())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class StemRequest:
    """Everything :func:`compute_stems` needs, frozen: W and H are private copies (the GUI may paint into
    the project's arrays while a worker computes)."""

    audio: Any
    analysis: Any
    W: np.ndarray
    H: np.ndarray
    components: tuple
    sources: tuple[str, ...]
    alpha: float
    key: str

    @classmethod
    def make(cls, audio, analysis, W, H, components, sources, alpha: float = 1.0, *,
             copy: bool = True) -> StemRequest:
        W = np.array(W, copy=True) if copy else np.asarray(W)
        H = np.array(H, copy=True) if copy else np.asarray(H)
        components = tuple(components)
        sources = tuple(str(s) for s in sources)
        key = stem_key(audio, analysis, W, H, components, sources, alpha)
        return cls(audio, analysis, W, H, components, sources, float(alpha), key)


@dataclass(eq=False)
class StemSet:
    """The separated sources of one W·H: ``names`` in order (residual last), ``stems`` (channels, n)
    float32 at ``sr``, one per name."""

    key: str
    names: list[str]
    stems: list[np.ndarray]
    sr: int
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.stems):
            raise ValueError("one stem per name")

    def as_dict(self) -> dict[str, np.ndarray]:
        return dict(zip(self.names, self.stems, strict=True))

    @property
    def channels(self) -> int:
        return int(self.stems[0].shape[0]) if self.stems else 0

    @property
    def n_samples(self) -> int:
        return int(self.stems[0].shape[1]) if self.stems else 0


def compute_stems(request: StemRequest) -> StemSet:
    """Soft masks from the request's W·H, applied to the recording's own STFT (every channel, its own
    rate), one inverse STFT per source. Safe to call from any thread: it reads only the request."""
    from demixer.engine.separation import stems as separation_stems  # scipy: not with the window's start

    out = separation_stems(
        request.audio, request.analysis, request.W, request.H, request.components, request.sources,
        request.alpha,
    )
    names = list(out)
    return StemSet(request.key, names, [out[n] for n in names], int(request.audio.sr))


def build_mix(stem_set: StemSet, settings: Mapping[str, SourceMix] | None = None) -> np.ndarray:
    """The "sources" mix: sum of ``gain · stem`` over the audible sources (see
    :func:`demixer.core.mix.mix_sources`). Sources missing from ``settings`` play at 0 dB."""
    settings = settings or {}
    if not stem_set.stems:
        raise ValueError("no stems to mix")
    rows = [settings.get(n, SourceMix()) for n in stem_set.names]
    return mix_sources(
        stem_set.stems, [r.gain for r in rows], [r.mute for r in rows], [r.solo for r in rows]
    ).astype(np.float32, copy=False)


class StemCache:
    """The most recent stem sets by key (undo/redo and A/B comparisons come back to recent factors).

    Holds at most ``size`` sets and, beyond the most recent one, at most ``max_bytes`` of samples: the
    stems of a long stereo recording are large (4 sources of 3 min at 44.1 kHz stereo ≈ 250 MB)."""

    def __init__(self, size: int = 3, max_bytes: int = 400 * 2**20) -> None:
        if size < 1:
            raise ValueError("cache size must be at least 1")
        self.size = int(size)
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[str, StemSet] = OrderedDict()

    @staticmethod
    def _nbytes(stem_set: StemSet) -> int:
        return sum(int(s.nbytes) for s in stem_set.stems)

    def get(self, key: str) -> StemSet | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, stem_set: StemSet) -> None:
        self._items[stem_set.key] = stem_set
        self._items.move_to_end(stem_set.key)
        while len(self._items) > 1 and (
            len(self._items) > self.size or sum(self._nbytes(s) for s in self._items.values()) > self.max_bytes
        ):
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items
