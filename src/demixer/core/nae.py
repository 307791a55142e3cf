"""Nonnegative autoencoder (DESIGN.md §2.4; Smaragdis & Venkataramani 2017, Özer et al. 2022).

Encoder W_E (R × K), decoder W_D (K × R), both nonnegative:
    H = max(W_E V, 0)      H' = H ⊙ M_H (structured dropout, M_H = allow_H)      V̂ = W_D H'
    loss ‖V − V̂‖²

Two trainers:
* ``"mu"`` — the multiplicative updates of Özer et al. 2022:
    W_D ← W_D ⊙ (V H'ᵀ) ⊘ (W_D H' H'ᵀ + ε)
    W_E ← W_E ⊙ [((W_Dᵀ V) ⊙ M_H) Vᵀ] ⊘ [((W_Dᵀ W_D H') ⊙ M_H) Vᵀ + ε]
  Zeros of ``allow_W`` in W_D stay exactly zero.
* ``"pgd"`` — projected gradient descent: a gradient step with a step size from the Lipschitz bound,
  then clipping at 0 and re-applying the masks.

Per iteration (MU): the decoder update, the encoder update, then the encoding of the new state, whose
products V H'ᵀ and H' H'ᵀ give the loss by the trace identity and feed the next decoder update, so the
loss of the state after every iteration costs no extra GEMM: 10KNR flops in all.

After training, :func:`encode` decomposes unseen frames in one matrix product.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from demixer.core.nmf import _as_float, _as_mask, _eps_for, _flush_tiny, _start

__all__ = ["NAEState", "NAEResult", "nae", "nae_steps", "encode", "init_encoder"]


@dataclass
class NAEState:
    """One iteration's state; arrays are the run's live ones (copy to keep)."""

    iteration: int
    loss: float
    W_D: np.ndarray
    W_E: np.ndarray
    H: np.ndarray  # H' = max(W_E V, 0) ⊙ M_H for the current encoder
    initial_loss: float = float("nan")  # the loss before the first iteration


@dataclass
class NAEResult:
    W_D: np.ndarray
    W_E: np.ndarray
    H: np.ndarray
    losses: np.ndarray
    n_iter: int
    initial_loss: float = float("nan")
    stopped: str = "max_iter"


def init_encoder(W_D) -> np.ndarray:
    """A starting encoder for a decoder: its transpose with each row scaled by 1/‖w_r‖², so that encoding
    one template gives about 1 on its own component (a matched filter)."""
    W_D = np.asarray(W_D)
    n2 = np.einsum("kr,kr->r", W_D, W_D, dtype=np.float64)
    n2[n2 <= 0] = 1.0
    return np.ascontiguousarray((W_D.T / n2[:, None]).astype(W_D.dtype))


def encode(W_E, V_new, mask_H=None) -> np.ndarray:
    """H = max(W_E V, 0) (⊙ mask_H): decompose frames in one matrix product."""
    W_E = _as_float("W_E", W_E)
    V_new = _as_float("V", V_new, W_E.dtype)
    if W_E.shape[1] != V_new.shape[0]:
        raise ValueError(f"W_E has {W_E.shape[1]} columns but V has {V_new.shape[0]} rows (bins)")
    H = W_E @ V_new
    np.maximum(H, 0, out=H)
    if mask_H is not None:
        m = _as_mask("mask_H", mask_H, H.shape)
        H *= m
    return H


def _validate(V, W_D, W_E, mask_H, allow_W):
    V = _as_float("V", V)
    K, N = V.shape
    if K == 0 or N == 0:
        raise ValueError(f"V is empty (shape {V.shape})")
    W_D = _as_float("W_D", W_D, V.dtype)
    if W_D.shape[1] == 0:
        raise ValueError("R = 0: at least one component is needed")
    if W_D.shape[0] != K:
        raise ValueError(f"W_D has {W_D.shape[0]} rows but V has {K} (frequency bins)")
    R = W_D.shape[1]
    W_E = init_encoder(W_D) if W_E is None else _as_float("W_E", W_E, V.dtype)
    if W_E.shape != (R, K):
        raise ValueError(f"W_E has shape {W_E.shape}, expected {(R, K)} (components × bins)")
    mask_H = _as_mask("mask_H", mask_H, (R, N))
    allow_W = _as_mask("allow_W", allow_W, (K, R))
    return V, W_D, W_E, mask_H, allow_W


def _mu(V, W_D, W_E, M, n_iter, eps) -> Iterator[tuple[float, np.ndarray]]:
    K, N = V.shape
    R = W_D.shape[1]
    dt = V.dtype
    vv = float(np.einsum("kn,kn->", V, V, dtype=np.float64))
    Hp = np.empty((R, N), dt)
    P = np.empty((K, R), dt)  # V H'ᵀ
    G = np.empty((R, R), dt)  # H' H'ᵀ
    D = np.empty((R, R), dt)  # W_Dᵀ W_D
    A = np.empty((R, N), dt)
    B = np.empty((R, N), dt)
    numE = np.empty((R, K), dt)
    denE = np.empty((R, K), dt)
    denD = np.empty((K, R), dt)

    def encode_and_products():
        np.matmul(W_E, V, out=Hp)
        np.maximum(Hp, 0, out=Hp)
        if M is not None:
            np.multiply(Hp, M, out=Hp)
        np.matmul(V, Hp.T, out=P)
        np.matmul(Hp, Hp.T, out=G)

    def loss() -> float:
        cross = float(np.einsum("kr,kr->", W_D, P, dtype=np.float64))
        gram = float(np.einsum("rs,rs->", D, G, dtype=np.float64))
        return max(vv - 2.0 * cross + gram, 0.0)

    encode_and_products()
    np.matmul(W_D.T, W_D, out=D)
    yield loss(), Hp
    for it in range(1, n_iter + 1):
        # decoder
        np.matmul(W_D, G, out=denD)
        denD += eps
        np.divide(P, denD, out=denD)
        W_D *= denD
        _flush_tiny(W_D, it)
        np.matmul(W_D.T, W_D, out=D)
        # encoder
        np.matmul(W_D.T, V, out=A)
        np.matmul(D, Hp, out=B)
        if M is not None:
            A *= M
            B *= M
        np.matmul(A, V.T, out=numE)
        np.matmul(B, V.T, out=denE)
        denE += eps
        np.divide(numE, denE, out=denE)
        W_E *= denE
        _flush_tiny(W_E, it)
        encode_and_products()
        yield loss(), Hp


def _pgd(V, W_D, W_E, M, allow_W, n_iter, eps) -> Iterator[tuple[float, np.ndarray]]:
    """Projected gradient descent on ½‖V − W_D H'‖² with Lipschitz step sizes."""
    R = W_D.shape[1]
    dt = V.dtype
    vv = float(np.einsum("kn,kn->", V, V, dtype=np.float64))
    # ‖V‖₂² (largest eigenvalue of V Vᵀ) by a few power iterations, for the encoder's step size.
    rng = np.random.default_rng(0)
    x = rng.random(V.shape[0]).astype(np.float64)
    V64 = V.astype(np.float64, copy=False)
    lam_v = 0.0
    for _ in range(30):
        y = V64 @ (V64.T @ x)
        lam_v = float(np.linalg.norm(y))
        if lam_v == 0:
            break
        x = y / lam_v

    def state():
        Hp = W_E @ V
        np.maximum(Hp, 0, out=Hp)
        if M is not None:
            Hp *= M
        return Hp

    def loss_of(Hp) -> float:
        P = V @ Hp.T
        cross = float(np.einsum("kr,kr->", W_D, P, dtype=np.float64))
        gram = float(np.einsum("rs,rs->", W_D.T @ W_D, Hp @ Hp.T, dtype=np.float64))
        return max(vv - 2.0 * cross + gram, 0.0)

    Hp = state()
    yield loss_of(Hp), Hp
    for _ in range(n_iter):
        G = Hp @ Hp.T
        lip_d = float(np.linalg.eigvalsh(G.astype(np.float64))[-1]) if R else 0.0
        if lip_d > 0:
            grad_D = W_D @ G - V @ Hp.T
            # Divide in float64: a float32 array divided by a Python float uses a float32 divisor, and a
            # Lipschitz constant below float32's range (a very quiet V) became 0 → 0/0 = NaN.
            W_D -= (grad_D.astype(np.float64) / lip_d).astype(dt)
            np.maximum(W_D, 0, out=W_D)
            if allow_W is not None:
                W_D *= allow_W
        E = W_D @ Hp - V  # residual
        dH = W_D.T @ E
        pre = W_E @ V
        dH *= pre > 0
        if M is not None:
            dH *= M
        lip_e = float(np.linalg.eigvalsh((W_D.T @ W_D).astype(np.float64))[-1]) * lam_v
        if lip_e > 0:
            W_E -= ((dH @ V.T).astype(np.float64) / lip_e).astype(dt)
            np.maximum(W_E, 0, out=W_E)
        Hp = state()
        yield loss_of(Hp), Hp


def nae_steps(V, W_D, W_E=None, *, mask_H=None, allow_W=None, n_iter: int = 100, method: str = "mu"):
    """Iterator form of :func:`nae`: validates now, then yields one :class:`NAEState` per iteration."""
    V, W_D, W_E, mask_H, allow_W = _validate(V, W_D, W_E, mask_H, allow_W)
    return _run(V, W_D, W_E, mask_H, allow_W, n_iter, method, None)


def _run(V, W_D0, W_E0, M, allow_W, n_iter, method, box):
    if method not in ("mu", "pgd"):
        raise ValueError(f"method must be 'mu' or 'pgd', got {method!r}")
    if int(n_iter) < 0:
        raise ValueError(f"n_iter must be >= 0, got {n_iter}")
    W_D = _start(W_D0, allow_W)
    W_E = np.array(W_E0, order="C", copy=True)
    eps = _eps_for(V)
    gen = _mu(V, W_D, W_E, M, int(n_iter), eps) if method == "mu" else _pgd(V, W_D, W_E, M, allow_W, n_iter, eps)
    return _drive(gen, W_D, W_E, box)


def _drive(gen, W_D, W_E, box):
    first, Hp = next(gen)
    if box is not None:
        box.update(initial_loss=first, W_D=W_D, W_E=W_E, H=Hp)
    for it, (loss, Hp) in enumerate(gen, start=1):
        if box is not None:
            box["H"] = Hp
        yield NAEState(it, loss, W_D, W_E, Hp, float(first))


def nae(
    V,
    W_D,
    W_E=None,
    *,
    mask_H=None,
    allow_W=None,
    n_iter: int = 100,
    method: str = "mu",
    callback: Callable[[NAEState], bool | None] | None = None,
) -> NAEResult:
    """Train a nonnegative autoencoder on V (K × N) from the initial decoder W_D (K × R) and encoder
    W_E (R × K; default :func:`init_encoder`). ``mask_H`` (R × N) is the structured dropout mask,
    ``allow_W`` (K × R) the allowed entries of W_D. ``callback(state)`` returning False stops the run.
    The caller's arrays are never modified."""
    V, W_D, W_E, mask_H, allow_W = _validate(V, W_D, W_E, mask_H, allow_W)
    box: dict = {}
    losses = []
    stopped = "max_iter"
    for state in _run(V, W_D, W_E, mask_H, allow_W, n_iter, method, box):
        losses.append(state.loss)
        if callback is not None and callback(state) is False:
            stopped = "callback"
            break
    return NAEResult(
        W_D=box["W_D"],
        W_E=box["W_E"],
        H=box["H"].copy(),
        losses=np.asarray(losses, dtype=np.float64),
        n_iter=len(losses),
        initial_loss=float(box["initial_loss"]),
        stopped=stopped,
    )
