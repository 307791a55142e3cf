"""Speed and memory of Demixer's NMF / NAE iterations against the dense GEMM bound and scikit-learn.

DESIGN.md §2.6: one Euclidean MU iteration costs 4KNR + 4R²(K+N) flops when W·H is never formed, KL
about 8KNR plus a few K × N elementwise passes, the NAE about 10KNR. This script times, in one run on
the same V (K = 1025 bins, N ≈ 2600 frames for 60 s, R = 176):

* the GEMM bound of each method: just the matrix products one iteration needs, into preallocated outputs;
* Demixer's ``nmf`` (β = 2 and β = 1) and ``nae`` (MU), which report the loss after every iteration;
* scikit-learn's ``NMF(solver="mu")`` from the same initial W, H (it computes no loss with tol = 0).

Everything runs on one BLAS thread in float32; times are CPU time of the process, best of the repeats.
Peak memory is measured in a separate run with tracemalloc (numpy reports its buffers to it).

When a target is missed (or with --breakdown) it prints where the time goes: the CPU time of each
iteration along a real run, the share of subnormal floats in the final factors, and each step of the
kernels replayed alone at the initial and at the final state. (Multiplicative updates shrink unused
entries of W and H geometrically; once entries or their products are subnormal, SGEMM on x86 runs many
times slower, so the time per iteration can grow along the run.)

    python benchmarks/bench_nmf.py [--seconds 60] [--iters 100] [--repeats 3] [--quick] [--breakdown]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import best_cpu_time, machine_info, peak_extra_bytes  # noqa: E402

SR = 22050
N_FFT = 2048
HOP = 512
R = 176

# Targets (the speed issue): Demixer NMF within 1.1× of the dense GEMM bound, no slower than
# scikit-learn on the same loss, and peak extra memory at most 4 × V.
TARGET_BOUND = 1.1
TARGET_SKLEARN = 1.0
TARGET_MEM = 4.0


# ----------------------------------------------------------------------------------------- the data
def synth_piano(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """A piano-like mono signal: random chords of 1–3 notes (MIDI 40–90), about 2.5 chords a second,
    each note a sum of slightly inharmonic partials with 1/m amplitudes, higher partials decaying faster,
    a damper release, a short hammer noise, and a little background noise. float32, peak 0.9."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    x = np.zeros(n)
    t = 0.0
    while True:
        t += rng.exponential(1 / 2.5)
        if t >= seconds:
            break
        for pitch in rng.choice(np.arange(40, 91), size=rng.integers(1, 4), replace=False):
            _add_note(
                x,
                sr,
                onset=t,
                pitch=int(pitch),
                held=rng.uniform(0.2, 1.5),
                vel=rng.uniform(0.3, 1.0),
                rng=rng,
            )
    x += 1e-3 * rng.standard_normal(n)
    x *= 0.9 / np.max(np.abs(x))
    return x.astype(np.float32)


def _add_note(x, sr, onset, pitch, held, vel, rng, release=0.15, max_partials=24):
    f0 = 440.0 * 2.0 ** ((pitch - 69) / 12)
    i0 = int(onset * sr)
    length = min(int((held + release * 3) * sr), len(x) - i0)
    if length <= 0:
        return
    tt = np.arange(length) / sr
    m = np.arange(1, max_partials + 1)
    fm = m * f0 * np.sqrt(1 + 1e-4 * m**2)  # piano-string inharmonicity
    keep = fm < 0.45 * sr
    m, fm = m[keep], fm[keep]
    tau1 = 1.5 * 2.0 ** (-(pitch - 40) / 24)  # low notes ring longer
    tau = tau1 / (1 + 0.4 * (m - 1))  # ... and high partials die faster
    env = np.exp(-tt[None, :] / tau[:, None])
    damper = np.where(tt < held, 1.0, np.exp(-(tt - held) / (release / 3)))
    attack = np.minimum(tt / 0.003, 1.0)
    phase = 2 * np.pi * fm[:, None] * tt[None, :] + rng.uniform(0, 2 * np.pi, len(m))[:, None]
    note = (vel / m) @ (env * np.sin(phase))
    hammer = 0.05 * vel * rng.standard_normal(length) * np.exp(-tt / 0.01)
    x[i0 : i0 + length] += (note + hammer) * damper * attack


def make_problem(seconds: float):
    from demixer.core.nmf import random_init
    from demixer.core.stft import magnitude, stft

    x = synth_piano(seconds)
    V = np.ascontiguousarray(magnitude(stft(x, N_FFT, HOP)), dtype=np.float32)
    W, H = random_init(V, R, rng=0)
    return V, W, H


# ----------------------------------------------------------------------------------------- the rows
@dataclass
class Row:
    name: str
    kind: str  # "bound", "demixer" or "sklearn"
    loss: str  # "euc", "kl" or "nae"
    flops: float  # nominal flops of one iteration of this method
    run: Callable[[], object]  # runs all the iterations once
    ms: float = float("nan")
    mem: float = float("nan")  # peak extra bytes / V.nbytes
    result: object = None
    notes: list[str] = field(default_factory=list)


def flops_of(loss: str, K: int, N: int, R: int) -> float:
    if loss == "euc":
        return 4.0 * K * N * R + 4.0 * R * R * (K + N)
    if loss == "kl":
        return 8.0 * K * N * R
    return 10.0 * K * N * R + 4.0 * R * R * (K + N)


def bound_euclidean(V, W, H, iters):
    """The GEMMs of one Euclidean iteration (Gram form, W·H never formed) into preallocated outputs."""
    K, N = V.shape
    R = W.shape[1]
    WtV, WtWH = np.empty((R, N), V.dtype), np.empty((R, N), V.dtype)
    VHt, WHHt = np.empty((K, R), V.dtype), np.empty((K, R), V.dtype)
    WtW, HHt = np.empty((R, R), V.dtype), np.empty((R, R), V.dtype)

    def run():
        for _ in range(iters):
            np.matmul(W.T, V, out=WtV)  # 2KNR
            np.matmul(W.T, W, out=WtW)  # 2KR²
            np.matmul(WtW, H, out=WtWH)  # 2R²N
            np.matmul(H, H.T, out=HHt)  # 2NR²
            np.matmul(V, H.T, out=VHt)  # 2KNR
            np.matmul(W, HHt, out=WHHt)  # 2KR²

    return run


def bound_kl(V, W, H, iters):
    """The four K × N × R GEMMs of one KL iteration into preallocated outputs."""
    K, N = V.shape
    R = W.shape[1]
    Y = np.empty((K, N), V.dtype)
    RN, KR = np.empty((R, N), V.dtype), np.empty((K, R), V.dtype)

    def run():
        for _ in range(iters):
            np.matmul(W, H, out=Y)  # W·H for the H update
            np.matmul(W.T, Y, out=RN)  # Wᵀ (V ⊘ WH)
            np.matmul(W, H, out=Y)  # W·H again after H changed
            np.matmul(Y, H.T, out=KR)  # (V ⊘ WH) Hᵀ

    return run


def bound_nae(V, W, H, iters):
    """The GEMMs of one NAE MU iteration: five K × N × R ones and four small Gram ones."""
    K, N = V.shape
    R = W.shape[1]
    W_D = W
    W_E = np.ascontiguousarray(W.T)
    Hp, A, B = (np.empty((R, N), V.dtype) for _ in range(3))
    P, denD = np.empty((K, R), V.dtype), np.empty((K, R), V.dtype)
    numE, denE = np.empty((R, K), V.dtype), np.empty((R, K), V.dtype)
    G, D = np.empty((R, R), V.dtype), np.empty((R, R), V.dtype)
    np.matmul(H, H.T, out=G)

    def run():
        for _ in range(iters):
            np.matmul(W_D, G, out=denD)  # 2KR²
            np.matmul(W_D.T, W_D, out=D)  # 2KR²
            np.matmul(W_D.T, V, out=A)  # 2KNR
            np.matmul(D, H, out=B)  # 2R²N
            np.matmul(A, V.T, out=numE)  # 2KNR
            np.matmul(B, V.T, out=denE)  # 2KNR
            np.matmul(W_E, V, out=Hp)  # 2KNR
            np.matmul(V, Hp.T, out=P)  # 2KNR
            np.matmul(Hp, Hp.T, out=G)  # 2NR²

    return run


def demixer_nmf(V, W, H, iters, beta):
    from demixer.core.nmf import nmf

    return lambda: nmf(V, W, H, beta=beta, n_iter=iters)


def demixer_nae(V, W, iters):
    from demixer.core.nae import nae

    return lambda: nae(V, W, n_iter=iters, method="mu")


def sklearn_nmf(V, W, H, iters, beta_loss):
    from sklearn.decomposition import NMF

    def run():
        model = NMF(
            n_components=W.shape[1],
            solver="mu",
            beta_loss=beta_loss,
            init="custom",
            max_iter=iters,
            tol=0,
            alpha_W=0,
            alpha_H=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W_out = model.fit_transform(V, W=W.copy(), H=H.copy())  # MU updates W and H in place
        if model.n_iter_ != iters:
            raise RuntimeError(f"scikit-learn ran {model.n_iter_} iterations, not {iters}")
        return W_out, model.components_

    return run


def build_rows(V, W, H, iters) -> list[Row]:
    K, N = V.shape
    R = W.shape[1]
    euc, kl, nae_ = (flops_of(k, K, N, R) for k in ("euc", "kl", "nae"))
    return [
        Row("GEMM bound, Euclidean", "bound", "euc", euc, bound_euclidean(V, W, H, iters)),
        Row("GEMM bound, KL", "bound", "kl", kl, bound_kl(V, W, H, iters)),
        Row("GEMM bound, NAE MU", "bound", "nae", nae_, bound_nae(V, W, H, iters)),
        Row("Demixer nmf, Euclidean", "demixer", "euc", euc, demixer_nmf(V, W, H, iters, 2.0)),
        Row("Demixer nmf, KL", "demixer", "kl", kl, demixer_nmf(V, W, H, iters, 1.0)),
        Row("Demixer nae, MU", "demixer", "nae", nae_, demixer_nae(V, W, iters)),
        Row("scikit-learn, Euclidean *", "sklearn", "euc", euc, sklearn_nmf(V, W, H, iters, "frobenius")),
        Row("scikit-learn, KL *", "sklearn", "kl", kl, sklearn_nmf(V, W, H, iters, "kullback-leibler")),
    ]


def measure(rows: list[Row], V, iters: int, repeats: int) -> None:
    """Time every row (best of ``repeats``), then measure its peak memory in a separate call."""
    for row in rows:
        print(f"  timing {row.name} ...", file=sys.stderr, flush=True)
        row.ms = best_cpu_time(row.run, repeats) / iters * 1e3
    for row in rows:
        if row.kind == "bound":
            continue  # preallocated outputs, nothing allocated during the call
        print(f"  memory {row.name} ...", file=sys.stderr, flush=True)
        box: dict = {}
        row.mem = peak_extra_bytes(lambda row=row, box=box: box.setdefault("r", row.run())) / V.nbytes
        row.result = box["r"]


# ----------------------------------------------------------------------------------------- reporting
def _fmt(v: float, spec: str) -> str:
    return "—" if v is None or not np.isfinite(v) else format(v, spec)


def print_table(rows: list[Row]) -> None:
    bound = {r.loss: r for r in rows if r.kind == "bound"}
    sk = {r.loss: r for r in rows if r.kind == "sklearn"}
    head = f"{'':28s}{'ms/iter':>9s}{'GFLOP/s':>9s}{'× bound':>9s}{'× sklearn':>11s}{'peak mem':>10s}"
    print(head)
    print(f"{'':28s}{'':>9s}{'':>9s}{'':>9s}{'':>11s}{'× V':>10s}")
    print("-" * len(head))
    for r in rows:
        gflops = r.flops / (r.ms * 1e-3) / 1e9
        to_bound = r.ms / bound[r.loss].ms if r.kind != "bound" else float("nan")
        to_sk = r.ms / sk[r.loss].ms if r.kind != "bound" and r.loss in sk else float("nan")
        print(
            f"{r.name:28s}{r.ms:9.2f}{gflops:9.1f}{_fmt(to_bound, '9.3f'):>9s}{_fmt(to_sk, '11.3f'):>11s}"
            f"{_fmt(r.mem, '10.2f'):>10s}"
        )


def print_losses(rows: list[Row], V, W, H, iters: int) -> None:
    from demixer.core.nmf import beta_divergence

    by = {(r.kind, r.loss): r for r in rows}
    print(
        f"\nFinal loss after {iters} iterations from the same W, H (recomputed in float64 from the returned "
        "factors; Demixer's own reported value in brackets):"
    )
    for loss, beta, label in (("euc", 2, "Euclidean ‖V − WH‖²"), ("kl", 1, "KL D(V ‖ WH)")):
        dm, sk = by[("demixer", loss)].result, by[("sklearn", loss)].result
        d = beta_divergence(V, dm.W @ dm.H, beta)
        s = beta_divergence(V, sk[0] @ sk[1], beta)
        init = beta_divergence(V, W @ H, beta)
        print(
            f"  {label:22s} initial {init:.5g}   Demixer {d:.5g} [{dm.losses[-1]:.5g}]   "
            f"scikit-learn {s:.5g}   Demixer / sklearn {d / s:.4f}"
        )
        sub_d, sub_s = 100 * subnormal_share(dm.W, dm.H), 100 * subnormal_share(*sk)
        print(f"  {'':22s} subnormals in the final W, H: Demixer {sub_d:.2f} %  scikit-learn {sub_s:.2f} %")
    r = by[("demixer", "nae")].result
    d = beta_divergence(V, r.W_D @ r.H, 2)
    print(
        f"  {'NAE ‖V − W_D H′‖²':22s} initial {r.initial_loss:.5g}   Demixer {d:.5g} [{r.losses[-1]:.5g}]"
        "   (no scikit-learn counterpart)"
    )
    print(
        f"  {'':22s} subnormal entries in the final W_D, W_E, H′: "
        f"{100 * subnormal_share(r.W_D, r.W_E, r.H):.2f} %"
    )


def check_targets(rows: list[Row]) -> bool:
    """Prints PASS/MISS per Demixer row; returns True when every target is met."""
    bound = {r.loss: r for r in rows if r.kind == "bound"}
    sk = {r.loss: r for r in rows if r.kind == "sklearn"}
    ok = True
    print(
        f"\nTargets: Demixer NMF ≤ {TARGET_BOUND}× GEMM bound and ≤ {TARGET_SKLEARN}× scikit-learn "
        f"(same loss); peak extra memory ≤ {TARGET_MEM}× V"
    )
    for r in rows:
        if r.kind != "demixer":
            continue
        checks = []
        if r.loss in ("euc", "kl"):
            checks.append((f"≤ {TARGET_BOUND}× bound", r.ms / bound[r.loss].ms, TARGET_BOUND))
            checks.append((f"≤ {TARGET_SKLEARN}× sklearn", r.ms / sk[r.loss].ms, TARGET_SKLEARN))
        checks.append((f"mem ≤ {TARGET_MEM}× V", r.mem, TARGET_MEM))
        parts = []
        for label, value, limit in checks:
            good = value <= limit
            ok &= good
            parts.append(f"{label}: {value:.3f} {'PASS' if good else 'MISS'}")
        print(f"  {r.name:24s} " + "   ".join(parts))
    return ok


# ----------------------------------------------------------------------------------------- breakdown
def subnormal_share(*arrays) -> float:
    """Fraction of entries that are subnormal floats (0 < |a| < smallest normal)."""
    n = sub = 0
    for a in arrays:
        tiny = np.finfo(a.dtype).tiny
        sub += int(np.count_nonzero((a != 0) & (np.abs(a) < tiny)))
        n += a.size
    return sub / max(n, 1)


def along_the_run(call) -> np.ndarray:
    """CPU ms of each iteration of ``call(callback)`` (iteration 1 includes the call's set-up)."""
    stamps = [time.process_time()]
    call(lambda state: stamps.append(time.process_time()))
    return np.diff(stamps) * 1e3


def euclidean_steps(V, W, H, eps):
    """The steps of demixer.core.nmf._euclidean at state (W, H), outputs preallocated."""
    K, N = V.shape
    R = W.shape[1]
    dt = V.dtype
    W, H = W.copy(), H.copy()
    WtV, den_H, s_RN = (np.empty((R, N), dt) for _ in range(3))
    VHt, den_W, s_KR = (np.empty((K, R), dt) for _ in range(3))
    HHt, WtW = H @ H.T, W.T @ W
    np.matmul(W.T, V, out=WtV)
    np.matmul(V, H.T, out=VHt)
    return [
        ("WᵀV", "GEMM K×N×R", lambda: np.matmul(W.T, V, out=WtV)),
        ("(WᵀW)H", "GEMM small", lambda: np.matmul(WtW, H, out=den_H)),
        ("den_H += ε  (R×N)", "elementwise", lambda: np.add(den_H, eps, out=den_H)),
        ("WᵀV ⊘ den_H  (R×N)", "elementwise", lambda: np.divide(WtV, den_H, out=s_RN)),
        ("H ⊙ ratio  (R×N)", "elementwise", lambda: np.multiply(H, s_RN, out=den_H)),
        ("HHᵀ", "GEMM small", lambda: np.matmul(H, H.T, out=HHt)),
        ("VHᵀ", "GEMM K×N×R", lambda: np.matmul(V, H.T, out=VHt)),
        ("W(HHᵀ)", "GEMM small", lambda: np.matmul(W, HHt, out=den_W)),
        ("den_W += ε  (K×R)", "elementwise", lambda: np.add(den_W, eps, out=den_W)),
        ("VHᵀ ⊘ den_W  (K×R)", "elementwise", lambda: np.divide(VHt, den_W, out=s_KR)),
        ("W ⊙ ratio  (K×R)", "elementwise", lambda: np.multiply(W, s_KR, out=den_W)),
        ("WᵀW", "GEMM small", lambda: np.matmul(W.T, W, out=WtW)),
        ("loss ⟨W, VHᵀ⟩ (einsum, float64)", "loss", lambda: np.einsum("kr,kr->", W, VHt, dtype=np.float64)),
        (
            "loss ⟨WᵀW, HHᵀ⟩ (einsum, float64)",
            "loss",
            lambda: np.einsum("rs,rs->", WtW, HHt, dtype=np.float64),
        ),
    ]


def kl_steps(V, W, H, eps):
    """The steps of demixer.core.nmf._kl at state (W, H), outputs preallocated."""
    K, N = V.shape
    R = W.shape[1]
    dt = V.dtype
    W, H = W.copy(), H.copy()
    ratio, tmp = np.empty((K, N), dt), np.empty((K, N), dt)
    logbuf = np.empty((64, N), dt)
    tiny = np.finfo(dt).tiny
    numH, s_RN = np.empty((R, N), dt), np.empty((R, N), dt)
    numW, s_KR = np.empty((K, R), dt), np.empty((K, R), dt)
    np.matmul(W, H, out=ratio)
    ratio += eps
    np.divide(V, ratio, out=ratio)

    def log_dot():
        acc = 0.0
        for k0 in range(0, K, 64):
            k1 = min(K, k0 + 64)
            b = logbuf[: k1 - k0]
            np.maximum(ratio[k0:k1], tiny, out=b)  # floored like V, as the kernel does
            np.log(b, out=b)
            acc += float(np.dot(V[k0:k1].ravel(), b.ravel()))
        return acc

    return [
        ("Wᵀ ratio", "GEMM K×N×R", lambda: np.matmul(W.T, ratio, out=numH)),
        (
            "⊘ (Wᵀ1 + ε), H ⊙ numH  (R×N)",
            "elementwise",
            lambda: (
                np.divide(numH, (W.sum(axis=0) + eps)[:, None], out=s_RN),
                np.multiply(H, s_RN, out=s_RN),
            ),
        ),
        ("W·H → tmp", "GEMM K×N×R", lambda: np.matmul(W, H, out=tmp)),
        ("tmp += ε  (K×N)", "elementwise K×N", lambda: np.add(tmp, eps, out=tmp)),
        ("V ⊘ tmp  (K×N)", "elementwise K×N", lambda: np.divide(V, tmp, out=tmp)),
        ("tmp Hᵀ", "GEMM K×N×R", lambda: np.matmul(tmp, H.T, out=numW)),
        (
            "⊘ (1Hᵀ + ε), W ⊙ numW  (K×R)",
            "elementwise",
            lambda: (np.divide(numW, H.sum(axis=1) + eps, out=s_KR), np.multiply(W, s_KR, out=s_KR)),
        ),
        ("W·H → ratio", "GEMM K×N×R", lambda: np.matmul(W, H, out=ratio)),
        ("ratio += ε  (K×N)", "elementwise K×N", lambda: np.add(ratio, eps, out=ratio)),
        ("V ⊘ ratio  (K×N)", "elementwise K×N", lambda: np.divide(V, ratio, out=ratio)),
        ("loss Σ V log max(ratio, tiny)  (K×N)", "loss K×N", log_dot),
        (
            "loss ΣWH from column and row sums",
            "loss",
            lambda: np.dot(W.sum(axis=0, dtype=np.float64), H.sum(axis=1, dtype=np.float64)),
        ),
    ]


def nae_mu_steps(V, W_D, W_E, Hp, eps):
    """The steps of demixer.core.nae._mu at state (W_D, W_E, H′), outputs preallocated."""
    K, N = V.shape
    R = W_D.shape[1]
    dt = V.dtype
    W_D, W_E, Hp = W_D.copy(), W_E.copy(), Hp.copy()
    A, B, s_RN = (np.empty((R, N), dt) for _ in range(3))
    P, denD, s_KR = (np.empty((K, R), dt) for _ in range(3))
    numE, denE, s_RK = (np.empty((R, K), dt) for _ in range(3))
    G, D = Hp @ Hp.T, W_D.T @ W_D
    np.matmul(V, Hp.T, out=P)
    np.matmul(W_D, G, out=denD)
    return [
        ("W_D G", "GEMM small", lambda: np.matmul(W_D, G, out=denD)),
        (
            "+ ε, P ⊘ den, W_D ⊙  (K×R)",
            "elementwise",
            lambda: (
                np.add(denD, eps, out=s_KR),
                np.divide(P, s_KR, out=s_KR),
                np.multiply(W_D, s_KR, out=s_KR),
            ),
        ),
        ("W_Dᵀ W_D", "GEMM small", lambda: np.matmul(W_D.T, W_D, out=D)),
        ("W_Dᵀ V", "GEMM K×N×R", lambda: np.matmul(W_D.T, V, out=A)),
        ("D H′", "GEMM small", lambda: np.matmul(D, Hp, out=B)),
        ("A Vᵀ", "GEMM K×N×R", lambda: np.matmul(A, V.T, out=numE)),
        ("B Vᵀ", "GEMM K×N×R", lambda: np.matmul(B, V.T, out=denE)),
        (
            "+ ε, num ⊘ den, W_E ⊙  (R×K)",
            "elementwise",
            lambda: (
                np.add(denE, eps, out=s_RK),
                np.divide(numE, s_RK, out=s_RK),
                np.multiply(W_E, s_RK, out=s_RK),
            ),
        ),
        ("W_E V", "GEMM K×N×R", lambda: np.matmul(W_E, V, out=s_RN)),
        ("max(·, 0)  (R×N)", "elementwise", lambda: np.maximum(s_RN, 0, out=s_RN)),
        ("V H′ᵀ", "GEMM K×N×R", lambda: np.matmul(V, Hp.T, out=P)),
        ("H′ H′ᵀ", "GEMM small", lambda: np.matmul(Hp, Hp.T, out=G)),
        (
            "loss (two einsums, float64)",
            "loss",
            lambda: (
                np.einsum("kr,kr->", W_D, P, dtype=np.float64) + np.einsum("rs,rs->", D, G, dtype=np.float64)
            ),
        ),
    ]


def replay(steps, reps: int, repeats: int) -> list[float]:
    """ms of each step, alone, best of ``repeats`` loops of ``reps`` calls."""
    out = []
    for _, _, fn in steps:

        def loop(fn=fn):
            for _ in range(reps):
                fn()

        out.append(best_cpu_time(loop, repeats) / reps * 1e3)
    return out


def breakdown(V, W, H, iters: int, repeats: int, rows: list[Row]) -> None:
    """Where the time of a Demixer iteration goes.

    1. Along the run: CPU ms of each iteration of a real call (callback time stamps).
    2. Each step of the kernel replayed alone at these shapes, at the initial state and at the final state
       the timed run ended in, so a step that gets slower as the factors evolve shows up.
    """
    from demixer.core.nae import init_encoder, nae
    from demixer.core.nmf import _eps_for, nmf

    K, N = V.shape
    eps = _eps_for(V)
    reps = max(3, min(iters, 10))
    by = {(r.kind, r.loss): r for r in rows}
    print(
        f"\nBreakdown ({K}×{N}, R = {W.shape[1]}); each step replayed alone, best of {repeats} × {reps} calls"
    )

    cases = []
    for loss, beta, title in (("euc", 2.0, "Demixer nmf, Euclidean"), ("kl", 1.0, "Demixer nmf, KL")):
        res = by[("demixer", loss)].result
        make = euclidean_steps if loss == "euc" else kl_steps
        cases.append(
            (
                title,
                loss,
                make(V, W, H, eps),
                make(V, res.W, res.H, eps),
                lambda cb, beta=beta: nmf(V, W, H, beta=beta, n_iter=iters, callback=cb),
                lambda beta=beta: nmf(V, W, H, beta=beta, n_iter=0),
                (res.W, res.H),
            )
        )
    res = by[("demixer", "nae")].result
    W_E0 = init_encoder(W)
    Hp0 = np.maximum(W_E0 @ V, 0)
    cases.append(
        (
            "Demixer nae, MU",
            "nae",
            nae_mu_steps(V, W, W_E0, Hp0, eps),
            nae_mu_steps(V, res.W_D, res.W_E, res.H, eps),
            lambda cb: nae(V, W, n_iter=iters, method="mu", callback=cb),
            lambda: nae(V, W, n_iter=0, method="mu"),
            (res.W_D, res.W_E, res.H),
        )
    )

    for title, loss, steps0, steps1, call, call0, final in cases:
        print(f"\n{title}")
        per_it = along_the_run(call)
        q = max(1, len(per_it) // 10)
        mid = len(per_it) // 2
        print(
            f"  along the run (ms per iteration): iterations 1–{q}: {per_it[:q].mean():.2f}   "
            f"{mid + 1}–{mid + q}: {per_it[mid : mid + q].mean():.2f}   "
            f"{len(per_it) - q + 1}–{len(per_it)}: {per_it[-q:].mean():.2f}   (whole run {per_it.mean():.2f})"
        )
        print(
            f"  subnormal entries in the final factors: {100 * subnormal_share(*final):.2f} %  "
            f"(initial: {100 * subnormal_share(W, H):.2f} %)"
        )
        t0 = replay(steps0, reps, repeats)
        t1 = replay(steps1, reps, repeats)
        print(f"    {'step':42s} {'kind':16s} {'at init':>9s} {'at end':>9s}")
        groups: dict[str, list[float]] = {}
        for (label, group, _), a, b in zip(steps0, t0, t1, strict=True):
            print(f"    {label:42s} {group:16s} {a:9.3f} {b:9.3f}")
            g = groups.setdefault(group, [0.0, 0.0])
            g[0] += a
            g[1] += b
        for group, (a, b) in groups.items():
            print(f"      {'total ' + group:40s} {'':16s} {a:9.3f} {b:9.3f}")
        fixed = best_cpu_time(call0, repeats) * 1e3
        print(f"    {'sum of the steps':42s} {'':16s} {sum(t0):9.3f} {sum(t1):9.3f}")
        print(
            f"    {'one-time cost of a call / ' + str(iters):42s} {'':16s} {fixed / iters:9.3f}"
            f"   ({fixed:.1f} ms per call)"
        )
        print(
            f"    {'measured (table), for comparison':42s} {'':16s} {by[('demixer', loss)].ms:9.3f}"
            f"   (GEMM bound {by[('bound', loss)].ms:.3f})"
        )


# ----------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the synthetic piece (default 60)")
    ap.add_argument("--iters", type=int, default=100, help="iterations per run (default 100)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per row, the best is kept (default 3)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 s, 20 iterations, 1 repeat")
    ap.add_argument(
        "--breakdown",
        action="store_true",
        help="always print the step-by-step breakdown (printed anyway when a target is missed)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.iters, args.repeats = 10.0, 20, 1

    import sklearn

    V, W, H = make_problem(args.seconds)
    K, N = V.shape
    print("Demixer NMF / NAE speed benchmark (DESIGN.md §2.6)")
    for line in machine_info():
        print("  " + line)
    print(f"  scikit-learn {sklearn.__version__}; all rows run under threadpool_limits(1), float32")
    print(
        f"\nV: {args.seconds:g} s synthetic piano, {SR} Hz, n_fft {N_FFT}, hop {HOP} → K = {K}, N = {N}, "
        f"R = {R}; V is {V.nbytes / 2**20:.1f} MiB"
    )
    print(
        f"{args.iters} iterations per run, best of {args.repeats} run(s), "
        "CPU time of the process / iterations\n"
    )

    with threadpool_limits(1):
        rows = build_rows(V, W, H, args.iters)
        measure(rows, V, args.iters, args.repeats)
        print_table(rows)
        print(
            "\nGFLOP/s = the method's nominal flops per iteration (Euclidean 4KNR + 4R²(K+N), KL 8KNR, "
            "NAE 10KNR + 4R²(K+N)) / time."
        )
        print(
            "Demixer reports the loss after every iteration; * scikit-learn with tol = 0 computes none "
            "(only ‖V − WH‖ once before and once after the run)."
        )
        print(
            "Each run includes its one-time costs (validation, copies, initial and final loss), spread over "
            "the iterations.\nPeak memory: tracemalloc, a separate run, results included; bounds use "
            "preallocated outputs."
        )
        print_losses(rows, V, W, H, args.iters)
        ok = check_targets(rows)
        if args.breakdown or not ok:
            breakdown(V, W, H, args.iters, args.repeats, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
