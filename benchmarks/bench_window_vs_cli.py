"""The window's Run against `demixer separate` (issue 12): same files, same defaults, same SDR.

For every dev piece and score format (CSV and MIDI), in subprocesses:

    window   demixer MIX --score SCORE --run --export-stems DIR   (offscreen: open, default Run, File → Export)
    CLI      demixer separate MIX --score SCORE --out DIR

then `demixer evaluate --json` of both against the piece's stems, and prints the mean SDR of each, the
difference, and each child's CPU time (user + sys, from getrusage: steadier than wall time on this shared
machine; the window's includes starting Qt, analysing, and computing the stems for export).
Target: |window − CLI| ≤ 0.1 dB on every row.

    python benchmarks/bench_window_vs_cli.py [--pieces chorale_bwv255,...] [--scores score.csv,score.mid]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import DEFAULT_DATA  # noqa: E402

DEMIXER = [sys.executable, "-m", "demixer.cli.main"]


def run_child(args: list[str], env: dict) -> tuple[float, float]:
    """Run one child to the end; (wall s, CPU s). A failure prints its stderr and exits."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def mean_sdr(reference: Path, estimate: Path, env: dict) -> float:
    proc = subprocess.run(
        [*DEMIXER, "evaluate", "--reference", str(reference), "--estimate", str(estimate), "--json"],
        env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"evaluate failed: {proc.stderr}")
    return float(json.loads(proc.stdout)["mean"]["sdr"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--pieces", default="", help="comma-separated piece names (default: all)")
    ap.add_argument("--scores", default="score.csv,score.mid", help="score files to use (default: CSV and MIDI)")
    args = ap.parse_args()
    pieces = sorted(p for p in args.data.iterdir() if (p / "stems").is_dir())
    if args.pieces:
        wanted = set(args.pieces.split(","))
        pieces = [p for p in pieces if p.name in wanted]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        env.setdefault("DEMIXER_LOG_DIR", tmp)
        print(f"{'piece':<26}{'score':<11}{'window':>8}{'CLI':>8}{'Δ dB':>7}{'win CPU s':>11}{'CLI CPU s':>11}")
        worst = 0.0
        for piece in pieces:
            for score in args.scores.split(","):
                if not (piece / score).exists():
                    continue
                out_w = Path(tmp) / f"{piece.name}-{score}-window"
                out_c = Path(tmp) / f"{piece.name}-{score}-cli"
                mix, sc = str(piece / "mixture.wav"), str(piece / score)
                _, cpu_w = run_child([*DEMIXER, mix, "--score", sc, "--run", "--export-stems", str(out_w)], env)
                _, cpu_c = run_child([*DEMIXER, "separate", mix, "--score", sc, "--out", str(out_c), "--quiet"], env)
                sdr_w = mean_sdr(piece / "stems", out_w, env)
                sdr_c = mean_sdr(piece / "stems", out_c, env)
                worst = max(worst, abs(sdr_w - sdr_c))
                print(f"{piece.name:<26}{score:<11}{sdr_w:8.2f}{sdr_c:8.2f}{sdr_w - sdr_c:+7.2f}"
                      f"{cpu_w:11.2f}{cpu_c:11.2f}", flush=True)
    ok = worst <= 0.1
    print(f"{'PASS' if ok else 'FAIL'}: largest |window − CLI| = {worst:.3f} dB (target ≤ 0.1)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
