"""The workbench (DESIGN.md §3): what the window's controllers and panes share, in one object.

:class:`Workbench` is a QObject, not a widget. It holds the open :class:`~demixer.model.project.Project`,
the undo stack (:class:`~demixer.gui.undo.UndoAdapter`), the run state (``runs``, a
:class:`~demixer.gui.runs.RunManager`), the display (``display``, a
:class:`~demixer.gui.factors_view.FactorView`), the typed :class:`ViewState`, the settings module, the
background-task bridge (``tasks``) and the :class:`ActionRegistry` (actions and menus found by id).

Controllers (gui/editing.py, tools.py, transport.py, project_io.py, export.py, files.py) receive the
workbench, connect to its signals and the project's, and call only public members. ``host`` is the
main window, used as the parent of dialogs and for ``addDockWidget``/``addToolBar``/``statusBar`` —
public Qt API; nothing reaches into the window's privates.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu, QMessageBox

from demixer.gui import settings
from demixer.gui.tasks import TaskBridge
from demixer.gui.undo import UndoAdapter
from demixer.model.project import Project

if TYPE_CHECKING:
    from demixer.gui.factors_view import FactorView
    from demixer.gui.runs import RunManager

__all__ = ["ActionRegistry", "ViewState", "Workbench"]

log = logging.getLogger(__name__)

MODE_V = "V"


@dataclass
class ViewState:
    """How the project is shown; saved as the project file's ``view.json`` (a plain dict).

    ``log_frequency``, ``db_range`` and ``v_mode`` are live (the display reads them); the rest is captured
    from the widgets when saving and applied when loading (gui/project_io.py)."""

    log_frequency: bool = False
    db_range: float = 80.0
    v_mode: str = MODE_V
    ranges: dict[str, Any] | None = None  # pane → [[x0, x1], [y0, y1]]
    levels: dict[str, Any] | None = None  # pane → [lo, hi] or None (automatic)
    splitters: dict[str, Any] | None = None  # "top" / "bottom" / "vertical" → sizes
    tool: str | None = None
    brush_px: float | None = None
    listen: dict[str, Any] | None = None  # mode, sources {name: {gain_db, mute, solo}}, loop [t0, t1]
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know: kept as read

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "extra" and v is not None}
        return {**self.extra, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ViewState:
        """Known keys as stored (validated by whoever applies them), the others kept in ``extra``."""
        names = {f for f in cls.__dataclass_fields__ if f != "extra"}
        if not isinstance(d, dict):
            return cls()
        v = cls()
        for k, value in d.items():
            if k in names:
                setattr(v, k, value)
            else:
                v.extra[k] = value
        return v


class ActionRegistry:
    """Actions and menus by id (``"file"``, ``"run.start"``…), never by their label text."""

    def __init__(self) -> None:
        self._actions: dict[str, QAction] = {}
        self._menus: dict[str, QMenu] = {}

    def add(self, name: str, action: QAction) -> QAction:
        if name in self._actions:
            raise KeyError(f"action {name!r} registered twice")
        action.setObjectName(f"action_{name}")
        self._actions[name] = action
        return action

    def action(self, name: str) -> QAction:
        return self._actions[name]

    def get(self, name: str) -> QAction | None:
        return self._actions.get(name)

    def add_menu(self, name: str, menu: QMenu) -> QMenu:
        menu.setObjectName(f"menu_{name}")
        self._menus[name] = menu
        return menu

    def menu(self, name: str) -> QMenu:
        return self._menus[name]

    def names(self) -> list[str]:
        return list(self._actions)


class Workbench(QObject):
    """The shared state of one window. See the module docstring."""

    project_changed = Signal()
    run_started = Signal(object)  # RunController
    run_finished = Signal(object)  # RunRecord
    run_failed = Signal(str)
    actions_changed = Signal()  # run state or project presence changed: enable/disable actions
    loading_changed = Signal(str)  # what is being opened in the background ("reading x.flac"), "" when done

    def __init__(self, host: QMainWindow, *, scripted: bool = False) -> None:
        super().__init__(host)
        self.host = host
        self.scripted = scripted
        self.project: Project | None = None
        self.undo = UndoAdapter(self)
        self.view = ViewState()
        self.settings = settings
        self.actions = ActionRegistry()
        self.tasks = TaskBridge(self)
        self.errors: list[str] = []
        self.last_dialog: QMessageBox | None = None
        self.display: FactorView | None = None  # set by the window once the panes exist
        self.runs: RunManager | None = None
        self.aligner = None  # gui/alignment.AlignmentController, once installed: a Run waits for it

    # ------------------------------------------------------------------------------ state
    def running(self) -> bool:
        """A run is going and its result has not been applied yet."""
        return self.runs is not None and self.runs.running()

    def abandon_run(self) -> None:
        if self.runs is not None:
            self.runs.abandon()

    def set_project(self, project: Project) -> None:
        """Make ``project`` the open document: the run is abandoned, every view follows the signal."""
        self.abandon_run()
        self.tasks.invalidate("open")  # a recording still being opened in the background must not replace it
        old = self.project
        self.project = project
        self.undo.set_project(project)
        self.view.v_mode = MODE_V
        log.info("project %s (%d components)", project.title, project.n_components)
        if self.display is not None:
            self.display.attach(old, project)
        self.host.setWindowTitle(f"{project.title} — Demixer")
        self.actions_changed.emit()
        self.project_changed.emit()

    # ------------------------------------------------------------------------------ telling the user
    def status(self, text: str, ms: int = 0) -> None:
        self.host.statusBar().showMessage(text, ms)

    def show_error(self, title: str, where: str, reason: str, details: str | None = None) -> None:
        """Tell the user: a dialog naming ``where`` (usually the file) and the reason; on stderr when
        scripted. Never a traceback in the main text (it goes to "Show details…")."""
        self.errors.append(f"{where}: {reason}")
        log.warning("%s: %s: %s", title, where, reason)
        if self.scripted:
            print(f"demixer: error: {where}: {reason}", file=sys.stderr)
            return
        box = QMessageBox(
            QMessageBox.Icon.Warning, title, f"{title}: {Path(where).name or where}", parent=self.host
        )
        box.setInformativeText(f"{where}\n\n{reason}")
        if details:
            box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()  # not exec(): no nested event loop, the window keeps running
        self.last_dialog = box

    # ------------------------------------------------------------------------------ recent files
    def add_recent(self, audio: str, score: str | None) -> None:
        import os

        from demixer import demo_paths

        if Path(audio).resolve() == Path(demo_paths()[0]).resolve():
            return
        entry = (os.path.abspath(audio), os.path.abspath(score) if score else None)
        settings.set_recent_files([entry] + [e for e in settings.recent_files() if e != entry])
