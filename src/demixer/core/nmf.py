"""Nonnegative matrix factorisation by multiplicative updates (DESIGN.md §2.2).

V ≈ W·H with V (K × N), W (K × R), H (R × N), all nonnegative, for the β-divergence family:
β = 2 Euclidean, β = 1 Kullback–Leibler, β = 0 Itakura–Saito (any real β works).

Constraints are zeros: an entry of W or H that ``allow_W`` / ``allow_H`` forbids is set to exactly 0 at
the start, and multiplicative updates keep it exactly 0 through every iteration.

Speed (see DESIGN.md §2.6 and benchmarks/bench_nmf.py):

* Euclidean never forms W·H. The updates use the Gram matrices WᵀW and HHᵀ, and the loss after each
  iteration reuses products the updates already made:
  ‖V − WH‖² = ‖V‖² − 2⟨W, VHᵀ⟩ + ⟨WᵀW, HHᵀ⟩.
* KL keeps V ⊘ (WH + ε) of the current state in a buffer: it feeds the next H update and the loss
  Σ V log(V ⊘ WH) − ΣV + ΣWH, where ΣWH comes from the column sums of W and row sums of H. Per
  iteration that is 8KNR flops in four GEMMs, plus four K × N passes and the log for the loss (about
  1.2× the GEMM time here; sklearn skips the loss).
* Entries that multiplicative updates shrink below ε²·max (ε = the dtype's machine epsilon) are set
  to exactly 0 after the updates of every fifth iteration (1, 6, 11, …). Left alone they become
  subnormal floats within ~50 iterations and slow every GEMM they enter by up to 30×
  (benchmarks/bench_nmf.py measured 128 ms instead of 14 ms per Euclidean iteration). They are far
  below anything float32 can add to W·H, and a zero stays zero, so constraints are unaffected.
* Buffers are allocated once per run, not per iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from demixer.core import nmf_sparse

__all__ = ["NMFState", "NMFResult", "nmf", "nmf_steps", "random_init", "beta_divergence"]


@dataclass
class NMFState:
    """One iteration's state. ``W`` and ``H`` are the run's live arrays: read them, copy to keep."""

    iteration: int
    loss: float
    W: np.ndarray
    H: np.ndarray
    initial_loss: float = float("nan")  # the loss before the first iteration


@dataclass
class NMFResult:
    W: np.ndarray
    H: np.ndarray
    losses: np.ndarray  # loss after each iteration (float64, length n_iter)
    n_iter: int
    initial_loss: float = float("nan")
    stopped: str = "max_iter"  # "max_iter", "tol" or "callback"
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------- validation
def _as_float(name: str, a, dtype=None) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {a.shape}")
    if dtype is None:
        dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float32
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
        raise ValueError(f"{name} must be a real matrix, got dtype {a.dtype}")
    a = a.astype(dtype, copy=False)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if a.size and a.min() < 0:
        raise ValueError(f"{name} must be nonnegative (found {float(a.min()):g})")
    return a


def _as_mask(name: str, m, shape) -> np.ndarray | None:
    if m is None:
        return None
    m = np.asarray(m)
    if m.shape != tuple(shape):
        raise ValueError(f"{name} has shape {m.shape}, expected {tuple(shape)}")
    if m.dtype != bool:
        if not (np.issubdtype(m.dtype, np.integer) or np.issubdtype(m.dtype, np.floating)):
            raise ValueError(f"{name} must be a boolean mask, got dtype {m.dtype}")
        m = m != 0
    return m


def _validate(V, W, H, allow_W, allow_H, lock):
    V = _as_float("V", V)
    dtype = V.dtype
    K, N = V.shape
    if K == 0 or N == 0:
        raise ValueError(f"V is empty (shape {V.shape})")
    W = _as_float("W", W, dtype)
    H = _as_float("H", H, dtype)
    if W.shape[1] == 0 or H.shape[0] == 0:
        raise ValueError("R = 0: at least one component is needed")
    if W.shape[0] != K:
        raise ValueError(f"W has {W.shape[0]} rows but V has {K} (frequency bins)")
    if H.shape[1] != N:
        raise ValueError(f"H has {H.shape[1]} columns but V has {N} (frames)")
    if W.shape[1] != H.shape[0]:
        raise ValueError(f"W has {W.shape[1]} components (columns) but H has {H.shape[0]} (rows)")
    R = W.shape[1]
    allow_W = _as_mask("allow_W", allow_W, (K, R))
    allow_H = _as_mask("allow_H", allow_H, (R, N))
    if lock is not None:
        lock = np.asarray(lock)
        if lock.shape != (R,):
            raise ValueError(f"lock must have one entry per component ({R}), got shape {lock.shape}")
        lock = lock.astype(bool)
        if not lock.any():
            lock = None
    return V, W, H, allow_W, allow_H, lock


def _start(M: np.ndarray, allow: np.ndarray | None) -> np.ndarray:
    """A C-contiguous private copy of M with forbidden entries exactly 0."""
    out = np.array(M, order="C", copy=True)
    if allow is not None:
        out[~allow] = 0
    return out


def random_init(V, R: int, rng=None, dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """Random nonnegative W (K × R), H (R × N) scaled so that W·H has V's mean. ``rng``: int or Generator."""
    V = _as_float("V", V)
    if int(R) < 1:
        raise ValueError(f"R must be at least 1, got {R}")
    rng = np.random.default_rng(rng)
    dtype = dtype or V.dtype
    K, N = V.shape
    scale = np.sqrt(max(float(V.mean()), np.finfo(np.float32).tiny) / R)
    W = (rng.random((K, R)) * scale + 1e-3 * scale).astype(dtype)
    H = (rng.random((R, N)) * scale + 1e-3 * scale).astype(dtype)
    return W, H


# ----------------------------------------------------------------------------------------- losses
def beta_divergence(V, WH, beta: float) -> float:
    """D_β(V ‖ WH) summed over all entries (float64). Reference implementation for tests and checks."""
    V = np.asarray(V, dtype=np.float64)
    Y = np.asarray(WH, dtype=np.float64)
    if beta == 2:
        return float(np.sum((V - Y) ** 2))
    tiny = np.finfo(np.float64).tiny
    Y = np.maximum(Y, tiny)
    if beta == 1:
        from scipy.special import xlogy

        return float(np.sum(xlogy(V, V) - xlogy(V, Y) - V + Y))
    Vp = np.maximum(V, tiny)
    if beta == 0:
        q = Vp / Y
        return float(np.sum(q - np.log(q) - 1))
    return float(np.sum((Vp**beta + (beta - 1) * Y**beta - beta * Vp * Y ** (beta - 1)) / (beta * (beta - 1))))


FLUSH_EVERY = 5  # flush tiny entries on iterations 1, 6, 11, …: subnormals take tens of iterations to form


def _flush_tiny(M: np.ndarray, it: int = 1) -> None:
    """On every FLUSH_EVERY-th iteration (starting with the first), set entries below ε²·max(M) to exactly
    0, in place (see the module docstring: subnormals)."""
    if (it - 1) % FLUSH_EVERY:
        return
    eps = float(np.finfo(M.dtype).eps)
    peak = float(M.max()) if M.size else 0.0
    if peak > 0:
        np.putmask(M, M < peak * eps * eps, 0)


def _normalize(W: np.ndarray, H: np.ndarray, how, lock) -> np.ndarray | None:
    """Scale template columns to unit norm and H rows inversely (W·H unchanged). Returns the scales."""
    if not how:
        return None
    n = _template_scales(W, how, lock)
    W /= n.astype(W.dtype)
    H *= n.astype(H.dtype)[:, None]
    return n


def _template_scales(W: np.ndarray, how, lock) -> np.ndarray:
    """The norm of each template column of W (K × R, any strides) for ``normalize``; 1 for zero
    columns and locked components."""
    if how is True or how == "l2":
        n = np.sqrt(np.einsum("kr,kr->r", W, W, dtype=np.float64))
    elif how == "l1":
        n = W.sum(axis=0, dtype=np.float64)
    elif how == "max":
        n = W.max(axis=0).astype(np.float64)
    else:
        raise ValueError(f"normalize must be False, True, 'l1', 'l2' or 'max', got {how!r}")
    n[n <= 0] = 1.0
    if lock is not None:
        n[lock] = 1.0
    return n


# ----------------------------------------------------------------------------------------- kernels
def _euclidean(V, W, H, n_iter, update_W, update_H, lock, normalize, eps) -> Iterator[float]:
    """Yields the loss after each iteration; updates W and H in place."""
    K, N = V.shape
    R = W.shape[1]
    dt = V.dtype
    vnorm2 = float(np.einsum("kn,kn->", V, V, dtype=np.float64))
    WtV = np.empty((R, N), dt)
    den_H = np.empty((R, N), dt)
    VHt = np.empty((K, R), dt)
    den_W = np.empty((K, R), dt)
    HHt = np.empty((R, R), dt)
    WtW = W.T @ W
    W_locked = W[:, lock].copy() if lock is not None else None
    if not update_W:
        np.matmul(W.T, V, out=WtV)  # constant when W is fixed
        WtV_fixed = WtV.copy()

    def loss_from(VHt_or_none) -> float:
        if VHt_or_none is None:  # W fixed: <W, V Hᵀ> = <WᵀV, H>
            cross = float(np.einsum("rn,rn->", WtV_fixed, H, dtype=np.float64))
        else:
            cross = float(np.einsum("kr,kr->", W, VHt_or_none, dtype=np.float64))
        gram = float(np.einsum("rs,rs->", WtW, HHt, dtype=np.float64))
        return max(vnorm2 - 2.0 * cross + gram, 0.0)

    for it in range(1, n_iter + 1):
        if update_H:
            if update_W:
                np.matmul(W.T, V, out=WtV)
                num = WtV
            else:
                num = WtV_fixed
            np.matmul(WtW, H, out=den_H)
            den_H += eps
            np.divide(num, den_H, out=den_H)
            H *= den_H
            _flush_tiny(H, it)
        np.matmul(H, H.T, out=HHt)
        if update_W:
            np.matmul(V, H.T, out=VHt)
            np.matmul(W, HHt, out=den_W)
            den_W += eps
            np.divide(VHt, den_W, out=den_W)
            W *= den_W
            _flush_tiny(W, it)
            if W_locked is not None:
                W[:, lock] = W_locked
            n = _normalize(W, H, normalize, lock)
            if n is not None:
                nf = n.astype(dt)
                VHt *= nf  # V·(H diag n)ᵀ: the products now describe the rescaled pair
                HHt *= nf[:, None] * nf[None, :]
            np.matmul(W.T, W, out=WtW)
            yield loss_from(VHt)
        else:
            yield loss_from(None)


_LOG_ROWS = 64  # rows per chunk when taking log(V ⊘ WH) for the loss: keeps the chunk in L2 cache


def _kl(V, W, H, n_iter, update_W, update_H, lock, normalize, eps) -> Iterator[float]:
    """KL-divergence MU (β = 1). Yields the initial loss, then the loss after each iteration.

    Two K × N buffers: ``ratio`` = V ⊘ (WH + ε) of the current state (it feeds the next H update and the
    loss) and ``tmp`` for the W update. The loss D(V‖WH) = Σ V log(V ⊘ WH) − ΣV + ΣWH reuses the ratio;
    ΣWH = (column sums of W)·(row sums of H) costs nothing.
    """
    K, N = V.shape
    dt = V.dtype
    tiny = np.finfo(dt).tiny
    # Floor V at the smallest normal float so V log(V / WH) stays finite where V = 0; nothing else changes.
    Vw = V if V.min() > 0 else np.maximum(V, tiny)
    sumV = float(Vw.sum(dtype=np.float64))
    ratio = np.empty((K, N), dt)
    tmp = np.empty((K, N), dt) if update_W else None
    logbuf = np.empty((min(K, _LOG_ROWS), N), dt)
    numH = np.empty(H.shape, dt) if update_H else None
    numW = np.empty(W.shape, dt) if update_W else None
    W_locked = W[:, lock].copy() if lock is not None else None

    def refresh_ratio_and_loss() -> float:
        np.matmul(W, H, out=ratio)
        np.add(ratio, eps, out=ratio)
        np.divide(Vw, ratio, out=ratio)
        acc = 0.0
        for k0 in range(0, K, _LOG_ROWS):
            k1 = min(K, k0 + _LOG_ROWS)
            b = logbuf[: k1 - k0]
            # Floored like V: where V = 0 and WH is large, V ⊘ WH underflows to 0, and tiny·log(0) = −inf
            # made the whole loss −inf (reported as 0).
            with np.errstate(divide="ignore"):
                np.log(ratio[k0:k1], out=b)
            part = float(np.dot(Vw[k0:k1].ravel(), b.ravel()))
            if not np.isfinite(part):
                # Where V = 0 (floored to tiny) and WH is large, V ⊘ WH underflows to 0 and log gives −inf:
                # floor the ratio like V. Rare, so only then.
                np.maximum(ratio[k0:k1], tiny, out=b)
                np.log(b, out=b)
                part = float(np.dot(Vw[k0:k1].ravel(), b.ravel()))
            acc += part
        # Σ (WH + ε): the same model the ratio used, so the reported loss is D(V ‖ WH + ε) exactly.
        sumWH = float(np.dot(W.sum(axis=0, dtype=np.float64), H.sum(axis=1, dtype=np.float64))) + eps * K * N
        return max(acc - sumV + sumWH, 0.0)

    yield refresh_ratio_and_loss()
    for it in range(1, n_iter + 1):
        if update_H:
            np.matmul(W.T, ratio, out=numH)
            numH /= (W.sum(axis=0) + eps)[:, None]
            H *= numH
            _flush_tiny(H, it)
        if update_W:
            np.matmul(W, H, out=tmp)
            tmp += eps
            np.divide(Vw, tmp, out=tmp)
            np.matmul(tmp, H.T, out=numW)
            numW /= H.sum(axis=1) + eps
            W *= numW
            _flush_tiny(W, it)
            if W_locked is not None:
                W[:, lock] = W_locked
            _normalize(W, H, normalize, lock)
        yield refresh_ratio_and_loss()


def _beta_general(V, W, H, n_iter, update_W, update_H, lock, normalize, eps, beta) -> Iterator[float]:
    """MU for any β (Févotte & Idier 2011), with the exponent 1/(2−β) for β < 1 and 1/(β−1) for β > 2
    that makes each update non-increasing. Forms W·H; used for β ∉ {1, 2}. Yields the initial loss first."""
    dt = V.dtype
    tiny = np.finfo(dt).tiny
    Vw = np.maximum(V, tiny)
    gamma = 1.0 / (2.0 - beta) if beta < 1 else (1.0 / (beta - 1.0) if beta > 2 else 1.0)
    W_locked = W[:, lock].copy() if lock is not None else None

    def wh():
        return W @ H + eps

    Y = wh()
    yield beta_divergence(Vw, Y, beta)
    for _ in range(n_iter):
        if update_H:
            num = W.T @ (Vw * Y ** (beta - 2))
            den = W.T @ Y ** (beta - 1) + eps
            H *= (num / den) ** gamma if gamma != 1.0 else num / den
            Y = wh()
        if update_W:
            num = (Vw * Y ** (beta - 2)) @ H.T
            den = Y ** (beta - 1) @ H.T + eps
            W *= (num / den) ** gamma if gamma != 1.0 else num / den
            if W_locked is not None:
                W[:, lock] = W_locked
            _normalize(W, H, normalize, lock)
            Y = wh()
        yield beta_divergence(Vw, Y, beta)


def _eps_for(V: np.ndarray) -> float:
    vmax = float(V.max()) if V.size else 0.0
    fi = np.finfo(V.dtype)
    # At least the smallest normal number: for a V whose peak is below tiny/eps, eps·max(V) underflows to
    # 0 (or a subnormal that vanishes in the sum), and the updates divide 0 by 0.
    return max(float(fi.eps) * (vmax if vmax > 0 else 1.0), float(fi.tiny))


# ----------------------------------------------------------------------------------------- public API
def nmf_steps(
    V,
    W,
    H,
    *,
    beta: float = 2.0,
    n_iter: int = 100,
    update_W: bool = True,
    update_H: bool = True,
    allow_W=None,
    allow_H=None,
    lock=None,
    normalize=False,
    tol: float | None = None,
    method: str = "auto",
    accelerate: bool | None = None,
    track_loss: bool = True,
) -> Iterator[NMFState]:
    """Iterator form of :func:`nmf`: validates now, then yields one :class:`NMFState` per iteration.

    The state's W and H are the run's live arrays (valid until the next step): copy them to keep them.
    Use :func:`nmf` when you also need the initial loss and the stopping reason. ``track_loss`` False:
    nobody looks at the losses (a headless run), so a kernel may report NaN instead of computing them
    (the constraint-aware KL kernel does: ~20 % less work); W and H are the same.
    """
    V, W, H, allow_W, allow_H, lock = _validate(V, W, H, allow_W, allow_H, lock)
    return _steps(V, W, H, beta, n_iter, update_W, update_H, allow_W, allow_H, lock, normalize, tol,
                  method=method, accelerate=accelerate, track_loss=track_loss)


def _steps(V, W0, H0, beta, n_iter, update_W, update_H, allow_W, allow_H, lock, normalize, tol, box=None,
           method="auto", accelerate=None, track_loss=True):
    beta = float(beta)
    if not np.isfinite(beta):
        raise ValueError(f"beta must be finite, got {beta}")
    if int(n_iter) < 0:
        raise ValueError(f"n_iter must be >= 0, got {n_iter}")
    if tol is not None and tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if normalize not in (False, None, True, "l1", "l2", "max"):
        raise ValueError(f"normalize must be False, True, 'l1', 'l2' or 'max', got {normalize!r}")
    W = _start(W0, allow_W)
    H = _start(H0, allow_H)
    eps = _eps_for(V)
    args = (V, W, H, int(n_iter), bool(update_W), bool(update_H), lock, normalize, eps)
    # Constraint-aware / accelerated kernels (nmf_sparse) when they pay off; None = the dense ones below.
    losses = nmf_sparse.constraint_aware(*args, beta=beta, method=method, accelerate=accelerate,
                                         track_loss=track_loss)
    if losses is not None:
        first = next(losses)
    elif beta == 2.0:
        losses = _euclidean(*args)
        first = None
    elif beta == 1.0:
        losses = _kl(*args)
        first = next(losses)
    else:
        losses = _beta_general(*args, beta)
        first = next(losses)
    return _drive(losses, first, V, W, H, tol, box, beta)


def _drive(losses, first, V, W, H, tol, box, beta):
    initial = float(first) if first is not None else _initial_euclidean(V, W, H)
    if box is not None:
        box["initial_loss"] = initial
        box["W"], box["H"] = W, H
    prev_W = W.copy() if tol is not None else None
    prev_H = H.copy() if tol is not None else None
    for it, loss in enumerate(losses, start=1):
        yield NMFState(it, loss, W, H, initial)
        if tol is not None:
            dW = np.linalg.norm(W - prev_W) / max(np.linalg.norm(W), np.finfo(np.float64).tiny)
            dH = np.linalg.norm(H - prev_H) / max(np.linalg.norm(H), np.finfo(np.float64).tiny)
            if dW <= tol and dH <= tol:
                if box is not None:
                    box["stopped"] = "tol"
                return
            np.copyto(prev_W, W)
            np.copyto(prev_H, H)


def _initial_euclidean(V, W, H) -> float:
    """‖V − WH‖² by the trace identity (float32 products, float64 sums): no K × N temporary."""
    vv = float(np.einsum("kn,kn->", V, V, dtype=np.float64))
    cross = float(np.einsum("rn,rn->", W.T @ V, H, dtype=np.float64))
    gram = float(np.einsum("rs,rs->", W.T @ W, H @ H.T, dtype=np.float64))
    return max(vv - 2.0 * cross + gram, 0.0)


def nmf(
    V,
    W,
    H,
    *,
    beta: float = 2.0,
    n_iter: int = 100,
    update_W: bool = True,
    update_H: bool = True,
    allow_W=None,
    allow_H=None,
    lock=None,
    normalize=False,
    tol: float | None = None,
    callback: Callable[[NMFState], bool | None] | None = None,
    method: str = "auto",
    accelerate: bool | None = None,
) -> NMFResult:
    """Factorise V ≈ W·H from the initial W (K × R) and H (R × N) by multiplicative updates.

    * ``beta``: 2 Euclidean ‖V − WH‖², 1 KL, 0 Itakura–Saito, or any other β-divergence.
    * ``update_W`` / ``update_H``: False keeps that factor fixed (e.g. supervised NMF with fixed templates).
    * ``allow_W`` (K × R), ``allow_H`` (R × N): boolean masks; False entries are exactly 0 from the start
      and after every iteration.
    * ``lock`` (R,): components whose template column is not updated.
    * ``normalize``: False, True/'l2', 'l1' or 'max' — scale template columns after each W update and
      H rows inversely, so W·H (and the loss) is unchanged.
    * ``tol``: stop when the relative change of both W and H in one iteration is at most ``tol``.
    * ``callback(state)`` is called after every iteration; returning False stops the run.
    * ``method``: "dense" multiplies every entry; "sparse" computes only what the nonzero entries of the
      (masked) starting H need (demixer.core.nmf_sparse; β = 1 and 2; same updates, same results to
      float rounding); "auto" takes "sparse" when its cost model predicts it clearly faster.
    * ``accelerate``: β = 2 only — several H (and W) updates per iteration reuse the costly products
      (Gillis & Glineur 2012); an iteration then does more work but the loss falls faster. None = off.

    The caller's arrays are never modified. Raises ValueError for invalid input.
    """
    V, W, H, allow_W, allow_H, lock = _validate(V, W, H, allow_W, allow_H, lock)
    box: dict = {"stopped": "max_iter"}
    losses = []
    for state in _steps(V, W, H, beta, n_iter, update_W, update_H, allow_W, allow_H, lock, normalize, tol, box,
                        method=method, accelerate=accelerate):
        losses.append(state.loss)
        if callback is not None and callback(state) is False:
            box["stopped"] = "callback"
            break
    return NMFResult(
        W=box["W"],
        H=box["H"],
        losses=np.asarray(losses, dtype=np.float64),
        n_iter=len(losses),
        initial_loss=float(box["initial_loss"]),
        stopped=box["stopped"],
    )
