"""The note editor and the source brush on V (DESIGN.md §4; issue 16 items 2 and 3).

**Notes tool** (E). The score overlay's notes — loaded, aligned or drafted — are edited on V:

* click a note: select it (Ctrl/Shift: add to / remove from the selection); click elsewhere: none;
* drag a note: move the selected notes in time and pitch (whole semitones);
* drag the right end of a note (the last 6 pixels): resize it;
* double-click on V: a new note there (the pitch under the cursor, 0.5 s), in the source chosen in the
  tool bar's source box;
* Delete / Backspace: delete the selected notes; ↑ / ↓: a semitone up / down (Shift: an octave);
  ← / →: 50 ms earlier / later (Shift: 0.5 s); the tool bar's source box + "Assign" (or Edit → Notes):
  give the selected notes to a source;
* **Alt+drag** a note (or any moment): an alignment anchor instead of a move (as the Align tool, L,
  does without Alt: gui/alignment.py). In the notes tool a drag edits one note's written time; an
  anchor moves the whole warp around it.

Each gesture is one undo step (:class:`~demixer.model.score_edits.ScoreEdit`): the components and their
allowed regions follow (a new pitch gets a component, a pitch without notes loses its), and for an
aligned score the score's own notes (score time) change with them, so that a later anchor keeps the
edit.

**Source brush** (P): painting V in the colour of the source chosen in the source box allows that
source's components there and forbids the other sources' there (those whose templates reach the painted
frequencies) — one stroke, one undo step (:func:`~demixer.model.score_edits.source_brush_edit`); the
next Run follows it (the masks are the run's constraints).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QKeySequence, QPainterPath, QPen
from PySide6.QtWidgets import QComboBox, QGraphicsPathItem, QGraphicsRectItem, QLabel

from demixer.core.notes import Note, pitch_name, pitch_to_hz
from demixer.core.strokes import stroke_mask
from demixer.gui.overlays import PreviewOverlay, dashed_pen
from demixer.gui.tools import NOTES, SOURCE_BRUSH
from demixer.model.project import RESIDUAL
from demixer.model.score_edits import MIN_NOTE_S, ScoreEdit, source_brush_edit, to_score_times

__all__ = ["NoteEditor", "NoteGhost", "note_at", "view_pos", "y_to_pitch", "install_note_editor"]

RESIZE_PX = 6.0
MIN_DRAG_PX = 3.0
NEW_NOTE_S = 0.5


# ============================================================================================ geometry
def view_pos(pane, pos: QPointF, clip: bool = True) -> tuple[float, float] | None:
    """A viewport position → V's data coordinates (time, y), None outside the plot when ``clip``."""
    inv, _ok = pane.viewportTransform().inverted()
    scene = inv.map(QPointF(pos))
    if clip and not pane.vb.sceneBoundingRect().contains(scene):
        return None
    v = pane.vb.mapSceneToView(scene)
    return float(v.x()), float(v.y())


def y_to_pitch(window, y: float) -> float:
    """V's y coordinate (log2 Hz or Hz) → fractional MIDI pitch."""
    f = 2.0**y if window.log_freq else y
    return 69.0 + 12.0 * math.log2(max(f, 1e-3) / 440.0)


def pitch_to_y(window, pitch: float) -> float:
    f = pitch_to_hz(pitch)
    return math.log2(f) if window.log_freq else f


def note_at(window, project, t: float, y: float, px: float = 4.0) -> int | None:
    """The index of the note under (t, y) on V (its semitone band, its time span ± ``px`` pixels)."""
    if not project.notes:
        return None
    pitch = y_to_pitch(window, y)
    dt = px * window.v_pane.vb.viewPixelSize()[0]
    best, best_key = None, None
    for i, n in enumerate(project.notes):
        dp = abs(n.pitch - pitch)
        if dp > 0.5 or not (n.onset - dt <= t <= n.offset + dt):
            continue
        key = (dp, n.offset - n.onset)
        if best_key is None or key < best_key:
            best, best_key = i, key
    return best


class NoteGhost:
    """Outlines of notes being dragged (where they would go)."""

    def __init__(self, pane, colour: str = "#ffffff") -> None:
        self.item = QGraphicsPathItem()
        self.item.setPen(dashed_pen(colour, 2.0))
        self.item.setZValue(55)
        self.item.setVisible(False)
        pane.addItem(self.item, ignoreBounds=True)

    def show(self, window, onset: float, offset: float, pitch: int) -> None:
        self.show_many(window, [(onset, offset, pitch)])

    def show_many(self, window, notes) -> None:
        path = QPainterPath()
        for onset, offset, pitch in notes:
            y0, y1 = pitch_to_y(window, pitch - 0.5), pitch_to_y(window, pitch + 0.5)
            path.addRect(QRectF(onset, y0, max(offset - onset, 1e-3), y1 - y0))
        self.item.setPath(path)
        self.item.setVisible(True)

    def hide(self) -> None:
        self.item.setVisible(False)


# ============================================================================================ the edits
def notes_edit(project, new: list[Note], origin: list[int | None], text: str) -> ScoreEdit:
    """A :class:`ScoreEdit` to ``new`` notes; ``origin[j]``: the index of note ``j`` before the edit
    (None: a new note). An aligned score's own notes follow: pitch and source as edited, times mapped
    back through the warp when they changed."""
    st = project.score_alignment
    if st is None:
        return ScoreEdit(project, new, text)
    warp = st.warp
    score = []
    for j, n in enumerate(new):
        i = origin[j]
        old = project.notes[i] if i is not None else None
        if old is not None and (old.onset, old.offset) == (n.onset, n.offset):
            s = st.score_notes[i]
            score.append(dataclasses.replace(s, pitch=n.pitch, group=n.group))
        elif warp is not None:
            on, off = (float(v) for v in to_score_times(warp, [n.onset, n.offset]))
            score.append(dataclasses.replace(n, onset=on, offset=max(off, on)))
        else:
            score.append(n)
    return ScoreEdit(project, new, text, alignment=st.with_(score_notes=tuple(score)))


class NoteEditor:
    """The notes tool and the source brush on V, for one window (see the module docstring)."""

    def __init__(self, window, editing, alignment=None) -> None:
        self.window = window
        self.bench = window.bench
        self.editing = editing
        self.alignment = alignment
        self.selected: list[int] = []
        self._drag = None
        self._stroke = None
        self.ghost = NoteGhost(window.v_pane, "#ffffff")
        self.highlight = QGraphicsPathItem()
        pen = QPen(QColor("#ffffff"))
        pen.setCosmetic(True)
        pen.setWidthF(3.0)
        self.highlight.setPen(pen)
        self.highlight.setZValue(45)
        window.v_pane.addItem(self.highlight, ignoreBounds=True)
        self.preview = PreviewOverlay(window.v_pane)
        self.cursor_rect = QGraphicsRectItem()
        # the source box in the tools tool bar (new notes, assignments and the source brush)
        tb = editing.tools.toolbar
        tb.addSeparator()
        label = QLabel("Src")
        label.setToolTip("The source for new notes, note assignments and the source brush")
        tb.addWidget(label)
        self.source_box = QComboBox()
        self.source_box.setToolTip("The source for new notes, note assignments and the source brush")
        self.source_box.setMaximumWidth(90)
        tb.addWidget(self.source_box)
        self.act_assign = QAction("Assign the selected notes to the chosen source", window)
        self.act_assign.triggered.connect(lambda: self.assign_selected(self.current_source()))
        tb.addAction(self.act_assign)
        self.act_assign.setIconText("→")
        self._build_key_actions()
        editing.tools.register_v_tool(NOTES, self)
        editing.tools.register_v_tool(SOURCE_BRUSH, _SourceBrush(self))
        editing.tools.tool_changed.connect(self._on_tool_changed)
        self._project = None
        self.bench.project_changed.connect(self._on_project_changed)
        self._on_project_changed()

    # ================================================================================ setup
    def _build_key_actions(self) -> None:
        w = self.window
        self.key_actions: dict[str, QAction] = {}
        specs = [
            ("delete", "Delete the selected notes", ["Delete", "Backspace"], self.delete_selected),
            ("up", "Selected notes a semitone up", ["Up"], lambda: self.transpose_selected(1)),
            ("down", "Selected notes a semitone down", ["Down"], lambda: self.transpose_selected(-1)),
            ("octave_up", "Selected notes an octave up", ["Shift+Up"], lambda: self.transpose_selected(12)),
            ("octave_down", "Selected notes an octave down", ["Shift+Down"], lambda: self.transpose_selected(-12)),
            ("left", "Selected notes 50 ms earlier", ["Left"], lambda: self.shift_selected(-0.05)),
            ("right", "Selected notes 50 ms later", ["Right"], lambda: self.shift_selected(0.05)),
            ("far_left", "Selected notes 0.5 s earlier", ["Shift+Left"], lambda: self.shift_selected(-0.5)),
            ("far_right", "Selected notes 0.5 s later", ["Shift+Right"], lambda: self.shift_selected(0.5)),
        ]
        menu = None
        edit = self.bench.actions.menu("edit")
        if edit is not None:
            menu = edit.addMenu("&Notes")
        for key, text, shortcuts, slot in specs:
            a = QAction(text, w)
            a.setShortcuts([QKeySequence(s) for s in shortcuts])
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            a.triggered.connect(slot)
            w.v_pane.addAction(a)
            if menu is not None:
                menu.addAction(a)
            self.key_actions[key] = a
        if menu is not None:
            menu.addAction(self.act_assign)

    def _on_project_changed(self) -> None:
        if self._project is not None:
            self._project.notes_changed.disconnect(self._on_notes_changed)
            self._project.sources_changed.disconnect(self._fill_sources)
        self._project = p = self.bench.project
        self.selected = []
        if p is not None:
            p.notes_changed.connect(self._on_notes_changed)
            p.sources_changed.connect(self._fill_sources)
        self._fill_sources()
        self._draw_selection()

    def _fill_sources(self) -> None:
        p = self.bench.project
        cur = self.source_box.currentText()
        self.source_box.blockSignals(True)
        self.source_box.clear()
        if p is not None:
            for name in [s.name for s in p.sources] + [RESIDUAL]:
                self.source_box.addItem(name)
                self.source_box.setItemData(
                    self.source_box.count() - 1, QColor(p.source_colour(name)), Qt.ItemDataRole.DecorationRole
                )
        i = self.source_box.findText(cur)
        self.source_box.setCurrentIndex(max(i, 0))
        self.source_box.blockSignals(False)

    def current_source(self) -> str:
        return self.source_box.currentText() or RESIDUAL

    def set_source(self, name: str) -> None:
        i = self.source_box.findText(name)
        if i < 0:
            raise ValueError(f'there is no source called "{name}"')
        self.source_box.setCurrentIndex(i)

    def _on_notes_changed(self) -> None:
        p = self.bench.project
        self.selected = [i for i in self.selected if p is not None and i < len(p.notes)]
        self._draw_selection()

    def _on_tool_changed(self, name: str) -> None:
        if name != NOTES:
            self.tool_left()

    def tool_left(self) -> None:
        self._drag = None
        self.ghost.hide()

    # ================================================================================ selection
    def select(self, indices) -> None:
        p = self.bench.project
        n = len(p.notes) if p is not None else 0
        self.selected = sorted({int(i) for i in indices if 0 <= int(i) < n})
        self._draw_selection()

    def _draw_selection(self) -> None:
        p = self.bench.project
        path = QPainterPath()
        if p is not None:
            for i in self.selected:
                n = p.notes[i]
                y0, y1 = pitch_to_y(self.window, n.pitch - 0.5), pitch_to_y(self.window, n.pitch + 0.5)
                path.addRect(QRectF(n.onset, y0, max(n.offset - n.onset, 1e-3), y1 - y0))
        self.highlight.setPath(path)
        for a in self.key_actions.values():
            a.setEnabled(bool(self.selected))
        self.act_assign.setEnabled(bool(self.selected))

    # ================================================================================ gestures
    def _push(self, new, origin, text) -> bool:
        p = self.bench.project
        if p is None:
            return False
        edit = notes_edit(p, new, origin, text)
        if not edit:
            return False
        return self.editing.push(edit)

    def add_note(self, onset: float, pitch: int, duration: float = NEW_NOTE_S, source: str | None = None) -> bool:
        p = self.bench.project
        if p is None:
            return False
        source = self.current_source() if source is None else source
        group = "" if source == RESIDUAL else source
        onset = float(min(max(onset, 0.0), p.duration - MIN_NOTE_S))
        offset = float(min(onset + max(duration, MIN_NOTE_S), p.duration))
        pitch = int(min(max(round(pitch), 0), 127))
        note = Note(onset, offset, pitch, group)
        new = list(p.notes) + [note]
        ok = self._push(new, list(range(len(p.notes))) + [None], f"add note {pitch_name(pitch)} at {onset:.2f} s")
        if ok:
            self.select([len(new) - 1])
        return ok

    def delete_selected(self) -> bool:
        p = self.bench.project
        if p is None or not self.selected:
            return False
        gone = set(self.selected)
        keep = [i for i in range(len(p.notes)) if i not in gone]
        what = pitch_name(p.notes[self.selected[0]].pitch) if len(gone) == 1 else f"{len(gone)} notes"
        ok = self._push([p.notes[i] for i in keep], keep, f"delete note{'s' if len(gone) > 1 else ''} {what}")
        if ok:
            self.select([])
        return ok

    def move_selected(self, dt: float, dp: int) -> bool:
        p = self.bench.project
        if p is None or not self.selected or (abs(dt) < 1e-9 and dp == 0):
            return False
        new = list(p.notes)
        for i in self.selected:
            n = new[i]
            d = n.offset - n.onset
            on = float(min(max(n.onset + dt, 0.0), p.duration - MIN_NOTE_S))
            pitch = int(min(max(n.pitch + dp, 0), 127))
            new[i] = dataclasses.replace(n, onset=on, offset=float(min(on + d, p.duration)), pitch=pitch)
        what = pitch_name(p.notes[self.selected[0]].pitch) if len(self.selected) == 1 else f"{len(self.selected)} notes"
        parts = []
        if abs(dt) >= 1e-9:
            parts.append(f"{dt:+.2f} s")
        if dp:
            parts.append(f"{dp:+d} semitone{'s' if abs(dp) > 1 else ''}")
        return self._push(new, list(range(len(new))), f"move {what} {', '.join(parts)}")

    def shift_selected(self, dt: float) -> bool:
        return self.move_selected(dt, 0)

    def transpose_selected(self, dp: int) -> bool:
        return self.move_selected(0.0, dp)

    def resize(self, index: int, offset: float) -> bool:
        p = self.bench.project
        if p is None:
            return False
        n = p.notes[index]
        off = float(min(max(offset, n.onset + MIN_NOTE_S), p.duration))
        if abs(off - n.offset) < 1e-9:
            return False
        new = list(p.notes)
        new[index] = dataclasses.replace(n, offset=off)
        return self._push(new, list(range(len(new))), f"resize {pitch_name(n.pitch)} to {off - n.onset:.2f} s")

    def assign_selected(self, source: str) -> bool:
        p = self.bench.project
        if p is None or not self.selected:
            return False
        group = "" if source == RESIDUAL else source
        new = list(p.notes)
        for i in self.selected:
            new[i] = dataclasses.replace(new[i], group=group)
        what = pitch_name(p.notes[self.selected[0]].pitch) if len(self.selected) == 1 else f"{len(self.selected)} notes"
        return self._push(new, list(range(len(new))), f"assign {what} to {source}")

    # ================================================================================ mouse
    def v_event(self, pane, ev) -> bool:
        t = ev.type()
        p = self.bench.project
        if p is None:
            return False
        alt = bool(ev.modifiers() & Qt.KeyboardModifier.AltModifier) if hasattr(ev, "modifiers") else False
        if self.alignment is not None and (alt or self._drag == "anchor"):
            if t == QEvent.Type.MouseButtonPress:
                self._drag = "anchor"
            taken = self.alignment.drag_event(pane, ev)
            if t == QEvent.Type.MouseButtonRelease:
                self._drag = None
            return taken
        if t == QEvent.Type.MouseButtonDblClick and ev.button() == Qt.MouseButton.LeftButton:
            pos = view_pos(pane, ev.position())
            if pos is None:
                return False
            self._drag = None
            self.ghost.hide()
            if note_at(self.window, p, *pos) is None:
                self.add_note(pos[0], round(y_to_pitch(self.window, pos[1])))
            return True
        if t == QEvent.Type.MouseButtonPress and ev.button() == Qt.MouseButton.LeftButton:
            pos = view_pos(pane, ev.position())
            if pos is None:
                return False
            pane.setFocus()
            i = note_at(self.window, p, *pos)
            mods = ev.modifiers()
            if i is None:
                if not mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier):
                    self.select([])
                self._drag = None
                return True
            if mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier):
                sel = set(self.selected) ^ {i}
                self.select(sel)
                self._drag = None
                return True
            if i not in self.selected:
                self.select([i])
            n = p.notes[i]
            px = self.window.v_pane.vb.viewPixelSize()[0]
            at_end = n.offset - pos[0] <= RESIZE_PX * px and n.offset - n.onset > 3 * RESIZE_PX * px
            mode = "resize" if at_end else "move"
            self._drag = (mode, i, pos, QPointF(ev.position()))
            return True
        if t == QEvent.Type.MouseMove and isinstance(self._drag, tuple):
            pos = view_pos(pane, ev.position(), clip=False)
            mode, i, start, _ = self._drag
            dt = pos[0] - start[0]
            if mode == "resize":
                n = p.notes[i]
                self.ghost.show(self.window, n.onset, max(n.offset + dt, n.onset + MIN_NOTE_S), n.pitch)
            else:
                dp = round(y_to_pitch(self.window, pos[1]) - y_to_pitch(self.window, start[1]))
                moved = [(p.notes[k].onset + dt, p.notes[k].offset + dt, p.notes[k].pitch + dp) for k in self.selected]
                self.ghost.show_many(self.window, moved)
            return True
        if t == QEvent.Type.MouseButtonRelease and ev.button() == Qt.MouseButton.LeftButton:
            drag = self._drag
            self._drag = None
            self.ghost.hide()
            if not isinstance(drag, tuple):
                return drag is not None
            mode, i, start, press = drag
            pos = view_pos(pane, ev.position(), clip=False)
            moved = QPointF(ev.position()) - press
            if abs(moved.x()) < MIN_DRAG_PX and abs(moved.y()) < MIN_DRAG_PX:
                return True
            dt = pos[0] - start[0]
            if mode == "resize":
                self.resize(i, p.notes[i].offset + dt)
            else:
                dp = round(y_to_pitch(self.window, pos[1]) - y_to_pitch(self.window, start[1]))
                if abs(moved.x()) < MIN_DRAG_PX:
                    dt = 0.0
                self.move_selected(dt, int(dp))
            return True
        return False


class _SourceBrush:
    """The source brush's strokes on V (see the module docstring)."""

    def __init__(self, editor: NoteEditor) -> None:
        self.editor = editor
        self.stroke = None
        self.pushed = 0

    def tool_left(self) -> None:
        self.stroke = None
        self.editor.preview.end()

    def v_event(self, pane, ev) -> bool:
        tools = self.editor.editing.tools
        bench = self.editor.bench
        t = ev.type()
        if t == QEvent.Type.MouseButtonPress and ev.button() == Qt.MouseButton.LeftButton:
            pos = view_pos(pane, ev.position())
            if pos is None or pane.data_db is None:
                return False
            if bench.running():
                bench.status("Cancel or wait for the run before editing", 4000)
                return True
            shape = tools.grid_shape(pane)
            rc = tools.view_to_cell(pane, *pos)
            radius = tools.brush_radius_cells(pane)
            p = bench.project
            colour = QColor(p.source_colour(self.editor.current_source()))
            self.editor.preview.begin(shape, True)
            self.editor.preview.colour = np.array([colour.red(), colour.green(), colour.blue(), 150], np.uint8)
            mask = stroke_mask(shape, [rc], radius)
            self.stroke = (shape, radius, [rc], mask)
            self.editor.preview.show(mask)
            return True
        if t == QEvent.Type.MouseMove and self.stroke is not None:
            pos = view_pos(pane, ev.position(), clip=False)
            shape, radius, pts, mask = self.stroke
            rc = tools.view_to_cell(pane, *pos)
            if rc != pts[-1]:
                seg = stroke_mask(shape, [pts[-1], rc], radius)
                pts.append(rc)
                mask |= seg
                self.editor.preview.show(seg)
            return True
        release = t == QEvent.Type.MouseButtonRelease and ev.button() == Qt.MouseButton.LeftButton
        if release and self.stroke is not None:
            pos = view_pos(pane, ev.position(), clip=False)
            shape, radius, pts, mask = self.stroke
            rc = tools.view_to_cell(pane, *pos)
            if rc != pts[-1]:
                mask |= stroke_mask(shape, [pts[-1], rc], radius)
            self.stroke = None
            self.editor.preview.end()
            self.paint(tools.to_model_mask("W", mask))
            return True
        return False

    def paint(self, cells: np.ndarray, source: str | None = None) -> bool:
        """Paint ``cells`` (bins × frames) in ``source`` (the chosen one by default): one undo step."""
        p = self.editor.bench.project
        source = source or self.editor.current_source()
        try:
            edit = source_brush_edit(p, source, cells, f"paint source {source}")
        except ValueError as exc:
            self.editor.editing.say(str(exc))
            return False
        if not edit:
            self.editor.bench.status("The stroke changes nothing", 3000)
            return False
        ok = self.editor.editing.push(edit)
        self.pushed += int(ok)
        return ok


def install_note_editor(window, editing, alignment=None) -> NoteEditor:
    return NoteEditor(window, editing, alignment)
