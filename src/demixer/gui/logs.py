"""Logging and the last-resort exception hook of the window (DESIGN.md §3).

:func:`setup_logging` sends the ``demixer`` loggers to a rotating ``demixer.log`` in the app's data
folder (``settings.log_dir()``: ``$DEMIXER_LOG_DIR`` or AppDataLocation/logs; 1 MB × 3 files).
:class:`ExceptionHook` replaces ``sys.excepthook`` and ``threading.excepthook``: an exception nobody
caught (in a slot, a timer, a worker thread) is logged with its traceback and shown in a dialog
(on stderr when scripted), instead of vanishing into the console while the window carries on.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from demixer.gui import settings

__all__ = ["ExceptionHook", "LOG_NAME", "setup_logging"]

LOG_NAME = "demixer.log"
log = logging.getLogger("demixer")


def setup_logging(folder: Path | None = None, level: int = logging.INFO) -> Path | None:
    """Attach the rotating file handler to the ``demixer`` logger (once). Returns the log file, or None
    when the folder cannot be written (the app runs on without a log file)."""
    folder = Path(folder) if folder is not None else settings.log_dir()
    path = folder / LOG_NAME
    for h in log.handlers:
        if isinstance(h, logging.handlers.RotatingFileHandler) and Path(h.baseFilename) == path.resolve():
            return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:
        print(f"demixer: warning: no log file in {folder} ({exc})", file=sys.stderr)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(level)
    return path


class ExceptionHook(QObject):
    """See the module docstring. ``install()`` / ``uninstall()``; ``on_fatal`` (scripted runs) is called
    after the report, e.g. to leave the event loop with a failure status."""

    _report = Signal(str, str)  # queued to the GUI thread when raised in a worker thread

    def __init__(self, *, scripted: bool = False, on_fatal: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.scripted = scripted
        self.on_fatal = on_fatal
        self.reports: list[str] = []
        self.last_dialog: QMessageBox | None = None
        self._saved = None
        self._report.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> ExceptionHook:
        self._saved = (sys.excepthook, threading.excepthook)
        sys.excepthook = self.excepthook
        threading.excepthook = self.thread_excepthook
        return self

    def uninstall(self) -> None:
        if self._saved is not None:
            sys.excepthook, threading.excepthook = self._saved
            self._saved = None

    def excepthook(self, etype, value, tb) -> None:
        if issubclass(etype, KeyboardInterrupt):
            QApplication.quit()
            return
        details = "".join(traceback.format_exception(etype, value, tb))
        log.error("uncaught exception\n%s", details)
        message = f"{etype.__name__}: {value}"
        if threading.current_thread() is threading.main_thread():
            self._show(message, details)
        else:
            self._report.emit(message, details)

    def thread_excepthook(self, args) -> None:
        self.excepthook(args.exc_type, args.exc_value, args.exc_traceback)

    def _show(self, message: str, details: str) -> None:
        self.reports.append(message)
        if self.scripted:
            print(f"demixer: error: internal error: {message}", file=sys.stderr)
            if self.on_fatal is not None:
                self.on_fatal()
            return
        box = QMessageBox(
            QMessageBox.Icon.Critical,
            "Demixer: internal error",
            "Something went wrong inside Demixer. Your project is still open; saving it now is wise.",
        )
        log_file = next((h.baseFilename for h in log.handlers if hasattr(h, "baseFilename")), None)
        box.setInformativeText(message + (f"\n\nDetails are in the log: {log_file}" if log_file else ""))
        box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.ApplicationModal)
        box.open()
        self.last_dialog = box
