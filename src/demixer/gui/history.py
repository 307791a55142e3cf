"""The History dock: the window's undo stack as a list (``QUndoView``). Clicking an entry undoes or
redoes everything after / up to it; the first entry is the project as opened."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QUndoView

__all__ = ["make_history_dock"]


def make_history_dock(window) -> QDockWidget:
    view = QUndoView(window.undo.stack)
    view.setEmptyLabel("project opened")
    view.setObjectName("history_view")
    dock = window.make_dock("History", view, "history")
    dock.view = view
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    return dock
