"""NMF by multiplicative updates (DESIGN.md §1, §2.2): constraints, monotonicity, losses, options,
validation, and agreement with scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.checks import assert_unmutated, snapshot

from demixer.core.nmf import NMFResult, _eps_for, beta_divergence, nmf, nmf_steps, random_init

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BETAS = [2.0, 1.0, 0.0, 1.5]


@st.composite
def problems(draw, dtype=np.float64, masks=True, min_dim=1):
    """V (K × N) with some exact zeros, an initial W, H, and random allow masks."""
    K = draw(st.integers(min_dim, 12))
    N = draw(st.integers(min_dim, 12))
    R = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    zero_frac = draw(st.sampled_from([0.0, 0.0, 0.3]))
    scale = draw(st.sampled_from([1.0, 1e-3, 1e3]))
    rng = np.random.default_rng(seed)
    V = rng.random((K, N)) * scale
    V[rng.random((K, N)) < zero_frac] = 0.0
    W = rng.random((K, R)) + 0.05
    H = (rng.random((R, N)) + 0.05) * scale
    allow_W = allow_H = None
    if masks and draw(st.booleans()):
        allow_W = rng.random((K, R)) < draw(st.sampled_from([0.5, 0.9]))
        allow_H = rng.random((R, N)) < draw(st.sampled_from([0.5, 0.9]))
    return V.astype(dtype), W.astype(dtype), H.astype(dtype), allow_W, allow_H


def masked(M, allow):
    return M.copy() if allow is None else np.where(allow, M, 0).astype(M.dtype)


def recomputed_loss(V, W, H, beta):
    """The divergence the kernels report, recomputed from the returned factors (float64)."""
    WH = W.astype(np.float64) @ H.astype(np.float64)
    if beta == 2.0:
        return beta_divergence(V, WH, 2.0)
    return beta_divergence(V, WH + _eps_for(V), beta)


def _fixed(K=10, N=12, R=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    V = (rng.random((K, N)) + 0.01).astype(dtype)
    W, H = random_init(V, R, rng=seed + 1)
    return V, W, H, None, None


def loss_tol(V) -> float:
    """Absolute tolerance for comparing reported and recomputed losses: float64 rounding of the sums and
    the KL kernel's Σ(WH + ε) vs ΣWH bookkeeping (K·N·ε)."""
    V = np.asarray(V, np.float64)
    return 1e-12 * float(np.sum(V**2) + V.sum()) + 2 * V.size * _eps_for(V)


def assert_never_increases(initial, losses, V, what=""):
    """Each loss ≤ the previous one (starting from the initial loss), up to 1e-9 relative and the float64
    cancellation floor of the trace identity ‖V‖² − 2⟨W, VHᵀ⟩ + ⟨WᵀW, HHᵀ⟩ (a few ulp of ‖V‖²)."""
    seq = np.concatenate([[initial], losses])
    V64 = np.asarray(V, np.float64)
    floor = 1e-13 * float(np.sum(V64**2)) + 1e-12 * float(np.sum(V64))  # KL cancels on the scale of ΣV
    for i in range(1, len(seq)):
        assert seq[i] <= seq[i - 1] * (1 + 1e-9) + floor, (
            f"{what}loss increased at iteration {i}: {seq[i - 1]!r} -> {seq[i]!r}"
        )


# ------------------------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("beta", BETAS)
@FAST
@given(prob=problems(), n_iter=st.integers(0, 30))
def test_nonnegative_finite_masked_zeros_and_no_mutation(beta, prob, n_iter):
    V, W, H, allow_W, allow_H = prob
    copies = snapshot(prob)
    res = nmf(V, W, H, beta=beta, n_iter=n_iter, allow_W=allow_W, allow_H=allow_H)
    assert_unmutated(prob, copies, "nmf")
    assert isinstance(res, NMFResult)
    assert res.W.shape == W.shape and res.H.shape == H.shape
    assert res.W is not W and res.H is not H
    for M in (res.W, res.H):
        assert np.all(np.isfinite(M)) and np.all(M >= 0)
    if allow_W is not None:
        assert np.all(res.W[~allow_W] == 0)
        assert np.all(res.H[~allow_H] == 0)
    assert res.n_iter == n_iter == len(res.losses)
    assert res.stopped == "max_iter"
    assert np.all(np.isfinite(res.losses)) and np.isfinite(res.initial_loss)
    assert res.losses.dtype == np.float64


@pytest.mark.parametrize("beta", BETAS)
@FAST
@given(prob=problems(), n_iter=st.integers(1, 30))
def test_loss_never_increases(beta, prob, n_iter):
    V, W, H, allow_W, allow_H = prob
    res = nmf(V, W, H, beta=beta, n_iter=n_iter, allow_W=allow_W, allow_H=allow_H)
    assert_never_increases(res.initial_loss, res.losses, V, f"beta={beta}: ")


@pytest.mark.parametrize("beta", BETAS)
@FAST
@given(prob=problems(), n_iter=st.integers(0, 20))
def test_reported_losses_match_the_factors(beta, prob, n_iter):
    V, W, H, allow_W, allow_H = prob
    floor = loss_tol(V)
    # initial loss: from the masked initial factors
    res0 = nmf(V, W, H, beta=beta, n_iter=0, allow_W=allow_W, allow_H=allow_H)
    expected0 = recomputed_loss(V, masked(W, allow_W), masked(H, allow_H), beta)
    assert res0.initial_loss == pytest.approx(expected0, rel=1e-6, abs=floor)
    # every iteration: the state's loss is the loss of the state's factors
    seen = 0
    for state in nmf_steps(V, W, H, beta=beta, n_iter=n_iter, allow_W=allow_W, allow_H=allow_H):
        assert state.loss == pytest.approx(recomputed_loss(V, state.W, state.H, beta), rel=1e-6, abs=floor)
        seen += 1
    assert seen == n_iter
    res = nmf(V, W, H, beta=beta, n_iter=n_iter, allow_W=allow_W, allow_H=allow_H)
    if n_iter:
        assert res.losses[-1] == pytest.approx(recomputed_loss(V, res.W, res.H, beta), rel=1e-6, abs=floor)


def reference_step(V, W, H, beta, factor):
    """One multiplicative update of H (factor 'H') or W (factor 'W') as DESIGN.md §2.2 writes it, with the
    Févotte–Idier exponent γ = 1/(2−β) for β < 1, in float64, for comparison with the fast kernels."""
    eps = _eps_for(V)
    Y = W @ H + (0.0 if beta == 2.0 else eps)
    gamma = 1.0 / (2.0 - beta) if beta < 1 else 1.0
    Vw = np.maximum(V, np.finfo(V.dtype).tiny)  # the divergence kernels floor V at the smallest normal
    if factor == "H":
        if beta == 2.0:
            return H * (W.T @ V) / (W.T @ W @ H + eps)
        if beta == 1.0:
            return H * (W.T @ (Vw / Y)) / (W.sum(axis=0) + eps)[:, None]
        return H * ((W.T @ (Vw * Y ** (beta - 2))) / (W.T @ Y ** (beta - 1) + eps)) ** gamma
    if beta == 2.0:
        return W * (V @ H.T) / (W @ H @ H.T + eps)
    if beta == 1.0:
        return W * ((Vw / Y) @ H.T) / (H.sum(axis=1) + eps)
    return W * (((Vw * Y ** (beta - 2)) @ H.T) / (Y ** (beta - 1) @ H.T + eps)) ** gamma


def flushed(M, beta):
    """The kernels' documented rule for β ∈ {1, 2}: entries below ε²·max become exactly 0 (subnormals)."""
    if beta not in (1.0, 2.0):
        return M
    M = M.copy()
    if M.size and M.max() > 0:
        M[M < M.max() * np.finfo(M.dtype).eps ** 2] = 0
    return M


@pytest.mark.parametrize("beta", BETAS)
@FAST
@given(prob=problems())
def test_one_step_matches_the_update_rules(beta, prob):
    V, W, H, allow_W, allow_H = prob
    W0, H0 = masked(W, allow_W), masked(H, allow_H)

    def step(W, H, which):
        return flushed(reference_step(V, W, H, beta, which), beta)

    res_H = nmf(V, W, H, beta=beta, n_iter=1, update_W=False, allow_W=allow_W, allow_H=allow_H)
    assert np.allclose(res_H.H, step(W0, H0, "H"), rtol=1e-9, atol=0)
    res_W = nmf(V, W, H, beta=beta, n_iter=1, update_H=False, allow_W=allow_W, allow_H=allow_H)
    assert np.allclose(res_W.W, step(W0, H0, "W"), rtol=1e-9, atol=0)
    # both: H first, then W from the new H
    res = nmf(V, W, H, beta=beta, n_iter=1, allow_W=allow_W, allow_H=allow_H)
    H1 = step(W0, H0, "H")
    assert np.allclose(res.H, H1, rtol=1e-9, atol=0)
    assert np.allclose(res.W, step(W0, H1, "W"), rtol=1e-9, atol=0)


@pytest.mark.parametrize("beta", [2.0, 1.0])
def test_loss_decreases_substantially(beta):
    rng = np.random.default_rng(3)
    V = rng.random((20, 4)) @ rng.random((4, 30))
    W, H = random_init(V, 4, rng=7)
    res = nmf(V, W, H, beta=beta, n_iter=300)
    assert res.losses[-1] < 0.05 * res.initial_loss
    assert_never_increases(res.initial_loss, res.losses, V)


# ------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize("beta", BETAS)
@FAST
@given(prob=problems(), n_iter=st.integers(1, 15))
def test_update_W_false_keeps_masked_W(beta, prob, n_iter):
    V, W, H, allow_W, allow_H = prob
    res = nmf(V, W, H, beta=beta, n_iter=n_iter, update_W=False, allow_W=allow_W, allow_H=allow_H)
    assert np.array_equal(res.W, masked(W, allow_W))
    assert_never_increases(res.initial_loss, res.losses, V)


@pytest.mark.parametrize("beta", BETAS)
@FAST
@given(prob=problems(), n_iter=st.integers(1, 15))
def test_update_H_false_keeps_masked_H(beta, prob, n_iter):
    V, W, H, allow_W, allow_H = prob
    res = nmf(V, W, H, beta=beta, n_iter=n_iter, update_H=False, allow_W=allow_W, allow_H=allow_H)
    assert np.array_equal(res.H, masked(H, allow_H))
    assert_never_increases(res.initial_loss, res.losses, V)


@pytest.mark.parametrize("beta", BETAS)
@FAST
@given(prob=problems(), n_iter=st.integers(1, 15), data=st.data())
def test_lock_keeps_locked_columns(beta, prob, n_iter, data):
    V, W, H, allow_W, allow_H = prob
    R = W.shape[1]
    lock = np.array(data.draw(st.lists(st.booleans(), min_size=R, max_size=R)))
    normalize = data.draw(st.booleans())
    res = nmf(V, W, H, beta=beta, n_iter=n_iter, lock=lock, normalize=normalize,
              allow_W=allow_W, allow_H=allow_H)
    W0 = masked(W, allow_W)
    assert np.array_equal(res.W[:, lock], W0[:, lock])
    assert np.all(res.W >= 0) and np.all(np.isfinite(res.W))
    if allow_W is not None:
        assert np.all(res.W[~allow_W] == 0)
    assert_never_increases(res.initial_loss, res.losses, V)


@pytest.mark.parametrize("beta", BETAS)
@FAST
@given(prob=problems(), n_iter=st.integers(1, 15), how=st.sampled_from([True, "l2", "l1", "max"]))
def test_normalize_unit_columns_and_loss_still_decreases(beta, prob, n_iter, how):
    V, W, H, allow_W, allow_H = prob
    res = nmf(V, W, H, beta=beta, n_iter=n_iter, normalize=how, allow_W=allow_W, allow_H=allow_H)
    W64 = res.W.astype(np.float64)
    norms = {True: np.linalg.norm(W64, axis=0), "l2": np.linalg.norm(W64, axis=0),
             "l1": W64.sum(axis=0), "max": W64.max(axis=0)}[how]
    nonzero = norms > 0
    assert np.allclose(norms[nonzero], 1.0, rtol=1e-9)
    assert_never_increases(res.initial_loss, res.losses, V)
    floor = loss_tol(V)
    assert res.losses[-1] == pytest.approx(recomputed_loss(V, res.W, res.H, beta), rel=1e-6, abs=floor)


@pytest.mark.parametrize("beta", [2.0, 1.0])
def test_normalize_does_not_change_the_product_trajectory(beta):
    """MU is invariant to the W/H scale ambiguity, so normalising only rescales the pair."""
    rng = np.random.default_rng(11)
    V = rng.random((15, 25)) + 0.1
    W, H = random_init(V, 3, rng=1)
    a = nmf(V, W, H, beta=beta, n_iter=25)
    b = nmf(V, W, H, beta=beta, n_iter=25, normalize=True)
    assert np.allclose(a.W @ a.H, b.W @ b.H, rtol=1e-6)
    assert np.allclose(a.losses, b.losses, rtol=1e-6)


@pytest.mark.parametrize("beta", BETAS)
@settings(max_examples=15, deadline=None)
@given(prob=problems(masks=False), k=st.integers(1, 10))
def test_callback_false_stops_early(beta, prob, k):
    V, W, H, _, _ = prob
    calls = []

    def cb(state):
        calls.append(state.iteration)
        return state.iteration < k

    res = nmf(V, W, H, beta=beta, n_iter=20, callback=cb)
    assert res.n_iter == k == len(res.losses)
    assert res.stopped == "callback"
    assert calls == list(range(1, k + 1))


def test_callback_returning_none_does_not_stop():
    V, W, H, _, _ = _fixed()
    res = nmf(V, W, H, n_iter=7, callback=lambda s: None)
    assert res.n_iter == 7 and res.stopped == "max_iter"


@pytest.mark.parametrize("beta", BETAS)
def test_tol_stops_early(beta):
    V, W, H, _, _ = _fixed()
    res = nmf(V, W, H, beta=beta, n_iter=50, tol=10.0)
    assert res.n_iter == 1 and res.stopped == "tol"
    # an exactly factorisable V converges: the relative change falls below tol before max_iter
    rng = np.random.default_rng(5)
    V = rng.random((8, 2)) @ rng.random((2, 9)) + 0.1
    W, H = random_init(V, 3, rng=2)
    res = nmf(V, W, H, beta=beta, n_iter=20000, tol=1e-4)
    assert res.stopped == "tol" and 1 < res.n_iter < 20000
    # tol = 0 stops as soon as nothing changes
    res = nmf(V, W, H, beta=beta, n_iter=5, update_W=False, update_H=False, tol=0.0)
    assert res.n_iter == 1 and res.stopped == "tol"
    res = nmf(V, W, H, beta=beta, n_iter=5, tol=None)
    assert res.n_iter == 5 and res.stopped == "max_iter"


@pytest.mark.parametrize("beta", BETAS)
@FAST
@given(prob=problems(), n_iter=st.integers(0, 12))
def test_iterator_form(beta, prob, n_iter):
    V, W, H, allow_W, allow_H = prob
    V0, W0, H0 = V.copy(), W.copy(), H.copy()
    it = nmf_steps(V, W, H, beta=beta, n_iter=n_iter, allow_W=allow_W, allow_H=allow_H)
    states = []
    initial = []
    for s in it:
        states.append((s.iteration, s.loss, s.W.copy(), s.H.copy()))
        initial.append(s.initial_loss)
    assert [s[0] for s in states] == list(range(1, n_iter + 1))
    res = nmf(V, W, H, beta=beta, n_iter=n_iter, allow_W=allow_W, allow_H=allow_H)
    assert initial == [res.initial_loss] * n_iter  # every state carries the loss before iteration 1
    assert np.array_equal([s[1] for s in states], res.losses)
    if n_iter:
        assert np.array_equal(states[-1][2], res.W) and np.array_equal(states[-1][3], res.H)
    # the iterator works on copies too
    assert np.array_equal(V, V0) and np.array_equal(W, W0) and np.array_equal(H, H0)


def test_iterator_validates_before_the_first_step():
    V, W, H, _, _ = _fixed()
    with pytest.raises(ValueError, match="n_iter"):
        nmf_steps(V, W, H, n_iter=-1)
    with pytest.raises(ValueError, match="rows"):
        nmf_steps(V, W[:-1], H)


# ------------------------------------------------------------------------------------------- init, dtype
def test_random_init_reproducible_and_seeded():
    V = np.random.default_rng(0).random((9, 13)).astype(np.float32)
    W1, H1 = random_init(V, 4, rng=42)
    W2, H2 = random_init(V, 4, rng=42)
    W3, H3 = random_init(V, 4, rng=43)
    W4, H4 = random_init(V, 4, rng=np.random.default_rng(42))
    assert np.array_equal(W1, W2) and np.array_equal(H1, H2)
    assert np.array_equal(W1, W4) and np.array_equal(H1, H4)
    assert not np.array_equal(W1, W3) and not np.array_equal(H1, H3)
    assert W1.shape == (9, 4) and H1.shape == (4, 13)
    assert W1.dtype == H1.dtype == np.float32
    assert np.all(W1 > 0) and np.all(H1 > 0)
    # scaled so that W·H has about V's mean
    assert 0.2 < float((W1 @ H1).mean() / V.mean()) < 5
    assert random_init(V.astype(np.float64), 2, rng=0)[0].dtype == np.float64
    with pytest.raises(ValueError, match="R"):
        random_init(V, 0, rng=0)


@pytest.mark.parametrize("beta", BETAS)
def test_float32_in_float32_out(beta):
    V, W, H, _, _ = _fixed(dtype=np.float32)
    res = nmf(V, W.astype(np.float64), H, beta=beta, n_iter=10)
    assert res.W.dtype == np.float32 and res.H.dtype == np.float32
    assert np.all(np.isfinite(res.losses))
    res64 = nmf(V.astype(np.float64), W, H, beta=beta, n_iter=10)
    assert res64.W.dtype == np.float64
    # float32 and float64 runs agree closely over a few iterations
    assert res.losses[-1] == pytest.approx(res64.losses[-1], rel=1e-3)


@pytest.mark.parametrize("beta", BETAS)
@settings(max_examples=10, deadline=None)
@given(prob=problems(dtype=np.float32))
def test_float32_constraints(beta, prob):
    V, W, H, allow_W, allow_H = prob
    res = nmf(V, W, H, beta=beta, n_iter=20, allow_W=allow_W, allow_H=allow_H)
    assert res.W.dtype == np.float32 and res.H.dtype == np.float32
    assert np.all(res.W >= 0) and np.all(res.H >= 0)
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    if allow_W is not None:
        assert np.all(res.W[~allow_W] == 0) and np.all(res.H[~allow_H] == 0)


# ------------------------------------------------------------------------------------------- degenerate
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_zero_V(beta, dtype):
    V = np.zeros((6, 7), dtype)
    W, H = random_init(V + 1, 3, rng=0)
    res = nmf(V, W.astype(dtype), H.astype(dtype), beta=beta, n_iter=20)
    for M in (res.W, res.H):
        assert np.all(np.isfinite(M)) and np.all(M >= 0)
    assert np.all(np.isfinite(res.losses)) and np.isfinite(res.initial_loss)
    if beta in (2.0, 1.0):
        assert_never_increases(res.initial_loss, res.losses, V)


@pytest.mark.parametrize("beta", [2.0, 1.0])
@pytest.mark.parametrize("dtype, peak", [(np.float64, 1e-310), (np.float64, 1e-300), (np.float32, 1e-40)])
def test_vanishingly_quiet_V(beta, dtype, peak):
    """A V whose peak is below tiny/eps: ε = eps·max(V) must not underflow to 0 (0/0 = NaN)."""
    rng = np.random.default_rng(0)
    V = (rng.random((5, 6)) * peak).astype(dtype)
    V[0, 0] = dtype(peak)
    W, H = np.ones((5, 2), dtype), np.ones((2, 6), dtype)
    allow_W = np.ones((5, 2), bool)
    allow_W[:, 1] = False  # a zero column: its H row has a 0/ε update
    res = nmf(V, W, H, beta=beta, n_iter=10, allow_W=allow_W)
    for M in (res.W, res.H):
        assert np.all(np.isfinite(M)) and np.all(M >= 0)
    assert np.all(np.isfinite(res.losses))
    assert np.all(res.W[:, 1] == 0)


@pytest.mark.parametrize("dtype, big", [(np.float32, 1e8), (np.float64, 1e17)])
def test_kl_loss_where_V_is_zero_and_the_model_is_large(dtype, big):
    """V ⊘ WH underflows to 0 where V = 0 and WH is large; the KL loss must stay right, not −inf → 0."""
    V = np.array([[0, big], [big, 0]], dtype)
    W = np.ones((2, 1), dtype)
    H = np.full((1, 2), big, dtype)
    res = nmf(V, W, H, beta=1.0, n_iter=3)
    assert res.initial_loss == pytest.approx(beta_divergence(V, W @ H, 1.0), rel=1e-5)
    assert res.losses[-1] == pytest.approx(recomputed_loss(V, res.W, res.H, 1.0), rel=1e-5)
    assert res.losses[-1] > 0.5 * big


@pytest.mark.parametrize("beta", BETAS)
def test_zero_rows_and_columns_of_W_and_H(beta):
    """A template or activation that is entirely masked stays 0 and produces no NaN."""
    V, W, H, _, _ = _fixed()
    allow_W = np.ones(W.shape, bool)
    allow_W[:, 1] = False
    allow_H = np.ones(H.shape, bool)
    allow_H[2, :] = False
    allow_H[:, 4] = False
    res = nmf(V, W, H, beta=beta, n_iter=20, allow_W=allow_W, allow_H=allow_H, normalize=True)
    assert np.all(res.W[:, 1] == 0) and np.all(res.H[2] == 0) and np.all(res.H[:, 4] == 0)
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.H))
    assert_never_increases(res.initial_loss, res.losses, V)


def _bad(**changes):
    V, W, H, _, _ = _fixed(K=5, N=6, R=2)
    args = {"V": V, "W": W, "H": H}
    args.update(changes)
    return args


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (_bad(V=-np.ones((5, 6))), {}, "nonnegative"),
        (_bad(V=np.where(np.eye(5, 6) > 0, np.nan, 1.0)), {}, "NaN"),
        (_bad(W=np.where(np.eye(5, 2) > 0, np.inf, 1.0)), {}, "infinite"),
        (_bad(H=np.full((2, 6), -1e-3)), {}, "nonnegative"),
        (_bad(W=np.ones((4, 2))), {}, "W has 4 rows"),
        (_bad(H=np.ones((2, 5))), {}, "H has 5 columns"),
        (_bad(W=np.ones((5, 3))), {}, "components"),
        (_bad(W=np.ones((5, 0)), H=np.ones((0, 6))), {}, "R = 0"),
        (_bad(V=np.ones(6)), {}, "2-D"),
        (_bad(V=np.ones((0, 6)), W=np.ones((0, 2))), {}, "empty"),
        (_bad(V=np.ones((5, 6), complex)), {}, "real"),
        (_bad(), {"allow_W": np.ones((5, 3), bool)}, "allow_W has shape"),
        (_bad(), {"allow_H": np.ones((6, 2), bool)}, "allow_H has shape"),
        (_bad(), {"allow_W": np.full((5, 2), "x")}, "boolean"),
        (_bad(), {"lock": np.ones(3, bool)}, "lock"),
        (_bad(), {"n_iter": -1}, "n_iter"),
        (_bad(), {"tol": -1.0}, "tol"),
        (_bad(), {"beta": float("nan")}, "beta"),
        (_bad(), {"normalize": "l3"}, "normalize"),
    ],
)
def test_invalid_input_raises(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nmf(args["V"], args["W"], args["H"], **kwargs)
    with pytest.raises(ValueError, match=match):
        nmf_steps(args["V"], args["W"], args["H"], **{k: v for k, v in kwargs.items() if k != "callback"})


# ------------------------------------------------------------------------------------------- scikit-learn
@pytest.mark.parametrize("beta, loss_name", [(2.0, "frobenius"), (1.0, "kullback-leibler")])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_agrees_with_scikit_learn(beta, loss_name, seed):
    """Same init, same number of MU iterations: comparable losses. scikit-learn updates W before H (we do
    H first), so the runs are not equal; from the same start both descend to about the same value.
    (Long runs can end in different local minima for some inits; these seeds are ones where they do not.)"""
    sk = pytest.importorskip("sklearn.decomposition")
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(seed)
    K, N, R = 30, 40, 4
    V = rng.random((K, R + 2)) @ rng.random((R + 2, N)) + 0.05 * rng.random((K, N))
    W0, H0 = random_init(V, R, rng=seed + 100)
    start = beta_divergence(V, W0 @ H0, beta)
    for n, rel in ((10, 0.05), (1000, 0.02)):
        ours = nmf(V, W0, H0, beta=beta, n_iter=n)
        model = sk.NMF(n_components=R, solver="mu", beta_loss=loss_name, init="custom",
                       alpha_W=0.0, alpha_H=0.0, max_iter=n, tol=0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            W_sk = model.fit_transform(V.copy(), W=W0.copy(), H=H0.copy())
        assert model.n_iter_ == n
        ref = beta_divergence(V, W_sk @ model.components_, beta)
        mine = recomputed_loss(V, ours.W, ours.H, beta)
        assert ours.initial_loss == pytest.approx(start, rel=1e-6)
        assert mine < 0.7 * start and ref < 0.7 * start  # both made real progress
        assert mine == pytest.approx(ref, rel=rel), f"after {n} iterations"
