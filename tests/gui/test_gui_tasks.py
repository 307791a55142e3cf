"""The background-task bridge (gui/tasks.py): one protocol for progress, result, error, cancellation
and stale results, delivered on the GUI thread."""

from __future__ import annotations

import threading

from demixer.gui.tasks import TaskBridge


def test_progress_then_result_arrive_on_the_gui_thread_in_order(qtbot):
    bridge = TaskBridge()
    got, threads, done = [], [], []

    def work(task):
        for i in range(5):
            task.progress(i)
        return "result"

    def record(kind):
        def f(value):
            got.append((kind, value))
            threads.append(threading.current_thread() is threading.main_thread())

        return f

    t = bridge.submit("lane", work, on_progress=record("p"), on_result=record("r"), on_done=done.append)
    qtbot.waitUntil(lambda: done == [t], timeout=5000)
    assert got == [("p", 0), ("p", 1), ("p", 2), ("p", 3), ("p", 4), ("r", "result")]
    assert all(threads) and not bridge.busy("lane")


def test_an_error_is_delivered_with_its_traceback(qtbot):
    bridge = TaskBridge()
    errors, done = [], []
    bridge.submit("lane", lambda task: 1 / 0, on_result=errors.append, on_error=lambda m, d: errors.append((m, d)),
                  on_done=done.append)
    qtbot.waitUntil(lambda: len(done) == 1, timeout=5000)
    (message, details), = errors
    assert message.startswith("ZeroDivisionError") and "Traceback" in details


def test_a_newer_task_makes_the_older_one_stale_and_cancel_drops_everything(qtbot):
    bridge = TaskBridge()
    gate = threading.Event()
    results, done = [], []

    def slow(task):
        gate.wait(5)
        return "old"

    old = bridge.submit("lane", slow, on_result=results.append, on_done=done.append)
    new = bridge.submit("lane", lambda task: "new", on_result=results.append, on_done=done.append)
    assert old.cancelled and not new.cancelled  # stale: the job may stop early
    gate.set()
    qtbot.waitUntil(lambda: len(done) == 2, timeout=5000)
    assert results == ["new"]  # the stale result was dropped, the newer one delivered

    third = bridge.submit("lane", lambda task: "third", on_result=results.append, on_done=done.append)
    third.cancel()
    qtbot.waitUntil(lambda: len(done) == 3, timeout=5000)
    assert results == ["new"] and bridge.wait("lane", 5000)


def test_a_dedicated_task_has_its_own_thread_and_ends_before_on_done(qtbot):
    bridge = TaskBridge()
    done = []
    t = bridge.submit("runs", lambda task: threading.current_thread().name, dedicated=True,
                      on_done=lambda task: done.append(task.thread.isFinished()))
    qtbot.waitUntil(lambda: bool(done), timeout=5000)
    assert done == [True] and t.thread is not None
