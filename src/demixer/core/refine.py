"""Staged score-informed decomposition: the numerical parts (DESIGN.md §2.3, §2.5).

The single joint fit of W and H from the score's initialisation lets a component's activation absorb
energy that belongs to another source wherever their harmonics overlap, and the templates then learn
that mistake. The staged procedure (driven by :func:`demixer.engine.separation.fit`) avoids it:

1. **scout** — a short joint fit with the score's (wide) tolerances on a fine time grid; its
   activations show where each note really starts and ends (:func:`align_notes`) and whether each
   source's notes decay after the attack like struck or plucked strings (:func:`decay_rates`),
   which decides the onset templates when the score does not name the instrument;
2. **templates** — W alone, with H held at a *structured* activation (:func:`note_activations`):
   1 over each (aligned) written note, ``tail`` in the tolerance around it, pulses at the onsets for
   onset components. Every note of a component then counts alike, so a template is what its notes have
   in common and cannot be bent towards one occurrence where another source overlaps;
3. **activations** — H alone with those templates, within tighter (aligned) regions; then the templates
   of struck or plucked groups are refitted with those activations held (a struck note decays, which
   the flat structured activation of stage 2 does not model), and H once more.

Everything here is numpy only: no I/O, no printing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from demixer.core.constraints import ComponentInfo, activation_regions
from demixer.core.notes import Note

__all__ = [
    "RefineParams",
    "component_notes",
    "align_notes",
    "Decay",
    "decay_stats",
    "is_decaying",
    "note_activations",
    "refit_iterations",
    "split_iterations",
]


@dataclass(frozen=True)
class RefineParams:
    """Parameters of the staged fit (see the module docstring).

    Iterations: ``scout_share`` and ``activation_share`` of the run's ``n_iter`` go to the scout and the
    activation stages, the rest to the template stage. ``scout_hop_s`` / ``scout_window_s``: the scout's
    STFT hop and window in seconds (a finer time grid than the separation's, for alignment).
    Alignment: an onset or offset moves to the steepest rise or fall of its component's scout activation
    within ``max_shift`` s (and halfway to the neighbouring notes of the same component), when that rise
    exceeds ``threshold`` × the note's peak activation and the move is at least ``min_shift`` s (a score
    that agrees within ``min_shift`` is kept as it is). ``lag`` s is subtracted from the detected times
    (the activation of a centred frame rises about half a hop after the sound starts).
    Regions after alignment: ``tol_note_pre`` / ``tol_note_post`` around each note, ``tol_onset_pre`` /
    ``tol_onset_post`` around each onset; ``tail`` is the structured activation in those margins.
    ``struck_decay_db_s`` / ``struck_falling``: a source whose notes decay faster than this (median over
    its notes, dB per second, negative) or whose activation falls in at least this fraction of the
    frame steps after the attack is struck or plucked (:func:`is_decaying`), and gets onset templates
    when the score does not say.
    The activation stage (``n_act`` iterations) depends on what the scout found:

    * some group is struck or plucked: ``n_act − 2·refit_iter`` iterations of H, then the templates of
      the struck groups for ``refit_iter`` iterations with H held (the other groups' templates locked),
      then H again for ``refit_iter`` (:func:`refit_iterations`). The template stage holds H at a flat
      structured activation, which a decaying note does not follow; the refit learns those templates
      from the fitted, decaying activations. ``refit_iter`` 0: H for the whole stage.
    * no group is struck: ``held_iter`` iterations of H (at most ``n_act``; None: ``n_act``), and the
      stage, and the fit's ``n_iter``, end there. For held notes the structured activation is already
      close: one multiplicative step of H from it measured best (0, 1, 2, 3, 5, 10, 25 iterations on
      the dev, unseen and performed sets: issue 15's note) — more lets H take the other voices'
      energy where their harmonics overlap.
    """

    scout_share: float = 0.25
    activation_share: float = 0.25
    scout_hop_s: float = 512 / 22050
    scout_window_s: float = 2048 / 22050
    align: bool = True
    max_shift: float = 0.25
    min_shift: float = 0.03
    threshold: float = 0.1
    lag: float = 0.015
    tol_note_pre: float = 0.1
    tol_note_post: float = 0.3
    tol_onset_pre: float = 0.05
    tol_onset_post: float = 0.1
    tail: float = 0.3
    onset_core_pre: float = 0.03
    onset_core_post: float = 0.06
    struck_decay_db_s: float = -8.0
    struck_falling: float = 0.67
    refit_iter: int = 10
    held_iter: int | None = 1

    def __post_init__(self) -> None:
        for name in ("scout_share", "activation_share"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v < 1.0 and math.isfinite(v)):
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
        if self.scout_share + self.activation_share >= 1.0:
            raise ValueError("scout_share + activation_share must leave iterations for the template stage")
        for name in ("scout_hop_s", "scout_window_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive number of seconds, got {v!r}")
        for name in ("max_shift", "min_shift", "threshold", "lag", "tol_note_pre", "tol_note_post",
                     "tol_onset_pre", "tol_onset_post", "onset_core_pre", "onset_core_post"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not (isinstance(self.tail, (int, float)) and 0.0 < self.tail <= 1.0):
            raise ValueError(f"tail must be in (0, 1], got {self.tail!r}")
        if not (isinstance(self.struck_decay_db_s, (int, float)) and math.isfinite(self.struck_decay_db_s)):
            raise ValueError(f"struck_decay_db_s must be a finite number, got {self.struck_decay_db_s!r}")
        if not (isinstance(self.struck_falling, (int, float)) and 0.0 < self.struck_falling <= 1.0):
            raise ValueError(f"struck_falling must be in (0, 1], got {self.struck_falling!r}")
        if isinstance(self.refit_iter, bool) or not isinstance(self.refit_iter, int) or self.refit_iter < 0:
            raise ValueError(f"refit_iter must be an integer >= 0, got {self.refit_iter!r}")
        h = self.held_iter
        if h is not None and (isinstance(h, bool) or not isinstance(h, int) or h < 0):
            raise ValueError(f"held_iter must be an integer >= 0 or None, got {h!r}")


def split_iterations(n_iter: int, params: RefineParams) -> tuple[int, int, int]:
    """(scout, templates, activations) iterations adding up to ``n_iter``."""
    n = max(0, int(n_iter))
    scout = int(round(n * params.scout_share))
    act = int(round(n * params.activation_share))
    return scout, n - scout - act, act


def refit_iterations(n_act: int, params: RefineParams) -> int:
    """Iterations of each of the two refit parts of an activation stage of ``n_act`` iterations (0: no
    refit): ``refit_iter``, leaving at least one iteration of H before the templates move."""
    return max(0, min(int(params.refit_iter), (int(n_act) - 1) // 2))


# --------------------------------------------------------------------------------------------------
# Notes ↔ components


def _component_key(c: ComponentInfo, per_group: bool) -> tuple[str | None, int | None]:
    return (c.source if per_group else None, c.pitch)


def component_notes(
    components: Sequence[ComponentInfo],
    notes: Iterable[Note],
    per_group: bool = True,
    onset_groups: Mapping[str, bool] | None = None,
) -> list[list[int]]:
    """Indices into ``notes`` of each component's notes.

    A pitch component owns the notes of its pitch (and of its source's group when ``per_group``, as
    :func:`~demixer.core.constraints.build_score_constraints` makes them); an onset component owns the
    same notes, restricted to groups whose entry in ``onset_groups`` is true (all when None). Free
    components own none.
    """
    note_list = list(notes)
    by_key: dict[tuple[str | None, int], list[int]] = {}
    for i, n in enumerate(note_list):
        by_key.setdefault((n.group if per_group else None, int(n.pitch)), []).append(i)
    out: list[list[int]] = []
    for c in components:
        if c.kind not in ("pitch", "onset") or c.pitch is None:
            out.append([])
            continue
        idx = by_key.get(_component_key(c, per_group), [])
        if c.kind == "onset" and onset_groups is not None:
            idx = [i for i in idx if onset_groups.get(note_list[i].group, False)]
        out.append(list(idx))
    return out


# --------------------------------------------------------------------------------------------------
# Alignment


def _steepest(
    t0: float, sign: float, lo: float, hi: float, *, times: np.ndarray, d: np.ndarray, peak: float,
    max_shift: float, threshold: float, min_shift: float, lag: float,
) -> float | None:
    """The time ``lag`` s before the frame of the steepest rise (``sign`` 1) or fall (−1) of an activation
    whose frame-to-frame change is ``d``, searched within ``max_shift`` of ``t0`` and inside
    ``[lo, hi]``; None when that change is below ``threshold × peak`` or the move below ``min_shift``."""
    sel = np.flatnonzero((times >= max(t0 - max_shift, lo)) & (times <= min(t0 + max_shift, hi)))
    if sel.size == 0:
        return None
    weight = 1.0 - 0.5 * np.abs(times[sel] - t0) / max_shift if max_shift > 0 else 1.0
    k = int(sel[np.argmax(sign * d[sel] * weight)])
    if sign * d[k] <= threshold * peak:
        return None
    t = float(times[k]) - lag
    return t if abs(t - t0) >= min_shift else None


def align_notes(
    notes: Sequence[Note],
    H: np.ndarray,
    rows: Sequence[Sequence[int]],
    times: np.ndarray,
    *,
    max_shift: float = 0.25,
    min_shift: float = 0.03,
    threshold: float = 0.1,
    lag: float = 0.015,
) -> list[Note]:
    """Notes moved to where their component's activation ``H`` (R × N, on frames centred at ``times``)
    rises and falls. ``rows[r]`` lists the indices into ``notes`` of component ``r`` (pitch components;
    see :func:`component_notes`).

    For each note the onset moves to the frame boundary before the largest increase of its component's
    activation within ``max_shift`` s of the written onset, and not past halfway to the previous or
    next onset of the same component; the increase is weighted by ``1 − |shift| / (2 max_shift)`` so
    that near events win ties. The move is made only when that increase exceeds ``threshold`` times the
    activation's peak around the note and when it is at least ``min_shift`` s. The offset likewise, with
    the largest decrease. Offsets stay at least 50 ms after onsets. Returns new notes in the same order
    (other fields unchanged); the input is not modified.
    """
    H = np.asarray(H)
    times = np.asarray(times, dtype=np.float64)
    if H.ndim != 2 or H.shape[1] != times.size:
        raise ValueError(f"H {H.shape} does not match {times.size} frame times")
    if len(rows) != H.shape[0]:
        raise ValueError(f"rows has {len(rows)} entries for {H.shape[0]} components")
    out = list(notes)
    if times.size < 2:
        return out
    dt = float(times[1] - times[0])
    for r, idx in enumerate(rows):
        if not idx:
            continue
        h = H[r].astype(np.float64)
        d = np.diff(h, prepend=h[0])
        order = sorted(idx, key=lambda i: notes[i].onset)
        onsets = [notes[i].onset for i in order]
        for j, i in enumerate(order):
            n = notes[i]
            lo_lim = (onsets[j - 1] + n.onset) / 2 if j > 0 else -math.inf
            hi_lim = (onsets[j + 1] + n.onset) / 2 if j + 1 < len(order) else math.inf
            span = (times >= n.onset - max_shift) & (times <= n.offset + max_shift)
            peak = float(h[span].max()) if span.any() else 0.0
            if peak <= 0.0:
                continue
            search = dict(times=times, d=d, peak=peak, max_shift=max_shift, threshold=threshold,
                          min_shift=min_shift, lag=lag + dt / 2)
            onset = _steepest(n.onset, 1.0, lo_lim, hi_lim, **search)
            onset = n.onset if onset is None else max(0.0, onset)
            next_onset = 2 * hi_lim - n.onset if math.isfinite(hi_lim) else math.inf
            offset = _steepest(n.offset, -1.0, onset + 0.05, next_onset, **search)
            offset = n.offset if offset is None else offset
            if offset < onset + 0.05:
                offset = max(n.offset, onset + 0.05)
            if onset != n.onset or offset != n.offset:
                out[i] = dataclasses.replace(n, onset=onset, offset=offset)
    return out


# --------------------------------------------------------------------------------------------------
# Struck or sustained?


@dataclass(frozen=True)
class Decay:
    """How a group's notes evolve after their attack (medians over its notes): ``db_per_s``, the slope
    of a straight line fitted to the activation in dB from its peak to the note's end; ``falling``, the
    fraction of frame-to-frame steps over that span in which the activation decreases."""

    db_per_s: float
    falling: float
    n_notes: int


def decay_stats(
    notes: Sequence[Note], H: np.ndarray, rows: Sequence[Sequence[int]], times: np.ndarray, min_frames: int = 4
) -> dict[str, Decay]:
    """:class:`Decay` of each group's notes, from their components' activations ``H`` (R × N).

    For every note with at least ``min_frames`` frames between its onset and offset: the activation's
    peak in the first third of the note, then, from that peak to the offset, the dB slope and the
    fraction of falling steps. Struck and plucked strings ring freely after the attack: their activation
    falls step after step (fraction near 1; tens of dB/s, a few dB/s for low piano notes); bowed, blown
    and sung notes are held, so their activation wavers around a level (fraction near ½, slope near 0).
    Groups without a usable note are absent.
    """
    H = np.asarray(H)
    times = np.asarray(times, dtype=np.float64)
    if times.size < 2:
        return {}
    dt = float(times[1] - times[0])
    per_group: dict[str, list[tuple[float, float]]] = {}
    for r, idx in enumerate(rows):
        for i in idx:
            n = notes[i]
            core = np.flatnonzero((times >= n.onset) & (times <= n.offset))
            if core.size < min_frames:
                continue
            h = H[r, core].astype(np.float64)
            top = float(h.max())
            if top <= 0.0:
                continue
            k = int(np.argmax(h[: max(2, h.size // 3)]))
            seg = np.maximum(h[k:], top * 1e-6)
            if seg.size < 3:
                continue
            y = 20.0 * np.log10(seg / seg[0])
            x = np.arange(seg.size) * dt
            x -= x.mean()
            slope = float(np.dot(x, y - y.mean()) / np.dot(x, x))  # least-squares line (no LAPACK call)
            falling = float(np.mean(np.diff(seg) < 0))
            per_group.setdefault(n.group, []).append((slope, falling))
    return {
        g: Decay(float(np.median([v[0] for v in vals])), float(np.median([v[1] for v in vals])), len(vals))
        for g, vals in per_group.items()
    }


def is_decaying(decay: Decay | None, db_per_s: float = -8.0, falling: float = 0.67) -> bool | None:
    """True when a group's notes decay like struck or plucked strings: their level drops faster than
    ``db_per_s`` or falls in at least a ``falling`` fraction of the steps (either will do: the second
    catches slowly decaying low notes). None when unknown."""
    if decay is None or not (math.isfinite(decay.db_per_s) and math.isfinite(decay.falling)):
        return None
    return bool(decay.db_per_s < db_per_s or decay.falling >= falling)


# --------------------------------------------------------------------------------------------------
# Structured activations


def note_activations(
    components: Sequence[ComponentInfo],
    notes: Sequence[Note],
    rows: Sequence[Sequence[int]],
    *,
    n_frames: int,
    sr: float,
    hop: int,
    params: RefineParams | None = None,
    dtype: object = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Allowed regions and structured activations (both R × n_frames) for ``components`` from ``notes``.

    Pitch component: allowed over ``[onset − tol_note_pre, offset + tol_note_post]`` of its notes
    (``rows[r]``); value 1 over ``[onset, offset]``, ``tail`` in the rest of the allowed region.
    Onset component: allowed over ``[onset − tol_onset_pre, onset + tol_onset_post]``; value 1 over
    ``[onset − onset_core_pre, onset + onset_core_post]``, ``tail`` elsewhere in the region.
    A component without notes is not allowed anywhere (all zeros): it stays silent.
    """
    p = params or RefineParams()
    R = len(components)
    if len(rows) != R:
        raise ValueError(f"rows has {len(rows)} entries for {R} components")
    allow = np.zeros((R, n_frames), dtype=bool)
    H = np.zeros((R, n_frames), dtype=dtype)
    for r, (c, idx) in enumerate(zip(components, rows, strict=True)):
        if not idx:
            continue
        if c.kind == "onset":
            iv = [(notes[i].onset, notes[i].onset) for i in idx]
            region = activation_regions(iv, n_frames, sr, hop, p.tol_onset_pre, p.tol_onset_post)
            core = activation_regions(iv, n_frames, sr, hop, p.onset_core_pre, p.onset_core_post)
        else:
            iv = [(notes[i].onset, notes[i].offset) for i in idx]
            region = activation_regions(iv, n_frames, sr, hop, p.tol_note_pre, p.tol_note_post)
            core = activation_regions(iv, n_frames, sr, hop, 0.0, 0.0)
        core &= region
        allow[r] = region
        H[r, region] = p.tail
        H[r, core] = 1.0
    return allow, H
