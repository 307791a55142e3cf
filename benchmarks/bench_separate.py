"""End-to-end speed of `demixer separate` on a 60 s piece with its score.

Builds the piece from a dev recording (the mixture and its score repeated back to back until 60 s),
then runs the real command in a subprocess several times and prints the wall time of each stage and of
the whole command (read, STFT, constraints, iterations, masks, iSTFT, write). For scale, it also times
in the same run the dense GEMM work of 100 KL iterations at the same shapes on one thread.

    python benchmarks/bench_separate.py [--seconds 60] [--repeats 3] [--piece piano_mozart_k545]
    python benchmarks/bench_separate.py --piece chorale_bwv255 --seconds 57 --repeats 5 --baseline /tmp/base/src

``--baseline SRC``: also run another checkout's code (``PYTHONPATH=SRC``, e.g. ``git archive main`` unpacked),
alternating with this one run by run, and print both columns: on a shared machine only CPU times measured
interleaved in the same run compare. The budget is CPU time (user + sys of the command's process); the
command limits BLAS to one thread itself.
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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dev"
TARGET_S = 4.0
CPU_BUDGET_S = 2.0  # issues 11 and 15: the whole command, sync included, a 57 s four-part piece


def build_piece(piece: str, seconds: float, folder: Path) -> tuple[Path, Path, int]:
    from demixer.io.audio import read_audio, write_audio
    from demixer.io.score import read_score

    src = DATA / piece
    audio = read_audio(src / "mixture.wav")
    notes = read_score(src / "score.csv")
    period = audio.duration
    reps = int(np.ceil(seconds / period))
    n = int(round(seconds * audio.sr))
    samples = np.tile(audio.samples, reps)[:, :n]
    mix = folder / "mix60.wav"
    write_audio(mix, samples, audio.sr)
    score = folder / "score60.csv"
    count = 0
    with open(score, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["onset_s", "offset_s", "pitch", "group"])
        for r in range(reps):
            for note in notes:
                on, off = note.onset + r * period, min(note.offset + r * period, seconds)
                if on < seconds and off > on:
                    w.writerow([f"{on:.6f}", f"{off:.6f}", note.pitch, note.group])
                    count += 1
    return mix, score, count


def gemm_reference(mix: Path, iters: int = 100) -> float:
    """CPU seconds of the GEMMs of `iters` dense KL iterations at this piece's shapes (one thread)."""
    from threadpoolctl import threadpool_limits

    from demixer.core.stft import magnitude, stft
    from demixer.engine.separation import SeparationSettings
    from demixer.io.audio import analysis_signal, read_audio

    p = SeparationSettings().stft
    V = magnitude(stft(analysis_signal(read_audio(mix), p.sr), p.n_fft, p.hop))
    K, N = V.shape
    R = 60
    rng = np.random.default_rng(0)
    W = rng.random((K, R), dtype=np.float32)
    H = rng.random((R, N), dtype=np.float32)
    WH = np.empty((K, N), np.float32)
    RN = np.empty((R, N), np.float32)
    KR = np.empty((K, R), np.float32)
    with threadpool_limits(1):
        t0 = time.process_time()
        for _ in range(iters):
            np.matmul(W, H, out=WH)
            np.matmul(W.T, WH, out=RN)
            np.matmul(W, H, out=WH)
            np.matmul(WH, H.T, out=KR)
        return time.process_time() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--piece", default="piano_mozart_k545")
    ap.add_argument("--baseline", type=Path, default=None, metavar="SRC",
                    help="another checkout's src folder, run alternately with this one (PYTHONPATH)")
    ap.add_argument("--align", choices=("auto", "off"), default="auto", help="separate's --align (default auto)")
    args = ap.parse_args()
    if not (DATA / args.piece).is_dir():
        print(f"bench_separate: {DATA / args.piece} not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mix, score, n_notes = build_piece(args.piece, args.seconds, tmp)
        print(f"piece: {args.piece} repeated to {args.seconds:.0f} s, {n_notes} notes")
        cmd = [sys.executable, "-m", "demixer", "separate", str(mix), "--score", str(score),
               "--out", str(tmp / "out"), "--quiet", "--align", args.align]
        sides = {"this": os.environ.copy()}
        if args.baseline is not None:
            env = os.environ.copy()
            paths = [str(args.baseline.resolve())] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
            env["PYTHONPATH"] = os.pathsep.join(paths)
            sides["baseline"] = env
        walls, cpus = {k: [] for k in sides}, {k: [] for k in sides}
        for _ in range(args.repeats):
            for side, env in sides.items():
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                walls[side].append(time.perf_counter() - t0)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus[side].append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
                if proc.returncode != 0:
                    print(proc.stderr, file=sys.stderr)
                    return 1
        ref = gemm_reference(mix)
    if args.baseline is not None:
        print(f"{'run':<28}" + "".join(f"{s + ' CPU s':>16}" for s in sides))
        for i in range(args.repeats):
            print(f"{'demixer separate #' + str(i + 1):<28}" + "".join(f"{cpus[s][i]:16.2f}" for s in sides))
        print(f"{'best CPU (the whole command)':<28}" + "".join(f"{min(cpus[s]):16.2f}" for s in sides)
              + f"   this/baseline = {min(cpus['this']) / min(cpus['baseline']):.2f}")
    walls, cpus = walls["this"], cpus["this"]
    best = min(walls)
    print(f"{'run (this checkout)':<28}{'wall s':>10}{'CPU s':>10}")
    for i, (w, c) in enumerate(zip(walls, cpus, strict=True), 1):
        print(f"{'demixer separate #' + str(i):<28}{w:10.2f}{c:10.2f}")
    print(f"{'best CPU (the whole command)':<28}{'':>10}{min(cpus):10.2f}   budget <= {CPU_BUDGET_S:.1f} s: "
          f"{'PASS' if min(cpus) <= CPU_BUDGET_S else 'MISS'}")
    print(f"{'best':<28}{best:10.2f}   target <= {TARGET_S:.1f} s: {'PASS' if best <= TARGET_S else 'MISS'}")
    print(f"{'reference: 100 KL GEMMs, R=60':<28}{ref:10.2f}   (1 thread CPU; ratio best/ref = {best / ref:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
