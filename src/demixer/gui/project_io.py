"""Projects in the window: Save / Save As / Open project, the title bar's unsaved mark, the unsaved-changes
prompt on close, autosave and crash recovery, drag-and-drop, window layout (DESIGN.md §4, §5).

:func:`install_project_io` adds a :class:`ProjectIO` to a ``MainWindow``:

* File menu: "Open project…", "Save project" (Ctrl+S), "Save project as…" (Ctrl+Shift+S). Project files
  go into the window's recent-files list (``MainWindow.open_audio`` hands ``.demix`` files to
  :meth:`ProjectIO.open_project`).
* Title: ``<project file or recording><*> — Demixer`` (the app name once and last: Qt appends it
  otherwise); the ``*`` follows the undo stack's clean state
  (``QUndoStack.setClean`` on save, ``cleanChanged``).
* Closing with unsaved changes asks Save / Discard / Cancel without a nested event loop (a window-modal
  box; the close is ignored until the answer). An event filter on the window sees the Close event
  before the other filters (it is installed last), so "Cancel" leaves playback and runs alone.
* Autosave: ``autosave_interval_ms`` after the first unsaved edit (3 minutes; ``$DEMIXER_AUTOSAVE_SECONDS``
  or the ``autosave/interval_s`` setting), the project is written to a recovery file (same format) in the
  recovery folder (``$DEMIXER_RECOVERY_DIR`` or ``<AppDataLocation>/recovery``), from a worker thread
  on copies of the arrays. A clean save, a new project or an accepted close deletes it. At launch
  (``run_app``), :meth:`offer_recovery` offers to restore recovery files left by a process that is gone.
* Drag-and-drop of audio, score and project files (:meth:`open_paths`).
* Window geometry and dock layout: restored at start, saved at close (QSettings).
* Very long recordings: :meth:`read_audio_checked` estimates the memory before decoding and offers to
  analyse only the first part; audio shorter than one analysis frame is refused with a clear reason.

Every question goes through :meth:`ProjectIO.ask` (blocking) or :meth:`ProjectIO.ask_async` (the close
prompt), and file dialogs through :meth:`ask_save_path` / :meth:`ask_open_path` / :meth:`ask_audio_file`:
tests replace those to answer without a dialog.

Audio that moved: the user is asked for the file (file dialog); if its checksum differs from the saved
one, a second question warns that the factors may not fit and offers to open it anyway (refused when
the arrays do not fit its analysis). A project restored that way is marked unsaved.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMessageBox

from demixer.gui import settings
from demixer.gui.settings import DEFAULT_AUTOSAVE_S, LAYOUT_VERSION, recovery_dir
from demixer.gui.workbench import ViewState
from demixer.io.errors import InputError
from demixer.io.project_file import (
    PROJECT_SUFFIX,
    AudioMismatchError,
    AudioNotFoundError,
    LoadedProject,
    load_project,
    snapshot_project,
    write_payload,
)

__all__ = ["ProjectIO", "install_project_io", "recovery_dir", "LAYOUT_VERSION", "DEFAULT_AUTOSAVE_S"]

_RECOVERY_PREFIX = "recovery-"
AUTOSAVE_LANE = "autosave"  # the TaskBridge lane of the recovery writer

#: answer keys → (button text, role)
_ROLES = {
    "accept": QMessageBox.ButtonRole.AcceptRole,
    "destructive": QMessageBox.ButtonRole.DestructiveRole,
    "reject": QMessageBox.ButtonRole.RejectRole,
}


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own files at launch are leftovers of an earlier window of this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


#: Save / Discard / Cancel, each with a mnemonic (Alt+S, Alt+D, Alt+C).
CLOSE_BUTTONS = (("save", "&Save", "accept"), ("discard", "&Discard", "destructive"), ("cancel", "&Cancel", "reject"))


class ProjectIO(QObject):
    """Project files, unsaved state, autosave/recovery, drops and layout for one ``MainWindow``."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.win = window
        self.bench = window.bench  # the shared state: project, undo, runs, view, tasks, actions
        self.path: str | None = None  # the project file of the current project, if saved / opened
        self._pending_path: str | None = None  # set while a project file is being installed
        self._close_confirmed = False
        self.prompt: QMessageBox | None = None  # the open close prompt (tests click it)
        self.autosave_error: str | None = None
        self.last_autosave: float | None = None
        self._token = uuid.uuid4().hex[:8]
        self.tasks = self.bench.tasks  # recovery files are written on its "autosave" lane
        self._has_recovery = False

        self.autosave_timer = QTimer(self)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.timeout.connect(self._autosave_due)
        self.autosave_interval_ms = int(settings.autosave_seconds() * 1000)

        stack = self.bench.undo.stack
        stack.cleanChanged.connect(self._on_clean_changed)
        stack.indexChanged.connect(self._on_index_changed)
        self.bench.project_changed.connect(self._on_project_changed)
        self._build_actions()
        window.setAcceptDrops(True)
        window.installEventFilter(self)
        self.restore_layout()
        self.update_title()

    # ================================================================================ actions
    def _build_actions(self) -> None:
        w = self.win
        self.act_open_project = QAction("Open &project…", w)
        self.act_open_project.triggered.connect(self._ask_open_project)
        self.act_save = QAction("&Save project", w, shortcut=QKeySequence.StandardKey.Save)
        self.act_save.triggered.connect(lambda: self.save())
        self.act_save_as = QAction("Save project &as…", w, shortcut=QKeySequence("Ctrl+Shift+S"))
        self.act_save_as.triggered.connect(lambda: self.save_as())
        menu = self.bench.actions.menu("file")
        acts = menu.actions()

        def following(anchor) -> Any:
            """The action after ``anchor`` in the File menu (None: the end, or no anchor)."""
            if anchor is None or anchor not in acts:
                return None
            i = acts.index(anchor) + 1
            return acts[i] if i < len(acts) else None

        recent = getattr(w, "recent_menu", None)
        before_open = following(getattr(w, "act_open_score", None))
        before_save = following(recent.menuAction() if recent is not None else None)
        # File: Open audio, Open score, Open project, Open demo, Open recent | Save, Save as | …
        if before_open is not None:
            menu.insertAction(before_open, self.act_open_project)
        else:
            menu.addAction(self.act_open_project)
        if before_save is not None:
            menu.insertSeparator(before_save)
            menu.insertActions(before_save, [self.act_save, self.act_save_as])
        else:
            menu.addSeparator()
            menu.addActions([self.act_save, self.act_save_as])
        self._update_actions()

    def _update_actions(self) -> None:
        has = self.bench.project is not None
        self.act_save.setEnabled(has)
        self.act_save_as.setEnabled(has)

    # ================================================================================ questions
    def ask(
        self,
        kind: str,
        title: str,
        text: str,
        informative: str = "",
        buttons: tuple[tuple[str, str, str], ...] = (("yes", "Yes", "accept"), ("no", "No", "reject")),
        default: str | None = None,
    ) -> str:
        """Ask the user and wait (a modal box); returns the key of the button chosen. ``kind`` names the
        question ("unsaved", "recover", "audio_mismatch", "long_audio") for tests that answer it."""
        box = self._box(title, text, informative, buttons, default)
        box.exec()
        return self._answer(box, buttons)

    def ask_async(self, kind: str, title: str, text: str, informative: str, buttons, default, then) -> None:
        """Like :meth:`ask` without waiting: ``then(key)`` is called with the answer (window-modal box)."""
        box = self._box(title, text, informative, buttons, default)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def finished(_result: int = 0) -> None:
            answer = self._answer(box, buttons)
            box.deleteLater()
            then(answer)

        box.finished.connect(finished)
        self.prompt = box
        box.open()

    def _box(self, title, text, informative, buttons, default) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=self.win)
        if informative:
            box.setInformativeText(informative)
        box.choice_buttons = {}
        for key, label, role in buttons:
            b = box.addButton(label, _ROLES[role])
            box.choice_buttons[key] = b
            if key == default:
                box.setDefaultButton(b)
            if role == "reject":
                box.setEscapeButton(b)
        return box

    @staticmethod
    def _answer(box: QMessageBox, buttons) -> str:
        clicked = box.clickedButton()
        for key, b in box.choice_buttons.items():
            if b is clicked:
                return key
        rejects = [k for k, _, role in buttons if role == "reject"]
        return rejects[0] if rejects else buttons[-1][0]

    def ask_save_path(self, suggested: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(
            self.win, "Save project", suggested, f"Demixer project (*{PROJECT_SUFFIX});;All files (*)"
        )
        return path or None

    def ask_open_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(
            self.win, "Open project", "", f"Demixer project (*{PROJECT_SUFFIX});;All files (*)"
        )
        return path or None

    def ask_audio_file(self, project_path: str, expected: str) -> str | None:
        """The user locates a recording that moved (file dialog); None when cancelled."""
        from demixer.io.audio import SUPPORTED_AUDIO_SUFFIXES

        pattern = " ".join(f"*{s}" for s in SUPPORTED_AUDIO_SUFFIXES)
        start = os.path.dirname(os.path.abspath(project_path))
        path, _ = QFileDialog.getOpenFileName(
            self.win,
            f"Where is {Path(expected).name}? (the recording of {Path(project_path).name})",
            start,
            f"Audio ({pattern});;All files (*)",
        )
        return path or None

    # ================================================================================ state
    def _stack(self):
        """The window's undo stack, or None while the window is being destroyed."""
        stack = getattr(getattr(self.win, "undo", None), "stack", None)
        return stack if stack is not None and shiboken6.isValid(stack) else None

    def is_dirty(self) -> bool:
        stack = self._stack()
        return stack is not None and self.bench.project is not None and not stack.isClean()

    def update_title(self) -> None:
        if not shiboken6.isValid(self.win) or self._stack() is None:
            return
        p = self.bench.project
        if p is None:
            self.win.setWindowTitle("Demixer")
            return
        star = "*" if self.is_dirty() else ""
        if self.path:
            title = f"{Path(self.path).name}{star} ({p.title}) — Demixer"
        else:
            title = f"{p.title}{star} — Demixer"
        # the app's name last, once: Qt appends the display name to a title that does not end with it
        self.win.setWindowTitle(title)

    def _on_project_changed(self) -> None:
        self.path = self._pending_path
        self.discard_recovery()  # the recovery file belonged to the project just replaced
        self.autosave_timer.stop()
        self._update_actions()
        self.update_title()

    def _on_clean_changed(self, clean: bool) -> None:
        self.update_title()
        if clean:
            self.autosave_timer.stop()
        else:
            self._schedule_autosave()

    def _on_index_changed(self, _index: int) -> None:
        if self.is_dirty():
            self._schedule_autosave()

    def mark_unsaved(self) -> None:
        """The project differs from its file though no edit was made (restored, audio replaced)."""
        self.bench.undo.stack.resetClean()
        self.update_title()
        self._schedule_autosave()

    def _status(self, text: str, ms: int = 8000) -> None:
        self.bench.status(text, ms)

    def _error(self, title: str, where: str, reason: str, details: str | None = None) -> None:
        self.bench.show_error(title, where, reason, details)

    # ================================================================================ save
    def save(self) -> bool:
        """Save to the project's file (Save As when it has none). True when saved."""
        if self.bench.project is None:
            return False
        if not self.path:
            return self.save_as()
        return self.save_to(self.path)

    def save_as(self) -> bool:
        p = self.bench.project
        if p is None:
            return False
        if self.path:
            suggested = self.path
        else:
            # where the user last saved, else their documents folder: never the demo's resources folder
            suggested = os.path.join(settings.save_dir(), Path(p.title).stem + PROJECT_SUFFIX)
        path = self.ask_save_path(suggested)
        if not path:
            return False
        if not path.lower().endswith(PROJECT_SUFFIX):
            path += PROJECT_SUFFIX
        return self.save_to(path)

    def save_to(self, path: str | os.PathLike[str]) -> bool:
        """Write the project (and the view) to ``path`` atomically; the project becomes clean."""
        p = self.bench.project
        if p is None:
            return False
        path = os.path.abspath(os.fspath(path))
        try:
            payload = snapshot_project(p, path, self.capture_view())
            write_payload(payload, path)
        except InputError as exc:
            self._error("Cannot save the project", exc.path, exc.reason)
            return False
        except Exception as exc:  # never a traceback in the main text
            self._error("Cannot save the project", path, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            return False
        self.path = path
        self.bench.undo.stack.setClean()
        self.discard_recovery()
        self.bench.add_recent(path, None)
        self.update_title()
        settings.set_save_dir(os.path.dirname(os.path.abspath(path)))  # the next dialog opens here
        self._status(f"Saved {Path(path).name}", 5000)
        return True

    def maybe_save_changes(self) -> bool:
        """Before the project is replaced: ask Save / Discard / Cancel when it has unsaved changes.
        True to go on."""
        if not self.is_dirty() or self.bench.scripted:
            return True
        answer = self.ask("unsaved", *self._unsaved_texts())
        if answer == "save":
            return self.save()
        return answer == "discard"

    def _unsaved_texts(self):
        name = Path(self.path).name if self.path else self.bench.project.title
        return (
            "Unsaved changes",
            f"Save the changes to {name}?",
            "Your changes will be lost if you don't save them.",
            CLOSE_BUTTONS,
            "save",
        )

    def _running_texts(self):
        ctrl = self.bench.runs.run_ctrl
        label = ctrl.label if ctrl is not None else "the run"
        name = Path(self.path).name if self.path else self.bench.project.title
        return (
            "A run is going",
            f"Run {label} is still going. Stop it and save {name}?",
            "Save stops the run after the current iteration, keeps its result and saves the project. "
            "Discard closes without it: the run and any unsaved changes are lost.",
            CLOSE_BUTTONS,
            "save",
        )

    # ================================================================================ open
    def _ask_open_project(self) -> None:
        if not self.maybe_save_changes():
            return
        path = self.ask_open_path()
        if path:
            self.open_project(path, check_unsaved=False)

    def open_project(self, path: str | os.PathLike[str], *, check_unsaved: bool = False) -> bool:
        """Open a ``.demix`` file. On a bad file: a dialog naming it and the reason; the current project
        stays. ``check_unsaved``: ask about the current project's unsaved changes first."""
        path = os.fspath(path)
        if check_unsaved and not self.maybe_save_changes():
            return False
        self._status(f"Opening {Path(path).name}…")
        loaded = self.load(path)
        if loaded is None:
            self._status("")
            return False
        self._install(loaded, path)
        self.bench.add_recent(os.path.abspath(path), None)
        return True

    def load(self, path: str, title: str = "Cannot open the project") -> LoadedProject | None:
        """``load_project`` with the questions: where the recording went, whether to use a different
        one. Errors are shown (naming the file and the reason); None then."""
        audio_path: str | None = None
        allow = False
        for _ in range(4):
            try:
                return load_project(path, audio_path=audio_path, allow_mismatch=allow)
            except AudioNotFoundError as exc:
                if self.bench.scripted:
                    self._error(title, exc.path, exc.reason)
                    return None
                chosen = self.ask_audio_file(path, exc.expected)
                if not chosen:
                    self._error(title, exc.path, f"{exc.reason}; no replacement was chosen")
                    return None
                audio_path = chosen
            except AudioMismatchError as exc:
                if self.bench.scripted:
                    self._error(title, exc.path, exc.reason)
                    return None
                answer = self.ask(
                    "audio_mismatch",
                    "A different recording",
                    f"{Path(exc.audio_path).name} is not the recording {Path(path).name} was saved with.",
                    f"{exc.audio_path}: {exc.what}.\n\nThe saved decomposition may not fit it. Open the project "
                    "with this file anyway? (It is refused if its analysis has a different size.)",
                    (("open", "Open anyway", "destructive"), ("cancel", "Cancel", "reject")),
                    "cancel",
                )
                if answer != "open":
                    self._error(title, exc.path, exc.reason)
                    return None
                allow = True
            except InputError as exc:
                self._error(title, exc.path, exc.reason)
                return None
            except MemoryError:
                self._error(title, path, "not enough memory to open the project")
                return None
            except Exception as exc:  # a bug, not a bad file: still no traceback in the main text
                self._error(title, path, f"unexpected error: {type(exc).__name__}: {exc}", traceback.format_exc())
                return None
        self._error(title, path, "the recording could not be located")
        return None

    def _install(self, loaded: LoadedProject, path: str | None, *, unsaved: bool = False) -> None:
        self._pending_path = os.path.abspath(path) if path else None
        try:
            self.win.set_project(loaded.project)
        finally:
            self._pending_path = None
        problems = self.restore_view(loaded.view)
        if unsaved or loaded.audio_changed:
            self.mark_unsaved()
        self.update_title()
        notes = list(loaded.warnings) + problems
        name = Path(path).name if path else Path(loaded.audio_path).name
        self._status(f"Opened {name}" + (f" — {'; '.join(notes)}" if notes else ""), 10000)

    # ================================================================================ view
    def capture_view(self) -> dict:
        """The window's display state, for ``view.json``."""
        w = self.win

        def ranges(pane) -> list[list[float]]:
            return [[float(a), float(b)] for a, b in pane.vb.viewRange()]

        def levels(pane) -> list[float] | None:
            return [float(x) for x in pane.bar.levels()] if pane.manual_levels else None

        view = ViewState(
            log_frequency=bool(self.bench.view.log_frequency),
            db_range=float(self.bench.view.db_range),
            v_mode=str(self.bench.view.v_mode),
            ranges={"V": ranges(w.v_pane), "H": ranges(w.h_pane), "W": ranges(w.w_pane)},
            levels={"V": levels(w.v_pane), "H": levels(w.h_pane), "W": levels(w.w_pane)},
            splitters={
                "top": [int(x) for x in w.top_split.sizes()],
                "bottom": [int(x) for x in w.bottom_split.sizes()],
                "vertical": [int(x) for x in w.v_split.sizes()],
            },
        )
        tools = self._tools()
        if tools is not None:
            if isinstance(getattr(tools, "tool", None), str):
                view.tool = tools.tool
            if isinstance(getattr(tools, "brush_px", None), (int, float)):
                view.brush_px = float(tools.brush_px)
        audition = getattr(w, "audition", None)
        if audition is not None:
            view.listen = audition.listen_state()
        return view.to_dict()

    def _tools(self):
        """The editing tools (gui/tools.py ToolController), when the window has them."""
        return getattr(getattr(self.win, "editing", None), "tools", None)

    def restore_view(self, view: dict) -> list[str]:
        """Apply a ``view.json`` state (anything missing or malformed is skipped). Returns problems."""
        w = self.win
        problems: list[str] = []
        if not isinstance(view, dict) or not view or self.bench.project is None:
            return problems

        def num_pair(v) -> tuple[float, float] | None:
            if (
                isinstance(v, list)
                and len(v) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                and all(abs(float(x)) < 1e12 for x in v)
                and float(v[0]) < float(v[1])
            ):
                return float(v[0]), float(v[1])
            return None

        def step(name, fn) -> None:
            try:
                fn()
            except Exception as exc:  # a bad view never stops a project from opening
                problems.append(f"view {name} not restored ({type(exc).__name__})")

        if isinstance(view.get("log_frequency"), bool):
            step("log frequency", lambda: w.set_log_frequency(view["log_frequency"]))
        db = view.get("db_range")
        if isinstance(db, (int, float)) and not isinstance(db, bool) and 1 <= db <= 400:
            step("dB range", lambda: w.set_db_range(float(db)))
        mode = view.get("v_mode")
        if isinstance(mode, str):
            modes = [w.corner.mode.itemText(i) for i in range(w.corner.mode.count())]
            if mode in modes:
                step("V mode", lambda: w.set_v_mode(mode))
        rng = view.get("ranges") if isinstance(view.get("ranges"), dict) else {}
        v = rng.get("V")
        if isinstance(v, list) and len(v) == 2 and num_pair(v[0]) and num_pair(v[1]):
            step("V range", lambda: w.v_pane.setRange(xRange=num_pair(v[0]), yRange=num_pair(v[1]), padding=0.0))
        h = rng.get("H")
        if isinstance(h, list) and len(h) == 2 and num_pair(h[1]):
            step("H range", lambda: w.h_pane.setYRange(*num_pair(h[1]), padding=0.0))
        wr = rng.get("W")
        if isinstance(wr, list) and len(wr) == 2 and num_pair(wr[0]):
            step("W range", lambda: w.w_pane.setXRange(*num_pair(wr[0]), padding=0.0))
        lv = view.get("levels") if isinstance(view.get("levels"), dict) else {}
        for key, pane in (("V", w.v_pane), ("H", w.h_pane), ("W", w.w_pane)):
            pair = num_pair(lv.get(key))
            if pair is not None:

                def set_levels(pane=pane, pair=pair):
                    pane.bar.setLevels(pair)
                    pane.manual_levels = True
                    pane.image.setLevels(pair)

                step(f"{key} levels", set_levels)
        sp = view.get("splitters") if isinstance(view.get("splitters"), dict) else {}
        for key, splitter in (("top", w.top_split), ("bottom", w.bottom_split), ("vertical", w.v_split)):
            sizes = sp.get(key)
            if (
                isinstance(sizes, list)
                and len(sizes) == splitter.count()
                and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 100_000 for x in sizes)
            ):
                step(f"{key} splitter", lambda s=splitter, z=sizes: s.setSizes(z))
        tools = self._tools()
        tool = view.get("tool")
        if tools is not None and isinstance(tool, str):
            step("tool", lambda: tools.set_tool(tool))
        px = view.get("brush_px")
        if tools is not None and isinstance(px, (int, float)) and not isinstance(px, bool) and 0 < px < 1e4:
            step("brush size", lambda: tools.set_brush_px(float(px)))
        listen = ViewState.from_dict(view).listen
        audition = getattr(w, "audition", None)
        if audition is not None and listen is not None:
            try:
                problems.extend(audition.restore_listen_state(listen))
            except Exception as exc:  # a bad view never stops a project from opening
                problems.append(f"view listen settings not restored ({type(exc).__name__})")
        return problems

    # ================================================================================ close
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if obj is self.win:
            t = event.type()
            if t == QEvent.Type.Close:
                if not self.confirm_close(event):
                    return True  # ignored, and hidden from the other filters (playback keeps going)
                self.closed()
            elif t in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
                self.drag_enter(event)
                return event.isAccepted()
            elif t == QEvent.Type.Drop:
                self.drop(event)
                return event.isAccepted()
        return False

    def confirm_close(self, event) -> bool:
        """True: let the window close. With unsaved changes the close is ignored and a window-modal box
        asks Save / Discard / Cancel; Save or Discard close the window again."""
        running = self.bench.running()  # a run going is unsaved work too, even with no other edit
        if self._close_confirmed or self.bench.scripted or not (running or self.is_dirty()):
            return True
        event.ignore()
        if self.prompt is not None and self.prompt.isVisible():
            return False
        title, text, info, buttons, default = self._running_texts() if running else self._unsaved_texts()
        self.ask_async("unsaved", title, text, info, buttons, default, self._close_answer)
        return False

    def _close_answer(self, answer: str) -> None:
        self.prompt = None
        if answer == "save" and self.bench.running():
            # stop the run (its state is applied as one undo step), then save and close
            self.bench.run_finished.connect(self._save_and_close_after_run, Qt.ConnectionType.SingleShotConnection)
            self.bench.runs.cancel_run()
            self._status("Stopping the run to save it…")
            return
        if answer == "save" and not self.save():
            return
        if answer in ("save", "discard"):
            # not from inside the close event being answered (Qt ignores a nested close): next turn
            QTimer.singleShot(0, self, self._close_confirmed_now)

    def _save_and_close_after_run(self, _record=None) -> None:
        if self.save():
            QTimer.singleShot(0, self, self._close_confirmed_now)

    def _close_confirmed_now(self) -> None:
        self._close_confirmed = True
        try:
            self.win.close()
        finally:
            self._close_confirmed = False

    def closed(self) -> None:
        """The window is closing for good: save the layout, drop the recovery file."""
        self.autosave_timer.stop()
        self.save_layout()
        self.discard_recovery()

    # ================================================================================ autosave
    def recovery_path(self) -> Path:
        return recovery_dir() / f"{_RECOVERY_PREFIX}{os.getpid()}-{self._token}{PROJECT_SUFFIX}"

    def set_autosave_interval(self, seconds: float) -> None:
        """Autosave ``seconds`` after unsaved edits (0 turns it off); kept in the settings."""
        self.autosave_interval_ms = int(max(0.0, float(seconds)) * 1000)
        settings.set_autosave_seconds(float(seconds))
        if self.autosave_timer.isActive():
            self.autosave_timer.stop()
            self._schedule_autosave()

    def _schedule_autosave(self) -> None:
        if self.autosave_interval_ms > 0 and not self.autosave_timer.isActive() and self.is_dirty():
            self.autosave_timer.start(self.autosave_interval_ms)

    def _autosave_due(self) -> None:
        self.autosave_now()

    def autosave_now(self, wait: bool = False) -> Path | None:
        """Write the recovery file now (in a worker thread, from copies) if there are unsaved changes.
        Returns its path, or None when nothing was written. ``wait``: until it is on disk."""
        if self.autosave_error:
            self._status(f"Autosave failed: {self.autosave_error}", 10000)
            self.autosave_error = None
        p = self.bench.project
        if p is None or not self.is_dirty():
            return None
        if self.tasks.busy(AUTOSAVE_LANE):  # the previous one is still writing: try again later
            if not wait:
                self._schedule_autosave()
                return None
            self.tasks.wait(AUTOSAVE_LANE)
        path = self.recovery_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = snapshot_project(p, path, self.capture_view(), origin=self.path)
        except (InputError, OSError) as exc:
            self.autosave_error = getattr(exc, "reason", None) or str(exc)
            return None
        self._has_recovery = True
        self.tasks.submit(
            AUTOSAVE_LANE,
            lambda task: self._write(payload, path),
            on_result=self._autosave_written,
            on_error=lambda message, _details: self._autosave_written(message),
            replace=False,
            name=f"autosave {path.name}",
        )
        if wait:
            self.tasks.wait(AUTOSAVE_LANE)
        self.last_autosave = time.time()
        return path

    @staticmethod
    def _write(payload, path: Path) -> str | None:  # worker thread: no Qt here
        """Write the recovery file; returns None, or why it could not be written."""
        try:
            write_payload(payload, path)
        except InputError as exc:
            return exc.reason
        return None

    def _autosave_written(self, problem: str | None) -> None:
        if problem is not None:
            self.autosave_error = problem  # shown in the status bar at the next autosave

    def autosave_pending(self) -> bool:
        """A recovery file is being written (on the task bridge's autosave lane)."""
        return self.tasks.busy(AUTOSAVE_LANE)

    def discard_recovery(self) -> None:
        """Delete this window's recovery file (after a save, a new project or a close)."""
        self.tasks.wait(AUTOSAVE_LANE)
        if self._has_recovery or self.recovery_path().exists():
            try:
                self.recovery_path().unlink(missing_ok=True)
            except OSError:
                pass
            self._has_recovery = False

    # ================================================================================ recovery
    def pending_recoveries(self) -> list[Path]:
        """Recovery files left by processes that are gone (newest first)."""
        folder = recovery_dir()
        if not folder.is_dir():
            return []
        out = []
        for f in folder.glob(f"{_RECOVERY_PREFIX}*{PROJECT_SUFFIX}"):
            if f == self.recovery_path():
                continue
            parts = f.stem[len(_RECOVERY_PREFIX) :].split("-")
            try:
                pid = int(parts[0])
            except (ValueError, IndexError):
                pid = -1
            if pid > 0 and _pid_alive(pid):
                continue  # another Demixer still running owns it
            out.append(f)
        return sorted(out, key=lambda f: f.stat().st_mtime, reverse=True)

    def offer_recovery(self) -> bool:
        """At launch: offer to restore each recovery file left by a crash. True when one was restored
        (the window then shows it, marked unsaved, and will save to its original project file)."""
        for f in self.pending_recoveries():
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(f.stat().st_mtime))
            answer = self.ask(
                "recover",
                "Recover unsaved changes?",
                "Demixer did not close normally last time. Restore the unsaved changes it autosaved?",
                f"Autosaved {when} in {f}.\n\nRestore: open them (unsaved). Discard: delete them.",
                (("restore", "Restore", "accept"), ("discard", "Discard", "destructive")),
                "restore",
            )
            if answer != "restore":
                f.unlink(missing_ok=True)
                continue
            loaded = self.load(str(f), title="Cannot restore the autosaved changes")
            if loaded is None:
                return False  # the file stays (the error names it) for another try
            self._install(loaded, loaded.origin, unsaved=True)
            try:  # it becomes this window's recovery file: deleted on save / close
                os.replace(f, self.recovery_path())
                self._has_recovery = True
            except OSError:
                pass
            self._status(f"Restored the changes autosaved {when}", 10000)
            return True
        return False

    # ================================================================================ audio checks
    def read_audio_checked(self, path: str):
        """Read a recording for ``MainWindow.open_audio``: a very long one (estimated memory above
        ``io.limits.memory_limit()``) asks first — analyse only its first part, all of it, or cancel;
        one shorter than an analysis frame is refused. Returns the Audio, or None when cancelled.
        Raises InputError for a bad file."""
        from demixer.engine.separation import SeparationSettings
        from demixer.io import limits
        from demixer.io.audio import read_audio

        info = limits.probe_audio(path)
        stft = SeparationSettings().stft  # what MainWindow._make_project analyses a new recording with
        need = limits.estimate_memory(info.frames, info.sr, info.channels, stft)
        limit = limits.memory_limit()
        frames = None
        if need > limit and info.frames > 0:
            if self.bench.scripted:
                for line in limits.audio_warnings(path, stft, limit):
                    print(f"demixer: warning: {line}", file=sys.stderr)
            else:
                fit = min(info.frames, limits.frames_that_fit(limit, info.sr, info.channels, stft))
                first = limits.format_duration(fit / info.sr)
                answer = self.ask(
                    "long_audio",
                    "A very long recording",
                    f"{Path(path).name} is {limits.format_duration(info.duration)} long: analysing it needs "
                    f"about {limits.format_bytes(need)} of memory.",
                    f"{path}\n\nThe limit is {limits.format_bytes(limit)} (DEMIXER_MEMORY_LIMIT). Analyse only "
                    f"the first {first}, which fits, or all of it (the computer may run out of memory)?",
                    (
                        ("range", f"Analyse the first {first}", "accept"),
                        ("all", "Analyse all", "destructive"),
                        ("cancel", "Cancel", "reject"),
                    ),
                    "range",
                )
                if answer == "cancel":
                    self._status(f"Did not open {Path(path).name}", 5000)
                    return None
                if answer == "range":
                    frames = fit
        audio = read_audio(path, frames=frames)
        limits.check_analysable(audio, stft)
        notes = []
        if frames is not None:
            notes.append(f"analysing its first {limits.format_duration(audio.duration)}")
        if not audio.samples.any():
            notes.append("the recording is silent")
        if notes:
            QTimer.singleShot(0, self, partial(self._status, f"{Path(path).name}: {'; '.join(notes)}", 10000))
        return audio

    # ================================================================================ drag and drop
    @staticmethod
    def kind_of(path: str) -> str | None:
        """ "audio", "score", "project" or None (unsupported), from the suffix."""
        from demixer.io.audio import SUPPORTED_AUDIO_SUFFIXES
        from demixer.io.score import SUPPORTED_SCORE_SUFFIXES

        suffix = Path(path).suffix.lower()
        if suffix == PROJECT_SUFFIX:
            return "project"
        if suffix in SUPPORTED_AUDIO_SUFFIXES:
            return "audio"
        if suffix in SUPPORTED_SCORE_SUFFIXES:
            return "score"
        return None

    @staticmethod
    def _local_paths(mime) -> list[str]:
        if mime is None or not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]

    def drag_enter(self, event) -> None:
        paths = self._local_paths(event.mimeData())
        if any(self.kind_of(p) for p in paths):
            event.acceptProposedAction()
        else:
            event.ignore()

    def drop(self, event) -> None:
        paths = self._local_paths(event.mimeData())
        if not any(self.kind_of(p) for p in paths):
            event.ignore()
            return
        event.acceptProposedAction()
        # open after the drop returns: a question or a long analysis must not block the drag source
        QTimer.singleShot(0, self, partial(self.open_paths, paths))

    def open_paths(self, paths: list[str]) -> bool:
        """Open dropped files: a project; or a recording (with a score dropped along); or a score onto
        the current recording. Unsupported files are named in a dialog."""
        kinds: dict[str, list[str]] = {"project": [], "audio": [], "score": []}
        unsupported = []
        for p in paths:
            k = self.kind_of(p)
            (kinds[k] if k else unsupported).append(p)
        if unsupported and not any(kinds.values()):
            p = unsupported[0]
            self._error(
                "Cannot open the file",
                p,
                f"unsupported file type {Path(p).suffix or '(no suffix)'!r}; drop a recording (WAV, FLAC, OGG, "
                f"MP3), a score (MIDI, CSV) or a project ({PROJECT_SUFFIX})",
            )
            return False
        if unsupported:
            self._status("Ignored: " + ", ".join(Path(p).name for p in unsupported), 8000)
        if kinds["project"]:
            return self.open_project(kinds["project"][0], check_unsaved=True)
        if not self.maybe_save_changes():
            return False
        if kinds["audio"]:
            score = kinds["score"][0] if kinds["score"] else None
            return bool(self.win.open_audio(kinds["audio"][0], score))
        return bool(self.win.open_score(kinds["score"][0]))

    # ================================================================================ layout
    def save_layout(self) -> None:
        settings.save_layout(self.win.saveGeometry(), self.win.saveState(LAYOUT_VERSION))

    def restore_layout(self) -> bool:
        geometry, state = settings.layout()
        ok = False
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            ok = bool(self.win.restoreGeometry(geometry))
        if isinstance(state, QByteArray) and not state.isEmpty():
            ok = bool(self.win.restoreState(state, LAYOUT_VERSION)) and ok
        return ok


def install_project_io(window) -> ProjectIO:
    """Add project files, autosave/recovery, drops and layout persistence to ``window``. Install it
    last: its Close filter must run before the others (Qt calls the newest filter first)."""
    return ProjectIO(window)
