"""The house (DESIGN.md §3): a new pane needs only its own module and one line in the window that
places it; it learns everything from the Workbench and the model's signals. This test is that pane."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from demixer.model.edits import ArrayPatch, PatchEdit


class ActivationEnergyPane(pg.PlotWidget):
    """Per-component activation energy (sum over time of each row of H), as bars.

    Everything it needs comes from the Workbench: the project when it changes, and the project's own
    ``factors_changed`` signal for edits, runs, undo and redo."""

    def __init__(self, bench) -> None:
        super().__init__()
        self.bench = bench
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.addItem(self.bars)
        self.energy = np.zeros(0)
        self.project = None
        bench.project_changed.connect(self.follow)
        self.follow()

    def follow(self) -> None:
        if self.project is not None:
            self.project.factors_changed.disconnect(self.redraw)
        self.project = self.bench.project
        if self.project is not None:
            self.project.factors_changed.connect(self.redraw)
        self.redraw()

    def redraw(self, region=None) -> None:
        p = self.project
        self.energy = np.zeros(0) if p is None else p.H.sum(axis=1)
        self.bars.setOpts(x=np.arange(self.energy.size), height=self.energy, width=0.8)


def test_a_new_pane_follows_the_model_through_the_workbench(window, qtbot):
    # the one line a new pane adds to gui/main_window.py:
    pane = ActivationEnergyPane(window.bench)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, window.make_dock("Energy", pane, "energy"))

    p = window.project
    assert np.allclose(pane.energy, p.H.sum(axis=1))
    before = pane.energy.copy()
    H = p.H.copy()
    H[0, :] = 0.0
    window.undo.push(PatchEdit([ArrayPatch.capture(p, "H", H)], text="silence component 0"))
    assert pane.energy[0] == 0.0 and np.allclose(pane.energy[1:], before[1:])
    window.undo.undo()
    assert np.allclose(pane.energy, before)

    assert window.open_demo()  # a new project: the pane follows it, not the old one
    assert pane.project is window.project and pane.project is not p
    assert np.allclose(pane.energy, window.project.H.sum(axis=1))
