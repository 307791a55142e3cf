"""The ``demixer`` command end to end: ``separate`` and ``evaluate`` on real files, and bad input.

Most tests call :func:`demixer.cli.main.main` in-process; a few run ``python -m demixer`` as a
subprocess. Bad input must give exit status 2 and exactly one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from support.cli import run_cli as run

from demixer.cli.main import main
from demixer.core.notes import pitch_to_hz
from demixer.io.score import clip_notes, read_score, write_score_csv

CROP_S = 5.0
ITERS = "10"


def assert_one_error_line(code: int, err: str, *mentions: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = nonblank_lines(err)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("demixer: error:"), line
    for m in mentions:
        assert m in line, (m, line)
    return line


def read(path: Path) -> tuple[np.ndarray, int]:
    x, sr = sf.read(path, dtype="float64", always_2d=True)
    return x.T, sr


def assert_stems_sum_to(
    folder: Path, names: set[str], mixture: Path, suffix: str = ".wav", tol: float = 1e-4
):
    files = sorted(folder.glob(f"*{suffix}"))
    assert {f.stem for f in files} == names
    mix, sr = read(mixture)
    total = np.zeros_like(mix)
    for f in files:
        info = sf.info(f)
        assert info.samplerate == sr, f
        assert info.frames == mix.shape[1], f
        assert info.channels == mix.shape[0], f
        x, _ = read(f)
        assert np.all(np.isfinite(x))
        total += x
    assert np.abs(total - mix).max() <= tol * np.abs(mix).max()


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def piece(shared_data, tmp_path_factory) -> dict[str, Path]:
    """The first 5 s of piano_mozart_k545: mixture, score and reference stems, in a temp folder."""
    src = shared_data / "dev" / "piano_mozart_k545"
    d = tmp_path_factory.mktemp("k545")
    x, sr = sf.read(src / "mixture.wav", dtype="float32", always_2d=True)
    n = int(CROP_S * sr)
    sf.write(d / "mixture.wav", x[:n], sr, subtype="FLOAT")
    (d / "refs").mkdir()
    for g in ("lh", "rh"):
        s, _ = sf.read(src / "stems" / f"{g}.wav", dtype="float32", always_2d=True)
        sf.write(d / "refs" / f"{g}.wav", s[:n], sr, subtype="FLOAT")
    notes, _, _ = clip_notes(read_score(src / "score.csv"), CROP_S)
    write_score_csv(d / "score.csv", notes)
    # the whole score (19 s) against 5 s of audio: runs past the end
    (d / "long.csv").write_bytes((src / "score.csv").read_bytes())
    return {
        "dir": d,
        "mix": d / "mixture.wav",
        "score": d / "score.csv",
        "long": d / "long.csv",
        "refs": d / "refs",
        "midi": src / "score.mid",
    }


@pytest.fixture(scope="module")
def separated(piece) -> Path:
    """The piece separated once (shared by the evaluate tests)."""
    out = piece["dir"] / "separated"
    code = main(
        [
            "separate",
            str(piece["mix"]),
            "--score",
            str(piece["score"]),
            "--out",
            str(out),
            "--iters",
            ITERS,
            "--quiet",
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def ungrouped(tmp_path_factory) -> dict[str, Path]:
    """A synthetic 2 s piece with low (< C4) and high notes and a score without groups."""
    d = tmp_path_factory.mktemp("ungrouped")
    sr, dur = 22050, 2.0
    t = np.arange(int(sr * dur)) / sr
    notes = [(45, 0.0, 1.0), (50, 1.0, 2.0), (72, 0.0, 1.0), (79, 1.0, 2.0)]
    x = np.zeros_like(t)
    for p, on, off in notes:
        env = np.where((t >= on) & (t < off), np.exp(-2 * (t - on)), 0.0)
        x += env * sum(0.2 / m * np.sin(2 * np.pi * m * pitch_to_hz(p) * t) for m in range(1, 6))
    sf.write(d / "mix.wav", x.astype(np.float32), sr, subtype="FLOAT")
    (d / "score.csv").write_text(
        "onset_s,offset_s,pitch\n" + "".join(f"{on},{off},{p}\n" for p, on, off in notes)
    )
    return {"mix": d / "mix.wav", "score": d / "score.csv"}


# ----------------------------------------------------------------------------------------- separate

def nonblank_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]

def test_separate_writes_one_wav_per_group_that_sum_to_the_input(piece, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(
        ["separate", piece["mix"], "--score", piece["score"], "--out", out, "--iters", ITERS], capsys
    )
    assert code == 0, err
    assert "error" not in err and "warning" not in err
    assert "wrote 2 sources" in stdout and "lh.wav" in stdout and "rh.wav" in stdout
    assert_stems_sum_to(out, {"lh", "rh"}, piece["mix"])
    assert sf.info(out / "lh.wav").subtype == "FLOAT"


def test_separate_a_stereo_44100_file(piece, tmp_path, capsys):
    from scipy.signal import resample_poly

    x, sr = sf.read(piece["mix"], dtype="float32")
    y = resample_poly(x, 2, 1).astype(np.float32)
    stereo = np.stack([0.8 * y, 0.5 * y], axis=1)
    mix = tmp_path / "stereo44.wav"
    sf.write(mix, stereo, 44100, subtype="FLOAT")
    out = tmp_path / "out"
    code, _, err = run(
        ["separate", mix, "--score", piece["score"], "--out", out, "--iters", "5", "--quiet"], capsys
    )
    assert code == 0, err
    assert_stems_sum_to(out, {"lh", "rh"}, mix)
    assert sf.info(out / "lh.wav").channels == 2 and sf.info(out / "lh.wav").samplerate == 44100


def test_separate_as_flac(piece, tmp_path, capsys):
    out = tmp_path / "flac"
    code, stdout, err = run(
        [
            "separate",
            piece["mix"],
            "--score",
            piece["score"],
            "--out",
            out,
            "--iters",
            ITERS,
            "--format",
            "flac",
        ],
        capsys,
    )
    assert code == 0, err
    assert not list(out.glob("*.wav"))
    for g in ("lh", "rh"):
        assert sf.info(out / f"{g}.flac").format == "FLAC"
    assert_stems_sum_to(out, {"lh", "rh"}, piece["mix"], suffix=".flac", tol=1e-4)


@pytest.mark.parametrize("model", ["nmf", "nae", "nae-pgd"])
def test_separate_with_other_models_and_options(model, piece, tmp_path, capsys):
    out = tmp_path / model
    code, stdout, err = run(
        [
            "separate",
            piece["mix"],
            "--score",
            piece["score"],
            "--out",
            out,
            "--iters",
            "5",
            "--model",
            model,
            "--alpha",
            "2",
            "--n-fft",
            "1024",
            "--hop",
            "256",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    assert stdout == ""  # --quiet
    assert_stems_sum_to(out, {"lh", "rh"}, piece["mix"])


def test_separate_with_a_midi_score(piece, tmp_path, capsys):
    out = tmp_path / "midi"
    code, _, err = run(
        ["separate", piece["mix"], "--score", piece["midi"], "--out", out, "--iters", "5"], capsys
    )
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("demixer: warning:")  # the score runs past the 5 s
    assert_stems_sum_to(out, {"lh", "rh"}, piece["mix"])


def test_split_gives_low_and_high_for_a_score_without_groups(ungrouped, tmp_path, capsys):
    out = tmp_path / "split"
    code, stdout, err = run(
        [
            "separate",
            ungrouped["mix"],
            "--score",
            ungrouped["score"],
            "--out",
            out,
            "--iters",
            ITERS,
            "--split",
            "60",
        ],
        capsys,
    )
    assert code == 0, err
    assert err.strip() == ""
    assert_stems_sum_to(out, {"low", "high"}, ungrouped["mix"])


def test_no_groups_and_no_split_warns_and_splits_at_middle_c(ungrouped, tmp_path, capsys):
    out = tmp_path / "nosplit"
    code, stdout, err = run(
        ["separate", ungrouped["mix"], "--score", ungrouped["score"], "--out", out, "--iters", ITERS], capsys
    )
    assert code == 0, err
    lines = nonblank_lines(err)
    assert len(lines) == 1
    assert lines[0].startswith("demixer: warning:") and "no groups" in lines[0]
    assert str(ungrouped["score"]) in lines[0]
    assert_stems_sum_to(out, {"low", "high"}, ungrouped["mix"])


def test_score_longer_than_the_audio_warns_and_still_works(piece, tmp_path, capsys):
    out = tmp_path / "long"
    code, stdout, err = run(
        ["separate", piece["mix"], "--score", piece["long"], "--out", out, "--iters", ITERS], capsys
    )
    assert code == 0, err
    lines = nonblank_lines(err)
    assert len(lines) == 1
    assert lines[0].startswith("demixer: warning:") and str(piece["long"]) in lines[0]
    assert_stems_sum_to(out, {"lh", "rh"}, piece["mix"])


def test_separate_creates_nested_output_folders(piece, tmp_path, capsys):
    out = tmp_path / "a" / "b" / "c"
    code, _, err = run(
        ["separate", piece["mix"], "--score", piece["score"], "--out", out, "--iters", "2", "--quiet"], capsys
    )
    assert code == 0, err
    assert (out / "lh.wav").is_file() and (out / "rh.wav").is_file()


def test_default_output_folder_is_separated_in_the_working_directory(piece, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(
        ["separate", piece["mix"], "--score", piece["score"], "--iters", "2", "--quiet"], capsys
    )
    assert code == 0, err
    assert (tmp_path / "separated" / "lh.wav").is_file()


# ----------------------------------------------------------------------------------------- evaluate
def test_evaluate_prints_a_table_with_the_mean(piece, separated, capsys):
    code, stdout, err = run(["evaluate", "--reference", piece["refs"], "--estimate", separated], capsys)
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert lines[0].split() == ["source", "SDR", "SIR", "SAR"]
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[1:]}
    assert set(rows) == {"lh", "rh", "mean"}
    for name, vals in rows.items():
        assert len(vals) == 3 and all(np.isfinite(vals)), name
    for i in range(3):
        assert rows["mean"][i] == pytest.approx((rows["lh"][i] + rows["rh"][i]) / 2, abs=0.011)
    assert rows["mean"][0] > 5.0  # score-informed NMF on piano is far better than the mixture (~0 dB)


def test_evaluate_json(piece, separated, capsys):
    code, stdout, err = run(
        ["evaluate", "--reference", piece["refs"], "--estimate", separated, "--json"], capsys
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert set(result["sources"]) == {"lh", "rh"}
    for name, r in result["sources"].items():
        assert set(r) == {"sdr", "sir", "sar"}
        assert all(isinstance(v, float) and np.isfinite(v) for v in r.values()), name
    for k in ("sdr", "sir", "sar"):
        assert result["mean"][k] == pytest.approx(np.mean([r[k] for r in result["sources"].values()]))
    assert result["missing"] == []
    # the separated stems beat the mixture used as the estimate of each source
    assert all(r["sdr"] > 3.0 for r in result["sources"].values())


def test_evaluate_reports_missing_estimates(piece, separated, tmp_path, capsys):
    est = tmp_path / "only_lh"
    est.mkdir()
    (est / "lh.wav").write_bytes((separated / "lh.wav").read_bytes())
    code, stdout, err = run(["evaluate", "--reference", piece["refs"], "--estimate", est, "--json"], capsys)
    assert code == 0, err
    result = json.loads(stdout)
    assert list(result["sources"]) == ["lh"] and result["missing"] == ["rh"]


@pytest.mark.parametrize("case", ["no-folder", "empty-folder", "no-common-names"])
def test_evaluate_bad_folders(case, piece, separated, tmp_path, capsys):
    est = tmp_path / "est"
    if case != "no-folder":
        est.mkdir()
    if case == "no-common-names":
        (est / "violin.wav").write_bytes((separated / "lh.wav").read_bytes())
    code, _, err = run(["evaluate", "--reference", piece["refs"], "--estimate", est], capsys)
    assert_one_error_line(code, err)


# ----------------------------------------------------------------------------------------- bad input
@pytest.fixture()
def bad_files(tmp_path, piece) -> dict[str, Path]:
    f = {}
    f["missing_audio"] = tmp_path / "nope.wav"
    f["missing_score"] = tmp_path / "nope.csv"
    f["txt_audio"] = tmp_path / "notes.txt"
    f["txt_audio"].write_text("this is not audio\n")
    f["corrupt_wav"] = tmp_path / "corrupt.wav"
    f["corrupt_wav"].write_bytes(np.random.default_rng(0).bytes(4096))
    f["empty_wav"] = tmp_path / "empty.wav"
    sf.write(f["empty_wav"], np.zeros((0, 1), np.float32), 22050, subtype="FLOAT")
    f["header_only"] = tmp_path / "header.csv"
    f["header_only"].write_text("onset_s,offset_s,pitch,group\n")
    f["beyond"] = tmp_path / "beyond.csv"
    f["beyond"].write_text("onset_s,offset_s,pitch,group\n10.0,11.0,60,lh\n12.5,13.0,72,rh\n")
    f["garbage_midi"] = tmp_path / "garbage.mid"
    f["garbage_midi"].write_bytes(b"MThd\x00\x00\x00\x06" + np.random.default_rng(1).bytes(200))
    f["nan_wav"] = tmp_path / "nan.wav"
    x, sr = sf.read(piece["mix"], dtype="float32")
    x = x.copy()
    x[1000] = np.nan
    sf.write(f["nan_wav"], x, sr, subtype="FLOAT")
    return f


@pytest.mark.parametrize(
    "case, audio, score, mention",
    [
        ("missing audio", "missing_audio", None, "missing_audio"),
        ("missing score", None, "missing_score", "missing_score"),
        ("text file as audio", "txt_audio", None, "txt_audio"),
        ("random bytes .wav", "corrupt_wav", None, "corrupt_wav"),
        ("empty wav", "empty_wav", None, "empty_wav"),
        ("score without notes", None, "header_only", "header_only"),
        ("score entirely beyond the audio", None, "beyond", "beyond"),
        ("garbage MIDI", None, "garbage_midi", "garbage_midi"),
        ("NaN samples", "nan_wav", None, "nan_wav"),
    ],
)
def test_bad_input_gives_one_error_line_and_exit_2(
    case, audio, score, mention, bad_files, piece, tmp_path, capsys
):
    mix = bad_files[audio] if audio else piece["mix"]
    sc = bad_files[score] if score else piece["score"]
    out = tmp_path / "out"
    code, stdout, err = run(["separate", mix, "--score", sc, "--out", out, "--iters", "2"], capsys)
    line = assert_one_error_line(code, err, str(bad_files[mention]))
    assert line.count(str(bad_files[mention])) >= 1
    assert not out.exists() or not any(out.iterdir()), "nothing is written for bad input"


@pytest.mark.parametrize(
    "extra, mention",
    [
        (["--model", "pca"], "--model"),
        (["--iters", "0"], "--iters"),
        (["--iters", "-3"], "--iters"),
        (["--iters", "many"], "--iters"),
        (["--format", "mp3"], "--format"),
        (["--split", "200"], "--split"),
        (["--alpha", "0"], "--alpha"),
        (["--n-fft", "15"], "n_fft"),
        (["--hop", "4096"], "hop"),
    ],
)
def test_bad_options_give_one_error_line_and_exit_2(extra, mention, piece, tmp_path, capsys):
    code, _, err = run(
        ["separate", piece["mix"], "--score", piece["score"], "--out", tmp_path / "o", *extra], capsys
    )
    assert_one_error_line(code, err, mention)


def test_without_score_option_a_draft_is_made_and_announced(piece, tmp_path, capsys):
    """No --score: `separate` drafts one (issue 16) and says so in one line (tests/e2e/test_cli_noscore.py)."""
    out = tmp_path / "sep"
    code, _, err = run(["separate", piece["mix"], "--out", out, "--iters", "5", "--quiet"], capsys)
    assert code == 0, err
    lines = nonblank_lines(err)
    assert len(lines) == 1 and "no --score given: drafted" in lines[0], lines
    assert {"rh", "lh"} <= {p.stem for p in out.glob("*.wav")}


def test_output_folder_that_is_a_file(piece, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(
        ["separate", piece["mix"], "--score", piece["score"], "--out", blocker, "--iters", "2"], capsys
    )
    assert_one_error_line(code, err, str(blocker))


# ----------------------------------------------------------------------------------------- subprocess
def _subprocess(args: list, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    return subprocess.run(
        [sys.executable, "-m", "demixer", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_subprocess_separate_then_evaluate(piece, tmp_path):
    out = tmp_path / "sub"
    p = _subprocess(
        ["separate", piece["mix"], "--score", piece["score"], "--out", out, "--iters", ITERS], tmp_path
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr and p.stderr.strip() == ""
    assert "wrote 2 sources" in p.stdout
    assert_stems_sum_to(out, {"lh", "rh"}, piece["mix"])
    q = _subprocess(["evaluate", "--reference", piece["refs"], "--estimate", out, "--json"], tmp_path)
    assert q.returncode == 0, q.stderr
    assert set(json.loads(q.stdout)["sources"]) == {"lh", "rh"}


@pytest.mark.parametrize("argv", [["--model", "pca"], ["--score", "missing.csv"]])
def test_subprocess_bad_input_exits_2_with_one_line(argv, piece, tmp_path):
    args = ["separate", piece["mix"], "--score", piece["score"], "--out", tmp_path / "o", *argv]
    p = _subprocess(args, tmp_path)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    lines = nonblank_lines(p.stderr)
    assert len(lines) == 1 and lines[0].startswith("demixer: error:")
    assert argv[-1] in lines[0] or argv[0] in lines[0]


# ----------------------------------------------------------------------------------------- one fit
def test_separate_gives_the_stems_of_the_fit_entry_point(piece, separated):
    """`demixer separate` = engine.fit.Fit (staged, from the score) + stems: the same samples."""
    from threadpoolctl import threadpool_limits

    from demixer.engine.fit import Fit, FitState
    from demixer.engine.separation import SeparationSettings, analyse, initialise, stems
    from demixer.io.audio import read_audio

    settings = SeparationSettings(n_iter=int(ITERS))
    audio = read_audio(piece["mix"])
    analysis = analyse(audio, settings.stft, settings.compress)
    init = initialise(read_score(piece["score"]), analysis, settings.score)
    fit = Fit(analysis, init.notes, settings, FitState.from_init(init), "staged")
    with threadpool_limits(limits=1, user_api="blas"):  # as separate runs (float rounding follows BLAS threads)
        final = fit.run()
    assert fit.mode == "staged" and final.stage == "activations"
    want = stems(audio, analysis, fit.result.W, fit.result.H, init.components, init.sources, settings.alpha)
    assert set(want) == {"lh", "rh"}
    for name, x in want.items():
        got, sr = read(separated / f"{name}.wav")
        assert sr == audio.sr
        # equal up to float rounding (another fit or another path differs by orders of magnitude more)
        np.testing.assert_allclose(got.astype(np.float32), x, rtol=0, atol=1e-6)


def test_separate_help_states_the_real_defaults(capsys):
    """Every default in `demixer separate --help` is read from the settings objects."""
    import re

    from demixer.engine.models import model_names
    from demixer.engine.separation import SeparationSettings

    code, out, _ = run(["separate", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())  # argparse wraps lines
    s = SeparationSettings()

    def default_of(option: str) -> str:
        m = re.search(re.escape(option) + r" [A-Z_]+ (?:(?! --).)*?\(default ([^;)]+)", text)
        assert m, option
        return m.group(1).strip()

    assert int(default_of("--n-fft")) == s.stft.n_fft
    assert int(default_of("--hop")) == s.stft.hop
    assert int(default_of("--sr")) == s.stft.sr
    assert int(default_of("--iters")) == s.n_iter
    assert float(default_of("--alpha")) == s.alpha
    assert f"(default {s.model})" in text
    assert "{" + ",".join(model_names()) + "}" in text
    r = s.refine
    assert f"{round(100 * r.scout_share)} % to the scout" in text
    assert f"{round(100 * r.activation_share)} % to activations" in text


def test_evaluate_matches_names_as_a_person_reads_them(piece, separated, tmp_path, capsys):
    """A MusicXML part "Soprano" gives Soprano.wav; the reference has soprano.wav: "no source names in
    common" was the answer. Names match regardless of case and of ``_`` for a space, also through
    stems.json's group names; two files that both match one reference name are refused."""
    est = tmp_path / "est"
    est.mkdir()
    (est / "LH.wav").write_bytes((separated / "lh.wav").read_bytes())
    (est / "part_2.wav").write_bytes((separated / "rh.wav").read_bytes())
    (est / "stems.json").write_text(json.dumps({"stems": [{"file": "LH.wav", "group": "LH"},
                                                         {"file": "part_2.wav", "group": "RH"}]}))
    code, stdout, err = run(["evaluate", "--reference", piece["refs"], "--estimate", est, "--json"], capsys)
    assert code == 0, err
    result = json.loads(stdout)
    assert set(result["sources"]) == {"lh", "rh"} and result["missing"] == []
    assert all(r["sdr"] > 3.0 for r in result["sources"].values())  # each paired with its own stem
    sf.write(est / "Lh.flac", np.zeros(100, np.float32), 22050)  # a second candidate for "lh"
    code, _, err = run(["evaluate", "--reference", piece["refs"], "--estimate", est], capsys)
    assert_one_error_line(code, err)
    assert "all match the reference source 'lh'" in err
