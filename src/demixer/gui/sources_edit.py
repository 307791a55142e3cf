"""Creating, renaming, recolouring and deleting sources, and assigning components to them (DESIGN.md
§1, §2.3, §4): a context menu on the Sources dock's list and the "Sources" menu of the Components dock.

Assignments: the source cell / "Assign to" menu of the Components dock (the selected rows), "Pitch
range → source…" (every component with a pitch in a range), "Reset sources from the score" (the
score's groups). Components in no source form the residual. Every action is one undo step; the dialogs
only collect values and call the editing controller.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QPoint, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
)

from demixer.core.notes import pitch_name
from demixer.gui.components_panel import parse_pitch
from demixer.model.project import RESIDUAL

__all__ = ["SourcesEditor", "PitchRangeDialog"]


class PitchRangeDialog(QDialog):
    """ "Pitches from … to … → source"."""

    def __init__(self, sources: list[str], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Assign a pitch range to a source")
        f = QFormLayout(self)
        self.lo = QLineEdit("C2")
        self.hi = QLineEdit("B3")
        for e in (self.lo, self.hi):
            e.setToolTip("MIDI number (60) or note name (C4, F#3, Bb2)")
            e.textChanged.connect(self._update)
        f.addRow("from", self.lo)
        f.addRow("to", self.hi)
        self.source = QComboBox()
        self.source.addItems(list(sources) + [RESIDUAL])
        f.addRow("source", self.source)
        self.info = QLabel("")
        f.addRow("", self.info)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        f.addRow(self.buttons)
        self._update()

    def _update(self) -> None:
        try:
            lo, hi = sorted((parse_pitch(self.lo.text()), parse_pitch(self.hi.text())))
            self.info.setText(f"{pitch_name(lo)} (MIDI {lo}) to {pitch_name(hi)} (MIDI {hi}), onsets included")
            ok = True
        except ValueError as exc:
            self.info.setText(str(exc))
            ok = False
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def values(self) -> tuple[int, int, str]:
        lo, hi = sorted((parse_pitch(self.lo.text()), parse_pitch(self.hi.text())))
        return lo, hi, self.source.currentText()


class SourcesEditor(QObject):
    """Source actions for the window's Sources list and the Components dock's "Sources" menu."""

    def __init__(self, window, editing) -> None:
        super().__init__(window)
        self.window = window
        self.bench = window.bench  # the shared state: project, undo, runs, view, tasks, actions
        self.editing = editing
        self.menu: QMenu | None = None
        tree = window.sources_pane
        tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        tree.customContextMenuRequested.connect(self._context_menu)
        tree.setToolTip("Right-click: new source, rename, colour, delete, assign components")

    # ------------------------------------------------------------------ menus
    def fill_menu(self, menu: QMenu, source: str | None = None) -> None:
        """Source actions; with ``source`` (a clicked source), actions on it first."""
        p = self.bench.project
        menu.clear()
        if p is None:
            a = menu.addAction("(no project)")
            a.setEnabled(False)
            return
        names = [s.name for s in p.sources]
        rows = self.editing.selected_components()
        if source is not None:
            if source in names:
                menu.addAction(f"Rename “{source}”…", lambda: self.ask_rename_source(source))
                menu.addAction(f"Colour of “{source}”…", lambda: self.ask_recolour_source(source))
                menu.addAction(
                    f"Delete “{source}” (its components join the residual)",
                    lambda: self.editing.delete_source(source),
                )
            a = menu.addAction(
                f"Assign the selected components to “{source}”", lambda: self.editing.assign(rows, source)
            )
            a.setEnabled(bool(rows))
            menu.addAction(f"Select the components of “{source}”", lambda: self.select_source(source))
            menu.addSeparator()
        menu.addAction("New source…", lambda: self.ask_new_source())
        if source is None and names:
            for title, slot in (
                ("Rename", self.ask_rename_source),
                ("Colour", self.ask_recolour_source),
                ("Delete", self.editing.delete_source),
            ):
                sub = menu.addMenu(title)
                for n in names:
                    sub.addAction(n, lambda n=n, slot=slot: slot(n))
        menu.addSeparator()
        menu.addAction("Pitch range → source…", self.ask_pitch_range)
        a = menu.addAction("Reset sources from the score", self.editing.reset_sources_from_score)
        a.setEnabled(bool(p.notes))

    def _context_menu(self, pos: QPoint) -> None:
        tree = self.window.sources_pane
        item = tree.itemAt(pos)
        source = item.text(0) if item is not None else None
        if self.menu is not None:
            self.menu.close()
            self.menu.deleteLater()
        self.menu = QMenu(tree)
        self.fill_menu(self.menu, source)
        self.menu.popup(tree.viewport().mapToGlobal(pos))

    def select_source(self, source: str) -> None:
        p = self.bench.project
        if p is not None:
            self.editing.panel.select_rows([int(r) for r in p.source_components(source)])

    # ------------------------------------------------------------------ dialogs
    def ask_new_source(self, assign: list[int] | None = None) -> None:
        name, ok = QInputDialog.getText(self.window, "New source", "Name of the new source:")
        if ok and name.strip():
            colour = QColorDialog.getColor(QColor(self.editing.next_colour()), self.window, f"Colour of {name.strip()}")
            self.editing.new_source(name, colour.name() if colour.isValid() else None, assign=assign)

    def ask_rename_source(self, source: str) -> None:
        name, ok = QInputDialog.getText(self.window, "Rename source", f"New name of “{source}”:", text=source)
        if ok and name.strip() and name.strip() != source:
            self.editing.rename_source(source, name)

    def ask_recolour_source(self, source: str) -> None:
        p = self.bench.project
        if p is None:
            return
        colour = QColorDialog.getColor(QColor(p.source_colour(source)), self.window, f"Colour of {source}")
        if colour.isValid():
            self.editing.recolour_source(source, colour.name())

    def ask_pitch_range(self) -> None:
        p = self.bench.project
        if p is None:
            return
        dlg = PitchRangeDialog([s.name for s in p.sources], self.window)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            lo, hi, src = dlg.values()
            self.editing.assign_pitch_range(lo, hi, src)
