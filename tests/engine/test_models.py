"""The one list of models (engine.models): what reads it, and that no other list disagrees."""

from __future__ import annotations

import pytest

from demixer.engine import job
from demixer.engine.job import JobSpec
from demixer.engine.models import ALL_MODELS, model_info, model_labels, model_names
from demixer.engine.separation import SeparationSettings
from demixer.model.project import MODEL_NAMES, RunParams


def test_the_list_says_what_each_model_can_do():
    assert model_names() == ("nmf", "nmf-kl", "nae", "nae-pgd")
    assert [m.name for m in ALL_MODELS if m.staged] == ["nmf", "nmf-kl"]
    assert [m.name for m in ALL_MODELS if m.encoder] == ["nae", "nae-pgd"]
    assert model_info("nmf").beta == 2.0 and model_info("nmf-kl").beta == 1.0
    assert model_info("nae").method == "mu" and model_info("nae-pgd").method == "pgd"
    assert all(m.label and m.summary for m in ALL_MODELS)
    assert SeparationSettings().model in model_names()


def test_other_layers_read_the_same_names():
    assert job.MODELS == model_labels()  # kept for scripts; the window's combo box reads engine.models
    assert MODEL_NAMES == model_names()  # the document validates with the same one list (core.models)


def test_the_documents_run_defaults_are_the_separation_defaults():
    """A project's run parameters (model/, below the engine) default to what `demixer separate` uses, so
    the window's Run and export match the command line (the mask exponent once differed: 1.0 vs 1.5)."""
    r, s = RunParams(), SeparationSettings()
    assert (r.model, r.n_iter, r.seed, r.alpha, r.compress, r.normalize) == (
        s.model, s.n_iter, s.seed, s.alpha, s.compress, s.normalize)


@pytest.mark.parametrize("make", [lambda: model_info("nmf-is"), lambda: RunParams(model="nmf-is")])
def test_unknown_models_are_refused_with_the_choices(make):
    with pytest.raises(ValueError, match="nmf-kl, nae, nae-pgd"):
        make()


def test_a_job_refuses_an_unknown_model():
    import numpy as np

    with pytest.raises(ValueError, match="unknown model 'x'"):
        JobSpec(V=np.ones((3, 4)), W0=np.ones((3, 1)), H0=np.ones((1, 4)), model="x")
