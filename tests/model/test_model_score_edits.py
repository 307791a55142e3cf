"""Score edits (model/score_edits.py): the components and regions follow the notes, one undo step that
restores everything exactly; the source brush changes exactly the entries it should; the warp helpers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from demixer.core.notes import Note
from demixer.core.sync import Alignment
from demixer.model.paint import component_notes, note_region
from demixer.model.score_edits import (
    ScoreAlignment,
    ScoreEdit,
    add_anchor,
    rewarp,
    source_brush_edit,
    to_score_times,
)

ARRAYS = ("W", "H", "allow_W", "allow_H", "W0", "H0")


def state(p):
    return (list(p.notes), [dataclasses.replace(c) for c in p.components], {a: getattr(p, a).copy() for a in ARRAYS},
            p.score, p.score_alignment)


def assert_same(p, st):
    notes, comps, arrays, score, al = st
    assert p.notes == notes and p.components == comps and p.score == score and p.score_alignment is al
    for a in ARRAYS:
        assert np.array_equal(getattr(p, a), arrays[a]), a


def row(p, name):
    return next(i for i, c in enumerate(p.components) if c.name == name)


def test_a_new_pitch_gets_a_component_allowed_around_its_note_and_undo_removes_it(demo_project):
    p = demo_project
    before = state(p)
    src = p.components[0].source
    note = Note(5.0, 5.5, 100, src)
    e = ScoreEdit(p, list(p.notes) + [note], "add note")
    e.do(p)
    names = [c.name for c in p.components if c.pitch == 100]
    assert names and all(src in n for n in names)
    r = row(p, names[0])
    assert p.components[r].kind == "pitch"
    want = note_region(p, "pitch", [note], p.score)
    assert np.array_equal(p.allow_H[r], want) and want[int(5.2 / p.duration * p.n_frames)]
    assert (p.H[r][~want] == 0).all() and (p.H[r][want] > 0).all()
    e.undo(p)
    assert_same(p, before)
    e.do(p)  # redo gives the same again
    assert np.array_equal(p.allow_H[row(p, names[0])], want)


def test_moving_a_note_moves_its_regions_and_keeps_painted_entries_elsewhere(demo_project):
    p = demo_project
    r = next(r for r, c in enumerate(p.components) if c.kind == "pitch" and len(component_notes(p, r)) >= 2)
    ns = component_notes(p, r)
    i = p.notes.index(ns[0])
    far = p.n_frames - 1  # a painted entry far from the note
    p.allow_H[r, far] = not p.allow_H[r, far]
    painted = bool(p.allow_H[r, far])
    before = state(p)
    moved = dataclasses.replace(p.notes[i], onset=p.notes[i].onset + 1.0, offset=p.notes[i].offset + 1.0)
    new = list(p.notes)
    new[i] = moved
    e = ScoreEdit(p, new, "move")
    e.do(p)
    assert p.n_components == len(before[1])
    others = [n for n in ns if n is not ns[0]]
    want = note_region(p, p.components[r].kind, others + [moved], p.score)
    got = p.allow_H[r].copy()
    got[far] = want[far]
    assert np.array_equal(got, want)
    assert bool(p.allow_H[r, far]) == painted or want[far]
    e.undo(p)
    assert_same(p, before)


def test_deleting_the_last_note_of_a_pitch_removes_its_components(demo_project):
    p = demo_project
    pitch = min({n.pitch for n in p.notes}, key=lambda q: sum(n.pitch == q for n in p.notes))
    group = next(n.group for n in p.notes if n.pitch == pitch)
    R = p.n_components
    before = state(p)
    e = ScoreEdit(p, [n for n in p.notes if not (n.pitch == pitch and n.group == group)], "delete")
    e.do(p)
    gone = [c for c in before[1] if c.pitch == pitch and c.source == group]
    assert gone and p.n_components == R - len(gone)
    assert not any(c.pitch == pitch and c.source == group for c in p.components)
    e.undo(p)
    assert_same(p, before)


def test_a_split_score_is_regrouped_once_so_notes_can_change_source(small_project):
    p = small_project
    p.notes = [Note(0.0, 0.02, 60, ""), Note(0.02, 0.05, 76, "")]
    p.score = dataclasses.replace(p.score, split_pitch=70)
    e = ScoreEdit(p, [dataclasses.replace(n, group="low" if n.pitch < 70 else "high") for n in p.notes], "edit")
    e.do(p)
    assert p.score.split_pitch is None and [n.group for n in p.notes] == ["low", "high"]
    e.undo(p)
    assert p.score.split_pitch == 70


def test_source_brush_changes_exactly_the_reached_entries(small_project):
    p = small_project
    K, N = p.n_bins, p.n_frames
    cells = np.zeros((K, N), bool)
    cells[5:9, 12:20] = True  # bins 5..8 in frames 12..19
    cells[25:27, 30] = True  # bins 25..26 in frame 30 (component 0's template is forbidden there)
    before = p.allow_H.copy()
    e = source_brush_edit(p, "rh", cells)
    assert e
    own = {r for r, c in enumerate(p.components) if c.source == "rh"}
    want = before.copy()
    for r in range(p.n_components):
        for n in range(N):
            bins = np.flatnonzero(cells[:, n])
            if bins.size and p.allow_W[bins, r].any():
                want[r, n] = r in own
    e.do(p)
    assert np.array_equal(p.allow_H, want)
    assert before[0, 30] == p.allow_H[0, 30]  # component 0 cannot sound in bins 25..26: untouched
    assert (p.H[~p.allow_H] == 0).all() and (p.H0[~p.allow_H] == 0).all()
    e.undo(p)
    assert np.array_equal(p.allow_H, before)
    with pytest.raises(ValueError, match="no source"):
        source_brush_edit(p, "strings", cells)
    assert not source_brush_edit(p, "rh", np.zeros((K, N), bool))


def test_warp_helpers():
    al = Alignment(score_times=np.array([0.0, 2.0, 4.0]), audio_times=np.array([1.0, 2.0, 5.0]), confidence=1.0,
                   score_span=(0.0, 4.0))
    assert to_score_times(al, [1.0, 1.5, 3.5]) == pytest.approx([0.0, 1.0, 3.0])
    assert add_anchor([(1.0, 1.0), (3.0, 4.0)], 2.0, 4.5) == [(1.0, 1.0), (2.0, 4.5)]  # (3, 4) would cross
    assert add_anchor([(1.0, 1.0)], 1.005, 2.0) == [(1.005, 2.0)]  # same score time: replaced
    st = ScoreAlignment((Note(0.0, 2.0, 60), Note(2.0, 4.0, 62)), (), al)
    notes = [Note(1.1, 2.0, 60), Note(2.0, 5.0, 62)]  # note 0 sits 0.1 s after the warp
    al2 = dataclasses.replace(al, audio_times=np.array([2.0, 3.0, 6.0]))
    out = rewarp(notes, st, al2, 10.0, pinned={1: (3.5, 6.5)})
    assert out[0].onset == pytest.approx(2.1) and (out[1].onset, out[1].offset) == (3.5, 6.5)
