"""Editing in the workbench (DESIGN.md §2.3, §3, §4): painted constraints, components, sources, score
tolerances — every change one step of the window's undo stack — and the overlays that show them.

``install_editing(window)`` adds to a :class:`~demixer.gui.main_window.MainWindow`:

* the Tools tool bar and keys (:mod:`demixer.gui.tools`), the V selection menu;
* the overlays (:mod:`demixer.gui.overlays`): forbidden entries of ``allow_W``/``allow_H`` tinted on W
  and H, the score's notes outlined on V, the selected components outlined on W and H and their part
  of the model tinted on V (View menu toggles);
* the Components dock (:mod:`demixer.gui.components_panel`) — a click on H's or W's component axis
  selects that component there too (Ctrl toggles, Shift extends) —, the source actions
  (:mod:`demixer.gui.sources_edit`), the History dock (:mod:`demixer.gui.history`);
* live score tolerances: a change in the Parameters dock moves the allowed regions of the components
  with score notes at once, as one undo step (:func:`~demixer.model.paint.tolerance_edit`).

Edits are refused (with a status-bar message) while a run is going: its result would overwrite them.
"""

from __future__ import annotations

import math
from functools import partial

import shiboken6
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog

from demixer.gui.components_panel import AddPitchDialog, ComponentsPanel
from demixer.gui.history import make_history_dock
from demixer.gui.overlays import (
    ContributionOverlay,
    MaskOverlay,
    ScoreOutlines,
    SelectionHighlight,
)
from demixer.gui.sources_edit import SourcesEditor
from demixer.gui.tools import ToolController
from demixer.model import component_edits as ce
from demixer.model.paint import reference_allow, score_notes, tolerance_edit
from demixer.model.project import RESIDUAL

__all__ = ["EditingController", "install_editing", "MAX_CONTRIBUTION_COMPONENTS"]

MAX_CONTRIBUTION_COMPONENTS = 64
_TOL_SPINS = ("tol_pitch", "tol_note_pre", "tol_note_post", "tol_onset_pre", "tol_onset_post")


class EditingController(QObject):
    """Owns the editing UI of one window and turns user actions into undoable edits."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.bench = window.bench  # the shared state: project, undo, runs, view, tasks, actions
        self.project = None
        self._R: int | None = None
        self.messages: list[str] = []
        self.last_edit = None
        self._outline_tol = None
        self._references: dict = {}
        self._masks_score = None
        # overlays
        self.mask_W = MaskOverlay(window.w_pane)
        self.mask_H = MaskOverlay(window.h_pane)
        self.score_outlines = ScoreOutlines(window.v_pane)
        self.highlight_H = SelectionHighlight(window.h_pane, "rows")
        self.highlight_W = SelectionHighlight(window.w_pane, "cols")
        self.contribution = ContributionOverlay(window.v_pane)
        self._contribution_timer = QTimer(self)
        self._contribution_timer.setSingleShot(True)
        self._contribution_timer.setInterval(120)
        self._contribution_timer.timeout.connect(self.update_contribution)
        # docks
        self.panel = ComponentsPanel(self)
        self.panel.selection_changed.connect(self._on_selection_changed)
        self.components_dock = window.make_dock("Components", self.panel, "components")
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.components_dock)
        self.sources = SourcesEditor(window, self)
        self.panel.sources_menu.aboutToShow.connect(lambda: self.sources.fill_menu(self.panel.sources_menu))
        self.tools = ToolController(window, self)
        self.history_dock = make_history_dock(window)
        params_dock = getattr(window, "params_dock", None)
        if params_dock is not None:
            window.tabifyDockWidget(params_dock, self.components_dock)
            window.tabifyDockWidget(self.components_dock, self.history_dock)
        self.components_dock.raise_()
        self._build_menus()
        # the score's synchronisation (gui/alignment.py) and the note editor / source brush on V
        from demixer.gui.alignment import install_alignment
        from demixer.gui.note_editor import install_note_editor

        self.alignment = install_alignment(window, self)
        self.note_editor = install_note_editor(window, self, self.alignment)
        # hooks
        self.bench.project_changed.connect(self._on_project_changed)
        window.act_log.toggled.connect(self._on_display_changed)
        pp = window.params_pane
        for name in _TOL_SPINS:
            spin = getattr(pp, name)
            spin.setKeyboardTracking(False)  # typing "0.35" is one change (on Enter / focus out), not three
            spin.valueChanged.connect(self._on_tolerance_changed)
        self.bench.undo.stack.indexChanged.connect(self._sync_tolerances)
        self._tolerances_connected = True
        self._anchor: int | None = None
        for pane in (window.h_pane, window.w_pane):
            pane.scene().sigMouseClicked.connect(partial(self._on_pane_clicked, pane))
        if self.bench.project is not None:
            self._on_project_changed()

    # ================================================================================ menus
    def _build_menus(self) -> None:
        w = self.window
        self.act_show_masks = QAction("Show constraint &masks", w, checkable=True, checked=True)
        self.act_show_masks.setToolTip("Tint the entries of W and H that are forbidden (exactly 0)")
        self.act_show_masks.toggled.connect(self.set_masks_visible)
        self.act_show_score = QAction("Show &score notes on V", w, checkable=True, checked=True)
        self.act_show_score.toggled.connect(self.score_outlines.set_visible)
        self.act_show_contribution = QAction("Show selected components on V", w, checkable=True, checked=True)
        self.act_show_contribution.toggled.connect(self._set_contribution_visible)
        self.act_add_pitch = QAction("Add &pitch component…", w)
        self.act_add_pitch.triggered.connect(self.ask_add_pitch)
        self.act_add_onset = QAction("Add &onset templates for the selected components", w)
        self.act_add_onset.triggered.connect(lambda: self.add_onset_templates(self.selected_components()))
        self.act_listen = QAction("&Listen to the selected components alone", w)
        self.act_listen.setShortcut(QKeySequence("Shift+Space"))
        self.act_listen.setToolTip("Play only what the selected components contribute (Shift+Space)")
        self.act_listen.triggered.connect(lambda: w.audition.listen_to_components(self.selected_components()))
        w.addAction(self.act_listen)  # the shortcut works whichever child has the focus
        self.act_delete = QAction("&Delete the selected components", w)
        self.act_delete.triggered.connect(lambda: self.delete_components(self.selected_components()))
        self.act_pitch_range = QAction("Pitch range → source…", w)
        self.act_pitch_range.triggered.connect(self.sources.ask_pitch_range)
        self.act_reset_sources = QAction("Reset sources from the score", w)
        self.act_reset_sources.triggered.connect(self.reset_sources_from_score)

        edit = self.bench.actions.menu("edit")
        if edit is not None:
            edit.addSeparator()
            tools = edit.addMenu("&Tools")
            for a in self.tools.actions.values():
                tools.addAction(a)
            tools.addSeparator()
            tools.addAction(self.tools.act_smaller)
            tools.addAction(self.tools.act_larger)
            sel = edit.addMenu("Selection on &V")
            for a in (
                self.tools.act_restrict,
                self.tools.act_forbid,
                self.tools.act_forbid_tf,
                self.tools.act_clear_selection,
            ):
                sel.addAction(a)
            edit.addSeparator()
            for a in (
                self.act_add_pitch,
                self.act_add_onset,
                self.act_listen,
                self.act_delete,
                self.act_pitch_range,
                self.act_reset_sources,
            ):
                edit.addAction(a)
        view = self.bench.actions.menu("view")
        if view is not None:
            view.addSeparator()
            view.addAction(self.act_show_masks)
            view.addAction(self.act_show_score)
            view.addAction(self.act_show_contribution)
            view.addSeparator()
            view.addAction(self.components_dock.toggleViewAction())
            view.addAction(self.history_dock.toggleViewAction())

    # ================================================================================ project
    def _connections(self, p):
        return [
            (p.factors_changed, self._on_factors_changed),
            (p.components_changed, self._on_components_changed),
            (p.sources_changed, self._on_sources_changed),
            (p.params_changed, self._on_params_changed),
            (p.notes_changed, self._on_notes_changed),
        ]

    def _on_project_changed(self) -> None:
        old = self.project
        if old is not None:
            for sig, slot in self._connections(old):
                sig.disconnect(slot)
        p = self.bench.project
        self.project = p
        if p is None:
            return
        for sig, slot in self._connections(p):
            sig.connect(slot)
        self._R = p.n_components
        self.panel.set_project(p)
        self.tools.clear_selection()
        self.refresh_masks()
        self.refresh_score_outlines()
        self._on_selection_changed(self.selected_components())

    def _stop_stale_run(self, what: str) -> None:
        """An undo / redo changed the constraints or the components under a running job (edits are
        refused during runs, undo is not): its result no longer fits, so it is dropped."""
        if self.bench.running():
            self.bench.abandon_run()
            self.say(f"The run was stopped and its result dropped: {what} changed under it", 8000)

    def _on_factors_changed(self, region) -> None:
        if region is not None and region.target in ("allow_W", "allow_H"):
            self._stop_stale_run("the constraints")
        if region is None or region.target in ("allow_W", "allow_H"):
            if region is None or region.target == "allow_W":
                self.refresh_masks("W")
            if region is None or region.target == "allow_H":
                self.refresh_masks("H", region)
        if region is None or region.target in ("W", "H"):
            if self.selected_components():
                self._contribution_timer.start()

    def _on_components_changed(self) -> None:
        p = self.project
        if p is None:
            return
        self.panel.refresh()
        w = self.window
        if p.n_components != self._R:
            self._stop_stale_run("the components")
            old = self._R
            self._R = p.n_components
            (_, _), (y0, y1) = w.h_pane.viewRange()
            w.display.apply_limits()
            if old is not None and y0 <= 0.01 and y1 >= old - 0.01:  # was showing every component
                w.h_pane.setYRange(0.0, float(p.n_components), padding=0.0)
                w.w_pane.setXRange(0.0, float(p.n_components), padding=0.0)
            w.display.update_summary()
        if w.v_mode != "V" and not self.bench.running():
            w.display.show_V()
        # the score reference follows each component's (pitch, kind, source): reassigning, renaming a
        # source or "Reset sources from the score" changes which cells count as painted
        self.refresh_masks()
        self._on_selection_changed(self.selected_components())

    def _on_sources_changed(self) -> None:
        self.panel.refresh()
        self.refresh_score_outlines()

    def _on_params_changed(self) -> None:
        self.refresh_score_outlines()

    def _on_notes_changed(self) -> None:
        self.refresh_score_outlines()
        self.refresh_masks()

    def _on_display_changed(self, *_):
        self.refresh_masks("W")
        self.refresh_score_outlines()
        self.tools.refresh_selection()
        self._on_selection_changed(self.selected_components())

    # ================================================================================ overlays
    def set_masks_visible(self, on: bool) -> None:
        self.mask_W.set_visible(on)
        self.mask_H.set_visible(on)

    def _reference(self, target: str):
        """What the score / templates alone allow (cached per components, score and shape)."""
        p = self.project
        key = (
            target,
            id(p),
            tuple((c.pitch, c.kind, c.source) for c in p.components),
            p.score,
            tuple(p.notes),
        )
        cached = self._references.get(target)
        if cached is None or cached[0] != key:
            cached = (key, reference_allow(p, target))
            self._references[target] = cached
        return cached[1]

    def refresh_masks(self, which: str = "WH", region=None) -> None:
        """Redraw the mask overlays: forbidden by the score (slate), painted zero (red), painted allow
        (green)."""
        p = self.project
        if p is None:
            return
        w = self.window
        self._masks_score = p.score
        if "W" in which:
            allow, ref = p.allow_W, self._reference("W")
            if w.log_freq and w.display.log_map is not None:
                allow = w.display.log_map.apply(allow.astype("uint8")) > 0
                ref = w.display.log_map.apply(ref.astype("uint8")) > 0
            self.mask_W.set_allow(allow, ref)
        if "H" in which:
            box = None
            if region is not None and region.target == "allow_H":
                box = (*region.rows, *region.cols)
            self.mask_H.set_allow(p.allow_H, self._reference("H"), box)

    def refresh_score_outlines(self) -> None:
        p = self.project
        if p is None:
            self.score_outlines.clear()
            return
        self._outline_tol = p.score.tol_pitch
        self.score_outlines.set_notes(score_notes(p), p.source_colour, p.score.tol_pitch, self.window.log_freq)

    def _set_contribution_visible(self, on: bool) -> None:
        self.contribution.set_visible(on)
        if on:
            self.update_contribution()

    def update_contribution(self) -> None:
        """Tint V with W[:, S]·H[S, :] of the selected components S (at most 64)."""
        p = self.project
        rows = self.selected_components()
        if p is None or not rows or not self.contribution.visible:
            self.contribution.clear()
            return
        rows = rows[:MAX_CONTRIBUTION_COMPONENTS]
        model = p.W[:, rows] @ p.H[rows, :]
        w = self.window
        if w.log_freq and w.display.log_map is not None:
            model = w.display.log_map.apply(model)
        self.contribution.set_contribution(model)

    def _on_selection_changed(self, rows) -> None:
        p = self.project
        rows = [r for r in rows if p is not None and r < p.n_components]
        if p is not None:
            self.highlight_H.set_selection(rows, (0.0, p.duration))
            self.highlight_W.set_selection(rows, self.window.display.y_extent())
        self.tools.update_actions()
        if rows:
            self._contribution_timer.start()
        else:
            self._contribution_timer.stop()
            self.contribution.clear()

    def _on_pane_clicked(self, pane, ev) -> None:
        """A click on H's or W's component axis selects that component (Ctrl: toggle, Shift: range)."""
        p = self.project
        if p is None or ev.button() != Qt.MouseButton.LeftButton:
            return
        pos = ev.scenePos()
        if not pane.comp_axis.sceneBoundingRect().contains(pos):
            return
        v = pane.vb.mapSceneToView(pos)
        r = int(math.floor(v.y() if pane is self.window.h_pane else v.x()))
        if not 0 <= r < p.n_components:
            return
        mods = ev.modifiers()
        sel = set(self.selected_components())
        if mods & Qt.KeyboardModifier.ControlModifier:
            sel ^= {r}
        elif mods & Qt.KeyboardModifier.ShiftModifier and self._anchor is not None:
            lo, hi = sorted((self._anchor, r))
            sel |= set(range(lo, hi + 1))
        else:
            sel = {r}
        self._anchor = r
        self.panel.select_rows(sorted(sel))

    # ================================================================================ edits
    def selected_components(self) -> list[int]:
        return self.panel.selected_rows()

    def say(self, text: str, ms: int = 5000) -> None:
        self.messages.append(text)
        self.bench.status(text, ms)

    def push(self, edit) -> bool:
        """Do ``edit`` as one undo step (refused while a run is going; empty edits are dropped)."""
        if self.bench.project is None:
            return False
        if self.bench.running():
            self.say("Cancel the run or wait for it to finish before editing")
            return False
        if not edit:
            return False
        self.bench.undo.push(edit)
        self.last_edit = edit
        return True

    def _try(self, make) -> bool:
        p = self.bench.project
        if p is None:
            return False
        try:
            edit = make(p)
        except ValueError as exc:
            self.say(str(exc))
            return False
        return self.push(edit)

    # components
    def rename_component(self, r: int, name: str) -> bool:
        return self._try(lambda p: ce.rename_component(p, r, name))

    def set_locked(self, rows, locked: bool) -> bool:
        if not rows:
            return False
        return self._try(lambda p: ce.set_locked(p, rows, locked))

    def assign(self, rows, source: str) -> bool:
        if not rows:
            return False
        return self._try(lambda p: ce.assign_components(p, rows, source))

    def delete_components(self, rows) -> bool:
        if not rows:
            return False
        return self._try(lambda p: ce.RemoveComponents(p, rows))

    def add_pitch_component(self, pitch: int, source: str = "", where=None) -> bool:
        """``where``: None (activation allowed everywhere), ``(t0, t1)`` in seconds, or "notes"."""

        def make(p):
            frames = where
            if isinstance(where, tuple):
                N = p.n_frames
                frames = tuple(min(max(int(t / p.duration * N), 0), N - 1) for t in where)
            data = ce.pitch_component_data(p, pitch, source, frames)
            return ce.insert_components_edit(p, [data], f"add pitch component {data.component.name}")

        ok = self._try(make)
        if ok:
            self._select_names([self.last_edit.datas[0].component.name])
        return ok

    def add_onset_templates(self, rows) -> bool:
        """An onset template for every selected pitch component that has none yet."""
        p = self.bench.project
        if p is None:
            return False
        existing = {(c.pitch, c.source) for c in p.components if c.kind == "onset"}
        datas, skipped = [], []
        for r in rows:
            c = p.components[r]
            if c.kind != "pitch":
                continue
            if (c.pitch, c.source) in existing:
                skipped.append(c.name)
                continue
            try:
                datas.append(ce.onset_component_data(p, r))
            except ValueError as exc:
                self.say(str(exc))
            existing.add((c.pitch, c.source))
        if not datas:
            self.say(
                "Select pitch components without an onset template"
                + (f" ({', '.join(skipped[:3])} already have one)" if skipped else "")
            )
            return False
        names = [d.component.name for d in datas]
        text = "add onset template " + (names[0] if len(names) == 1 else f"×{len(names)}")
        ok = self.push(ce.insert_components_edit(p, datas, text))
        if ok:
            self._select_names(names)
        return ok

    def _select_names(self, names) -> None:
        p = self.bench.project
        want = set(names)
        self.panel.select_rows([r for r, c in enumerate(p.components) if c.name in want])

    def ask_add_pitch(self) -> AddPitchDialog | None:
        p = self.bench.project
        if p is None:
            return None
        notes = score_notes(p)

        def has_notes(pitch, source):
            src = "" if source == RESIDUAL else source
            return any(n.pitch == pitch and (n.group == src or not p.score.per_group) for n in notes)

        (t0, t1), _ = self.window.v_pane.viewRange()
        dlg = AddPitchDialog([s.name for s in p.sources], p.duration, (t0, t1), has_notes, self.window)
        sel = self.selected_components()
        if sel and p.components[sel[0]].source:
            dlg.source.setCurrentText(p.components[sel[0]].source)

        def done(result):
            if result == QDialog.DialogCode.Accepted:
                pitch, source, where = dlg.values()
                self.add_pitch_component(pitch, source, where)

        dlg.finished.connect(done)
        dlg.open()
        self.add_pitch_dialog = dlg
        return dlg

    # sources
    def next_colour(self) -> str:
        p = self.bench.project
        return ce.next_source_colour(p) if p is not None else "#4c9be8"

    def new_source(self, name: str, colour: str | None = None, assign=None) -> bool:
        return self._try(lambda p: ce.add_source(p, name, colour, assign or ()))

    def rename_source(self, old: str, new: str) -> bool:
        return self._try(lambda p: ce.rename_source(p, old, new))

    def recolour_source(self, name: str, colour: str) -> bool:
        return self._try(lambda p: ce.recolour_source(p, name, colour))

    def delete_source(self, name: str) -> bool:
        return self._try(lambda p: ce.delete_source(p, name))

    def assign_pitch_range(self, lo: int, hi: int, source: str) -> bool:
        return self._try(lambda p: ce.assign_pitch_range(p, lo, hi, source))

    def reset_sources_from_score(self) -> bool:
        return self._try(ce.reset_sources_from_score)

    def shutdown(self) -> None:
        """The window is closing: stop listening to the undo stack and the tolerance spin boxes. The
        stack outlives the dock's widgets while the window is torn down and emits ``indexChanged`` when it
        is cleared; reading a deleted QDoubleSpinBox then raised on quit (issue 18, item 2)."""
        if not self._tolerances_connected:
            return
        self._tolerances_connected = False
        stack = self.bench.undo.stack
        if shiboken6.isValid(stack):
            stack.indexChanged.disconnect(self._sync_tolerances)
        pp = self.window.params_pane
        for name in _TOL_SPINS:
            spin = getattr(pp, name)
            if shiboken6.isValid(spin):
                spin.valueChanged.disconnect(self._on_tolerance_changed)

    # tolerances
    def _sync_tolerances(self, *_):
        """Show ``project.score``'s tolerances in the dock (after an undo / redo of a tolerance change)
        without touching its other fields."""
        p = self.bench.project
        if p is None:
            return
        pp = self.window.params_pane
        if not self._tolerances_connected or not shiboken6.isValid(pp):
            return
        changed = False
        for name in _TOL_SPINS:
            spin = getattr(pp, name)
            value = float(getattr(p.score, name))
            if abs(spin.value() - value) > 1e-9:
                spin.blockSignals(True)
                spin.setValue(value)
                spin.blockSignals(False)
                changed = True
        if changed or self._outline_tol != p.score.tol_pitch:
            self.refresh_score_outlines()
        if self._masks_score is not p.score:  # the score-derived reference moved with the tolerances
            self.refresh_masks()

    def _on_tolerance_changed(self, *_):
        w = self.window
        pp = w.params_pane
        p = self.bench.project
        if p is None or getattr(pp, "_updating", False):
            return
        new = pp.score_params()
        if self.bench.running():
            self.say("Cancel the run or wait for it to finish before changing the tolerances")
            self._sync_tolerances()
            return
        edit = tolerance_edit(p, new)
        if edit is not None:
            self.push(edit)


def install_editing(window) -> EditingController:
    """Add the editing tools, overlays, Components and History docks to ``window``."""
    return EditingController(window)
