"""Memory of the staged fit (issue 14 item 12): what a stage no longer needs is released before the next
stage makes its own arrays, and no stage copies V. Checked with weak references, without timing or RSS."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

import demixer.engine.fit as fit_module
from demixer.core.notes import Note, pitch_to_hz
from demixer.engine.fit import Fit, FitState
from demixer.engine.job import Job, JobSpec
from demixer.engine.separation import SeparationSettings, analyse, initialise
from demixer.io.audio import Audio

SR = 22050
SETTINGS = SeparationSettings(n_iter=12)


@pytest.fixture(scope="module")
def piece():
    n = int(SR * 3.0)
    t = np.arange(n) / SR
    x = np.zeros(n)
    notes = []
    for k, (p, g) in enumerate([(48, "low"), (67, "high"), (52, "low"), (71, "high")]):
        on, off = 0.7 * k, 0.7 * k + 1.0
        env = np.where((t >= on) & (t < off), np.exp(-2.0 * (t - on)), 0.0)
        x += env * sum(0.2 / m * np.sin(2 * np.pi * m * pitch_to_hz(p) * t) for m in range(1, 6))
        notes.append(Note(on, off, p, g))
    return Audio(x.astype(np.float32), SR), notes


def _fit(piece):
    audio, notes = piece
    analysis = analyse(audio, SETTINGS.stft)
    init = initialise(notes, analysis, SETTINGS.score)
    return analysis, Fit(analysis, init.notes, SETTINGS, FitState.from_init(init, masks_edited=False), "staged")


def test_the_scouts_analysis_and_jobs_are_released_when_their_stage_ends(piece, monkeypatch):
    scouts, jobs = [], []
    make_scout = fit_module._scout_analysis

    def scout_analysis(*args):
        s = make_scout(*args)
        scouts.append(weakref.ref(s))
        return s

    class TrackedJob(Job):
        def __init__(self, spec, *args, **kw):
            super().__init__(spec, *args, **kw)
            jobs.append((spec.label, weakref.ref(self), weakref.ref(self._steps)))

    monkeypatch.setattr(fit_module, "_scout_analysis", scout_analysis)
    monkeypatch.setattr(fit_module, "Job", TrackedJob)
    analysis, runner = _fit(piece)
    assert [s.name for s in runner.stages] == ["scout", "templates", "activations"]
    checked = set()
    for snap in runner.snapshots():
        if snap.stage != "scout" and "scout" not in checked:
            # the scout is on its own (finer) grid: a second analysis as large as the project's
            assert len(scouts) == 1 and scouts[0]() is None, "the scout's analysis outlives its stage"
            assert jobs[0][0] == "scout" and jobs[0][1]() is None, "the scout's job outlives its stage"
            checked.add("scout")
        if snap.stage == "activations" and "templates" not in checked:
            assert jobs[1][0] == "templates" and jobs[1][1]() is None, "the template job outlives its stage"
            checked.add("templates")
    assert checked == {"scout", "templates"}
    assert runner.result is not None and runner.result.stopped == "finished"
    # after the fit, no job (nor its kernels' buffers) is held by the fit
    assert runner._job is None
    assert all(steps() is None for _, _, steps in jobs)


def test_a_job_uses_a_read_only_V_without_copying_and_copies_a_writable_one():
    rng = np.random.default_rng(0)
    V = rng.random((20, 30)).astype(np.float32)
    W0, H0 = rng.random((20, 3)).astype(np.float32), rng.random((3, 30)).astype(np.float32)
    ro = V.view()
    ro.flags.writeable = False
    shared = Job(JobSpec(V=ro, W0=W0, H0=H0, n_iter=3))
    assert np.shares_memory(shared.spec.V, V)
    assert not np.shares_memory(shared.spec.W0, W0)  # the factors are still private copies
    own = Job(JobSpec(V=V, W0=W0, H0=H0, n_iter=3))
    assert not np.shares_memory(own.spec.V, V)
    a = [s for s in shared.snapshots()][-1]
    b = [s for s in own.snapshots()][-1]
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)


def test_the_fit_gives_its_jobs_the_analysis_V_without_a_copy(piece, monkeypatch):
    specs = []

    class TrackedJob(Job):
        def __init__(self, spec, *args, **kw):
            super().__init__(spec, *args, **kw)
            specs.append((spec.label, self.spec.V))

    monkeypatch.setattr(fit_module, "Job", TrackedJob)
    analysis, runner = _fit(piece)
    runner.run()
    by_stage = dict(specs)
    assert np.shares_memory(by_stage["templates"], analysis.V)
    assert np.shares_memory(by_stage["activations"], analysis.V)
    assert analysis.V.flags.writeable  # the project's own V is not made read-only
