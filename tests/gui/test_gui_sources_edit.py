"""Sources: create, rename, recolour, delete, pitch range → source, reset from the score, the Sources
list's context menu — each one undo step, undone exactly."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint


def meta(p):
    return [(c.name, c.source, c.colour) for c in p.components], [(s.name, s.colour) for s in p.sources]


@pytest.fixture()
def ed(window):
    return window.editing


def sources_rows(window):
    t = window.sources_pane
    return [t.topLevelItem(i).text(0) for i in range(t.topLevelItemCount())]


def test_new_source_with_the_selected_components_then_rename_recolour_delete(window, ed):
    p = window.project
    before = meta(p)
    ed.panel.select_rows([0, 1])
    assert ed.new_source("bass", "#123456", assign=ed.selected_components())
    assert [s.name for s in p.sources] == ["lh", "rh", "bass"]
    assert p.components[0].source == "bass" and p.components[0].colour == "#123456"
    assert window.undo.stack.count() == 1 and window.act_undo.text() == "&Undo new source bass with 2 components"
    assert "bass" in sources_rows(window)
    assert window.h_pane.comp_axis.colours[0].name() == "#123456"
    assert ed.rename_source("bass", "low")
    assert p.components[1].source == "low" and "low" in sources_rows(window)
    assert ed.recolour_source("low", "#abcdef")
    assert p.source_colour("low") == "#abcdef" and p.components[0].colour == "#abcdef"
    assert ed.delete_source("low")
    assert p.components[0].source == "" and "residual" in p.source_names()
    assert window.undo.stack.count() == 4
    # refused: duplicates and the residual's name
    assert not ed.new_source("rh") and "already" in ed.messages[-1]
    assert not ed.new_source("residual")
    for _ in range(4):
        window.undo.undo()
    assert meta(p) == before
    assert sources_rows(window) == ["lh", "rh"]


def test_pitch_range_and_reset_from_the_score(window, ed):
    p = window.project
    before = meta(p)
    assert ed.assign_pitch_range(60, 71, "rh")
    for c in p.components:
        if 60 <= c.pitch <= 71:
            assert c.source == "rh"
    assert window.act_undo.text() == "&Undo assign pitches C4–B4 to rh"
    assert ed.assign([0, 1, 2], "residual")
    assert ed.delete_source("lh")
    assert ed.reset_sources_from_score()
    assert meta(p)[0] == [(n, s, c) for (n, s, c) in before[0]]
    assert [s.name for s in p.sources] == ["rh", "lh"]  # lh made again from the score's groups
    for _ in range(4):
        window.undo.undo()
    assert meta(p) == before


def test_the_pitch_range_dialog_and_the_menus(window, ed):
    from demixer.gui.sources_edit import PitchRangeDialog

    dlg = PitchRangeDialog(["lh", "rh"])
    dlg.lo.setText("C5")
    dlg.hi.setText("60")
    assert dlg.values() == (60, 72, "lh")
    dlg.lo.setText("nonsense")
    assert "not a pitch" in dlg.info.text()
    # the Sources menu of the Components dock and the Sources list's context menu
    ed.panel.sources_menu.aboutToShow.emit()
    texts = [a.text() for a in ed.panel.sources_menu.actions()]
    assert "New source…" in texts and "Reset sources from the score" in texts
    tree = window.sources_pane
    item = tree.topLevelItem(0)
    pos = tree.visualItemRect(item).center()
    tree.customContextMenuRequested.emit(pos)
    menu = ed.sources.menu
    assert menu is not None
    texts = [a.text() for a in menu.actions()]
    assert "Rename “lh”…" in texts and "Select the components of “lh”" in texts
    next(a for a in menu.actions() if a.text() == "Select the components of “lh”").trigger()
    assert ed.selected_components() == list(window.project.source_components("lh"))
    menu.close()
    tree.customContextMenuRequested.emit(QPoint(2, tree.viewport().height() - 2))
    ed.sources.menu.close()
