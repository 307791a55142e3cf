"""Issue 18: what a new user hit in the window. Each test drives the real widgets and would have caught
the defect it is named after."""

from __future__ import annotations

import numpy as np
import pytest

from demixer.io.audio import read_audio


def test_an_empty_source_exports_silence(window, tmp_path):
    """Item 5: a new source with no components exported a −34 dB file (silent bins were split equally)."""
    p = window.project
    assert window.editing.new_source("thumps", "#ff0000")
    assert p.source_components("thumps").size == 0
    written = window.audition.exporter.export_stems(tmp_path, "wav")
    back = {f.stem: read_audio(f) for f in written}
    assert "thumps" in back
    assert np.max(np.abs(back["thumps"].samples)) == 0.0
    np.testing.assert_allclose(sum(a.samples for a in back.values()), p.audio.samples, atol=2e-5)


# ------------------------------------------------------------------------------------------- helpers
def _type_into_spin(qtbot, spin, text: str) -> None:
    """Real keys: select the field's text, type ``text``, Enter (keyboard tracking is off)."""
    from PySide6.QtCore import Qt

    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text)
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)


def _mouse_move(widget, pos) -> None:
    """A mouse-move event (no button) on ``widget`` (a view's viewport) at ``pos``."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    local = QPointF(pos)
    ev = QMouseEvent(
        QMouseEvent.Type.MouseMove, local, QPointF(widget.mapToGlobal(pos)), Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(widget, ev)


def _click(qtbot, button) -> None:
    from PySide6.QtCore import Qt

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


# ------------------------------------------------------------------------------------------- item 1
def test_closing_during_a_run_asks_and_cancel_keeps_the_run(window, qtbot):
    """Item 1: with no other edit, closing during a run exited at once and the run was lost."""
    assert not window.project_io.is_dirty()
    with qtbot.waitSignal(window.run_started, timeout=10_000):
        window.start_run(n_iter=100_000)
    window.close()
    box = window.project_io.prompt
    assert box is not None and box.isVisible() and window.isVisible()
    assert "still going" in box.text()
    assert {b.text() for b in box.buttons()} == {"&Save", "&Discard", "&Cancel"}  # Alt+S / Alt+D / Alt+C
    _click(qtbot, box.choice_buttons["cancel"])
    qtbot.waitUntil(lambda: window.project_io.prompt is None)
    assert window.isVisible() and window.bench.running()
    window.close()
    _click(qtbot, window.project_io.prompt.choice_buttons["discard"])
    qtbot.waitUntil(lambda: not window.isVisible())
    assert not window.bench.running()


def test_closing_during_a_run_with_save_stops_it_keeps_its_result_and_saves(window, qtbot, tmp_path):
    from demixer.io.project_file import read_project_file

    path = tmp_path / "run.demix"
    assert window.project_io.save_to(path)
    with qtbot.waitSignal(window.run_started, timeout=10_000):
        window.start_run(n_iter=100_000)
    qtbot.waitUntil(lambda: window.display.stats["snapshots"] > 0, timeout=20_000)
    window.close()
    with qtbot.waitSignal(window.run_finished, timeout=30_000):
        _click(qtbot, window.project_io.prompt.choice_buttons["save"])
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10_000)
    saved = read_project_file(path)
    runs = saved.meta["runs"]
    assert len(runs) == 1 and runs[0]["stopped"] == "cancelled"


# ------------------------------------------------------------------------------------------- item 2
def test_no_traceback_when_the_window_goes_after_a_tolerance_change_or_another_file(window, qtbot):
    """Item 2: the undo stack outlives the Parameters dock while the window is torn down; clearing it
    called ``_sync_tolerances`` on a deleted QDoubleSpinBox (RuntimeError on quit)."""
    import shiboken6

    spin = window.params_pane.tol_note_post
    _type_into_spin(qtbot, spin, f"{spin.value() + 0.1:.2f}")
    assert window.undo.stack.count() == 1  # the change is one undo step
    assert window.open_demo()  # another file in the same window
    _type_into_spin(qtbot, spin, f"{spin.value() + 0.1:.2f}")
    window.project_io.mark_unsaved()
    window.close()
    _click(qtbot, window.project_io.prompt.choice_buttons["discard"])
    qtbot.waitUntil(lambda: not window.isVisible())
    stack = window.undo.stack
    shiboken6.delete(window.params_pane)  # the order Qt tears the window down in
    stack.clear()  # emits indexChanged: must reach nothing that reads the deleted spin boxes
    assert stack.count() == 0


# ------------------------------------------------------------------------------------------- item 3
def _answer_input_dialog(qtbot, text: str) -> None:
    """When the next QInputDialog opens: type ``text`` into it with real keys and press Enter."""
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit

    def answer():
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, QInputDialog):
            QTimer.singleShot(20, answer)
            return
        edit = dlg.findChild(QLineEdit)
        edit.selectAll()
        qtbot.keyClicks(edit, text)
        qtbot.keyClick(edit, Qt.Key.Key_Return)

    QTimer.singleShot(0, answer)


def _painted_cells(ed) -> int:
    """Cells of H tinted as painted by the user (red "zero" or green "allow")."""
    from demixer.gui.overlays import PAINTED_ALLOW_RGBA, PAINTED_ZERO_RGBA

    rgba = ed.mask_H.rgba
    return int(sum((rgba == np.array(c, np.uint8)).all(-1).sum() for c in (PAINTED_ZERO_RGBA, PAINTED_ALLOW_RGBA)))


def _click_row(qtbot, table, row: int) -> None:
    from PySide6.QtCore import Qt

    rect = table.visualRect(table.model().index(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_a_renamed_source_keeps_its_components_connected_to_the_score(window, qtbot, tmp_path):
    """Item 3: after renaming ``lh``, a deletion tinted every forbidden left-hand cell as painted, a
    tolerance change moved only the other source's regions, and save/load kept the break."""
    ed = window.editing
    p = window.project
    assert {s.name for s in p.sources} >= {"lh", "rh"}
    assert _painted_cells(ed) == 0
    lh_rows = [r for r, c in enumerate(p.components) if c.source == "lh" and c.kind == "pitch"]
    _answer_input_dialog(qtbot, "left hand")
    ed.sources.ask_rename_source("lh")
    assert "left hand" in [s.name for s in p.sources]
    assert all(p.components[r].source == "left hand" for r in lh_rows)
    assert p.components[lh_rows[0]].name.endswith(" left hand")  # "C3 lh" → "C3 left hand"
    # delete a component (click its row, Edit → Delete): the tint of the others is unchanged
    table = ed.panel.table
    victim = [r for r, c in enumerate(p.components) if c.source == "rh"][0]
    _click_row(qtbot, table, victim)
    assert ed.selected_components() == [victim]
    ed.act_delete.trigger()
    assert _painted_cells(ed) == 0
    # "note: after" moves the renamed source's regions too
    lh = [c.name for c in p.components if c.source == "left hand" and c.kind == "pitch"]
    row = [c.name for c in p.components].index(lh[0])
    before = p.allow_H[row].copy()
    spin = window.params_pane.tol_note_post
    _type_into_spin(qtbot, spin, f"{spin.value() + 0.3:.2f}")
    row = [c.name for c in p.components].index(lh[0])
    assert p.allow_H[row].sum() > before.sum()
    assert _painted_cells(ed) == 0
    # survives save / load
    path = tmp_path / "renamed.demix"
    assert window.project_io.save_to(path)
    assert window.project_io.open_project(path)
    assert _painted_cells(window.editing) == 0
    q = window.project
    assert {n.group for n in q.notes} >= {"left hand"}
    # a component moved to the wrong source shows its score region as painted; Reset repaints
    r = [i for i, c in enumerate(q.components) if c.source == "left hand" and c.kind == "pitch"][0]
    assert window.editing.assign([r], "rh")
    assert _painted_cells(window.editing) > 0
    assert window.editing.reset_sources_from_score()
    assert q.components[r].source == "left hand"
    assert _painted_cells(window.editing) == 0


def _piece_without_groups(tmp_path):
    """A synthesised two-hand piece (notes below and above middle C) and a CSV score without groups:
    opening it splits the notes by pitch into sources "low" and "high" (as ``demixer separate`` does)."""
    import soundfile as sf

    from demixer.core.notes import Note, pitch_to_hz
    from demixer.io.score import write_score_csv

    sr = 22050
    notes = []
    for i in range(8):
        notes.append(Note(0.5 * i, 0.5 * i + 0.45, 48 + (i % 4) * 2, ""))  # low: C3..F#3
        notes.append(Note(0.5 * i + 0.25, 0.5 * i + 0.6, 67 + (i % 3) * 2, ""))  # high: G4..B4
    t = np.arange(int(sr * 4.6)) / sr
    y = np.zeros_like(t)
    for n in notes:
        on = (t >= n.onset) & (t < n.offset)
        env = np.exp(-(t - n.onset) * 4.0) * on
        for k in range(1, 6):
            y += env * np.sin(2 * np.pi * k * pitch_to_hz(n.pitch) * t) / k
    wav, score = tmp_path / "two_hands.wav", tmp_path / "two_hands.csv"
    sf.write(wav, (0.2 * y / np.abs(y).max()).astype(np.float32), sr)
    write_score_csv(score, notes)
    return wav, score


def test_a_renamed_source_of_a_pitch_split_keeps_its_components_connected(window, qtbot, tmp_path):
    """Item 3, split by pitch: the groups "low"/"high" came from ``split_pitch``, not from the notes, so
    renaming "low" left its components without score notes: every forbidden cell tinted as painted."""
    wav, score = _piece_without_groups(tmp_path)
    assert window.files.open_audio(wav, score, align=False)
    ed = window.editing
    p = window.project
    assert p.score.split_pitch == 60 and {s.name for s in p.sources} >= {"low", "high"}
    assert _painted_cells(ed) == 0
    low_rows = [r for r, c in enumerate(p.components) if c.source == "low" and c.kind == "pitch"]
    assert low_rows
    regions = p.allow_H[low_rows].copy()
    _answer_input_dialog(qtbot, "left hand")
    ed.sources.ask_rename_source("low")
    assert [c.source for c in p.components if c.kind == "pitch"].count("left hand") == len(low_rows)
    assert _painted_cells(ed) == 0
    np.testing.assert_array_equal(p.allow_H[low_rows], regions)  # the regions did not move
    # delete a component (click its row, Edit → Delete): still nothing tinted as painted
    table = ed.panel.table
    victim = [r for r, c in enumerate(p.components) if c.source == "high"][0]
    _click_row(qtbot, table, victim)
    ed.act_delete.trigger()
    assert _painted_cells(ed) == 0
    # "note: after" moves the renamed source's regions too
    name = next(c.name for c in p.components if c.source == "left hand" and c.kind == "pitch")
    row = [c.name for c in p.components].index(name)
    before = p.allow_H[row].copy()
    spin = window.params_pane.tol_note_post
    _type_into_spin(qtbot, spin, f"{spin.value() + 0.3:.2f}")
    row = [c.name for c in p.components].index(name)
    assert p.allow_H[row].sum() > before.sum()
    assert _painted_cells(ed) == 0
    # undo back to the rename's state, and redo: the split comes back and goes again
    window.undo.undo()
    window.undo.undo()
    window.undo.undo()
    assert p.score.split_pitch == 60 and "low" in {s.name for s in p.sources} and _painted_cells(ed) == 0
    window.undo.redo()
    assert p.score.split_pitch is None and {n.group for n in p.notes} == {"left hand", "high"}
    assert _painted_cells(ed) == 0
    # survives save / load, with the tints; a Run respects the same groups
    path = tmp_path / "split.demix"
    assert window.project_io.save_to(path)
    assert window.project_io.open_project(path)
    q = window.project
    assert {n.group for n in q.notes} == {"left hand", "high"} and q.score.split_pitch is None
    assert _painted_cells(window.editing) == 0
    # "Reset sources from the score" keeps every component where it is
    assert not window.editing.reset_sources_from_score() or _painted_cells(window.editing) == 0
    assert {c.source for c in q.components if c.kind == "pitch"} == {"left hand", "high"}


def test_reassigned_components_take_the_new_source_in_their_name(window):
    """Item 12: "B3 bass" stayed "B3 bass" in soprano; a name the user gave is kept."""
    p = window.project
    r = [i for i, c in enumerate(p.components) if c.source == "lh" and c.kind == "pitch"][0]
    assert p.components[r].name.endswith(" lh")
    assert window.editing.assign([r], "rh")
    assert p.components[r].name.endswith(" rh") and p.components[r].source == "rh"
    assert window.editing.rename_component(r, "my bass")
    assert window.editing.assign([r], "lh")
    assert p.components[r].name == "my bass"


# ------------------------------------------------------------------------------------------- items 8, 9
def _screen_sized(window, qtbot, w: int, h: int) -> None:
    window.resize(w, h)
    qtbot.waitUntil(lambda: window.size().width() == w and window.size().height() == h, timeout=3000)


def test_the_window_fits_a_laptop_screen_with_every_dock_open(window, qtbot):
    """Item 8: the minimum size was 663×1005 px and grew 28 px per Listen row."""
    from PySide6.QtWidgets import QDockWidget

    docks = window.findChildren(QDockWidget)
    assert len(docks) >= 6 and all(d.isVisible() or window.tabifiedDockWidgets(d) for d in docks)
    for n in range(12):  # many sources → many Listen rows
        assert window.editing.new_source(f"voice {n}", "#808080")
    assert window.minimumSizeHint().height() <= 700 and window.minimumSizeHint().width() <= 1024
    for w, h in ((1366, 768), (1024, 700)):
        _screen_sized(window, qtbot, w, h)
        # V's time axis, the status bar and every visible dock lie inside the window
        bottom = window.v_pane.mapTo(window, window.v_pane.geometry().bottomLeft() - window.v_pane.pos()).y()
        assert bottom < window.statusBar().y() <= h - window.statusBar().height()
        assert window.v_pane.height() >= 150 and window.h_pane.height() >= 60
        for d in docks:
            if d.isVisible() and not d.isFloating() and not d.visibleRegion().isEmpty():
                assert d.geometry().bottom() <= window.statusBar().y(), d.objectName()
                assert d.height() >= 40, d.objectName()
        # the Listen rows scroll inside their dock
        listen = window.audition.dock
        scroll = listen.widget()
        assert scroll.verticalScrollBar().maximum() > 0 or listen.height() >= scroll.widget().sizeHint().height()


def _visible_rows(tree) -> int:
    """Rows of a tree widget wholly inside its viewport (what the user sees without scrolling)."""
    height = tree.viewport().height()
    rects = [tree.visualItemRect(tree.topLevelItem(i)) for i in range(tree.topLevelItemCount())]
    return sum(1 for r in rects if r.isValid() and r.top() >= 0 and r.bottom() < height)


def test_the_sources_list_shows_at_least_six_rows_on_a_laptop_screen(window, qtbot):
    """Item 12: the Sources list showed about 3 rows at 1366×768 with every dock open."""
    from PySide6.QtWidgets import QDockWidget

    for n in range(6):  # 2 score sources + 6 + the residual: more rows than fit
        assert window.editing.new_source(f"voice {n}", "#808080")
    tree = window.sources_pane
    assert tree.topLevelItemCount() >= 8
    _screen_sized(window, qtbot, 1366, 768)
    qtbot.wait(20)
    docks = window.findChildren(QDockWidget)
    assert all(d.isVisible() for d in docks)  # every dock open (some as tabs)
    assert window.sources_dock.visibleRegion().isEmpty() is False
    assert _visible_rows(tree) >= 6
    # and the other docks of the column keep a usable height
    for d in (window.loss_dock, window.audition.dock, window.editing.components_dock):
        assert d.height() >= 80, d.objectName()


def test_temporary_status_messages_are_visible_next_to_the_cursor_read_out(window, qtbot):
    """Item 9: the cursor read-out filled the status bar; "cannot delete every component" and the other
    temporary messages were drawn in a zero-width area."""
    from PySide6.QtCore import QPointF, Qt

    _screen_sized(window, qtbot, 1024, 700)
    # move the real mouse over V: the read-out fills its own label (with the pitch name)
    vp = window.v_pane
    pos = vp.mapFromScene(vp.vb.mapViewToScene(QPointF(5.0, 440.0)))
    _mouse_move(vp.viewport(), pos)
    qtbot.waitUntil(lambda: "Hz" in window.cursor_label.text(), timeout=3000)
    assert "A4" in window.cursor_label.text() and "cents" in window.cursor_label.text()
    assert "Hz" not in window.statusBar().currentMessage()  # not in the message area
    # delete every component: refused, and the reason shows in the message area
    ed = window.editing
    ed.panel.table.setFocus()
    qtbot.keyClick(ed.panel.table, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert len(ed.selected_components()) == window.project.n_components
    ed.act_delete.trigger()
    msg = window.statusBar().currentMessage()
    assert msg and "every component" in msg
    sb = window.statusBar()
    right = min(w.x() for w in (window.cursor_label, window.run_label, window.progress) if w.isVisible())
    assert sb.fontMetrics().horizontalAdvance(msg) < right - 8  # the whole message fits left of them
    grab = sb.grab().toImage()
    inked = {grab.pixel(x, y) for x in range(4, min(right, 200)) for y in range(2, grab.height() - 2)}
    assert len(inked) > 3  # text was painted in the message area


def test_the_cursor_read_out_names_the_pitch():
    from demixer.gui.factors_view import pitch_text

    assert pitch_text(440.0) == " (A4 +0 cents)"
    assert pitch_text(440.0 * 2 ** (12 / 1200)) == " (A4 +12 cents)"
    assert pitch_text(261.63 * 2 ** (-30 / 1200)) == " (C4 -30 cents)"
    assert pitch_text(0.0) == ""


# ------------------------------------------------------------------------------------------- item 4
def test_the_live_loss_plot_of_a_second_run_has_a_sane_axis_and_its_own_colour(window, qtbot, tmp_path, run_to_end):
    """Item 4: with an earlier curve the live plot's axis read 1e+188 … 1e-200 and the curve was flat;
    runs #1 and #4 shared a colour, and colours changed after reopening."""
    import math

    from demixer.gui.panes import RUN_COLOURS

    lp = window.loss_pane
    _, first = run_to_end(window, n_iter=30)
    losses = [v for v in first.losses if v > 0 and math.isfinite(v)]
    with qtbot.waitSignal(window.run_started, timeout=10_000):
        window.start_run(n_iter=100_000)
    qtbot.waitUntil(lambda: len(lp.live_losses) > 3, timeout=30_000)
    (_, _), (y0, y1) = lp.plot.plotItem.vb.viewRange()
    live = [v for v in lp.live_losses if v > 0]
    assert math.isfinite(y0) and math.isfinite(y1) and y1 - y0 < 10  # log10 units: a few decades at most
    lo = math.log10(min(losses + live))
    hi = math.log10(max(losses + live))
    assert y0 <= lo and hi <= y1 and (y1 - y0) < 3 * max(hi - lo, 0.05) + 0.5
    left = lp.plot.getAxis("left")
    ticks = [v for level in left.tickValues(y0, y1, 200) for v in level[1]]
    assert ticks and all(abs(t) < 30 for t in ticks)  # no 1e+188
    window.cancel_run()
    qtbot.waitUntil(lambda: len(window.project.runs) == 2 and not window.bench.running(), timeout=30_000)
    for _ in range(2):
        run_to_end(window, n_iter=5)
    colours = [lp.curves[r.id].opts["pen"].color().name() for r in window.project.runs]
    assert colours == [c.lower() for c in RUN_COLOURS[:4]]  # four runs, four colours
    path = tmp_path / "runs.demix"
    assert window.project_io.save_to(path)
    assert window.project_io.open_project(path)
    again = [lp.curves[r.id].opts["pen"].color().name() for r in window.project.runs]
    assert again == colours


def test_another_file_clears_the_run_line_and_the_loss_plot(window, qtbot, run_to_end):
    """Item 12: after opening another file the old run message and loss axes stayed."""
    run_to_end(window, n_iter=5)
    assert window.run_label.text()
    assert window.open_demo()
    assert window.run_label.text() == "" and not window.loss_pane.curves


# ------------------------------------------------------------------------------------------- item 10
def _dialog_folder(qtbot, open_it) -> str:
    """Open a file dialog with ``open_it()``, note the folder it shows, cancel it with Escape."""
    from pathlib import Path

    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication, QFileDialog

    seen = {}

    def look():
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, QFileDialog):
            QTimer.singleShot(20, look)
            return
        seen["dir"] = str(Path(dlg.directory().absolutePath()).resolve())
        qtbot.keyClick(dlg, Qt.Key.Key_Escape)

    QTimer.singleShot(0, look)
    open_it()
    return seen["dir"]


def test_save_and_export_dialogs_open_where_the_user_last_saved(window, qtbot, tmp_path):
    """Item 10: the dialogs opened in the program's resources/demo folder for the demo."""
    from pathlib import Path

    from PySide6.QtCore import QStandardPaths

    from demixer import demo_paths

    resources = str(Path(demo_paths()[0]).parent.resolve())
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    first = _dialog_folder(qtbot, window.project_io.save_as)
    assert first != resources
    assert first in (str(Path(docs).resolve()), str(Path.home().resolve()))
    assert _dialog_folder(qtbot, lambda: window.audition.exporter.act_stems_wav.trigger()) == first
    folder = tmp_path / "mine"
    folder.mkdir()
    assert window.project_io.save_to(folder / "piece.demix")
    window.project_io.path = None  # as for a project never saved: Save As starts in the last folder
    assert _dialog_folder(qtbot, window.project_io.save_as) == str(folder.resolve())
    assert _dialog_folder(qtbot, lambda: window.audition.exporter.act_factors.trigger()) == str(folder.resolve())


def test_the_title_names_the_app_once_and_last(window):
    """Item 12: "Demixer — file — Demixer": Qt appends the display name to a title not ending in it."""
    from PySide6.QtWidgets import QApplication

    QApplication.instance().setApplicationDisplayName("Demixer")
    try:
        title = window.windowTitle()
        assert title.endswith(" — Demixer") and title.count("Demixer") == 1
        assert title.startswith("mozart_k545_exposition")
    finally:
        QApplication.instance().setApplicationDisplayName("")


# ------------------------------------------------------------------------------------------- what users miss
def test_help_menu_lists_the_shortcuts_and_about_names_version_and_licences(window, qtbot):
    from demixer import __version__

    menu = window.bench.actions.menu("help")
    assert [a.text() for a in menu.actions()] == ["&Keyboard shortcuts", "&About Demixer", "About &Qt"]
    window.help.act_shortcuts.trigger()
    table = window.help.dialog.table
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["Zoom in"].startswith("Ctrl+=") and rows["Zoom out"].startswith("Ctrl+-")
    assert rows["Go to the start"] == "Home" and rows["Go to the end"] == "End" and rows["Play"] == "Space"
    assert rows["Run"] == "Ctrl+R" and "Ctrl+Z" in rows["Undo"]
    window.help.dialog.close()
    box = window.help.show_about()
    assert f"Demixer {__version__}" in box.text() and "LGPL" in box.text() and "pyqtgraph" in box.text()
    box.close()


def test_zoom_keys_and_home_end_on_the_transport(window, qtbot):
    from PySide6.QtCore import Qt

    p = window.project
    window.zoom_to_fit()
    window.v_pane.setFocus()
    (x0, x1), _ = window.v_pane.viewRange()
    qtbot.keyClick(window.v_pane, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    (a0, a1), _ = window.v_pane.viewRange()
    assert a1 - a0 == pytest.approx((x1 - x0) / 2, rel=1e-3)
    assert window.h_pane.viewRange()[0] == pytest.approx([a0, a1], rel=1e-3)  # H follows V
    qtbot.keyClick(window.v_pane, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    (b0, b1), _ = window.v_pane.viewRange()
    assert b1 - b0 == pytest.approx(x1 - x0, rel=1e-3)
    a = window.audition
    qtbot.keyClick(window.v_pane, Qt.Key.Key_End)
    assert a.playhead_time() == pytest.approx(p.duration, abs=0.05)
    qtbot.keyClick(window.v_pane, Qt.Key.Key_Home)
    assert a.playhead_time() == pytest.approx(0.0, abs=0.05)


# ------------------------------------------------------------------------------------------- item 6
def test_an_onset_template_for_a_limited_component_is_limited_and_tints_only_there(window, qtbot):
    """Item 6: an onset template added for a pitch component limited to 2–8 s was allowed over the whole
    piece, and selecting an onset component tinted all of V."""
    ed = window.editing
    p = window.project
    assert ed.add_pitch_component(90, "", (2.0, 8.0))  # F#6: no score notes
    r = ed.selected_components()[0]
    allowed = p.allow_H[r].copy()
    assert 0 < allowed.sum() < p.n_frames
    assert ed.add_onset_templates([r])
    o = ed.selected_components()[0]
    assert p.components[o].kind == "onset"
    np.testing.assert_array_equal(p.allow_H[o], allowed)
    # select the onset row with the mouse: the tint on V lies within its allowed frames only
    ed.panel.select_rows([])
    _click_row(qtbot, ed.panel.table, o)
    qtbot.waitUntil(lambda: ed.contribution.item.image is not None, timeout=3000)
    alpha = ed.contribution.item.image[..., 3]
    cols = np.flatnonzero(alpha.max(axis=0) > 0)
    assert cols.size and set(cols) <= set(np.flatnonzero(allowed))
    # an onset component whose H is all zero tints nothing
    from demixer.gui.overlays import ContributionOverlay

    over = ContributionOverlay(window.v_pane)
    over.set_contribution(np.zeros((4, 5)))
    assert over.item.image is None


# ------------------------------------------------------------------------------------------- item 11
def _drag(viewport, start, end, steps: int = 12) -> None:
    """Press the left button at ``start``, move in ``steps`` to ``end``, release (viewport pixels)."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    def send(kind, pos, buttons):
        p = QPointF(pos)
        ev = QMouseEvent(kind, p, QPointF(viewport.mapToGlobal(p.toPoint())), Qt.MouseButton.LeftButton
                         if kind != QMouseEvent.Type.MouseMove else Qt.MouseButton.NoButton, buttons,
                         Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(viewport, ev)

    left = Qt.MouseButton.LeftButton
    send(QMouseEvent.Type.MouseButtonPress, start, left)
    for i in range(1, steps + 1):
        f = i / steps
        send(QMouseEvent.Type.MouseMove, QPointF(start) + (QPointF(end) - QPointF(start)) * f, left)
    send(QMouseEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)


def test_colour_bar_handles_move_levels_at_a_sane_rate(window, qtbot):
    """Item 11: a 125 px drag of a level handle moved the level by 50 dB."""
    from PySide6.QtCore import QPointF

    _screen_sized(window, qtbot, 1366, 768)
    pane = window.v_pane
    bar = pane.bar
    lo0, hi0 = bar.levels()
    line = bar.region.lines[1]  # the top handle
    scene = line.mapToScene(line.boundingRect().center())
    start = pane.mapFromScene(scene)
    end = QPointF(start) + QPointF(0, 125)
    assert pane.viewport().rect().contains(end.toPoint())
    _drag(pane.viewport(), start, end)
    lo1, hi1 = bar.levels()
    assert hi1 < hi0  # dragged down: the top level went down
    assert 3 <= hi0 - hi1 <= 30 and lo1 == lo0
    assert pane.manual_levels


def test_the_empty_start_up_state_shows_what_opening_a_file_uses(qtbot):
    """Item 12: the empty window showed Euclidean, 2048/512 where opening a file used KL, 4096/1024."""
    from demixer.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    pp = w.params_pane
    before = (pp.run_params(), pp.stft_params(), pp.score_params())
    assert w.open_demo()
    after = (pp.run_params(), pp.stft_params(), pp.score_params())
    assert before[0].model == after[0].model and before[0].n_iter == after[0].n_iter
    assert (before[1].n_fft, before[1].hop, before[1].sr) == (after[1].n_fft, after[1].hop, after[1].sr)
    assert before[2].tol_pitch == after[2].tol_pitch


def test_listen_to_one_component_alone(window, qtbot):
    """What users miss: soloing a single component (hear what one template does): select its row with
    the mouse, Shift+Space."""
    from PySide6.QtCore import Qt

    a = window.audition
    p = window.project
    table = window.editing.panel.table
    r = [i for i, c in enumerate(p.components) if c.kind == "pitch"][0]
    _click_row(qtbot, table, r)
    qtbot.keyClick(table, Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)
    one = a.expected_buffer()
    mix = p.audio.samples
    assert one.shape == mix.shape
    rms = lambda x: float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))  # noqa: E731
    assert 0 < rms(one) < 0.8 * rms(mix)
    assert p.components[r].name in window.statusBar().currentMessage()
    # every component together is the whole recording
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(table, Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_allclose(a.expected_buffer(), mix, atol=2e-5)
    # the Listen dock's choice plays again once it changes
    from demixer.gui.mixer import MODE_MIXTURE, MODE_SOURCES

    a.panel.set_mode(MODE_SOURCES)
    a.panel.set_mode(MODE_MIXTURE)
    np.testing.assert_array_equal(a.expected_buffer(), mix)
