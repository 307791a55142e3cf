"""Constraint-aware and accelerated NMF (demixer.core.nmf_sparse) against dense MU and the GEMM bound.

For score-informed problems (the dev pieces with their scores, default analysis and initialisation, and
60 s pieces made by tiling them), this script measures in one run, on one BLAS thread, CPU time, best
of the repeats:

* the dense GEMM bound of 100 iterations (bench_nmf.py's ``bound_euclidean`` / ``bound_kl``: just the
  matrix products of a dense iteration, into preallocated outputs);
* the time each method needs to reach the loss that dense Euclidean (or KL) MU reaches after 100
  iterations from the same start (relative tolerance 1e-5; set-up included): Demixer's dense MU,
  the constraint-aware MU, the accelerated constraint-aware MU (Euclidean) and scikit-learn's MU (dense,
  from the masked start: zeros stay zeros under MU; it has no per-iteration loss, so its row is 100
  iterations and its final loss relative to the target);
* the SDR of the dev pieces separated with the dense and the constraint-aware path (mir_eval BSS Eval
  v3, as benchmarks/bench_quality.py), for KL (the pipeline's default model) and Euclidean;
* time per iteration and peak memory (tracemalloc) for 1, 3 and 10-minute pieces with R = 176;
* an unconstrained problem (bench_nmf.py's synthetic piano, random start, no masks): "auto" must pick
  the dense kernel, within 1.1× of the GEMM bound;
* with --calibrate: measured against predicted time per iteration of the cost model in nmf_sparse.

    python benchmarks/bench_nmf_sparse.py [--repeats 3] [--quick] [--skip sdr,scaling,unconstrained]
                                          [--calibrate]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import best_cpu_time, machine_info, peak_extra_bytes  # noqa: E402
from bench_nmf import bound_euclidean, bound_kl, sklearn_nmf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dev"
DEV = ("chorale_bwv255", "chorale_bwv273", "chorale_bwv296", "piano_mozart_k545", "piano_joplin_maple_leaf")
#: pieces tiled into the R ≈ 176 problems: their groups are kept apart (prefixed), so R = 60 + 66 + 50
MIX3 = ("chorale_bwv255", "chorale_bwv273", "piano_mozart_k545")
REACH_RTOL = 1e-5  # "reached the target loss": loss ≤ target × (1 + 1e-5)
TARGET_TO_BOUND = 0.35  # score-informed runs reach the dense-100 loss in ≤ 0.35 × the 100-iteration bound
TARGET_SDR = 0.1  # dB: constraint-aware SDR not lower than dense by more than this
TARGET_UNCONSTRAINED = 1.1  # unconstrained runs (auto → dense) within 1.1 × the bound
TARGET_MEM = 2 * 1024**3


# ----------------------------------------------------------------------------------------- problems
@dataclass
class Problem:
    name: str
    audio: object
    notes: list
    V: np.ndarray = None
    init: object = None

    def build(self):
        from demixer.engine.separation import analyse, initialise

        analysis = analyse(self.audio)
        self.analysis = analysis
        self.V = analysis.V
        self.init = initialise(self.notes, analysis)
        return self

    @property
    def shape(self) -> str:
        K, N = self.V.shape
        return f"{K}×{N}×{self.init.n_components}"


def load_piece(name: str, score: str = "score.csv"):
    from demixer.io.audio import read_audio
    from demixer.io.score import clip_notes, read_score

    audio = read_audio(DATA / name / "mixture.wav")
    notes, _, _ = clip_notes(read_score(DATA / name / score), audio.duration)
    return audio, notes


def tiled(names: tuple[str, ...], seconds: float, distinct_groups: bool):
    """The pieces' mixtures back to back (repeating the list) until ``seconds``; their scores shifted
    along. With ``distinct_groups`` each piece's groups get the piece's name as prefix, so their
    components stay apart (R = the sum of the pieces' R)."""
    from demixer.io.audio import Audio, to_mono

    loaded = [load_piece(n) for n in names]
    sr = loaded[0][0].sr
    target = int(round(seconds * sr))
    parts, notes, t, total, i = [], [], 0.0, 0, 0
    while total < target:
        name = names[i % len(names)]
        audio, piece_notes = loaded[i % len(names)]
        if audio.sr != sr:
            raise ValueError("the pieces must share one sample rate")
        x = to_mono(audio.samples)
        parts.append(x)
        for n in piece_notes:
            on, off = n.onset + t, min(n.offset + t, seconds)
            if on < seconds and off >= on:
                group = f"{name}:{n.group}" if distinct_groups else n.group
                notes.append(replace(n, onset=on, offset=off, group=group))
        t += len(x) / sr
        total += len(x)
        i += 1
    x = np.concatenate(parts)[:target]
    return Audio(x[None, :].astype(np.float32), sr), notes


def problems(quick: bool) -> list[Problem]:
    out = []
    for name in (DEV[:1] + DEV[3:4]) if quick else DEV:
        out.append(Problem(name, *load_piece(name)))
    if not quick:
        out.append(Problem("mozart ×3, 60 s", *tiled(("piano_mozart_k545",), 60.0, False)))
    out.append(Problem("3 pieces, 60 s", *tiled(MIX3, 60.0, True)))
    return [p.build() for p in out]


# ----------------------------------------------------------------------------------------- timing
def nmf_run(p: Problem, beta: float, method: str, accelerate: bool | None, n_iter: int, callback=None):
    from demixer.core.nmf import nmf

    i = p.init
    return nmf(p.V, i.W0, i.H0, beta=beta, n_iter=n_iter, allow_W=i.allow_W, allow_H=i.allow_H,
               method=method, accelerate=accelerate, callback=callback)


def time_to_target(p: Problem, beta: float, method: str, accelerate: bool | None, target: float,
                   repeats: int, max_iter: int = 400) -> tuple[float, int]:
    """Best CPU seconds (set-up included) to reach ``target``, and the iterations it took."""
    best, iters = float("inf"), -1
    for _ in range(repeats):
        hit = [0]

        def cb(state, hit=hit):
            if state.loss <= target * (1 + REACH_RTOL):
                hit[0] = state.iteration
                return False
            return None

        t0 = time.process_time()
        nmf_run(p, beta, method, accelerate, max_iter, cb)
        dt = time.process_time() - t0
        if hit[0] == 0:
            return float("nan"), -1
        if dt < best:
            best, iters = dt, hit[0]
    return best, iters


def bound_100(p: Problem, beta: float, repeats: int) -> float:
    K, N = p.V.shape
    R = p.init.n_components
    rng = np.random.default_rng(0)
    W = rng.random((K, R), dtype=np.float32) + 0.1
    H = rng.random((R, N), dtype=np.float32) + 0.1
    fn = bound_euclidean if beta == 2.0 else bound_kl
    return best_cpu_time(fn(p.V, W, H, 100), repeats)


def time_to_loss(probs: list[Problem], repeats: int) -> list[dict]:
    from demixer.core import nmf_sparse
    from demixer.core.nmf import _eps_for, beta_divergence

    rows = []
    for p in probs:
        for beta, label in ((2.0, "Euclidean"), (1.0, "KL")):
            print(f"  {p.name} {label} ...", file=sys.stderr, flush=True)
            bound = bound_100(p, beta, repeats)
            t_dense_100 = float("inf")
            dense = None
            for _ in range(repeats):
                t0 = time.process_time()
                dense = nmf_run(p, beta, "dense", None, 100)
                t_dense_100 = min(t_dense_100, time.process_time() - t0)
            target = float(dense.losses[-1])
            auto, plan = nmf_sparse.choose_method(p.init.H0, p.V.shape[0], beta)
            forced = plan or nmf_sparse.plan_blocks(p.init.H0 != 0, p.V.shape[0], beta)
            row = {"problem": p.name, "shape": p.shape, "loss": label, "bound": bound, "target": target,
                   "auto": auto, "plan": forced.describe(), "dense100": t_dense_100}
            row["dense"] = time_to_target(p, beta, "dense", None, target, repeats)
            row["sparse"] = time_to_target(p, beta, "sparse", None, target, repeats)
            if beta == 2.0:
                row["sparse+acc"] = time_to_target(p, beta, "sparse", True, target, repeats)
                row["dense+acc"] = time_to_target(p, beta, "dense", True, target, repeats)
            W0 = np.where(p.init.allow_W, p.init.W0, 0).astype(np.float32)
            H0 = np.where(p.init.allow_H, p.init.H0, 0).astype(np.float32)
            sk = sklearn_nmf(p.V, W0, H0, 100, "frobenius" if beta == 2.0 else "kullback-leibler")
            t_sk = best_cpu_time(sk, repeats)
            Wk, Hk = sk()
            model = Wk.astype(np.float64) @ Hk.astype(np.float64)
            if beta == 1.0:  # the model Demixer's KL loss measures: W·H + ε (frames no note covers have W·H = 0)
                model += _eps_for(p.V)
            sk_loss = beta_divergence(p.V, model, beta)
            row["sklearn100"] = (t_sk, sk_loss / target)
            rows.append(row)
    return rows


def _f(v, spec):
    return "—" if v is None or not np.isfinite(v) else format(v, spec)


def print_time_to_loss(rows: list[dict]) -> bool:
    print("\nTime to reach the loss of 100 dense MU iterations (CPU s, one thread, set-up included), and as a"
          "\nfraction of the dense GEMM bound for 100 iterations measured in the same run; [iterations]")
    head = (f"{'problem':22s}{'K×N×R':>14s} {'loss':9s}{'bound100':>9s} {'dense MU':>17s} {'constraint-aware':>19s}"
            f" {'c-a + accel':>18s} {'dense + accel':>18s} {'sklearn 100 it':>22s}")
    print(head)
    print("-" * len(head))
    ok = True
    for r in rows:
        b = r["bound"]

        def cell(key, width, r=r, b=b):
            if key not in r:
                return f"{'':>{width}s}"
            t, it = r[key]
            return f"{_f(t, '.3f'):>6s} {_f(t / b, '.2f'):>5s}× [{it:3d}]".rjust(width)

        t_sk, rel = r["sklearn100"]
        print(f"{r['problem']:22s}{r['shape']:>14s} {r['loss']:9s}{b:9.3f} {cell('dense', 17)} "
              f"{cell('sparse', 19)} {cell('sparse+acc', 18)} {cell('dense+acc', 18)} "
              f"{t_sk:6.3f} {t_sk / b:4.2f}× loss {rel:6.4f}")
    print("\nblock plans (auto's choice; 'support' = nonzeros of the masked H, 'compact' = the padded blocks):")
    seen = set()
    for r in rows:
        key = (r["problem"], r["loss"])
        if key not in seen:
            seen.add(key)
            print(f"  {r['problem']:22s} {r['loss']:9s} auto → {r['auto']:6s} {r['plan']}")
    print(f"\nTarget: score-informed runs reach the dense-100 loss in ≤ {TARGET_TO_BOUND}× the 100-iteration GEMM "
          "bound (60 s piece, R ≈ 176; the R = 50 piece for information):")
    for r in rows:
        if "60 s" not in r["problem"]:
            continue
        best_key = min((k for k in ("sparse", "sparse+acc") if k in r),
                       key=lambda k: r[k][0] if np.isfinite(r[k][0]) else np.inf)
        ratio = r[best_key][0] / r["bound"]
        counts = int(r["shape"].split("×")[-1]) >= 150
        good = ratio <= TARGET_TO_BOUND
        if counts:
            ok &= good
        verdict = ("PASS" if good else "MISS") if counts else "(info)"
        print(f"  {r['problem']:22s} {r['shape']:>14s} {r['loss']:9s} best = {best_key:10s} {ratio:.3f}× "
              f"{verdict:6s}  (dense MU 100 it: {r['dense100'] / r['bound']:.2f}×)")
    return ok


# ----------------------------------------------------------------------------------------- SDR
def sdr_table(quick: bool) -> bool:
    import mir_eval

    from demixer.engine.separation import analyse, initialise, stems
    from demixer.io.audio import read_audio, to_mono

    print("\nSDR (dB, mir_eval BSS Eval v3, mean over the piece's sources) after 100 iterations from the score's"
          "\ninitialisation (analyse/initialise defaults, one joint fit); dense vs constraint-aware (c-a) path;"
          "\naccelerated c-a: 100 outer iterations, and stopped at the loss of 100 dense iterations (@loss):")
    head = (f"{'piece':26s}{'KL dense':>10s}{'KL c-a':>9s}{'Δ':>7s}{'Euc dense':>11s}{'Euc c-a':>9s}{'Δ':>7s}"
            f"{'accel 100':>11s}{'Δ':>7s}{'accel @loss':>13s}{'Δ':>7s}")
    print(head)
    print("-" * len(head))
    ok = True
    deltas = []
    for name in (DEV[:1] + DEV[3:4]) if quick else DEV:
        audio, notes = load_piece(name)
        analysis = analyse(audio)
        init = initialise(notes, analysis)
        stem_files = sorted((DATA / name / "stems").glob("*.wav"))
        refs = {f.stem: to_mono(read_audio(f).samples) for f in stem_files}
        p = Problem(name, audio, notes, analysis.V, init)
        vals = {}
        target = [float("nan")]

        def stop_at_target(state, target=target):
            return None if state.loss > target[0] * (1 + REACH_RTOL) else False

        for key, beta, method, acc in (("kl_d", 1.0, "dense", None), ("kl_s", 1.0, "sparse", None),
                                       ("eu_d", 2.0, "dense", None), ("eu_s", 2.0, "sparse", None),
                                       ("eu_a", 2.0, "sparse", True), ("eu_t", 2.0, "sparse", True)):
            res = nmf_run(p, beta, method, acc, 100, stop_at_target if key == "eu_t" else None)
            if key == "eu_d":
                target[0] = float(res.losses[-1])
            out = stems(audio, analysis, res.W, res.H, init.components, init.sources)
            names = [n for n in refs if n in out]
            length = min(min(len(refs[n]) for n in names), min(out[n].shape[-1] for n in names))
            Rf = np.stack([refs[n][:length] for n in names]).astype(np.float64)
            Ef = np.stack([to_mono(out[n])[:length] for n in names]).astype(np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sdr = mir_eval.separation.bss_eval_sources(Rf, Ef, compute_permutation=False)[0]
            vals[key] = float(np.mean(sdr))
        d_kl, d_eu, d_ac = vals["kl_s"] - vals["kl_d"], vals["eu_s"] - vals["eu_d"], vals["eu_a"] - vals["eu_d"]
        d_at = vals["eu_t"] - vals["eu_d"]
        deltas.append((d_kl, d_eu))
        ok &= d_kl >= -TARGET_SDR and d_eu >= -TARGET_SDR
        print(f"{name:26s}{vals['kl_d']:10.3f}{vals['kl_s']:9.3f}{d_kl:+7.3f}{vals['eu_d']:11.3f}{vals['eu_s']:9.3f}"
              f"{d_eu:+7.3f}{vals['eu_a']:11.3f}{d_ac:+7.3f}{vals['eu_t']:13.3f}{d_at:+7.3f}")
    worst = min(min(d) for d in deltas)
    print(f"Target: constraint-aware SDR not lower than dense by more than {TARGET_SDR} dB: worst Δ {worst:+.3f} dB "
          f"{'PASS' if ok else 'MISS'}")
    ok &= pipeline_sdr(quick)
    return ok


def _mean_sdr(refs: dict, out: dict) -> float:
    import mir_eval

    from demixer.io.audio import to_mono

    names = [n for n in refs if n in out]
    length = min(min(len(refs[n]) for n in names), min(out[n].shape[-1] for n in names))
    Rf = np.stack([refs[n][:length] for n in names]).astype(np.float64)
    Ef = np.stack([to_mono(out[n])[:length] for n in names]).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.mean(mir_eval.separation.bss_eval_sources(Rf, Ef, compute_permutation=False)[0]))


def pipeline_sdr(quick: bool) -> bool:
    """What `demixer separate` runs (separate_audio, default SeparationSettings), with nmf's method="auto"
    (the default: constraint-aware here) against the dense kernels forced."""
    from demixer.core import nmf_sparse
    from demixer.engine.separation import separate_audio
    from demixer.io.audio import read_audio, to_mono

    print("\nSDR of the whole pipeline (separate_audio, default SeparationSettings: what `demixer separate` runs),"
          "\nnmf's default method='auto' against the dense kernels forced; CPU s of the call (one thread):")
    head = f"{'piece':26s}{'dense':>9s}{'auto':>9s}{'Δ dB':>8s}{'CPU dense':>11s}{'CPU auto':>10s}"
    print(head)
    print("-" * len(head))
    ok = True
    original = nmf_sparse.choose_method
    for name in (DEV[:1] + DEV[3:4]) if quick else DEV:
        audio, notes = load_piece(name)
        refs = {f.stem: to_mono(read_audio(f).samples) for f in sorted((DATA / name / "stems").glob("*.wav"))}
        vals, cpu = {}, {}
        for key in ("dense", "auto"):
            if key == "dense":
                nmf_sparse.choose_method = lambda H, K, beta: ("dense", None)
            try:
                t0 = time.process_time()
                out = separate_audio(audio, notes)[0]
                cpu[key] = time.process_time() - t0
            finally:
                nmf_sparse.choose_method = original
            vals[key] = _mean_sdr(refs, out)
        d = vals["auto"] - vals["dense"]
        ok &= d >= -TARGET_SDR
        print(f"{name:26s}{vals['dense']:9.3f}{vals['auto']:9.3f}{d:+8.3f}{cpu['dense']:11.2f}{cpu['auto']:10.2f}")
    verdict = "PASS" if ok else "MISS"
    print(f"Target: pipeline SDR with auto not lower than dense by more than {TARGET_SDR} dB: {verdict}")
    return ok


# ----------------------------------------------------------------------------------------- scaling
def scaling(repeats: int, quick: bool) -> bool:
    print("\nScaling with the piece's length (R = 176: the three pieces tiled with distinct groups), one thread;"
          "\nms per iteration (median of 10 after set-up, best of the repeats), set-up ms, peak extra memory:")
    head = (f"{'minutes':>8s}{'N':>8s}{'R':>5s} {'loss':9s}{'method':>8s}{'ms/iter':>10s}{'ns/iter/frame':>15s}"
            f"{'set-up ms':>11s}{'peak MiB':>10s}{'× V':>6s}")
    print(head)
    print("-" * len(head))
    ok = True
    per_frame: dict = {}
    for minutes in ((1, 3) if quick else (1, 3, 10)):
        p = Problem(f"{minutes} min", *tiled(MIX3, 60.0 * minutes, True)).build()
        K, N = p.V.shape
        R = p.init.n_components
        for beta, label in ((2.0, "Euclidean"), (1.0, "KL")):
            for method in ("sparse", "dense"):
                if method == "dense" and minutes == 10 and quick:
                    continue
                best_iter, best_setup = float("inf"), float("inf")
                for _ in range(max(1, min(repeats, 2))):
                    stamps = []
                    t0 = time.process_time()
                    nmf_run(p, beta, method, None, 10, lambda s, st=stamps: st.append(time.process_time()))
                    best_setup = min(best_setup, stamps[0] - t0 - (stamps[2] - stamps[1]))
                    best_iter = min(best_iter, float(np.median(np.diff(stamps))))
                mem = peak_extra_bytes(lambda p=p, beta=beta, method=method: nmf_run(p, beta, method, None, 2))
                per_frame.setdefault((label, method), []).append(best_iter / N * 1e6)
                good = mem <= TARGET_MEM
                ok &= good
                print(f"{minutes:8d}{N:8d}{R:5d} {label:9s}{method:>8s}{best_iter * 1e3:10.2f}"
                      f"{best_iter / N * 1e9:15.3f}{best_setup * 1e3:11.1f}{mem / 2**20:10.1f}"
                      f"{mem / p.V.nbytes:6.2f}")
    for (label, method), v in per_frame.items():
        spread = max(v) / min(v)
        print(f"  {label:9s} {method:7s}: time per iteration per frame varies ×{spread:.2f} over the lengths "
              f"({'linear' if spread <= 1.3 else 'NOT linear'})")
        if method == "sparse":
            ok &= spread <= 1.3
    print(f"Target: peak memory ≤ {TARGET_MEM / 2**30:.0f} GiB and time per iteration linear in N: "
          f"{'PASS' if ok else 'MISS'}")
    return ok


# ----------------------------------------------------------------------------------------- unconstrained
def unconstrained(repeats: int, quick: bool) -> bool:
    from bench_nmf import make_problem

    from demixer.core import nmf_sparse
    from demixer.core.nmf import nmf

    V, W, H = make_problem(20.0 if quick else 60.0)
    print(f"\nUnconstrained (bench_nmf.py's synthetic piano, random start, no masks, {V.shape[0]}×{V.shape[1]}×"
          f"{W.shape[1]}), 100 iterations:")
    ok = True
    for beta, label, bound_fn in ((2.0, "Euclidean", bound_euclidean), (1.0, "KL", bound_kl)):
        choice = nmf_sparse.choose_method(H, V.shape[0], beta)[0]
        bound_run = bound_fn(V, W, H, 100)
        best = {"bound": np.inf, "auto": np.inf, "dense": np.inf}
        for _ in range(repeats):  # interleaved, so that the three see the same load
            best["bound"] = min(best["bound"], best_cpu_time(bound_run, 1))
            for m in ("auto", "dense"):
                best[m] = min(best[m], best_cpu_time(lambda m=m, beta=beta: nmf(V, W, H, beta=beta, n_iter=100,
                                                                                 method=m), 1))
        b, t, d = best["bound"], best["auto"], best["dense"]
        line = (f"  {label:9s} auto → {choice:6s} auto {t:6.3f} s  dense {d:6.3f} s  bound {b:6.3f} s   "
                f"auto/bound {t / b:5.3f}  dense/bound {d / b:5.3f}  auto/dense {t / d:5.3f}")
        if beta == 2.0:
            good = choice == "dense" and t / b <= TARGET_UNCONSTRAINED
            ok &= good
            line += f"   target auto ≤ {TARGET_UNCONSTRAINED}× bound, auto = dense: {'PASS' if good else 'MISS'}"
        else:
            good = choice == "dense"
            ok &= good
            line += "   auto = dense: " + ("PASS" if good else "MISS")
        print(line)
    return ok


# ----------------------------------------------------------------------------------------- calibration
def calibrate(probs: list[Problem]) -> None:
    from demixer.core import nmf_sparse

    print("\nCost model: measured (median ms per iteration) vs predicted, per block length:")
    for p in probs:
        K = p.V.shape[0]
        for beta in (2.0, 1.0):
            meas = {}
            for method, L in (("dense", None), ("sparse", 16), ("sparse", 24), ("sparse", 32)):
                orig = nmf_sparse.plan_blocks
                if L:
                    nmf_sparse.plan_blocks = lambda s, K_, b, block_length=None, L=L, orig=orig: orig(s, K_, b, L)
                try:
                    st = []
                    nmf_run(p, beta, method, None, 12, lambda s, st=st: st.append(time.process_time()))
                    meas[L] = float(np.median(np.diff(st))) * 1e3
                finally:
                    nmf_sparse.plan_blocks = orig
            pd = nmf_sparse.plan_blocks(p.init.H0 != 0, K, beta)
            line = (f"  {p.name:22s} β={beta:.0f} dense {meas[None]:6.2f} (pred {pd.cost_dense * 1e3:6.2f})"
                    f"  auto L={pd.L}")
            for L in (16, 24, 32):
                pl = nmf_sparse.plan_blocks(p.init.H0 != 0, K, beta, L)
                line += f" | L{L} {meas[L]:6.2f} (pred {pl.cost_sparse * 1e3:6.2f})"
            print(line)


# ----------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="two dev pieces and the 60 s R=176 piece; 1 repeat")
    ap.add_argument("--skip", default="", help="comma-separated: time,sdr,scaling,unconstrained")
    ap.add_argument("--calibrate", action="store_true", help="also print the cost model's predictions")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"bench_nmf_sparse: {DATA} not found", file=sys.stderr)
        return 2
    repeats = 1 if args.quick else args.repeats
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    for line in machine_info():
        print(line)
    ok = True
    with threadpool_limits(1):
        probs = problems(args.quick)
        if "time" not in skip:
            ok &= print_time_to_loss(time_to_loss(probs, repeats))
        if args.calibrate:
            calibrate(probs)
        if "unconstrained" not in skip:
            ok &= unconstrained(repeats, args.quick)
        if "sdr" not in skip:
            ok &= sdr_table(args.quick)
        if "scaling" not in skip:
            ok &= scaling(repeats, args.quick)
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
