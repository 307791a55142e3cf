"""Soft masks and resynthesis (DESIGN.md §2.5).

For source g with components C_g: V̂_g = W[:, C_g] H[C_g, :], and
    M_g = V̂_g^α ⊘ Σ_j V̂_j^α
with the residual source (components in no source) among the j, so Σ_g M_g = 1 exactly; where every
model is zero the bin is split equally among the groups that have components (a source with no
components is silent: its mask is 0 everywhere). Ŝ_g = M_g ⊙ X on every channel of the complex STFT, inverse
STFT to the input's length: the sources add up to the mixture up to float error.

:func:`separate_blocks` does the same a block of frames at a time (the STFT of every channel, the masks
and the overlap-add of a block only), with the same result: memory then no longer grows with the length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from demixer.core.stft import _window, irfft, istft, n_frames_for, stft_frames

__all__ = [
    "group_indices",
    "source_models",
    "soft_masks",
    "resample_masks",
    "apply_masks",
    "separate",
    "separate_blocks",
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


def soft_masks(
    models, alpha: float = 1.0, active: Sequence[bool] | None = None, overwrite: bool = False
) -> np.ndarray:
    """(G, K, N) masks M_g = V̂_g^α / Σ_j V̂_j^α that sum to exactly 1 in every bin. Where all models are 0
    the bin is split equally among the ``active`` groups (default: all; a group with no components is not
    active and stays silent; if none is active, among all). ``models`` are nonnegative (G, K, N).
    ``overwrite``: the masks may be made in the ``models`` array itself (a float array the caller no
    longer needs: no copy of G·K·N values)."""
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
        share = np.ones(P.shape[0], P.dtype) if active is None else np.asarray(active, dtype=P.dtype)
        if share.shape != (P.shape[0],):
            raise ValueError(f"active must name {P.shape[0]} groups, got shape {share.shape}")
        if not share.any():
            share[:] = 1
        P[:, empty] = (share / share.sum())[:, None]
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


def separate_blocks(
    x,
    masks_for: Callable[[int, int], np.ndarray],
    length: int,
    n_fft: int,
    hop: int,
    window: str = "hann",
    block: int = 256,
) -> Iterator[tuple[int, list[np.ndarray]]]:
    """:func:`separate` in blocks of ``block`` frames: yields ``(first sample, [source 0 block, …])`` in
    time order, each block (channels × n) or (n,), covering samples ``0 .. length`` once.

    ``x`` is the signal (1-D or channels × samples) or a callable ``(s0, s1) → x[..., s0:s1]``
    (zero-padded outside; see :func:`~demixer.core.stft.stft_frames`); ``masks_for(f0, f1)`` gives the
    (G, K, f1 − f0) masks of frames f0 .. f1−1. Only one block's STFT, masks and overlap-add are held.
    The result equals ``separate(stft(x), masks, …)``: each output sample takes exactly the frames
    that cover it.
    """
    length = int(length)
    n_frames = n_frames_for(length, hop)
    half = n_fft // 2
    margin = -(-half // hop)
    win = None
    for a in range(0, n_frames, block):
        b = min(n_frames, a + block)
        t0, t1 = a * hop, min(b * hop, length)
        if t1 <= t0:
            break
        f0, f1 = max(0, a - margin), min(n_frames, b + margin)
        X = stft_frames(x, f0, f1, n_fft, hop, window)
        dtype = np.float32 if X.dtype == np.complex64 else np.float64
        if win is None:
            win = _window(window, n_fft, dtype)
            win2 = win.astype(np.float64) ** 2
        masks = np.asarray(masks_for(f0, f1))
        if masks.ndim != 3 or masks.shape[1:] != X.shape[-2:]:
            raise ValueError(f"masks {masks.shape} do not match the STFT block {X.shape}")
        s0 = f0 * hop - half
        span = (f1 - f0 - 1) * hop + n_fft
        wsum = np.zeros(span, dtype=np.float64)
        for j in range(f1 - f0):
            wsum[j * hop : j * hop + n_fft] += win2
        lo, hi = t0 - s0, t1 - s0
        w = wsum[lo:hi]
        tiny = np.finfo(np.float64).tiny * 1e10
        scale = np.where(w > tiny, 1.0 / np.maximum(w, tiny), 0.0).astype(dtype)
        outs = []
        for g in range(masks.shape[0]):
            Y = X * masks[g].astype(dtype, copy=False)
            frames = irfft(np.swapaxes(Y, -1, -2), n_fft, dtype)
            frames *= win
            acc = np.zeros(X.shape[:-2] + (span,), dtype=dtype)
            for j in range(f1 - f0):
                acc[..., j * hop : j * hop + n_fft] += frames[..., j, :]
            outs.append(np.ascontiguousarray(acc[..., lo:hi] * scale))
        yield t0, outs
