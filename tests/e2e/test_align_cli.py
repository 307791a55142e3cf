"""`demixer align` and `demixer separate --align` end to end, on a performed piece of dev-performed."""

from __future__ import annotations

import numpy as np
import pytest
from support.cli import run_cli as run

from demixer.io.score import read_score


@pytest.fixture(scope="module")
def perf(shared_data):
    d = shared_data / "dev-performed" / "piano_mozart_k545"
    if not d.is_dir():
        pytest.skip("dev-performed data not available")
    return d


def onset_errors(aligned, truth):
    key = lambda n: (n.group.lower(), n.pitch, n.onset)  # noqa: E731
    a, t = sorted(aligned, key=key), sorted(truth, key=key)
    assert len(a) == len(t)
    return np.abs(np.array([n.onset for n in a]) - np.array([n.onset for n in t]))


@pytest.mark.parametrize("score", ["score.mid", "score.musicxml"])
def test_align_writes_the_score_in_the_recordings_time(perf, tmp_path, capsys, score):
    out = tmp_path / "aligned.csv"
    code, stdout, err = run(["align", perf / "mixture.wav", "--score", perf / score, "--out", out], capsys)
    assert code == 0, err
    assert err == ""
    lines = stdout.strip().splitlines()
    assert len(lines) == 1 and "tempo ratio" in lines[0] and "lead-in 1.1" in lines[0] and "confidence" in lines[0]
    assert out.read_text().splitlines()[0].startswith("onset_s,offset_s,pitch,group")
    err_s = onset_errors(read_score(out), read_score(perf / "score_aligned.csv"))
    assert np.median(err_s) < 0.03
    assert np.mean(err_s < 0.05) > 0.9


def test_align_refuses_a_score_of_another_piece(perf, shared_data, tmp_path, capsys):
    other = shared_data / "dev-performed" / "chorale_bwv255" / "score.mid"
    code, stdout, err = run(["align", perf / "mixture.wav", "--score", other, "--out", tmp_path / "x.csv"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"demixer: error: {other}: the score does not match")
    assert not (tmp_path / "x.csv").exists()


def test_separate_refuses_a_score_of_another_piece(perf, shared_data, tmp_path, capsys):
    other = shared_data / "dev-performed" / "chorale_bwv255" / "score.mid"
    code, _, err = run(["separate", perf / "mixture.wav", "--score", other, "--out", tmp_path / "o", "--iters", "2"],
                       capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "does not match" in err and "--align off" in err
    assert not (tmp_path / "o").exists()


def test_align_reports_a_malformed_musicxml(perf, tmp_path, capsys):
    bad = tmp_path / "bad.musicxml"
    bad.write_text("<score-partwise><part-list>")
    code, _, err = run(["align", perf / "mixture.wav", "--score", bad], capsys)
    assert code == 2
    assert err.startswith(f"demixer: error: {bad}: not a valid MusicXML file") and err.count("\n") == 1


def test_separate_aligns_by_default_and_saves_the_aligned_score(perf, tmp_path, capsys):
    saved = tmp_path / "aligned.csv"
    code, stdout, err = run(
        ["separate", perf / "mixture.wav", "--score", perf / "score.musicxml", "--out", tmp_path / "o",
         "--iters", "8", "--save-aligned-score", saved],
        capsys,
    )
    assert code == 0, err
    assert "tempo ratio" in stdout
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"rh.wav", "lh.wav", "stems.json"}
    err_s = onset_errors(read_score(saved), read_score(perf / "score_aligned.csv"))
    assert np.median(err_s) < 0.03


def test_separate_align_off_uses_the_scores_times(perf, tmp_path, capsys):
    saved = tmp_path / "as_given.csv"
    code, stdout, err = run(
        ["separate", perf / "mixture.wav", "--score", perf / "score.csv", "--out", tmp_path / "o", "--iters", "4",
         "--align", "off", "--save-aligned-score", saved, "--quiet"],
        capsys,
    )
    assert code == 0, err
    assert "tempo ratio" not in stdout
    # the scout still nudges notes by up to 0.25 s, but nothing moves them by the 1.1 s lead-in
    err_s = onset_errors(read_score(saved), read_score(perf / "score_aligned.csv"))
    assert np.median(err_s) > 0.5


def test_separate_keeps_a_roughly_aligned_score_as_given(shared_data, tmp_path, capsys):
    """A score already aligned within ±100 ms (jittered) is not warped, and not refused."""
    d = shared_data / "dev" / "piano_joplin_maple_leaf"
    code, stdout, err = run(
        ["separate", d / "mixture.wav", "--score", d / "score_jitter100ms.csv", "--out", tmp_path / "o",
         "--iters", "4"],
        capsys,
    )
    assert code == 0, err
    assert "tempo ratio" not in stdout and "wrote 2 sources" in stdout
