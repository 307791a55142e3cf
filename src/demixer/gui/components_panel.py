"""The Components dock (DESIGN.md §1, §4): one row per component — name, pitch, kind, source,
locked — with add pitch component, add onset template, delete, lock/unlock and assign-to-source.

Every change goes through the editing controller (:class:`~demixer.gui.editing.EditingController`)
as one undoable edit: renaming is editing the name cell, the source cell is a combo box (applied to all
selected rows when the edited row is one of them), the locked cell is a tick box. Selecting rows
highlights the components on the panes.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QRadioButton,
    QSizePolicy,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from demixer.core.notes import pitch_name, pitch_to_hz
from demixer.model.project import RESIDUAL

__all__ = ["COLUMNS", "ComponentsPanel", "AddPitchDialog", "parse_pitch"]

COLUMNS = ("name", "pitch", "kind", "source", "locked")
COL_NAME, COL_PITCH, COL_KIND, COL_SOURCE, COL_LOCKED = range(5)
_NOTE_RE = re.compile(r"^\s*([A-Ga-g])\s*([#♯b♭s]?)\s*(-?\d+)\s*$")
_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_pitch(text: str) -> int:
    """A MIDI number ("60") or a note name with octave ("C4", "C#4", "Db4", "a-1") → 0..127."""
    t = str(text).strip()
    if re.fullmatch(r"-?\d+", t):
        p = int(t)
    else:
        m = _NOTE_RE.match(t)
        if not m:
            raise ValueError(f"not a pitch: {text!r} (a MIDI number or a note name like C4, F#3, Bb2)")
        step, acc, octave = m.groups()
        p = _STEPS[step.upper()] + {"#": 1, "♯": 1, "s": 1, "b": -1, "♭": -1}.get(acc, 0) + (int(octave) + 1) * 12
    if not 0 <= p <= 127:
        raise ValueError(f"pitch {text!r} is outside MIDI 0..127")
    return p


class _SourceDelegate(QStyledItemDelegate):
    """The source cell's editor: a combo box of the sources (and the residual)."""

    def __init__(self, panel: ComponentsPanel) -> None:
        super().__init__(panel.table)
        self.panel = panel

    def createEditor(self, parent, option, index):  # noqa: N802
        combo = QComboBox(parent)
        combo.addItems(self.panel.source_choices())
        combo.activated.connect(lambda _i, c=combo: (self.commitData.emit(c), self.closeEditor.emit(c)))
        return combo

    def setEditorData(self, editor, index):  # noqa: N802
        i = editor.findText(str(index.data() or RESIDUAL))
        editor.setCurrentIndex(max(0, i))

    def setModelData(self, editor, model, index):  # noqa: N802
        self.panel.source_edited(index.row(), editor.currentText())


class ComponentsPanel(QWidget):
    """The table and its buttons. ``editing`` is the window's editing controller."""

    selection_changed = Signal(list)

    def __init__(self, editing, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editing = editing
        self.project = None
        self._filling = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(3)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.verticalHeader().setVisible(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.Stretch)
        for c in (COL_PITCH, COL_KIND, COL_SOURCE, COL_LOCKED):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setItemDelegateForColumn(COL_SOURCE, _SourceDelegate(self))
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        lay.addWidget(self.table, 1)

        grid = QGridLayout()
        grid.setSpacing(3)

        def button(text: str, tip: str, slot, row: int, col: int) -> QToolButton:
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            if slot is not None:
                b.clicked.connect(slot)
            grid.addWidget(b, row, col)
            return b

        self.add_pitch_button = button(
            "Add pitch…", "Add a pitch component with a harmonic template", self.editing.ask_add_pitch, 0, 0
        )
        self.add_onset_button = button(
            "Add onset",
            "Add an onset template (broadband, active only around the score's onsets) for each selected "
            "pitch component",
            lambda: self.editing.add_onset_templates(self.selected_rows()),
            0,
            1,
        )
        self.delete_button = button(
            "Delete",
            "Delete the selected components",
            lambda: self.editing.delete_components(self.selected_rows()),
            0,
            2,
        )
        self.lock_button = button(
            "Lock",
            "Lock the selected components: runs do not change their templates",
            lambda: self.editing.set_locked(self.selected_rows(), True),
            1,
            0,
        )
        self.unlock_button = button(
            "Unlock",
            "Unlock the selected components",
            lambda: self.editing.set_locked(self.selected_rows(), False),
            1,
            1,
        )
        self.assign_button = button("Assign to", "Put the selected components in a source", None, 1, 2)
        self.assign_menu = QMenu(self.assign_button)
        self.assign_menu.aboutToShow.connect(self._fill_assign_menu)
        self.assign_button.setMenu(self.assign_menu)
        self.assign_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.sources_button = button("Sources", "Create, rename, recolour and delete sources", None, 0, 3)
        self.sources_menu = QMenu(self.sources_button)
        self.sources_button.setMenu(self.sources_menu)
        self.sources_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.info = QLabel("")
        self.info.setStyleSheet("color: #8b9099; font-size: 8.5pt")
        grid.addWidget(self.info, 1, 3)
        lay.addLayout(grid)
        self._update_buttons()

    # ------------------------------------------------------------------ contents
    def source_choices(self) -> list[str]:
        p = self.project
        return ([s.name for s in p.sources] if p is not None else []) + [RESIDUAL]

    def set_project(self, project) -> None:
        self.project = project
        self.table.clearSelection()
        self.refresh()

    def refresh(self) -> None:
        """Show the project's components (cells updated in place; selection kept by name when the
        number of components changes)."""
        p = self.project
        t = self.table
        selected_names = [t.item(r, COL_NAME).text() for r in self.selected_rows() if t.item(r, COL_NAME)]
        R = 0 if p is None else p.n_components
        changed_count = R != t.rowCount()
        self._filling = True
        t.blockSignals(True)
        try:
            t.setRowCount(R)
            if p is not None:
                names = {s.name for s in p.sources}
                for r, c in enumerate(p.components):
                    src = c.source if c.source in names else RESIDUAL
                    colour = QColor(p.source_colour(c.source) if c.source in names else "#9c9c9c")
                    pitch = "" if c.pitch is None else f"{pitch_name(c.pitch)} ({c.pitch})"
                    self._set(r, COL_NAME, c.name, editable=True, colour=colour)
                    self._set(r, COL_PITCH, pitch)
                    self._set(r, COL_KIND, c.kind)
                    self._set(r, COL_SOURCE, src, editable=True, colour=colour)
                    self._set(r, COL_LOCKED, "", checked=c.locked)
            t.setVerticalHeaderLabels([str(r) for r in range(R)])
        finally:
            t.blockSignals(False)
            self._filling = False
        if changed_count and p is not None:
            want = set(selected_names)
            self.select_rows([r for r, c in enumerate(p.components) if c.name in want])
        self._update_buttons()

    def _set(self, r: int, col: int, text: str, *, editable=False, colour: QColor | None = None, checked=None):
        item = self.table.item(r, col)
        if item is None:
            item = QTableWidgetItem()
            self.table.setItem(r, col, item)
        flags = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled
        if editable:
            flags |= Qt.ItemFlag.ItemIsEditable
        if checked is not None:
            flags |= Qt.ItemFlag.ItemIsUserCheckable
            state = Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
            if item.checkState() != state or item.data(Qt.ItemDataRole.CheckStateRole) is None:
                item.setCheckState(state)
        if item.flags() != flags:
            item.setFlags(flags)
        if item.text() != text:
            item.setText(text)
        if colour is not None and col == COL_SOURCE:
            item.setForeground(QBrush(colour))
        if colour is not None and col == COL_NAME:
            item.setData(Qt.ItemDataRole.DecorationRole, colour)

    # ------------------------------------------------------------------ selection
    def selected_rows(self) -> list[int]:
        return sorted({i.row() for i in self.table.selectionModel().selectedRows()})

    def select_rows(self, rows) -> None:
        from PySide6.QtCore import QItemSelection, QItemSelectionModel

        sm = self.table.selectionModel()
        sel = QItemSelection()
        model = self.table.model()
        last = self.table.columnCount() - 1
        for r in rows:
            if 0 <= r < self.table.rowCount():
                sel.select(model.index(r, 0), model.index(r, last))
        sm.select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        if rows:
            self.table.scrollToItem(self.table.item(min(rows), 0))

    def _selection_changed(self) -> None:
        self._update_buttons()
        self.selection_changed.emit(self.selected_rows())

    def _update_buttons(self) -> None:
        rows = self.selected_rows()
        p = self.project
        has = p is not None
        self.add_pitch_button.setEnabled(has)
        pitched = has and any(p.components[r].kind == "pitch" for r in rows if r < p.n_components)
        self.add_onset_button.setEnabled(bool(pitched))
        for b in (self.delete_button, self.lock_button, self.unlock_button, self.assign_button):
            b.setEnabled(bool(rows))
        self.info.setText(f"{len(rows)} of {p.n_components} selected" if has else "")

    # ------------------------------------------------------------------ edits from cells
    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or self.project is None:
            return
        r, col = item.row(), item.column()
        if col == COL_NAME:
            if item.text().strip() and item.text() != self.project.components[r].name:
                self.editing.rename_component(r, item.text())
            self.refresh()
        elif col == COL_LOCKED:
            locked = item.checkState() == Qt.CheckState.Checked
            rows = self._rows_for(r)
            if any(self.project.components[i].locked != locked for i in rows):
                self.editing.set_locked(rows, locked)
            self.refresh()

    def _rows_for(self, r: int) -> list[int]:
        """The rows an edit of row ``r`` applies to: the selection when ``r`` is in it, else ``r``."""
        sel = self.selected_rows()
        return sel if r in sel else [r]

    def source_edited(self, r: int, source: str) -> None:
        if self.project is None:
            return
        rows = self._rows_for(r)
        src = "" if source == RESIDUAL else source
        if any(self.project.components[i].source != src for i in rows):
            self.editing.assign(rows, source)
        self.refresh()

    def _fill_assign_menu(self) -> None:
        m = self.assign_menu
        m.clear()
        rows = self.selected_rows()
        for name in self.source_choices():
            a = m.addAction(name)
            a.triggered.connect(lambda _=False, n=name: self.editing.assign(self.selected_rows(), n))
            a.setEnabled(bool(rows))
        m.addSeparator()
        a = m.addAction("New source…")
        a.triggered.connect(lambda: self.editing.sources.ask_new_source(assign=self.selected_rows()))


class AddPitchDialog(QDialog):
    """Pitch (MIDI number or note name), source, and where the activation is allowed."""

    def __init__(self, sources: list[str], duration: float, view_range: tuple[float, float], has_notes, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Add pitch component")
        self._has_notes = has_notes  # callable (pitch, source) -> bool
        f = QFormLayout(self)
        self.pitch = QLineEdit("C4")
        self.pitch.setToolTip("MIDI number (60) or note name (C4, F#3, Bb2)")
        self.pitch_info = QLabel("")
        self.pitch.textChanged.connect(self._update)
        f.addRow("pitch", self.pitch)
        f.addRow("", self.pitch_info)
        self.source = QComboBox()
        self.source.addItems(list(sources) + [RESIDUAL])
        self.source.currentTextChanged.connect(self._update)
        f.addRow("source", self.source)
        self.everywhere = QRadioButton("everywhere")
        self.in_range = QRadioButton("from")
        self.at_notes = QRadioButton("around the score's notes of this pitch")
        self.group = QButtonGroup(self)
        for b in (self.everywhere, self.in_range, self.at_notes):
            self.group.addButton(b)
        self.everywhere.setChecked(True)
        self.t0 = QDoubleSpinBox()
        self.t1 = QDoubleSpinBox()
        for s, v in ((self.t0, view_range[0]), (self.t1, view_range[1])):
            s.setRange(0.0, max(duration, 0.0))
            s.setDecimals(2)
            s.setSuffix(" s")
            s.setValue(min(max(v, 0.0), duration))
        row = QHBoxLayout()
        row.addWidget(self.in_range)
        row.addWidget(self.t0)
        row.addWidget(QLabel("to"))
        row.addWidget(self.t1)
        box = QVBoxLayout()
        box.addWidget(self.everywhere)
        box.addLayout(row)
        box.addWidget(self.at_notes)
        f.addRow("activation", box)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        f.addRow(self.buttons)
        self._update()

    def _update(self) -> None:
        ok = True
        try:
            p = parse_pitch(self.pitch.text())
            self.pitch_info.setText(f"{pitch_name(p)} · MIDI {p} · {pitch_to_hz(p):.1f} Hz")
            self.at_notes.setEnabled(bool(self._has_notes(p, self.source.currentText())))
        except ValueError as exc:
            self.pitch_info.setText(str(exc))
            ok = False
            self.at_notes.setEnabled(False)
        if self.at_notes.isChecked() and not self.at_notes.isEnabled():
            self.everywhere.setChecked(True)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def values(self) -> tuple[int, str, tuple[float, float] | str | None]:
        """(pitch, source, activation): None = everywhere, (t0, t1) seconds, or "notes"."""
        pitch = parse_pitch(self.pitch.text())
        src = self.source.currentText()
        if self.in_range.isChecked():
            where = (self.t0.value(), self.t1.value())
        elif self.at_notes.isChecked():
            where = "notes"
        else:
            where = None
        return pitch, src, where
