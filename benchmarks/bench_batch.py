"""`demixer batch` on a corpus of 20 pieces: 1 and 2 local workers against a loop of `separate`.

Builds the corpus from the five dev recordings (each tiled back to back from four different starting
points to --seconds, with its score moved along), then:

1. runs `demixer separate` on every piece one after the other in this process (the reference stems,
   and the cost of a piece without any process start-up);
2. runs `demixer batch CORPUS --workers 1`, then `--workers 2`, each as a fresh command (its own
   LocalCluster), and reads every piece's report.json.

Printed: the command's wall time; the span from the first piece's start to the last piece's end on
the workers; pieces per minute over that span; CPU seconds per piece (of the thread that runs
separate, and what the rest of the worker process adds); the speed-up over 1 worker (span), and
from CPU time (what 2 free cores would give); how much of the workers' cores the pieces got (CPU
of the worker processes / (span × workers): below 1 when something else, such as other users of a
shared machine, takes the cores); peak resident memory per worker process; and whether every stem
equals the loop's sample for sample.

    python benchmarks/bench_batch.py [--pieces 20] [--seconds 30] [--iters 100]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dev"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def build_corpus(folder: Path, n_pieces: int, seconds: float) -> list[Path]:
    """n_pieces folders (mixture.wav + score.csv): dev recordings tiled from different starting points."""
    from demixer.io.audio import read_audio, write_audio
    from demixer.io.score import read_score

    sources = sorted(p for p in DATA.iterdir() if (p / "mixture.wav").is_file())
    pieces = []
    for i in range(n_pieces):
        src = sources[i % len(sources)]
        start = 4.0 * (i // len(sources))
        audio = read_audio(src / "mixture.wav")
        notes = read_score(src / "score.csv")
        period = audio.duration
        reps = int(np.ceil((seconds + start) / period)) + 1
        a, n = int(round(start * audio.sr)), int(round(seconds * audio.sr))
        dest = folder / f"{src.name}_{i:02d}"
        dest.mkdir(parents=True)
        write_audio(dest / "mixture.wav", np.tile(audio.samples, reps)[:, a : a + n], audio.sr)
        with open(dest / "score.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["onset_s", "offset_s", "pitch", "group"])
            for r in range(reps):
                for note in notes:
                    on = note.onset + r * period - start
                    off = min(note.offset + r * period - start, seconds)
                    if 0 <= on < seconds and off > on:
                        w.writerow([f"{on:.6f}", f"{off:.6f}", note.pitch, note.group])
        pieces.append(dest)
    return pieces


def samples_digest(folder: Path) -> dict[str, str]:
    import soundfile as sf

    out = {}
    for p in sorted(folder.glob("*.wav")):
        x, sr = sf.read(p, dtype="float32", always_2d=True)
        out[p.name] = hashlib.sha256(x.tobytes() + str(sr).encode()).hexdigest()
    return out


def sequential(pieces: list[Path], out: Path, options: list[str]) -> dict:
    from demixer.cli.main import main

    t0, c0, th0 = time.perf_counter(), time.process_time(), time.thread_time()
    for p in pieces:
        code = main(["separate", str(p / "mixture.wav"), "--score", str(p / "score.csv"), "--out",
                     str(out / p.name), *options, "--quiet"])
        assert code == 0, p
    wall, cpu, thread = time.perf_counter() - t0, time.process_time() - c0, time.thread_time() - th0
    n = len(pieces)
    return {"wall": wall, "span": wall, "cpu_per_piece": thread / n, "process_cpu_per_piece": cpu / n,
            "workers": 1, "peak": None}


def batch(corpus: Path, out: Path, workers: int, options: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "demixer", "batch", str(corpus), "--out", str(out), "--workers", str(workers),
         *options, "--quiet"], capture_output=True, text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"batch failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("*/report.json"))]
    start = min(r["batch"]["started_at"] for r in reports)
    end = max(r["batch"]["separated_at"] for r in reports)
    cpu = [r["batch"]["thread_cpu_s"] for r in reports]
    process_cpu = [r["timings"]["total"]["cpu_s"] for r in reports]
    peak: dict[int, int] = {}
    for r in reports:
        peak[r["batch"]["pid"]] = max(peak.get(r["batch"]["pid"], 0), r["batch"]["peak_rss"])
    return {"wall": wall, "span": end - start, "cpu_per_piece": float(np.mean(cpu)),
            "cpu_total": float(np.sum(process_cpu)), "process_cpu_per_piece": float(np.mean(process_cpu)),
            "workers": workers, "peak": max(peak.values()), "processes": len(peak)}


def main() -> None:
    from _common import machine_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pieces", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--iters", type=int, default=None, help="separate's --iters (default: separate's default)")
    args = ap.parse_args()
    options = ["--iters", str(args.iters)] if args.iters else []
    for line in machine_info():
        print(line)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pieces = build_corpus(tmp / "corpus", args.pieces, args.seconds)
        print(f"corpus: {len(pieces)} pieces × {args.seconds:.0f} s (tiled from {DATA}), separate options: "
              f"{' '.join(options) or '(defaults)'}")
        rows = {"separate, one after the other (in-process)": sequential(pieces, tmp / "seq", options)}
        reference = {p.name: samples_digest(tmp / "seq" / p.name) for p in pieces}
        for workers in (1, 2):
            out = tmp / f"batch{workers}"
            r = batch(tmp / "corpus", out, workers, options)
            r["equal"] = all(samples_digest(out / p.name) == reference[p.name] for p in pieces)
            rows[f"demixer batch --workers {workers}"] = r
        one = rows["demixer batch --workers 1"]["span"]
        print()
        print(f"{'run':<44}{'wall s':>8}{'span s':>8}{'pieces/min':>12}{'CPU s/piece':>13}{'+ worker':>10}"
              f"{'speed-up':>10}{'core use':>10}{'peak RSS/worker':>17}{'equal':>7}")
        for name, r in rows.items():
            ppm = 60 * len(pieces) / r["span"]
            use = r.get("cpu_total", r["cpu_per_piece"] * len(pieces)) / (r["span"] * r["workers"])
            peak = f"{r['peak'] / 2**20:.0f} MiB" if r["peak"] else "-"
            speed = f"{one / r['span']:.2f}×" if "batch" in name else "-"
            equal = {True: "yes", False: "NO"}.get(r.get("equal"), "ref")
            extra = r["process_cpu_per_piece"] - r["cpu_per_piece"]
            print(f"{name:<44}{r['wall']:8.1f}{r['span']:8.1f}{ppm:12.1f}{r['cpu_per_piece']:13.2f}{extra:10.2f}{speed:>10}"
                  f"{use:10.2f}{peak:>17}{equal:>7}")
        two = rows["demixer batch --workers 2"]
        cpu_bound = 2 * rows["demixer batch --workers 1"]["cpu_per_piece"] / two["cpu_per_piece"]
        print()
        print(f"speed-up of 2 workers over 1 measured on the wall clock (span): {one / two['span']:.2f}×; "
              f"from CPU time (2 × CPU per piece on 1 worker / on 2 workers, i.e. if both cores were free): "
              f"{cpu_bound:.2f}×")
        print(f"per piece of {args.seconds:.0f} s: {two['cpu_per_piece']:.2f} CPU s "
              f"({two['cpu_per_piece'] * 60 / args.seconds:.2f} CPU s per minute of audio), "
              f"peak {two['peak'] / 2**20:.0f} MiB per worker process")
        try:
            load = os.getloadavg()
            print(f"load average after the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
        except OSError:
            pass


if __name__ == "__main__":
    main()
