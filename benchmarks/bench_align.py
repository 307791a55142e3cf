"""Score–audio synchronisation (DESIGN.md §2.5b): accuracy, speed, and what it does for separation.

    .venv/bin/python benchmarks/bench_align.py                    # everything (~5 min on 2 cores)
    .venv/bin/python benchmarks/bench_align.py --skip sdr,anchor  # parts: accuracy, anchor, own, scaling, cost, sdr

1. accuracy on ../shared/data/dev-performed: `demixer align MIX --score score.mid` (and score.musicxml) as
   a subprocess; onset error of its CSV against score_aligned.csv (median, share within 50 ms, each piece's
   95th percentile) and the command's CPU time; the synchronisation alone (features + warp, in process,
   one BLAS thread) per minute of audio;
2. anchor: synctoolbox 1.4.2 on the same pieces (MrMsDTW, chroma + DLNCO, its tutorial's settings), run as
   a subprocess of its own virtualenv (/work/venv-sync-anchor or $SYNC_ANCHOR_PYTHON); "not available"
   when that does not exist. It is never a Demixer dependency;
3. own material, not in shared/: the dev recordings (other pieces, a ragtime) with their aligned scores
   turned into "downloaded" scores: every time mapped through a known warp (global tempo 0.5×–2×, a
   lead-in, ±10 % rubato, a ritardando); the aligner must recover the recording's times. Nothing is tuned
   per piece;
4. scaling: the synchronisation of one performed piece repeated to 1, 2, 5 and 10 minutes (CPU time and
   peak traced memory), to show it is linear;
5. cost: `demixer separate` CPU end to end on a 57 s four-part piece (a dev-performed chorale and its
   nominal score repeated), with and without the synchronisation;
6. sdr: mean SDR of `demixer separate` with score.mid, score.musicxml and score_aligned.csv.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PERFORMED = DATA / "dev-performed"
DEV = DATA / "dev"
ANCHOR_PY = Path(os.environ.get("SYNC_ANCHOR_PYTHON", "/work/venv-sync-anchor/bin/python"))
DEMIXER = Path(sys.executable).with_name("demixer")

TARGET_MEDIAN, TARGET_WITHIN, TARGET_P95 = 0.020, 0.90, 0.100
TARGET_CPU_PER_MIN, TARGET_10MIN_S, TARGET_10MIN_MB = 0.5, 5.0, 300.0
TARGET_ALIGN_CMD, TARGET_SEPARATE = 1.0, 2.0
TARGET_SDR_GAP = 0.3


# ----------------------------------------------------------------------------------------- helpers
def read_csv_notes(path: Path) -> list[tuple[float, float, int, str]]:
    with open(path, newline="") as f:
        return [(float(r["onset_s"]), float(r["offset_s"]), int(r["pitch"]), (r.get("group") or "").lower())
                for r in csv.DictReader(f)]


def onset_errors(est: list, truth: list) -> np.ndarray:
    """|onset error| of each note, notes paired by (group, pitch) in time order (case-insensitive groups)."""
    a, b = defaultdict(list), defaultdict(list)
    for n in est:
        a[(n[3], n[2])].append(n[0])
    for n in truth:
        b[(n[3], n[2])].append(n[0])
    out = []
    for k, tb in b.items():
        ta = sorted(a.get(k, []))
        tb = sorted(tb)
        if len(ta) != len(tb):
            raise ValueError(f"note count differs for {k}: {len(ta)} vs {len(tb)}")
        out.extend(abs(x - y) for x, y in zip(ta, tb, strict=True))
    return np.array(out)


def child_cpu(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc


def pieces() -> list[Path]:
    return [p for p in sorted(PERFORMED.iterdir()) if (p / "score_aligned.csv").is_file()]


def stats(err: np.ndarray) -> tuple[float, float, float]:
    return float(np.median(err)), float(np.mean(err < 0.05)), float(np.percentile(err, 95))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# ----------------------------------------------------------------------------------------- 1 + 2
def sync_cpu(mix: Path, score: Path) -> tuple[float, float]:
    """CPU seconds of the synchronisation alone (features + warp, one BLAS thread) and the audio's minutes."""
    from threadpoolctl import threadpool_limits

    from demixer.core.sync import audio_features, synchronise
    from demixer.io.audio import analysis_signal, read_audio
    from demixer.io.score import read_score

    audio = read_audio(mix)
    x = analysis_signal(audio, 22050)
    notes = read_score(score)
    best = float("inf")
    with threadpool_limits(1, "blas"):
        for _ in range(3):
            c0 = time.process_time()
            synchronise(notes, audio_features(x, 22050))
            best = min(best, time.process_time() - c0)
    return best, audio.duration / 60.0


def accuracy(skip_anchor: bool) -> list[str]:
    lines = ["## 1. dev-performed: onset error against score_aligned.csv", ""]
    header = (f"| {'piece':<20} | {'aligner':<26} | {'median ms':>9} | {'≤ 50 ms':>7} | {'p95 ms':>7} | "
              f"{'CPU s':>6} |")
    lines += [header, "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"]
    totals: dict[str, list] = defaultdict(list)
    p95s: dict[str, list] = defaultdict(list)
    cpu_cmd: dict[str, list] = defaultdict(list)
    per_min = []
    anchor_ok = ANCHOR_PY.is_file() and not skip_anchor
    with tempfile.TemporaryDirectory() as tmp:
        for d in pieces():
            truth = read_csv_notes(d / "score_aligned.csv")
            runs = [("demixer align (score.mid)", "mid"), ("demixer align (musicxml)", "musicxml")]
            if anchor_ok:
                runs.append(("synctoolbox 1.4.2", "anchor"))
            for label, kind in runs:
                out = Path(tmp) / f"{d.name}.{kind}.csv"
                if kind == "anchor":
                    cpu, proc = child_cpu([str(ANCHOR_PY), str(ROOT / "benchmarks" / "_sync_anchor.py"),
                                           str(d / "mixture.wav"), str(d / "score.csv"), str(out)])
                else:
                    score = d / ("score.mid" if kind == "mid" else "score.musicxml")
                    cpu, proc = child_cpu([str(DEMIXER), "align", str(d / "mixture.wav"), "--score", str(score),
                                           "--out", str(out), "--quiet"])
                if proc.returncode != 0:
                    lines.append(f"| {d.name:<20} | {label:<26} | failed: {proc.stderr.strip()[-80:]} |")
                    continue
                err = onset_errors(read_csv_notes(out), truth)
                med, within, p95 = stats(err)
                totals[label].append(err)
                p95s[label].append(p95)
                cpu_cmd[label].append(cpu)
                lines.append(f"| {d.name:<20} | {label:<26} | {med * 1000:9.1f} | {within * 100:6.1f}% | "
                             f"{p95 * 1000:7.0f} | {cpu:6.2f} |")
            c, minutes = sync_cpu(d / "mixture.wav", d / "score.mid")
            per_min.append(c / minutes)
    lines.append("")
    lines.append(f"| {'all pieces':<20} | {'aligner':<26} | {'median ms':>9} | {'≤ 50 ms':>7} | {'worst p95':>9} |")
    lines.append("|" + "-" * 22 + "|" + "-" * 28 + "|" + "-" * 11 + "|" + "-" * 9 + "|" + "-" * 11 + "|")
    for label, errs in totals.items():
        med, within, _ = stats(np.concatenate(errs))
        lines.append(f"| {'':<20} | {label:<26} | {med * 1000:9.1f} | {within * 100:6.1f}% | "
                     f"{max(p95s[label]) * 1000:9.0f} |")
    if not anchor_ok:
        lines.append(f"| {'':<20} | {'synctoolbox 1.4.2':<26} | not available ({ANCHOR_PY} missing) |")
    lines.append("")
    for label in ("demixer align (score.mid)", "demixer align (musicxml)"):
        if label not in totals:
            continue
        med, within, _ = stats(np.concatenate(totals[label]))
        worst = max(p95s[label])
        lines.append(f"{label}: median {med * 1000:.1f} ms (≤ 20) {verdict(med <= TARGET_MEDIAN)}; "
                     f"{within * 100:.1f} % within 50 ms (≥ 90) {verdict(within >= TARGET_WITHIN)}; "
                     f"worst p95 {worst * 1000:.0f} ms (≤ 100) {verdict(worst <= TARGET_P95)}; "
                     f"command CPU {max(cpu_cmd[label]):.2f} s max over the ~20 s pieces (≤ 1) "
                     f"{verdict(max(cpu_cmd[label]) <= TARGET_ALIGN_CMD)}")
    worst_min = max(per_min)
    lines.append(f"synchronisation alone (features + warp, 1 BLAS thread): "
                 f"{', '.join(f'{v:.2f}' for v in per_min)} s CPU per minute of audio (≤ 0.5) "
                 f"{verdict(worst_min <= TARGET_CPU_PER_MIN)}")
    return lines


# ----------------------------------------------------------------------------------------- 3
def warps():
    """(name, warp score→audio time) for the own-material check; lead-in 0.8 s."""
    import math

    def make(r, depth=0.1, period=7.0, rit=False):
        # audio time of score time t: integral of a local tempo 1/r·(1 + depth·sin) (+ a final ritardando)
        def f(t, total):
            base = 0.8 + t / r + depth / r * period / (2 * math.pi) * (1 - math.cos(2 * math.pi * t / period))
            if rit and t > 0.8 * total:
                base += 0.6 / r * (t - 0.8 * total) ** 2 / max(0.2 * total, 1e-9)
            return base
        return f

    return [("0.5x tempo (slower)", make(0.5)), ("0.75x", make(0.75)), ("1.33x", make(1.33)),
            ("2x tempo (faster)", make(2.0)), ("1x, ±10 % rubato, ritardando", make(1.0, rit=True))]


def own_material() -> list[str]:
    """Dev recordings with scores warped *away* from them: the aligner must undo the warp."""
    from threadpoolctl import threadpool_limits

    from demixer.core.notes import Note
    from demixer.engine.align import align_score
    from demixer.io.audio import read_audio
    from demixer.io.score import read_score

    lines = ["## 3. own material: dev recordings, scores warped away by known tempo curves", "",
             f"| {'piece':<24} | {'score warp':<30} | {'median ms':>9} | {'≤ 50 ms':>7} | {'p95 ms':>7} |",
             "|" + "-" * 26 + "|" + "-" * 32 + "|" + "-" * 11 + "|" + "-" * 9 + "|" + "-" * 9 + "|"]
    allerr = []
    worst = 0.0
    with threadpool_limits(1, "blas"):
        for d in sorted(p for p in DEV.iterdir() if (p / "score.csv").is_file()):
            audio = read_audio(d / "mixture.wav")
            truth = read_score(d / "score.csv")
            t0 = min(n.onset for n in truth)
            total = max(n.offset for n in truth) - t0
            for name, f in warps():
                # the warp maps score time → audio time; invert it numerically to make the "downloaded" score
                grid = np.linspace(0, total * 2.5 + 5, 20001)
                mapped = np.array([f(t, total * 1.0) for t in grid])
                on = np.interp([n.onset - t0 + 0.8 for n in truth], mapped, grid)
                off = np.interp([n.offset - t0 + 0.8 for n in truth], mapped, grid)
                score = [Note(float(a), float(max(a, b)), n.pitch, n.group)
                         for n, a, b in zip(truth, on, off, strict=True)]
                res = align_score(audio, score, check=False)
                est = [(n.onset, n.offset, n.pitch, n.group) for n in res.notes]
                err = onset_errors(est, [(n.onset, n.offset, n.pitch, n.group) for n in truth])
                med, within, p95 = stats(err)
                worst = max(worst, p95)
                allerr.append(err)
                lines.append(f"| {d.name:<24} | {name:<30} | {med * 1000:9.1f} | {within * 100:6.1f}% | "
                             f"{p95 * 1000:7.0f} |")
    med, within, _ = stats(np.concatenate(allerr))
    lines += ["", f"all: median {med * 1000:.1f} ms, {within * 100:.1f} % within 50 ms, "
                  f"worst p95 {worst * 1000:.0f} ms"]
    return lines


# ----------------------------------------------------------------------------------------- 4
def scaling() -> list[str]:
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import peak_extra_bytes

    from demixer.core.notes import Note
    from demixer.core.sync import audio_features, synchronise
    from demixer.io.audio import analysis_signal, read_audio
    from demixer.io.score import read_score

    d = PERFORMED / "chorale_bwv255"
    x0 = analysis_signal(read_audio(d / "mixture.wav"), 22050)
    n0 = read_score(d / "score.csv")
    period_a = x0.size / 22050
    period_s = max(n.offset for n in n0) + 0.5
    lines = ["## 4. scaling: one performed chorale repeated (features + warp, 1 BLAS thread)", "",
             "| audio min | notes | CPU s | CPU s / min | peak MB |", "|---|---|---|---|---|"]
    rows = []
    with threadpool_limits(1, "blas"):
        for minutes in (1, 2, 5, 10):
            reps = int(np.ceil(minutes * 60 / period_a))
            x = np.tile(x0, reps)[: int(minutes * 60 * 22050)]
            notes = [Note(n.onset + k * period_s, n.offset + k * period_s, n.pitch, n.group)
                     for k in range(reps) for n in n0]
            notes = [n for n in notes if n.onset < minutes * 60 * period_s / period_a]

            def job(x=x, notes=notes):
                synchronise(notes, audio_features(x, 22050))

            c0 = time.process_time()
            job()
            cpu = time.process_time() - c0
            peak = peak_extra_bytes(job) / 1e6
            rows.append((minutes, cpu, peak))
            lines.append(f"| {minutes} | {len(notes)} | {cpu:.2f} | {cpu / minutes:.2f} | {peak:.0f} |")
    ten = rows[-1]
    lines += ["", f"10 min: {ten[1]:.2f} s (≤ 5) {verdict(ten[1] <= TARGET_10MIN_S)}, {ten[2]:.0f} MB (≤ 300) "
                  f"{verdict(ten[2] <= TARGET_10MIN_MB)}; CPU per minute 1 → 10 min: {rows[0][1]:.2f} → "
                  f"{ten[1] / 10:.2f} s (linear: the ratio stays near 1)"]
    return lines


# ----------------------------------------------------------------------------------------- 5
def cost() -> list[str]:
    from demixer.io.audio import read_audio, write_audio
    from demixer.io.score import read_score

    d = PERFORMED / "chorale_bwv255"
    audio = read_audio(d / "mixture.wav")
    notes = read_score(d / "score.csv")
    reps = 3
    period_s = max(n.offset for n in notes) + 0.5
    lines = ["## 5. `demixer separate` CPU end to end, a 57 s four-part piece (best of 2)", ""]
    with tempfile.TemporaryDirectory() as tmp:
        n = int(57.0 * audio.sr)
        mix = Path(tmp) / "mix57.wav"
        write_audio(mix, np.tile(audio.samples, reps + 1)[:, :n], audio.sr)
        # the nominal score repeated, cut to the measures the 57 s play
        score = Path(tmp) / "score57.csv"
        per = audio.duration
        with open(score, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["onset_s", "offset_s", "pitch", "group"])
            k = 0
            while k * per < 57.0:
                for m in notes:
                    if k * per + (m.onset / period_s) * per < 57.0 - 2.0:
                        w.writerow([m.onset + k * period_s, m.offset + k * period_s, m.pitch, m.group])
                k += 1
        runs = (("with synchronisation (--align auto)", []), ("without (--align off)", ["--align", "off"]))
        for label, extra in runs:
            best = float("inf")
            for _ in range(2):
                cpu, proc = child_cpu([str(DEMIXER), "separate", str(mix), "--score", str(score), "--out",
                                       str(Path(tmp) / "o"), "--quiet", *extra])
                if proc.returncode != 0:
                    lines.append(f"{label}: failed: {proc.stderr.strip()[-200:]}")
                    break
                best = min(best, cpu)
            lines.append(f"{label}: {best:.2f} s CPU"
                         + (f" (≤ {TARGET_SEPARATE:.0f}) {verdict(best <= TARGET_SEPARATE)}" if not extra else ""))
    return lines


# ----------------------------------------------------------------------------------------- 6
def sdr() -> list[str]:
    from demixer.cli.main import evaluate_folders

    lines = ["## 6. SDR of `demixer separate` (mean over sources, dB)", "",
             "| piece | score.mid | score.musicxml | score_aligned.csv | score.mid --align off |",
             "|---|---|---|---|---|"]
    means = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for d in pieces():
            row = []
            for score, extra in (("score.mid", []), ("score.musicxml", []), ("score_aligned.csv", []),
                                 ("score.mid", ["--align", "off"])):
                out = Path(tmp) / f"{d.name}-{score}-{len(extra)}"
                proc = subprocess.run([str(DEMIXER), "separate", str(d / "mixture.wav"), "--score", str(d / score),
                                       "--out", str(out), "--quiet", *extra], capture_output=True, text=True)
                if proc.returncode != 0:
                    row.append("failed")
                    continue
                for p in list(out.iterdir()):  # part names (Soprano) → stem names (soprano)
                    p.rename(p.with_name(p.name.lower()))
                res = evaluate_folders(d / "stems", out)
                m = res["mean"]["sdr"]
                means[(score, len(extra))].append(m)
                row.append(f"{m:.2f}")
            lines.append(f"| {d.name} | " + " | ".join(row) + " |")
    avg = {k: float(np.mean(v)) for k, v in means.items()}
    lines.append("| mean | " + " | ".join(f"{avg.get(k, float('nan')):.2f}" for k in
                                         (("score.mid", 0), ("score.musicxml", 0), ("score_aligned.csv", 0),
                                          ("score.mid", 2))) + " |")
    ref = avg.get(("score_aligned.csv", 0), float("nan"))
    for k in (("score.mid", 0), ("score.musicxml", 0)):
        gap = ref - avg.get(k, float("nan"))
        lines.append(f"{k[0]}: {gap:+.2f} dB below score_aligned.csv (≤ {TARGET_SDR_GAP}) "
                     f"{verdict(gap <= TARGET_SDR_GAP)}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: accuracy,anchor,own,scaling,cost,sdr")
    args = ap.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import machine_info

    out = ["# bench_align", "", *machine_info(), ""]
    print("\n".join(out), flush=True)
    parts = [("accuracy", lambda: accuracy("anchor" in skip)), ("own", own_material), ("scaling", scaling),
             ("cost", cost), ("sdr", sdr)]
    for name, fn in parts:
        if name in skip:
            continue
        block = fn()
        print("\n".join(block) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
