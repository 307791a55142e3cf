"""Scale of `demixer separate`: peak memory and time for 10, 30 and 60 minutes of music (issue 14 item 12).

The recordings are synthesised here (no large files in the repository): two voices of harmonic notes
with decaying envelopes (a low and a high group, about 3 notes per second each), stereo 44.1 kHz,
written as 16-bit WAV a block at a time, with their score as CSV. Each length runs the real command
once in a subprocess; its peak resident memory (``ru_maxrss`` from ``wait4``) and its wall and CPU time
are printed with the memory the CLI estimates before the work (``io.limits.estimate_memory``), which it
compares with the machine's memory to refuse a recording that cannot fit.

    python benchmarks/bench_scale.py [--minutes 10 30 60] [--iters 100] [--keep DIR]

The 60-minute case takes minutes and a few GB: run it rarely on a shared machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SR = 44100
GROUPS = {"low": (36, 59), "high": (60, 84)}  # MIDI pitch ranges
NOTES_PER_SECOND = 3.0  # per group


def synthesise(minutes: float, folder: Path, seed: int = 0) -> tuple[Path, Path, int]:
    """A stereo recording and its score: (mix, score, number of notes)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    seconds = minutes * 60.0
    notes = []
    for g, (lo, hi) in GROUPS.items():
        t = 0.0
        while t < seconds - 0.5:
            dur = float(rng.uniform(0.2, 1.0))
            notes.append((t, min(seconds, t + dur), int(rng.integers(lo, hi + 1)), g))
            t += float(rng.exponential(1.0 / NOTES_PER_SECOND)) + 0.05
    notes.sort()
    score = folder / f"score_{minutes:g}min.csv"
    with open(score, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["onset_s", "offset_s", "pitch", "group"])
        for on, off, p, g in notes:
            w.writerow([f"{on:.4f}", f"{off:.4f}", p, g])
    n = int(seconds * SR)
    block = 30 * SR
    mix = folder / f"mix_{minutes:g}min.wav"
    # one decaying harmonic tone per pitch (1.3 s), cut to each note's length + 0.3 s and added in place
    tail = int(1.3 * SR)
    t = np.arange(tail) / SR
    env = np.exp(-3.0 * t) * np.minimum(1.0, t * 200)
    tones = {
        p: (sum(np.sin(2 * np.pi * 440.0 * 2 ** ((p - 69) / 12) * h * t) / h**1.5 for h in range(1, 7)) * env * 0.08)
        for p in range(min(lo for lo, _ in GROUPS.values()), max(hi for _, hi in GROUPS.values()) + 1)
    }
    starts = np.array([int(on * SR) for on, *_ in notes])
    with sf.SoundFile(mix, "w", SR, 2, subtype="PCM_16") as f:
        for b0 in range(0, n, block):
            b1 = min(n, b0 + block)
            out = np.zeros((b1 - b0 + tail, 2), dtype=np.float64)
            first = int(np.searchsorted(starts, b0 - tail))
            for on, off, p, g in notes[first : int(np.searchsorted(starts, b1))]:
                s0 = int(on * SR)
                length = min(tail, int((off - on + 0.3) * SR))
                lo = max(s0, b0 - 0)
                x = tones[p][lo - s0 : length]
                if x.size == 0:
                    continue
                pan = 0.3 if g == "low" else 0.7
                out[lo - b0 : lo - b0 + x.size, 0] += x * (1 - pan)
                out[lo - b0 : lo - b0 + x.size, 1] += x * pan
            f.write(np.clip(out[: b1 - b0], -1, 1).astype(np.float32))
    return mix, score, len(notes)


def run_separate(mix: Path, score: Path, out: Path, iters: int) -> tuple[int, float, float, int, str]:
    """(exit status, wall s, CPU s, peak RSS bytes, stderr) of one `demixer separate` run."""
    cmd = [sys.executable, "-m", "demixer", "separate", str(mix), "--score", str(score), "--out", str(out),
           "--iters", str(iters), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, err


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 30, 60])
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--keep", type=Path, default=None, help="folder for the generated files (default: temporary)")
    args = ap.parse_args(argv)

    from demixer.engine.separation import SeparationSettings
    from demixer.io.limits import estimate_memory, format_bytes, machine_memory

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import machine_info

    for line in machine_info():
        print(line)
    print(f"machine memory available now: {format_bytes(machine_memory())}; target: 60 minutes in <= 4 GiB")
    stft = SeparationSettings().stft
    with tempfile.TemporaryDirectory(prefix="demixer-scale-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for minutes in args.minutes:
            t0 = time.perf_counter()
            mix, score, n_notes = synthesise(minutes, folder)
            made = time.perf_counter() - t0
            est = estimate_memory(int(minutes * 60 * SR), SR, 2, stft)
            code, wall, cpu, peak, err = run_separate(mix, score, folder / f"out_{minutes:g}", args.iters)
            rows.append((minutes, n_notes, peak, est, wall, cpu, code))
            print(f"  {minutes:g} min: synthesised in {made:.0f} s; exit {code}; {err.strip()[:300]}", flush=True)
            for p in (mix, score):
                if args.keep is None:
                    p.unlink()
    print()
    header = ("minutes", "notes", "peak RSS", "estimate", "est/peak", "wall s", "CPU s")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (8, 7, 10, 10, 8, 8, 8), strict=True)) + " exit")
    for minutes, n_notes, peak, est, wall, cpu, code in rows:
        print(
            f"{minutes:8g} {n_notes:7d} {format_bytes(peak):>10} {format_bytes(est):>10} {est / peak:8.2f} "
            f"{wall:8.1f} {cpu:8.1f} {code:4d}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
