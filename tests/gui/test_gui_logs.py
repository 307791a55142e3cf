"""Logging to a rotating file and the exception hook (gui/logs.py): nothing dies silently."""

from __future__ import annotations

import logging
import sys
import threading

from demixer.gui.logs import LOG_NAME, ExceptionHook, setup_logging


def _flush():
    for h in logging.getLogger("demixer").handlers:
        h.flush()


def test_the_log_goes_to_the_folder_the_environment_names(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMIXER_LOG_DIR", str(tmp_path / "logs"))
    path = setup_logging()
    assert path == tmp_path / "logs" / LOG_NAME
    assert setup_logging() == path  # once: no second handler
    logging.getLogger("demixer.gui.test").info("hello from the test")
    _flush()
    assert "hello from the test" in path.read_text()


def test_an_uncaught_exception_is_logged_and_shown_in_a_dialog(qtbot, tmp_path):
    path = setup_logging(tmp_path)
    hook = ExceptionHook().install()
    try:
        try:
            raise RuntimeError("boom in a slot")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
        assert hook.reports == ["RuntimeError: boom in a slot"]
        box = hook.last_dialog
        assert box is not None and box.isVisible()
        assert "boom in a slot" in box.informativeText() and "Traceback" in box.detailedText()
        box.close()

        t = threading.Thread(target=lambda: 1 / 0)  # a worker thread: reported on the GUI thread
        t.start()
        t.join()
        qtbot.waitUntil(lambda: len(hook.reports) == 2, timeout=5000)
        assert hook.reports[1].startswith("ZeroDivisionError")
        hook.last_dialog.close()
    finally:
        hook.uninstall()
    assert sys.excepthook is not hook.excepthook
    _flush()
    text = path.read_text()
    assert "boom in a slot" in text and "ZeroDivisionError" in text


def test_scripted_runs_report_on_stderr_and_stop(capsys):
    stopped = []
    hook = ExceptionHook(scripted=True, on_fatal=lambda: stopped.append(True)).install()
    try:
        try:
            raise ValueError("bad state")
        except ValueError:
            sys.excepthook(*sys.exc_info())
    finally:
        hook.uninstall()
    assert stopped == [True] and hook.last_dialog is None
    assert capsys.readouterr().err.strip() == "demixer: error: internal error: ValueError: bad state"
