"""The Components dock: the table, rename / lock / delete / assign / add pitch / add onset — each one
undo step, undone exactly — and the History dock."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from demixer.core.constraints import activation_regions, harmonic_template
from demixer.gui.components_panel import COL_LOCKED, COL_NAME, COL_SOURCE, COLUMNS, parse_pitch
from demixer.model.paint import component_notes


def row_of(p, name):
    return next(i for i, c in enumerate(p.components) if c.name == name)


def state(p):
    arrays = {k: getattr(p, k).copy() for k in ("W", "H", "allow_W", "allow_H", "W0", "H0")}
    return (
        arrays,
        [(c.name, c.pitch, c.kind, c.source, c.locked, c.colour) for c in p.components],
        [(s.name, s.colour) for s in p.sources],
    )


def assert_state(p, st):
    arrays, comps, sources = st
    for k, a in arrays.items():
        assert getattr(p, k).tobytes() == a.tobytes() and getattr(p, k).shape == a.shape, k
    assert [(c.name, c.pitch, c.kind, c.source, c.locked, c.colour) for c in p.components] == comps
    assert [(s.name, s.colour) for s in p.sources] == sources


@pytest.fixture()
def ed(window):
    return window.editing


def test_parse_pitch():
    assert parse_pitch("60") == 60 and parse_pitch("C4") == 60 and parse_pitch("c#4") == 61
    assert parse_pitch("Db4") == 61 and parse_pitch("A4") == 69 and parse_pitch("C-1") == 0
    for bad in ("H4", "C", "200", "G9x"):
        with pytest.raises(ValueError):
            parse_pitch(bad)


def test_table_lists_the_components(window, ed):
    p = window.project
    t = ed.panel.table
    assert [t.horizontalHeaderItem(i).text() for i in range(t.columnCount())] == list(COLUMNS)
    assert t.rowCount() == p.n_components
    r = row_of(p, "C5 rh onset")
    assert [t.item(r, c).text() for c in range(4)] == ["C5 rh onset", "C5 (72)", "onset", "rh"]
    assert t.item(r, COL_LOCKED).checkState() == Qt.CheckState.Unchecked
    assert ed.components_dock.windowTitle() == "Components"
    assert ed.history_dock.view.stack() is window.undo.stack


def test_rename_by_editing_the_name_cell_is_undoable(window, ed):
    p = window.project
    r = row_of(p, "C5 rh")
    st = state(p)
    ed.panel.table.item(r, COL_NAME).setText("melody C")
    assert p.components[r].name == "melody C"
    assert window.undo.stack.count() == 1 and window.act_undo.text() == "&Undo rename C5 rh → melody C"
    assert window.h_pane.comp_axis.labels[r] == p.components[r].label
    window.undo.undo()
    assert_state(p, st)
    assert ed.panel.table.item(r, COL_NAME).text() == "C5 rh"
    # a name already in use gets a suffix
    ed.rename_component(r, "D5 rh")
    assert p.components[r].name == "D5 rh (2)"


def test_lock_checkbox_locks_the_template_in_runs_and_undoes(window, ed, run_to_end):
    p = window.project
    r = row_of(p, "E5 rh")
    st = state(p)
    ed.panel.table.item(r, COL_LOCKED).setCheckState(Qt.CheckState.Checked)
    assert p.components[r].locked and window.undo.stack.count() == 1
    lock = p.run_inputs()["lock"]
    assert lock is not None and lock[r] and lock.sum() == 1
    W_before = p.W[:, r].copy()
    run_to_end(window, n_iter=3)
    np.testing.assert_array_equal(p.W[:, r], W_before)  # a locked template is not updated
    window.undo.undo()  # the run
    window.undo.undo()  # the lock
    assert_state(p, st)
    assert p.run_inputs()["lock"] is None
    # lock / unlock buttons act on the selection
    ed.panel.select_rows([0, 1, 2])
    ed.panel.lock_button.click()
    assert p.lock[:3].all() and window.undo.stack.count() == 1
    ed.panel.unlock_button.click()
    assert not p.lock.any() and window.undo.stack.count() == 2


def test_delete_selected_components_and_undo(window, ed):
    p = window.project
    R = p.n_components
    st = state(p)
    names = [p.components[i].name for i in (3, 7)]
    ed.panel.select_rows([3, 7])
    ed.panel.delete_button.click()
    assert p.n_components == R - 2 and not {c.name for c in p.components} & set(names)
    assert p.W.shape[1] == R - 2 and p.H.shape[0] == R - 2 and ed.panel.table.rowCount() == R - 2
    assert window.h_pane.image.image.shape[0] == R - 2  # the panes follow
    assert ed.mask_H.item.image.shape[:2] == p.allow_H.shape
    assert window.h_pane.vb.state["limits"]["yLimits"][1] == R - 2
    assert window.act_undo.text() == "&Undo delete 2 components"
    window.undo.undo()
    assert_state(p, st)
    assert window.h_pane.image.image.shape[0] == R and ed.panel.table.rowCount() == R
    window.undo.redo()
    assert p.n_components == R - 2


def test_assign_from_the_source_cell_and_the_menu(window, ed):
    p = window.project
    r = row_of(p, "C5 rh")
    st = state(p)
    ed.panel.source_edited(r, "lh")  # what the combo box in the source cell does
    assert p.components[r].source == "lh" and window.undo.stack.count() == 1
    assert ed.panel.table.item(r, COL_SOURCE).text() == "lh"
    # the combo box editor itself
    t = ed.panel.table
    index = t.model().index(r, COL_SOURCE)
    t.edit(index)
    editor = t.indexWidget(index)
    assert editor is not None and [editor.itemText(i) for i in range(editor.count())] == ["lh", "rh", "residual"]
    editor.setCurrentText("residual")
    editor.activated.emit(editor.currentIndex())
    assert p.components[r].source == "" and "residual" in p.source_names()
    assert window.undo.stack.count() == 2
    window.undo.undo()
    window.undo.undo()
    assert_state(p, st)
    # "Assign to" on a multiple selection: one step
    ed.panel.select_rows([0, 1, 2, 3])
    ed.panel._fill_assign_menu()
    acts = {a.text(): a for a in ed.panel.assign_menu.actions()}
    acts["rh"].trigger()
    assert all(p.components[i].source == "rh" for i in range(4)) and window.undo.stack.count() == 1
    assert window.sources_pane.topLevelItem(1).text(1) == str(len(p.source_components("rh")))
    window.undo.undo()
    assert_state(p, st)


def test_add_pitch_component_through_the_dialog(window, ed):
    p = window.project
    R = p.n_components
    st = state(p)
    dlg = ed.ask_add_pitch()
    assert dlg is not None and dlg.isVisible()
    dlg.pitch.setText("C#5")
    dlg.source.setCurrentText("rh")
    dlg.in_range.setChecked(True)
    dlg.t0.setValue(2.0)
    dlg.t1.setValue(4.0)
    assert "C#5" in dlg.pitch_info.text()
    dlg.done(QDialog.DialogCode.Accepted)
    assert p.n_components == R + 1
    r = row_of(p, "C#5 rh")
    c = p.components[r]
    assert (c.pitch, c.kind, c.source) == (73, "pitch", "rh")
    a = p.analysis.params
    tmpl, allow = harmonic_template(73, p.n_bins, a.sr, a.n_fft, tol=p.score.tol_pitch, n_harmonics=p.score.n_harmonics)
    np.testing.assert_array_equal(p.allow_W[:, r], allow)
    n0, n1 = int(2.0 / p.duration * p.n_frames), int(4.0 / p.duration * p.n_frames)
    assert p.allow_H[r, n0 : n1 + 1].all() and p.allow_H[r].sum() == n1 - n0 + 1
    assert not p.W[~p.allow_W].any() and not p.H[~p.allow_H].any()
    assert ed.selected_components() == [r]  # the new component is selected
    assert window.act_undo.text() == "&Undo add pitch component C#5 rh"
    window.undo.undo()
    assert_state(p, st)
    # everywhere, and around the score notes
    assert ed.add_pitch_component(40, "lh")
    assert p.allow_H[row_of(p, "E2 lh")].all()
    assert ed.add_pitch_component(72, "lh", "notes") is False  # no C5 in the left hand
    assert "no C5 notes" in ed.messages[-1]


def test_add_onset_template_is_allowed_only_around_the_onsets(window, ed):
    p = window.project
    # the demo already has onset templates: delete C5's, then add it back from the table
    ed.delete_components([row_of(p, "C5 rh onset")])
    R = p.n_components
    r = row_of(p, "C5 rh")
    ed.panel.select_rows([r])
    assert ed.panel.add_onset_button.isEnabled()
    ed.panel.add_onset_button.click()
    assert p.n_components == R + 1
    new = row_of(p, "C5 rh onset")
    c = p.components[new]
    assert (c.kind, c.pitch, c.source) == ("onset", 72, "rh")
    notes = component_notes(p, r)
    a = p.analysis.params
    exp = activation_regions(
        [(n.onset, n.onset) for n in notes], p.n_frames, a.sr, a.hop, p.score.tol_onset_pre, p.score.tol_onset_post
    )
    np.testing.assert_array_equal(p.allow_H[new], exp)
    assert exp.sum() < 0.5 * p.n_frames
    assert np.allclose(p.W[:, new], 0.1) and p.allow_W[:, new].all()
    assert window.undo.stack.count() == 2
    window.undo.undo()
    assert p.n_components == R
    # a second onset template for the same pitch is refused
    window.undo.redo()
    ed.panel.select_rows([row_of(p, "C5 rh")])
    assert ed.add_onset_templates(ed.selected_components()) is False
    assert window.undo.stack.count() == 2


def test_history_dock_lists_the_steps(window, ed):
    p = window.project
    view = ed.history_dock.view
    ed.rename_component(0, "bass")
    ed.set_locked([1], True)
    assert view.model().rowCount() == 3  # "project opened" + two steps
    assert window.undo.stack.text(1) == f"lock {p.components[1].name}"
    window.undo.stack.setIndex(0)
    assert p.components[0].name == "C3 lh" and not p.components[1].locked
    assert "History" in [a.text() for a in window.menuBar().actions()[3].menu().actions()]


def test_edits_are_refused_while_a_run_is_going(window, ed, qtbot):
    ctrl = window.start_run(n_iter=100_000)
    try:
        qtbot.waitUntil(lambda: ctrl.last is not None, timeout=30_000)
        assert ed.rename_component(0, "x") is False
        assert window.undo.stack.count() == 0 and "Cancel the run" in ed.messages[-1]
        window.params_pane.tol_note_post.setValue(1.5)
        assert window.undo.stack.count() == 0
        assert window.params_pane.tol_note_post.value() == pytest.approx(window.project.score.tol_note_post)
    finally:
        window.bench.abandon_run()


def test_clicking_the_component_axis_selects_components(window, ed):
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    h = window.h_pane
    axis = h.comp_axis

    def click(r, mods=Qt.KeyboardModifier.NoModifier):
        y = h.vb.mapViewToScene(QPointF(0.0, r + 0.5)).y()
        pos = h.mapFromScene(QPointF(axis.sceneBoundingRect().center().x(), y))
        vp = h.viewport()
        for t, b, bs in (
            (QEvent.Type.MouseButtonPress, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton),
            (QEvent.Type.MouseButtonRelease, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton),
        ):
            QApplication.sendEvent(vp, QMouseEvent(t, QPointF(pos), QPointF(vp.mapToGlobal(pos)), b, bs, mods))

    click(5)
    assert ed.selected_components() == [5]
    click(8, Qt.KeyboardModifier.ShiftModifier)
    assert ed.selected_components() == [5, 6, 7, 8]
    click(6, Qt.KeyboardModifier.ControlModifier)
    assert ed.selected_components() == [5, 7, 8]
    assert ed.highlight_H.selected == [5, 7, 8]
    # then "Assign to" works on that selection
    assert ed.assign(ed.selected_components(), "rh")
    assert [window.project.components[i].source for i in (5, 7, 8)] == ["rh"] * 3
