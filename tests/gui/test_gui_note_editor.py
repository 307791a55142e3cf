"""The note editor and the source brush on V (issue 16 items 2, 3), by real mouse events on V's viewport:
add, move, resize, delete, assign, undo; the components and regions follow; a source-brush stroke changes
exactly the allowed entries it should, as one undo step."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, Qt
from support.viewport import LEFT, NONE, drag, send, to_viewport

from demixer.gui.note_editor import pitch_to_y
from demixer.gui.tools import NOTES, SOURCE_BRUSH
from demixer.model.paint import component_notes, note_region


def click(pane, pos, mods=Qt.KeyboardModifier.NoModifier):
    send(pane, QEvent.Type.MouseButtonPress, pos, LEFT, LEFT, mods)
    send(pane, QEvent.Type.MouseButtonRelease, pos, LEFT, NONE, mods)


def double_click(pane, pos):
    click(pane, pos)
    send(pane, QEvent.Type.MouseButtonDblClick, pos, LEFT, LEFT)
    send(pane, QEvent.Type.MouseButtonRelease, pos, LEFT, NONE)




def at(window, t, pitch):
    return to_viewport(window.v_pane, t, pitch_to_y(window, pitch))


def comps_of(p, pitch, source):
    return [r for r, c in enumerate(p.components) if c.pitch == pitch and c.source == source]


@pytest.fixture()
def editor(window, qtbot):
    window.editing.tools.set_tool(NOTES)
    window.v_pane.setXRange(4.0, 8.0, padding=0)
    window.v_pane.setYRange(pitch_to_y(window, 40), pitch_to_y(window, 100), padding=0)
    qtbot.wait(30)
    return window.editing.note_editor


def lone_note(p, t0=4.5, t1=7.5):
    """A note in [t0, t1], at least 0.25 s long, whose pitch band has no other note overlapping it."""
    for i, n in enumerate(p.notes):
        if t0 < n.onset and n.offset < t1 and n.offset - n.onset >= 0.25:
            if not any(j != i and m.pitch == n.pitch and m.onset < n.offset + 0.1 and m.offset > n.onset - 0.1
                       for j, m in enumerate(p.notes)):
                return i
    raise AssertionError("no lone note")


def test_double_click_adds_a_note_with_a_new_component_and_undo_removes_both(window, editor):
    p = window.bench.project
    src = p.sources[0].name
    editor.set_source(src)
    n0, R0 = len(p.notes), p.n_components
    allow0 = p.allow_H.copy()
    assert not comps_of(p, 96, src)
    double_click(window.v_pane, at(window, 6.0, 96))
    assert len(p.notes) == n0 + 1
    new = p.notes[-1]
    assert new.pitch == 96 and new.group == src and abs(new.onset - 6.0) < 0.03
    rows = comps_of(p, 96, src)
    assert rows and p.n_components > R0
    r = next(r for r in rows if p.components[r].kind == "pitch")
    assert np.array_equal(p.allow_H[r], note_region(p, "pitch", [new], p.score))
    assert editor.selected == [len(p.notes) - 1]
    window.bench.undo.undo()
    assert len(p.notes) == n0 and p.n_components == R0 and np.array_equal(p.allow_H, allow0)


def test_drag_moves_a_note_in_time_and_pitch_and_the_regions_follow(window, editor):
    p = window.bench.project
    i = lone_note(p)
    n = p.notes[i]
    notes0, allow0, R0 = list(p.notes), p.allow_H.copy(), p.n_components
    mid = 0.5 * (n.onset + n.offset) - 0.05
    depth = window.bench.undo.stack.count()
    drag(window.v_pane, at(window, mid, n.pitch), at(window, mid + 0.5, n.pitch + 2), steps=6)
    assert window.bench.undo.stack.count() == depth + 1  # one gesture, one undo step
    m = p.notes[i]
    assert m.pitch == n.pitch + 2
    assert m.onset - n.onset == pytest.approx(0.5, abs=0.03)
    assert m.offset - m.onset == pytest.approx(n.offset - n.onset)
    # the component of the new pitch (made if missing) is allowed around the moved note
    r = next(r for r in comps_of(p, m.pitch, m.group) if p.components[r].kind == "pitch")
    assert m in component_notes(p, r)
    assert np.array_equal(p.allow_H[r], note_region(p, "pitch", component_notes(p, r), p.score))
    k = int(0.5 * (m.onset + m.offset) / p.duration * p.n_frames)
    assert p.allow_H[r, k]
    window.bench.undo.undo()
    assert p.notes == notes0 and np.array_equal(p.allow_H, allow0) and p.n_components == R0


def test_dragging_the_right_end_resizes_a_note(window, editor):
    p = window.bench.project
    i = lone_note(p)
    n = p.notes[i]
    allow0 = p.allow_H.copy()
    px = window.v_pane.vb.viewPixelSize()[0]
    end = to_viewport(window.v_pane, n.offset - 2 * px, pitch_to_y(window, n.pitch))
    drag(window.v_pane, end, QPoint(end.x() + int(round(0.6 / px)), end.y()), steps=6)
    m = p.notes[i]
    assert m.onset == n.onset and m.pitch == n.pitch
    assert m.offset - n.offset == pytest.approx(0.6, abs=0.03)
    r = next(r for r in comps_of(p, n.pitch, n.group) if p.components[r].kind == "pitch")
    k = int((m.offset + p.score.tol_note_post - 0.05) / p.duration * p.n_frames)
    assert p.allow_H[r, k]  # the region grew with the note
    window.bench.undo.undo()
    assert p.notes[i] == n and np.array_equal(p.allow_H, allow0)


def test_click_selects_delete_key_deletes_and_assign_changes_the_source(window, editor, qtbot):
    p = window.bench.project
    i = lone_note(p)
    n = p.notes[i]
    count = len(p.notes)
    click(window.v_pane, at(window, 0.5 * (n.onset + n.offset), n.pitch))
    assert editor.selected == [i]
    # assign to the other source
    other = next(s.name for s in p.sources if s.name != n.group)
    editor.set_source(other)
    editor.act_assign.trigger()
    assert p.notes[i].group == other
    assert any(p.notes[i] in component_notes(p, r) for r in comps_of(p, n.pitch, other))
    window.bench.undo.undo()
    assert p.notes[i] == n
    # the Delete key on V (the pane has the focus after the click)
    window.activateWindow()
    window.v_pane.setFocus()
    qtbot.keyClick(window.v_pane, Qt.Key.Key_Delete)
    assert len(p.notes) == count - 1 and n not in p.notes
    window.bench.undo.undo()
    assert len(p.notes) == count and p.notes[i] == n
    # arrows: a semitone up, 50 ms later — one undo step each
    editor.select([i])
    qtbot.keyClick(window.v_pane, Qt.Key.Key_Up)
    qtbot.keyClick(window.v_pane, Qt.Key.Key_Right)
    assert p.notes[i].pitch == n.pitch + 1 and p.notes[i].onset == pytest.approx(n.onset + 0.05)
    window.bench.undo.undo()
    window.bench.undo.undo()
    assert p.notes[i] == n


def test_a_source_brush_stroke_changes_exactly_the_entries_it_should(window, qtbot):
    p = window.bench.project
    tools = window.editing.tools
    tools.set_tool(SOURCE_BRUSH)
    tools.set_brush_px(2)  # a thin stroke: on a short V pane 4 px span several semitones
    window.v_pane.setXRange(4.0, 8.0, padding=0)
    qtbot.wait(30)
    ed = window.editing.note_editor
    src = p.sources[0].name
    ed.set_source(src)
    allow0 = p.allow_H.copy()
    depth = window.bench.undo.stack.count()
    y = pitch_to_y(window, 64)
    a, b = to_viewport(window.v_pane, 5.0, y), to_viewport(window.v_pane, 6.0, y)
    drag(window.v_pane, a, b, steps=12)
    assert window.bench.undo.stack.count() == depth + 1
    changed = p.allow_H != allow0
    assert changed.any()
    rows, frames = np.nonzero(changed)
    times = (frames + 0.5) * p.duration / p.n_frames
    assert times.min() > 4.9 and times.max() < 6.1  # only within the stroke's time span
    own = set(p.source_components(src).tolist())
    for r in set(rows.tolist()):  # own components only gained, the others only lost
        if r in own:
            assert (p.allow_H[r][changed[r]]).all()
        else:
            assert not (p.allow_H[r][changed[r]]).any()
    # only components whose templates reach ~E4's frequency (329.6 Hz) were touched
    k = int(round(329.6 / (p.sr / 2) * (p.n_bins - 1)))
    dk = int(round(65.0 / (p.sr / 2) * (p.n_bins - 1)))  # ±65 Hz, whatever the window
    for r in set(rows.tolist()):
        assert p.allow_W[max(k - dk, 0):k + dk, r].any()
    untouched = [r for r in range(p.n_components) if not p.allow_W[:, r].any()]
    assert not changed[untouched].any()
    assert (p.H[~p.allow_H] == 0).all()
    window.bench.undo.undo()
    assert np.array_equal(p.allow_H, allow0)
