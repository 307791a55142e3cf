"""The staged fit (engine.separation.fit with settings.refine): onset templates decided from the audio
when the score names no instrument, progress and cancellation across the stages, and the fallback to
one joint fit (refine=None, other models); edited masks keep the staged fit (tests/engine/test_fit.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from demixer.core.notes import Note, pitch_to_hz
from demixer.engine.fit import Fit
from demixer.engine.separation import ScorePlan, SeparationSettings, analyse, fit, initialise, stems
from demixer.io.audio import Audio

SR = 22050
DUR = 4.0
# (pitch, onset, offset): a plucked low part and a bowed high part, two notes each per pitch
PLUCK = [(48, 0.0, 1.0), (52, 1.0, 2.0), (48, 2.0, 3.0), (52, 3.0, 4.0)]
BOW = [(67, 0.0, 1.3), (71, 1.3, 2.6), (67, 2.6, 4.0)]
FAST = SeparationSettings(n_iter=24)


def tone(pitch, onset, offset, n, decay):
    t = np.arange(n) / SR
    f0 = pitch_to_hz(pitch)
    inside = (t >= onset) & (t < offset)
    attack = np.clip((t - onset) / 0.03, 0, 1)
    env = np.where(inside, attack * np.exp(-decay * (t - onset)), 0.0)
    return env * sum((0.3 / m) * np.sin(2 * np.pi * m * f0 * t) for m in range(1, 8) if m * f0 < SR / 2)


@pytest.fixture(scope="module")
def piece():
    n = int(SR * DUR)
    pluck = sum(tone(p, a, b, n, decay=3.0) for p, a, b in PLUCK)  # about −26 dB/s
    bow = sum(tone(p, a, b, n, decay=0.0) for p, a, b in BOW)
    notes = [Note(a, b, p, "pluck") for p, a, b in PLUCK] + [Note(a, b, p, "bow") for p, a, b in BOW]
    return {"audio": Audio((pluck + bow).astype(np.float32), SR), "notes": notes}


def run(piece, notes=None, settings=FAST, **kw):
    analysis = analyse(piece["audio"], settings.stft)
    init = initialise(notes or piece["notes"], analysis, settings.score)
    return analysis, init, fit(analysis, init, settings, **kw)


def test_onset_templates_follow_the_audio_when_the_score_names_no_instrument(piece):
    _, init, final = run(piece)
    assert isinstance(init, ScorePlan) and init.auto_onsets == {"pluck", "bow"}
    assert final.extra["onset_groups"] == {"pluck": True, "bow": False}
    decay = final.extra["decay"]
    assert decay["pluck"].db_per_s < -15 and decay["pluck"].falling > 0.8
    assert abs(decay["bow"].db_per_s) < 5
    # the bowed part's onset components stay silent; the plucked part's are used
    onset_rows = {c.source: r for r, c in enumerate(init.components) if c.kind == "onset"}
    assert onset_rows.keys() == {"pluck", "bow"}  # made for both: the audio decides
    by_source = {
        s: [r for r, c in enumerate(init.components) if c.kind == "onset" and c.source == s] for s in onset_rows
    }
    assert not final.H[by_source["bow"]].any()
    assert final.H[by_source["pluck"]].any()


def test_a_known_instrument_wins_over_the_audio(piece):
    # the score says the bowed part is a piano (program 0) and the plucked one a violin (40)
    notes = [dataclasses.replace(n, program=0 if n.group == "bow" else 40) for n in piece["notes"]]
    _, init, final = run(piece, notes)
    assert init.auto_onsets == frozenset()
    assert final.extra["onset_groups"] == {"pluck": False, "bow": True}
    assert not any(c.kind == "onset" and c.source == "pluck" for c in init.components)


def test_progress_counts_over_all_stages_and_only_the_end_is_done(piece):
    seen = []
    analysis, init, final = run(piece, progress=seen.append)
    iters = [s.iteration for s in seen]
    assert iters == sorted(iters) and len(set(iters)) == len(iters)
    assert all(s.n_iter == FAST.n_iter for s in seen)
    assert [s.done for s in seen].count(True) == 1 and seen[-1].done
    assert sum(len(s.losses) for s in seen) == len(final.losses)  # each snapshot: the losses since the last
    assert final.iteration == FAST.n_iter and final.stopped == "finished"
    assert len(final.losses) == FAST.n_iter
    assert seen[0].initial_loss is not None
    # every snapshot carries W and H of the model's own shapes (the scout's are placeholders)
    for s in seen:
        assert s.W.shape == init.W0.shape and s.H.shape == init.H0.shape
    out = stems(piece["audio"], analysis, final.W, final.H, init.components, init.sources, FAST.alpha)
    total = sum(v.astype(np.float64) for v in out.values())
    assert np.abs(total - piece["audio"].samples).max() <= 1e-4 * np.abs(piece["audio"].samples).max()


# in the scout, template and activation stages (33: inside the plucked group's template refit, which
# follows the 2 iterations of H that open the activation stage)
@pytest.mark.parametrize("at_iteration", [1, 12, 33])
def test_cancel_stops_every_stage(piece, at_iteration, monkeypatch):
    monkeypatch.setattr(Fit, "MAX_RATE", 0.0)  # a snapshot after every iteration
    jobs: list = []
    asked = []

    def cancel(snap):
        if snap.iteration >= at_iteration and not asked:
            asked.append(snap.iteration)
            jobs[0].cancel()

    settings = FAST.with_(n_iter=40)  # 10 scout, 20 template, 10 activation iterations
    analysis, init, final = run(piece, settings=settings, progress=cancel, job_out=jobs)
    assert len(jobs) == 1 and jobs[0].cancelled
    assert asked == [at_iteration]
    assert final.done and final.stopped == "cancelled"
    assert final.iteration == at_iteration + 1 and len(final.losses) == final.iteration
    assert final.W.shape == init.W0.shape and final.H.shape == init.H0.shape


def test_joint_fit_when_refine_is_off_or_the_model_has_no_staged_fit_but_staged_with_edited_masks(piece):
    for settings in (FAST.with_(refine=None), FAST.with_(model="nae")):
        _, _, final = run(piece, settings=settings)
        assert "onset_groups" not in final.extra and len(final.losses) == settings.n_iter
    analysis = analyse(piece["audio"], FAST.stft)
    init = initialise(piece["notes"], analysis, FAST.score)
    init.allow_H = init.allow_H.copy()
    init.allow_H[0, :3] = False  # a painted "zero"
    final = fit(analysis, init, FAST)
    assert "onset_groups" in final.extra  # painting no longer turns the staged fit off
    assert not final.H[0, :3].any()


def test_staged_fit_separates_the_two_parts(piece):
    analysis, init, final = run(piece)
    out = stems(piece["audio"], analysis, final.W, final.H, init.components, init.sources, FAST.alpha)
    n = piece["audio"].n_samples
    refs = {
        "pluck": sum(tone(p, a, b, n, decay=3.0) for p, a, b in PLUCK),
        "bow": sum(tone(p, a, b, n, decay=0.0) for p, a, b in BOW),
    }
    for name, ref in refs.items():
        err = np.sum((out[name][0] - ref) ** 2)
        assert 10 * np.log10(np.sum(ref**2) / err) > 10.0, name
