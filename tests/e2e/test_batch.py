"""``demixer batch`` end to end on a real 2-worker dask LocalCluster, and ``separate --report``.

The corpus is cut from ../shared/data/dev (a few seconds per piece, with their scores and stems). Every
batch result is compared byte for byte with the files the ``separate`` command writes when it is run
in this process on the same piece with the same options.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from support.cli import run_cli as run

from demixer.cli.main import main
from demixer.io.audio import read_audio, write_audio
from demixer.io.score import clip_notes, read_score, write_score_csv

distributed = pytest.importorskip("distributed")

DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dev"  # ../shared beside the checkout
OPTIONS = ["--iters", "12"]

pytestmark = pytest.mark.skipif(not DEV.is_dir(), reason="needs ../shared/data/dev")


def cut_piece(src: str, dest: Path, start: float, seconds: float, stems: bool = False) -> Path:
    """dest/mixture.wav + score.csv (+ stems/) of ``seconds`` of dev piece ``src`` from ``start``."""
    dest.mkdir(parents=True)
    audio = read_audio(DEV / src / "mixture.wav")
    a, b = int(start * audio.sr), int((start + seconds) * audio.sr)
    write_audio(dest / "mixture.wav", audio.samples[:, a:b], audio.sr)
    notes = [replace(n, onset=max(0.0, n.onset - start), offset=n.offset - start)
             for n in read_score(DEV / src / "score.csv") if n.offset > start]
    write_score_csv(dest / "score.csv", clip_notes(notes, seconds)[0])
    if stems:
        (dest / "stems").mkdir()
        for f in sorted((DEV / src / "stems").glob("*.wav")):
            s = read_audio(f)
            write_audio(dest / "stems" / f.name, s.samples[:, a:b], s.sr)
    return dest


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stems_of(folder: Path) -> dict[str, str]:
    """File name → sha256 of the decoded samples (as float32 bits), rate, channels and subtype.

    Not of the file's bytes: libsndfile writes the time of writing into a float WAV's PEAK chunk, so
    two runs of `separate` give files whose bytes differ while every sample is the same."""
    import soundfile as sf

    out = {}
    for p in sorted(folder.glob("*.wav")):
        x, sr = sf.read(p, dtype="float32", always_2d=True)
        info = sf.info(p)
        out[p.name] = hashlib.sha256(x.tobytes() + f"{sr}/{info.channels}/{info.subtype}".encode()).hexdigest()
    return out


@pytest.fixture(scope="module", autouse=True)
def _environment_kept():
    """A LocalCluster's nannies set their workers' variables (OMP_NUM_THREADS …) in this process's
    environment too: put it back for the tests that come after."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    cut_piece("chorale_bwv255", root / "bwv255", 2.0, 4.0, stems=True)
    cut_piece("piano_mozart_k545", root / "k545", 0.0, 3.0)
    cut_piece("piano_joplin_maple_leaf", root / "joplin", 5.0, 3.0)
    bad = root / "broken"
    bad.mkdir()
    (bad / "take.wav").write_bytes(b"RIFF this is not a wave file at all")
    (bad / "take.csv").write_text("onset_s,offset_s,pitch,group\n0,1,60,a\n")
    return root


@pytest.fixture(scope="module")
def sequential(corpus, tmp_path_factory) -> dict[str, dict[str, str]]:
    """What `demixer separate` writes for each good piece, run one after the other in this process."""
    out = tmp_path_factory.mktemp("sequential")
    result = {}
    for name in ("bwv255", "k545", "joplin"):
        code = main(["separate", str(corpus / name / "mixture.wav"), "--score", str(corpus / name / "score.csv"),
                     "--out", str(out / name), *OPTIONS, "--quiet"])
        assert code == 0
        result[name] = stems_of(out / name)
    return result


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit="2GiB", silence_logs=40) as c:
        yield c


def test_batch_equals_sequential_separate_and_a_bad_piece_is_reported(corpus, sequential, cluster, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(["batch", corpus, "--out", out, "--scheduler", cluster.scheduler_address, *OPTIONS], capsys)
    assert code == 1, (stdout, err)  # one piece failed
    for name, files in sequential.items():
        assert stems_of(out / name) == files, name  # bit for bit
        assert (out / name / "report.json").is_file()
    assert not (out / "broken").exists()
    assert not (out / ".partial").exists()
    # the failure is in the summary with separate's own one-line reason; the others finished
    assert "failed: broken:" in stdout and "take.wav" in stdout and "not an audio file" in stdout
    assert "4 pieces: 3 done (0 already done), 1 failed" in stdout
    # progress: one plain line per piece when stderr is not a terminal
    assert sum(1 for ln in err.splitlines() if ln.startswith("demixer: batch: [")) == 4
    # BSS Eval for the piece with reference stems: the table and summary.csv
    assert "bwv255" in stdout and "soprano" in stdout and "SDR" in stdout
    rows = list(csv.DictReader(open(out / "summary.csv")))
    by = {(r["piece"], r["source"]): r for r in rows}
    assert by[("broken", "")]["status"] == "failed" and "not an audio file" in by[("broken", "")]["reason"]
    assert by[("k545", "")]["status"] == "done"
    sdr = [float(by[("bwv255", s)]["sdr"]) for s in ("alto", "bass", "soprano", "tenor")]
    assert float(by[("bwv255", "mean")]["sdr"]) == pytest.approx(np.mean(sdr), abs=2e-3)
    assert float(by[("mean", "all")]["sdr"]) == pytest.approx(np.mean(sdr), abs=2e-3)
    # the evaluation equals `demixer evaluate` on the same folders
    code, ev, _ = run(["evaluate", "--reference", corpus / "bwv255" / "stems", "--estimate", out / "bwv255",
                       "--json"], capsys)
    assert code == 0
    assert json.loads(ev)["mean"]["sdr"] == pytest.approx(float(by[("bwv255", "mean")]["sdr"]), abs=2e-3)
    report = json.loads((out / "bwv255" / "report.json").read_text())
    assert report["ok"] and report["arguments"]["iters"] == 12
    alto = report["batch"]["evaluation"]["sources"]["alto"]["sdr"]
    assert alto == pytest.approx(float(by[("bwv255", "alto")]["sdr"]), abs=2e-3)

    # resume: nothing runs again; the files are the same files
    inodes = {p: p.stat().st_ino for p in out.rglob("*.wav")}
    code, stdout, _ = run(["batch", corpus, "--out", out, "--scheduler", cluster.scheduler_address, *OPTIONS], capsys)
    assert code == 1
    assert "4 pieces: 3 done (3 already done), 1 failed" in stdout
    assert {p: p.stat().st_ino for p in out.rglob("*.wav")} == inodes

    # a changed input runs again (only that piece); touching a file without changing its bytes does not
    touched = corpus / "k545" / "score.csv"
    st = touched.stat()
    score = corpus / "joplin" / "score.csv"
    original = score.read_text()
    try:
        os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        score.write_text("\n".join(original.splitlines()[:-1]) + "\n")  # one note fewer
        code, stdout, _ = run(["batch", corpus, "--out", out, "--scheduler", cluster.scheduler_address, *OPTIONS],
                              capsys)
        assert "3 done (2 already done)" in stdout
        assert {p: p.stat().st_ino for p in (out / "k545").glob("*.wav")} == {
            p: i for p, i in inodes.items() if p.parent.name == "k545"}
        assert {p.stat().st_ino for p in (out / "joplin").glob("*.wav")}.isdisjoint(inodes.values())
    finally:
        score.write_text(original)
        os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns))
    # other settings: every piece runs again
    code, stdout, _ = run(["batch", corpus, "--out", out, "--scheduler", cluster.scheduler_address, "--iters", "8"],
                          capsys)
    assert "3 done (0 already done)" in stdout
    assert json.loads((out / "k545" / "report.json").read_text())["arguments"]["iters"] == 8


def test_manifest_flat_folder_and_a_piece_without_score(corpus, sequential, cluster, tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("k545", "joplin"):
        (flat / f"{name}.wav").write_bytes((corpus / name / "mixture.wav").read_bytes())
        (flat / f"{name}.csv").write_bytes((corpus / name / "score.csv").read_bytes())
    (flat / "lonely.wav").write_bytes((corpus / "k545" / "mixture.wav").read_bytes())  # no score: not a piece
    out = tmp_path / "out-flat"
    code, stdout, err = run(["batch", flat, "--out", out, "--scheduler", cluster.scheduler_address, *OPTIONS,
                             "--quiet"], capsys)
    assert code == 0, (stdout, err)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["joplin", "k545"]
    assert stems_of(out / "k545") == sequential["k545"]
    assert err == ""  # --quiet: no progress lines
    # reference stems added later (--reference DIR/<piece>/): BSS Eval runs, the stems stay as they are
    cut_piece("piano_mozart_k545", tmp_path / "refcut", 0.0, 3.0, stems=True)
    (tmp_path / "ref").mkdir()
    (tmp_path / "refcut" / "stems").rename(tmp_path / "ref" / "k545")
    inodes = {p.name: p.stat().st_ino for p in (out / "k545").glob("*.wav")}
    code, stdout, _ = run(["batch", flat, "--out", out, "--scheduler", cluster.scheduler_address, *OPTIONS,
                           "--reference", tmp_path / "ref"], capsys)
    assert code == 0 and "2 done (2 already done)" in stdout
    assert {p.name: p.stat().st_ino for p in (out / "k545").glob("*.wav")} == inodes
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {"lh", "rh", "mean"} <= {r["source"] for r in rows if r["piece"] == "k545"}
    evaluation = json.loads((out / "k545" / "report.json").read_text())["batch"]["evaluation"]
    assert evaluation["reference"] == str(tmp_path / "ref" / "k545") and evaluation["mean"]["sdr"] > 0
    manifest = tmp_path / "lists" / "corpus.csv"
    manifest.parent.mkdir()
    manifest.write_text(
        "audio,score,out_name\n"
        f"../flat/joplin.wav,../flat/joplin.csv,maple leaf\n"
        f"{corpus / 'k545' / 'mixture.wav'},,k545-no-score\n"
    )
    out = tmp_path / "out-manifest"
    code, stdout, _ = run(["batch", manifest, "--out", out, "--scheduler", cluster.scheduler_address, *OPTIONS],
                          capsys)
    assert code == 0, stdout
    assert stems_of(out / "maple_leaf") == sequential["joplin"]
    # without a score, separate is run without --score: it drafts one (issue 16), as `separate` alone does
    report = json.loads((out / "k545-no-score" / "report.json").read_text())
    assert report["ok"] and report["arguments"]["score"] is None
    assert any("no --score given" in line for line in report["stderr"])
    assert len(list((out / "k545-no-score").glob("*.wav"))) >= 2


def test_a_worker_killed_mid_piece_does_not_lose_the_batch(corpus, sequential, tmp_path, capsys):
    from distributed import Client, LocalCluster

    slow = cut_piece("chorale_bwv273", tmp_path / "corpus" / "slow", 0.0, 19.0)
    for name in ("k545", "joplin"):
        (tmp_path / "corpus" / name).mkdir()
        for f in ("mixture.wav", "score.csv"):
            (tmp_path / "corpus" / name / f).write_bytes((corpus / name / f).read_bytes())
    out = tmp_path / "out"
    options = ["--iters", "300"]  # the slow piece takes seconds: time to kill its worker
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit="2GiB", silence_logs=50) as cluster, Client(cluster) as client:
        result = {}

        def batch():
            result["code"] = main(["batch", str(tmp_path / "corpus"), "--out", str(out), "--scheduler",
                                   cluster.scheduler_address, *options, "--quiet"])

        thread = threading.Thread(target=batch)
        thread.start()
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline:  # the slow piece is running separate
            partial = list((out / ".partial").glob("slow.*")) if (out / ".partial").is_dir() else []
            if partial:
                for address, keys in client.processing().items():
                    if any("-slow-" in str(k) for k in keys):
                        victim = address
            time.sleep(0.05)
        assert victim is not None, "the slow piece never started"
        time.sleep(0.5)
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        assert not (out / "slow").exists()  # not half-written: absent
        thread.join(timeout=300)
        assert not thread.is_alive()
    capsys.readouterr()
    assert result["code"] == 0
    for name in ("k545", "joplin"):
        assert json.loads((out / name / "report.json").read_text())["ok"]
    report = json.loads((out / "slow" / "report.json").read_text())
    assert report["ok"] and report["batch"]["pid"] != pid  # run again, on another process
    assert set(stems_of(out / "slow")) == {f"{g}.wav" for g in report["groups"]}
    code = main(["separate", str(slow / "mixture.wav"), "--score", str(slow / "score.csv"), "--out",
                 str(tmp_path / "seq"), *options, "--quiet"])
    assert code == 0
    assert stems_of(out / "slow") == stems_of(tmp_path / "seq")
    assert not (out / ".partial").exists()


def test_a_piece_too_large_for_a_worker_is_refused_before_it_runs(tmp_path, capsys):
    """The batch's own LocalCluster (--workers, --memory-limit): a 10-minute piece needs ~0.7 GB by
    io/limits.py's estimate and is refused by a 600 MB worker, with the reason; a short one runs."""
    import soundfile as sf

    root = tmp_path / "corpus"
    for name, seconds in (("long", 600), ("short", 3)):
        (root / name).mkdir(parents=True)
        t = np.arange(int(seconds * 22050)) / 22050
        sf.write(root / name / "mixture.flac", (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050)
        (root / name / "score.csv").write_text(f"onset_s,offset_s,pitch,group\n0,{seconds},69,a\n")
    out = tmp_path / "out"
    code, stdout, err = run(["batch", root, "--out", out, "--workers", "1", "--memory-limit", "600M", "--iters", "5"],
                            capsys)
    assert code == 1, (stdout, err)
    assert "failed: long:" in stdout and "too large for a worker" in stdout and "memory limit is 600.0 MiB" in stdout
    assert (out / "short" / "a.wav").is_file()
    assert not (out / "long").exists()


def test_report_json_of_separate(tmp_path, capsys):
    src = DEV / "chorale_bwv255"
    audio = read_audio(src / "mixture.wav")
    write_audio(tmp_path / "mix.wav", audio.samples[:, : 3 * audio.sr], audio.sr)
    notes = [replace(n, group="") for n in clip_notes(read_score(src / "score.csv"), 3.0)[0]]
    write_score_csv(tmp_path / "score.csv", notes)  # no groups: separate warns and splits at middle C
    report_path = tmp_path / "r" / "report.json"
    code, stdout, err = run(["separate", tmp_path / "mix.wav", "--score", tmp_path / "score.csv", "--out",
                             tmp_path / "out", "--iters", "8", "--report", report_path], capsys)
    assert code == 0
    r = json.loads(report_path.read_text())
    assert r["ok"] and r["status"] == 0 and r["error"] is None and r["version"]
    assert r["inputs"]["audio"]["sha256"] == sha(tmp_path / "mix.wav")
    assert r["inputs"]["score"]["size"] == (tmp_path / "score.csv").stat().st_size
    assert r["arguments"]["iters"] == 8 and "report" not in r["arguments"]
    assert r["settings"]["n_iter"] == 8 and r["settings"]["score"]["split_pitch"] == 60  # as the fit used them
    assert r["audio"] == {"sr": audio.sr, "channels": 1, "duration_s": 3.0}
    for stage in ("read", "score", "analyse", "initialise", "fit", "stems", "total"):
        assert r["timings"][stage]["wall_s"] >= 0, stage
    assert r["timings"]["fit"]["calls"] == 1 and r["timings"]["stems"]["calls"] == 1
    # 2 scout + 4 template iterations + 1 of H: no group is struck, so the activation stage is one step
    # the curve's ends are on two grids (the scout's V first, the analysis's V last): not comparable, so no
    # "final < initial" here (it held at 4096 / 1024 by coincidence of the two V's scales)
    assert r["loss"]["iterations"] == r["loss"]["n_iter"] == 7
    assert 0 < r["loss"]["initial"] < float("inf") and 0 < r["loss"]["final"] < float("inf")
    assert r["groups"] == {"low": "low.wav", "high": "high.wav"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["high.wav", "low.wav", "stems.json"]
    assert len(r["warnings"]) == 1 and "no groups" in r["warnings"][0]
    assert "no groups" in err  # still printed
    # a failed run writes its report too, with the error line
    code, _, err = run(["separate", tmp_path / "missing.wav", "--score", tmp_path / "score.csv", "--out",
                        tmp_path / "o2", "--report", report_path], capsys)
    assert code == 2
    r = json.loads(report_path.read_text())
    assert r["ok"] is False and r["status"] == 2 and "missing.wav" in r["error"] and "error" in r["inputs"]["audio"]
    # the functions separate calls are themselves again afterwards
    import demixer.engine.separation as sep

    assert not hasattr(sep.fit, "__wrapped__")


def test_import_main_does_not_import_dask_and_batch_without_dask_says_how_to_install(tmp_path):
    code = (
        "import sys\n"
        "import demixer.cli.main\n"
        "assert not {'dask', 'distributed'} & set(sys.modules), 'demixer.cli.main imported dask'\n"
        "sys.modules['distributed'] = None\n"  # as if it were not installed
        "raise SystemExit(demixer.cli.main.main(['batch', sys.argv[1], '--out', sys.argv[2]]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "demixer: error: demixer batch needs dask.distributed: pip install 'demixer[batch]'"
    assert not (tmp_path / "out").exists()


def test_bad_batch_input_is_one_line(tmp_path, capsys):
    cases = [
        (["batch", tmp_path / "nope", "--out", tmp_path / "o"], "nope: not found"),
        (["batch", tmp_path, "--out", tmp_path / "o"], "no pieces found"),
        (["batch", tmp_path, "--out", tmp_path / "o", "--iters", "0"], "--iters"),
        (["batch", tmp_path, "--out", tmp_path / "o", "--report", "x.json"], "set by batch"),
        (["batch", tmp_path, "--out", tmp_path / "o", "--score", "x.mid"], "set by batch"),
    ]
    for argv, mention in cases:
        code, out, err = run(argv, capsys)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("demixer: error:") and mention in lines[0], (
            argv, err)
