"""A painted constraint survives the staged fit: SDR with a painted zero against the unpainted fit.

For every dev piece (score.csv, default settings): take the pitch component with the most notes and
paint its activation to zero between two of its notes (the longest gap, 50 ms inside each note's end
and start: the score's tolerances allow part of that gap, so it is a real edit). Then fit through the
one entry point (engine.fit.Fit) three ways and print the mean SDR (BSS Eval v3, as bench_quality):

    unpainted        the staged fit of the score (what `demixer separate` runs)
    painted staged   the staged fit with the painted zero intersected into every stage (now)
    painted joint    one joint fit from the score's state with the painted masks (before: any edit
                     turned the staged fit off)

and checks that H is exactly 0 in the painted block after the fit.

    python benchmarks/bench_painted.py [--pieces chorale_bwv255,...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import DEFAULT_DATA, _bss  # noqa: E402


def run_piece(piece: Path) -> dict:
    from demixer.engine.fit import Fit, FitState
    from demixer.engine.separation import SeparationSettings, analyse, initialise, stems
    from demixer.io.audio import read_audio, to_mono
    from demixer.io.score import clip_notes, read_score

    settings = SeparationSettings()
    audio = read_audio(piece / "mixture.wav")
    notes, _, _ = clip_notes(read_score(piece / "score.csv"), audio.duration)
    analysis = analyse(audio, settings.stft, settings.compress)
    init = initialise(notes, analysis, settings.score)
    names = sorted(p.stem for p in (piece / "stems").glob("*.wav"))
    refs = [to_mono(read_audio(piece / "stems" / f"{n}.wav").samples) for n in names]

    counts = {}
    for n in init.notes:
        counts.setdefault((n.group, n.pitch), []).append(n)
    (group, pitch), own = max(counts.items(), key=lambda kv: len(kv[1]))
    r = next(i for i, c in enumerate(init.components) if (c.kind, c.pitch, c.source) == ("pitch", pitch, group))
    own = sorted(own, key=lambda n: n.onset)
    gaps = [(a.offset + 0.05, b.onset - 0.05) for a, b in zip(own, own[1:], strict=False) if b.onset - a.offset > 0.2]
    t0, t1 = max(gaps, key=lambda g: g[1] - g[0])
    frames = np.flatnonzero((analysis.times >= t0) & (analysis.times <= t1))
    edited = int(init.allow_H[r, frames].sum())
    allow_H = init.allow_H.copy()
    allow_H[r, frames] = False

    def sdr(mode: str, allow) -> tuple[float, bool]:
        state = FitState(init.W0, init.H0, init.allow_W, allow, list(init.components))
        fit = Fit(analysis, init.notes, settings, state, mode)
        fit.run()
        W, H = fit.result.W, fit.result.H
        out = stems(audio, analysis, W, H, init.components, init.sources, settings.alpha)
        ests = [to_mono(out[n]) if n in out else np.zeros_like(x) for n, x in zip(names, refs, strict=True)]
        s, _, _ = _bss(refs, ests)
        return float(np.mean(s)), bool(not H[r, frames].any())

    base, _ = sdr("staged", init.allow_H)
    staged, zero_s = sdr("staged", allow_H)
    joint, zero_j = sdr("warm", allow_H)
    return {"piece": piece.name, "component": f"{group} {pitch}", "span": (t0, t1), "edited": edited,
            "base": base, "staged": staged, "joint": joint, "zero": zero_s and zero_j}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--pieces", default="")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    pieces = sorted(p for p in args.data.iterdir() if (p / "score.csv").is_file())
    if args.pieces:
        pieces = [p for p in pieces if p.name in args.pieces.split(",")]
    print(f"{'piece':<26}{'painted':<16}{'span s':>13}{'edited':>7}{'unpainted':>10}{'staged':>8}"
          f"{'Δ':>7}{'joint':>8}{'Δ':>7}  H=0")
    ok = True
    with threadpool_limits(1, user_api="blas"):
        for piece in pieces:
            r = run_piece(piece)
            d_s, d_j = r["staged"] - r["base"], r["joint"] - r["base"]
            span = f"{r['span'][0]:.2f}–{r['span'][1]:.2f}"
            print(f"{r['piece']:<26}{r['component']:<16}{span:>13}{r['edited']:>7}{r['base']:10.2f}"
                  f"{r['staged']:8.2f}{d_s:+7.2f}{r['joint']:8.2f}{d_j:+7.2f}  {'yes' if r['zero'] else 'NO'}")
            ok &= r["zero"] and abs(d_s) <= 0.3
    print("PASS: painted zeros exact, staged within 0.3 dB of unpainted" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
