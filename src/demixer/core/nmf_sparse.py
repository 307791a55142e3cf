"""Constraint-aware NMF kernels: multiplicative updates that skip the zeros of H (DESIGN.md §2.2, §2.6).

Score-informed constraints make H mostly zeros: a pitch component may be active only during its notes,
often in < 10 % of the frames. Multiplicative updates keep a zero at zero, so the products that only
feed zeros need not be computed. This module computes the rest with small dense GEMMs:

* **Frame blocks.** The frames are cut into blocks of ``L`` consecutive frames (16, 24 or 32, chosen
  per run by the cost model below). Block ``b`` keeps the union ``act_b`` of the components whose H
  row is nonzero somewhere in the block. H lives in a *compact* layout ``Hs[b] = H[act_b, block b]``
  (``a_b × L``); W, V and the Gram matrices stay dense. The structure is computed once per run from the
  support of the starting H (which only shrinks under multiplicative updates).
* **Buckets.** Blocks are grouped by their number of active components into at most a few buckets;
  within a bucket every block is padded to the same width ``A`` (padding rows are exactly 0 and stay
  0), so each step is one *batched* ``np.matmul`` over the bucket (numpy loops over the blocks in C)
  instead of one Python call per block. The number of numpy calls per iteration does not grow with N.
* **Products.** For the blocks of a bucket, with ``Wg[b] = W[:, act_b]ᵀ`` (gathered rows of Wᵀ) and
  ``Vts[b] = V[:, block b]ᵀ`` (stored once, frame-major)::

      (WᵀV)[act_b, b]        = Wg[b] @ Vts[b]ᵀ                  2·K·L·A flops instead of 2·K·L·R
      ((WᵀW)H)[act_b, b]     = (WᵀW)[act_b][:, act_b] @ Hs[b]
      V Hᵀ (as H Vᵀ, R × K)  = Σ_b  S_b (Hs[b] @ Vts[b])          S: a sparse 0/1 row selection
      H Hᵀ                   = Σ_b  scatter(Hs[b] @ Hs[b]ᵀ)
      (W H)[:, b]ᵀ (KL)      = Hs[b]ᵀ @ Wg[b]

  The Euclidean loss uses the trace identity ‖V‖² − 2⟨W, VHᵀ⟩ + ⟨WᵀW, HHᵀ⟩ (W·H is never formed).
  KL forms W·H per block over the active components only, with ε folded into the same GEMM (one more
  slot per block whose H is 1 and whose template is ε). The ratio V ⊘ (WH + ε), the products that use
  it and its log for the loss run chunk by chunk (a few blocks at a time, so a chunk stays in the L2
  cache): two passes per iteration (after the H update, for the W update; after the W update, for the
  loss and the next H update's numerator), and no K × N buffer is kept.
* **Exactness.** Without acceleration the kernels perform the same updates as the dense kernels of
  :mod:`demixer.core.nmf` (same order, same ε, same flush of tiny entries, same loss formulas); only the
  summation order inside the products differs, so W, H and the losses agree to float rounding
  (tests/core/test_nmf_sparse.py: ~1e-10 relative in float64, ~1e-4 in float32 after 100 iterations).
* **Accelerated MU** (Gillis & Glineur, Neural Computation 24(4), 2012), Euclidean only: per outer
  iteration the products WᵀV, WᵀW (for H) and VHᵀ, HHᵀ (for W) are computed once and reused by several
  inner updates, which cost only the small Gram products. The inner loop stops after
  ``⌊1 + α·ρ⌋`` updates (ρ = 1 + cost(products) / cost(inner update), from the cost model, α = 2) or as
  soon as ‖ΔH‖ < δ·‖ΔH of the first inner update‖ (δ = 0.1). Each inner update is an ordinary MU step,
  so zeros stay zero and the loss does not increase; the loss is reported once per outer iteration.
  KL has no such reuse: its numerator Wᵀ(V ⊘ WH) depends on H through W·H, so every inner update
  would cost as much as the products (a K × N ratio and two K × N × A GEMMs).

The cost model (``_COST``) was measured on the project's 2-core machine, one BLAS thread, float32; it
picks the block length and buckets, decides ``method="auto"`` and sets ρ. It depends on the structure
only (not on timings taken at run time), so runs are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["BlockPlan", "plan_blocks", "dense_plan", "choose_method", "constraint_aware", "sparse_euclidean",
           "sparse_kl", "METHODS", "DEFAULT_ALPHA", "DEFAULT_DELTA"]

METHODS = ("auto", "dense", "sparse")

DEFAULT_ALPHA = 2.0  # Gillis & Glineur: at most ⌊1 + α ρ⌋ inner updates
DEFAULT_DELTA = 0.1  # ... and stop when an update moves less than δ × the first one
FLUSH_EVERY = 5  # same schedule as demixer.core.nmf (iterations 1, 6, 11, …)

_BLOCK_LENGTHS = (16, 24, 32)  # longer blocks measured slower: their unions of active components grow
_MAX_BUCKETS = 4
_CHUNK_BYTES = 3 << 17  # KL: blocks per chunk so that one chunk of K × L ratios is ~384 KiB (L2: 2 MiB)
#: KL: the gathered templates and the products for the W numerator are held for at most this many bytes
#: each (a long recording's would be ~0.9 × V each); beyond it they are made per segment of chunks
_SEGMENT_BYTES = 48 << 20
_AUTO_MARGIN = 0.8  # method="auto" takes the sparse path when it is predicted to cost < 0.8 × dense
_LN2 = float(np.log(2.0))


@dataclass(frozen=True)
class _CostModel:
    """Seconds per unit on one core (float32, OpenBLAS, numpy 2), fitted on the project's 2-core machine
    (benchmarks/bench_nmf_sparse.py --calibrate prints measured against predicted). Only ratios matter."""

    gemm_big: float = 1 / 150e9  # per flop, large GEMMs (K × N × R, R × R × K)
    gemm_euc: float = 1 / 72e9  # per flop, the batched block GEMMs of the Euclidean kernel (A × K × L)
    gemm_kl: float = 1 / 110e9  # per flop, those of the KL kernel (inner dimension A or L, output K × L)
    per_block: float = 1.5e-6  # per block and batched GEMM (BLAS call inside numpy's loop)
    per_call: float = 2.5e-6  # per numpy call
    copy: float = 0.22e-9  # per element gathered / reduced
    elementwise: float = 0.25e-9  # per element of an in-cache elementwise pass
    scatter: float = 4e-9  # per nonzero of H written back to the dense H
    kl_pass: float = 0.95e-9  # per element of K × L of a block: two ratio passes, log2 and dot
    dense_euc_kn: float = 1.0e-9  # per K × N element of a dense Euclidean iteration, beyond the GEMMs
    dense_kl_kn: float = 2.7e-9  # per K × N element of a dense KL iteration, beyond the GEMMs


_COST = _CostModel()


# ----------------------------------------------------------------------------------------- structure
@dataclass
class _Bucket:
    blocks: np.ndarray  # (nb,) block numbers
    idx: np.ndarray  # (nb, A) component of each slot, -1 = padding
    A: int
    L: int

    @property
    def nb(self) -> int:
        return len(self.blocks)


@dataclass
class BlockPlan:
    """The block structure of one run: block length ``L``, buckets, and the predicted cost per iteration
    (seconds on one core) of the constraint-aware and dense kernels."""

    L: int
    K: int
    N: int
    R: int
    beta: float
    buckets: list[_Bucket]
    support_nnz: int  # nonzero entries of the starting H
    cost_sparse: float = float("nan")
    cost_dense: float = float("nan")

    @property
    def rows(self) -> int:
        """Padded rows (block, slot) over all buckets."""
        return sum(b.nb * b.A for b in self.buckets)

    @property
    def compact_density(self) -> float:
        """Entries of the compact layout (with padding) relative to R × N."""
        return self.rows * self.L / max(self.R * self.N, 1)

    def describe(self) -> str:
        nb = sum(b.nb for b in self.buckets)
        widths = "/".join(str(b.A) for b in self.buckets)
        return (f"L={self.L}, {nb} blocks in {len(self.buckets)} buckets (A={widths}), "
                f"support {self.support_nnz / max(self.R * self.N, 1):.1%}, compact {self.compact_density:.1%}")


def _block_counts(support: np.ndarray, L: int) -> np.ndarray:
    """Active components per block of L frames: (n_blocks,) int."""
    R, N = support.shape
    nb = -(-N // L)
    if nb * L == N:
        return support.reshape(R, nb, L).any(axis=2).sum(axis=0)
    out = np.empty(nb, dtype=np.int64)
    out[:-1] = support[:, : (nb - 1) * L].reshape(R, nb - 1, L).any(axis=2).sum(axis=0)
    out[-1] = support[:, (nb - 1) * L :].any(axis=1).sum()
    return out


def _cost_per_row(K: int, L: int, R: int, beta: float) -> tuple[float, float, float]:
    """(seconds per padded row, per padded row and slot (the A² terms), per block) of one iteration."""
    c = _COST
    if beta == 2.0:
        row = 2 * 2 * K * L * c.gemm_euc + 2 * K * c.copy + 6 * L * c.elementwise
        a2 = 2 * 2 * L * c.gemm_euc
        blk = 4 * c.per_block
    else:
        row = 4 * 2 * K * L * c.gemm_kl + 2 * K * c.copy + 4 * L * c.elementwise
        a2 = 0.0
        blk = 6 * c.per_block + K * L * c.kl_pass
    return row, a2, blk


def _buckets_for(counts: np.ndarray, cost_row: float, cost_a2: float, cost_bucket: float):
    """Split blocks (by their active counts) into ≤ _MAX_BUCKETS groups of equal padded width,
    minimising Σ nb·A·cost_row + nb·A²·cost_a2 + cost_bucket. Returns (cost, list of (lo, hi] widths)."""
    vals, freq = np.unique(counts[counts > 0], return_counts=True)
    if vals.size == 0:
        return 0.0, []
    cum = np.concatenate([[0], np.cumsum(freq)])
    U = vals.size
    # cost of a bucket holding unique values i..j-1 (padded to vals[j-1])
    i = np.arange(U)[:, None]
    j = np.arange(1, U + 1)[None, :]
    n = cum[j] - cum[i]
    a = vals[np.minimum(j - 1, U - 1)]
    seg = np.where(j > i, n * (a * cost_row + a * a * cost_a2) + cost_bucket, np.inf)
    best = np.full((_MAX_BUCKETS + 1, U + 1), np.inf)
    arg = np.zeros((_MAX_BUCKETS + 1, U + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for k in range(1, _MAX_BUCKETS + 1):
        tot = best[k - 1, :U][:, None] + seg  # (start i, end j)
        arg[k, 1:] = np.argmin(tot, axis=0)
        best[k, 1:] = tot[arg[k, 1:], np.arange(U)]
    k = int(np.argmin(best[:, U]))
    cost = float(best[k, U])
    cuts = []
    jj = U
    while k > 0:
        ii = int(arg[k, jj])
        cuts.append((vals[ii - 1] if ii > 0 else 0, vals[jj - 1]))
        jj, k = ii, k - 1
    return cost, cuts[::-1]


def _dense_cost(K: int, N: int, R: int, beta: float) -> float:
    c = _COST
    if beta == 2.0:
        return (4.0 * K * N * R + 4.0 * R * R * (K + N)) * c.gemm_big + K * N * c.dense_euc_kn
    return 8.0 * K * N * R * c.gemm_big + K * N * c.dense_kl_kn


def _fixed_cost(K: int, N: int, R: int, beta: float, nnz: int) -> float:
    """Per-iteration work of the sparse kernels that does not depend on the blocks (W side, loss)."""
    c = _COST
    if beta == 2.0:
        return 3.0 * R * R * K * c.gemm_big + 10 * R * K * c.elementwise + 40 * c.per_call + nnz * c.scatter
    return 8 * R * K * c.elementwise + 40 * c.per_call + nnz * c.scatter


def plan_blocks(support: np.ndarray, K: int, beta: float = 2.0, block_length: int | None = None) -> BlockPlan:
    """Choose the block length and buckets for the support (R × N bool) of H, by the cost model."""
    support = np.asarray(support, dtype=bool)
    R, N = support.shape
    c = _COST
    lengths = [block_length] if block_length else [L for L in _BLOCK_LENGTHS if L < N] or [N]
    best = None
    for L in lengths:
        counts = _block_counts(support, L)
        row, a2, blk = _cost_per_row(K, L, R, beta)
        per_bucket = (16 if beta == 2.0 else 10) * c.per_call
        cost, cuts = _buckets_for(counts, row, a2, per_bucket)
        n_active = int(np.count_nonzero(counts))
        cost += n_active * blk
        if beta != 2.0:
            n_chunks = max(1, n_active * K * L * 4 // _CHUNK_BYTES)
            cost += 2 * n_chunks * 7 * c.per_call
        if best is None or cost < best[0]:
            best = (cost, L, counts, cuts)
    cost, L, counts, cuts = best
    buckets = []
    for lo, hi in cuts:
        sel = np.flatnonzero((counts > lo) & (counts <= hi))
        if sel.size:
            buckets.append(_Bucket(blocks=sel, idx=np.empty((sel.size, int(hi)), np.int64), A=int(hi), L=L))
    nb_all = -(-N // L)
    padded = np.zeros((R, nb_all * L), bool)
    padded[:, :N] = support
    active = padded.reshape(R, nb_all, L).any(axis=2)  # (R, blocks)
    for bk in buckets:
        bk.idx.fill(-1)
        for i, b in enumerate(bk.blocks):
            act = np.flatnonzero(active[:, b])
            bk.idx[i, : act.size] = act
    plan = BlockPlan(L=L, K=K, N=N, R=R, beta=float(beta), buckets=buckets,
                     support_nnz=int(np.count_nonzero(support)))
    plan.cost_sparse = cost + _fixed_cost(K, N, R, beta, plan.support_nnz)
    plan.cost_dense = _dense_cost(K, N, R, beta)
    return plan


def choose_method(H: np.ndarray, K: int, beta: float) -> tuple[str, BlockPlan | None]:
    """``("sparse", plan)`` when the constraint-aware kernel is predicted to be clearly cheaper than the
    dense one for this H (R × N, masked), else ``("dense", None)``. Only β = 1 and β = 2 have one."""
    if beta not in (1.0, 2.0):
        return "dense", None
    support = H != 0
    R, N = support.shape
    nnz = int(np.count_nonzero(support))
    if nnz > 0.5 * R * N:  # a sparse kernel cannot win: its blocks would be nearly full
        return "dense", None
    plan = plan_blocks(support, K, beta)
    if plan.cost_sparse < _AUTO_MARGIN * plan.cost_dense:
        return "sparse", plan
    return "dense", None


# ----------------------------------------------------------------------------------------- the layout
class _Compact:
    """H in the compact block layout, plus V per block and the buffers of the batched products.

    Per bucket (``nb`` blocks of ``L`` frames, ``A`` slots): ``Hs`` (nb, A, L) the compact H, ``Wg``
    (nb, A, K) the gathered rows of Wᵀ, ``Vts`` (nb, L, K) V's frames, ``P`` (nb, A, K) = Hs Vtsᵀ-like
    products reduced by component with the sparse selection ``S``. Padding slots (idx −1) gather row 0
    of Wᵀ and hold H = 0, which multiplicative updates keep at 0.

    ``const_slot`` (KL): one extra slot per block with H = 1 and Wᵀ row = ε (``Wt_ext``'s last row), so
    the batched GEMM for W·H already adds ε; ``Hs``/``Wg`` are then views that leave that slot out.
    """

    def __init__(self, plan: BlockPlan, V: np.ndarray, H: np.ndarray, pad_value: float, want_Q: bool,
                 want_Y: bool, const_slot: bool = False, floor: float | None = None, max_rows: int | None = None):
        K, N = V.shape
        R, L = plan.R, plan.L
        dt = V.dtype
        self.plan, self.K, self.N, self.R, self.L = plan, K, N, R, L
        self.buckets = plan.buckets
        extra = 1 if const_slot else 0
        h_rows = sum(bk.nb * (bk.A + extra) for bk in self.buckets)
        p_rows = plan.rows
        # One block of all frames and all components in order (dense_plan): the compact H is H itself.
        self.identity = (not const_slot and L == N and len(self.buckets) == 1 and self.buckets[0].nb == 1
                         and self.buckets[0].A == R and np.array_equal(self.buckets[0].idx[0], np.arange(R)))
        self.Hflat = H.reshape(-1) if self.identity else np.zeros(h_rows * L, dt)
        # Segmented (max_rows): Wg and P are not held whole; the caller gathers and reduces per segment.
        self.segmented = max_rows is not None and max(h_rows, p_rows) > max_rows
        self.P_all = None if self.segmented else np.empty((p_rows, K), dt)
        self.Wg_all = None if self.segmented else np.empty((h_rows, K), dt)
        self.idx_all = np.empty(h_rows, np.int64)
        sel_rows, sel_comp = [], []
        src, tgt = [], []
        self.b = []  # per bucket: dict of views and buffers
        h_off = p_off = 0
        support = H != 0
        for bk in self.buckets:
            nb, A = bk.nb, bk.A
            Ae = A + extra
            h0, h1 = h_off, h_off + nb * Ae
            p0, p1 = p_off, p_off + nb * A
            d: dict = {"bk": bk, "nb": nb, "A": A, "h0": h0, "p0": p0}
            d["Hs_full"] = self.Hflat[h0 * L : h1 * L].reshape(nb, Ae, L)
            d["Hs"] = d["Hs_full"][:, :A, :]
            if not self.segmented:
                d["Wg_full"] = self.Wg_all[h0:h1].reshape(nb, Ae, K)
                d["Wg"] = d["Wg_full"][:, :A, :]
                d["P"] = self.P_all[p0:p1].reshape(nb, A, K)
            idx0 = np.where(bk.idx >= 0, bk.idx, 0)
            gather = np.full((nb, Ae), R, np.int64)  # the extra slot gathers row R (ε) of Wt_ext
            gather[:, :A] = idx0
            self.idx_all[h0:h1] = gather.ravel()
            d["idx0"] = idx0
            d["Num"] = np.empty((nb, A, L), dt)
            d["D"] = np.empty((nb, A, L), dt)
            d["old"] = np.empty((nb, A, L), dt)
            d["G"] = np.empty((nb, A, A), dt)
            d["gidx"] = (idx0[:, :, None] * R + idx0[:, None, :]).ravel()
            d["scale"] = np.empty((nb, A, 1), dt)
            valid = bk.idx >= 0
            if want_Q:
                d["Q"] = np.empty((nb, A, A), dt)
                both = valid[:, :, None] & valid[:, None, :]
                d["qidx"] = np.where(both, d["gidx"].reshape(nb, A, A), R * R).ravel()
            d["rsidx"] = np.where(valid, bk.idx, R).ravel()
            d["rs"] = np.empty((nb, A), dt)
            # V per block, frame-major (L × K), padded past the last frame
            Vts = np.full((nb, L, K), pad_value, dt)
            for i, b in enumerate(bk.blocks):
                f0, f1 = b * L, min((b + 1) * L, N)
                Vts[i, : f1 - f0] = V[:, f0:f1].T
                if floor is not None:  # max(V, floor) block by block: no floored copy of the whole V
                    np.maximum(Vts[i, : f1 - f0], floor, out=Vts[i, : f1 - f0])
            d["Vts"] = Vts
            # the valid rows, for the reduction of P and the transfer of H (only H's nonzeros move)
            ii, aa = np.nonzero(valid)
            comps = bk.idx[ii, aa]
            sel_rows.append(p0 + ii * A + aa)
            sel_comp.append(comps)
            if not self.identity:
                frames = bk.blocks[ii][:, None] * L + np.arange(L)[None, :]
                inside = frames < N
                inside &= support[comps[:, None], np.minimum(frames, N - 1)]
                src.append(((h0 + ii * Ae + aa)[:, None] * L + np.arange(L)[None, :])[inside])
                tgt.append((comps[:, None] * N + frames)[inside])
            self.b.append(d)
            h_off, p_off = h1, p1
        sel_rows = np.concatenate(sel_rows) if sel_rows else np.empty(0, np.int64)
        sel_comp = np.concatenate(sel_comp) if sel_comp else np.empty(0, np.int64)
        import scipy.sparse as sp  # 0.1–0.27 s of CPU to import (scipy's array-API layer): only when used

        self.S = sp.csr_matrix((np.ones(sel_rows.size, dt), (sel_comp, sel_rows)), shape=(R, p_rows))
        src = np.concatenate(src) if src else np.empty(0, np.int64)
        tgt = np.concatenate(tgt) if tgt else np.empty(0, np.int64)
        order = np.argsort(tgt, kind="stable")  # write the dense H in memory order
        self.src, self.tgt = src[order], tgt[order]
        self.hbuf = np.empty(self.src.size, dt)
        self.covered = np.zeros(N, bool)
        for bk in self.buckets:
            for b in bk.blocks:
                self.covered[b * L : (b + 1) * L] = True
        self.acc_RR = np.zeros(R * R + 1, dt)
        self.acc_R = np.zeros(R + 1, dt)
        self.const_slot = const_slot
        if want_Y:
            per_block = L * K
            self.chunk_blocks = max(1, _CHUNK_BYTES // (per_block * dt.itemsize))
            nmax = min(self.chunk_blocks, max((d["nb"] for d in self.b), default=1))
            self.Ybuf = np.empty(nmax * per_block, dt)
        self.load(H)

    # H transfer -----------------------------------------------------------------------------------
    def load(self, H: np.ndarray) -> None:
        if self.identity:
            return
        self.Hflat.fill(0)
        np.take(H.ravel(), self.tgt, out=self.hbuf, mode="clip")
        self.Hflat[self.src] = self.hbuf
        if self.const_slot:
            for d in self.b:
                d["Hs_full"][:, -1, :] = 1

    def store(self, H: np.ndarray) -> None:
        """Write the compact H into the dense H (entries outside the support are 0 and stay 0)."""
        if self.identity:
            return
        np.take(self.Hflat, self.src, out=self.hbuf, mode="clip")
        H.put(self.tgt, self.hbuf)

    # products -------------------------------------------------------------------------------------
    def gather_W(self, Wt: np.ndarray) -> None:
        if self.Wg_all is not None:  # (segmented: the caller gathers per segment)
            np.take(Wt, self.idx_all, axis=0, out=self.Wg_all, mode="clip")

    def gather_G(self, WtW: np.ndarray) -> None:
        flat = WtW.ravel()
        for d in self.b:
            np.take(flat, d["gidx"], out=d["G"].ravel(), mode="clip")

    def numerators(self) -> None:
        """Num = (WᵀV) restricted to the blocks (Wg must be current)."""
        for d in self.b:
            np.matmul(d["Wg"], d["Vts"].transpose(0, 2, 1), out=d["Num"])

    def reduce_P(self, out: np.ndarray) -> None:
        """out (R × K) = Σ over blocks of the valid rows of P, by component."""
        out[...] = self.S @ self.P_all

    def gram_H(self, out: np.ndarray) -> None:
        """out (R × R) = H Hᵀ from the blocks."""
        acc = self.acc_RR
        acc.fill(0)
        for d in self.b:
            Hs = d["Hs"]
            np.matmul(Hs, Hs.transpose(0, 2, 1), out=d["Q"])
            np.add.at(acc, d["qidx"], d["Q"].ravel())
        out[...] = acc[:-1].reshape(self.R, self.R)

    def row_sums(self, out: np.ndarray) -> None:
        """out (R,) = row sums of H (float32, like H.sum(axis=1))."""
        acc = self.acc_R
        acc.fill(0)
        for d in self.b:
            np.sum(d["Hs"], axis=2, out=d["rs"])
            np.add.at(acc, d["rsidx"], d["rs"].ravel())
        out[...] = acc[:-1]

    def hmax(self) -> float:
        if not self.const_slot:
            return float(self.Hflat.max()) if self.Hflat.size else 0.0
        return max((float(d["Hs"].max()) for d in self.b if d["Hs"].size), default=0.0)

    def flush(self, it: int, every: int) -> None:
        """demixer.core.nmf._flush_tiny on the compact H (same threshold: ε² × the max of all of H)."""
        if (it - 1) % every:
            return
        peak = self.hmax()
        if peak > 0:
            eps = float(np.finfo(self.Hflat.dtype).eps)
            thr = peak * eps * eps
            if not self.const_slot:
                np.putmask(self.Hflat, self.Hflat < thr, 0)
            else:
                for d in self.b:
                    np.copyto(d["Hs"], 0, where=d["Hs"] < thr)

    def scale_rows(self, n: np.ndarray) -> None:
        """H rows *= n (per component)."""
        for d in self.b:
            np.take(n, d["idx0"], out=d["scale"][:, :, 0], mode="clip")
            d["Hs"] *= d["scale"]


def _flush(M: np.ndarray, it: int, every: int) -> None:
    if (it - 1) % every:
        return
    eps = float(np.finfo(M.dtype).eps)
    peak = float(M.max()) if M.size else 0.0
    if peak > 0:
        np.putmask(M, M < peak * eps * eps, 0)


def _normalize_t(Wt: np.ndarray, cs: _Compact, how, lock) -> np.ndarray | None:
    """demixer.core.nmf._normalize on the transposed templates Wt (R × K) and the compact H."""
    if not how:
        return None
    from demixer.core.nmf import _template_scales  # here, not at the top: core.nmf imports this module

    n = _template_scales(Wt.T, how, lock)
    nf = n.astype(Wt.dtype)
    Wt /= nf[:, None]
    cs.scale_rows(nf)
    return n


def _inner_limits(plan: BlockPlan, K: int, R: int, alpha: float) -> tuple[int, int]:
    """Gillis & Glineur's ⌊1 + α ρ⌋ for the H and the W inner loops, ρ from the cost model."""
    c = _COST
    rows = plan.rows
    F = rows * plan.L
    nblk = sum(b.nb for b in plan.buckets)
    a2L = sum(b.nb * b.A * b.A * plan.L for b in plan.buckets)
    nbk = len(plan.buckets)
    prod_H = 2 * K * F * c.gemm_euc + rows * K * c.copy + nblk * c.per_block + 2 * nbk * c.per_call
    inner_H = 2 * a2L * c.gemm_euc + 5 * F * c.elementwise + nblk * c.per_block + 7 * nbk * c.per_call
    prod_W = (2 * K * F + 2 * a2L) * c.gemm_euc + 2 * rows * K * c.copy + 2 * nblk * c.per_block
    inner_W = 2 * R * R * K * c.gemm_big + 5 * R * K * c.elementwise + 7 * c.per_call
    rho_H = 1 + prod_H / inner_H
    rho_W = 1 + prod_W / inner_W
    return int(np.floor(1 + alpha * rho_H)), int(np.floor(1 + alpha * rho_W))


# ----------------------------------------------------------------------------------------- Euclidean
def sparse_euclidean(V, W, H, n_iter, update_W, update_H, lock, normalize, eps, plan: BlockPlan,
                     accelerate: bool = False, alpha: float = DEFAULT_ALPHA,
                     delta: float = DEFAULT_DELTA) -> Iterator[float]:
    """Euclidean MU on the blocks of ``plan``. Yields the initial loss, then the loss after each (outer)
    iteration; updates W and H (the run's dense arrays) in place before each yield."""
    K, N = V.shape
    R = W.shape[1]
    dt = V.dtype
    cs = _Compact(plan, V, H, 0.0, want_Q=True, want_Y=False)
    vnorm2 = float(np.einsum("kn,kn->", V, V, dtype=np.float64))
    Wt = np.ascontiguousarray(W.T)
    WtW = Wt @ Wt.T
    HHt = np.empty((R, R), dt)
    HVt = np.empty((R, K), dt)
    den = np.empty((R, K), dt)
    Wold = np.empty((R, K), dt) if accelerate else None
    lock_idx = np.flatnonzero(lock) if lock is not None else None
    W_locked = Wt[lock_idx].copy() if lock_idx is not None else None
    if accelerate:
        max_H, max_W = _inner_limits(plan, K, R, alpha)
        flush_every = 1
    else:
        max_H = max_W = 1
        flush_every = FLUSH_EVERY

    def cross_fixed() -> float:  # ⟨W, VHᵀ⟩ = ⟨WᵀV, H⟩ over the blocks
        return float(sum(np.einsum("bal,bal->", d["Num"], d["Hs"], dtype=np.float64) for d in cs.b))

    def loss(cross: float) -> float:
        gram = float(np.einsum("rs,rs->", WtW, HHt, dtype=np.float64))
        return max(vnorm2 - 2.0 * cross + gram, 0.0)

    # initial loss (and the products the first H update reuses)
    cs.gather_W(Wt)
    cs.numerators()
    cs.gram_H(HHt)
    yield loss(cross_fixed())
    num_current = True
    have_HVt = False

    for it in range(1, n_iter + 1):
        if update_H:
            if not num_current:
                cs.gather_W(Wt)
                cs.numerators()
            cs.gather_G(WtW)
            first = 0.0
            for j in range(max_H):
                change = 0.0
                for d in cs.b:
                    Hs, D = d["Hs"], d["D"]
                    np.matmul(d["G"], Hs, out=D)
                    D += eps
                    np.divide(d["Num"], D, out=D)
                    if max_H > 1:
                        np.copyto(d["old"], Hs)
                        Hs *= D
                        old = d["old"]
                        old -= Hs
                        change += float(np.dot(old.ravel(), old.ravel()))
                    else:
                        Hs *= D
                if j == 0:
                    first = change
                elif change < delta * delta * first:
                    break
            cs.flush(it, flush_every)
            if update_W:
                num_current = False
        if update_H:
            cs.gram_H(HHt)  # (with H fixed, the one from the initial loss stays valid)
        if update_W:
            if update_H or not have_HVt:
                for d in cs.b:
                    np.matmul(d["Hs"], d["Vts"], out=d["P"])
                cs.reduce_P(HVt)
                have_HVt = True
            first = 0.0
            for j in range(max_W):
                np.matmul(HHt.T, Wt, out=den)  # (W HHᵀ)ᵀ
                den += eps
                np.divide(HVt, den, out=den)
                if max_W > 1:
                    np.copyto(Wold, Wt)
                    Wt *= den
                    if W_locked is not None:
                        Wt[lock_idx] = W_locked
                    Wold -= Wt
                    change = float(np.dot(Wold.ravel(), Wold.ravel()))
                    if j == 0:
                        first = change
                    elif change < delta * delta * first:
                        break
                else:
                    Wt *= den
            _flush(Wt, it, flush_every)
            if W_locked is not None:
                Wt[lock_idx] = W_locked
            n = _normalize_t(Wt, cs, normalize, lock)
            if n is not None:
                nf = n.astype(dt)
                HVt *= nf[:, None]
                HHt *= nf[:, None] * nf[None, :]
            np.matmul(Wt, Wt.T, out=WtW)
            cross = float(np.einsum("rk,rk->", Wt, HVt, dtype=np.float64))
            np.copyto(W, Wt.T)
            num_current = False
        else:
            cross = cross_fixed()
        cs.store(H)
        yield loss(cross)


# ----------------------------------------------------------------------------------------- KL
def sparse_kl(V, W, H, n_iter, update_W, update_H, lock, normalize, eps, plan: BlockPlan,
              track_loss: bool = True) -> Iterator[float]:
    """KL MU on the blocks of ``plan``. Yields the initial loss, then the loss after each iteration.

    ``track_loss`` False: yields NaN instead of each loss and skips what only the loss needs (the log of
    every ratio, ~20 % of an iteration, and the last iteration's ratio pass): W and H are the same."""
    K, N = V.shape
    R = W.shape[1]
    dt = V.dtype
    tiny = np.finfo(dt).tiny
    # V is floored at tiny (zeros would make log(V/WH) −∞) where it is copied, block by block: no floored
    # copy of the whole V is held.
    floor = None if V.min() > 0 else float(tiny)
    if floor is None:
        sumV = float(V.sum(dtype=np.float64))
    else:
        step = max(1, (8 << 20) // (K * dt.itemsize))
        sumV = sum(float(np.maximum(V[:, i : i + step], tiny).sum(dtype=np.float64)) for i in range(0, N, step))
    seg_rows = max(1, _SEGMENT_BYTES // (K * dt.itemsize))
    cs = _Compact(plan, V, H, float(tiny), want_Q=False, want_Y=True, const_slot=True, floor=floor,
                  max_rows=seg_rows)
    Wt_ext = np.empty((R + 1, K), dt)  # Wᵀ and a last row of ε: the blocks' GEMMs then give W·H + ε
    Wt = Wt_ext[:R]
    Wt[...] = W.T
    Wt_ext[R] = eps
    numW = np.empty((R, K), dt)
    colsum = np.empty(R, dt)
    rowsum = np.empty(R, dt)
    rowsum_eps = np.empty(R, dt)
    lock_idx = np.flatnonzero(lock) if lock is not None else None
    W_locked = Wt[lock_idx].copy() if lock_idx is not None else None
    # Frames in no block: W·H = 0 there, so the ratio is V / ε and they add a constant to the loss.
    const = 0.0
    out_frames = np.flatnonzero(~cs.covered[:N])
    if out_frames.size:
        Vo = V[:, out_frames] if floor is None else np.maximum(V[:, out_frames], tiny)
        r = Vo / dt.type(eps)
        with np.errstate(divide="ignore"):
            lg = np.log(np.maximum(r, tiny))
        const = float(np.dot(Vo.ravel(), lg.ravel()))
    # Chunks of a few blocks, with every view the pass needs made once (a view costs ~0.3 µs; a pass
    # visits ~40 chunks twice per iteration). Segments of chunks: one holding every chunk when the
    # gathered templates Wg and the products P fit _SEGMENT_BYTES each (they are then gathered once per W
    # update and reduced once per pass); else each segment gathers its Wg in the pass and reduces its P
    # into the W numerator, in buffers of _SEGMENT_BYTES (a long recording's would be ~0.9 × V each).
    parts = []  # per chunk: (bucket, first block, last block + 1, first row of Wg, of P)
    for d in cs.b:
        for c0 in range(0, d["nb"], cs.chunk_blocks):
            c1 = min(d["nb"], c0 + cs.chunk_blocks)
            parts.append((d, c0, c1, d["h0"] + c0 * (d["A"] + 1), d["p0"] + c0 * d["A"]))
    groups = [parts] if parts else []  # segments of consecutive chunks (rows of Wg and of P are consecutive too)
    if cs.segmented:
        groups = []
        for part in parts:
            d, c0, c1, h0, p0 = part
            h1, p1 = h0 + (c1 - c0) * (d["A"] + 1), p0 + (c1 - c0) * d["A"]
            if not groups or h1 - groups[-1][0][3] > seg_rows or p1 - groups[-1][0][4] > seg_rows:
                groups.append([])
            groups[-1].append(part)
        rows = max(max(h0 + (c1 - c0) * (d["A"] + 1) - g[0][3], p0 + (c1 - c0) * d["A"] - g[0][4])
                   for g in groups for d, c0, c1, h0, p0 in g[-1:])
        Wbuf = np.empty((rows, K), dt)
        Pbuf = np.empty((rows, K), dt)
    segments = []  # (rows of Wt_ext to gather, Wg buffer, S's columns, P buffer, chunks); None: held whole
    for g in groups:
        chunks = []
        gh0, gp0 = g[0][3], g[0][4]
        for d, c0, c1, h0, p0 in g:
            n, A = c1 - c0, d["A"]
            Y = cs.Ybuf[: n * cs.L * K].reshape(n, cs.L, K)
            Vc = d["Vts"][c0:c1]
            if cs.segmented:
                Wf = Wbuf[h0 - gh0 : h0 - gh0 + n * (A + 1)].reshape(n, A + 1, K)
                P = Pbuf[p0 - gp0 : p0 - gp0 + n * A].reshape(n, A, K)
            else:
                Wf, P = d["Wg_full"][c0:c1], d["P"][c0:c1]
            chunks.append((
                d["Hs_full"][c0:c1].transpose(0, 2, 1), Wf, Vc, Vc.reshape(-1), Y,
                Y.transpose(0, 2, 1), Y.reshape(-1), Wf[:, :A], d["Num"][c0:c1], d["Hs"][c0:c1], P,
            ))
        if cs.segmented:
            d, c0, c1, h0, p0 = g[-1]
            gh1, gp1 = h0 + (c1 - c0) * (d["A"] + 1), p0 + (c1 - c0) * d["A"]
            segments.append((cs.idx_all[gh0:gh1], Wbuf[: gh1 - gh0], cs.S[:, gp0:gp1].tocsr(),
                             Pbuf[: gp1 - gp0], chunks))
        else:
            segments.append((None, None, None, None, chunks))

    def refresh_colsum():
        np.sum(Wt, axis=1, out=colsum)
        np.add(colsum, eps, out=colsum)
        for d in cs.b:
            np.take(colsum, d["idx0"], out=d["scale"][:, :, 0], mode="clip")

    def ratio_pass(want_loss: bool, want_num: bool, want_P: bool) -> float:
        """One chunked pass over the blocks: ratio = V ⊘ (WH + ε); optionally the next H numerator
        Wᵀ ratio, P = H ratio (for the W numerator) and Σ V log ratio (the log overwrites the ratio, last,
        so a chunk's working set is V, the ratio and the gathered templates: it stays in L2)."""
        acc = 0.0
        matmul, divide, log2, dot = np.matmul, np.divide, np.log2, np.dot
        first = True
        with np.errstate(divide="ignore"):
            for rows, Wg_seg, S_seg, P_seg, chunks in segments:
                if rows is not None:
                    np.take(Wt_ext, rows, axis=0, out=Wg_seg, mode="clip")
                for HfT, Wf, Vc, Vflat, Y, YT, Yflat, Wg, Num, Hs, P in chunks:
                    matmul(HfT, Wf, out=Y)  # W·H + ε (the constant slot adds ε)
                    divide(Vc, Y, out=Y)
                    if want_num:
                        matmul(Wg, YT, out=Num)
                    if want_P:
                        matmul(Hs, Y, out=P)
                    if want_loss:  # log2 is ~1.5× faster than log for float32 here; the sum is scaled by ln 2
                        log2(Y, out=Y)
                        part = float(dot(Vflat, Yflat))
                        if not np.isfinite(part):  # V = 0 (floored to tiny) where WH is large: see nmf._kl
                            matmul(HfT, Wf, out=Y)
                            divide(Vc, Y, out=Y)
                            np.maximum(Y, tiny, out=Y)
                            log2(Y, out=Y)
                            part = float(dot(Vflat, Yflat))
                        acc += part
                if want_P and S_seg is not None:  # this segment's share of the W numerator (reduce_P)
                    if first:
                        numW[...] = S_seg @ P_seg
                        first = False
                    else:
                        np.add(numW, S_seg @ P_seg, out=numW)
        return acc * _LN2

    def loss(acc: float, rowsum_current: bool = False) -> float:
        if not rowsum_current:
            cs.row_sums(rowsum)
        sumWH = float(np.dot(Wt.sum(axis=1, dtype=np.float64), rowsum.astype(np.float64))) + eps * K * N
        return max(acc + const - sumV + sumWH, 0.0)

    cs.gather_W(Wt_ext)
    refresh_colsum()
    acc = ratio_pass(track_loss, update_H and n_iter > 0, (not update_H) and update_W and n_iter > 0)
    yield loss(acc) if track_loss else float("nan")
    for it in range(1, n_iter + 1):
        if update_H:
            for d in cs.b:
                num = d["Num"]
                num /= d["scale"]
                d["Hs"] *= num
            cs.flush(it, FLUSH_EVERY)
            if update_W:
                ratio_pass(False, False, True)
        if update_W:
            if not cs.segmented:  # (segmented: the pass has reduced P into numW)
                cs.reduce_P(numW)
            cs.row_sums(rowsum)
            np.add(rowsum, eps, out=rowsum_eps)
            numW /= rowsum_eps[:, None]
            Wt *= numW
            _flush(Wt, it, FLUSH_EVERY)
            if W_locked is not None:
                Wt[lock_idx] = W_locked
            _normalize_t(Wt, cs, normalize, lock)
            np.copyto(W, Wt.T)
            cs.gather_W(Wt_ext)
            refresh_colsum()
        last = it == n_iter
        if not track_loss:
            if not last:  # the ratio for the next update; the last pass would serve the loss only
                ratio_pass(False, update_H, (not update_H) and update_W)
            cs.store(H)
            yield float("nan")
            continue
        acc = ratio_pass(True, update_H and not last, (not update_H) and update_W and not last)
        cs.store(H)
        yield loss(acc, rowsum_current=update_W and not normalize)  # H unchanged since the W update


# ----------------------------------------------------------------------------------------- dispatch
def dense_plan(R: int, N: int, K: int, beta: float) -> BlockPlan:
    """One block holding every frame and component: the kernels above then do the dense updates (used
    for accelerated updates without constraints)."""
    bk = _Bucket(blocks=np.zeros(1, np.int64), idx=np.arange(R, dtype=np.int64)[None, :], A=R, L=N)
    plan = BlockPlan(L=N, K=K, N=N, R=R, beta=float(beta), buckets=[bk], support_nnz=R * N)
    plan.cost_dense = plan.cost_sparse = _dense_cost(K, N, R, beta)
    return plan


def constraint_aware(V, W, H, n_iter, update_W, update_H, lock, normalize, eps, *, beta: float,
                     method: str = "auto", accelerate: bool | None = None,
                     track_loss: bool = True) -> Iterator[float] | None:
    """The kernel ``method`` / ``accelerate`` ask for, as a loss iterator (initial loss first), or None
    when the dense kernels of demixer.core.nmf should run. Validates both options (eagerly).
    ``track_loss`` False lets the KL kernel yield NaN instead of computing each loss."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if accelerate not in (None, True, False):
        raise ValueError(f"accelerate must be True, False or None, got {accelerate!r}")
    if accelerate and beta != 2.0:
        raise ValueError("accelerated updates exist for the Euclidean loss (beta=2) only")
    if beta not in (1.0, 2.0):
        if method == "sparse":
            raise ValueError("method='sparse' supports beta=2 (Euclidean) and beta=1 (KL) only")
        return None
    K = V.shape[0]
    if method == "dense":
        plan = None
    elif method == "sparse":
        plan = plan_blocks(H != 0, K, beta)
    else:
        plan = choose_method(H, K, beta)[1]
    if accelerate is None:
        accelerate = False
    if plan is None:
        if not accelerate:
            return None
        plan = dense_plan(H.shape[0], H.shape[1], K, beta)
    if beta == 2.0:
        return sparse_euclidean(V, W, H, n_iter, update_W, update_H, lock, normalize, eps, plan, accelerate)
    return sparse_kl(V, W, H, n_iter, update_W, update_H, lock, normalize, eps, plan, track_loss)
