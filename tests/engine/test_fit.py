"""The one fit entry point (engine.fit.Fit): snapshots through every stage in order, cancellation in
each stage, painted constraints in every stage, warm start, the modes it reports, the model list."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from demixer.core.notes import Note, pitch_to_hz
from demixer.engine.fit import Fit, FitState, choose_mode
from demixer.engine.job import JobSpec, run_job
from demixer.engine.separation import SeparationSettings, analyse, initialise, stems
from demixer.io.audio import Audio

SR = 22050
DUR = 3.0
LOW = [(48, 0.0, 1.0), (52, 1.0, 2.0), (48, 2.0, 3.0)]  # plucked
HIGH = [(67, 0.0, 1.5), (71, 1.5, 3.0)]  # held
SETTINGS = SeparationSettings(n_iter=40)  # 10 scout, 20 template, 10 activation iterations
STAGES = ["scout", "templates", "activations"]


def tone(pitch, onset, offset, n, decay):
    t = np.arange(n) / SR
    f0 = pitch_to_hz(pitch)
    inside = (t >= onset) & (t < offset)
    env = np.where(inside, np.clip((t - onset) / 0.03, 0, 1) * np.exp(-decay * (t - onset)), 0.0)
    return env * sum((0.3 / m) * np.sin(2 * np.pi * m * f0 * t) for m in range(1, 7) if m * f0 < SR / 2)


@pytest.fixture(scope="module")
def piece():
    n = int(SR * DUR)
    x = sum(tone(p, a, b, n, 3.0) for p, a, b in LOW) + sum(tone(p, a, b, n, 0.0) for p, a, b in HIGH)
    notes = [Note(a, b, p, "low") for p, a, b in LOW] + [Note(a, b, p, "high") for p, a, b in HIGH]
    audio = Audio(x.astype(np.float32), SR)
    analysis = analyse(audio, SETTINGS.stft)
    init = initialise(notes, analysis, SETTINGS.score)
    return {"audio": audio, "notes": notes, "analysis": analysis, "init": init}


def make(piece, state=None, mode="staged", settings=SETTINGS, **kw) -> Fit:
    state = state or FitState.from_init(piece["init"])
    return Fit(piece["analysis"], piece["notes"], settings, state, mode, max_rate=0.0, **kw)


def row(init, kind, pitch, source) -> int:
    return next(r for r, c in enumerate(init.components) if (c.kind, c.pitch, c.source) == (kind, pitch, source))


def test_snapshots_go_through_every_stage_in_order(piece):
    fit = make(piece)
    assert fit.mode == "staged" and fit.reason == "" and [s.name for s in fit.stages] == STAGES
    snaps = list(fit.snapshots())
    assert [s.stage for s in snaps[:-1]] == ["scout"] * 10 + ["templates"] * 20 + ["activations"] * 9
    assert snaps[-1].stage == "activations" and snaps[-1].done and snaps[-1].stopped == "finished"
    assert [s.done for s in snaps].count(True) == 1
    assert [s.iteration for s in snaps] == list(range(1, 41))
    offsets = {"scout": 0, "templates": 10, "activations": 30}
    for s in snaps:
        assert s.iteration == offsets[s.stage] + s.stage_iteration
        assert s.stage_n_iter == {"scout": 10, "templates": 20, "activations": 10}[s.stage]
        assert s.stage_index == STAGES.index(s.stage) and s.n_stages == 3 and s.mode == "staged"
        assert s.n_iter == 40 and len(s.losses) == 1
        assert s.W.shape == piece["init"].W0.shape and s.H.shape == piece["init"].H0.shape  # project grid
        assert s.resampled == (s.stage == "scout")
    assert snaps[0].initial_loss is not None and all(s.initial_loss is None for s in snaps[1:])
    # the scout is shown live (its factors resampled to the project grid), not as a frozen picture
    scout = [s for s in snaps if s.stage == "scout"]
    assert not np.array_equal(scout[0].H, scout[-1].H) and not np.array_equal(scout[0].W, scout[-1].W)
    r = row(piece["init"], "pitch", 48, "low")
    assert scout[-1].H[r].max() > 0
    # the result is the final snapshot's state, the loss curve is the snapshots' losses joined
    res = fit.result
    assert res.mode == "staged" and res.stopped == "finished" and res.n_iter == 40
    assert np.array_equal(res.W, snaps[-1].W) and np.array_equal(res.H, snaps[-1].H)
    assert res.losses == [v for s in snaps for v in s.losses]
    assert res.onset_groups == {"low": True, "high": False} and res.notes


def test_the_activation_stage_refits_the_templates_of_struck_groups_only(piece):
    # 10 activation iterations: 2 of H, 4 of the plucked group's templates (H held), 4 of H
    fit = make(piece)
    snaps = list(fit.snapshots())
    init = piece["init"]
    before = [s for s in snaps if s.stage == "templates"][-1].W
    after = fit.result.W
    low = [r for r, c in enumerate(init.components) if c.source == "low"]
    high = [r for r, c in enumerate(init.components) if c.source == "high"]
    assert np.array_equal(after[:, high], before[:, high])  # the held group's templates stay
    assert not np.allclose(after[:, low], before[:, low])  # the plucked group's move
    assert not np.any(after[~init.allow_W])  # inside their bands
    act = [s for s in snaps if s.stage == "activations"]
    H_at = {s.stage_iteration: s.H for s in act}
    assert np.array_equal(H_at[3], H_at[6])  # H is held while the templates are refitted
    assert not np.array_equal(H_at[6], H_at[10])
    assert not np.array_equal(H_at[1], H_at[2])

    # refit_iter 0: the activation stage fits H alone, every template stays as the template stage left it
    off = make(piece, settings=SETTINGS.with_(refine=dataclasses.replace(SETTINGS.refine, refit_iter=0)))
    snaps = list(off.snapshots())
    before = [s for s in snaps if s.stage == "templates"][-1].W
    assert np.array_equal(off.result.W, before) and off.result.n_iter == 40


def test_without_a_struck_group_the_activation_stage_ends_before_the_refit(piece):
    notes = [n for n in piece["notes"] if n.group == "high"]
    init = initialise(notes, piece["analysis"], SETTINGS.score)
    fit = Fit(piece["analysis"], notes, SETTINGS, FitState.from_init(init), "staged", max_rate=0.0)
    assert fit.n_iter == 40
    snaps = list(fit.snapshots())
    assert fit.result.onset_groups == {"high": False}
    # nothing to refit: the activation stage is one step of H from the structured activation (held_iter)
    assert fit.n_iter == 31 and fit.result.n_iter == 31 and snaps[-1].iteration == 31
    act = [s for s in snaps if s.stage == "activations"]
    assert [s.stage_iteration for s in act] == [1] and act[0].stage_n_iter == 1 and act[0].n_iter == 31
    assert act[0].done and len(fit.result.losses) == 31
    before = [s for s in snaps if s.stage == "templates"][-1]
    assert np.array_equal(fit.result.W, before.W) and not np.array_equal(fit.result.H, before.H)

    # held_iter None: the activation stage keeps its share
    refine = dataclasses.replace(SETTINGS.refine, held_iter=None)
    fit = Fit(piece["analysis"], notes, SETTINGS.with_(refine=refine), FitState.from_init(init), "staged")
    fit.run()
    assert fit.n_iter == 40 and fit.result.n_iter == 40


def test_the_align_hook_runs_first_and_its_notes_are_used(piece):
    calls = []

    def late(analysis, notes):
        calls.append(len(notes))
        return [dataclasses.replace(n, onset=n.onset + 0.01, offset=n.offset + 0.01) for n in notes]

    fit = make(piece, align=late, settings=SETTINGS.with_(refine=dataclasses.replace(SETTINGS.refine, align=False)))
    assert [s.name for s in fit.stages] == ["sync", *STAGES]
    snaps = list(fit.snapshots())
    assert calls == [len(piece["notes"])]
    assert snaps[0].stage == "sync" and snaps[0].iteration == 0 and snaps[1].stage == "scout"
    onsets = sorted(n.onset for n in fit.result.notes)
    assert onsets[0] == pytest.approx(0.01)


@pytest.mark.parametrize("stage", STAGES)
def test_cancel_in_each_stage_leaves_a_usable_state(piece, stage):
    fit = make(piece)
    seen = []
    for snap in fit.snapshots():
        seen.append(snap)
        if snap.stage == stage and snap.stage_iteration == 2:
            fit.cancel()
    final = seen[-1]
    assert final.done and final.stopped == "cancelled" and final.stage == stage
    # a job stops after the iteration it is in; the activation stage's first part (H before the plucked
    # group's templates are refitted) has 2 iterations, so a cancel there stops at the part's end
    assert final.iteration == {"scout": 3, "templates": 13, "activations": 32}[stage]
    assert STAGES.index(seen[-1].stage) == STAGES.index(stage)  # no later stage ran
    res = fit.result
    assert res.stopped == "cancelled" and res.stage == stage and len(res.losses) == final.iteration
    init = piece["init"]
    assert res.W.shape == init.W0.shape and res.H.shape == init.H0.shape
    assert np.isfinite(res.W).all() and np.isfinite(res.H).all() and res.W.min() >= 0 and res.H.min() >= 0
    assert not res.W[~init.allow_W].any()
    if stage == "scout":  # its factors are on its own grid: the usable state is the start
        assert np.array_equal(res.W, np.where(init.allow_W, init.W0, 0))
    else:
        assert res.H.any() and not np.array_equal(res.W, init.W0)
    out = stems(piece["audio"], piece["analysis"], res.W, res.H, init.components, init.sources, 1.5)
    total = sum(v.astype(np.float64) for v in out.values())
    assert np.abs(total - piece["audio"].samples).max() <= 1e-4 * np.abs(piece["audio"].samples).max()


def painted(piece):
    """The score's state with a painted zero on H (a block over notes of the component), one on W (a band
    of bins around its 2nd harmonic) and a painted allow on H where the score allows nothing."""
    init = piece["init"]
    a = piece["analysis"]
    r = row(init, "pitch", 48, "low")
    allow_W, allow_H = init.allow_W.copy(), init.allow_H.copy()
    H = init.H0.copy()
    t = a.times
    zero_H = (slice(r, r + 1), np.flatnonzero((t >= 0.3) & (t <= 0.8)))
    assert allow_H[r, zero_H[1]].all()  # the score allows it: painting it out is an edit
    allow_H[zero_H] = False
    band = np.flatnonzero(np.abs(a.freqs - 2 * pitch_to_hz(48)) < 6)
    zero_W = (band, slice(r, r + 1))
    assert allow_W[zero_W].all()
    allow_W[zero_W] = False
    q = row(init, "pitch", 67, "high")
    add_H = np.flatnonzero((t >= 2.0) & (t <= 2.4))
    assert not allow_H[q, add_H].any()  # the score forbids it: allowing it is an edit
    allow_H[q, add_H] = True
    H[q, add_H] = 1.0
    state = FitState(init.W0, H, allow_W, allow_H, list(init.components))  # masks_edited: found out
    return state, r, zero_H, zero_W, q, add_H


def test_painted_zeros_stay_exactly_zero_in_every_stage(piece):
    state, r, zero_H, zero_W, q, add_H = painted(piece)
    fit = make(piece, state)
    assert fit.mode == "staged"
    snaps = list(fit.snapshots())
    assert {s.stage for s in snaps} == set(STAGES)
    for s in snaps:
        assert not s.H[r, zero_H[1]].any(), (s.stage, s.stage_iteration)
        assert not s.W[zero_W[0], r].any(), (s.stage, s.stage_iteration)
        if s.stage == "scout":  # the scout is shown within the project's masks
            assert not s.H[~state.allow_H].any() and not s.W[~state.allow_W].any()
    # the component still sounds elsewhere; the painted allow is honoured
    assert snaps[-1].H[r].max() > 0
    assert fit.result.allow_H[q, add_H].all() and snaps[-1].H[q, add_H].max() > 0
    assert not fit.result.allow_H[r, zero_H[1]].any()


def test_unedited_masks_give_the_staged_fit_of_the_score(piece):
    init = piece["init"]
    known = make(piece, FitState.from_init(init, masks_edited=False))
    found = make(piece, FitState(init.W0, init.H0, init.allow_W, init.allow_H, list(init.components)))
    a, b = known.run(), found.run()
    assert np.array_equal(a.W, b.W) and np.array_equal(a.H, b.H)


def test_warm_start_starts_from_the_given_state(piece):
    staged = make(piece)
    first = staged.run()
    init = piece["init"]
    # the window applies the result's factors and the region the last stage fitted in
    state = FitState(first.W, first.H, init.allow_W, staged.result.allow_H, list(init.components))
    fit = make(piece, state, mode="warm", settings=SETTINGS.with_(n_iter=5))
    assert fit.mode == "warm" and [s.name for s in fit.stages] == ["joint"]
    snaps = list(fit.snapshots())
    assert {s.stage for s in snaps} == {"joint"} and all(s.mode == "warm" for s in snaps)
    # it starts where the staged fit ended (the loss of that state), not from the score
    assert snaps[0].initial_loss == pytest.approx(first.losses[-1], rel=1e-4)
    from_score = list(make(piece, mode="warm", settings=SETTINGS.with_(n_iter=1)).snapshots())[0]
    assert snaps[0].initial_loss < 0.5 * from_score.initial_loss
    # and it is one job from that state
    ref = run_job(JobSpec(V=piece["analysis"].V, W0=first.W, H0=first.H, model=SETTINGS.model, n_iter=5,
                          allow_W=init.allow_W, allow_H=staged.result.allow_H))
    assert np.array_equal(fit.result.W, ref.W) and np.array_equal(fit.result.H, ref.H)


def test_a_staged_request_says_when_it_runs_warm(piece):
    for settings, why in (
        (SETTINGS.with_(model="nae"), "no staged fit"),
        (SETTINGS.with_(refine=None), "switched off"),
    ):
        fit = make(piece, settings=settings)
        assert fit.mode == "warm" and why in fit.reason
        assert fit.run().stage == "joint"
    fit = Fit(piece["analysis"], None, SETTINGS, FitState.from_init(piece["init"]), "staged")
    assert fit.mode == "warm" and fit.reason == "no score"
    with pytest.raises(ValueError, match="mode"):
        make(piece, mode="joint")
    assert choose_mode(True, "nmf-kl") == "staged"  # every Run with a score, not only the first
    assert choose_mode(False, "nmf") == "warm" and choose_mode(True, "nae") == "warm"


def test_a_state_that_does_not_fit_the_analysis_is_refused(piece):
    init = piece["init"]
    with pytest.raises(ValueError, match="do not fit"):
        make(piece, FitState(init.W0[:, 1:], init.H0, init.allow_W, init.allow_H, list(init.components)))


def test_a_projects_first_run_is_the_fit_of_separate(piece):
    """What the window's Run will call (project_fit) gives the W, H of separate_audio for the same inputs;
    after a run has been applied, the next Run is the staged fit again (a warm refine is asked for)."""
    from demixer.engine.fit import project_fit
    from demixer.engine.projects import project_from_audio
    from demixer.engine.separation import separate_audio
    from demixer.model.project import RunRecord

    settings = SETTINGS.with_(n_iter=12)
    project = project_from_audio(piece["audio"], piece["notes"], settings)
    fit = project_fit(project)
    assert fit.mode == "staged"
    final = fit.run()
    _, ref, _ = separate_audio(piece["audio"], piece["notes"], settings)
    assert np.array_equal(final.W, ref.W) and np.array_equal(final.H, ref.H)
    project.add_run(RunRecord("run 1", settings.model))
    assert project_fit(project).mode == "staged"
    assert project_fit(project, "warm").mode == "warm"
