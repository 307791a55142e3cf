"""The undo adapter: model edits as QUndoCommands on one stack."""

from __future__ import annotations

from demixer.gui.undo import UndoAdapter
from demixer.model.edits import Edit


class Counter(Edit):
    merge_key = "count"

    def __init__(self, n=1):
        self.n = n
        self.text = f"add {n}"

    def do(self, project):
        project["value"] += self.n

    def undo(self, project):
        project["value"] -= self.n

    def merge(self, other):
        if isinstance(other, Counter):
            self.n += other.n
            self.text = f"add {self.n}"
            return True
        return False


class Plain(Edit):
    text = "plain"

    def do(self, project):
        project["plain"] = True

    def undo(self, project):
        project["plain"] = False


def test_push_does_the_edit_and_undo_redo_reverse_it(qtbot):
    adapter = UndoAdapter()
    project = {"value": 0, "plain": False}
    adapter.set_project(project)
    adapter.push(Plain())
    assert project["plain"] and adapter.can_undo() and not adapter.can_redo()
    adapter.undo()
    assert not project["plain"] and adapter.can_redo()
    adapter.redo()
    assert project["plain"]
    adapter.set_project(project)  # a new project clears the history
    assert not adapter.can_undo()


def test_edits_with_a_merge_key_merge_into_one_step(qtbot):
    adapter = UndoAdapter()
    project = {"value": 0}
    adapter.set_project(project)
    adapter.push(Counter(1))
    adapter.push(Counter(2))
    assert project["value"] == 3 and adapter.stack.count() == 1
    assert adapter.stack.undoText() == "add 3"
    adapter.undo()
    assert project["value"] == 0


def test_actions_have_the_standard_shortcuts(qtbot):
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    qtbot.addWidget(parent)
    adapter = UndoAdapter(parent)
    undo, redo = adapter.make_actions(parent)
    assert undo.shortcut().toString() == "Ctrl+Z"
    assert redo.shortcut().toString() == "Ctrl+Shift+Z"
    adapter.set_project({"plain": False})
    adapter.push(Plain())
    assert undo.isEnabled() and undo.text() == "&Undo plain"
    undo.trigger()
    assert redo.isEnabled()
