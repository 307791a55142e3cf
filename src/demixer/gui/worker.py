"""Background runs: an engine :class:`~demixer.engine.job.Job` iterated in a ``QThread`` (DESIGN.md §3).

The worker thread computes every iteration and, for each snapshot the job yields, also the dB images
of W and H (so the GUI thread only uploads them), then emits one queued signal per snapshot. The GUI
thread never computes an iteration. :class:`RunController` lives in the GUI thread, owns the job and
the thread, and re-emits the worker's signals there:

    snapshot(controller, DisplaySnapshot)   every snapshot, in order; the last has ``snap.done``
    failed(controller, str, str)            an exception in the worker: (message, traceback)
    finished(controller)                    the thread has ended (after the last snapshot or failure)

Cancellation (:meth:`RunController.cancel`, thread-safe) is checked by the job between iterations,
so the thread ends within one iteration; :meth:`RunController.stop` cancels and waits for it.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from demixer.engine.job import Job, JobSpec, Snapshot
from demixer.gui.display import db_top, to_db

__all__ = ["DisplaySnapshot", "RunThread", "RunController", "SNAPSHOT_RATE", "limit_blas_threads"]

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


class RunThread(QThread):
    """Iterates the job's snapshots; emits each (prepared) through a signal. Never touches the model."""

    snapshot = Signal(object)
    failed = Signal(str, str)

    def __init__(self, job: Job, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job = job

    def run(self) -> None:  # the worker thread
        try:
            for snap in self.job.snapshots():
                self.snapshot.emit(prepare(snap))
        except Exception as exc:  # shown by the GUI in a dialog; the project is left as it was
            self.failed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())


class RunController(QObject):
    """One run: job + thread, in the GUI thread. Create, connect, :meth:`start`."""

    snapshot = Signal(object, object)
    failed = Signal(object, str, str)
    finished = Signal(object)

    def __init__(self, spec: JobSpec, parent: QObject | None = None, max_rate: float = SNAPSHOT_RATE) -> None:
        super().__init__(parent)
        self.spec = spec
        limit_blas_threads()
        self.job = Job(spec, max_rate=max_rate)  # validates here, in the GUI thread: bad input fails early
        self.thread = RunThread(self.job)
        self.losses: list[float] = []
        self.last: DisplaySnapshot | None = None
        self.error: tuple[str, str] | None = None
        self.applied = False  # set by the window once the final snapshot's result is applied
        self.started_at = 0.0
        queued = Qt.ConnectionType.QueuedConnection
        self.thread.snapshot.connect(self._on_snapshot, queued)
        self.thread.failed.connect(self._on_failed, queued)
        self.thread.finished.connect(self._on_finished, queued)

    # ---------------------------------------------------------------------------------- control
    def start(self) -> None:
        self.started_at = time.perf_counter()
        self.thread.start()

    def cancel(self) -> None:
        """Ask the job to stop after the current iteration (returns at once)."""
        self.job.cancel()

    @property
    def cancelled(self) -> bool:
        return self.job.cancelled

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def stop(self, timeout_ms: int = -1) -> bool:
        """Cancel and wait for the thread to end. True when it has ended."""
        self.job.cancel()
        if timeout_ms < 0:
            return self.thread.wait()
        return self.thread.wait(timeout_ms)

    # ---------------------------------------------------------------------------------- slots (GUI thread)
    @Slot(object)
    def _on_snapshot(self, ds: DisplaySnapshot) -> None:
        self.losses.extend(ds.snap.losses)
        self.last = ds
        self.snapshot.emit(self, ds)

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        self.error = (message, details)
        self.failed.emit(self, message, details)

    @Slot()
    def _on_finished(self) -> None:
        self.thread.wait()  # ``finished`` is emitted just before the thread really ends
        self.finished.emit(self)
