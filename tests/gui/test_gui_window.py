"""The workbench window on the demo: layout, axes, linked zoom, display options, read-out."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from demixer.gui.display import to_db


def _image_rect(pane):
    """The image's extent in its view's data coordinates."""
    return pane.image.mapRectToParent(pane.image.boundingRect())


def test_window_opens_on_the_demo_with_a_sensible_size(window):
    p = window.project
    assert p is not None and p.title == "mozart_k545_exposition.flac"
    assert window.width() >= 1200 and window.height() >= 800
    assert "mozart" in window.windowTitle()
    assert [a.text().replace("&", "") for a in window.menuBar().actions()] == ["File", "Edit", "Run", "View", "Help"]
    assert window.act_run.isEnabled() and not window.act_cancel.isEnabled()
    assert window.act_run.shortcut().toString() == "Ctrl+R"
    assert window.act_cancel.shortcut().toString() == "Esc"


def test_panes_have_the_right_data_coordinates(window):
    p = window.project
    v = _image_rect(window.v_pane)
    assert v.left() == pytest.approx(0) and v.right() == pytest.approx(p.duration)
    assert v.top() == pytest.approx(0) and v.bottom() == pytest.approx(p.sr / 2)
    h = _image_rect(window.h_pane)
    assert (h.left(), h.right()) == (pytest.approx(0), pytest.approx(p.duration))
    assert (h.top(), h.bottom()) == (pytest.approx(0), pytest.approx(p.n_components))
    w = _image_rect(window.w_pane)
    assert (w.left(), w.right()) == (pytest.approx(0), pytest.approx(p.n_components))
    assert (w.top(), w.bottom()) == (pytest.approx(0), pytest.approx(p.sr / 2))
    # the images are the project's arrays in dB, in matrix orientation (rows = frequency / component)
    assert window.v_pane.image.image.shape == p.V.shape
    np.testing.assert_array_equal(window.h_pane.image.image, to_db(p.H))
    np.testing.assert_array_equal(window.w_pane.image.image, to_db(p.W))
    # zoomed to fit
    (x0, x1), (y0, y1) = window.v_pane.viewRange()
    assert (x0, x1) == (pytest.approx(0, abs=1e-6), pytest.approx(p.duration))
    assert (y0, y1) == (pytest.approx(0, abs=1e-6), pytest.approx(p.sr / 2))
    # axis labels
    assert window.v_pane.time_axis.labelText == "time" and window.v_pane.time_axis.labelUnits == "s"
    assert window.v_pane.freq_axis.labelUnits == "Hz" and window.w_pane.freq_axis.labelUnits == "Hz"


def test_time_zoom_on_v_is_shared_with_h_and_frequency_zoom_with_w(window, qtbot):
    window.v_pane.setXRange(2.0, 5.0, padding=0)
    qtbot.waitUntil(lambda: window.h_pane.viewRange()[0] == pytest.approx([2.0, 5.0]))
    window.v_pane.setYRange(100.0, 2000.0, padding=0)
    assert window.w_pane.viewRange()[1] == pytest.approx([100.0, 2000.0])
    # and the other way round: zooming H's time zooms V
    window.h_pane.setXRange(6.0, 7.0, padding=0)
    assert window.v_pane.viewRange()[0] == pytest.approx([6.0, 7.0])
    window.zoom_to_fit()
    assert window.h_pane.viewRange()[0] == pytest.approx([0.0, window.project.duration], abs=1e-6)
    assert window.w_pane.viewRange()[1] == pytest.approx([0.0, window.project.sr / 2], abs=1e-6)


def test_wheel_zoom_on_v_changes_h_time_range_and_w_frequency_range(window, qtbot):
    vp = window.v_pane.viewport()
    centre = window.v_pane.mapFromScene(window.v_pane.vb.sceneBoundingRect().center())
    before = window.v_pane.viewRange()
    ev = QWheelEvent(
        QPointF(centre),
        QPointF(vp.mapToGlobal(centre)),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, ev)
    qtbot.waitUntil(
        lambda: (
            window.v_pane.viewRange()[0][1] - window.v_pane.viewRange()[0][0]
            < before[0][1] - before[0][0] - 1e-6
        )
    )
    (vx0, vx1), (vy0, vy1) = window.v_pane.viewRange()
    assert window.h_pane.viewRange()[0] == pytest.approx([vx0, vx1])
    assert window.w_pane.viewRange()[1] == pytest.approx([vy0, vy1])
    assert vy1 - vy0 < before[1][1] - before[1][0]


def test_component_rows_and_columns_are_labelled_and_coloured_by_source(window):
    p = window.project
    axis = window.h_pane.comp_axis
    assert axis.labels == [c.label for c in p.components]
    assert [c.name() for c in axis.colours] == p.component_colours()
    assert window.w_pane.comp_axis.labels == axis.labels
    lh = p.source_components("lh")
    assert {axis.colours[i].name() for i in lh} == {p.sources[0].colour}
    # the tick labels are pitch names at row centres
    ticks = axis.tickValues(0, p.n_components, 2000)
    assert ticks[0][1][0] == 0.5 and axis.tickStrings([0.5], 1, 1) == [p.components[0].label]
    # crowded: a stride keeps them legible
    assert ticks[0][0] == 1 and axis.tickValues(0, p.n_components, 100)[0][0] > 1
    assert window.sources_pane.topLevelItemCount() == 2
    assert window.sources_pane.topLevelItem(0).text(0) == "lh"
    assert int(window.sources_pane.topLevelItem(0).text(1)) == len(lh)


def test_log_frequency_display(window):
    p = window.project
    window.v_pane.setYRange(200.0, 4000.0, padding=0)
    window.set_log_frequency(True)
    assert window.act_log.isChecked()
    m = window.display.log_map
    v = _image_rect(window.v_pane)
    assert v.top() == pytest.approx(m.y0) and v.bottom() == pytest.approx(m.y1)
    assert v.bottom() == pytest.approx(math.log2(p.sr / 2))
    assert window.v_pane.image.image.shape[0] == m.n_rows
    assert window.w_pane.image.image.shape == (m.n_rows, p.n_components)
    # the visible band is kept, now in log2(Hz), and W follows
    y0, y1 = window.v_pane.viewRange()[1]
    assert (2**y0, 2**y1) == (pytest.approx(200.0, rel=1e-3), pytest.approx(4000.0, rel=1e-3))
    assert window.w_pane.viewRange()[1] == pytest.approx([y0, y1])
    # ticks in Hz at 1-2-5 positions
    axis = window.v_pane.freq_axis
    levels = axis.tickValues(y0, y1, 500)
    labels = axis.tickStrings(levels[0][1], 1, 1)
    assert "1k" in labels and "500" in labels
    assert "440" in window.readout(window.v_pane, 3.0, math.log2(440.0))
    window.set_log_frequency(False)
    v = _image_rect(window.v_pane)
    assert v.bottom() == pytest.approx(p.sr / 2)
    y0, y1 = window.v_pane.viewRange()[1]
    assert (y0, y1) == (pytest.approx(200.0, rel=1e-3), pytest.approx(4000.0, rel=1e-3))


def test_db_range_sets_levels_and_user_levels_stick(window):
    top = window.display.V_top
    window.set_db_range(60)
    assert window.db_actions[60].isChecked()
    lo, hi = window.v_pane.bar.levels()
    assert hi == pytest.approx(round(top)) and hi - lo == pytest.approx(60)
    assert tuple(window.v_pane.image.levels) == pytest.approx((lo, hi))
    # a drag on the colour bar's handles makes the levels manual; they survive a repaint
    window.v_pane.bar.setLevels((-10.0, 20.0))
    window.v_pane._on_user_levels()
    window.display.show_V()
    assert tuple(window.v_pane.bar.levels()) == (-10.0, 20.0)
    window.set_db_range(80)
    assert not window.v_pane.manual_levels


def test_v_pane_shows_the_model_and_the_sources(window):
    p = window.project
    modes = [window.corner.mode.itemText(i) for i in range(window.corner.mode.count())]
    assert modes == ["V", "W·H", "source: lh", "source: rh"]
    window.corner.mode.setCurrentText("W·H")
    assert window.v_mode == "W·H"
    np.testing.assert_allclose(window.v_pane.data_db, to_db(p.W @ p.H), atol=1e-3)
    window.set_v_mode("source: lh")
    lh = window.v_pane.data_db
    assert lh.shape == p.V.shape
    assert np.all(lh <= window.display.V_db + 1e-3)  # a masked mixture is never louder than the mixture
    window.set_v_mode("V")
    assert window.v_pane.data_db is window.display.V_db


def test_cursor_read_out(window, qtbot):
    p = window.project
    text = window.readout(window.v_pane, 5.0, 440.0)
    assert "t   5.000 s" in text and "f 440.0 Hz" in text and "V " in text and " dB" in text
    assert "component" in text
    r = 3
    text = window.readout(window.h_pane, 5.0, r + 0.5)
    assert f"component {p.components[r].name}" in text and "H " in text and "f " not in text
    text = window.readout(window.w_pane, r + 0.5, 1000.0)
    assert f"component {p.components[r].name}" in text and "f 1k Hz" in text and not text.startswith("t ")
    # via the scene's mouse-move signal
    scene_pos = window.v_pane.vb.mapViewToScene(QPointF(5.0, 440.0))
    window.v_pane.scene().sigMouseMoved.emit(scene_pos)
    assert "f 440" in window.cursor_label.text()


def test_splitters_keep_w_under_the_corner(window):
    window.bottom_split.setSizes([400, 700])
    window.bottom_split.splitterMoved.emit(400, 1)
    assert window.top_split.sizes()[0] == window.bottom_split.sizes()[0]


def test_window_screenshot_is_not_blank(window, qtbot, tmp_path):
    qtbot.wait(50)
    img = window.grab().toImage()
    assert img.width() >= 1200
    path = tmp_path / "w.png"
    assert img.save(str(path)) and path.stat().st_size > 20_000


def test_images_use_the_colour_bar_levels(window):
    for pane in (window.v_pane, window.h_pane, window.w_pane):
        lo, hi = pane.bar.levels()
        assert hi - lo == pytest.approx(window.db_range)
        assert tuple(float(v) for v in pane.image.levels) == (lo, hi)


def test_a_new_project_keeps_log_frequency_on_its_own_grid(window, tmp_path):
    import soundfile as sf

    window.set_log_frequency(True)
    sr = 8000
    path = tmp_path / "tone.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32), sr)
    assert window.open_audio(path)
    m = window.display.log_map
    assert window.v_pane.freq_axis.log_map is m and window.w_pane.freq_axis.log_map is m
    # (the analysis rate is the STFT's, not the file's)
    assert _image_rect(window.v_pane).bottom() == pytest.approx(math.log2(window.project.sr / 2))
