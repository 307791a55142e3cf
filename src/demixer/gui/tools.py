"""Editing tools on the panes (DESIGN.md §4): navigate, brush "zero", brush "allow", rectangle "zero",
rectangle "allow"; the brush size; a time–frequency selection on V.

Keys: N navigate · B brush zero · A brush allow · R rectangle zero · Shift+R rectangle allow ·
[ / ] smaller / larger brush.

How a stroke works: while a paint tool is active, an event filter on each pane's viewport takes the
left-button press, moves and release away from pyqtgraph (so the drag paints instead of panning; the
wheel still zooms and the right button still opens the view menu). Mouse positions are mapped to
fractional cells of the *displayed* grid (W's rows are log-frequency rows when log frequency is on) and
painted into a preview with :func:`~demixer.core.strokes.stroke_mask`, one segment per mouse event, so
a fast drag leaves no gaps; the brush radius is ``brush_px`` screen pixels, converted per axis into
cells. On release the displayed-grid mask is mapped to W's bins or H's frames and pushed as ONE undo
step (:func:`~demixer.model.paint.paint_edit`). On V, a paint tool drags out a time–frequency
rectangle; a menu then offers to restrict the selected components to its time range or to forbid them
in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QCursor, QIcon, QKeySequence, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsEllipseItem, QMenu, QSpinBox, QToolBar

from demixer.core.strokes import rect_mask, stroke_mask
from demixer.gui.overlays import PreviewOverlay, SelectionRect, dashed_pen, log_rows_to_bins
from demixer.model.paint import paint_edit, time_range_edit

__all__ = [
    "NOTES",
    "ALIGN",
    "SOURCE_BRUSH",
    "V_TOOLS",
    "NAVIGATE",
    "BRUSH_ZERO",
    "BRUSH_ALLOW",
    "RECT_ZERO",
    "RECT_ALLOW",
    "TOOLS",
    "ToolController",
]

NAVIGATE = "navigate"
BRUSH_ZERO = "brush zero"
BRUSH_ALLOW = "brush allow"
RECT_ZERO = "rectangle zero"
RECT_ALLOW = "rectangle allow"
NOTES = "notes"
ALIGN = "align"
SOURCE_BRUSH = "source brush"
#: tools that act on V only (their handlers are registered by gui/note_editor.py and gui/alignment.py;
#: on W and H they navigate)
V_TOOLS = (NOTES, ALIGN, SOURCE_BRUSH)
#: name → (label, shortcut, tool tip)
TOOLS: dict[str, tuple[str, str, str]] = {
    NAVIGATE: ("Navigate", "N", "Pan and zoom the panes (N)"),
    BRUSH_ZERO: ("Brush zero", "B", "Paint on W or H: forbid the painted entries, they become exactly 0 (B)"),
    BRUSH_ALLOW: ("Brush allow", "A", "Paint on W or H: allow the painted entries again (A)"),
    RECT_ZERO: ("Rect zero", "R", "Drag a rectangle on W or H: forbid it (R)"),
    RECT_ALLOW: ("Rect allow", "Shift+R", "Drag a rectangle on W or H: allow it (Shift+R)"),
    NOTES: (
        "Notes",
        "E",
        "Edit the score's notes on V: click selects, drag moves (time and pitch), drag the right end "
        "resizes, double-click adds, Delete deletes; Alt+drag adds an alignment anchor (E)",
    ),
    ALIGN: (
        "Align",
        "L",
        "Correct the alignment on V: drag a note (or any moment) to where it sounds; it becomes an anchor "
        "and the score is re-warped through the anchors (L)",
    ),
    SOURCE_BRUSH: (
        "Source brush",
        "P",
        "Paint a source on V in its colour (the source chosen in the tool bar): its components are "
        "allowed there, the other sources' components forbidden (P)",
    ),
}
BRUSH_MIN, BRUSH_MAX, BRUSH_DEFAULT = 1, 80, 6
MIN_SELECTION_PX = 3.0


def tool_icon(name: str) -> QIcon:
    """Small drawn icons: a four-way arrow (navigate), a disc (brush) or a square (rectangle), red and
    struck through for "zero", green for "allow"."""
    pm = QPixmap(32, 32)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    if name in V_TOOLS:
        _v_tool_icon(p, name)
    elif name == NAVIGATE:
        pen = QPen(QColor("#d7dae0"), 2.6)
        p.setPen(pen)
        p.drawLine(16, 4, 16, 28)
        p.drawLine(4, 16, 28, 16)
        for a, b, c in (((16, 3), (11, 9), (21, 9)), ((16, 29), (11, 23), (21, 23))):
            p.drawLine(*a, *b)
            p.drawLine(*a, *c)
        for a, b, c in (((3, 16), (9, 11), (9, 21)), ((29, 16), (23, 11), (23, 21))):
            p.drawLine(*a, *b)
            p.drawLine(*a, *c)
    else:
        allow = name in (BRUSH_ALLOW, RECT_ALLOW)
        colour = QColor("#5ee08c" if allow else "#ff5a5a")
        fill = QColor(colour)
        fill.setAlpha(110)
        p.setPen(QPen(colour, 2.6))
        p.setBrush(fill)
        if name in (BRUSH_ZERO, BRUSH_ALLOW):
            p.drawEllipse(5, 5, 22, 22)
        else:
            p.drawRect(5, 7, 22, 18)
        if not allow:
            p.drawLine(7, 25, 25, 7)
    p.end()
    return QIcon(pm)


def _v_tool_icon(p: QPainter, name: str) -> None:
    """Notes: three note bars; align: a bar with an arrow; source brush: a multicoloured disc."""
    if name == NOTES:
        p.setPen(QPen(QColor("#f4f4f4"), 1.6))
        p.setBrush(QColor(76, 155, 232, 150))
        for x, y, w in ((4, 20, 12), (12, 12, 14), (8, 4, 18)):
            p.drawRect(x, y, w, 6)
    elif name == ALIGN:
        p.setPen(QPen(QColor("#f4f4f4"), 1.6))
        p.setBrush(QColor(242, 142, 43, 150))
        p.drawRect(4, 10, 10, 8)
        pen = QPen(QColor("#ffd166"), 2.4)
        p.setPen(pen)
        p.drawLine(16, 14, 28, 14)
        p.drawLine(28, 14, 23, 9)
        p.drawLine(28, 14, 23, 19)
        p.drawLine(4, 26, 28, 26)
    else:
        p.setPen(QPen(QColor("#f4f4f4"), 1.6))
        for i, c in enumerate(("#4c9be8", "#f28e2b", "#59a14f")):
            p.setBrush(QColor(c))
            p.drawPie(5, 5, 22, 22, i * 120 * 16, 120 * 16)


def _size_icon(larger: bool) -> QIcon:
    """A disc with + (larger brush) or − (smaller)."""
    pm = QPixmap(32, 32)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    p.setPen(QPen(QColor("#d7dae0"), 2.4))
    r = 12 if larger else 8
    p.drawEllipse(16 - r, 16 - r, 2 * r, 2 * r)
    p.drawLine(11, 16, 21, 16)
    if larger:
        p.drawLine(16, 11, 16, 21)
    p.end()
    return QIcon(pm)


@dataclass
class _Stroke:
    pane: object
    target: str  # "W", "H" or "V"
    allow: bool
    rect: bool
    shape: tuple[int, int]
    radius: tuple[float, float]
    start_view: tuple[float, float]
    points: list[tuple[float, float]] = field(default_factory=list)
    mask: np.ndarray | None = None


class ToolController(QObject):
    """The tool bar, the pane mouse handling and the V selection of one :class:`MainWindow`."""

    tool_changed = Signal(str)
    selection_changed = Signal(object)  # (t0, t1, f0, f1) in s and Hz, or None

    def __init__(self, window, editing) -> None:
        super().__init__(window)
        self.window = window
        self.bench = window.bench  # the shared state: project, undo, runs, view, tasks, actions
        self.editing = editing
        self.tool = NAVIGATE
        self.brush_px = float(BRUSH_DEFAULT)
        self.show_popup = True
        self.v_selection: tuple[float, float, float, float] | None = None
        self._stroke: _Stroke | None = None
        self._rows_to_bins: tuple[object, np.ndarray] | None = None
        self.popup: QMenu | None = None
        self.strokes_pushed = 0
        self.v_handlers: dict[str, object] = {}  # V_TOOLS name → handler with .v_event(pane, ev) -> bool
        self._build_actions()
        self._build_toolbar()
        self._panes = {}
        self.previews = {}
        self.rubber = {}
        self.cursors = {}
        for pane, target in ((window.w_pane, "W"), (window.h_pane, "H"), (window.v_pane, "V")):
            vp = pane.viewport()
            self._panes[vp] = (pane, target)
            vp.installEventFilter(self)
            if target != "V":
                self.previews[target] = PreviewOverlay(pane)
            self.rubber[target] = SelectionRect(pane, "#ffffff" if target == "V" else "#ff8080")
            ell = QGraphicsEllipseItem()
            ell.setPen(dashed_pen(QColor(255, 255, 255, 200)))
            ell.setZValue(1000)
            ell.setVisible(False)
            ell.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            pane.scene().addItem(ell)
            self.cursors[target] = ell
        self.v_rect = self.rubber["V"]

    # ================================================================================ actions
    def _build_actions(self) -> None:
        w = self.window
        self.group = QActionGroup(self)
        self.group.setExclusive(True)
        self.actions: dict[str, QAction] = {}
        for name, (label, key, tip) in TOOLS.items():
            a = QAction(label, w, checkable=True)
            a.setShortcut(QKeySequence(key))
            a.setToolTip(tip)
            a.setStatusTip(tip)
            a.setObjectName(f"tool_{name.replace(' ', '_')}")
            a.setIcon(tool_icon(name))
            a.triggered.connect(lambda _=False, n=name: self.set_tool(n))
            self.group.addAction(a)
            self.actions[name] = a
        self.actions[NAVIGATE].setChecked(True)
        self.act_smaller = QAction("Smaller brush", w, shortcut=QKeySequence("["))
        self.act_smaller.setToolTip("Smaller brush ([)")
        self.act_smaller.triggered.connect(lambda: self.set_brush_px(self.brush_px / 1.25))
        self.act_larger = QAction("Larger brush", w, shortcut=QKeySequence("]"))
        self.act_larger.setToolTip("Larger brush (])")
        self.act_larger.triggered.connect(lambda: self.set_brush_px(self.brush_px * 1.25))
        for a in (self.act_smaller, self.act_larger):
            w.addAction(a)
        self.act_restrict = QAction("Restrict selected components to the selected time range", w)
        self.act_restrict.setToolTip(
            "Allow the selected components' activations only inside the time range selected on V"
        )
        self.act_restrict.triggered.connect(lambda: self.apply_selection("restrict"))
        self.act_forbid = QAction("Forbid selected components in the selected time range", w)
        self.act_forbid.triggered.connect(lambda: self.apply_selection("forbid"))
        self.act_forbid_tf = QAction("Forbid selected components in the selected time and frequency range", w)
        self.act_forbid_tf.setToolTip(
            "Forbid their activations in the time range and their templates in the frequency range"
        )
        self.act_forbid_tf.triggered.connect(lambda: self.apply_selection("forbid", with_bins=True))
        self.act_clear_selection = QAction("Clear the selection on V", w)
        self.act_clear_selection.triggered.connect(self.clear_selection)
        self.update_actions()

    def _build_toolbar(self) -> None:
        """A vertical tool bar left of the panes (the top rows are full): the tools, then the brush size
        (a spin box in pixels, with [ and ])."""
        tb = QToolBar("Tools", self.window)
        tb.setObjectName("toolbar_tools")
        tb.setOrientation(Qt.Orientation.Vertical)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        tb.setIconSize(QSize(22, 22))
        for name, a in self.actions.items():
            tb.addAction(a)
            a.setToolTip(f"{TOOLS[name][0]}: {TOOLS[name][2]}")
        tb.addSeparator()
        self.act_larger.setIcon(_size_icon(True))
        self.act_smaller.setIcon(_size_icon(False))
        tb.addAction(self.act_larger)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(BRUSH_MIN, BRUSH_MAX)
        self.size_spin.setValue(int(round(self.brush_px)))
        self.size_spin.setButtonSymbols(QSpinBox.ButtonSymbols.NoButtons)
        self.size_spin.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.size_spin.setFixedWidth(34)
        self.size_spin.setToolTip("Brush radius in screen pixels ([ smaller, ] larger)")
        self.size_spin.valueChanged.connect(lambda v: self.set_brush_px(float(v)))
        tb.addWidget(self.size_spin)
        tb.addAction(self.act_smaller)
        self.window.addToolBar(Qt.ToolBarArea.LeftToolBarArea, tb)
        self.toolbar = tb

    def register_v_tool(self, name: str, handler) -> None:
        """``handler.v_event(pane, event) -> bool`` gets V's viewport mouse events while tool ``name``
        is active (True: taken); ``handler.tool_left()`` (optional) when another tool is chosen."""
        if name not in V_TOOLS:
            raise ValueError(f"{name!r} is not a V tool; one of {', '.join(V_TOOLS)}")
        self.v_handlers[name] = handler

    def set_tool(self, name: str) -> None:
        if name not in TOOLS:
            raise ValueError(f"unknown tool {name!r}; one of {', '.join(TOOLS)}")
        self._cancel_stroke()
        old = self.handler_of(self.tool)
        if old is not None and self.tool != name and hasattr(old, "tool_left"):
            old.tool_left()
        self.tool = name
        if not self.actions[name].isChecked():
            self.actions[name].setChecked(True)
        for vp in self._panes:
            if name == NAVIGATE:
                vp.unsetCursor()
            else:
                vp.setCursor(QCursor(Qt.CursorShape.CrossCursor))
        for ell in self.cursors.values():
            ell.setVisible(False)
        self.bench.status(TOOLS[name][2], 4000)
        self.tool_changed.emit(name)

    def handler_of(self, name: str):
        return self.v_handlers.get(name)

    def set_brush_px(self, px: float) -> None:
        self.brush_px = float(min(max(px, BRUSH_MIN), BRUSH_MAX))
        if self.size_spin.value() != int(round(self.brush_px)):
            self.size_spin.blockSignals(True)
            self.size_spin.setValue(int(round(self.brush_px)))
            self.size_spin.blockSignals(False)

    def update_actions(self) -> None:
        has_sel = self.v_selection is not None and self.bench.project is not None
        comps = bool(self.editing.selected_components()) if has_sel else False
        for a in (self.act_restrict, self.act_forbid, self.act_forbid_tf):
            a.setEnabled(has_sel and comps)
        self.act_clear_selection.setEnabled(has_sel)

    # ================================================================================ geometry
    @staticmethod
    def scene_pos(pane, pos: QPointF) -> QPointF:
        """Viewport pixel position (float) → scene position."""
        inv, _ok = pane.viewportTransform().inverted()
        return inv.map(QPointF(pos))

    def grid_shape(self, pane) -> tuple[int, int] | None:
        data = pane.data_db
        return None if data is None else (int(data.shape[0]), int(data.shape[1]))

    def view_to_cell(self, pane, x: float, y: float) -> tuple[float, float]:
        """View (data) coordinates → fractional (row, col) of the displayed grid (cell centres at
        integers, as :mod:`demixer.core.strokes` expects)."""
        rows, cols = self.grid_shape(pane)
        rect = pane.rect
        c = (x - rect.left()) / rect.width() * cols - 0.5
        r = (y - rect.top()) / rect.height() * rows - 0.5
        return r, c

    def brush_radius_cells(self, pane) -> tuple[float, float]:
        """The brush radius in cells of the displayed grid: (rows, cols)."""
        rows, cols = self.grid_shape(pane)
        px_x, px_y = pane.vb.viewPixelSize()
        rect = pane.rect
        cell_w = rect.width() / cols
        cell_h = rect.height() / rows
        return (max(self.brush_px * px_y / cell_h, 1e-3), max(self.brush_px * px_x / cell_w, 1e-3))

    def to_model_mask(self, target: str, mask: np.ndarray) -> np.ndarray:
        """A mask on the displayed grid → a mask on W (bins × components) or H."""
        w = self.window
        if target == "W" and w.log_freq and w.display.log_map is not None:
            lm = w.display.log_map
            if self._rows_to_bins is None or self._rows_to_bins[0] is not lm:
                self._rows_to_bins = (lm, log_rows_to_bins(lm).T.astype(np.float32))
            m = self._rows_to_bins[1]
            return (m @ mask.astype(np.float32)) > 0
        return mask

    # ================================================================================ events
    def eventFilter(self, obj, ev):  # noqa: N802 - Qt's name
        entry = self._panes.get(obj)
        if entry is None:
            return False
        pane, target = entry
        t = ev.type()
        if t == QEvent.Type.Leave:
            self.cursors[target].setVisible(False)
            return False
        if self.tool == NAVIGATE or self.bench.project is None:
            return False
        if self.tool in V_TOOLS:
            handler = self.v_handlers.get(self.tool)
            if target != "V" or handler is None:
                return False  # W and H navigate
            if t == QEvent.Type.MouseMove:
                self._update_cursor(pane, target, self.scene_pos(pane, ev.position()))
            return bool(handler.v_event(pane, ev))
        if t in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick):
            if ev.button() != Qt.MouseButton.LeftButton:
                return False
            if self._stroke is not None:
                return True
            scene = self.scene_pos(pane, ev.position())
            if not pane.vb.sceneBoundingRect().contains(scene) or pane.data_db is None:
                return False
            if self.bench.running():
                self.bench.status("Cancel or wait for the run before editing", 4000)
                return True
            self._begin(pane, target, scene)
            return True
        if t == QEvent.Type.MouseMove:
            scene = self.scene_pos(pane, ev.position())
            self._update_cursor(pane, target, scene)
            if self._stroke is not None and self._stroke.pane is pane:
                self._extend(scene)
                return True
            return False
        if t == QEvent.Type.MouseButtonRelease and ev.button() == Qt.MouseButton.LeftButton:
            if self._stroke is None or self._stroke.pane is not pane:
                return False
            scene = self.scene_pos(pane, ev.position())
            self._extend(scene)
            self._finish(ev)
            return True
        return False

    def _update_cursor(self, pane, target: str, scene: QPointF) -> None:
        ell = self.cursors[target]
        brush = (self.tool in (BRUSH_ZERO, BRUSH_ALLOW) and target != "V") or (
            self.tool == SOURCE_BRUSH and target == "V"
        )
        if not brush or not pane.vb.sceneBoundingRect().contains(scene):
            ell.setVisible(False)
            return
        s = self.brush_px
        ell.setRect(scene.x() - s, scene.y() - s, 2 * s, 2 * s)
        ell.setVisible(True)

    # ================================================================================ strokes
    def _begin(self, pane, target: str, scene: QPointF) -> None:
        v = pane.vb.mapSceneToView(scene)
        x, y = float(v.x()), float(v.y())
        allow = self.tool in (BRUSH_ALLOW, RECT_ALLOW)
        rect = self.tool in (RECT_ZERO, RECT_ALLOW) or target == "V"
        shape = self.grid_shape(pane)
        radius = self.brush_radius_cells(pane) if not rect else (0.5, 0.5)
        st = _Stroke(pane, target, allow, rect, shape, radius, (x, y))
        self._stroke = st
        if target == "V":
            self.v_rect.set_rect(x, y, x, y)
            return
        rc = self.view_to_cell(pane, x, y)
        st.points.append(rc)
        self.previews[target].begin(shape, allow)
        if rect:
            st.mask = rect_mask(shape, rc[0], rc[1], rc[0], rc[1])
            self.previews[target].replace(st.mask)
        else:
            st.mask = stroke_mask(shape, [rc], radius)
            self.previews[target].show(st.mask)

    def _extend(self, scene: QPointF) -> None:
        st = self._stroke
        pane = st.pane
        v = pane.vb.mapSceneToView(scene)
        x, y = float(v.x()), float(v.y())
        if st.target == "V":
            self.v_rect.set_rect(st.start_view[0], st.start_view[1], x, y)
            st.points = [(x, y)]
            return
        rc = self.view_to_cell(pane, x, y)
        if st.rect:
            r0, c0 = st.points[0]
            st.mask = rect_mask(st.shape, r0, c0, rc[0], rc[1])
            self.rubber[st.target].set_rect(st.start_view[0], st.start_view[1], x, y)
            self.previews[st.target].replace(st.mask)
            if len(st.points) > 1:
                st.points[1] = rc
            else:
                st.points.append(rc)
            return
        if rc == st.points[-1]:
            return
        seg = stroke_mask(st.shape, [st.points[-1], rc], st.radius)
        st.points.append(rc)
        st.mask |= seg
        self.previews[st.target].show(seg)

    def _cancel_stroke(self) -> None:
        st = self._stroke
        self._stroke = None
        if st is not None and st.target != "V":
            self.previews[st.target].end()
            self.rubber[st.target].hide()

    def _finish(self, ev=None) -> None:
        st = self._stroke
        self._stroke = None
        if st.target == "V":
            self._finish_selection(st, ev)
            return
        self.previews[st.target].end()
        self.rubber[st.target].hide()
        p = self.bench.project
        if p is None or st.mask is None:
            return
        model_mask = self.to_model_mask(st.target, st.mask)
        kind = "rectangle" if st.rect else "brush"
        verb = "allow" if st.allow else "zero"
        comps = np.flatnonzero(model_mask.any(axis=0 if st.target == "W" else 1))
        names = [p.components[r].name for r in comps[:3]]
        what = ", ".join(names) + ("…" if len(comps) > 3 else "")
        text = f"{kind} {verb} on {st.target}" + (f" ({what})" if what else "")
        edit = paint_edit(p, st.target, model_mask, st.allow, text)
        if edit:
            self.editing.push(edit)
            self.strokes_pushed += 1

    # ================================================================================ V selection
    def _finish_selection(self, st: _Stroke, ev) -> None:
        pane = st.pane
        x0, y0 = st.start_view
        x1, y1 = st.points[-1] if st.points else (x0, y0)
        a = pane.vb.mapViewToScene(QPointF(x0, y0))
        b = pane.vb.mapViewToScene(QPointF(x1, y1))
        if abs(a.x() - b.x()) < MIN_SELECTION_PX:
            self.clear_selection()
            return
        w = self.window
        f0, f1 = sorted((y0, y1))
        if w.log_freq:
            f0, f1 = 2.0**f0, 2.0**f1
        p = self.bench.project
        t0, t1 = sorted((x0, x1))
        t0, t1 = max(t0, 0.0), min(t1, p.duration)
        f0, f1 = max(f0, 0.0), min(f1, p.sr / 2.0)
        self.set_selection((t0, t1, f0, f1))
        if self.show_popup and ev is not None:
            self._popup(pane.viewport().mapToGlobal(ev.position().toPoint()))

    def set_selection(self, sel: tuple[float, float, float, float] | None) -> None:
        """Select ``(t0, t1, f0, f1)`` (seconds, Hz) on V, or nothing."""
        self.v_selection = None if sel is None else tuple(float(v) for v in sel)
        if self.v_selection is None:
            self.v_rect.hide()
        else:
            t0, t1, f0, f1 = self.v_selection
            if self.window.log_freq:
                lo = max(f0, 1e-3)
                y0, y1 = math.log2(lo), math.log2(max(f1, lo))
            else:
                y0, y1 = f0, f1
            self.v_rect.set_rect(t0, y0, t1, y1)
        self.update_actions()
        self.selection_changed.emit(self.v_selection)

    def clear_selection(self) -> None:
        self.set_selection(None)

    def refresh_selection(self) -> None:
        """Redraw the selection after a change of the frequency axis."""
        self.set_selection(self.v_selection)

    def selection_cells(self) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """The selection as inclusive (frames, bins) ranges of V."""
        sel = self.v_selection
        p = self.bench.project
        if sel is None or p is None:
            return None
        t0, t1, f0, f1 = sel
        N, K = p.n_frames, p.n_bins

        def cell(v: float, extent: float, n: int) -> int:
            return min(max(math.floor(v / extent * n), 0), n - 1)  # the displayed cell holding v

        return (cell(t0, p.duration, N), cell(t1, p.duration, N)), (cell(f0, p.sr / 2, K), cell(f1, p.sr / 2, K))

    def _popup(self, global_pos) -> None:
        if self.popup is not None:
            self.popup.close()
            self.popup.deleteLater()
        self.update_actions()
        m = QMenu(self.window)
        if not self.editing.selected_components():
            hint = m.addAction("Select components in the Components dock first")
            hint.setEnabled(False)
        m.addAction(self.act_restrict)
        m.addAction(self.act_forbid)
        m.addAction(self.act_forbid_tf)
        m.addSeparator()
        m.addAction(self.act_clear_selection)
        self.popup = m
        m.popup(global_pos)

    def apply_selection(self, mode: str, with_bins: bool = False) -> bool:
        """Restrict / forbid the selected components in the V selection (one undo step)."""
        cells = self.selection_cells()
        comps = self.editing.selected_components()
        p = self.bench.project
        if cells is None or not comps or p is None:
            self.bench.status("Select a region on V and components in the Components dock", 5000)
            return False
        (n0, n1), (k0, k1) = cells
        t0, t1, f0, f1 = self.v_selection
        names = [p.components[r].name for r in comps]
        what = names[0] if len(names) == 1 else f"{len(names)} components"
        if mode == "restrict":
            text = f"restrict {what} to {t0:.2f}–{t1:.2f} s"
        elif with_bins:
            text = f"forbid {what} in {t0:.2f}–{t1:.2f} s × {f0:.0f}–{f1:.0f} Hz"
        else:
            text = f"forbid {what} in {t0:.2f}–{t1:.2f} s"
        edit = time_range_edit(p, comps, (n0, n1), mode, (k0, k1) if with_bins else None, text)
        if not edit:
            self.bench.status("Nothing to change", 3000)
            return False
        return self.editing.push(edit)
