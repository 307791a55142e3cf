"""Background runs: an engine :class:`~demixer.engine.fit.Fit` (the window's Run, DESIGN.md §2.5c) or a
bare :class:`~demixer.engine.job.Job`, iterated as a task of the window's task bridge, on a thread of its
own (gui/tasks.py; DESIGN.md §3).

The worker thread computes every iteration and, for each snapshot the fit yields, also the dB images
of W and H (so the GUI thread only uploads them), then sends it as the task's progress. The GUI
thread never computes an iteration. :class:`RunController` lives in the GUI thread, owns the job and
its task, and re-emits the bridge's deliveries there:

    snapshot(controller, DisplaySnapshot)   every snapshot, in order; the last has ``snap.done``
    failed(controller, str, str)            an exception in the worker: (message, traceback)
    finished(controller)                    the thread has ended (after the last snapshot or failure)

Cancellation (:meth:`RunController.cancel`, thread-safe) is checked by the fit between iterations in
every stage, so it ends within one iteration; :meth:`RunController.stop` cancels and waits for it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from demixer.gui.display import db_top, to_db
from demixer.gui.tasks import Task, TaskBridge

if TYPE_CHECKING:  # the engine (scipy.sparse, the models) loads with the first run, not with the window
    from demixer.engine.job import Snapshot

__all__ = ["DisplaySnapshot", "RUN_LANE", "RunController", "SNAPSHOT_RATE", "limit_blas_threads"]

RUN_LANE = "run"

#: Snapshots per second asked from the job (at most). The job emits only after whole iterations, so the
#: gap between snapshots is up to one iteration longer than 1/rate: asking for 20 keeps it ≤ 100 ms for
#: iterations up to 50 ms, and every 10 Hz pane repaint finds a fresh snapshot. The loss plot grows on
#: every snapshot.
SNAPSHOT_RATE = 20.0


_blas_limit = None


def limit_blas_threads() -> int | None:
    """Leave a core to the GUI thread: BLAS in this process uses at most ``cpu_count − 1`` threads (≥ 1).

    OpenBLAS threads spin while waiting for work; with as many of them as cores they starve the GUI
    thread. On the 2-core dev machine (shared, load ≈ 4) one BLAS thread ran the demo's KL iterations
    3–4× faster than two and halved the event-loop latency (benchmarks/bench_gui.py). Process-wide and
    set once, when the first run starts. Returns the limit, or None if threadpoolctl is unavailable.
    """
    global _blas_limit
    n = max(1, (os.cpu_count() or 2) - 1)
    if _blas_limit is None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - a declared dependency
            return None
        _blas_limit = threadpool_limits(limits=n, user_api="blas")
    return n


@dataclass(eq=False)
class DisplaySnapshot:
    """A job snapshot plus what the panes need, computed in the worker thread."""

    snap: Snapshot
    W_db: np.ndarray
    H_db: np.ndarray
    W_top: float
    H_top: float
    prepared_at: float = 0.0  # perf_counter when the worker made it


def prepare(snap: Snapshot) -> DisplaySnapshot:
    W_db = to_db(snap.W)
    H_db = to_db(snap.H)
    return DisplaySnapshot(snap, W_db, H_db, db_top(W_db), db_top(H_db), time.perf_counter())


class RunController(QObject):
    """One run: a fit (or a job) as a dedicated task of the task bridge, in the GUI thread. Create,
    connect, :meth:`start`.

    ``job`` is anything with ``snapshots()``, ``cancel()`` and ``cancelled`` — a
    :class:`~demixer.engine.fit.Fit` (what the window's Run makes; made, and so validated, in the GUI
    thread) or a :class:`JobSpec`, turned into a :class:`Job` here. ``label``, ``model``, ``n_iter`` say
    what runs (taken from the spec for a JobSpec)."""

    snapshot = Signal(object, object)
    failed = Signal(object, str, str)
    finished = Signal(object)

    def __init__(
        self,
        job,
        parent: QObject | None = None,
        max_rate: float = SNAPSHOT_RATE,
        tasks: TaskBridge | None = None,
        *,
        label: str = "",
        model: str = "",
        n_iter: int = 0,
    ) -> None:
        super().__init__(parent)
        limit_blas_threads()
        from demixer.engine.job import Job, JobSpec

        if isinstance(job, JobSpec):  # validates here, in the GUI thread: bad input fails early
            label, model, n_iter = label or job.label, model or job.model, n_iter or job.n_iter
            job = Job(job, max_rate=max_rate)
        self.job = job
        self.label, self.model, self.n_iter = label, model, int(n_iter)
        self.tasks = tasks if tasks is not None else TaskBridge(self)
        self.task: Task | None = None
        self.losses: list[float] = []
        self.last: DisplaySnapshot | None = None
        self.error: tuple[str, str] | None = None
        self.applied = False  # set by the window once the final snapshot's result is applied
        self.started_at = 0.0

    @property
    def result(self):
        """The fit's :class:`~demixer.engine.fit.FitResult` once its last snapshot is out (None for a
        bare job, or before)."""
        return getattr(self.job, "result", None)

    # ---------------------------------------------------------------------------------- control
    def start(self) -> None:
        self.started_at = time.perf_counter()
        self.task = self.tasks.submit(
            RUN_LANE,
            self._work,
            on_progress=self._on_snapshot,
            on_error=self._on_failed,
            on_done=self._on_finished,
            replace=False,  # a run being abandoned still delivers until it ends; its owner ignores it
            name=f"run {self.label}",
            dedicated=True,
        )

    @property
    def thread(self):
        """The run's own thread (a QThread), once started."""
        return self.task.thread if self.task is not None else None

    def _work(self, task: Task) -> None:  # the worker thread: iterates the fit, never touches the model
        for snap in self.job.snapshots():
            task.progress(prepare(snap))

    def cancel(self) -> None:
        """Ask the job to stop after the current iteration (returns at once); its last state is kept."""
        self.job.cancel()

    @property
    def cancelled(self) -> bool:
        return self.job.cancelled

    def is_running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def stop(self, timeout_ms: int = -1) -> bool:
        """Cancel and wait for the job to end. True when it has ended."""
        self.job.cancel()
        if self.thread is None:
            return True
        if timeout_ms < 0:
            return self.thread.wait()
        return self.thread.wait(timeout_ms)

    # ---------------------------------------------------------------------------------- GUI thread
    def _on_snapshot(self, ds: DisplaySnapshot) -> None:
        self.losses.extend(ds.snap.losses)
        self.last = ds
        self.snapshot.emit(self, ds)

    def _on_failed(self, message: str, details: str) -> None:
        self.error = (message, details)
        self.failed.emit(self, message, details)

    def _on_finished(self, _task: Task) -> None:
        self.finished.emit(self)
