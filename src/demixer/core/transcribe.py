"""A draft score from the recording alone: pitch activations → notes (DESIGN.md §2.7).

1. **Pitch activations** — NMF (KL) of V with a dictionary of harmonic pitch templates, one per MIDI
   pitch over the instrument range, made by the score constraints themselves
   (:func:`~demixer.core.constraints.build_score_constraints` of one whole-length note per pitch): the
   templates start as the harmonic combs of §2.3, are held fixed for the first iterations, then adapt
   to the instrument's timbre inside their combs (``allow_W``), so a template can never move to another
   pitch. Columns are L1-normalised, so an activation is the magnitude its pitch contributes.
2. **Note tracking** — per pitch, frames whose activation exceeds both an absolute floor (relative to
   the piece's loudest activation) and a fraction of the loudest pitch sounding at that moment are
   active (with hysteresis); gaps shorter than ``min_gap`` are bridged, notes shorter than
   ``min_duration`` dropped; an active span is split where the activation rises again by
   ``reattack_db`` after a dip (a repeated note). A note's onset is where its activation first reaches
   half its attack peak (the long window's smearing is symmetric around the true onset).

Everything is numpy + scipy: no I/O, no printing. The result is the ordinary note list
(:class:`~demixer.core.notes.Note`) with an empty group; :mod:`demixer.core.voices` names the groups.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from demixer.core.constraints import ScoreParams, build_score_constraints
from demixer.core.nmf import nmf
from demixer.core.notes import Note, pitch_to_hz

__all__ = [
    "TranscribeParams",
    "Transcription",
    "pitch_dictionary",
    "pitch_activations",
    "track_notes",
    "transcribe",
    "fill_silent_voices",
]


@dataclass(frozen=True)
class TranscribeParams:
    """Parameters of :func:`transcribe` (defaults chosen on synthetic notes and the dev set together,
    the same for every piece; see benchmarks/bench_noscore.py).

    ``pitch_min`` … ``pitch_max``: the dictionary's MIDI range (default C2 … C7). ``tol_pitch`` /
    ``n_harmonics``: the combs (narrower than the separation's 4 % so that neighbouring semitones'
    templates share fewer bins). ``n_iter``: KL iterations, the first ``fixed_share`` of them with the
    combs held fixed. ``floor_db``: an activation below this (dB under the piece's loudest activation)
    is silence; ``relative_db``: … or below this under the loudest pitch of the same frame (a harmonic
    or leakage of a louder note). ``hysteresis_db``: a note, once on, stays on until its activation
    falls this much further. ``reattack_db``: a rise of at least this from a dip splits a span into two
    notes. ``min_duration`` / ``min_gap`` seconds. ``onset_level``: the onset is where the activation
    reaches this fraction of its attack peak; ``lag`` seconds are then subtracted.
    ``neighbour_db`` / ``harmonic_db``: frame by frame, a pitch this far below a louder semitone
    neighbour, or below a louder pitch whose harmonic (or sub-octave) it sits on, is dropped;
    ``max_polyphony``: at most this many pitches per frame (None: any). Onsets: peaks of the spectral
    flux above ``onset_threshold`` (of its maximum), delayed by ``flux_delay`` s (the log-flux of a
    4096-point window peaks before the onset); a note's onset snaps to the flux onset within
    ``snap_before`` / ``snap_after`` s of it where its own activation rises most, and a piece of a
    note with no flux onset near its start joins the previous one of the same pitch when the gap is
    at most ``merge_gap`` s. ``ghost_db``: :func:`drop_subharmonics` (None: keep them).
    ``restrike``: a pitch's note cannot begin before that pitch's previous note ends (its onset and
    the flux onset it snaps to lie after that end) — true of a keyboard, where striking a key again
    ends its sound; not of voices, two of which may sing one pitch. Without it, the snap takes a
    repeated note's onset back to the attack of another note that the dip before it overlapped.
    """

    pitch_min: int = 36
    pitch_max: int = 96
    tol_pitch: float = 0.03
    n_harmonics: int | None = 20
    n_iter: int = 60
    fixed_share: float = 0.5
    floor_db: float = -25.0
    relative_db: float = -12.0
    hysteresis_db: float = 6.0
    reattack_db: float = 4.0
    neighbour_db: float = 10.0
    harmonic_db: float = 6.0
    max_polyphony: int | None = None
    snap_before: float = 0.15
    snap_after: float = 0.08
    onset_threshold: float = 0.1
    flux_delay: float = 0.04
    merge_gap: float = 0.3
    ghost_db: float | None = -20.0
    restrike: bool = False
    min_duration: float = 0.1
    min_gap: float = 0.03
    onset_level: float = 0.3
    lag: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= int(self.pitch_min) <= int(self.pitch_max) <= 127):
            raise ValueError(f"pitch range must satisfy 0 <= min <= max <= 127, got {self.pitch_min}..{self.pitch_max}")
        if not (0.0 < self.tol_pitch < 1.0):
            raise ValueError(f"tol_pitch must be in (0, 1), got {self.tol_pitch}")
        if int(self.n_iter) < 1:
            raise ValueError(f"n_iter must be >= 1, got {self.n_iter}")
        if not (0.0 <= self.fixed_share <= 1.0):
            raise ValueError(f"fixed_share must be in [0, 1], got {self.fixed_share}")
        for name in ("floor_db", "relative_db"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v < 0):
                raise ValueError(f"{name} must be a negative number of dB, got {v}")
        for name in ("hysteresis_db", "reattack_db", "min_duration", "min_gap", "lag"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")
        if not (0.0 < self.onset_level <= 1.0):
            raise ValueError(f"onset_level must be in (0, 1], got {self.onset_level}")


@dataclass
class Transcription:
    """Result of :func:`transcribe`: the notes (group "") and what they came from."""

    notes: list[Note]
    pitches: np.ndarray  # (R,) MIDI pitch of each activation row
    H: np.ndarray  # (R, N) activations (magnitude contributed by each pitch per frame)
    times: np.ndarray  # (N,) frame centres in seconds
    W: np.ndarray | None = field(default=None, repr=False)


def pitch_dictionary(
    pitches, n_bins: int, sr: float, n_fft: int, params: TranscribeParams | None = None, dtype=np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic templates for ``pitches`` (``(W0, allow_W)``, K × R, L1-normalised columns), made by
    :func:`~demixer.core.constraints.build_score_constraints` from one note per pitch."""
    params = params or TranscribeParams()
    notes = [Note(0.0, 1.0, int(p), "") for p in pitches]
    if not notes:
        raise ValueError("the pitch range is empty")
    # lobe_bins 0: low pitches a semitone apart have partials less than a main lobe apart; bands widened
    # to the lobe make their templates share bins (measured with 2: dev piano draft SDR 7.39 → 4.65 dB)
    score = ScoreParams(tol_pitch=params.tol_pitch, n_harmonics=params.n_harmonics, onset_templates=False,
                        per_group=False)
    init = build_score_constraints(notes, n_bins=n_bins, n_frames=1, sr=sr, n_fft=n_fft, hop=1, params=score,
                                   dtype=dtype, lobe_bins=0.0)
    W0 = init.W0 / np.maximum(init.W0.sum(axis=0, keepdims=True), np.finfo(init.W0.dtype).tiny)
    kept = np.array([c.pitch for c in init.components])
    if not np.array_equal(kept, np.asarray(sorted(int(p) for p in pitches))):
        raise ValueError("every pitch of the dictionary needs a fundamental below Nyquist")
    return W0.astype(dtype, copy=False), init.allow_W


def pitch_activations(
    V: np.ndarray, sr: float, n_fft: int, params: TranscribeParams | None = None, block: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KL-NMF of ``V`` (K × N) with the harmonic dictionary: returns ``(pitches, W, H)``; W's columns
    sum to 1, so ``H[r, n]`` is the magnitude pitch ``pitches[r]`` contributes to frame ``n``.

    ``block`` (frames; None: all at once): a longer ``V`` is factorised in equal blocks of at most
    that many frames, each with an eighth of a block of context on either side (its templates adapt
    to that stretch), so the NMF's K × N temporaries stay bounded for a long recording; H is stitched
    from the blocks' centres and W is the blocks' templates weighted by their activations."""
    params = params or TranscribeParams()
    V = np.asarray(V)
    N = V.shape[1] if V.ndim == 2 else 0
    if block is not None and block < 1:
        raise ValueError(f"block must be >= 1 frame, got {block}")
    if block is None or N <= block:
        return _pitch_activations(V, sr, n_fft, params)
    n_blocks = -(-N // block)
    size = -(-N // n_blocks)
    margin = size // 8
    H = W = weight = pitches = None
    for a in range(0, N, size):
        b = min(N, a + size)
        a0, b0 = max(0, a - margin), min(N, b + margin)
        pitches, Wb, Hb = _pitch_activations(V[:, a0:b0], sr, n_fft, params)
        if H is None:
            H = np.empty((Hb.shape[0], N), dtype=Hb.dtype)
            W, weight = np.zeros(Wb.shape), np.zeros(Hb.shape[0])
        H[:, a:b] = Hb[:, a - a0: b - a0]  # the block's own frames, without its context
        w = H[:, a:b].sum(axis=1, dtype=np.float64)
        W += Wb * w
        weight += w
    W = (W / np.maximum(weight, np.finfo(np.float64).tiny)).astype(H.dtype)
    W /= np.maximum(W.sum(axis=0, keepdims=True), np.finfo(H.dtype).tiny)
    return pitches, W, H


def _pitch_activations(
    V: np.ndarray, sr: float, n_fft: int, params: TranscribeParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    V = np.asarray(V)
    if V.ndim != 2 or V.shape[0] != n_fft // 2 + 1:
        raise ValueError(f"V must be (n_fft // 2 + 1) × frames, got shape {V.shape} for n_fft {n_fft}")
    nyq_pitch = 69 + 12 * math.log2(sr / 2 / 440.0)
    top = min(int(params.pitch_max), int(math.ceil(nyq_pitch)) - 1)
    pitches = np.arange(int(params.pitch_min), top + 1)
    if pitches.size == 0:
        raise ValueError(f"no pitch of {params.pitch_min}..{params.pitch_max} lies below Nyquist")
    W0, allow_W = pitch_dictionary(pitches, V.shape[0], sr, n_fft, params, dtype=V.dtype)
    R, N = pitches.size, V.shape[1]
    scale = float(V.sum(axis=0).mean()) / R if V.size else 1.0
    H0 = np.full((R, N), max(scale, np.finfo(np.float32).tiny), dtype=V.dtype)
    n_fixed = int(round(params.n_iter * params.fixed_share))
    W, H = W0, H0
    if n_fixed > 0:
        H = nmf(V, W, H, beta=1.0, n_iter=n_fixed, update_W=False, allow_W=allow_W).H
    if params.n_iter - n_fixed > 0:
        res = nmf(V, W, H, beta=1.0, n_iter=params.n_iter - n_fixed, allow_W=allow_W, normalize="l1")
        W, H = res.W, res.H
    return pitches, W, H


def _spans(active: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a 1-D bool array as (first, last + 1)."""
    d = np.diff(np.concatenate(([0], active.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def onset_strength(V: np.ndarray, lag: int = 2, block: int = 2048) -> np.ndarray:
    """Spectral flux of ``V`` (K × N): the summed log-magnitude increase over ``lag`` frames, centred,
    minus its local median (0.5 s at hop 256 / 22050 Hz), floored at 0, scaled to a maximum of 1.
    Computed ``block`` frames at a time (the same values)."""
    V = np.asarray(V)
    N = V.shape[1]
    if N <= lag:
        return np.zeros(N)
    scale = 1000.0 / max(float(V.max()), np.finfo(np.float64).tiny)
    d = np.empty(N - lag)
    for a in range(0, N - lag, block):  # block columns at a time: a long V is never copied whole
        b = min(N - lag, a + block)
        L = np.log1p(scale * np.asarray(V[:, a: b + lag], dtype=np.float64))
        d[a:b] = np.maximum(L[:, lag:] - L[:, :-lag], 0.0).sum(axis=0)
    flux = np.zeros(N)
    flux[lag // 2: lag // 2 + d.size] = d
    from scipy.ndimage import median_filter

    flux = np.maximum(flux - median_filter(flux, size=43, mode="nearest"), 0.0)
    top = float(flux.max())
    return flux / top if top > 0 else flux


def onset_times(
    strength: np.ndarray, times: np.ndarray, threshold: float = 0.1, min_distance: float = 0.05
) -> np.ndarray:
    """Peaks of an onset strength curve above ``threshold`` and at least ``min_distance`` s apart."""
    from scipy.signal import find_peaks

    if times.size < 3:
        return np.zeros(0)
    dt = float(times[1] - times[0])
    peaks, _ = find_peaks(strength, height=threshold, distance=max(1, int(round(min_distance / dt))))
    return times[peaks]


def track_notes(
    H: np.ndarray, pitches, times: np.ndarray, params: TranscribeParams | None = None,
    onsets: np.ndarray | None = None,
) -> list[Note]:
    """Notes from pitch activations ``H`` (R × N) on frames centred at ``times`` (see the module doc)."""
    params = params or TranscribeParams()
    H = np.asarray(H, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    pitches = np.asarray(pitches)
    if H.ndim != 2 or H.shape != (pitches.size, times.size):
        raise ValueError(f"H must be pitches × frames ({pitches.size} × {times.size}), got {H.shape}")
    if times.size < 2 or not np.any(H > 0):
        return []
    dt = float(times[1] - times[0])
    tiny = np.finfo(np.float64).tiny
    Hs = uniform_filter1d(H, size=3, axis=1, mode="nearest")  # one-frame flicker is not a note
    Hs = _prune(Hs, pitches, params)
    ref = float(Hs.max())
    db = 20.0 * np.log10(np.maximum(Hs, tiny) / ref)
    frame_top = maximum_filter1d(db.max(axis=0), size=max(1, int(round(0.1 / dt))) | 1, mode="nearest")
    on_level = np.maximum(params.floor_db, frame_top + params.relative_db)
    off_level = on_level - params.hysteresis_db
    min_frames = max(1, int(math.ceil(params.min_duration / dt)))
    gap_frames = int(round(params.min_gap / dt))
    notes: list[Note] = []
    for r, pitch in enumerate(pitches.tolist()):
        row = db[r]
        strong = row >= on_level
        if not strong.any():
            continue
        weak = row >= off_level
        # hysteresis: a weak run counts when it contains a strong frame
        for a, b in _spans(weak):
            if not strong[a:b].any():
                weak[a:b] = False
        if gap_frames > 0:  # bridge short gaps
            spans = _spans(weak)
            for (_, b0), (a1, _) in zip(spans, spans[1:], strict=False):
                if a1 - b0 <= gap_frames:
                    weak[b0:a1] = True
        pieces = [(a + s, a + e) for a, b in _spans(weak)
                  for s, e in _split_reattacks(row[a:b], params.reattack_db, min_frames)]
        if onsets is not None:
            pieces = _merge_unattacked(pieces, times, onsets, params.merge_gap, params.snap_before)
        prev_off = -math.inf  # with ``restrike``: no onset before the previous note of this pitch ends
        for s, e in pieces:
            if e - s < min_frames:
                continue
            onset = max(_onset_time(Hs[r], s, e, times, params), prev_off)
            if onsets is not None and onsets.size:
                # snap to the nearest detected onset before (or just after) the activation's rise
                near = onsets[(onsets >= max(onset - params.snap_before, prev_off))
                              & (onsets <= onset + params.snap_after)]
                if near.size:  # the candidate where this pitch's own activation rises most
                    k = max(1, int(round(0.06 / dt)))
                    f = np.clip(np.rint(near / dt).astype(int), 0, times.size - 1)
                    rise = Hs[r, np.minimum(f + k, times.size - 1)] - Hs[r, np.maximum(f - k, 0)]
                    onset = float(near[np.argmax(rise)])
            offset = float(times[e - 1]) + dt / 2
            if offset <= onset:
                continue
            peak_db = float(row[s:e].max())
            velocity = int(np.clip(round(127 + 2.0 * peak_db), 1, 127))
            notes.append(Note(max(0.0, onset), offset, int(pitch), "", velocity))
            if params.restrike:
                prev_off = offset
    notes.sort(key=lambda n: (n.onset, -n.pitch))
    return notes


#: intervals (semitones) at which a harmonic of a lower note falls on a higher pitch (2nd … 6th, 8th harmonic)
_HARMONIC_UP = (12, 19, 24, 28, 31, 36)


def _prune(H: np.ndarray, pitches: np.ndarray, params: TranscribeParams) -> np.ndarray:
    """Zero, frame by frame, activations that louder pitches explain: a semitone neighbour more than
    ``neighbour_db`` below a louder one (leakage between adjacent combs), a pitch on a harmonic of a
    louder lower pitch or an octave below a louder pitch, when ``harmonic_db`` or more below it; and,
    with ``max_polyphony``, all but the loudest pitches."""
    out = H.copy()
    R, N = H.shape
    nb = 10.0 ** (-params.neighbour_db / 20.0)
    hr = 10.0 ** (-params.harmonic_db / 20.0)
    index = {int(p): i for i, p in enumerate(pitches.tolist())}
    rel = []  # (row, louder row, ratio)
    for i, p in enumerate(pitches.tolist()):
        for d in (-1, 1):
            if p + d in index:
                rel.append((i, index[p + d], nb))
        for d in _HARMONIC_UP:
            if p - d in index:
                rel.append((i, index[p - d], hr))
        if p + 12 in index:
            rel.append((i, index[p + 12], hr))
    # process rows from the frame's loudest downwards: a suppressed row explains nothing
    order = np.argsort(-H, axis=0)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(R)[:, None].repeat(N, axis=1), axis=0)
    keep = np.ones((R, N), dtype=bool)
    by_row: dict[int, list[tuple[int, float]]] = {}
    for i, j, ratio in rel:
        by_row.setdefault(i, []).append((j, ratio))
    for k in range(R):
        rows = order[k]
        cols = np.arange(N)
        val = H[rows, cols]
        sup = np.zeros(N, dtype=bool)
        for i in np.unique(rows):
            sel = rows == i
            for j, ratio in by_row.get(int(i), ()):
                louder = rank[j, sel] < k
                sup[np.flatnonzero(sel)] |= louder & keep[j, sel] & (val[sel] < ratio * H[j, sel])
        keep[rows[sup], cols[sup]] = False
    if params.max_polyphony is not None:
        kept_rank = np.cumsum(np.take_along_axis(keep, order, axis=0), axis=0)
        over = np.zeros_like(keep)
        np.put_along_axis(over, order, kept_rank > int(params.max_polyphony), axis=0)
        keep &= ~over
    out[~keep] = 0.0
    return out


def _merge_unattacked(
    pieces: list[tuple[int, int]], times: np.ndarray, onsets: np.ndarray, merge_gap: float, near: float
) -> list[tuple[int, int]]:
    """Join a piece to the previous one of the same pitch when the gap between them is at most
    ``merge_gap`` s and no detected onset lies within ``near`` s of its start: without an attack there
    is no new note (a dip from vibrato, or from a louder note masking this one for a moment)."""
    out: list[tuple[int, int]] = []
    for s, e in pieces:
        if out:
            ps, pe = out[-1]
            gap = float(times[s] - times[pe - 1]) if s > 0 else 0.0
            t = float(times[s])
            attacked = bool(np.any(np.abs(onsets - t) <= near))
            if gap <= merge_gap and not attacked:
                out[-1] = (ps, e)
                continue
        out.append((s, e))
    return out


def _split_reattacks(row_db: np.ndarray, reattack_db: float, min_frames: int) -> list[tuple[int, int]]:
    """Cut a span's dB activation where it rises by ``reattack_db`` from a dip: (start, end) pieces."""
    n = row_db.size
    if n < 2 * min_frames or reattack_db <= 0:
        return [(0, n)]
    cuts = [0]
    low = row_db[0]
    low_at = 0
    for i in range(1, n):
        v = row_db[i]
        if v < low:
            low, low_at = v, i
        elif v - low >= reattack_db and low_at - cuts[-1] >= min_frames and i - low_at <= max(2, min_frames):
            cuts.append(low_at)
            low, low_at = v, i
        if i - low_at > max(2, min_frames):  # a slow rise (crescendo) is not a new attack
            low, low_at = v, i
    cuts.append(n)
    return [(cuts[k], cuts[k + 1]) for k in range(len(cuts) - 1)]


def _onset_time(h: np.ndarray, s: int, e: int, times: np.ndarray, params: TranscribeParams) -> float:
    """Where ``h`` first reaches ``onset_level`` × its attack peak in frames ``s … e`` (interpolated)."""
    dt = float(times[1] - times[0])
    look = min(e, s + max(3, int(round(0.25 / dt))))
    k = s + int(np.argmax(h[s:look]))
    level = params.onset_level * h[k]
    j = k
    lo = max(0, s - max(2, int(round(0.1 / dt))))
    while j > lo and h[j - 1] >= level:
        j -= 1
    if j > 0 and h[j] > h[j - 1]:
        frac = (level - h[j - 1]) / (h[j] - h[j - 1])
        t = float(times[j - 1]) + float(np.clip(frac, 0.0, 1.0)) * dt
    else:
        t = float(times[j])
    return t - params.lag


def transcribe(
    V: np.ndarray, sr: float, n_fft: int, hop: int, params: TranscribeParams | None = None,
    block: int | None = None,
) -> Transcription:
    """Draft notes (group "") from a magnitude spectrogram ``V`` (K × N, centred frames ``n·hop/sr``);
    ``block``: :func:`pitch_activations`'s."""
    params = params or TranscribeParams()
    pitches, W, H = pitch_activations(V, sr, n_fft, params, block=block)
    times = np.arange(H.shape[1]) * (hop / sr)
    onsets = onset_times(onset_strength(V), times, params.onset_threshold) + params.flux_delay
    notes = track_notes(H, pitches, times, params, onsets)
    if params.ghost_db is not None:
        notes = drop_subharmonics(notes, V, sr, n_fft, hop, params.ghost_db)
    return Transcription(notes=notes, pitches=pitches, H=H, times=times, W=W)


def drop_subharmonics(
    notes: list[Note], V: np.ndarray, sr: float, n_fft: int, hop: int, ratio_db: float = -20.0, tol: float = 0.03,
    deep_db: float = -20.0, octave_db: float | None = None, octave_max: int = 127,
) -> list[Note]:
    """Notes without their fundamental: a note whose fundamental band (± ``tol``) in ``V`` holds less
    than ``ratio_db`` of its 2nd harmonic's (or ``ratio_db + deep_db`` of its 3rd or 4th: winds and
    reeds have weak fundamentals), over the note's frames, is a ghost below a
    real note (a template adapted to odd harmonics, as a clarinet's, explains that note one octave
    down). Returns the notes kept, in order.

    ``octave_db`` (None: drop them all): a dropped note becomes its octave instead — the real note the
    ghost stood for, whose own template lost its energy to the ghost's and was then pruned as the
    ghost's harmonic (a clarinet's G4 drafted as G3, then dropped, leaves its voice silent and shifts
    the voices below it up) — when no kept note holds that pitch over a third of the ghost's span and
    the octave's band holds at least ``octave_db`` dB of the median fundamental band of the kept notes
    sounding with it (at least a third of the ghost's span; none: dropped), and the octave is at most
    ``octave_max`` (the transcription's top pitch: a ghost near the top stays a ghost)."""
    V = np.asarray(V)
    K, N = V.shape
    freqs = np.arange(K) * (sr / n_fft)
    thr = 10.0 ** (ratio_db / 20.0)
    deep = 10.0 ** (deep_db / 20.0)  # 3rd and 4th harmonics: only a fundamental that is all but absent
    out = []
    ghosts = []
    for n in notes:
        f0 = pitch_to_hz(n.pitch)
        a = max(0, int(math.floor(n.onset * sr / hop)))
        b = min(N, int(math.ceil(n.offset * sr / hop)) + 1)
        if b <= a or 2 * f0 * (1 + tol) >= sr / 2:
            out.append(n)
            continue
        seg = V[:, a:b]

        def band(f, seg=seg):
            sel = np.flatnonzero(np.abs(freqs - f) <= max(tol * f, sr / n_fft))
            return float(seg[sel].max(axis=0).mean()) if sel.size else 0.0

        upper = [band(m * f0) * (1.0 if m == 2 else deep) for m in (2, 3, 4) if m * f0 * (1 + tol) < sr / 2]
        if band(f0) >= thr * max(upper):
            out.append(n)
        else:
            ghosts.append((n, band))
    if octave_db is None or not ghosts:
        return out
    need = 10.0 ** (octave_db / 20.0)
    kept = list(out)

    def overlap(m: Note, n: Note) -> float:
        return min(m.offset, n.offset) - max(m.onset, n.onset)

    for n, band in ghosts:
        q = n.pitch + 12
        if q > octave_max:
            continue
        third = (n.offset - n.onset) / 3.0
        if any(m.pitch == q and overlap(m, n) > third for m in out):
            continue
        with_it = [band(pitch_to_hz(m.pitch)) for m in kept if overlap(m, n) > third]
        if with_it and band(pitch_to_hz(q)) >= need * float(np.median(with_it)):
            out.append(dataclasses.replace(n, pitch=q))
    out.sort(key=lambda n: (n.onset, -n.pitch))
    return out


def fill_silent_voices(
    notes: list[Note],
    names: list[str],
    H: np.ndarray,
    pitches: np.ndarray,
    times: np.ndarray,
    ratio: float = 0.1,
    min_duration: float = 0.15,
) -> list[Note]:
    """Notes for voices the draft leaves silent between others (for the separation, not the score).

    ``notes`` carry the voice names ``names`` (top first). Between consecutive onsets/offsets of
    ``notes`` (segments of at least ``min_duration`` s), a voice with no note while at least two
    others sound gets the pitch with the largest mean activation ``H`` strictly between its
    neighbours' pitches (an octave beyond the outermost sounding voice for the top or bottom voice),
    when that activation reaches ``ratio`` of the sounding notes' median. Such gaps are mostly a
    missed note (a fifth or an octave over a louder voice, which the tracking prunes as its
    harmonic): without a note there, the separation must give that energy to another voice. The
    same pitch in consecutive segments of one voice makes one note. Returns only the added notes
    (velocity 64), sorted by onset."""
    if len(names) < 3 or not notes:
        return []
    voice = {g: v for v, g in enumerate(names)}
    row = {int(q): r for r, q in enumerate(np.asarray(pitches).tolist())}
    level = np.asarray(H, dtype=np.float64)
    bounds = sorted({round(n.onset, 4) for n in notes} | {round(n.offset, 4) for n in notes})
    added: list[Note] = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b - a < min_duration:
            continue
        frames = (times >= a) & (times < b)
        if not frames.any():
            continue
        sounding: dict[int, list[int]] = {}
        for n in notes:
            if n.group in voice and min(n.offset, b) - max(n.onset, a) >= 0.5 * (b - a):
                sounding.setdefault(voice[n.group], []).append(n.pitch)
        if len(sounding) < 2:
            continue
        present = [level[row[q], frames].mean() for ps in sounding.values() for q in ps if q in row]
        if not present:
            continue
        floor = ratio * float(np.median(present))
        for v in range(len(names)):
            if v in sounding:
                continue
            above = [min(sounding[u]) for u in sounding if u < v]
            below = [max(sounding[u]) for u in sounding if u > v]
            hi = min(above) if above else max(below) + 12
            lo = max(below) if below else min(above) - 12
            cands = [q for q in range(lo + 1, hi) if q in row]
            if not cands:
                continue
            means = [level[row[q], frames].mean() for q in cands]
            k = int(np.argmax(means))
            if means[k] >= floor and means[k] > 0:
                added.append(Note(a, b, cands[k], names[v], 64))
    added.sort(key=lambda n: (n.group, n.pitch, n.onset))
    merged: list[Note] = []
    for n in added:
        m = merged[-1] if merged else None
        if m is not None and m.group == n.group and m.pitch == n.pitch and abs(m.offset - n.onset) < 1e-3:
            merged[-1] = Note(m.onset, n.offset, m.pitch, m.group, m.velocity)
        else:
            merged.append(n)
    return sorted(merged, key=lambda n: (n.onset, -n.pitch))
