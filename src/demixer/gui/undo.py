"""One ``QUndoStack`` for the window; model :class:`~demixer.model.edits.Edit` objects are wrapped in
``QUndoCommand``s, so every edit is one undo step (DESIGN.md §3)."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand, QUndoStack

from demixer.model.edits import Edit
from demixer.model.project import Project

__all__ = ["EditCommand", "UndoAdapter"]

_MERGE_IDS: dict[str, int] = {}


def _merge_id(key: str | None) -> int:
    if key is None:
        return -1
    return _MERGE_IDS.setdefault(key, 1000 + len(_MERGE_IDS))


class EditCommand(QUndoCommand):
    """A model edit as a Qt undo command. ``redo`` (also called by ``QUndoStack.push``) does it."""

    def __init__(self, edit: Edit, project: Project) -> None:
        super().__init__(edit.text)
        self.edit = edit
        self.project = project

    def redo(self) -> None:
        self.edit.do(self.project)

    def undo(self) -> None:
        self.edit.undo(self.project)

    def id(self) -> int:  # noqa: A003 - Qt's name
        return _merge_id(self.edit.merge_key)

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if not isinstance(other, EditCommand) or other.project is not self.project:
            return False
        if self.edit.merge(other.edit):
            self.setText(self.edit.text)
            return True
        return False


class UndoAdapter(QObject):
    """The window's undo stack, bound to the current project (a new project clears the history)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.stack = QUndoStack(self)
        self.project: Project | None = None

    def set_project(self, project: Project | None) -> None:
        self.stack.clear()
        self.project = project

    def push(self, edit: Edit) -> None:
        """Do ``edit`` on the current project and record it as one undo step."""
        if self.project is None:
            raise RuntimeError("no project to edit")
        self.stack.push(EditCommand(edit, self.project))

    def undo(self) -> None:
        self.stack.undo()

    def redo(self) -> None:
        self.stack.redo()

    def can_undo(self) -> bool:
        return self.stack.canUndo()

    def can_redo(self) -> bool:
        return self.stack.canRedo()

    def make_actions(self, parent: QObject) -> tuple[QAction, QAction]:
        """Undo / Redo actions following the stack (text "Undo <edit>"), Ctrl+Z and Ctrl+Shift+Z."""
        undo = self.stack.createUndoAction(parent, "&Undo")
        undo.setShortcuts([QKeySequence("Ctrl+Z")])
        redo = self.stack.createRedoAction(parent, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        return undo, redo
