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
    dock = QDockWidget("History", window)
    dock.setObjectName("dock_history")
    dock.setWidget(view)
    dock.setFeatures(
        QDockWidget.DockWidgetFeature.DockWidgetMovable
        | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        | QDockWidget.DockWidgetFeature.DockWidgetClosable
    )
    dock.view = view
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    return dock
