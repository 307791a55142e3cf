"""Background runs: snapshots, the loss plot, cancel, close mid-run, one undo step, worker errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import demixer.gui.worker as worker_mod

LONG = 100_000  # iterations of a run that is cancelled long before its end


def _wait_for_snapshots(qtbot, ctrl, n=1, timeout=30_000):
    qtbot.waitUntil(lambda: ctrl.last is not None and len(ctrl.losses) >= n, timeout=timeout)


def test_run_emits_snapshots_from_the_worker_thread_and_the_loss_plot_grows(
    window, qtbot, monkeypatch, run_to_end
):
    threads = set()
    real_prepare = worker_mod.prepare

    def spy(snap):
        threads.add(threading.get_ident())
        return real_prepare(snap)

    monkeypatch.setattr(worker_mod, "prepare", spy)
    points = []
    window.run_started.connect(
        lambda ctrl: ctrl.snapshot.connect(
            lambda c, ds: points.append(window.loss_pane.curve_points(None)) if not ds.snap.done else None
        )
    )
    ctrl, record = run_to_end(window, n_iter=40)
    assert threads and threading.get_ident() not in threads  # iterations happen off the GUI thread
    assert record.n_iter == 40 and record.stopped == "finished"
    assert len(record.losses) == 40 and record.model == window.project.run.model
    assert points and points == sorted(points) and points[-1] <= 40  # the live curve grew
    assert window.loss_pane.curve_points(record.id) == 40  # the run's curve replaces the live one
    assert window.loss_pane.live is None
    assert window.stats["snapshots"] >= 1
    assert "finished" in window.run_label.text()
    assert not window.act_cancel.isEnabled()
    # the panes show the applied result
    np.testing.assert_array_equal(window.h_pane.image.image, window.display.H_db)
    assert np.array_equal(window.project.W, ctrl.last.snap.W)


def test_finished_run_is_one_undo_step_restoring_w_and_h_bit_for_bit(window, run_to_end):
    p = window.project
    W0, H0 = p.W.copy(), p.H.copy()
    ctrl, record = run_to_end(window, n_iter=5)
    W1, H1 = p.W.copy(), p.H.copy()
    assert not np.array_equal(W1, W0)
    stack = window.undo.stack
    assert stack.count() == 1 and window.act_undo.isEnabled()
    assert record.label in window.act_undo.text()
    window.act_undo.trigger()
    assert p.W.tobytes() == W0.tobytes() and p.H.tobytes() == H0.tobytes()
    assert p.runs == [] and window.loss_pane.curves == {}
    np.testing.assert_array_equal(window.h_pane.image.image, window.display.H_db)
    window.act_redo.trigger()
    assert p.W.tobytes() == W1.tobytes() and p.H.tobytes() == H1.tobytes()
    assert p.runs == [record] and record.id in window.loss_pane.curves


def test_runs_overlay_and_can_be_cleared_from_the_plot(window, run_to_end):
    _, r1 = run_to_end(window, n_iter=3)
    _, r2 = run_to_end(window, n_iter=4, model="nae")
    assert r1.label.startswith("#1 ") and r2.label.startswith("#2 NAE")
    assert set(window.loss_pane.curves) == {r1.id, r2.id}
    assert window.project.W_E is not None  # the NAE's encoder is kept for its next run
    assert window.loss_pane.runs.count() == 2
    window.loss_pane.runs.item(0).setSelected(True)
    window.loss_pane.clear_selected()
    assert set(window.loss_pane.curves) == {r2.id}
    assert len(window.project.runs) == 2  # clearing the plot keeps the history
    window.loss_pane.clear_all()
    assert window.loss_pane.curves == {}


def test_cancel_stops_within_an_iteration_and_keeps_the_last_state(window, qtbot, capfd):
    # a warm run (one joint fit); the staged fit's stages: test_gui_fit.py
    p = window.project
    W0 = p.W.copy()
    with qtbot.waitSignal(window.run_finished, timeout=60_000) as blocker:
        ctrl = window.start_run(n_iter=LONG, mode="warm")
        _wait_for_snapshots(qtbot, ctrl, 2)
        assert window.act_cancel.isEnabled()
        window.act_cancel.trigger()
    record = blocker.args[0]
    qtbot.waitUntil(ctrl.thread.isFinished, timeout=10_000)
    assert ctrl.cancelled and record.stopped == "cancelled"
    assert 2 <= record.n_iter < LONG and len(record.losses) == record.n_iter
    assert np.array_equal(p.W, ctrl.last.snap.W) and not np.array_equal(p.W, W0)
    assert window.undo.stack.count() == 1
    window.undo.undo()
    assert np.array_equal(p.W, W0)
    assert "cancelled" in window.run_label.text()
    qtbot.wait(20)
    assert "Destroyed while thread" not in capfd.readouterr().err


def test_closing_the_window_mid_run_cancels_and_waits_for_the_thread(window, qtbot, capfd):
    ctrl = window.start_run(n_iter=LONG)
    _wait_for_snapshots(qtbot, ctrl)
    window.close()  # a run going is unsaved work: the window asks first (issue 18, item 1)
    assert window.isVisible() and ctrl.is_running()
    window.project_io.prompt.choice_buttons["discard"].click()
    qtbot.waitUntil(lambda: not window.isVisible())
    assert ctrl.thread.isFinished()  # closeEvent waited
    assert ctrl.cancelled and window.run_ctrl is None
    assert window.project.runs == []  # a closing window applies nothing
    qtbot.wait(20)
    assert "Destroyed while thread" not in capfd.readouterr().err


def test_starting_a_run_while_one_is_running_cancels_the_first(window, qtbot, run_to_end):
    first = window.start_run(n_iter=LONG)
    _wait_for_snapshots(qtbot, first)
    second, record = run_to_end(window, n_iter=3)
    assert first.cancelled and second is not first
    qtbot.waitUntil(first.thread.isFinished, timeout=10_000)
    assert window.project.runs == [record] and record.n_iter == 3
    assert window.undo.stack.count() == 1  # the first run's result was dropped


def test_an_exception_in_the_worker_is_shown_and_leaves_the_project_as_before(window, qtbot, monkeypatch):
    p = window.project
    W0, H0 = p.W.copy(), p.H.copy()
    calls = {"n": 0}
    real_prepare = worker_mod.prepare

    def failing(snap):
        calls["n"] += 1
        if calls["n"] >= 2:
            raise RuntimeError("boom in the worker")
        return real_prepare(snap)

    monkeypatch.setattr(worker_mod, "prepare", failing)
    with qtbot.waitSignal(window.run_failed, timeout=60_000) as blocker:
        ctrl = window.start_run(n_iter=LONG)
    qtbot.waitUntil(ctrl.thread.isFinished, timeout=10_000)
    assert "boom in the worker" in blocker.args[0]
    box = window.last_dialog
    assert box is not None and box.isVisible()
    assert "RuntimeError: boom in the worker" in box.informativeText()
    assert "Traceback" in box.detailedText() and "Traceback" not in box.informativeText()
    assert p.W.tobytes() == W0.tobytes() and p.H.tobytes() == H0.tobytes()
    assert p.runs == [] and window.undo.stack.count() == 0
    assert window.loss_pane.live is None
    np.testing.assert_array_equal(window.h_pane.image.image, window.display.H_db)
    box.close()


@pytest.mark.parametrize("kwargs", [{"n_iter": -1}, {"model": "nmf-is"}, {"mode": "joint"}])
def test_bad_run_settings_are_refused_before_a_thread_starts(window, kwargs):
    label = window.run_label.text()
    assert window.start_run(**kwargs) is None
    assert window.run_ctrl is None and window.last_dialog is not None
    assert window.project.run_counter == 0 and window.run_label.text() == label
    window.last_dialog.close()


@pytest.mark.parametrize("model", ["nmf", "nae-pgd"])
def test_every_model_runs(window, run_to_end, model):
    _, record = run_to_end(window, n_iter=3, model=model)
    assert record.model == model and len(record.losses) == 3
    assert np.all(window.project.W >= 0) and np.all(window.project.H >= 0)
    assert np.all(window.project.H[~window.project.allow_H] == 0)


def test_live_panes_repaint_at_most_ten_times_a_second(window, run_to_end):
    window.pane_update_times.clear()
    ctrl, record = run_to_end(window, n_iter=150)
    t = np.array(window.pane_update_times)
    # a 100 ms repeating timer picks the newest snapshot; the final one is painted at once
    span = record.elapsed + 0.2
    assert 1 <= t.size <= 10 * span + 2
    if t.size > 3:  # the median: one tick late under load is followed by a short catch-up gap
        assert np.median(np.diff(t[:-1])) >= 0.095  # snapshots come at 20 Hz: painting each would be 0.05


CLOSE_MID_RUN = textwrap.dedent(
    """
    import os
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QTimer
    from demixer.gui.app import make_application
    app = make_application()
    from demixer.gui.main_window import MainWindow
    w = MainWindow(scripted=True)
    w.show()
    assert w.open_demo()
    ctrl = w.start_run(n_iter=100000)
    ctrl.snapshot.connect(lambda c, ds: (w.close(), app.quit()))  # close at the first snapshot
    QTimer.singleShot(60000, lambda: app.exit(3))
    assert app.exec() == 0
    assert ctrl.thread.isFinished(), "thread still running"
    del w, ctrl
    print("closed cleanly")
    """
)


def test_closing_mid_run_then_exiting_the_interpreter_is_clean(tmp_path):
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", CLOSE_MID_RUN], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "closed cleanly" in proc.stdout
    assert "Destroyed while thread" not in proc.stderr
    assert "Traceback" not in proc.stderr
