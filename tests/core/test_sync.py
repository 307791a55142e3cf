"""Score–audio synchronisation (core/sync.py): synthetic recordings made from notes, and dev-performed."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from demixer.core.notes import Note
from demixer.core.sync import (
    Alignment,
    SyncParams,
    _dtw_band,
    audio_features,
    synchronise,
    warp_notes,
)

SR = 22050


def melody(n_notes: int = 40, seed: int = 0, step: float = 0.5) -> list[Note]:
    """A two-voice score at 120 qpm: an upper line of random pitches and a bass every other beat."""
    rng = np.random.default_rng(seed)
    notes = []
    for k in range(n_notes):
        notes.append(Note(k * step, (k + 1) * step, int(rng.integers(60, 80)), "upper"))
        if k % 2 == 0:
            notes.append(Note(k * step, (k + 2) * step, int(rng.integers(40, 55)), "lower"))
    return notes


def render(notes: list[Note], duration: float, seed: int = 1) -> np.ndarray:
    """Decaying harmonic tones (a plucked-string caricature) with a little noise."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(duration * SR) + 1, dtype=np.float64)
    for n in notes:
        a, b = int(n.onset * SR), min(x.size, int(n.offset * SR))
        t = np.arange(b - a) / SR
        f0 = 440.0 * 2 ** ((n.pitch - 69) / 12)
        tone = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 6) if h * f0 < SR / 2)
        x[a:b] += 0.2 * tone * np.exp(-3.0 * t) * np.minimum(1.0, t / 0.005)
    x += 1e-4 * rng.standard_normal(x.size)
    return x.astype(np.float32)


def performed(notes: list[Note], warp) -> list[Note]:
    return [dataclasses.replace(n, onset=float(warp(n.onset)), offset=float(warp(n.offset))) for n in notes]


def onset_errors(a: list[Note], b: list[Note]) -> np.ndarray:
    return np.abs(np.array([n.onset for n in a]) - np.array([n.onset for n in b]))


@pytest.mark.parametrize(
    "name, warp",
    [
        ("shifted by a 1.3 s lead-in", lambda t: t + 1.3),
        ("half the tempo", lambda t: 0.7 + 2.0 * t),
        ("twice the tempo", lambda t: 0.4 + 0.5 * t),
        # rubato: the local tempo swings ±15 % around 0.8× with a 6 s period, then a ritardando
        ("rubato and ritardando", lambda t: 0.9 + 1.25 * t + 0.3 * math.sin(2 * math.pi * t / 6.0)
         + 0.25 * max(0.0, t - 16.0) ** 2),
    ],
)
def test_warped_scores_are_aligned_back(name, warp):
    score = melody()
    truth = performed(score, warp)
    x = render(truth, max(n.offset for n in truth) + 1.0)
    al = synchronise(score, audio_features(x, SR))
    err = onset_errors(warp_notes(score, al), truth)
    assert np.median(err) < 0.03, name
    assert np.percentile(err, 95) < 0.1, name
    assert al.matches and al.confidence > 0.5
    assert al.lead_in == pytest.approx(warp(0.0), abs=0.05)


def test_tempo_ratio_is_reported():
    score = melody()
    truth = performed(score, lambda t: 1.0 + t / 1.5)  # 1.5× faster than notated
    x = render(truth, max(n.offset for n in truth) + 0.5)
    al = synchronise(score, audio_features(x, SR))
    assert al.tempo_ratio == pytest.approx(1.5, rel=0.05)


def test_an_aligned_score_stays_aligned():
    score = melody()
    x = render(score, max(n.offset for n in score) + 0.5)
    al = synchronise(score, audio_features(x, SR))
    err = onset_errors(warp_notes(score, al), score)
    assert np.percentile(err, 90) < 0.03


def test_a_score_of_another_piece_gets_a_low_confidence():
    truth = melody(seed=0)
    x = render(truth, max(n.offset for n in truth) + 0.5)
    feats = audio_features(x, SR)
    right = synchronise(truth, feats)
    wrong = synchronise(melody(seed=7), feats)
    assert right.matches
    assert not wrong.matches
    assert wrong.confidence < right.confidence - 0.4


def test_anchors_pin_the_warp():
    score = melody()
    truth = performed(score, lambda t: 0.5 + 1.2 * t)
    x = render(truth, max(n.offset for n in truth) + 0.5)
    feats = audio_features(x, SR)
    free = synchronise(score, feats)
    # a (deliberately wrong) anchor: score time 10 s at audio time 14 s, where the music has 12.5 s
    pinned = synchronise(score, feats, anchors=[(10.0, 14.0)])
    assert pinned.to_audio(10.0) == pytest.approx(14.0, abs=1e-9)
    assert free.to_audio(10.0) == pytest.approx(12.5, abs=0.05)
    assert np.all(np.diff(pinned.audio_times) >= 0) and np.all(np.diff(pinned.score_times) > 0)
    assert pinned.anchors == ((10.0, 14.0),)
    # far from the anchor the warp is unchanged
    assert pinned.to_audio(2.0) == pytest.approx(free.to_audio(2.0), abs=0.05)
    # a right anchor changes nothing much
    again = synchronise(score, feats, anchors=[(10.0, 12.5)])
    assert np.median(onset_errors(warp_notes(score, again), truth)) < 0.03


def test_crossing_anchors_are_refused():
    score = melody(10)
    x = render(score, 6.0)
    with pytest.raises(ValueError, match="cross"):
        synchronise(score, audio_features(x, SR), anchors=[(1.0, 3.0), (2.0, 2.0)])


def test_a_recording_of_the_beginning_is_aligned_as_a_subsequence():
    score = melody(80)  # 40 s at 120 qpm
    truth = performed(score, lambda t: 0.5 + t)
    x = render([n for n in truth if n.onset < 12.0], 12.5)  # 12 s of it
    al = synchronise(score, audio_features(x, SR))
    first = [n for n in score if n.onset < 10.0]
    err = onset_errors(warp_notes(first, al), [n for n in truth if n.onset < 10.5])
    assert np.median(err) < 0.03
    assert al.to_audio(30.0) > 12.5  # the rest of the score lies past the recording's end


def test_alignment_maps_outside_the_path_with_the_end_slopes():
    al = Alignment(score_times=np.array([0.0, 1.0, 2.0]), audio_times=np.array([1.0, 3.0, 5.0]),
                   confidence=1.0, score_span=(0.0, 2.0))
    assert al.tempo_ratio == pytest.approx(0.5)
    assert al.to_audio(3.0) == pytest.approx(7.0)
    assert al.lead_in == pytest.approx(1.0)
    np.testing.assert_allclose(al.to_audio([0.5, 1.5]), [2.0, 4.0])


def test_dtw_band_finds_the_cheapest_path():
    """The vectorised DTW (horizontal steps through a running minimum) against a plain double loop."""
    rng = np.random.default_rng(3)
    for _ in range(50):
        N, M = int(rng.integers(2, 9)), int(rng.integers(2, 12))
        S, A = np.zeros((N, 13)), np.zeros((M, 13))
        S[:, :12], A[:, :12] = rng.random((N, 12)), rng.random((M, 12))
        S[:, :12] /= np.linalg.norm(S[:, :12], axis=1, keepdims=True)
        A[:, :12] /= np.linalg.norm(A[:, :12], axis=1, keepdims=True)
        S[:, 12], A[:, 12] = rng.random(N), rng.random(M)
        C = np.maximum(1 + 0.5 * S[:, 12:] ** 2 + 0.5 * A[:, 12] ** 2 - S[:, :12] @ A[:, :12].T
                       - np.outer(S[:, 12], A[:, 12]), 0)
        pen = 0.3 * rng.random(N)
        D = np.full((N, M), np.inf)
        for i in range(N):
            for j in range(M):
                if i == 0 and j == 0:
                    D[0, 0] = C[0, 0]
                    continue
                cands = []
                if i and j:
                    cands.append(D[i - 1, j - 1] + 2 * C[i, j])
                if i:
                    cands.append(D[i - 1, j] + C[i, j] + pen[i])
                if j:
                    cands.append(D[i, j - 1] + C[i, j] + pen[i])
                D[i, j] = min(cands)
        pr, pc, total, _ = _dtw_band(S, A, np.zeros(N, int), np.full(N, M), 1.0, pen)
        assert total == pytest.approx(D[-1, -1])
        cost = C[0, 0]  # the path found costs what it claims
        for k in range(1, pr.size):
            diag = pr[k] != pr[k - 1] and pc[k] != pc[k - 1]
            cost += 2 * C[pr[k], pc[k]] if diag else C[pr[k], pc[k]] + pen[pr[k]]
        assert cost == pytest.approx(total)
        assert pr[0] == 0 and pc[0] == 0 and pr[-1] == N - 1 and pc[-1] == M - 1


def test_params_are_validated():
    with pytest.raises(ValueError):
        SyncParams(hop_s=0)
    with pytest.raises(ValueError):
        SyncParams(coarse=0)


def test_dev_performed_piece_aligns(shared_data):
    """A real performance (lead-in, 0.87× tempo, rubato, ritardando) and its nominal score."""
    from demixer.io.audio import analysis_signal, read_audio
    from demixer.io.score import read_score

    d = shared_data / "dev-performed" / "piano_mozart_k545"
    if not d.is_dir():
        pytest.skip("dev-performed data not available")
    x = analysis_signal(read_audio(d / "mixture.wav"), SR)
    score = read_score(d / "score.csv")
    truth = read_score(d / "score_aligned.csv")
    al = synchronise(score, audio_features(x, SR))
    key = lambda n: (n.group, n.pitch, n.onset)  # noqa: E731
    order_s = sorted(range(len(score)), key=lambda i: key(score[i]))
    order_t = sorted(range(len(truth)), key=lambda i: (truth[i].group, truth[i].pitch, truth[i].onset))
    warped = warp_notes(score, al)
    err = np.abs(np.array([warped[i].onset for i in order_s]) - np.array([truth[i].onset for i in order_t]))
    assert np.median(err) < 0.03
    assert np.mean(err < 0.05) > 0.85
    assert al.lead_in == pytest.approx(1.137, abs=0.05)


def test_dtw_band_memory_follows_the_band_not_its_widest_row():
    """Issue 14: a band with one very wide row (a long horizontal run of the coarse path, e.g. a long
    rest) kept N × that width of back-pointers (13 GiB for 60 minutes). They are kept per row now."""
    import tracemalloc

    from demixer.core.sync import _dtw_band

    N, run = 3000, 4000
    M = N + run
    i = np.arange(N)
    lo = np.clip(np.where(i <= N // 2, i - 4, i + run - 4), 0, M)
    hi = np.clip(np.where(i < N // 2, i + 5, i + run + 5), 0, M)
    lo[0], hi[-1] = 0, M
    rng = np.random.default_rng(0)
    S, A = rng.random((N, 13)), rng.random((M, 13))
    tracemalloc.start()
    try:
        rows, cols, total, _ = _dtw_band(S, A, lo, hi, 1.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows[0] == 0 and cols[0] == 0 and rows[-1] == N - 1 and cols[-1] == M - 1
    assert np.all(np.diff(rows) >= 0) and np.all(np.diff(cols) >= 0)
    assert np.all((cols >= lo[rows]) & (cols < hi[rows]))
    assert peak < N * run // 4, f"{peak} bytes traced; the rectangle would be {N * (run + 9)}"
