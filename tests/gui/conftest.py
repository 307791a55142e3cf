"""GUI test set-up: offscreen Qt (tests/conftest.py), settings in a temporary folder, a window on the demo."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_settings(qapp, tmp_path_factory):
    """QSettings (recent files) go to a temporary INI folder, never the user's configuration."""
    from PySide6.QtCore import QSettings

    folder = tmp_path_factory.mktemp("qsettings")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    qapp.setOrganizationName("DemixerTests")
    qapp.setApplicationName("DemixerTests")
    yield


@pytest.fixture()
def window(qtbot):
    """The workbench with the demo piece loaded (runs are stopped at teardown)."""
    from demixer.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_demo()
    yield w
    w.stop_runs()


@pytest.fixture()
def run_to_end(qtbot):
    """``run_to_end(window, **start_run_kwargs)``: start a run, wait until its result is applied and its
    thread has ended; returns (controller, run record)."""

    def run(window, timeout=60_000, **kwargs):
        with qtbot.waitSignal(window.run_finished, timeout=timeout) as blocker:
            ctrl = window.start_run(**kwargs)
            assert ctrl is not None
        qtbot.waitUntil(lambda: ctrl.thread.isFinished() and window.run_ctrl is not ctrl, timeout=timeout)
        return ctrl, blocker.args[0]

    return run
