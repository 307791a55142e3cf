"""demixer.model.project: the document."""

from __future__ import annotations

import numpy as np
import pytest

from demixer.engine.job import Job, JobSpec
from demixer.engine.projects import project_from_audio
from demixer.model.project import (
    RESIDUAL,
    RESIDUAL_COLOUR,
    Component,
    Project,
    Region,
    RunParams,
    RunRecord,
    free_init,
)


def test_from_audio_with_the_demo_score_builds_a_score_informed_project(demo_project):
    p = demo_project
    K, N = p.V.shape
    assert (K, N) == (p.stft.n_fft // 2 + 1, p.n_frames)
    assert p.W.shape == (K, p.n_components) and p.H.shape == (p.n_components, N)
    assert p.allow_W.shape == p.W.shape and p.allow_H.dtype == bool
    assert [s.name for s in p.sources] == ["lh", "rh"]
    assert p.source_names() == ["lh", "rh"]  # every component is in a named source: no residual
    assert not p.has_residual()
    kinds = {c.kind for c in p.components}
    assert kinds == {"pitch", "onset"}
    # components are coloured by their source; pitch labels are pitch names
    lh = p.sources[0].colour
    for c in p.components:
        assert c.colour == p.source_colour(c.source)
        assert c.label.startswith(("C", "D", "E", "F", "G", "A", "B"))
    assert any(c.colour == lh for c in p.components)
    # forbidden entries are exactly zero, W/H start at W0/H0 (copies)
    assert np.all(p.W[~p.allow_W] == 0) and np.all(p.H[~p.allow_H] == 0)
    assert np.array_equal(p.W, p.W0) and p.W is not p.W0
    assert p.duration == pytest.approx(19.0, abs=0.5)
    assert p.sr == 22050
    assert p.title == "mozart_k545_exposition.flac"
    assert p.run.model == "nmf-kl" and p.run.n_iter == 100


def test_from_audio_without_notes_makes_a_seeded_free_initialisation(demo_inputs):
    from demixer.engine.separation import SeparationSettings

    audio, _ = demo_inputs
    settings = SeparationSettings(seed=3)
    a = project_from_audio(audio, None, settings, n_free=16)
    b = project_from_audio(audio, [], settings, n_free=16)
    assert a.n_components == 16
    assert all(c.kind == "free" and c.source == "" and c.colour == RESIDUAL_COLOUR for c in a.components)
    assert a.sources == [] and a.source_names() == [RESIDUAL]
    assert np.array_equal(a.W, b.W) and np.array_equal(a.H, b.H)  # same seed, same start
    assert a.allow_W.all() and a.allow_H.all()
    assert a.run.seed == 3
    c = project_from_audio(audio, None, settings.with_(seed=4), n_free=16)
    assert not np.array_equal(a.W, c.W)


def test_free_init_is_nonnegative_and_reproducible():
    V = np.abs(np.random.default_rng(0).standard_normal((20, 30))).astype(np.float32)
    a, b = free_init(V, 5, seed=7), free_init(V, 5, seed=7)
    assert a.W0.shape == (20, 5) and a.H0.shape == (5, 30)
    assert (a.W0 > 0).all() and (a.H0 > 0).all()
    assert np.array_equal(a.W0, b.W0)
    assert [c.name for c in a.components] == [f"free {i}" for i in range(1, 6)]


def test_sources_and_the_residual(small_project):
    p = small_project
    assert p.source_names() == ["lh", "rh", RESIDUAL]
    assert p.source_components("lh").tolist() == [0, 2]
    assert p.source_components("rh").tolist() == [1]
    assert p.source_components(RESIDUAL).tolist() == [3]
    assert p.component_colours()[3] == RESIDUAL_COLOUR
    assert p.component_colours()[0] == p.sources[0].colour != p.sources[1].colour
    infos = p.component_infos()
    assert [i.source for i in infos] == ["lh", "rh", "lh", ""]


def test_set_factors_replaces_arrays_and_announces_everything(small_project):
    p = small_project
    seen = []
    p.factors_changed.connect(seen.append)
    W = p.W * 2
    H = p.H * 3
    p.set_factors(W, H)
    assert p.W is W and p.H is H and seen == [None]
    with pytest.raises(ValueError):
        p.set_factors(W[:, :2], H)
    with pytest.raises(ValueError):
        p.set_factors(W, H, W_E=np.ones((2, 2)))
    E = np.ones((4, 33), np.float32)
    p.set_factors(W, H, W_E=E)
    assert p.W_E is E
    p.set_factors(W, H, keep_encoder=True)
    assert p.W_E is E
    p.set_factors(W, H)
    assert p.W_E is None


def test_write_region_writes_in_place_and_announces_the_region(small_project):
    p = small_project
    seen = []
    p.factors_changed.connect(seen.append)
    region = Region("H", (1, 3), (5, 9))
    p.write_region(region, 0.0)
    assert np.all(p.H[1:3, 5:9] == 0)
    assert seen == [region]
    with pytest.raises(ValueError):
        p.array("V")


def test_runs_history_and_labels(small_project):
    p = small_project
    seen = []
    p.runs_changed.connect(lambda: seen.append(len(p.runs)))
    r1 = RunRecord("#1 x", "nmf", [3.0, 2.0], 2)
    r2 = RunRecord("#2 y", "nae", [1.0], 1)
    assert r1.id != r2.id
    p.add_run(r1)
    p.add_run(r2)
    p.remove_run(r1)
    assert p.runs == [r2] and seen == [1, 2, 1]
    assert p.next_run_label("NMF") == "#1 NMF"
    assert p.next_run_label("NAE") == "#2 NAE"


def test_run_params_validate_and_change_notification(small_project):
    with pytest.raises(ValueError):
        RunParams(model="svd")
    with pytest.raises(ValueError):
        RunParams(n_iter=0)
    with pytest.raises(ValueError):
        RunParams(seed=-1)
    p = small_project
    seen = []
    p.params_changed.connect(lambda: seen.append(p.run.model))
    p.set_run_params(p.run.with_(model="nae"))
    p.set_run_params(p.run.with_(model="nae"))  # unchanged: no signal
    assert seen == ["nae"]


def test_component_validation_and_labels():
    with pytest.raises(ValueError):
        Component("x", kind="chord")
    with pytest.raises(ValueError):
        Component("x", pitch=200, kind="pitch")
    assert Component("C4 lh", 60, "pitch", "lh").label == "C4"
    assert Component("C4 lh onset", 60, "onset", "lh").label == "C4·on"
    assert Component("free 3").label == "free 3"


def test_run_inputs_make_a_valid_job_spec_from_the_current_state(small_project):
    p = small_project
    p.components[1].locked = True
    inputs = p.run_inputs()
    assert inputs["W0"] is p.W and inputs["H0"] is p.H
    assert inputs["lock"].tolist() == [False, True, False, False]
    spec = JobSpec(**inputs)
    snaps = list(Job(spec).snapshots())
    last = snaps[-1]
    assert last.done and last.iteration == p.run.n_iter
    assert np.all(last.W[~p.allow_W] == 0) and np.all(last.H[~p.allow_H] == 0)
    assert np.array_equal(last.W[:, 1], p.W[:, 1])  # locked template kept
    # the NAE continues from the stored encoder when there is one
    p.set_run_params(p.run.with_(model="nae", n_iter=2))
    p.set_factors(p.W, p.H, W_E=np.ones((4, 33), np.float32))
    assert p.run_inputs()["W_E0"] is p.W_E
    p.set_run_params(p.run.with_(model="nmf"))
    assert p.run_inputs()["W_E0"] is None


def test_project_rejects_factors_that_do_not_fit(small_project):
    p = small_project
    with pytest.raises(ValueError):
        Project(p.audio, p.analysis, components=p.components[:3], sources=p.sources, W=p.W, H=p.H)
    assert "R=4" in repr(p)
