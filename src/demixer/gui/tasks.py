"""One bridge for background work in the window (DESIGN.md §3).

Every job the window runs off the GUI thread goes through :meth:`TaskBridge.submit` with one protocol:

* ``fn(task)`` runs on a worker thread of the job's *lane* (one thread per lane: ``"stems"``,
  ``"autosave"``…, so jobs of one kind run in order and never compete with each other), or, with
  ``dedicated=True``, on a thread of its own (``task.thread``; runs: a new run must not wait for an
  abandoned one to stop);
  it may call ``task.progress(value)`` and should return early when ``task.cancelled``;
* ``on_result(value)``, ``on_error(message, details)`` and ``on_progress(value)`` are called on the GUI
  thread (queued signals, in the order the worker sent them), never after the task was cancelled;
* ``on_done(task)`` is called on the GUI thread once the job has ended, whatever happened (result,
  error, cancelled or stale) — the place to release what the job held;
* a newer task in a lane makes the older ones *stale* when submitted with ``replace=True``: their
  results and errors are dropped, and a stale task still waiting to start never starts;
* :meth:`TaskBridge.wait` waits for a lane (or all lanes) to drain, e.g. before the window closes.

Each task is logged (start, end, error with its traceback) under ``demixer.gui.tasks``.

The same idea as Orange's ``widgets/utils/concurrent.py`` (a future-like handle delivered to the GUI
thread through Qt's queued connections), much smaller: only what this window needs.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThread, QThreadPool, Signal, Slot

__all__ = ["Task", "TaskBridge"]

log = logging.getLogger(__name__)


class Task:
    """A handle on one submitted job: cancel it, ask whether it is stale or done."""

    def __init__(self, bridge: TaskBridge, lane: str, generation: int, name: str) -> None:
        self.bridge = bridge
        self.lane = lane
        self.generation = generation
        self.name = name
        self.done = threading.Event()
        self.cancel_event = threading.Event()
        self.on_result: Callable[[Any], None] | None = None
        self.on_error: Callable[[str, str], None] | None = None
        self.on_progress: Callable[[Any], None] | None = None
        self.on_done: Callable[[Task], None] | None = None
        self.thread: QThread | None = None  # its own thread, for a dedicated task

    def cancel(self) -> None:
        """Thread-safe: the job sees ``cancelled``; nothing of it is delivered any more."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set() or self.bridge.is_stale(self)

    def progress(self, value: Any) -> None:
        """From the worker: deliver ``value`` to ``on_progress`` on the GUI thread."""
        if not self.cancelled:
            _emit(self.bridge.progressed, self, value)


def _emit(signal, *args) -> None:
    """Emit from a worker; a bridge already deleted (its window closed) just gets nothing."""
    try:
        signal.emit(*args)
    except RuntimeError:  # "Internal C++ object already deleted"
        log.debug("task result after the bridge was deleted: dropped")


def _execute(task: Task, fn: Callable[[Task], Any]) -> None:
    """Run one job on the current (worker) thread and send what it gives to the bridge."""
    bridge = task.bridge
    try:
        if task.cancelled:
            return
        t0 = time.perf_counter()
        log.debug("task %s started", task.name)
        try:
            value = fn(task)
        except Exception as exc:  # delivered to on_error on the GUI thread
            log.exception("task %s failed", task.name)
            _emit(bridge.failed, task, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            return
        log.debug("task %s done in %.3f s", task.name, time.perf_counter() - t0)
        _emit(bridge.finished, task, value)
    finally:
        task.done.set()


class _Runnable(QRunnable):
    """A job on a lane's pool thread."""

    def __init__(self, task: Task, fn: Callable[[Task], Any]) -> None:
        super().__init__()
        self.task = task
        self.fn = fn

    def run(self) -> None:  # a worker thread
        try:
            _execute(self.task, self.fn)
        finally:
            _emit(self.task.bridge.ended, self.task)


class _TaskThread(QThread):
    """A job on a thread of its own (``dedicated=True``: long jobs such as runs, which must not wait
    for one another); ``on_done`` comes once the thread has ended."""

    def __init__(self, task: Task, fn: Callable[[Task], Any]) -> None:
        super().__init__()
        self.task = task
        self.fn = fn
        self.setObjectName(task.name)

    def run(self) -> None:  # the worker thread
        try:
            _execute(self.task, self.fn)
        finally:
            _emit(self.task.bridge.ended, self.task)


class TaskBridge(QObject):
    """See the module docstring."""

    finished = Signal(object, object)  # task, result (emitted from workers; delivered queued)
    failed = Signal(object, str, str)
    progressed = Signal(object, object)
    ended = Signal(object)  # task: always, after the job has ended

    hold_new = False  # set while the launching window is built: its jobs start at release() (gui/app.py)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # jobs submitted before the window's first paint wait for release(): their imports and numpy
        # would share the GIL with that paint (issue 18, item 13); None once released
        self._held: list[tuple[Task, Callable[[Task], Any], bool]] | None = [] if TaskBridge.hold_new else None
        self._pools: dict[str, QThreadPool] = {}
        self._generation: dict[str, int] = {}
        self._current: dict[str, Task] = {}
        queued = Qt.ConnectionType.QueuedConnection
        self.finished.connect(self._deliver_result, queued)
        self.failed.connect(self._deliver_error, queued)
        self.progressed.connect(self._deliver_progress, queued)
        self.ended.connect(self._deliver_done, queued)

    def pool(self, lane: str) -> QThreadPool:
        pool = self._pools.get(lane)
        if pool is None:
            pool = QThreadPool(self)
            pool.setMaxThreadCount(1)
            self._pools[lane] = pool
        return pool

    def submit(
        self,
        lane: str,
        fn: Callable[[Task], Any],
        *,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[str, str], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        on_done: Callable[[Task], None] | None = None,
        replace: bool = True,
        name: str | None = None,
        dedicated: bool = False,
    ) -> Task:
        """Run ``fn(task)`` on ``lane``'s thread (on a thread of its own when ``dedicated``: the task's
        ``thread``); see the module docstring for the protocol."""
        gen = self._generation.get(lane, 0) + (1 if replace else 0)
        self._generation[lane] = gen
        task = Task(self, lane, gen, name or lane)
        task.on_result, task.on_error, task.on_progress = on_result, on_error, on_progress
        task.on_done = on_done
        self._current[lane] = task
        if self._held is not None:
            self._held.append((task, fn, dedicated))
        else:
            self._start(task, fn, dedicated)
        return task

    def _start(self, task: Task, fn: Callable[[Task], Any], dedicated: bool) -> None:
        if dedicated:
            task.thread = _TaskThread(task, fn)
            task.thread.start()
        else:
            self.pool(task.lane).start(_Runnable(task, fn))

    def release(self) -> None:
        """Start the jobs held since the bridge was made (``hold_new``); later ones start at once."""
        held, self._held = self._held or [], None
        for task, fn, dedicated in held:
            self._start(task, fn, dedicated)

    def is_stale(self, task: Task) -> bool:
        return task.generation != self._generation.get(task.lane, 0)

    def invalidate(self, lane: str) -> None:
        """Make every task of ``lane`` stale (e.g. the project changed under it)."""
        self._generation[lane] = self._generation.get(lane, 0) + 1

    def current(self, lane: str) -> Task | None:
        return self._current.get(lane)

    def busy(self, lane: str) -> bool:
        t = self._current.get(lane)
        return t is not None and not t.done.is_set()

    def wait(self, lane: str | None = None, timeout_ms: int = -1) -> bool:
        """Wait until ``lane`` (every lane when None) has no job running or queued."""
        pools = [self._pools[lane]] if lane in self._pools else list(self._pools.values()) if lane is None else []
        return all(p.waitForDone(timeout_ms) for p in pools)

    # ------------------------------------------------------------------------------ GUI thread
    @Slot(object, object)
    def _deliver_result(self, task: Task, value: Any) -> None:
        if task.cancelled:
            log.debug("task %s: stale result dropped", task.name)
            return
        if task.on_result is not None:
            task.on_result(value)

    @Slot(object, str, str)
    def _deliver_error(self, task: Task, message: str, details: str) -> None:
        if task.cancelled:
            return
        if task.on_error is not None:
            task.on_error(message, details)

    @Slot(object, object)
    def _deliver_progress(self, task: Task, value: Any) -> None:
        if not task.cancelled and task.on_progress is not None:
            task.on_progress(value)

    @Slot(object)
    def _deliver_done(self, task: Task) -> None:
        if task.thread is not None:
            task.thread.wait()  # sent at the very end of its run(): the thread is ending
        if self._current.get(task.lane) is task:
            del self._current[task.lane]
        if task.on_done is not None:
            task.on_done(task)
