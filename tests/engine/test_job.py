"""Decomposition jobs (DESIGN.md §3 engine): throttled snapshots, cancellation, copies, all four models."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from demixer.engine.job import MODELS, Job, JobSpec, Snapshot, run_job

ALL_MODELS = ("nmf", "nmf-kl", "nae", "nae-pgd")


def make_problem(K: int = 24, N: int = 32, R: int = 4, seed: int = 0, dtype=np.float32) -> dict:
    """A small random nonnegative problem with some forbidden entries in both masks."""
    rng = np.random.default_rng(seed)
    W_true = rng.random((K, R))
    H_true = rng.random((R, N))
    V = (W_true @ H_true + 0.01 * rng.random((K, N))).astype(dtype)
    W0 = (rng.random((K, R)) + 0.1).astype(dtype)
    H0 = (rng.random((R, N)) + 0.1).astype(dtype)
    allow_W = rng.random((K, R)) > 0.2
    allow_H = rng.random((R, N)) > 0.2
    allow_W[0, :] = True  # every component keeps at least one allowed bin and frame
    allow_H[:, 0] = True
    return dict(V=V, W0=W0, H0=H0, allow_W=allow_W, allow_H=allow_H)


def spec_of(model: str = "nmf-kl", n_iter: int = 50, **kw) -> JobSpec:
    arrays = make_problem(**{k: kw.pop(k) for k in ("K", "N", "R", "seed", "dtype") if k in kw})
    arrays.update(kw)
    return JobSpec(model=model, n_iter=n_iter, **arrays)


def copy_spec(spec: JobSpec) -> JobSpec:
    return JobSpec(
        V=spec.V.copy(),
        W0=spec.W0.copy(),
        H0=spec.H0.copy(),
        model=spec.model,
        n_iter=spec.n_iter,
        allow_W=None if spec.allow_W is None else spec.allow_W.copy(),
        allow_H=None if spec.allow_H is None else spec.allow_H.copy(),
    )


def curve_of(snaps: list[Snapshot]) -> list[float]:
    return [loss for s in snaps for loss in s.losses]


# ------------------------------------------------------------------------------------ spec validation
def test_models_table_lists_the_four_models():
    assert set(MODELS) == set(ALL_MODELS)
    assert all(isinstance(label, str) and label for label in MODELS.values())


def test_unknown_model_is_a_value_error():
    with pytest.raises(ValueError, match="unknown model"):
        spec_of(model="pca")
    with pytest.raises(ValueError):
        spec_of(model="")


def test_negative_iterations_are_a_value_error():
    with pytest.raises(ValueError, match="iterations"):
        spec_of(n_iter=-1)


@pytest.mark.parametrize("model", ALL_MODELS)
def test_negative_V_fails_when_the_job_is_created(model):
    p = make_problem()
    p["V"][3, 4] = -1.0
    spec = JobSpec(model=model, n_iter=5, **p)  # the spec itself only checks model and n_iter
    with pytest.raises(ValueError, match="nonnegative"):
        Job(spec)


@pytest.mark.parametrize(
    "model, breakage",
    [
        (m, b)
        for m in ALL_MODELS
        for b in ("nan_V", "W0_rows", "H0_cols", "negative_W0", "allow_W_shape", "allow_H_shape")
        if not (m.startswith("nae") and b == "H0_cols")  # the NAE does not use H0 (the encoder gives H)
    ],
)
def test_bad_arrays_fail_when_the_job_is_created(model, breakage):
    p = make_problem()
    if breakage == "nan_V":
        p["V"][0, 0] = np.nan
    elif breakage == "W0_rows":
        p["W0"] = p["W0"][:-1]
        p["allow_W"] = None
    elif breakage == "H0_cols":
        p["H0"] = p["H0"][:, :-1]
        p["allow_H"] = None
    elif breakage == "negative_W0":
        p["W0"][1, 1] = -0.5
    elif breakage == "allow_W_shape":
        p["allow_W"] = p["allow_W"][:-1]
    elif breakage == "allow_H_shape":
        p["allow_H"] = p["allow_H"][:, :-1]
    spec = JobSpec(model=model, n_iter=5, **p)
    with pytest.raises(ValueError):
        Job(spec)


# ----------------------------------------------------------------------------------------- throttling
@pytest.mark.parametrize("model", ALL_MODELS)
def test_snapshots_are_throttled_but_every_loss_is_reported(model):
    n_iter = 200
    spec = spec_of(model=model, n_iter=n_iter)
    t0 = time.perf_counter()
    snaps = list(Job(spec, max_rate=1.0).snapshots())
    took = time.perf_counter() - t0

    assert len(snaps) < n_iter
    if took < 0.9:  # the whole run fits in one throttle interval: the first and the final snapshot only
        assert len(snaps) == 2
    curve = curve_of(snaps)
    assert len(curve) == n_iter
    assert all(np.isfinite(curve))
    last = snaps[-1]
    assert last.done and last.stopped == "finished"
    assert last.iteration == n_iter and last.n_iter == n_iter
    assert all(not s.done and s.stopped == "" for s in snaps[:-1])
    # each snapshot carries exactly the losses since the previous one
    prev = 0
    for s in snaps:
        assert s.iteration > prev
        assert len(s.losses) == s.iteration - prev
        assert s.n_iter == n_iter
        prev = s.iteration
    assert snaps[0].iteration == 1  # the first snapshot comes at once


@pytest.mark.parametrize("model", ["nmf-kl", "nae"])
def test_throttled_curve_equals_the_unthrottled_one(model):
    spec = spec_of(model=model, n_iter=60)
    every = list(Job(spec, max_rate=0).snapshots())  # max_rate 0: no throttling
    assert len(every) == 60
    assert [s.iteration for s in every] == list(range(1, 61))
    assert all(len(s.losses) == 1 for s in every)
    throttled = list(Job(spec, max_rate=1.0).snapshots())
    np.testing.assert_allclose(curve_of(throttled), curve_of(every), rtol=1e-6)
    np.testing.assert_allclose(throttled[-1].W, every[-1].W, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(throttled[-1].H, every[-1].H, rtol=1e-5, atol=1e-7)


def test_throttle_keeps_snapshots_apart_in_time():
    max_rate = 40.0
    spec = spec_of(model="nmf-kl", n_iter=400, K=257, N=300, R=12)
    snaps = list(Job(spec, max_rate=max_rate).snapshots())
    gaps = np.diff([s.elapsed for s in snaps[:-1]])  # the final snapshot is sent regardless
    if gaps.size:
        assert gaps.min() >= 0.9 / max_rate
    assert len(curve_of(snaps)) == 400
    assert snaps[-1].elapsed >= snaps[0].elapsed
    assert snaps[-1].rate > 0


# --------------------------------------------------------------------------------------- cancellation
@pytest.mark.parametrize("model", ALL_MODELS)
def test_cancel_from_another_thread_stops_after_one_more_iteration(model):
    spec = spec_of(model=model, n_iter=10_000)
    job = Job(spec, max_rate=1.0)
    it = job.snapshots()
    first = next(it)
    assert not first.done
    # the generator is suspended at the first snapshot: cancel from another thread, then resume
    t = threading.Thread(target=job.cancel)
    t.start()
    t.join(5)
    assert job.cancelled
    rest = list(it)
    assert len(rest) == 1
    final = rest[0]
    assert final.done and final.stopped == "cancelled"
    assert final.iteration == first.iteration + 1
    assert len(first.losses) + len(final.losses) == final.iteration

    # W/H are those of the iteration it stopped at: the same as an uncancelled run of that length
    ref = run_job(JobSpec(**{**spec.__dict__, "n_iter": final.iteration}))
    np.testing.assert_allclose(final.W, ref.W, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(final.H, ref.H, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(curve_of([first, final]), ref.losses, rtol=1e-6)


@pytest.mark.parametrize("model", ["nmf", "nae-pgd"])
def test_cancel_inside_the_loop_after_k_snapshots(model):
    spec = spec_of(model=model, n_iter=500)
    job = Job(spec, max_rate=0)
    snaps = []
    for s in job.snapshots():
        snaps.append(s)
        if len(snaps) == 3:
            job.cancel()
    assert len(snaps) == 4
    final = snaps[-1]
    assert final.done and final.stopped == "cancelled" and final.iteration == 4
    assert len(curve_of(snaps)) == 4
    ref = run_job(JobSpec(**{**spec.__dict__, "n_iter": 4}))
    np.testing.assert_allclose(final.W, ref.W, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(final.H, ref.H, rtol=1e-5, atol=1e-7)


def test_cancel_while_running_concurrently_stops_within_one_iteration():
    """The job runs in a worker thread (as under the GUI); the main thread cancels it mid-run."""
    spec = spec_of(model="nmf-kl", n_iter=10**7, K=129, N=200, R=8)
    job = Job(spec, max_rate=0)  # a snapshot per iteration, so we see every iteration
    seen: list[tuple[Snapshot, bool]] = []
    started = threading.Event()
    errors: list[BaseException] = []

    def worker():
        try:
            for s in job.snapshots():
                seen.append((s, job.cancelled))  # was the flag already set when this one arrived?
                started.set()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            started.set()

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    assert started.wait(20)
    time.sleep(0.05)
    job.cancel()
    t.join(20)
    assert not t.is_alive(), "the job did not stop after cancel()"
    assert not errors
    snaps = [s for s, _ in seen]
    final = snaps[-1]
    assert final.done and final.stopped == "cancelled"
    assert final.iteration < spec.n_iter
    assert [s.iteration for s in snaps] == list(range(1, len(snaps) + 1))
    # once a snapshot was received with the flag set, the next one is the last, one iteration later
    flagged = [i for i, (_, c) in enumerate(seen) if c]
    if flagged:
        i = flagged[0]
        assert i >= len(seen) - 2
    assert sum(1 for s in snaps if s.done) == 1


def test_cancel_before_starting_runs_at_most_one_iteration():
    job = Job(spec_of(model="nmf", n_iter=100), max_rate=0)
    job.cancel()
    snaps = list(job.snapshots())
    assert snaps[-1].done and snaps[-1].stopped == "cancelled"
    assert snaps[-1].iteration <= 1
    assert len(snaps) == 1


# ----------------------------------------------------------------------------------------- copies
@pytest.mark.parametrize("model", ALL_MODELS)
def test_snapshot_arrays_are_copies(model):
    spec = spec_of(model=model, n_iter=30)
    ref = run_job(copy_spec(spec))
    job = Job(spec, max_rate=0)
    snaps, kept = [], []
    for s in job.snapshots():
        snaps.append(s)
        kept.append((s.W.copy(), s.H.copy()))
        # vandalise what we were given: the run must not notice
        s.W[...] = 123.0
        s.H[...] = 0.0
        if s.W_E is not None:
            s.W_E[...] = 7.0
    assert snaps[-1].done
    np.testing.assert_allclose(curve_of(snaps), ref.losses, rtol=1e-6)
    np.testing.assert_allclose(kept[-1][0], ref.W, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(kept[-1][1], ref.H, rtol=1e-5, atol=1e-7)
    # successive snapshots never share memory with each other
    a, b = list(Job(copy_spec(spec), max_rate=0).snapshots())[:2]
    assert not np.shares_memory(a.W, b.W)
    assert not np.shares_memory(a.H, b.H)
    if model.startswith("nae"):
        assert a.W_E is not None and not np.shares_memory(a.W_E, b.W_E)
    else:
        assert a.W_E is None


@pytest.mark.parametrize("model", ALL_MODELS)
def test_snapshot_arrays_do_not_share_memory_with_the_spec(model):
    spec = spec_of(model=model, n_iter=3)
    for s in Job(spec, max_rate=0).snapshots():
        for arr in (s.W, s.H) + ((s.W_E,) if s.W_E is not None else ()):
            for src in (spec.V, spec.W0, spec.H0):
                assert not np.shares_memory(arr, src)


@pytest.mark.parametrize("model", ALL_MODELS)
def test_the_job_does_not_mutate_the_spec_arrays(model):
    spec = spec_of(model=model, n_iter=20)
    before = {k: np.copy(v) for k, v in spec.__dict__.items() if isinstance(v, np.ndarray)}
    run_job(spec)
    list(Job(spec, max_rate=0).snapshots())
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(spec, k), v, err_msg=k)


@pytest.mark.parametrize("model", ALL_MODELS)
@pytest.mark.parametrize("field", ["V", "W0", "H0", "allow_W", "allow_H"])
def test_changing_the_callers_arrays_after_creating_the_job_does_not_affect_it(model, field):
    """JobSpec: 'Arrays are copied when the job is created' (the GUI may edit masks during a run)."""
    spec = spec_of(model=model, n_iter=15)
    ref = run_job(copy_spec(spec))
    job = Job(spec, max_rate=0)
    a = getattr(spec, field)
    if a.dtype == bool:
        a[...] = ~a
        a[0, :] = True
        a[:, 0] = True
    else:
        a[...] = np.random.default_rng(5).random(a.shape).astype(a.dtype) * 3
    final = list(job.snapshots())[-1]
    np.testing.assert_allclose(final.W, ref.W, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(final.H, ref.H, rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------------------- models
@pytest.mark.parametrize("model", ALL_MODELS)
def test_every_model_runs_and_reduces_the_loss(model):
    spec = spec_of(model=model, n_iter=80)
    final = run_job(spec)
    curve = np.asarray(final.losses)
    assert curve.shape == (80,)
    assert np.all(np.isfinite(curve))
    assert curve[-1] < curve[0]
    if model in ("nmf", "nmf-kl"):  # multiplicative updates never increase their own loss
        assert np.all(np.diff(curve) <= 1e-5 * curve[:-1])
    # shapes, nonnegativity and the constraint zeros
    K, N = spec.V.shape
    R = spec.W0.shape[1]
    assert final.W.shape == (K, R) and final.H.shape == (R, N)
    assert final.W.min() >= 0 and final.H.min() >= 0
    assert np.all(final.W[~spec.allow_W] == 0)
    assert np.all(final.H[~spec.allow_H] == 0)
    assert final.W.dtype == np.float32 and final.H.dtype == np.float32
    if model.startswith("nae"):
        assert final.W_E is not None and final.W_E.shape == (R, K) and final.W_E.min() >= 0
    else:
        assert final.W_E is None
    assert final.done and final.stopped == "finished" and final.iteration == 80


@pytest.mark.parametrize("model", ALL_MODELS)
def test_float64_input_stays_float64(model):
    final = run_job(spec_of(model=model, n_iter=5, dtype=np.float64))
    assert final.W.dtype == np.float64 and final.H.dtype == np.float64


@pytest.mark.parametrize("model", ALL_MODELS)
def test_runs_are_deterministic(model):
    spec = spec_of(model=model, n_iter=25)
    a = run_job(copy_spec(spec))
    b = run_job(copy_spec(spec))
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.losses, b.losses)


@pytest.mark.parametrize("model", ALL_MODELS)
def test_without_masks(model):
    spec = spec_of(model=model, n_iter=10, allow_W=None, allow_H=None)
    final = run_job(spec)
    assert len(final.losses) == 10 and final.losses[-1] < final.losses[0]


# ----------------------------------------------------------------------------------------- n_iter = 0
@pytest.mark.parametrize("model", ALL_MODELS)
def test_zero_iterations_give_one_done_snapshot_of_the_masked_initial_state(model):
    spec = spec_of(model=model, n_iter=0)
    snaps = list(Job(spec).snapshots())
    assert len(snaps) == 1
    s = snaps[0]
    assert s.done and s.stopped == "finished"
    assert s.iteration == 0 and s.n_iter == 0
    assert s.losses == []
    np.testing.assert_array_equal(s.W, np.where(spec.allow_W, spec.W0, 0))
    np.testing.assert_array_equal(s.H, np.where(spec.allow_H, spec.H0, 0))
    assert not np.shares_memory(s.W, spec.W0) and not np.shares_memory(s.H, spec.H0)
    # the spec's own arrays keep their forbidden entries
    assert np.all(spec.W0 > 0) and np.all(spec.H0 > 0)
    final = run_job(spec)
    assert final.done and final.losses == [] and final.iteration == 0


# ----------------------------------------------------------------------------------------- run_job
@pytest.mark.parametrize("model", ALL_MODELS)
def test_run_job_returns_the_whole_curve_and_reports_progress(model):
    n_iter = 120
    spec = spec_of(model=model, n_iter=n_iter)
    seen: list[tuple[int, int, bool]] = []
    final = run_job(spec, progress=lambda s: seen.append((s.iteration, len(s.losses), s.done)))
    assert len(final.losses) == n_iter
    assert final.done and final.stopped == "finished" and final.iteration == n_iter
    assert seen, "progress was never called"
    assert seen[-1][0] == n_iter and seen[-1][2]
    assert sum(n for _, n, _ in seen) == n_iter
    unthrottled = curve_of(list(Job(copy_spec(spec), max_rate=0).snapshots()))
    np.testing.assert_allclose(final.losses, unthrottled, rtol=1e-6)



def test_first_snapshot_carries_the_initial_loss():
    first = next(iter(Job(spec_of(model="nmf-kl", n_iter=5), max_rate=0).snapshots()))
    assert first.initial_loss is not None and first.initial_loss >= first.losses[0]


@pytest.mark.parametrize("field", ["W0", "H0", "allow_W", "allow_H"])
def test_zero_iteration_snapshot_uses_the_arrays_as_they_were_when_the_job_was_made(field):
    spec = spec_of(model="nmf-kl", n_iter=0)
    expected_W = np.where(spec.allow_W, spec.W0, 0)
    expected_H = np.where(spec.allow_H, spec.H0, 0)
    job = Job(spec)
    a = getattr(spec, field)
    a[...] = ~a if a.dtype == bool else 0.5
    (s,) = list(job.snapshots())
    np.testing.assert_array_equal(s.W, expected_W)
    np.testing.assert_array_equal(s.H, expected_H)
