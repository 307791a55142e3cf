"""Shared fixtures for the model tests: the demo piece as a project (analysed once per session)."""

from __future__ import annotations

import pytest

from demixer.engine.projects import project_from_audio


@pytest.fixture(scope="session")
def demo_inputs(demo_audio_path, demo_score_path):
    from demixer.io.audio import read_audio
    from demixer.io.score import read_score

    return read_audio(demo_audio_path), read_score(demo_score_path)


@pytest.fixture()
def demo_project(demo_inputs):

    audio, notes = demo_inputs
    return project_from_audio(audio, notes)


@pytest.fixture()
def small_project():
    """A tiny synthetic project (K=33, N=40, R=4, two sources and a residual component)."""
    import numpy as np

    from demixer.core.constraints import ComponentInfo, ScoreInit
    from demixer.core.stft import STFTParams
    from demixer.engine.separation import Analysis
    from demixer.io.audio import Audio
    from demixer.model.project import Project

    rng = np.random.default_rng(1)
    params = STFTParams(n_fft=64, hop=16, sr=8000)
    V = rng.random((33, 40)).astype(np.float32)
    analysis = Analysis(params=params, V=V, duration=40 * 16 / 8000)
    audio = Audio(rng.standard_normal(640).astype(np.float32), 8000)
    W0 = rng.random((33, 4)).astype(np.float32)
    H0 = rng.random((4, 40)).astype(np.float32)
    allow_W = np.ones_like(W0, bool)
    allow_W[20:, 0] = False
    W0[~allow_W] = 0
    allow_H = np.ones_like(H0, bool)
    allow_H[1, :10] = False
    H0[~allow_H] = 0
    comps = [
        ComponentInfo("C4 lh", 60, "pitch", "lh"),
        ComponentInfo("E5 rh", 76, "pitch", "rh"),
        ComponentInfo("C4 lh onset", 60, "onset", "lh"),
        ComponentInfo("free 1", None, "free", ""),
    ]
    init = ScoreInit(W0=W0, H0=H0, allow_W=allow_W, allow_H=allow_H, components=comps, sources=["lh", "rh"])
    return Project.from_init(audio, analysis, init)
