"""``run_app(args)``: the ``demixer`` window, from the command line (``demixer.cli.main``).

demixer                          the bundled demo
demixer FILE [--score SCORE]     a recording (and its score)
demixer --demo --run --screenshot out.png
                                 open the demo, run the default model to the end, save a PNG of the
                                 whole window and exit (0 on success, 2 on a bad file or failed run)
demixer MIX --score SCORE --run --export-stems DIR
                                 open the recording and its score, Run (the staged fit from the score,
                                 as `demixer separate`), write the sources as File → Export does, exit
                                 (0 on success; one line on stderr and 2 on a bad file or failed run)
"""

from __future__ import annotations

import logging
import os
import sys
import time

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["run_app", "start_window", "apply_theme", "make_application"]

EXIT_OK = 0
EXIT_FAILED = 2


def apply_theme(app: QApplication) -> None:
    """Fusion with a dark palette, matching the plots' dark background."""
    app.setStyle("Fusion")
    pal = QPalette()
    base, window, text, mid = QColor("#1b1d21"), QColor("#26292e"), QColor("#d7dae0"), QColor("#3a3f46")
    pal.setColor(QPalette.ColorRole.Window, window)
    pal.setColor(QPalette.ColorRole.WindowText, text)
    pal.setColor(QPalette.ColorRole.Base, base)
    pal.setColor(QPalette.ColorRole.AlternateBase, window)
    pal.setColor(QPalette.ColorRole.ToolTipBase, QColor("#30343a"))
    pal.setColor(QPalette.ColorRole.ToolTipText, text)
    pal.setColor(QPalette.ColorRole.Text, text)
    pal.setColor(QPalette.ColorRole.Button, QColor("#2e3238"))
    pal.setColor(QPalette.ColorRole.ButtonText, text)
    pal.setColor(QPalette.ColorRole.BrightText, QColor("#ff6b6b"))
    pal.setColor(QPalette.ColorRole.Mid, mid)
    pal.setColor(QPalette.ColorRole.Dark, QColor("#15171a"))
    pal.setColor(QPalette.ColorRole.Light, QColor("#464b53"))
    pal.setColor(QPalette.ColorRole.Highlight, QColor("#3d7bd9"))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    pal.setColor(QPalette.ColorRole.Link, QColor("#6aa9ff"))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7f87"))
    app.setPalette(pal)


def make_application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts, True)
        app = QApplication([sys.argv[0] if sys.argv else "demixer"])
    app.setApplicationName("Demixer")
    app.setOrganizationName("Demixer")
    app.setApplicationDisplayName("Demixer")
    return app


def run_app(args) -> int:
    """Open the window as the command line asks; returns the exit status."""
    app = make_application()
    win, status = start_window(args)
    code = app.exec()
    win.stop_runs()
    win.close()
    status["hook"].uninstall()
    return status["code"] if code == 0 else code


def _private_stderr() -> None:
    """Scripted runs report on stderr. File descriptor 2 is shared by every thread, and C libraries the
    window's background jobs load (PortAudio's probe, the decoders under ``io.audio.quiet_decoder``) point
    it at /dev/null for a while: a message printed then was lost (the scripted window exited 2 with no
    line about 1 run in 2). Python's stderr writes to its own copy of the real descriptor instead."""
    try:
        sys.stderr.flush()
        sys.stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                               errors="backslashreplace")
    except (OSError, ValueError, AttributeError):
        pass


def start_window(args):
    """Show the window at once, then open what ``args`` asks for in the background (issue 18, item 13:
    the window appears before the piece is read and analysed, which arrives with progress on the task
    bridge). Returns ``(window, status)``; ``status["code"]`` is the exit status for scripted runs and
    ``status["loaded"]`` becomes True once the piece is open."""
    t0 = time.perf_counter()
    app = make_application()
    apply_theme(app)
    from demixer.gui.logs import ExceptionHook, setup_logging
    from demixer.gui.main_window import MainWindow  # after the QApplication exists

    screenshot = getattr(args, "screenshot", None)
    export_dir = getattr(args, "export_stems", None)
    scripted = bool(screenshot or export_dir)  # errors on stderr, exit when done
    if scripted:
        _private_stderr()
    log_file = setup_logging()
    logging.getLogger("demixer").info("start (log %s)", log_file)
    status = {"code": EXIT_OK, "loaded": False}
    status["hook"] = ExceptionHook(scripted=scripted, on_fatal=lambda: finish(EXIT_FAILED)).install()
    from demixer.gui.tasks import TaskBridge

    TaskBridge.hold_new = True  # the window's background jobs start after its first paint
    try:
        win = MainWindow(scripted=scripted)
    finally:
        TaskBridge.hold_new = False

    def finish(code: int) -> None:
        status["code"] = code
        win.stop_runs()
        app.exit(code)

    def shoot() -> None:
        app.processEvents()
        ok = True
        if export_dir:  # exactly what File → Export → Sources as WAV writes (errors already on stderr)
            ok = win.audition.exporter.export_stems(export_dir, "wav") is not None
        if ok and screenshot:
            ok = win.grab().save(screenshot)
            if not ok:
                print(f"demixer: error: {screenshot}: cannot write the PNG", file=sys.stderr)
        finish(EXIT_OK if ok else EXIT_FAILED)

    def after_run(record) -> None:
        if scripted:
            QTimer.singleShot(150, shoot)

    def on_failed(_msg: str) -> None:
        if scripted:
            finish(EXIT_FAILED)

    def opened(ok: bool) -> None:
        status["loaded"] = ok
        if ok:
            logging.getLogger("demixer").info("piece open %.2f s after the start", time.perf_counter() - t0)
        if not ok:
            if scripted:
                finish(EXIT_FAILED)
            return
        if getattr(args, "run", False):
            win.run_finished.connect(after_run)
            win.run_failed.connect(on_failed)
            if win.start_run() is None and scripted and win.runs.waiting is None:
                finish(EXIT_FAILED)
        elif scripted:
            QTimer.singleShot(150, shoot)

    def load() -> None:
        if not scripted and win.project_io.offer_recovery():  # autosaved edits left by a crash
            status["loaded"] = True
            win.display.show_loading("")
            return
        file = getattr(args, "file", None)
        score = getattr(args, "score", None)
        if file:
            win.files.open_audio_in_background(file, score, then=opened)
        else:
            win.files.open_demo_in_background(then=opened)

    if screenshot:
        win.show()  # scripted: the image is the 1400×900 window, whatever the screen
    else:
        win.show_fitting_the_screen()
    win.startup_time = time.perf_counter() - t0
    win.display.show_loading("starting")
    # the first paint before anything else: the window is on the screen while the piece is read and analysed
    # (a window that gets no paint, e.g. minimised, starts anyway after FIRST_PAINT_WAIT_MS)
    gate = _AfterFirstPaint(win, lambda: (win.bench.tasks.release(), load()))
    QTimer.singleShot(FIRST_PAINT_WAIT_MS, gate.fire)
    return win, status


FIRST_PAINT_WAIT_MS = 1000


class _AfterFirstPaint(QObject):
    """Calls ``then()`` once, in the event loop's turn after ``win``'s first paint (or on ``fire()``)."""

    def __init__(self, win, then) -> None:
        super().__init__(win)
        self.win, self.then, self.done = win, then, False
        win.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.win and event.type() == QEvent.Type.Paint and not self.done:
            QTimer.singleShot(0, self.fire)
        return False

    def fire(self) -> None:
        if not self.done:
            self.done = True
            self.win.removeEventFilter(self)
            self.then()
