"""Undoable edits of the score's notes (DESIGN.md §2.5b, §4): aligning a score, an anchor dragged on V,
the note editor's gestures (add, delete, move, resize, assign to a source).

The project's notes (``project.notes``) are in the recording's time: they are what the constraints
see. A score that was synchronised to the recording also keeps a :class:`ScoreAlignment`
(``project.score_alignment``): the score's own notes in score time (``score_notes``, the same order and
number as ``project.notes``: note ``i`` of one is note ``i`` of the other) and the user's anchors
``(score_time, audio_time)``. The warp itself (:class:`~demixer.core.sync.Alignment`) is derived
from them and the recording (deterministic), so only those two are saved.

One :class:`ScoreEdit` replaces the notes (and the alignment state) and makes the components follow, as
one undo step:

* every component with score notes has its allowed activation region moved by the difference between
  the old and the new regions (painted entries elsewhere survive, as with a tolerance change);
* a (pitch, group) that gets its first note gets a pitch component (and an onset template when its
  source has onset templates), allowed around its notes;
* a pitch or onset component whose last score note is removed is removed too.

``rewarp`` applies a new warp to the notes: note ``i`` keeps its offset from the old warp (the
note-level refinement, or a note moved by hand), except the notes pinned to an anchor, which sit exactly
on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from demixer.core.constraints import split_by_pitch
from demixer.core.notes import Note, pitch_name
from demixer.core.strokes import bounding_box
from demixer.model.edits import Edit
from demixer.model.paint import allow_patches, component_notes, note_region, score_notes
from demixer.model.project import RESIDUAL, Project

__all__ = [
    "ScoreAlignment",
    "ScoreEdit",
    "MIN_NOTE_S",
    "to_score_times",
    "rewarp",
    "add_anchor",
    "source_brush_edit",
]

#: the shortest note the editor makes (seconds)
MIN_NOTE_S = 0.03


@dataclass(frozen=True)
class ScoreAlignment:
    """A score synchronised to the recording: its notes in score time (``score_notes[i]`` is
    ``project.notes[i]``), the anchors the warp passes through and the warp itself (``warp``, a
    :class:`~demixer.core.sync.Alignment`; None when not computed yet, e.g. just loaded)."""

    score_notes: tuple[Note, ...]
    anchors: tuple[tuple[float, float], ...] = ()
    warp: object | None = None

    def with_(self, **changes) -> ScoreAlignment:
        return dataclasses.replace(self, **changes)


def to_score_times(alignment, t) -> np.ndarray:
    """Audio time(s) → score time(s): the inverse of ``alignment.to_audio`` (the global tempo outside
    the warp path)."""
    x = np.asarray(t, dtype=np.float64)
    s, a = np.asarray(alignment.score_times), np.asarray(alignment.audio_times)
    if s.size < 2:
        return x.copy()
    # a is non-decreasing: keep the first score time of each audio time
    a_u, first = np.unique(a, return_index=True)
    s_u = s[first]
    y = np.interp(x, a_u, s_u)
    ratio = float(alignment.tempo_ratio)
    y = np.where(x < a_u[0], s_u[0] + (x - a_u[0]) * ratio, y)
    y = np.where(x > a_u[-1], s_u[-1] + (x - a_u[-1]) * ratio, y)
    return np.maximum(y, 0.0)


def _clamp(onset: float, offset: float, duration: float) -> tuple[float, float]:
    onset = float(min(max(onset, 0.0), max(duration - MIN_NOTE_S, 0.0)))
    offset = float(min(max(offset, onset + MIN_NOTE_S), duration))
    return onset, max(offset, onset)


def rewarp(
    notes: Sequence[Note],
    state: ScoreAlignment,
    new_warp,
    duration: float,
    pinned: dict[int, tuple[float, float]] | None = None,
) -> list[Note]:
    """The notes under ``new_warp``: note ``i`` is ``new_warp(score_notes[i])`` plus its offset from the
    old warp (``state.warp``; none without one); ``pinned`` = {i: (onset, offset)} puts notes exactly
    there. Clamped to the recording."""
    sn = state.score_notes
    s_on = np.array([n.onset for n in sn], float)
    s_off = np.array([n.offset for n in sn], float)
    new_on = np.asarray(new_warp.to_audio(s_on), float).reshape(-1)
    new_off = np.asarray(new_warp.to_audio(s_off), float).reshape(-1)
    if state.warp is not None:
        d_on = np.array([n.onset for n in notes]) - np.asarray(state.warp.to_audio(s_on)).reshape(-1)
        d_off = np.array([n.offset for n in notes]) - np.asarray(state.warp.to_audio(s_off)).reshape(-1)
        new_on, new_off = new_on + d_on, new_off + d_off
    out = []
    pinned = pinned or {}
    for i, n in enumerate(notes):
        on, off = pinned.get(i, (new_on[i], new_off[i]))
        on, off = _clamp(on, off, duration)
        out.append(dataclasses.replace(n, onset=on, offset=off))
    return out


def add_anchor(
    anchors: Sequence[tuple[float, float]], score_time: float, audio_time: float, min_gap: float = 0.02
) -> list[tuple[float, float]]:
    """``anchors`` plus ``(score_time, audio_time)``: an anchor at (nearly) the same score time is
    replaced; anchors that the new one would cross (out of order in either time) are dropped."""
    s, a = float(score_time), float(audio_time)
    out = []
    for s0, a0 in anchors:
        if abs(s0 - s) < min_gap:
            continue
        if (s0 < s) != (a0 < a) or abs(a0 - a) < min_gap:
            continue
        out.append((float(s0), float(a0)))
    out.append((s, a))
    return sorted(out)


# ============================================================================================ the edit
def _group_source(project: Project, group: str) -> str:
    return group if any(s.name == group for s in project.sources) else ""


class ScoreEdit(Edit):
    """Replace the notes (and the alignment state) — the components and regions follow. One undo step.

    ``notes``: the new ``project.notes`` (recording time). ``alignment``: the new
    ``project.score_alignment`` (``...`` keeps the current one). A project whose score parameters regroup
    the notes by pitch (``split_pitch``) gets that grouping baked into its notes (and ``split_pitch``
    cleared) in the same step, so that a note can be given to any source."""

    def __init__(self, project: Project, notes: Sequence[Note], text: str, alignment=...) -> None:
        self.text = text
        self.before_notes = list(project.notes)
        self.before_alignment = project.score_alignment
        self.before_score = project.score
        self.after_notes = list(notes)
        self.after_alignment = project.score_alignment if alignment is ... else alignment
        self.after_score = project.score
        if project.score.split_pitch is not None:
            sp = project.score.split_pitch
            self.after_score = dataclasses.replace(project.score, split_pitch=None)
            if self.after_alignment is not None:
                self.after_alignment = self.after_alignment.with_(
                    score_notes=tuple(split_by_pitch(self.after_alignment.score_notes, sp))
                )
        self._subs: list[Edit] | None = None

    def __bool__(self) -> bool:
        return (
            self.before_notes != self.after_notes
            or self.before_alignment != self.after_alignment
            or self.before_score != self.after_score
        )

    def _set(self, project: Project, notes, alignment, score) -> None:
        project.notes = list(notes)
        project.score_alignment = alignment
        project.score = score
        project.notes_changed.emit()

    def do(self, project: Project) -> None:
        old_view = score_notes(project)  # the notes as the constraints saw them
        self._set(project, self.after_notes, self.after_alignment, self.after_score)
        if self._subs is None:
            self._subs = _follow(project, old_view)
        else:
            for e in self._subs:
                e.do(project)

    def undo(self, project: Project) -> None:
        for e in reversed(self._subs or []):
            e.undo(project)
        self._set(project, self.before_notes, self.before_alignment, self.before_score)


def _follow(project: Project, old_notes: list[Note]) -> list[Edit]:
    """Make the components follow the new notes (already set); returns the sub-edits, already done."""
    from demixer.model import component_edits as ce
    from demixer.model.paint import ConstraintEdit

    subs: list[Edit] = []
    new_notes = score_notes(project)
    # 1. components whose last score note went
    gone = [
        r
        for r, c in enumerate(project.components)
        if c.kind in ("pitch", "onset")
        and component_notes(project, r, old_notes)
        and not component_notes(project, r, new_notes)
    ]
    if gone and len(gone) < project.n_components:
        e = ce.RemoveComponents(project, gone)
        e.do(project)
        subs.append(e)
    # 2. (pitch, group) pairs with notes and no component
    per_group = project.score.per_group
    have = {(c.pitch, c.source if per_group else None) for c in project.components if c.kind == "pitch"}
    onset_sources = {c.source for c in project.components if c.kind == "onset"}
    datas = []
    seen = set()
    for n in new_notes:
        src = _group_source(project, n.group)
        key = (n.pitch, src if per_group else None)
        if key in have or key in seen:
            continue
        seen.add(key)
        try:
            d = ce.pitch_component_data(project, n.pitch, src, "notes")
        except ValueError:
            continue
        datas.append(d)
    if datas:
        e = ce.insert_components_edit(project, datas, "add components")
        e.do(project)
        subs.append(e)
        onsets = []
        for d in datas:
            if d.component.source in onset_sources:
                r = next(i for i, c in enumerate(project.components) if c.name == d.component.name)
                try:
                    onsets.append(ce.onset_component_data(project, r))
                except ValueError:
                    pass
        if onsets:
            e = ce.insert_components_edit(project, onsets, "add onset templates")
            e.do(project)
            subs.append(e)
    # 3. the regions of every component whose notes changed
    allow = project.allow_H.copy()
    for r, c in enumerate(project.components):
        if c.kind not in ("pitch", "onset"):
            continue
        before = component_notes(project, r, old_notes)
        after = component_notes(project, r, new_notes)
        if before == after:
            continue
        reg_b = note_region(project, c.kind, before, project.score) if before else np.ones(project.n_frames, bool)
        reg_a = note_region(project, c.kind, after, project.score) if after else np.ones(project.n_frames, bool)
        allow[r, reg_b & ~reg_a] = False
        allow[r, reg_a & ~reg_b] = True
    box = bounding_box(allow != project.allow_H)
    if box is not None:
        r0, r1, c0, c1 = box
        e = ConstraintEdit(allow_patches(project, "H", box, allow[r0:r1, c0:c1]), "regions")
        e.do(project)
        subs.append(e)
    return subs


def describe(note: Note) -> str:
    return f"{pitch_name(note.pitch)} at {note.onset:.2f} s"


# ============================================================================================ source brush
def source_brush_edit(project: Project, source: str, cells: np.ndarray, text: str | None = None):
    """Paint ``source`` on V: ``cells`` (bins × frames, bool) is the painted area. In each painted frame
    ``n``, every component whose template may sound in that frame's painted bins (``allow_W`` there) is
    allowed there (``allow_H[r, n]``) when it belongs to ``source`` and forbidden when it belongs to
    another source (the residual included). Components whose templates do not reach the painted bins
    are left alone. One :class:`~demixer.model.paint.ConstraintEdit` (falsy when nothing changes)."""
    from demixer.model.paint import ConstraintEdit

    cells = np.asarray(cells, bool)
    if cells.shape != (project.n_bins, project.n_frames):
        raise ValueError(f"cells have shape {cells.shape}, expected {(project.n_bins, project.n_frames)}")
    names = [s.name for s in project.sources]
    if source != RESIDUAL and source not in names:
        raise ValueError(f'there is no source called "{source}"')
    own = np.zeros(project.n_components, bool)
    own[project.source_components(source)] = True
    text = text or f"paint source {source}"
    frames = np.flatnonzero(cells.any(axis=0))
    if frames.size == 0:
        return ConstraintEdit([], text)
    # reach[r, n]: component r's template is allowed in a painted bin of frame n
    reach = (project.allow_W.T.astype(np.float32) @ cells[:, frames].astype(np.float32)) > 0
    new = project.allow_H[:, frames].copy()
    new[own[:, None] & reach] = True
    new[~own[:, None] & reach] = False
    full = project.allow_H.copy()
    full[:, frames] = new
    box = bounding_box(full != project.allow_H)
    if box is None:
        return ConstraintEdit([], text)
    r0, r1, c0, c1 = box
    return ConstraintEdit(allow_patches(project, "H", box, full[r0:r1, c0:c1]), text)
