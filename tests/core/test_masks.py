"""Soft masks and resynthesis (DESIGN.md §1, §2.5): masks sum to 1, sources sum to the mixture."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demixer.core.masks import apply_masks, group_indices, resample_masks, separate, soft_masks, source_models
from demixer.core.stft import bin_freqs, frame_times, magnitude, stft

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def model_stacks(draw):
    """(G, K, N) nonnegative models with exact zeros, including bins where every model is 0."""
    G = draw(st.integers(1, 5))
    K = draw(st.integers(1, 10))
    N = draw(st.integers(1, 10))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    scale = draw(st.sampled_from([1.0, 1e-6, 1e6, 1e-30, 1e30]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    P = rng.random((G, K, N)) * scale
    P[rng.random((G, K, N)) < draw(st.sampled_from([0.0, 0.5, 0.9]))] = 0
    P[:, rng.random((K, N)) < 0.2] = 0  # all models silent in these bins
    return P.astype(dtype)


def check_masks(M, dtype=np.float32):
    tol = 1e-6 if dtype == np.float32 else 1e-12
    assert np.all(np.isfinite(M))
    assert np.all(M >= 0) and np.all(M <= 1 + tol)
    assert np.max(np.abs(M.astype(np.float64).sum(axis=0) - 1)) <= tol


# ------------------------------------------------------------------------------------------- soft masks
@FAST
@given(P=model_stacks(), alpha=st.sampled_from([1.0, 2.0, 0.5, 3.0]))
def test_soft_masks_sum_to_one(P, alpha):
    P0 = P.copy()
    M = soft_masks(P, alpha)
    assert np.array_equal(P, P0), "soft_masks mutated its input"
    assert M.shape == P.shape
    assert M.dtype == P.dtype
    check_masks(M, P.dtype)
    # bins where every model is silent are split equally
    silent = np.all(P == 0, axis=0)
    assert np.allclose(M[:, silent], 1.0 / P.shape[0])
    # a source whose model is 0 (in a bin where another is not) gets nothing there
    loud = ~silent
    assert np.all(M[(P == 0) & loud[None]] == 0)


@FAST
@given(P=model_stacks())
def test_soft_masks_values(P):
    """α = 1: M_g = V̂_g / Σ V̂_j; α = 2: the Wiener-like V̂_g² / Σ V̂_j²."""
    P64 = P.astype(np.float64)
    for alpha in (1.0, 2.0):
        M = soft_masks(P, alpha).astype(np.float64)
        Q = P64**alpha
        total = Q.sum(axis=0)
        ok = total > 1e-300 * 1e10
        ok &= (P64.max(axis=0) / max(float(P64.max()), 1e-300)) > 1e-8  # not underflowed in float32
        ref = Q[:, ok] / total[ok]
        assert np.allclose(M[:, ok], ref, rtol=1e-5, atol=1e-6)


def test_soft_masks_single_source_is_all_ones():
    P = np.random.default_rng(0).random((1, 4, 5)).astype(np.float32)
    P[0, 0, 0] = 0
    assert np.array_equal(soft_masks(P), np.ones_like(P))


def test_soft_masks_all_silent():
    for alpha in (1.0, 2.0):
        M = soft_masks(np.zeros((3, 4, 5), np.float32), alpha)
        check_masks(M)
        assert np.allclose(M, 1 / 3)


def test_soft_masks_huge_float32_values():
    P = np.full((3, 2, 2), np.finfo(np.float32).max / 2, np.float32)
    for alpha in (1.0, 2.0):
        M = soft_masks(P, alpha)
        check_masks(M)
        assert np.allclose(M, 1 / 3, rtol=1e-6)


@pytest.mark.parametrize(
    "models, alpha, match",
    [
        (np.ones((4, 5)), 1.0, "G, K, N"),
        (np.ones((0, 4, 5)), 1.0, "G, K, N"),
        (-np.ones((2, 4, 5)), 1.0, "nonnegative"),
        (np.full((2, 4, 5), np.nan), 1.0, "finite"),
        (np.ones((2, 4, 5)), 0.0, "alpha"),
        (np.ones((2, 4, 5)), -1.0, "alpha"),
    ],
)
def test_soft_masks_invalid(models, alpha, match):
    with pytest.raises(ValueError, match=match):
        soft_masks(models, alpha)


# ------------------------------------------------------------------------------------------- groups
@settings(max_examples=50, deadline=None)
@given(
    sources=st.lists(st.sampled_from(["lh", "rh", "soprano", "alto", "bass"]), unique=True, max_size=4),
    comps=st.lists(st.sampled_from(["lh", "rh", "soprano", "alto", "bass", None]), max_size=10),
)
def test_group_indices_partition(sources, comps):
    groups, has_residual = group_indices(comps, sources)
    unassigned = [r for r, s in enumerate(comps) if s not in sources]
    assert has_residual == bool(unassigned)
    assert len(groups) == len(sources) + (1 if unassigned else 0)
    for i, s in enumerate(sources):
        assert list(groups[i]) == [r for r, c in enumerate(comps) if c == s]
    if unassigned:
        assert list(groups[-1]) == unassigned  # the residual group comes last
    allidx = np.concatenate(groups) if groups else np.zeros(0, int)
    assert sorted(allidx.tolist()) == list(range(len(comps)))  # each component exactly once
    for g in groups:
        assert g.dtype == np.intp


def test_group_indices_examples():
    groups, res = group_indices(["lh", None, "rh", "lh", "other"], ["lh", "rh", "empty"])
    assert res is True
    assert [g.tolist() for g in groups] == [[0, 3], [2], [], [1, 4]]
    groups, res = group_indices(["lh", "rh"], ["lh", "rh"])
    assert res is False and [g.tolist() for g in groups] == [[0], [1]]


@FAST
@given(
    K=st.integers(1, 10), N=st.integers(1, 10), R=st.integers(1, 6), G=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]),
)
def test_source_models_add_up_to_the_model(K, N, R, G, seed, dtype):
    rng = np.random.default_rng(seed)
    W = rng.random((K, R)).astype(dtype)
    H = rng.random((R, N)).astype(dtype)
    owner = rng.integers(0, G + 1, R)  # G = unassigned
    names = [f"s{i}" for i in range(G)]
    groups, _ = group_indices([names[o] if o < G else None for o in owner], names)
    models = source_models(W, H, groups)
    assert models.shape == (len(groups), K, N) and models.dtype == dtype
    assert np.allclose(models.sum(axis=0), W @ H, rtol=1e-5)
    for g, idx in enumerate(groups):
        if idx.size == 0:
            assert np.all(models[g] == 0)


def test_source_models_invalid():
    W, H = np.ones((4, 3)), np.ones((3, 5))
    with pytest.raises(ValueError, match="component"):
        source_models(W, H, [[0, 3]])
    with pytest.raises(ValueError, match="component"):
        source_models(W, H, [[-1]])
    with pytest.raises(ValueError, match="product"):
        source_models(W, np.ones((2, 5)), [[0]])


# ------------------------------------------------------------------------------------------- separation
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    length=st.one_of(st.integers(1, 5), st.integers(1, 3000)),
    channels=st.sampled_from([None, 1, 2]),
    n_fft=st.sampled_from([16, 64, 256]),
    hop_div=st.sampled_from([2, 4, 3]),
    R=st.integers(1, 6),
    n_sources=st.integers(1, 3),
    alpha=st.sampled_from([1.0, 2.0]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_sources_sum_to_the_mixture(length, channels, n_fft, hop_div, R, n_sources, alpha, dtype, seed):
    rng = np.random.default_rng(seed)
    hop = n_fft // hop_div
    shape = (length,) if channels is None else (channels, length)
    x = rng.standard_normal(shape).astype(dtype)
    X = stft(x, n_fft, hop)
    mono = x if x.ndim == 1 else x.mean(axis=0)
    V = magnitude(stft(mono, n_fft, hop))
    K, N = V.shape
    W = rng.random((K, R)).astype(np.float32)
    H = rng.random((R, N)).astype(np.float32)
    W[rng.random((K, R)) < 0.4] = 0  # some bins that no model explains
    H[rng.random((R, N)) < 0.4] = 0
    names = [f"src{i}" for i in range(n_sources)]
    comps = [names[i] if i < n_sources else None for i in rng.integers(0, n_sources + 1, R)]
    comps[0] = None  # always a residual group
    groups, has_residual = group_indices(comps, names)
    assert has_residual and len(groups) == n_sources + 1
    masks = soft_masks(source_models(W, H, groups), alpha)
    check_masks(masks)
    x0, X0 = x.copy(), X.copy()
    outs = list(separate(X, masks, length, n_fft, hop))
    assert np.array_equal(x, x0) and np.array_equal(X, X0)
    assert len(outs) == len(groups)
    for y in outs:
        assert y.shape == x.shape
        assert np.all(np.isfinite(y))
    total = np.sum([y.astype(np.float64) for y in outs], axis=0)
    err = np.linalg.norm(total - x) / np.linalg.norm(x)
    assert err <= 1e-4


def test_separate_single_mask_is_identity():
    x = np.random.default_rng(3).standard_normal((2, 500))
    X = stft(x, 64, 16)
    (y,) = separate(X, np.ones((1,) + X.shape[-2:]), 500, 64, 16)
    assert np.allclose(y, x, atol=1e-10)


def test_separate_is_lazy_and_validates():
    X = stft(np.ones(100), 32, 8)
    gen = separate(X, np.ones((2, 4, 4)), 100, 32, 8)
    with pytest.raises(ValueError, match="masks"):
        next(gen)


def test_apply_masks():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 300)).astype(np.float32)
    X = stft(x, 32, 8)
    m = rng.random(X.shape[-2:])
    Y = apply_masks(X, m)
    assert Y.dtype == np.complex64 and Y.shape == X.shape
    assert np.allclose(Y, X * m[None], rtol=1e-6)
    Y1 = apply_masks(X[0], m)
    assert np.allclose(Y1, Y[0])
    with pytest.raises(ValueError, match="mask shape"):
        apply_masks(X, m[:-1])


# ------------------------------------------------------------------------------------------- resampling
@FAST
@given(
    G=st.integers(1, 4), K=st.integers(1, 12), N=st.integers(1, 12),
    K2=st.integers(1, 20), N2=st.integers(1, 20),
    sr=st.sampled_from([16000, 22050]), sr2=st.sampled_from([22050, 44100, 48000]),
    seed=st.integers(0, 2**32 - 1), alpha=st.sampled_from([1.0, 2.0]),
)
def test_resample_masks_keeps_sums(G, K, N, K2, N2, sr, sr2, seed, alpha):
    rng = np.random.default_rng(seed)
    P = rng.random((G, K, N)).astype(np.float32)
    P[rng.random(P.shape) < 0.3] = 0
    masks = soft_masks(P, alpha)
    # source grid: K bins up to sr/2; destination extends beyond it (held constant there)
    f_src = np.linspace(0, sr / 2, K) if K > 1 else np.zeros(1)
    t_src = np.arange(N) * 0.023
    f_dst = np.linspace(0, sr2 / 2, K2)
    t_dst = np.arange(N2) * 0.0117 - 0.01
    m0 = masks.copy()
    out = resample_masks(masks, f_src, t_src, f_dst, t_dst)
    assert np.array_equal(masks, m0)
    assert out.shape == (G, K2, N2)
    check_masks(out)


def test_resample_masks_identity_and_real_grids():
    rng = np.random.default_rng(1)
    masks = soft_masks(rng.random((3, 129, 40)).astype(np.float32))
    f, t = bin_freqs(256, 22050), frame_times(40, 22050, 64)
    assert np.allclose(resample_masks(masks, f, t, f, t), masks, atol=1e-7)
    out = resample_masks(masks, f, t, bin_freqs(512, 44100), frame_times(40, 44100, 128))
    assert out.shape == (3, 257, 40)
    check_masks(out)
    # linear interpolation: halfway points are averages
    f_mid = (f[:-1] + f[1:]) / 2
    mid = resample_masks(masks, f, t, f_mid, t)
    assert np.allclose(mid, (masks[:, :-1] + masks[:, 1:]) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="G, K, N"):
        resample_masks(masks[0], f, t, f, t)


def test_soft_masks_give_silent_bins_only_to_active_groups():
    """Issue 18 item 5: a source with no components gets mask 0, even where every model is 0; the bins
    go to the other groups, so the masks still sum to 1."""
    P = np.zeros((3, 4, 5), np.float32)
    P[0, :2] = 1.0  # group 0 sounds in rows 0-1; rows 2-3 are silent everywhere
    M = soft_masks(P, active=[True, False, True])
    check_masks(M)
    assert np.all(M[1] == 0)
    assert np.allclose(M[0, 2:], 0.5) and np.allclose(M[2, 2:], 0.5)
    assert np.allclose(soft_masks(np.zeros((2, 2, 2), np.float32), active=[False, False]), 0.5)
    with pytest.raises(ValueError):
        soft_masks(P, active=[True, False])


def test_soft_masks_overwrite_reuses_the_models_array():
    rng = np.random.default_rng(3)
    P = rng.random((3, 7, 11)).astype(np.float32)
    P[:, 0, 0] = 0.0  # an all-silent bin
    expected = soft_masks(P, 2.0)
    kept = P.copy()
    np.testing.assert_array_equal(P, kept)  # the default never touches the input
    out = soft_masks(P, 2.0, overwrite=True)
    assert out is P
    np.testing.assert_array_equal(out, expected)
    P64 = rng.random((2, 3, 4))  # another dtype than the masks' float64 … is still worked on in place
    assert soft_masks(P64, 1.0, overwrite=True) is P64
    ints = np.ones((2, 3, 4), dtype=np.int64)  # … but an integer stack is copied (masks are float)
    assert soft_masks(ints, 1.0, overwrite=True) is not ints
