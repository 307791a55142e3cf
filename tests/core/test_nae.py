"""Nonnegative autoencoder (DESIGN.md §2.4): MU and projected-gradient trainers, constraints, losses,
encode, validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.checks import assert_unmutated, snapshot

from demixer.core.nae import NAEResult, encode, init_encoder, nae, nae_steps
from demixer.core.nmf import _eps_for

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
METHODS = ["mu", "pgd"]


@st.composite
def problems(draw, dtype=np.float64):
    """V (K × N) with some exact zeros, a decoder, optionally an encoder, random masks."""
    K = draw(st.integers(1, 12))
    N = draw(st.integers(1, 12))
    R = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    zero_frac = draw(st.sampled_from([0.0, 0.0, 0.3]))
    scale = draw(st.sampled_from([1.0, 1e-3, 1e3]))
    rng = np.random.default_rng(seed)
    V = rng.random((K, N)) * scale
    V[rng.random((K, N)) < zero_frac] = 0.0
    W_D = rng.random((K, R)) + 0.05
    W_E = None if draw(st.booleans()) else (rng.random((R, K)) + 0.05) / (K * scale)
    mask_H = allow_W = None
    if draw(st.booleans()):
        mask_H = rng.random((R, N)) < draw(st.sampled_from([0.5, 0.9]))
    if draw(st.booleans()):
        allow_W = rng.random((K, R)) < draw(st.sampled_from([0.5, 0.9]))
    W_E = None if W_E is None else W_E.astype(dtype)
    return V.astype(dtype), W_D.astype(dtype), W_E, mask_H, allow_W


def masked(M, allow):
    return M.copy() if allow is None else np.where(allow, M, 0).astype(M.dtype)


def loss_of(V, W_D, W_E, mask_H) -> float:
    """‖V − W_D · encode(W_E, V, mask_H)‖², float64."""
    Hp = encode(W_E, V, mask_H).astype(np.float64)
    return float(np.sum((V.astype(np.float64) - W_D.astype(np.float64) @ Hp) ** 2))


def loss_floor(V) -> float:
    """Cancellation floor of the trace-identity loss: a few ulp of ‖V‖² in float64."""
    return 1e-13 * float(np.sum(np.asarray(V, np.float64) ** 2))


# ------------------------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("method", METHODS)
@FAST
@given(prob=problems(), n_iter=st.integers(0, 25))
def test_nonnegative_finite_masked_and_no_mutation(method, prob, n_iter):
    V, W_D, W_E, mask_H, allow_W = prob
    copies = snapshot(prob)
    res = nae(V, W_D, W_E, mask_H=mask_H, allow_W=allow_W, n_iter=n_iter, method=method)
    assert_unmutated(prob, copies, "nae")
    assert isinstance(res, NAEResult)
    K, R = W_D.shape
    N = V.shape[1]
    assert res.W_D.shape == (K, R) and res.W_E.shape == (R, K) and res.H.shape == (R, N)
    for M in (res.W_D, res.W_E, res.H):
        assert np.all(np.isfinite(M)) and np.all(M >= 0)
    if allow_W is not None:
        assert np.all(res.W_D[~allow_W] == 0)
    if mask_H is not None:
        assert np.all(res.H[~mask_H] == 0)
    assert np.array_equal(res.H, encode(res.W_E, V, mask_H))
    assert res.n_iter == n_iter == len(res.losses) and res.stopped == "max_iter"
    assert np.all(np.isfinite(res.losses)) and np.isfinite(res.initial_loss)


@FAST
@given(prob=problems(), n_iter=st.integers(1, 30))
def test_mu_loss_never_increases(prob, n_iter):
    V, W_D, W_E, mask_H, allow_W = prob
    res = nae(V, W_D, W_E, mask_H=mask_H, allow_W=allow_W, n_iter=n_iter, method="mu")
    seq = np.concatenate([[res.initial_loss], res.losses])
    floor = loss_floor(V)
    for i in range(1, len(seq)):
        assert seq[i] <= seq[i - 1] * (1 + 1e-9) + floor, f"loss increased at {i}: {seq[i - 1]} -> {seq[i]}"


@pytest.mark.parametrize("method", METHODS)
@FAST
@given(prob=problems(), n_iter=st.integers(0, 15))
def test_reported_losses_match_the_factors(method, prob, n_iter):
    V, W_D, W_E, mask_H, allow_W = prob
    floor = loss_floor(V)
    res = nae(V, W_D, W_E, mask_H=mask_H, allow_W=allow_W, n_iter=n_iter, method=method)
    W_E0 = init_encoder(W_D) if W_E is None else W_E
    expected0 = loss_of(V, masked(W_D, allow_W), W_E0, mask_H)
    assert res.initial_loss == pytest.approx(expected0, rel=1e-6, abs=floor)
    if n_iter:
        assert res.losses[-1] == pytest.approx(loss_of(V, res.W_D, res.W_E, mask_H), rel=1e-6, abs=floor)
    seen = 0
    for state in nae_steps(V, W_D, W_E, mask_H=mask_H, allow_W=allow_W, n_iter=n_iter, method=method):
        seen += 1
        assert state.iteration == seen
        assert state.loss == pytest.approx(loss_of(V, state.W_D, state.W_E, mask_H), rel=1e-6, abs=floor)
        assert np.array_equal(state.H, encode(state.W_E, V, mask_H))
    assert seen == n_iter


@FAST
@given(prob=problems())
def test_mu_one_step_matches_the_update_rules(prob):
    """DESIGN.md §2.4: decoder update, then the encoder update with the new decoder, in float64."""
    V, W_D, W_E, mask_H, allow_W = prob
    D = masked(W_D, allow_W)
    E = init_encoder(W_D) if W_E is None else W_E.copy()
    M = np.ones((W_D.shape[1], V.shape[1])) if mask_H is None else mask_H.astype(np.float64)
    eps = _eps_for(V)

    def flushed(A):  # the kernels' rule: entries below ε²·max become exactly 0 (subnormal guard)
        A = A.copy()
        if A.size and A.max() > 0:
            A[A < A.max() * np.finfo(A.dtype).eps ** 2] = 0
        return A

    Hp = np.maximum(E @ V, 0) * M
    D1 = flushed(D * (V @ Hp.T) / (D @ Hp @ Hp.T + eps))
    E1 = flushed(E * (((D1.T @ V) * M) @ V.T) / (((D1.T @ D1 @ Hp) * M) @ V.T + eps))
    res = nae(V, W_D, W_E, mask_H=mask_H, allow_W=allow_W, n_iter=1, method="mu")
    assert np.allclose(res.W_D, D1, rtol=1e-9, atol=0)
    assert np.allclose(res.W_E, E1, rtol=1e-9, atol=0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_descends(method, seed):
    """On a learnable V both trainers descend steadily. For PGD (1/L steps, then projection) this is checked
    on fixed problems only: the ReLU gating of the encoder gradient voids the descent guarantee at the
    boundary W_E = 0, though no random problem has shown an increase."""
    rng = np.random.default_rng(seed)
    K, N, R = 24, 60, 4
    V = (rng.random((K, R)) ** 4) @ rng.random((R, N)) ** 2
    W_D = rng.random((K, R)) + 0.1
    mask_H = rng.random((R, N)) < 0.8
    res = nae(V, W_D, mask_H=mask_H, n_iter=200, method=method)
    seq = np.concatenate([[res.initial_loss], res.losses])
    assert np.all(np.diff(seq) <= 1e-9 * seq[:-1])
    assert res.losses[-1] < 0.1 * res.initial_loss


@pytest.mark.parametrize("method", METHODS)
def test_masks_hold_through_training(method):
    rng = np.random.default_rng(8)
    K, N, R = 16, 20, 3
    V = rng.random((K, N))
    W_D = rng.random((K, R)) + 0.1
    allow_W = np.ones((K, R), bool)
    allow_W[: K // 2, 0] = False
    allow_W[:, 2] = False  # a template that is entirely forbidden
    mask_H = np.ones((R, N), bool)
    mask_H[1, ::2] = False
    mask_H[:, 5] = False  # a frame nobody may explain
    res = nae(V, W_D, mask_H=mask_H, allow_W=allow_W, n_iter=50, method=method)
    assert np.all(res.W_D[~allow_W] == 0) and np.all(res.H[~mask_H] == 0)
    assert np.all(np.isfinite(res.W_D)) and np.all(np.isfinite(res.W_E))
    assert np.all(res.W_D[allow_W] >= 0)


# ------------------------------------------------------------------------------------------- encode
@settings(max_examples=30, deadline=None)
@given(
    K=st.integers(1, 10), N=st.integers(1, 10), R=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1), use_mask=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_encode_is_relu_of_product_times_mask(K, N, R, seed, use_mask, dtype):
    rng = np.random.default_rng(seed)
    W_E = rng.random((R, K)).astype(dtype)
    W_E[rng.random((R, K)) < 0.3] = 0
    V = rng.random((K, N)).astype(dtype)
    mask = rng.random((R, N)) < 0.6 if use_mask else None
    W_E0, V0 = W_E.copy(), V.copy()
    H = encode(W_E, V, mask)
    ref = np.maximum(W_E.astype(np.float64) @ V.astype(np.float64), 0)
    if mask is not None:
        ref = ref * mask
        assert np.all(H[~mask] == 0)
    assert H.shape == (R, N) and H.dtype == dtype
    assert np.allclose(H, ref, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=0)
    assert np.array_equal(W_E, W_E0) and np.array_equal(V, V0)


def test_encode_validates():
    W_E = np.ones((2, 5))
    with pytest.raises(ValueError, match="columns"):
        encode(W_E, np.ones((4, 3)))
    with pytest.raises(ValueError, match="mask_H has shape"):
        encode(W_E, np.ones((5, 3)), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="nonnegative"):
        encode(-W_E, np.ones((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        encode(W_E, np.full((5, 3), np.nan))


def test_init_encoder_is_a_matched_filter():
    rng = np.random.default_rng(2)
    W_D = rng.random((12, 3)).astype(np.float32)
    W_D[:, 1] = 0  # an all-zero template must not divide by zero
    W_E = init_encoder(W_D)
    assert W_E.shape == (3, 12) and W_E.dtype == np.float32
    assert np.all(np.isfinite(W_E)) and np.all(W_E >= 0)
    diag = np.diag(W_E @ W_D)
    assert np.allclose(diag[[0, 2]], 1.0, rtol=1e-5)
    assert np.all(W_E[1] == 0)
    assert not np.shares_memory(W_E, W_D)


# ------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=10, deadline=None)
@given(prob=problems(), k=st.integers(1, 8))
def test_callback_false_stops_early(method, prob, k):
    V, W_D, W_E, mask_H, allow_W = prob
    seen = []

    def cb(state):
        seen.append(state.iteration)
        return state.iteration < k

    res = nae(V, W_D, W_E, mask_H=mask_H, allow_W=allow_W, n_iter=20, method=method, callback=cb)
    assert res.n_iter == k == len(res.losses) and res.stopped == "callback"
    assert seen == list(range(1, k + 1))
    assert np.array_equal(res.H, encode(res.W_E, V, mask_H))


@pytest.mark.parametrize("method", METHODS)
def test_iterator_matches_function(method):
    rng = np.random.default_rng(0)
    V = rng.random((10, 14))
    W_D = rng.random((10, 3)) + 0.1
    steps = list(nae_steps(V, W_D, n_iter=9, method=method))
    states = [(s.iteration, s.loss) for s in steps]
    res = nae(V, W_D, n_iter=9, method=method)
    assert all(s.initial_loss == res.initial_loss for s in steps)
    assert [i for i, _ in states] == list(range(1, 10))
    assert np.array_equal([loss for _, loss in states], res.losses)


@pytest.mark.parametrize("method", METHODS)
def test_float32_in_float32_out(method):
    rng = np.random.default_rng(1)
    V = rng.random((10, 14)).astype(np.float32)
    W_D = rng.random((10, 3)) + 0.1  # float64 decoder follows V's dtype
    res = nae(V, W_D, n_iter=10, method=method)
    assert res.W_D.dtype == res.W_E.dtype == res.H.dtype == np.float32
    assert np.all(np.isfinite(res.losses))
    res64 = nae(V.astype(np.float64), W_D, n_iter=10, method=method)
    assert res.losses[-1] == pytest.approx(res64.losses[-1], rel=1e-3)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_zero_V(method, dtype):
    V = np.zeros((6, 7), dtype)
    W_D = np.random.default_rng(0).random((6, 3)).astype(dtype) + 0.1
    res = nae(V, W_D, n_iter=20, method=method)
    for M in (res.W_D, res.W_E, res.H):
        assert np.all(np.isfinite(M)) and np.all(M >= 0)
    assert np.all(np.isfinite(res.losses)) and np.isfinite(res.initial_loss)
    assert np.all(res.losses == 0) and res.initial_loss == 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype, peak", [(np.float64, 1e-310), (np.float32, 1e-40)])
def test_vanishingly_quiet_V(method, dtype, peak):
    V = (np.random.default_rng(0).random((5, 6)) * peak).astype(dtype)
    V[0, 0] = dtype(peak)
    W_D = np.ones((5, 2), dtype)
    allow_W = np.ones((5, 2), bool)
    allow_W[:, 1] = False
    res = nae(V, W_D, np.ones((2, 5), dtype), allow_W=allow_W, n_iter=10, method=method)
    for M in (res.W_D, res.W_E, res.H):
        assert np.all(np.isfinite(M)) and np.all(M >= 0)
    assert np.all(np.isfinite(res.losses))


# ------------------------------------------------------------------------------------------- errors
def _ok():
    rng = np.random.default_rng(0)
    return rng.random((5, 6)), rng.random((5, 2))


@pytest.mark.parametrize(
    "V, W_D, W_E, kwargs, match",
    [
        (-np.ones((5, 6)), _ok()[1], None, {}, "nonnegative"),
        (np.full((5, 6), np.nan), _ok()[1], None, {}, "NaN"),
        (_ok()[0], np.full((5, 2), np.inf), None, {}, "infinite"),
        (_ok()[0], np.ones((4, 2)), None, {}, "W_D has 4 rows"),
        (_ok()[0], np.ones((5, 0)), None, {}, "R = 0"),
        (_ok()[0], _ok()[1], np.ones((2, 4)), {}, "W_E has shape"),
        (_ok()[0], _ok()[1], -np.ones((2, 5)), {}, "nonnegative"),
        (_ok()[0], _ok()[1], None, {"mask_H": np.ones((2, 5), bool)}, "mask_H has shape"),
        (_ok()[0], _ok()[1], None, {"allow_W": np.ones((2, 5), bool)}, "allow_W has shape"),
        (_ok()[0], _ok()[1], None, {"n_iter": -1}, "n_iter"),
        (_ok()[0], _ok()[1], None, {"method": "adam"}, "method"),
        (np.ones((0, 6)), np.ones((0, 2)), None, {}, "empty"),
    ],
)
def test_invalid_input_raises(V, W_D, W_E, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nae(V, W_D, W_E, **kwargs)
    with pytest.raises(ValueError, match=match):
        nae_steps(V, W_D, W_E, **kwargs)  # raises at the call, before the first step
