"""Painting constraints on the real panes with mouse events: brush and rectangle strokes on W and H,
one undo step per stroke, runs that honour the painted zeros, the V selection, live tolerances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from demixer.core.constraints import activation_regions
from demixer.core.strokes import rect_mask, stroke_mask
from demixer.gui.overlays import FORBIDDEN_RGBA, PAINTED_ALLOW_RGBA, PAINTED_ZERO_RGBA
from demixer.gui.tools import BRUSH_ALLOW, BRUSH_ZERO, NAVIGATE, RECT_ZERO, TOOLS
from demixer.model.paint import component_notes

LEFT = Qt.MouseButton.LeftButton
NONE = Qt.MouseButton.NoButton


# ------------------------------------------------------------------------------------------ helpers
def to_viewport(pane, x: float, y: float) -> QPoint:
    return pane.mapFromScene(pane.vb.mapViewToScene(QPointF(x, y)))


def send(pane, etype, pos: QPoint, button, buttons) -> None:
    vp = pane.viewport()
    ev = QMouseEvent(etype, QPointF(pos), QPointF(vp.mapToGlobal(pos)), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(vp, ev)


def press(pane, pos):
    send(pane, QEvent.Type.MouseButtonPress, pos, LEFT, LEFT)


def move(pane, pos):
    send(pane, QEvent.Type.MouseMove, pos, NONE, LEFT)


def release(pane, pos):
    send(pane, QEvent.Type.MouseButtonRelease, pos, LEFT, NONE)


def drag(pane, points) -> list[QPoint]:
    """Press at the first data point, move through the others, release at the last; returns the pixels."""
    px = [to_viewport(pane, x, y) for x, y in points]
    press(pane, px[0])
    for p in px[1:]:
        move(pane, p)
    release(pane, px[-1])
    return px


def cell_of(pane, px: QPoint, shape) -> tuple[float, float]:
    """The fractional (row, col) cell under viewport pixel ``px`` (independently of the tool code: the
    image item's own extent in data coordinates)."""
    v = pane.vb.mapSceneToView(pane.mapToScene(px))
    rect = pane.image.mapRectToParent(pane.image.boundingRect())
    rows, cols = shape
    c = (v.x() - rect.left()) / rect.width() * cols - 0.5
    r = (v.y() - rect.top()) / rect.height() * rows - 0.5
    return r, c


def row_of(p, name):
    return next(i for i, c in enumerate(p.components) if c.name == name)


def snapshot(p):
    return {k: getattr(p, k).copy() for k in ("W", "H", "allow_W", "allow_H", "W0", "H0")}


def assert_bits(p, snap):
    for k, a in snap.items():
        b = getattr(p, k)
        assert b.shape == a.shape and b.dtype == a.dtype and b.tobytes() == a.tobytes(), k


@pytest.fixture()
def ed(window):
    return window.editing


# ------------------------------------------------------------------------------------------ tools
def test_tool_actions_keys_and_toolbar(window, ed, qtbot):
    keys = {name: ed.tools.actions[name].shortcut().toString() for name in TOOLS}
    assert keys == {
        "navigate": "N",
        "brush zero": "B",
        "brush allow": "A",
        "rectangle zero": "R",
        "rectangle allow": "Shift+R",
        "notes": "E",
        "align": "L",
        "source brush": "P",
    }
    assert ed.tools.act_smaller.shortcut().toString() == "[" and ed.tools.act_larger.shortcut().toString() == "]"
    assert ed.tools.tool == NAVIGATE and ed.tools.actions[NAVIGATE].isChecked()
    ed.tools.actions[BRUSH_ZERO].trigger()
    assert ed.tools.tool == BRUSH_ZERO and ed.tools.actions[BRUSH_ZERO].isChecked()
    px = ed.tools.brush_px
    ed.tools.act_larger.trigger()
    assert ed.tools.brush_px > px and ed.tools.size_spin.value() == round(ed.tools.brush_px)
    ed.tools.act_smaller.trigger()
    assert ed.tools.brush_px == pytest.approx(px)
    # the keys themselves, through the window's shortcut map
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    from PySide6.QtTest import QTest

    QTest.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    assert ed.tools.tool == "rectangle allow"
    QTest.keyClick(window, Qt.Key.Key_N)
    assert ed.tools.tool == NAVIGATE
    assert ed.tools.toolbar.isVisible()


def test_navigate_tool_pans_and_paint_tool_does_not(window, ed):
    h = window.h_pane
    p = window.project
    h.setXRange(4.0, 8.0, padding=0)
    before_allow = p.allow_H.copy()
    drag(h, [(6.0, 10.5), (5.0, 10.5)])
    (x0, x1), _ = h.viewRange()
    assert x0 > 4.05  # navigate: the drag panned
    np.testing.assert_array_equal(p.allow_H, before_allow)
    ed.tools.set_tool(BRUSH_ZERO)
    rng = h.viewRange()
    drag(h, [(6.0, 10.5), (5.5, 10.5)])
    assert h.viewRange() == rng  # painting: no pan
    assert not np.array_equal(p.allow_H, before_allow)


# ------------------------------------------------------------------------------------------ brush on H
def test_brush_zero_stroke_on_h_is_exactly_the_stroke_mask_and_one_undo_step(window, ed):
    p = window.project
    h = window.h_pane
    stack = window.undo.stack
    snap = snapshot(p)
    ed.tools.set_tool(BRUSH_ZERO)
    radius = ed.tools.brush_radius_cells(h)
    assert radius[0] > 0 and radius[1] > 0
    # a fast drag: three far-apart mouse events (gaps must be interpolated)
    pts = [(1.0, 3.5), (9.0, 20.5), (17.0, 6.5)]
    px = [to_viewport(h, x, y) for x, y in pts]
    shape = p.allow_H.shape
    cells = [cell_of(h, q, shape) for q in px]
    press(h, px[0])
    move(h, px[1])
    # the preview shows the stroke so far, the project is untouched
    partial = stroke_mask(shape, cells[:2], radius)
    np.testing.assert_array_equal(ed.tools.previews["H"].rgba[..., 3] > 0, partial)
    assert_bits(p, snap)
    move(h, px[2])
    release(h, px[2])
    expected = stroke_mask(shape, cells, radius)
    assert expected.sum() > 40
    np.testing.assert_array_equal(p.allow_H, snap["allow_H"] & ~expected)
    assert not p.H[expected].any() and not p.H0[expected].any()
    np.testing.assert_array_equal(p.H[~expected], snap["H"][~expected])
    for k in ("W", "allow_W", "W0"):
        assert getattr(p, k).tobytes() == snap[k].tobytes()
    assert stack.count() == 1
    assert window.act_undo.text().startswith("&Undo brush zero on H")
    # the overlay shows the new mask, the painted cells in their own colour; the preview is gone
    np.testing.assert_array_equal(ed.mask_H.allow, p.allow_H)
    rgba = ed.mask_H.item.image
    painted = expected & snap["allow_H"]
    assert painted.any() and (rgba[painted] == PAINTED_ZERO_RGBA).all()
    assert (rgba[expected & ~snap["allow_H"]] == FORBIDDEN_RGBA).all()
    assert ed.tools.previews["H"].rgba is None
    # the pane shows the zeros
    assert (window.h_pane.image.image[expected] <= -199).all()
    window.undo.undo()
    assert_bits(p, snap)
    np.testing.assert_array_equal(ed.mask_H.allow, snap["allow_H"])
    window.undo.redo()
    np.testing.assert_array_equal(p.allow_H, snap["allow_H"] & ~expected)


def test_brush_allow_on_w_seeds_values_and_undoes(window, ed):
    p = window.project
    w = window.w_pane
    r = row_of(p, "C4 rh") if any(c.name == "C4 rh" for c in p.components) else row_of(p, "C4 lh")
    snap = snapshot(p)
    ed.tools.set_tool(BRUSH_ALLOW)
    radius = ed.tools.brush_radius_cells(w)
    pts = [(r + 0.5, 1500.0), (r + 0.5, 3000.0), (r + 0.5, 5200.0)]
    px = drag(w, pts)
    shape = p.allow_W.shape
    expected = stroke_mask(shape, [cell_of(w, q, shape) for q in px], radius)
    new = expected & ~snap["allow_W"]
    assert new.sum() > 20
    np.testing.assert_array_equal(p.allow_W, snap["allow_W"] | expected)
    assert (p.W[new] > 0).all() and (p.W0[new] > 0).all()
    np.testing.assert_array_equal(p.W[~expected], snap["W"][~expected])
    assert window.undo.stack.count() == 1
    assert (ed.mask_W.item.image[new] == PAINTED_ALLOW_RGBA).all()
    window.undo.undo()
    assert_bits(p, snap)


def test_brush_on_w_with_log_frequency_paints_the_bins_under_the_path(window, ed):
    p = window.project
    window.set_log_frequency(True)
    w = window.w_pane
    r = 2
    snap = snapshot(p)
    ed.tools.set_tool(BRUSH_ZERO)
    ed.tools.set_brush_px(2)
    f_lo, f_hi = 400.0, 3000.0
    drag(w, [(r + 0.5, math.log2(f_lo)), (r + 0.5, math.log2(f_hi))])
    df = p.sr / (2.0 * (p.n_bins - 1))
    k_lo, k_hi = int(math.ceil(f_lo * 1.05 / df)), int(f_hi * 0.95 / df)
    assert not p.allow_W[k_lo : k_hi + 1, r].any() and not p.W[k_lo : k_hi + 1, r].any()
    far = np.ones(p.allow_W.shape, bool)
    far[:, max(r - 1, 0) : r + 2] = False
    np.testing.assert_array_equal(p.allow_W[far], snap["allow_W"][far])
    assert window.undo.stack.count() == 1
    window.undo.undo()
    assert_bits(p, snap)


# ------------------------------------------------------------------------------------------ rectangles
def test_rectangle_zero_on_h_then_run_keeps_the_row_exactly_zero_there(window, ed, run_to_end):
    p = window.project
    h = window.h_pane
    r = row_of(p, "G4 lh")
    allowed = np.flatnonzero(p.allow_H[r])
    assert allowed.size > 10
    N = p.n_frames
    t_a = allowed[len(allowed) // 4] / N * p.duration
    t_b = min(allowed[-1] / N * p.duration + 1.0, p.duration - 0.1)
    ed.tools.set_tool(RECT_ZERO)
    snap = snapshot(p)
    px = drag(h, [(t_a, r + 0.5), ((t_a + t_b) / 2, r + 0.4), (t_b, r + 0.5)])
    shape = p.allow_H.shape
    (r0, c0), (r1, c1) = cell_of(h, px[0], shape), cell_of(h, px[-1], shape)
    expected = rect_mask(shape, r0, c0, r1, c1)
    assert expected[r].sum() > 5 and expected.sum() == expected[r].sum()  # one row only
    np.testing.assert_array_equal(p.allow_H, snap["allow_H"] & ~expected)
    assert window.undo.stack.count() == 1
    assert window.act_undo.text().startswith("&Undo rectangle zero on H (G4 lh)")
    # and a zero stroke on W
    ed.tools.set_tool(BRUSH_ZERO)
    rw = row_of(p, "C6 rh")
    drag(window.w_pane, [(rw + 0.5, 500.0), (rw + 0.5, 4000.0)])
    painted_W = snap["allow_W"] & ~p.allow_W
    assert painted_W.any()
    assert window.undo.stack.count() == 2
    _ctrl, record = run_to_end(window, n_iter=3)
    assert record.n_iter == 3 and not np.array_equal(p.H, snap["H"])
    assert not p.H[expected].any()  # exactly 0 where the rectangle forbade it
    assert not p.W[painted_W].any()
    assert not p.H[~p.allow_H].any() and not p.W[~p.allow_W].any()
    assert (p.H[r, ~expected[r] & p.allow_H[r]] > 0).any()  # the rest of the row still works


def test_strokes_outside_the_plot_or_during_a_run_are_refused(window, ed, qtbot):
    p = window.project
    ed.tools.set_tool(BRUSH_ZERO)
    h = window.h_pane
    snap = snapshot(p)
    # on the component axis (left of the plot): no stroke
    axis_px = h.mapFromScene(h.getAxis("left").sceneBoundingRect().center())
    press(h, axis_px)
    release(h, axis_px)
    assert window.undo.stack.count() == 0
    ctrl = window.start_run(n_iter=100_000)
    try:
        qtbot.waitUntil(lambda: ctrl.last is not None, timeout=30_000)
        drag(h, [(2.0, 3.5), (5.0, 3.5)])
        assert window.undo.stack.count() == 0
        assert p.allow_H.tobytes() == snap["allow_H"].tobytes()
    finally:
        window.bench.abandon_run()


# ------------------------------------------------------------------------------------------ V selection
def test_v_selection_forbids_and_restricts_the_selected_components(window, ed):
    p = window.project
    v = window.v_pane
    r = row_of(p, "C5 rh")
    ed.panel.select_rows([r])
    ed.tools.set_tool(RECT_ZERO)
    snap = snapshot(p)
    drag(v, [(2.0, 300.0), (6.0, 1200.0)])
    sel = ed.tools.v_selection
    assert sel is not None
    t0, t1, f0, f1 = sel
    assert t0 == pytest.approx(2.0, abs=0.1) and t1 == pytest.approx(6.0, abs=0.1)
    assert f0 == pytest.approx(300.0, rel=0.1) and f1 == pytest.approx(1200.0, rel=0.1)
    assert ed.tools.popup is not None and ed.tools.act_forbid.isEnabled()
    ed.tools.popup.close()
    assert window.undo.stack.count() == 0  # selecting is not an edit
    (n0, n1), (k0, k1) = ed.tools.selection_cells()
    assert n0 == int(t0 / p.duration * p.n_frames)
    ed.tools.act_forbid_tf.trigger()
    assert not p.allow_H[r, n0 : n1 + 1].any() and not p.H[r, n0 : n1 + 1].any()
    assert not p.allow_W[k0 : k1 + 1, r].any() and not p.W[k0 : k1 + 1, r].any()
    others = np.ones(p.n_components, bool)
    others[r] = False
    np.testing.assert_array_equal(p.allow_H[others], snap["allow_H"][others])
    assert window.undo.stack.count() == 1 and "forbid C5 rh" in window.act_undo.text()
    window.undo.undo()
    assert_bits(p, snap)
    ed.tools.act_restrict.trigger()
    assert p.allow_H[r, n0 : n1 + 1].all() and not p.allow_H[r, :n0].any() and not p.allow_H[r, n1 + 1 :].any()
    assert (p.H[r, n0 : n1 + 1] > 0).all()
    window.undo.undo()
    assert_bits(p, snap)
    ed.tools.act_clear_selection.trigger()
    assert ed.tools.v_selection is None and not ed.tools.act_forbid.isEnabled()


def test_run_follows_a_restriction_made_on_v(window, ed, run_to_end):
    p = window.project
    r = row_of(p, "E5 rh")
    ed.panel.select_rows([r])
    ed.tools.set_selection((5.0, 9.0, 100.0, 3000.0))
    assert ed.tools.apply_selection("restrict")
    (n0, n1), _ = ed.tools.selection_cells()
    run_to_end(window, n_iter=3)
    assert not p.H[r, :n0].any() and not p.H[r, n1 + 1 :].any()


# ------------------------------------------------------------------------------------------ overlays
def test_overlays_show_masks_score_and_selection(window, ed):
    p = window.project
    alpha_H = ed.mask_H.item.image[..., 3]
    np.testing.assert_array_equal(alpha_H > 0, ~p.allow_H)
    assert ed.mask_W.item.image.shape[:2] == p.allow_W.shape
    # the overlays are children of the images: same placement, same zoom
    assert ed.mask_H.item.parentItem() is window.h_pane.image
    assert ed.score_outlines.n_rects == len(p.notes)
    assert all(it.isVisible() for it in ed.score_outlines.items)
    window.editing.act_show_score.setChecked(False)
    assert not any(it.isVisible() for it in ed.score_outlines.items)
    window.editing.act_show_masks.setChecked(False)
    assert not ed.mask_H.item.isVisible() and not ed.mask_W.item.isVisible()
    window.editing.act_show_masks.setChecked(True)
    # log frequency: W's overlay follows the displayed rows
    window.set_log_frequency(True)
    assert ed.mask_W.item.image.shape[:2] == window.w_pane.image.image.shape[:2]
    window.set_log_frequency(False)
    # selecting a component outlines its row of H and column of W and tints its part of V
    r = row_of(p, "C5 rh")
    ed.panel.select_rows([r])
    assert ed.highlight_H.selected == [r]
    br = ed.highlight_H.item.path().boundingRect()
    assert (br.top(), br.bottom()) == (pytest.approx(r), pytest.approx(r + 1))
    ed.update_contribution()
    img = ed.contribution.item.image
    assert img is not None and img.shape[:2] == p.V.shape and (img[..., 3] > 0).any()
    ed.panel.select_rows([])
    assert ed.contribution.item.image is None and ed.highlight_H.item.path().isEmpty()


# ------------------------------------------------------------------------------------------ tolerances
def test_tolerance_change_in_the_dock_updates_allow_h_live_and_is_undoable(window, ed):
    p = window.project
    pp = window.params_pane
    r = row_of(p, "C5 rh")
    notes = component_notes(p, r)
    snap = snapshot(p)
    old = pp.tol_note_post.value()
    pp.tol_note_post.setValue(1.0)
    assert window.undo.stack.count() == 1
    assert "note: after" in window.act_undo.text() and "1 s" in window.act_undo.text()
    a = p.analysis.params
    expected = activation_regions(
        [(n.onset, n.offset) for n in notes], p.n_frames, a.sr, a.hop, p.score.tol_note_pre, 1.0
    )
    np.testing.assert_array_equal(p.allow_H[r], expected)
    assert p.score.tol_note_post == 1.0
    np.testing.assert_array_equal(ed.mask_H.allow, p.allow_H)  # the overlay follows at once
    assert (ed.mask_H.item.image[..., 3] > 0).sum() == (~p.allow_H).sum()  # moved with the score: no "painted"
    assert not p.H[~p.allow_H].any()
    window.undo.undo()
    assert_bits(p, snap)
    assert pp.tol_note_post.value() == pytest.approx(old) and p.score.tol_note_post == pytest.approx(old)
    assert window.undo.stack.count() == 1  # the spin box going back is not a new edit
    window.undo.redo()
    assert pp.tol_note_post.value() == pytest.approx(1.0)
    np.testing.assert_array_equal(p.allow_H[r], expected)
    # the pitch band: W's allowed bins of pitch components
    pp.tol_pitch.setValue(0.1)
    assert window.undo.stack.count() == 2 and p.score.tol_pitch == pytest.approx(0.1)
    window.undo.undo()
    window.undo.undo()
    assert_bits(p, snap)


def test_open_score_uses_the_docks_tolerances_and_makes_the_groups_sources(window, ed, demo_score_path):
    pp = window.params_pane
    pp.tol_note_pre.setValue(0.3)
    pp.tol_onset_post.setValue(0.15)
    assert window.open_score(demo_score_path)
    p = window.project
    assert [s.name for s in p.sources] == ["lh", "rh"]
    assert {c.source for c in p.components} == {"lh", "rh"}
    assert {c.kind for c in p.components} == {"pitch", "onset"}
    assert p.score.tol_note_pre == pytest.approx(0.3) and p.score.tol_onset_post == pytest.approx(0.15)
    a = p.analysis.params
    for name, kind in (("C5 rh", "pitch"), ("C5 rh onset", "onset")):
        r = row_of(p, name)
        notes = component_notes(p, r)
        iv = [(n.onset, n.offset if kind == "pitch" else n.onset) for n in notes]
        pre, post = (0.3, p.score.tol_note_post) if kind == "pitch" else (p.score.tol_onset_pre, 0.15)
        np.testing.assert_array_equal(p.allow_H[r], activation_regions(iv, p.n_frames, a.sr, a.hop, pre, post))
    assert window.undo.stack.count() == 0  # a new project
    assert ed.panel.table.rowCount() == p.n_components
    assert ed.score_outlines.n_rects == len(p.notes)


def test_undoing_a_constraint_edit_during_a_run_drops_the_run(window, ed, qtbot):
    p = window.project
    ed.tools.set_tool(BRUSH_ALLOW)
    drag(window.h_pane, [(3.0, 40.5), (8.0, 40.5)])
    assert window.undo.stack.count() == 1
    ctrl = window.start_run(n_iter=100_000)
    qtbot.waitUntil(lambda: ctrl.last is not None, timeout=30_000)
    window.undo.undo()  # the allow stroke: the run started with it
    assert not window.bench.running() and window.run_ctrl is None
    assert "dropped" in ed.messages[-1]
    qtbot.waitUntil(lambda: not window.runs.retired, timeout=30_000)
    assert not p.runs and not p.H[~p.allow_H].any()
