"""Decomposition jobs: a frozen spec in, a stream of snapshots out (DESIGN.md §3).

A :class:`Job` works on private copies of its inputs. Iterating :meth:`Job.snapshots` runs the model
one iteration at a time and yields a :class:`Snapshot` at most ``max_rate`` times per second, always
the final one; :meth:`Job.cancel` (from any thread) stops it between two iterations, and the last
snapshot then carries ``stopped == "cancelled"`` and the state reached. No Qt here: the CLI iterates a
job directly and the GUI does so in a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from demixer.core.nae import init_encoder, nae_steps
from demixer.core.nmf import nmf_steps
from demixer.engine.models import model_info, model_labels

__all__ = ["MODELS", "JobSpec", "Snapshot", "Job", "run_job"]

#: model name → label, from :mod:`demixer.engine.models` (kept for the window until it reads that list)
MODELS: dict[str, str] = model_labels()


@dataclass(frozen=True, eq=False)
class JobSpec:
    """What to run. Arrays are copied when the job is created; the spec itself is never modified.
    A read-only ``V`` is used as it is (the fit passes its analysis's V read-only: a spectrogram as large
    as the recording is not copied per stage)."""

    V: np.ndarray
    W0: np.ndarray
    H0: np.ndarray
    model: str = "nmf-kl"
    n_iter: int = 100
    allow_W: np.ndarray | None = None
    allow_H: np.ndarray | None = None
    lock: np.ndarray | None = None
    update_W: bool = True
    update_H: bool = True
    normalize: bool | str = False
    W_E0: np.ndarray | None = None  # NAE encoder start; default: matched filter of W0
    label: str = ""
    #: False when nobody reads the losses (a quiet headless run): they may come out NaN, W and H are the same
    track_loss: bool = True
    #: NMF kernel: "auto" (constraint-aware when it pays), "dense" or "sparse" (core.nmf_sparse.METHODS)
    method: str = "auto"

    def __post_init__(self) -> None:
        model_info(self.model)  # ValueError naming the choices
        if int(self.n_iter) < 0:
            raise ValueError(f"iterations must be >= 0, got {self.n_iter}")


@dataclass
class Snapshot:
    """The state after ``iteration`` of ``n_iter``. ``losses`` are the losses since the previous
    snapshot (one per iteration, in order); ``W``/``H`` (and ``W_E`` for the NAE) are copies."""

    iteration: int
    n_iter: int
    losses: list[float]
    W: np.ndarray
    H: np.ndarray
    W_E: np.ndarray | None = None
    done: bool = False
    stopped: str = ""  # on the final snapshot: "finished", "cancelled" or "converged"
    elapsed: float = 0.0
    initial_loss: float | None = None  # on the first snapshot
    extra: dict = field(default_factory=dict)
    # Set by a staged or warm fit (engine.fit.Fit); a bare Job leaves the defaults.
    stage: str = ""  # "scout", "templates", "activations" or "joint"
    stage_index: int = 0  # 0-based index of ``stage`` in the fit's stages
    n_stages: int = 1
    stage_iteration: int = 0  # iterations done within the stage
    stage_n_iter: int = 0  # the stage's iterations
    mode: str = ""  # "staged" or "warm"
    resampled: bool = False  # W, H are the stage's own (finer-grid) factors resampled to the project grid

    @property
    def rate(self) -> float:
        """Iterations per second so far."""
        return self.iteration / self.elapsed if self.elapsed > 0 else 0.0


class Job:
    """One run of a model. Create it, then iterate :meth:`snapshots` (in any one thread)."""

    def __init__(self, spec: JobSpec, max_rate: float = 10.0):
        # Private copies of the arrays (as JobSpec promises): the caller may edit its own during the run.
        # A read-only V cannot be edited through the spec: no copy (V is the largest array of a run).
        self.spec = replace(spec, **{k: np.array(v) for k, v in vars(spec).items()
                                     if isinstance(v, np.ndarray) and not (k == "V" and not v.flags.writeable)})
        self.max_rate = float(max_rate)
        self._cancel = threading.Event()
        # Validate eagerly so that bad input fails where the job is made, not later in a thread.
        self._steps = self._make_steps()

    def close(self) -> None:
        """Release the model's working arrays (the kernels' buffers, as large as V); the job cannot run
        after this. :meth:`snapshots` calls it once the final snapshot is out."""
        steps, self._steps = self._steps, iter(())
        close = getattr(steps, "close", None)
        if close is not None:
            close()

    def cancel(self) -> None:
        """Ask the job to stop after the current iteration (thread-safe)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _make_steps(self) -> Iterator:
        s = self.spec
        info = model_info(s.model)
        if info.family == "nmf":
            return nmf_steps(
                s.V, s.W0, s.H0, beta=info.beta, n_iter=s.n_iter,
                update_W=s.update_W, update_H=s.update_H, allow_W=s.allow_W, allow_H=s.allow_H,
                lock=s.lock, normalize=s.normalize, track_loss=s.track_loss, method=s.method,
            )
        W_E0 = s.W_E0 if s.W_E0 is not None else init_encoder(np.asarray(s.W0))
        return nae_steps(
            s.V, s.W0, W_E0, mask_H=s.allow_H, allow_W=s.allow_W, n_iter=s.n_iter,
            method=info.method,
        )

    def _snapshot(self, state, losses, done, stopped, t0, first=False) -> Snapshot:
        if hasattr(state, "W_D"):
            W, H, W_E = state.W_D.copy(), state.H.copy(), state.W_E.copy()
        else:
            W, H, W_E = state.W.copy(), state.H.copy(), None
        return Snapshot(
            iteration=state.iteration, n_iter=int(self.spec.n_iter), losses=list(losses), W=W, H=H,
            W_E=W_E, done=done, stopped=stopped, elapsed=time.perf_counter() - t0,
            initial_loss=float(state.initial_loss) if first else None,
        )

    def snapshots(self) -> Iterator[Snapshot]:
        """Run the job, yielding throttled snapshots; the last one has ``done=True``."""
        t0 = time.perf_counter()
        min_gap = 1.0 / self.max_rate if self.max_rate > 0 else 0.0
        last_emit = -np.inf
        pending: list[float] = []
        state = None
        n_iter = int(self.spec.n_iter)
        for state in self._steps:
            pending.append(float(state.loss))
            first = last_emit == -np.inf
            if self._cancel.is_set():
                final = self._snapshot(state, pending, True, "cancelled", t0, first)
                self.close()
                yield final
                return
            if state.iteration >= n_iter:
                break
            now = time.perf_counter()
            if now - last_emit >= min_gap:
                yield self._snapshot(state, pending, False, "", t0, first)
                pending = []
                last_emit = now
        if state is None:  # zero iterations: report the initial state
            s = self.spec
            W = np.array(s.W0, dtype=np.asarray(s.V).dtype if np.asarray(s.V).dtype == np.float64 else np.float32)
            H = np.array(s.H0, dtype=W.dtype)
            if s.allow_W is not None:
                W[~np.asarray(s.allow_W, bool)] = 0
            if s.allow_H is not None:
                H[~np.asarray(s.allow_H, bool)] = 0
            yield Snapshot(0, 0, [], W, H, None, True, "finished", time.perf_counter() - t0)
            return
        stopped = "finished" if state.iteration >= n_iter else "converged"
        final = self._snapshot(state, pending, True, stopped, t0, last_emit == -np.inf)
        self.close()  # the final snapshot holds copies: the kernels' buffers can go now
        yield final


def run_job(spec: JobSpec, progress=None, job_out: list | None = None) -> Snapshot:
    """Run a job to the end; ``progress(snapshot)`` is called for every snapshot. Returns the last one
    with ``losses`` holding the whole loss curve. ``job_out``, if given, receives the Job (so that
    another thread can cancel it)."""
    job = Job(spec)
    if job_out is not None:
        job_out.append(job)
    curve: list[float] = []
    last = None
    for snap in job.snapshots():
        curve.extend(snap.losses)
        if progress is not None:
            progress(snap)
        last = snap
    assert last is not None
    last.losses = curve
    return last
