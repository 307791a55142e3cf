"""Undoable edits of the components and sources (DESIGN.md §1, §4): rename, lock, assign to a source,
create / rename / recolour / delete sources, add pitch components and onset templates, delete
components.

* :class:`MetadataEdit` swaps the whole component and source lists (R small dataclasses): rename, lock,
  assignments and every source edit are one of these, so undo restores them exactly.
* :class:`InsertComponents` / :class:`RemoveComponents` change R: they insert or remove columns of
  ``W``, ``allow_W``, ``W0``, rows of ``H``, ``allow_H``, ``H0`` (and of the NAE encoder ``W_E``), and
  keep exactly what they removed for undo. Every change emits ``components_changed``,
  ``sources_changed`` and ``factors_changed(None)``.

Components whose source is "" (or names no source) form the residual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from demixer.core.constraints import ONSET_TEMPLATE_VALUE, harmonic_template, onset_template
from demixer.core.notes import Note, pitch_name
from demixer.model.edits import Edit
from demixer.model.paint import component_notes, fill_values, note_region, score_notes
from demixer.model.project import RESIDUAL, RESIDUAL_COLOUR, SOURCE_PALETTE, Component, Project, Source

__all__ = [
    "MetadataEdit",
    "ComponentData",
    "InsertComponents",
    "RemoveComponents",
    "rename_component",
    "set_locked",
    "assign_components",
    "assign_pitch_range",
    "reset_sources_from_score",
    "add_source",
    "rename_source",
    "recolour_source",
    "delete_source",
    "next_source_colour",
    "pitch_component_data",
    "onset_component_data",
    "insert_index",
    "insert_components_edit",
    "unique_name",
    "validate_source_name",
]


# ============================================================================================ metadata
def _copy_components(comps: Sequence[Component]) -> list[Component]:
    return [replace(c) for c in comps]


def _copy_sources(sources: Sequence[Source]) -> list[Source]:
    return [replace(s) for s in sources]


class MetadataEdit(Edit):
    """Replace the project's components' metadata and its sources (not the arrays)."""

    def __init__(
        self,
        project: Project,
        components: Sequence[Component],
        sources: Sequence[Source],
        text: str,
        notes: Sequence[Note] | None = None,
        score: tuple | None = None,
    ) -> None:
        """``notes``: the score notes after the edit (a renamed source renames its notes' group), or None
        to leave them alone. ``score``: ``(ScoreParams, score_alignment)`` after the edit (a pitch split
        baked into the notes), or None to leave them alone."""
        if len(components) != project.n_components:
            raise ValueError("a metadata edit cannot change the number of components")
        keep = notes is None
        self.before = (_copy_components(project.components), _copy_sources(project.sources),
                       None if keep else list(project.notes),
                       None if score is None else (project.score, project.score_alignment))
        self.after = (_copy_components(components), _copy_sources(sources), None if keep else list(notes), score)
        self.text = text

    def __bool__(self) -> bool:
        return self.before != self.after

    def _set(self, project: Project, state) -> None:
        comps, sources, notes, score = state
        if score is not None:
            project.score, project.score_alignment = score
        if notes is not None:
            project.notes = list(notes)  # a new list: caches keyed on the notes see the change
        project.components = _copy_components(comps)
        project.sources = _copy_sources(sources)
        project.sources_changed.emit()
        project.components_changed.emit()

    def do(self, project: Project) -> None:
        self._set(project, self.after)

    def undo(self, project: Project) -> None:
        self._set(project, self.before)


def _colour_for(sources: Sequence[Source], name: str) -> str:
    for s in sources:
        if s.name == name:
            return s.colour
    return RESIDUAL_COLOUR


def validate_source_name(project: Project, name: str, *, allow_existing: bool = False) -> str:
    """A cleaned source name; ValueError when empty, "residual" or (unless allowed) already used."""
    name = str(name).strip()
    if not name:
        raise ValueError("a source needs a name")
    if name == RESIDUAL:
        raise ValueError(f'"{RESIDUAL}" is the name of the components in no source')
    if not allow_existing and any(s.name == name for s in project.sources):
        raise ValueError(f'there is already a source called "{name}"')
    return name


def next_source_colour(project: Project) -> str:
    used = {s.colour.lower() for s in project.sources}
    for c in SOURCE_PALETTE:
        if c.lower() not in used:
            return c
    return SOURCE_PALETTE[len(project.sources) % len(SOURCE_PALETTE)]


def unique_name(project: Project, base: str, exclude: int | None = None) -> str:
    used = {c.name for i, c in enumerate(project.components) if i != exclude}
    name, i = base, 2
    while name in used:
        name = f"{base} ({i})"
        i += 1
    return name


def rename_component(project: Project, r: int, name: str) -> MetadataEdit:
    name = str(name).strip()
    if not name:
        raise ValueError("a component needs a name")
    old = project.components[r].name
    comps = _copy_components(project.components)
    comps[r].name = unique_name(project, name, exclude=r) if name != old else name
    return MetadataEdit(project, comps, project.sources, f"rename {old} → {comps[r].name}")


def set_locked(project: Project, indices: Sequence[int], locked: bool) -> MetadataEdit:
    idx = sorted({int(r) for r in indices})
    comps = _copy_components(project.components)
    for r in idx:
        comps[r].locked = bool(locked)
    what = comps[idx[0]].name if len(idx) == 1 else f"{len(idx)} components"
    return MetadataEdit(project, comps, project.sources, f"{'lock' if locked else 'unlock'} {what}")


def assign_components(project: Project, indices: Sequence[int], source: str) -> MetadataEdit:
    """Put components in ``source`` ("" or "residual": in no source)."""
    source = "" if source in ("", RESIDUAL) else source
    if source and not any(s.name == source for s in project.sources):
        raise ValueError(f'there is no source called "{source}"')
    idx = sorted({int(r) for r in indices})
    comps = _copy_components(project.components)
    colour = _colour_for(project.sources, source)
    for r in idx:
        _rename_for_source(comps, r, source)
        comps[r].source = source
        comps[r].colour = colour
    what = comps[idx[0]].name if len(idx) == 1 else f"{len(idx)} components"
    return MetadataEdit(project, comps, project.sources, f"assign {what} to {source or RESIDUAL}")


def assign_pitch_range(project: Project, lo: int, hi: int, source: str) -> MetadataEdit:
    """Every component with a pitch in ``lo..hi`` (inclusive; onset templates too) → ``source``."""
    lo, hi = sorted((int(lo), int(hi)))
    idx = [r for r, c in enumerate(project.components) if c.pitch is not None and lo <= c.pitch <= hi]
    if not idx:
        raise ValueError(f"no component has a pitch from {pitch_name(lo)} to {pitch_name(hi)}")
    edit = assign_components(project, idx, source)
    edit.text = f"assign pitches {pitch_name(lo)}–{pitch_name(hi)} to {source or RESIDUAL}"
    return edit


def reset_sources_from_score(project: Project) -> MetadataEdit:
    """Sources from the score's groups: a source for every group (created when missing), and every
    pitched component in the group of its pitch's notes when they are all in one, else in the group its
    name names ("C4 rh"); unchanged when that cannot be decided (a renamed pitch played by two groups).
    Components named after their source take the new source's name."""
    notes = score_notes(project)
    groups: list[str] = []
    for n in notes:
        if n.group and n.group not in groups:
            groups.append(n.group)
    if not groups:
        raise ValueError("the score has no groups (tracks / columns) to make sources from")
    sources = _copy_sources(project.sources)
    names = {s.name for s in sources}
    for g in groups:
        if g not in names and g != RESIDUAL:
            used = {s.colour.lower() for s in sources}
            colour = next((c for c in SOURCE_PALETTE if c.lower() not in used), SOURCE_PALETTE[len(sources) % 8])
            sources.append(Source(g, colour))
            names.add(g)
    by_pitch: dict[int, list[str]] = {}
    for n in notes:
        if n.group and n.group != RESIDUAL:
            lst = by_pitch.setdefault(n.pitch, [])
            if n.group not in lst:
                lst.append(n.group)
    comps = _copy_components(project.components)
    for r, c in enumerate(comps):
        if c.pitch is None:
            continue
        cand = by_pitch.get(c.pitch, [])
        named = [g for g in cand if g in c.name.split()]
        if len(cand) == 1:
            g = cand[0]
        elif len(named) == 1:
            g = named[0]
        else:
            continue
        _rename_for_source(comps, r, g)
        c.source = g
        c.colour = _colour_for(sources, g)
    return MetadataEdit(project, comps, sources, "reset sources from the score")


def add_source(project: Project, name: str, colour: str | None = None, assign: Sequence[int] = ()) -> MetadataEdit:
    """A new source (and, in the same step, the components ``assign`` put in it)."""
    name = validate_source_name(project, name)
    colour = colour or next_source_colour(project)
    sources = _copy_sources(project.sources) + [Source(name, colour)]
    comps = _copy_components(project.components)
    idx = sorted({int(r) for r in assign})
    for r in idx:
        comps[r].source = name
        comps[r].colour = colour
    text = f"new source {name}" + (f" with {len(idx)} component{'s' if len(idx) > 1 else ''}" if idx else "")
    return MetadataEdit(project, comps, sources, text)


def rename_source(project: Project, old: str, new: str) -> MetadataEdit:
    """Rename a source. Components are matched to score notes by (source, pitch) (model/paint.py, the
    engine's staged fit), so the notes of group ``old`` are renamed along: the components stay connected
    to the score. Components named after the source ("C4 lh") take the new name ("C4 left hand")."""
    if not any(s.name == old for s in project.sources):
        raise ValueError(f'there is no source called "{old}"')
    new = validate_source_name(project, new, allow_existing=new == old)
    sources = _copy_sources(project.sources)
    for s in sources:
        if s.name == old:
            s.name = new
    comps = _copy_components(project.components)
    for r, c in enumerate(comps):
        if c.source == old:
            _rename_for_source(comps, r, new)
            c.source = new
    notes, score = list(project.notes), None
    sp = project.score.split_pitch
    if sp is not None and notes:
        # The groups come from the pitch split ("low"/"high"), not from the notes: bake the split into the
        # notes (as a score edit does) so that the renamed group is the notes' own and stays with them
        # through deletes, resets, tolerance changes, runs and save/load (issue 18, item 3).
        from demixer.core.constraints import split_by_pitch

        notes = split_by_pitch(notes, sp)
        al = project.score_alignment
        if al is not None:
            al = al.with_(score_notes=tuple(
                replace(n, group=new) if n.group == old else n for n in split_by_pitch(al.score_notes, sp)))
        score = (replace(project.score, split_pitch=None), al)
    notes = [replace(n, group=new) if n.group == old else n for n in notes]
    return MetadataEdit(project, comps, sources, f"rename source {old} → {new}", notes=notes, score=score)


def _default_name(c: Component, source: str) -> str:
    base = f"{pitch_name(c.pitch)} {source}" if source else pitch_name(c.pitch)
    return f"{base} onset" if c.kind == "onset" else base


def _rename_for_source(comps: list[Component], r: int, source: str) -> None:
    """A pitch / onset component still named after its source ("B3 bass", "B3 bass onset (2)") is named
    after ``source`` ("B3 soprano") unless that name is taken; a name the user gave is kept, and so is
    the name of a component sent to the residual (it tells "Reset sources from the score" where it came from)."""
    c = comps[r]
    if not source or c.pitch is None or c.kind not in ("pitch", "onset") or c.source == source:
        return
    old = _default_name(c, c.source)
    if c.name != old and not (c.name.startswith(old + " (") and c.name.endswith(")")):
        return
    name = _default_name(c, source)
    if any(x.name == name for i, x in enumerate(comps) if i != r):
        return  # "D4 rh" exists: this one keeps "D4 lh", which tells Reset where it came from
    c.name = name


def recolour_source(project: Project, name: str, colour: str) -> MetadataEdit:
    if not any(s.name == name for s in project.sources):
        raise ValueError(f'there is no source called "{name}"')
    sources = _copy_sources(project.sources)
    for s in sources:
        if s.name == name:
            s.colour = str(colour)
    comps = _copy_components(project.components)
    for c in comps:
        if c.source == name:
            c.colour = str(colour)
    return MetadataEdit(project, comps, sources, f"recolour source {name}")


def delete_source(project: Project, name: str) -> MetadataEdit:
    """Remove a source; its components go to the residual."""
    if not any(s.name == name for s in project.sources):
        raise ValueError(f'there is no source called "{name}"')
    sources = [s for s in _copy_sources(project.sources) if s.name != name]
    comps = _copy_components(project.components)
    for c in comps:
        if c.source == name:
            c.source = ""
            c.colour = RESIDUAL_COLOUR
    return MetadataEdit(project, comps, sources, f"delete source {name}")


# ============================================================================================ structure
@dataclass(eq=False)
class ComponentData:
    """Everything of one component: its position ``index`` and metadata, W/allow_W/W0 columns (K,),
    H/allow_H/H0 rows (N,), and its NAE encoder row (K,) when the project has an encoder."""

    index: int
    component: Component
    w: np.ndarray
    h: np.ndarray
    allow_w: np.ndarray
    allow_h: np.ndarray
    w0: np.ndarray
    h0: np.ndarray
    w_e: np.ndarray | None = None


def _take(project: Project, indices: Sequence[int]) -> list[ComponentData]:
    we = project.W_E
    return [
        ComponentData(
            r,
            replace(project.components[r]),
            project.W[:, r].copy(),
            project.H[r, :].copy(),
            project.allow_W[:, r].copy(),
            project.allow_H[r, :].copy(),
            project.W0[:, r].copy(),
            project.H0[r, :].copy(),
            None if we is None else we[r, :].copy(),
        )
        for r in sorted(indices)
    ]


def _announce(project: Project) -> None:
    project.sources_changed.emit()
    project.components_changed.emit()
    project.factors_changed.emit(None)


def _remove(project: Project, indices: Sequence[int]) -> None:
    R = project.n_components
    keep = np.ones(R, bool)
    keep[list(indices)] = False
    project.components = [c for r, c in enumerate(project.components) if keep[r]]
    project.W = np.ascontiguousarray(project.W[:, keep])
    project.allow_W = np.ascontiguousarray(project.allow_W[:, keep])
    project.W0 = np.ascontiguousarray(project.W0[:, keep])
    project.H = np.ascontiguousarray(project.H[keep, :])
    project.allow_H = np.ascontiguousarray(project.allow_H[keep, :])
    project.H0 = np.ascontiguousarray(project.H0[keep, :])
    if project.W_E is not None:
        project.W_E = np.ascontiguousarray(project.W_E[keep, :])


def _matched_filter(w: np.ndarray) -> np.ndarray:
    n2 = float(np.dot(w.astype(np.float64), w.astype(np.float64)))
    return (w / (n2 if n2 > 0 else 1.0)).astype(w.dtype)


def _insert(project: Project, datas: Sequence[ComponentData]) -> None:
    """Insert so that data ``d`` ends at position ``d.index`` (indices of the result)."""
    datas = sorted(datas, key=lambda d: d.index)
    R = project.n_components + len(datas)
    pos = np.array([d.index for d in datas], dtype=int)
    if len(set(pos.tolist())) != len(pos) or (pos.size and (pos.min() < 0 or pos.max() >= R)):
        raise ValueError(f"bad insert positions {pos.tolist()} for {R} components")
    others = np.setdiff1d(np.arange(R), pos)

    def cols(old: np.ndarray, new_cols: list[np.ndarray]) -> np.ndarray:
        out = np.empty((old.shape[0], R), dtype=old.dtype)
        out[:, others] = old
        if new_cols:
            out[:, pos] = np.stack(new_cols, axis=1).astype(old.dtype, copy=False)
        return out

    def rows(old: np.ndarray, new_rows: list[np.ndarray]) -> np.ndarray:
        out = np.empty((R, old.shape[1]), dtype=old.dtype)
        out[others, :] = old
        if new_rows:
            out[pos, :] = np.stack(new_rows, axis=0).astype(old.dtype, copy=False)
        return out

    comps: list[Component | None] = [None] * R
    for i, c in zip(others, project.components, strict=True):
        comps[i] = c
    for d in datas:
        comps[d.index] = replace(d.component)
    project.components = comps  # type: ignore[assignment]
    project.W = cols(project.W, [d.w for d in datas])
    project.allow_W = cols(project.allow_W, [d.allow_w for d in datas])
    project.W0 = cols(project.W0, [d.w0 for d in datas])
    project.H = rows(project.H, [d.h for d in datas])
    project.allow_H = rows(project.allow_H, [d.allow_h for d in datas])
    project.H0 = rows(project.H0, [d.h0 for d in datas])
    if project.W_E is not None:
        project.W_E = rows(project.W_E, [d.w_e if d.w_e is not None else _matched_filter(d.w) for d in datas])


class InsertComponents(Edit):
    """Add components (each ends at its ``ComponentData.index``)."""

    def __init__(self, datas: Sequence[ComponentData], text: str | None = None) -> None:
        if not datas:
            raise ValueError("nothing to add")
        self.datas = list(datas)
        names = [d.component.name for d in self.datas]
        self.text = text or ("add " + (names[0] if len(names) == 1 else f"{len(names)} components"))

    def do(self, project: Project) -> None:
        _insert(project, self.datas)
        _announce(project)

    def undo(self, project: Project) -> None:
        _remove(project, [d.index for d in self.datas])
        _announce(project)


class RemoveComponents(Edit):
    """Delete components (at least one must remain)."""

    def __init__(self, project: Project, indices: Sequence[int], text: str | None = None) -> None:
        self.indices = sorted({int(r) for r in indices})
        R = project.n_components
        if not self.indices:
            raise ValueError("no component selected")
        if any(not 0 <= r < R for r in self.indices):
            raise ValueError(f"component indices must be 0..{R - 1}")
        if len(self.indices) >= R:
            raise ValueError("cannot delete every component")
        names = [project.components[r].name for r in self.indices]
        self.text = text or ("delete " + (names[0] if len(names) == 1 else f"{len(names)} components"))
        self._datas: list[ComponentData] = []

    def do(self, project: Project) -> None:
        self._datas = _take(project, self.indices)
        _remove(project, self.indices)
        _announce(project)

    def undo(self, project: Project) -> None:
        _insert(project, self._datas)
        _announce(project)


_KIND_RANK = {"pitch": 0, "onset": 1, "free": 2}


def _sort_key(project: Project, c: Component) -> tuple:
    rank = {s.name: i for i, s in enumerate(project.sources)}
    return (_KIND_RANK.get(c.kind, 3), rank.get(c.source, len(rank)), -1 if c.pitch is None else c.pitch)


def insert_index(project: Project, comp: Component, components: Sequence[Component] | None = None) -> int:
    """Where a new component goes: after the last one that sorts before it by (kind, source order,
    pitch) — pitch components, then onset templates, then free ones, as a score initialises them."""
    k = _sort_key(project, comp)
    pos = 0
    for i, c in enumerate(project.components if components is None else components):
        if _sort_key(project, c) <= k:
            pos = i + 1
    return pos


def insert_components_edit(
    project: Project, datas: Sequence[ComponentData], text: str | None = None
) -> InsertComponents:
    """:class:`InsertComponents` adding ``datas`` at their sorted places (their ``index`` is recomputed
    so that several new components can be added in one step)."""
    order: list[Component] = list(project.components)
    for d in datas:
        order.insert(insert_index(project, d.component, order), d.component)
    where = {id(c): i for i, c in enumerate(order)}
    for d in datas:
        d.index = where[id(d.component)]
    return InsertComponents(datas, text)


def _h_fill(project: Project, kind: str) -> float:
    """Starting activation of a new component: 1 before any run, else the mean positive allowed
    activation of the components of the same kind (of all components when there are none)."""
    if not project.runs:
        return 1.0
    rows = [r for r, c in enumerate(project.components) if c.kind == kind] or list(range(project.n_components))
    if not rows:
        return 1.0
    H = project.H[rows]
    v = fill_values(H.reshape(1, -1), project.allow_H[rows].reshape(1, -1), axis=1)
    return float(v.ravel()[0])


def pitch_component_data(
    project: Project,
    pitch: int,
    source: str = "",
    frames: tuple[int, int] | str | None = None,
    tol: float | None = None,
) -> ComponentData:
    """A pitch component: harmonic template (``tol``: the project's ``tol_pitch`` by default),
    activation allowed everywhere (``frames`` None), over frames ``(n0, n1)`` (inclusive) or, with
    ``frames="notes"``, around the score notes of that pitch in ``source``."""
    pitch = int(pitch)
    if not 0 <= pitch <= 127:
        raise ValueError(f"pitch must be a MIDI number 0..127, got {pitch}")
    source = "" if source in ("", RESIDUAL) else source
    if source and not any(s.name == source for s in project.sources):
        raise ValueError(f'there is no source called "{source}"')
    a = project.analysis.params
    tol = project.score.tol_pitch if tol is None else float(tol)
    tmpl, allow_w = harmonic_template(
        pitch,
        project.n_bins,
        a.sr,
        a.n_fft,
        tol=tol,
        n_harmonics=project.score.n_harmonics,
        dtype=project.W.dtype,
    )
    if not allow_w.any():
        raise ValueError(f"{pitch_name(pitch)} is above the Nyquist frequency ({a.sr / 2:g} Hz)")
    N = project.n_frames
    comp = Component(
        unique_name(project, f"{pitch_name(pitch)} {source}" if source else pitch_name(pitch)),
        pitch,
        "pitch",
        source,
        False,
        _colour_for(project.sources, source),
    )
    if frames is None:
        allow_h = np.ones(N, bool)
    elif isinstance(frames, str):
        if frames != "notes":
            raise ValueError(f"frames must be None, (n0, n1) or 'notes', got {frames!r}")
        notes = [
            n for n in score_notes(project) if n.pitch == pitch and (n.group == source or not project.score.per_group)
        ]
        if not notes:
            raise ValueError(f"the score has no {pitch_name(pitch)} notes in {source or RESIDUAL}")
        allow_h = note_region(project, "pitch", notes, project.score)
    else:
        n0, n1 = sorted(int(v) for v in frames)
        allow_h = np.zeros(N, bool)
        allow_h[max(n0, 0) : min(n1, N - 1) + 1] = True
    if not allow_h.any():
        raise ValueError("the activation would be forbidden everywhere")
    hv = _h_fill(project, "pitch")
    return ComponentData(
        insert_index(project, comp),
        comp,
        w=tmpl.astype(project.W.dtype),
        h=np.where(allow_h, hv, 0).astype(project.H.dtype),
        allow_w=allow_w,
        allow_h=allow_h,
        w0=tmpl.astype(project.W0.dtype),
        h0=allow_h.astype(project.H0.dtype),
    )


def onset_component_data(
    project: Project, r: int, pre: float | None = None, post: float | None = None
) -> ComponentData:
    """An onset template for pitch component ``r``: broadband template (0.1 in every bin), activation
    allowed from ``pre`` before to ``post`` after each onset of its score notes (the project's
    ``tol_onset_pre``/``tol_onset_post`` by default); without score notes, where the pitch component
    itself is allowed (a component added for 2–8 s gets an onset template for 2–8 s)."""
    c = project.components[r]
    if c.kind != "pitch" or c.pitch is None:
        raise ValueError(f"{c.name} is not a pitch component")
    params = project.score
    if pre is not None or post is not None:
        params = replace(
            params,
            tol_onset_pre=params.tol_onset_pre if pre is None else float(pre),
            tol_onset_post=params.tol_onset_post if post is None else float(post),
        )
    notes = component_notes(project, r)
    if notes:
        allow_h = note_region(project, "onset", notes, params)
    else:
        allow_h = np.asarray(project.allow_H[r], bool).copy()
    if not allow_h.any():
        raise ValueError(f"the onsets of {c.name} all lie outside the recording")
    tmpl, allow_w = onset_template(project.n_bins, ONSET_TEMPLATE_VALUE, dtype=project.W.dtype)
    base = f"{pitch_name(c.pitch)} {c.source} onset" if c.source else f"{pitch_name(c.pitch)} onset"
    comp = Component(unique_name(project, base), c.pitch, "onset", c.source, False, c.colour)
    hv = _h_fill(project, "onset")
    return ComponentData(
        insert_index(project, comp),
        comp,
        w=tmpl,
        h=np.where(allow_h, hv, 0).astype(project.H.dtype),
        allow_w=allow_w,
        allow_h=allow_h,
        w0=tmpl.astype(project.W0.dtype),
        h0=allow_h.astype(project.H0.dtype),
    )
