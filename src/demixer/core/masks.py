"""Soft masks and resynthesis (DESIGN.md §2.5).

For source g with components C_g: V̂_g = W[:, C_g] H[C_g, :], and
    M_g = V̂_g^α ⊘ Σ_j V̂_j^α
with the residual source (components in no source) among the j, so Σ_g M_g = 1 exactly; where every
model is zero the bin is split equally. Ŝ_g = M_g ⊙ X on every channel of the complex STFT, inverse
STFT to the input's length: the sources add up to the mixture up to float error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from demixer.core.stft import istft

__all__ = [
    "group_indices",
    "source_models",
    "soft_masks",
    "resample_masks",
    "apply_masks",
    "separate",
]


def group_indices(component_sources: Sequence[str | None], sources: Sequence[str]) -> tuple[list[np.ndarray], bool]:
    """Component indices per source, in ``sources`` order, plus a residual group when some component
    belongs to no listed source. Returns (groups, has_residual): the residual, if any, is last."""
    index = {s: i for i, s in enumerate(sources)}
    groups: list[list[int]] = [[] for _ in sources]
    residual: list[int] = []
    for r, s in enumerate(component_sources):
        if s is not None and s in index:
            groups[index[s]].append(r)
        else:
            residual.append(r)
    out = [np.asarray(g, dtype=np.intp) for g in groups]
    if residual:
        out.append(np.asarray(residual, dtype=np.intp))
    return out, bool(residual)


def source_models(W, H, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """(G, K, N) per-group model spectrograms V̂_g = W[:, C_g] H[C_g, :]; an empty group gives zeros."""
    W = np.asarray(W)
    H = np.asarray(H)
    if W.ndim != 2 or H.ndim != 2 or W.shape[1] != H.shape[0]:
        raise ValueError(f"W ({W.shape}) and H ({H.shape}) do not form a product")
    R = W.shape[1]
    dt = np.result_type(W.dtype, H.dtype, np.float32)
    out = np.zeros((len(groups), W.shape[0], H.shape[1]), dt)
    for g, idx in enumerate(groups):
        idx = np.asarray(idx, dtype=np.intp)
        if idx.size == 0:
            continue
        if idx.min() < 0 or idx.max() >= R:
            raise ValueError(f"group {g} names a component outside 0..{R - 1}")
        np.matmul(W[:, idx], H[idx, :], out=out[g])
    return out


def soft_masks(models, alpha: float = 1.0, overwrite: bool = False) -> np.ndarray:
    """(G, K, N) masks M_g = V̂_g^α / Σ_j V̂_j^α that sum to exactly 1 in every bin (equal split where all
    models are 0). ``models`` are nonnegative (G, K, N). ``overwrite``: the masks may be made in the
    ``models`` array itself (a float array the caller no longer needs: no copy of G·K·N values)."""
    dtype = np.result_type(np.asarray(models).dtype, np.float32)
    in_place = overwrite and isinstance(models, np.ndarray) and models.dtype == dtype
    P = models if in_place else np.array(models, dtype=dtype, copy=True)
    if P.ndim != 3 or P.shape[0] == 0:
        raise ValueError(f"models must be a non-empty (G, K, N) stack, got shape {P.shape}")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    # Scale to a peak of 1 before the power and the sum, so that neither α = 2 nor the sum over sources
    # can overflow for loud bins (an overflowing sum gave NaN masks, even for α = 1).
    peak = float(P.max())  # NaN or ±inf anywhere shows in the peak or the minimum: no separate finite pass
    if not np.isfinite(peak) or P.min() < 0:
        raise ValueError("models must be finite and nonnegative")
    if peak > 0:
        P /= peak
    if alpha != 1.0:
        np.power(P, alpha, out=P)
    total = P.sum(axis=0)
    tiny = np.finfo(P.dtype).tiny
    empty = total <= tiny
    np.divide(P, np.where(empty, 1, total), out=P)
    if empty.any():
        P[:, empty] = 1.0 / P.shape[0]
    # Remove the last float-rounding excess so the masks sum to 1 as nearly as the dtype allows.
    P /= P.sum(axis=0)
    return P


def _interp_axis(a: np.ndarray, x_src: np.ndarray, x_dst: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation along one axis, clamped at the ends (a convex combination: sums survive)."""
    pos = np.interp(x_dst, x_src, np.arange(len(x_src), dtype=np.float64))
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, len(x_src) - 1)
    w = (pos - i0).astype(a.dtype)
    shape = [1] * a.ndim
    shape[axis] = -1
    w = w.reshape(shape)
    return np.take(a, i0, axis=axis) * (1 - w) + np.take(a, i1, axis=axis) * w


def resample_masks(masks, freqs_src, times_src, freqs_dst, times_dst) -> np.ndarray:
    """Masks from one STFT grid to another (e.g. analysis rate → the file's rate) by separable linear
    interpolation in Hz and seconds, held constant beyond the source grid. Sums to 1 are kept."""
    m = np.asarray(masks)
    if m.ndim != 3:
        raise ValueError(f"masks must be (G, K, N), got shape {m.shape}")
    out = _interp_axis(m, np.asarray(freqs_src, float), np.asarray(freqs_dst, float), axis=1)
    return _interp_axis(out, np.asarray(times_src, float), np.asarray(times_dst, float), axis=2)


def apply_masks(X, mask) -> np.ndarray:
    """M ⊙ X on every channel: X (K × N) or (C × K × N) complex, mask (K × N)."""
    X = np.asarray(X)
    mask = np.asarray(mask)
    if X.shape[-2:] != mask.shape:
        raise ValueError(f"mask shape {mask.shape} does not match the STFT's {X.shape[-2:]}")
    return X * mask.astype(np.float32 if X.dtype == np.complex64 else np.float64)


def separate(X, masks, length: int, n_fft: int, hop: int, window: str = "hann") -> Iterator[np.ndarray]:
    """Yields each source's time signal (same channel layout as X: samples or C × samples), one source
    at a time so that only one masked STFT is in memory."""
    masks = np.asarray(masks)
    X = np.asarray(X)
    if masks.ndim != 3 or masks.shape[1:] != X.shape[-2:]:
        raise ValueError(f"masks {masks.shape} do not match the STFT {X.shape}")
    for g in range(masks.shape[0]):
        yield istft(apply_masks(X, masks[g]), length, n_fft=n_fft, hop=hop, window=window)
