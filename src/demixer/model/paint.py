"""Undoable constraint edits: painting ``allow_W`` / ``allow_H``, time ranges, score tolerances
(DESIGN.md §2.3 "Painted constraints combine with these", §3 "one brush stroke is one undo step").

Every edit here is a :class:`~demixer.model.edits.PatchEdit` whose patches hold bounding-box diffs of
the allow mask *and* of the factor it constrains, for both the current factor (``W`` / ``H``, what the
next run starts from) and the initialisation (``W0`` / ``H0``), so that the masks and the factors stay
consistent (DESIGN.md §1):

* an entry made *not allowed* becomes exactly 0 in ``X`` and ``X0``;
* an entry made *allowed* that is 0 gets a positive starting value (multiplicative updates cannot move
  an exact zero): for ``H`` the mean of the row's positive allowed entries, for ``W`` the mean of the
  column's positive allowed entries, else the mean of the whole factor's positive entries, else 1.

Painting "allow" over entries that are already allowed but have decayed to exactly 0 re-seeds them in
the same way (otherwise the brush could not bring a dead region back). ``W0``/``H0`` are written without a
change signal: nothing displays them.

A component's *score notes* are the score's notes (regrouped by ``split_pitch`` when the project's
score parameters say so) that have the component's pitch and — with ``per_group`` — its source as their
group. Tolerance changes (:func:`tolerance_edit`) move the allowed regions of every component that has
score notes by the difference between the old and the new regions, so painted edits elsewhere survive.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from demixer.core.constraints import ScoreParams, activation_regions, harmonic_template, split_by_pitch
from demixer.core.notes import Note
from demixer.core.strokes import bounding_box
from demixer.model.edits import ArrayPatch, PatchEdit
from demixer.model.project import Project

__all__ = [
    "InitPatch",
    "ConstraintEdit",
    "ScoreParamsEdit",
    "allow_patches",
    "paint_edit",
    "time_range_edit",
    "tolerance_edit",
    "score_notes",
    "component_notes",
    "note_region",
    "fill_values",
    "reference_allow",
]

_ALLOW = {"W": "allow_W", "H": "allow_H"}


@dataclass(eq=False)
class InitPatch(ArrayPatch):
    """A patch of ``W0`` or ``H0`` (the initialisation): written in place, no change signal."""

    def apply(self, project: Project, forward: bool = True) -> None:
        a = getattr(project, self.target)
        a[slice(*self.rows), slice(*self.cols)] = self.after if forward else self.before


def _patch(project: Project, name: str, box: tuple[int, int, int, int], after: np.ndarray) -> ArrayPatch | None:
    """Patch of ``project.<name>[box]`` → ``after``; None when nothing changes."""
    r0, r1, c0, c1 = box
    current = getattr(project, name)[r0:r1, c0:c1]
    after = np.asarray(after, dtype=current.dtype)
    if np.array_equal(current, after):
        return None
    cls = InitPatch if name in ("W0", "H0") else ArrayPatch
    return cls(name, (r0, r1), (c0, c1), current.copy(), after.copy())


class ConstraintEdit(PatchEdit):
    """A change of allow masks with the matching changes of W/H and W0/H0 (one undo step)."""

    def __init__(self, patches: Sequence[ArrayPatch | None], text: str = "edit constraints") -> None:
        super().__init__([p for p in patches if p is not None], text)

    def __bool__(self) -> bool:
        return bool(self.patches)


def fill_values(X: np.ndarray, allow: np.ndarray, axis: int) -> np.ndarray:
    """Starting values for newly allowed entries of ``X``: per row (``axis=1``, for H) or per column
    (``axis=0``, for W), the mean of the positive allowed entries; the whole array's positive mean where
    a row/column has none; 1 when the array has none. Shape broadcastable against ``X``."""
    pos = (X > 0) & allow
    sums = np.where(pos, X, 0).sum(axis=axis, dtype=np.float64, keepdims=True)
    counts = pos.sum(axis=axis, keepdims=True)
    if pos.any():
        overall = float(X[pos].mean(dtype=np.float64))
    else:
        anypos = X > 0
        overall = float(X[anypos].mean(dtype=np.float64)) if anypos.any() else 1.0
    if not (overall > 0 and np.isfinite(overall)):
        overall = 1.0
    out = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
    return out.astype(X.dtype)


def allow_patches(
    project: Project,
    target: str,
    box: tuple[int, int, int, int],
    new_allow: np.ndarray,
    reseed: np.ndarray | None = None,
) -> list[ArrayPatch]:
    """Patches that set ``allow_<target>[box]`` to ``new_allow`` and make ``target`` and ``target0``
    consistent with it: zero where not allowed, a starting value (:func:`fill_values`) where newly
    allowed or where ``reseed`` (a bool array of the box's shape) marks an allowed entry that is 0."""
    if target not in _ALLOW:
        raise ValueError(f"target must be 'W' or 'H', got {target!r}")
    r0, r1, c0, c1 = box
    aname = _ALLOW[target]
    allow_full = project.array(aname)
    old = allow_full[r0:r1, c0:c1]
    new_allow = np.asarray(new_allow, dtype=bool)
    if new_allow.shape != old.shape:
        raise ValueError(f"new_allow has shape {new_allow.shape}, expected the box's {old.shape}")
    seed_wanted = new_allow & ~old
    if reseed is not None:
        seed_wanted = seed_wanted | (np.asarray(reseed, bool) & new_allow)
    patches: list[ArrayPatch | None] = []
    axis = 0 if target == "W" else 1
    for name in (target, target + "0"):
        X = getattr(project, name)
        block = X[r0:r1, c0:c1].copy()
        block[~new_allow] = 0
        seed = seed_wanted & (block == 0)
        if seed.any():
            if axis == 1:  # H: per row, from the whole rows
                fill = fill_values(X[r0:r1, :], allow_full[r0:r1, :], axis=1)
            else:  # W: per column, from the whole columns
                fill = fill_values(X[:, c0:c1], allow_full[:, c0:c1], axis=0)
            block = np.where(seed, fill, block)
        patches.append(_patch(project, name, box, block))
    patches.append(_patch(project, aname, box, new_allow))
    return [p for p in patches if p is not None]


def paint_edit(project: Project, target: str, mask: np.ndarray, allow: bool, text: str | None = None) -> ConstraintEdit:
    """The edit of painting ``mask`` (a bool array the shape of W or H) "allow" (True) or "zero" (False)
    on ``target`` ("W" or "H"). Empty (falsy) when it changes nothing."""
    mask = np.asarray(mask, dtype=bool)
    aname = _ALLOW.get(target)
    if aname is None:
        raise ValueError(f"target must be 'W' or 'H', got {target!r}")
    if mask.shape != project.array(aname).shape:
        raise ValueError(f"mask has shape {mask.shape}, expected {project.array(aname).shape}")
    text = text or f"paint {'allow' if allow else 'zero'} on {target}"
    box = bounding_box(mask)
    if box is None:
        return ConstraintEdit([], text)
    r0, r1, c0, c1 = box
    m = mask[r0:r1, c0:c1]
    old = project.array(aname)[r0:r1, c0:c1]
    new = (old | m) if allow else (old & ~m)
    return ConstraintEdit(allow_patches(project, target, box, new, m if allow else None), text)


def time_range_edit(
    project: Project,
    components: Sequence[int],
    frames: tuple[int, int],
    mode: str,
    bins: tuple[int, int] | None = None,
    text: str | None = None,
) -> ConstraintEdit:
    """Constrain ``components`` over the frames ``frames = (n0, n1)`` (inclusive).

    ``mode="restrict"``: their activations are allowed in the range and forbidden outside it.
    ``mode="forbid"``: forbidden in the range (elsewhere unchanged); with ``bins = (k0, k1)`` (inclusive)
    their templates are also forbidden in those bins.
    """
    if mode not in ("restrict", "forbid"):
        raise ValueError(f"mode must be 'restrict' or 'forbid', got {mode!r}")
    comps = sorted({int(r) for r in components})
    R, N = project.allow_H.shape
    if not comps or any(not 0 <= r < R for r in comps):
        raise ValueError(f"components must be indices 0..{R - 1}, got {list(components)}")
    n0, n1 = sorted(int(v) for v in frames)
    n0, n1 = max(n0, 0), min(n1, N - 1)
    text = text or (f"{mode} {len(comps)} component{'s' if len(comps) > 1 else ''} in frames {n0}–{n1}")
    patches: list[ArrayPatch] = []
    rows = np.zeros(R, bool)
    rows[comps] = True
    r0, r1 = comps[0], comps[-1] + 1
    inside = np.zeros(N, bool)
    if n0 <= n1:
        inside[n0 : n1 + 1] = True
    sel = rows[r0:r1, None]
    old = project.allow_H[r0:r1, :]
    if mode == "restrict":
        new = np.where(sel, inside[None, :], old)
        reseed = sel & inside[None, :]
        patches += allow_patches(project, "H", (r0, r1, 0, N), new, reseed)
    elif n0 <= n1:
        new = old & ~(sel & inside[None, :])
        patches += allow_patches(project, "H", (r0, r1, 0, N), new)
    if mode == "forbid" and bins is not None:
        K = project.allow_W.shape[0]
        k0, k1 = sorted(int(v) for v in bins)
        k0, k1 = max(k0, 0), min(k1, K - 1)
        if k0 <= k1:
            oldW = project.allow_W[k0 : k1 + 1, r0:r1]
            newW = oldW & ~rows[None, r0:r1]
            patches += allow_patches(project, "W", (k0, k1 + 1, r0, r1), newW)
    return ConstraintEdit(patches, text)


# ------------------------------------------------------------------------------------------- score
def score_notes(project: Project, params: ScoreParams | None = None) -> list[Note]:
    """The project's notes as the score constraints see them (regrouped by ``split_pitch`` if set)."""
    params = params or project.score
    notes = list(project.notes)
    if notes and params.split_pitch is not None:
        notes = split_by_pitch(notes, params.split_pitch)
    return notes


def component_notes(project: Project, r: int, notes: Sequence[Note] | None = None) -> list[Note]:
    """The score notes of component ``r``: its pitch, and its source as group (when ``per_group``)."""
    c = project.components[r]
    if c.pitch is None or c.kind not in ("pitch", "onset"):
        return []
    notes = score_notes(project) if notes is None else notes
    same = [n for n in notes if n.pitch == c.pitch]
    if not project.score.per_group:
        return same
    return [n for n in same if n.group == c.source]


def note_region(project: Project, kind: str, notes: Sequence[Note], params: ScoreParams) -> np.ndarray:
    """Frames allowed for a component of ``kind`` with these score notes under ``params`` (N,)."""
    a = project.analysis.params
    if kind == "onset":
        iv = [(n.onset, n.onset) for n in notes]
        pre, post = params.tol_onset_pre, params.tol_onset_post
    else:
        iv = [(n.onset, n.offset) for n in notes]
        pre, post = params.tol_note_pre, params.tol_note_post
    if not iv:
        return np.zeros(project.n_frames, bool)
    return activation_regions(np.asarray(iv, float), project.n_frames, a.sr, a.hop, pre, post)


class ScoreParamsEdit(ConstraintEdit):
    """Patches plus a change of the project's score parameters (``project.score``).

    It emits no ``params_changed``: the window answers that by reloading the whole Parameters dock,
    which would drop the user's not yet applied STFT settings; the GUI syncs the tolerance fields from
    ``project.score`` after every undo-stack change instead."""

    def __init__(self, patches, old: ScoreParams, new: ScoreParams, text: str) -> None:
        super().__init__(patches, text)
        self.old = old
        self.new = new

    def __bool__(self) -> bool:
        return True

    def do(self, project: Project) -> None:
        super().do(project)
        project.score = self.new

    def undo(self, project: Project) -> None:
        super().undo(project)
        project.score = self.old


_TOL_LABELS = {
    "tol_pitch": ("pitch band", ""),
    "tol_note_pre": ("note: before", " s"),
    "tol_note_post": ("note: after", " s"),
    "tol_onset_pre": ("onset: before", " s"),
    "tol_onset_post": ("onset: after", " s"),
}


def tolerance_edit(project: Project, new: ScoreParams, text: str | None = None) -> ScoreParamsEdit | None:
    """Change the score tolerances to those of ``new``: the allowed regions of every component with
    score notes move by the difference between the old and the new regions (activations for the
    note/onset tolerances, harmonic bands of pitch templates for ``tol_pitch``). None when no tolerance
    changes."""
    old = project.score
    changed = [k for k in _TOL_LABELS if getattr(old, k) != getattr(new, k)]
    if not changed:
        return None
    new = dataclasses.replace(old, **{k: getattr(new, k) for k in _TOL_LABELS})
    if text is None:
        parts = []
        for k in changed:
            label, unit = _TOL_LABELS[k]
            parts.append(f"{label} {getattr(old, k):g} → {getattr(new, k):g}{unit}")
        text = "tolerance " + ", ".join(parts)
    notes = score_notes(project, old)
    patches: list[ArrayPatch] = []
    R = project.n_components
    note_tols = any(k != "tol_pitch" for k in changed)
    if notes and note_tols:
        allow = project.allow_H.copy()
        for r in range(R):
            kind = project.components[r].kind
            ns = component_notes(project, r, notes)
            if not ns:
                continue
            before = note_region(project, kind, ns, old)
            after = note_region(project, kind, ns, new)
            allow[r, before & ~after] = False
            allow[r, after & ~before] = True
        box = bounding_box(allow != project.allow_H)
        if box is not None:
            r0, r1, c0, c1 = box
            patches += allow_patches(project, "H", box, allow[r0:r1, c0:c1])
    if notes and "tol_pitch" in changed:
        a = project.analysis.params
        allow = project.allow_W.copy()
        for r, c in enumerate(project.components):
            if c.kind != "pitch" or c.pitch is None or not component_notes(project, r, notes):
                continue
            kw = dict(n_harmonics=old.n_harmonics)
            _, before = harmonic_template(c.pitch, project.n_bins, a.sr, a.n_fft, tol=old.tol_pitch, **kw)
            _, after = harmonic_template(c.pitch, project.n_bins, a.sr, a.n_fft, tol=new.tol_pitch, **kw)
            allow[before & ~after, r] = False
            allow[after & ~before, r] = True
        box = bounding_box(allow != project.allow_W)
        if box is not None:
            r0, r1, c0, c1 = box
            patches += allow_patches(project, "W", box, allow[r0:r1, c0:c1])
    return ScoreParamsEdit(patches, old, new, text)


def reference_allow(project: Project, target: str) -> np.ndarray:
    """What the score and the templates alone would allow, to tell painted constraints apart from them:
    for H, each component's score-note region (:func:`note_region` with the project's tolerances;
    everything for components without score notes); for W, each pitch component's harmonic bands
    (everything for onset and free components)."""
    if target == "H":
        notes = score_notes(project)
        out = np.ones(project.allow_H.shape, bool)
        for r, c in enumerate(project.components):
            ns = component_notes(project, r, notes)
            if ns:
                out[r] = note_region(project, c.kind, ns, project.score)
        return out
    if target != "W":
        raise ValueError(f"target must be 'W' or 'H', got {target!r}")
    a = project.analysis.params
    out = np.ones(project.allow_W.shape, bool)
    bands: dict[int, np.ndarray] = {}
    for r, c in enumerate(project.components):
        if c.kind == "pitch" and c.pitch is not None:
            if c.pitch not in bands:
                bands[c.pitch] = harmonic_template(
                    c.pitch,
                    project.n_bins,
                    a.sr,
                    a.n_fft,
                    tol=project.score.tol_pitch,
                    n_harmonics=project.score.n_harmonics,
                )[1]
            out[:, r] = bands[c.pitch]
    return out
