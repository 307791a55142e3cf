"""engine.audition: stems of the current W·H off the GUI thread, the cache key, the listening mix."""

from __future__ import annotations

import math
import subprocess
import sys
import threading

import numpy as np
import pytest

from demixer.core.mix import mix_sources
from demixer.core.notes import Note
from demixer.engine.audition import (
    MIN_GAIN_DB,
    SourceMix,
    StemCache,
    StemRequest,
    StemSet,
    build_mix,
    compute_stems,
    db_to_gain,
    stem_key,
)
from demixer.engine.projects import project_from_audio
from demixer.engine.separation import stems as separation_stems
from demixer.io.audio import Audio
from demixer.model.project import Project


def _stereo_project(sr: int = 44100, dur: float = 1.5) -> Project:
    n = int(sr * dur)
    t = np.arange(n) / sr
    low = 0.2 * np.sin(2 * np.pi * 130.8 * t) * (t < 1.0)
    high = 0.2 * np.sin(2 * np.pi * 523.3 * t) * (t >= 0.5)
    x = np.stack([low + 0.5 * high, 0.5 * low + high]).astype(np.float32)
    notes = [Note(0.0, 1.0, 48, "lh"), Note(0.5, 1.5, 72, "rh")]
    return project_from_audio(Audio(x, sr), notes)


@pytest.fixture(scope="module")
def project() -> Project:
    return _stereo_project()


def _request(p: Project, **kw) -> StemRequest:
    return StemRequest.make(p.audio, p.analysis, kw.get("W", p.W), kw.get("H", p.H), p.component_infos(),
                            [s.name for s in p.sources], p.run.alpha)


def test_db_to_gain() -> None:
    assert db_to_gain(0.0) == 1.0
    assert db_to_gain(-6.0) == pytest.approx(10 ** (-6 / 20))
    assert db_to_gain(6.0) == pytest.approx(1.9953, rel=1e-4)
    assert db_to_gain(MIN_GAIN_DB) == 0.0 and db_to_gain(-math.inf) == 0.0
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            db_to_gain(bad)
    assert SourceMix(gain_db=-12.0).gain == pytest.approx(10 ** (-12 / 20))


def test_stems_are_those_of_separate_and_add_up_to_the_stereo_mixture(project: Project) -> None:
    p = project
    got = compute_stems(_request(p))
    want = separation_stems(
        p.audio, p.analysis, p.W, p.H, p.component_infos(), [s.name for s in p.sources], p.run.alpha
    )
    assert got.names == list(want) == ["lh", "rh"]
    assert got.sr == 44100 and got.channels == 2 and got.n_samples == p.audio.n_samples
    for name, stem in zip(got.names, got.stems, strict=True):
        assert stem.dtype == np.float32 and stem.shape == p.audio.samples.shape
        np.testing.assert_array_equal(stem, want[name])
    np.testing.assert_allclose(sum(got.stems), p.audio.samples, atol=2e-5)


def test_request_copies_the_factors_and_the_key_follows_their_contents(project: Project) -> None:
    p = project
    W = p.W.copy()
    req = _request(p, W=W)
    assert req.W is not W and req.H is not p.H
    W[:] = 0.0  # the GUI paints into the project's arrays while a worker computes: the request is unaffected
    assert np.array_equal(req.W, p.W)
    assert _request(p).key == req.key  # same contents, same key
    H2 = p.H.copy()
    H2[0, 0] += 1.0
    assert _request(p, H=H2).key != req.key
    comps = p.component_infos()
    moved = [type(c)(c.name, c.pitch, c.kind, "rh" if i == 0 else c.source) for i, c in enumerate(comps)]
    assert stem_key(p.audio, p.analysis, p.W, p.H, moved, ["lh", "rh"], p.run.alpha) != req.key
    assert stem_key(p.audio, p.analysis, p.W, p.H, comps, ["lh", "rh"], p.run.alpha + 1.0) != req.key


def test_a_residual_source_is_a_stem_too(project: Project) -> None:
    p = project
    comps = p.component_infos()
    comps = [type(c)(c.name, c.pitch, c.kind, "" if i == 0 else c.source) for i, c in enumerate(comps)]
    req = StemRequest.make(p.audio, p.analysis, p.W, p.H, comps, ["lh", "rh"], 1.0)
    got = compute_stems(req)
    assert got.names[-1] == "residual"
    np.testing.assert_allclose(sum(got.stems), p.audio.samples, atol=2e-5)


def test_build_mix_follows_mute_solo_and_gain(project: Project) -> None:
    s = compute_stems(_request(project))
    lh, rh = s.stems
    np.testing.assert_array_equal(build_mix(s), mix_sources(s.stems, [1, 1], [0, 0], [0, 0]))
    np.testing.assert_array_equal(build_mix(s, {"rh": SourceMix(solo=True)}), rh)
    np.testing.assert_array_equal(build_mix(s, {"rh": SourceMix(mute=True)}), lh)
    mixed = build_mix(s, {"lh": SourceMix(gain_db=-6.0)})
    assert mixed.dtype == np.float32
    np.testing.assert_array_equal(mixed, mix_sources(s.stems, [db_to_gain(-6.0), 1.0], [0, 0], [0, 0]))
    np.testing.assert_allclose(mixed, lh * 10 ** (-6 / 20) + rh, atol=1e-6)
    silent = build_mix(s, {"lh": SourceMix(mute=True), "rh": SourceMix(gain_db=MIN_GAIN_DB)})
    assert not silent.any()
    with pytest.raises(ValueError):
        build_mix(StemSet("k", [], [], 44100))


def test_compute_stems_runs_in_another_thread(project: Project) -> None:
    out = {}
    req = _request(project)
    th = threading.Thread(target=lambda: out.setdefault("s", compute_stems(req)))
    th.start()
    th.join(60)
    assert out["s"].key == req.key


def test_cache_keeps_the_most_recent() -> None:
    cache = StemCache(2)
    sets = [StemSet(str(i), ["a"], [np.zeros((1, 4), np.float32)], 8000) for i in range(3)]
    cache.put(sets[0])
    cache.put(sets[1])
    assert cache.get("0") is sets[0]  # now the most recent
    cache.put(sets[2])
    assert "1" not in cache and "0" in cache and "2" in cache and len(cache) == 2
    cache.clear()
    assert cache.get("0") is None
    with pytest.raises(ValueError):
        StemCache(0)
    small = StemCache(5, max_bytes=100)
    big = [StemSet(str(i), ["a"], [np.zeros((1, 10), np.float32)], 8000) for i in range(3)]  # 40 B each
    for b in big:
        small.put(b)
    assert len(small) == 2 and "0" not in small
    huge = StemSet("h", ["a"], [np.zeros((1, 1000), np.float32)], 8000)
    small.put(huge)
    assert len(small) == 1 and small.get("h") is huge  # the most recent stays, whatever its size


def test_importing_audition_loads_neither_qt_nor_sounddevice() -> None:
    code = (
        "import sys, demixer.engine.audition\n"
        "bad = [m for m in ('PySide6', 'sounddevice', 'pyqtgraph') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
