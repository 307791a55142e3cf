"""Constraint-aware and accelerated NMF kernels (demixer.core.nmf_sparse; DESIGN.md §2.2, §2.6).

Tolerances (stated here, used below): the constraint-aware kernels perform the dense kernels' updates in
another summation order, so after the same iterations from the same start, W and H agree to
``max|a − b| / max|a| ≤ 1e-10`` in float64 and ``≤ 1e-4`` in float32 after 100 iterations. The losses
agree to a relative 1e-10 (float64) / 1e-5 (float32) plus the rounding of the loss formulas themselves:
the Euclidean trace identity ‖V‖² − 2⟨W, VHᵀ⟩ + ⟨WᵀW, HHᵀ⟩ and the KL sums cancel on the scale of
‖V‖² + ΣV, so an absolute 1e-12 (float64) / 1e-6 (float32) of that scale is allowed too.
"""

from __future__ import annotations

import numpy as np
import pytest

from demixer.core import nmf_sparse
from demixer.core.nmf import _eps_for, beta_divergence, nmf, nmf_steps

RTOL = {np.float64: 1e-10, np.float32: 1e-4}
LOSS_RTOL = {np.float64: 1e-10, np.float32: 1e-5}
LOSS_SCALE_TOL = {np.float64: 1e-12, np.float32: 1e-6}


def score_like(K=48, N=300, R=16, seed=0, dtype=np.float64, gaps=True, w_density=0.85):
    """V, W0, H0 and masks shaped like a score's: each component allowed on a few intervals of frames
    (with frames where nothing is allowed when ``gaps``), templates allowed on most bins."""
    rng = np.random.default_rng(seed)
    allow_H = np.zeros((R, N), bool)
    for r in range(R):
        for _ in range(rng.integers(1, 4)):
            a = int(rng.integers(0, N))
            allow_H[r, a : a + int(rng.integers(5, 40))] = True
    if gaps:
        allow_H[:, N // 3 : N // 3 + 17] = False  # frames no component covers
    allow_W = rng.random((K, R)) < w_density
    W_true = rng.random((K, R)) * allow_W
    H_true = rng.random((R, N)) * allow_H
    V = W_true @ H_true + 0.05 * rng.random((K, N))
    W0 = rng.random((K, R)) + 0.1
    H0 = rng.random((R, N)) + 0.1
    return V.astype(dtype), W0.astype(dtype), H0.astype(dtype), allow_W, allow_H


def rel_err(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.finfo(np.float64).tiny))


def assert_same_run(dense, sparse, dtype, V):
    assert sparse.n_iter == dense.n_iter
    assert sparse.W.dtype == dense.W.dtype and sparse.H.dtype == dense.H.dtype
    assert rel_err(dense.W, sparse.W) <= RTOL[dtype]
    assert rel_err(dense.H, sparse.H) <= RTOL[dtype]
    V64 = np.asarray(V, np.float64)
    atol = LOSS_SCALE_TOL[dtype] * float(np.sum(V64**2) + V64.sum())
    assert sparse.initial_loss == pytest.approx(dense.initial_loss, rel=LOSS_RTOL[dtype], abs=atol)
    np.testing.assert_allclose(sparse.losses, dense.losses, rtol=LOSS_RTOL[dtype], atol=atol)


@pytest.fixture
def count_kernels(monkeypatch):
    """Counts the calls of the constraint-aware kernels (to be sure a test ran the path it tests)."""
    calls = {"euc": 0, "kl": 0}
    euc, kl = nmf_sparse.sparse_euclidean, nmf_sparse.sparse_kl

    def e(*a, **k):
        calls["euc"] += 1
        return euc(*a, **k)

    def k_(*a, **k):
        calls["kl"] += 1
        return kl(*a, **k)

    monkeypatch.setattr(nmf_sparse, "sparse_euclidean", e)
    monkeypatch.setattr(nmf_sparse, "sparse_kl", k_)
    return calls


# ------------------------------------------------------------------------------------------- same results
OPTIONS = [
    {},
    {"lock": "some"},
    {"normalize": True},
    {"normalize": "l1"},
    {"update_W": False},
    {"update_H": False},
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("beta", [2.0, 1.0])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_sparse_equals_dense_on_random_score_masks(beta, dtype, opts, count_kernels):
    for seed in (0, 1):
        V, W0, H0, allow_W, allow_H = score_like(seed=seed, dtype=dtype)
        kw = dict(opts)
        if kw.get("lock") == "some":
            kw["lock"] = np.arange(W0.shape[1]) % 3 == 0
        n_iter = 100 if dtype == np.float32 else 60
        common = dict(beta=beta, n_iter=n_iter, allow_W=allow_W, allow_H=allow_H, **kw)
        dense = nmf(V, W0, H0, method="dense", **common)
        sparse = nmf(V, W0, H0, method="sparse", **common)
        assert_same_run(dense, sparse, dtype, V)
        # masked entries are exactly zero in both
        assert np.all(sparse.W[~allow_W] == 0) and np.all(sparse.H[~allow_H] == 0)
    assert count_kernels["euc" if beta == 2.0 else "kl"] == 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_kl_in_segments_equals_dense_with_zeros_in_V(dtype, opts, monkeypatch):
    """A long recording's KL run holds the gathered templates and the W-numerator products in segments of
    _SEGMENT_BYTES (issue 14: 60 minutes in 4 GB) and floors V's zeros block by block (no floored copy):
    the same run as the dense kernel, to float rounding; and the structure really was segmented."""
    V, W0, H0, allow_W, allow_H = score_like(seed=4, dtype=dtype)
    V[:, :7] = 0.0  # silent frames: V's zeros are floored at tiny where V is copied
    V[5, 100:120] = 0.0
    kw = dict(opts)
    if kw.get("lock") == "some":
        kw["lock"] = np.arange(W0.shape[1]) % 3 == 0
    common = dict(beta=1.0, n_iter=60, allow_W=allow_W, allow_H=allow_H, **kw)
    dense = nmf(V, W0, H0, method="dense", **common)
    item = np.dtype(dtype).itemsize
    monkeypatch.setattr(nmf_sparse, "_SEGMENT_BYTES", 40 * V.shape[0] * item)  # 40 rows of K per buffer
    made = []
    compact = nmf_sparse._Compact

    class Tracked(compact):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(nmf_sparse, "_Compact", Tracked)
    sparse = nmf(V, W0, H0, method="sparse", **common)
    assert len(made) == 1 and made[0].segmented and made[0].Wg_all is None and made[0].P_all is None
    assert_same_run(dense, sparse, dtype, V)
    assert np.all(sparse.W[~allow_W] == 0) and np.all(sparse.H[~allow_H] == 0)


@pytest.mark.parametrize("beta", [2.0, 1.0])
def test_sparse_equals_dense_without_masks_but_with_zeros_in_H(beta):
    """The structure comes from H's zeros (after masking), so an H0 with zeros and no mask works too."""
    V, W0, H0, _, allow_H = score_like(seed=3)
    H0 = np.where(allow_H, H0, 0.0)
    dense = nmf(V, W0, H0, beta=beta, n_iter=40, method="dense")
    sparse = nmf(V, W0, H0, beta=beta, n_iter=40, method="sparse")
    assert_same_run(dense, sparse, np.float64, V)


@pytest.mark.parametrize("beta", [2.0, 1.0])
def test_iterator_states_match_dense(beta):
    V, W0, H0, allow_W, allow_H = score_like(seed=4, N=200)
    common = dict(beta=beta, n_iter=8, allow_W=allow_W, allow_H=allow_H)
    a = list((s.iteration, s.loss, s.W.copy(), s.H.copy()) for s in nmf_steps(V, W0, H0, method="dense", **common))
    b = list((s.iteration, s.loss, s.W.copy(), s.H.copy()) for s in nmf_steps(V, W0, H0, method="sparse", **common))
    assert [x[0] for x in a] == [x[0] for x in b] == list(range(1, 9))
    for (_, la, Wa, Ha), (_, lb, Wb, Hb) in zip(a, b, strict=True):
        assert lb == pytest.approx(la, rel=1e-10)
        assert rel_err(Wa, Wb) <= 1e-10 and rel_err(Ha, Hb) <= 1e-10


def test_callback_and_tol_work_on_the_sparse_path():
    V, W0, H0, allow_W, allow_H = score_like(seed=5)
    res = nmf(V, W0, H0, n_iter=50, allow_W=allow_W, allow_H=allow_H, method="sparse",
              callback=lambda s: s.iteration < 7)
    assert res.n_iter == 7 and res.stopped == "callback"
    res = nmf(V, W0, H0, beta=1.0, n_iter=50, allow_H=allow_H, method="sparse", tol=10.0)
    assert res.n_iter == 1 and res.stopped == "tol"


def test_real_score_cropped_mozart(shared_data):
    from demixer.engine.separation import analyse, initialise
    from demixer.io.audio import Audio, read_audio
    from demixer.io.score import clip_notes, read_score

    piece = shared_data / "dev" / "piano_mozart_k545"
    if not piece.is_dir():
        pytest.skip("piano_mozart_k545 is not in the shared data")
    audio = read_audio(piece / "mixture.wav")
    seconds = 6.0
    audio = Audio(audio.samples[:, : int(seconds * audio.sr)].copy(), audio.sr)
    notes, _, _ = clip_notes(read_score(piece / "score.csv"), seconds)
    analysis = analyse(audio)
    init = initialise(notes, analysis)
    assert init.allow_H.mean() < 0.35  # a score's activations are sparse
    for beta in (2.0, 1.0):
        common = dict(beta=beta, n_iter=100, allow_W=init.allow_W, allow_H=init.allow_H)
        dense = nmf(analysis.V, init.W0, init.H0, method="dense", **common)
        sparse = nmf(analysis.V, init.W0, init.H0, method="sparse", **common)
        assert dense.W.dtype == np.float32
        assert_same_run(dense, sparse, np.float32, analysis.V)


def exact_factorisation(seed, K=48, N=300, R=16):
    """V = W H exactly, with half of the allowed entries of the true W and H zero: multiplicative updates
    shrink the start's values there geometrically, into subnormal floats unless they are flushed."""
    rng = np.random.default_rng(seed)
    allow_H = np.zeros((R, N), bool)
    for r in range(R):
        for _ in range(rng.integers(1, 4)):
            a = int(rng.integers(0, N))
            allow_H[r, a : a + int(rng.integers(5, 40))] = True
    allow_W = rng.random((K, R)) < 0.85
    W_true = rng.random((K, R)) * allow_W * (rng.random((K, R)) < 0.6)
    H_true = rng.random((R, N)) * allow_H * (rng.random((R, N)) < 0.5)
    V = (W_true @ H_true).astype(np.float32)
    W0 = (rng.random((K, R)) + 0.1).astype(np.float32)
    H0 = (rng.random((R, N)) + 0.1).astype(np.float32)
    return V, W0, H0, allow_W, allow_H


def n_subnormal(*arrays) -> int:
    return sum(int(np.count_nonzero((a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny))) for a in arrays)


@pytest.mark.parametrize("beta, accelerate, seed", [(1.0, None, 0), (1.0, None, 1), (2.0, True, 1)])
def test_tiny_entries_are_flushed_not_left_subnormal(beta, accelerate, seed, monkeypatch):
    V, W0, H0, allow_W, allow_H = exact_factorisation(seed)
    common = dict(beta=beta, n_iter=200, allow_W=allow_W, allow_H=allow_H, method="sparse", accelerate=accelerate)
    res = nmf(V, W0, H0, **common)
    assert n_subnormal(res.W, res.H) == 0
    # control: the same run without the flush does leave subnormals (so the check above means something)
    monkeypatch.setattr(nmf_sparse, "_flush", lambda M, it, every: None)
    monkeypatch.setattr(nmf_sparse._Compact, "flush", lambda self, it, every: None)
    assert n_subnormal(*(lambda r: (r.W, r.H))(nmf(V, W0, H0, **common))) > 0


# ------------------------------------------------------------------------------------------- accelerated
def recomputed(V, W, H, beta=2.0):
    return beta_divergence(V, W.astype(np.float64) @ H.astype(np.float64), beta)


@pytest.mark.parametrize("method", ["sparse", "dense"])
@pytest.mark.parametrize("opts", [{}, {"normalize": True}, {"lock": "some"}, {"update_W": False},
                                  {"update_H": False}], ids=str)
def test_accelerated_keeps_zeros_and_never_increases_the_loss(method, opts):
    for seed in (0, 1, 2):
        V, W0, H0, allow_W, allow_H = score_like(seed=seed)
        kw = dict(opts)
        if kw.get("lock") == "some":
            kw["lock"] = np.arange(W0.shape[1]) % 3 == 0
        res = nmf(V, W0, H0, n_iter=40, allow_W=allow_W, allow_H=allow_H, method=method, accelerate=True, **kw)
        assert np.all(res.W[~allow_W] == 0) and np.all(res.H[~allow_H] == 0)
        assert np.all(res.W >= 0) and np.all(res.H >= 0)
        seq = np.concatenate([[res.initial_loss], res.losses])
        floor = 1e-13 * float(np.sum(V**2))
        assert np.all(np.diff(seq) <= 1e-12 * seq[:-1] + floor), np.diff(seq).max()
        # the reported loss is the loss of the returned factors
        assert res.losses[-1] == pytest.approx(recomputed(V, res.W, res.H), rel=1e-9, abs=floor)
        if kw.get("lock") is not None:
            lk = kw["lock"]
            np.testing.assert_array_equal(res.W[:, lk], np.where(allow_W, W0, 0)[:, lk])


def test_accelerated_reaches_a_lower_loss_per_iteration():
    V, W0, H0, allow_W, allow_H = score_like(seed=7, N=400)
    common = dict(n_iter=30, allow_W=allow_W, allow_H=allow_H, method="sparse")
    plain = nmf(V, W0, H0, **common)
    fast = nmf(V, W0, H0, accelerate=True, **common)
    assert fast.losses[-1] < plain.losses[-1]
    # ... and it reaches the loss of 30 plain iterations in fewer outer iterations
    assert np.argmax(fast.losses <= plain.losses[-1]) + 1 < 30


def test_accelerated_states_report_every_outer_iteration():
    V, W0, H0, allow_W, allow_H = score_like(seed=8)
    states = list(nmf_steps(V, W0, H0, n_iter=5, allow_W=allow_W, allow_H=allow_H, accelerate=True))
    assert [s.iteration for s in states] == [1, 2, 3, 4, 5]
    for s in states[-1:]:
        assert s.loss == pytest.approx(recomputed(V, s.W, s.H), rel=1e-9)


def test_inner_limits_follow_the_cost_ratio():
    """Gillis & Glineur: ⌊1 + α ρ⌋ inner updates, ρ = 1 + products / inner update; cheap inner updates
    (few active components per block) allow more of them."""
    K, R, N = 1025, 60, 800
    rng = np.random.default_rng(0)
    narrow = np.zeros((R, N), bool)
    for r in range(R):
        a = int(rng.integers(0, N - 40))
        narrow[r, a : a + 40] = True
    plan = nmf_sparse.plan_blocks(narrow, K, 2.0)
    max_H, max_W = nmf_sparse._inner_limits(plan, K, R, 2.0)
    assert max_H >= 3 and max_W >= 1
    assert nmf_sparse._inner_limits(plan, K, R, 0.0) == (1, 1)


# ------------------------------------------------------------------------------------------- auto
def test_auto_picks_dense_for_dense_masks_and_unconstrained_runs(count_kernels):
    rng = np.random.default_rng(0)
    K, N, R = 513, 1300, 60
    V = rng.random((K, N)).astype(np.float32)
    H = rng.random((R, N)).astype(np.float32) + 0.1
    for beta in (2.0, 1.0):
        assert nmf_sparse.choose_method(H, K, beta)[0] == "dense"
        dense_mask = rng.random((R, N)) < 0.9
        assert nmf_sparse.choose_method(np.where(dense_mask, H, 0), K, beta)[0] == "dense"
    # unconstrained: auto runs the dense kernel itself (bit-identical results)
    W = rng.random((K, R)).astype(np.float32)
    a = nmf(V, W, H, n_iter=3, method="auto")
    b = nmf(V, W, H, n_iter=3, method="dense")
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)
    assert count_kernels == {"euc": 0, "kl": 0}


def test_auto_picks_sparse_for_a_score_like_mask():
    K, N, R = 1025, 2600, 120
    rng = np.random.default_rng(1)
    allow = np.zeros((R, N), bool)
    for r in range(R):
        for _ in range(4):
            a = int(rng.integers(0, N - 60))
            allow[r, a : a + 60] = True  # ~9 % of the frames
    H = allow.astype(np.float32)
    for beta in (2.0, 1.0):
        method, plan = nmf_sparse.choose_method(H, K, beta)
        assert method == "sparse", plan
        assert plan.cost_sparse < 0.5 * plan.cost_dense
    assert nmf_sparse.choose_method(H, K, 0.0)[0] == "dense"  # no constraint-aware kernel for β ∉ {1, 2}


def test_other_betas_and_invalid_options():
    V, W0, H0, allow_W, allow_H = score_like(seed=9, N=60)
    res = nmf(V, W0, H0, beta=0.0, n_iter=3, allow_H=allow_H)  # auto → dense kernel for IS
    assert res.n_iter == 3
    with pytest.raises(ValueError, match="method"):
        nmf(V, W0, H0, method="fast")
    with pytest.raises(ValueError, match="sparse"):
        nmf(V, W0, H0, beta=0.0, method="sparse")
    with pytest.raises(ValueError, match="Euclidean"):
        nmf(V, W0, H0, beta=1.0, accelerate=True)
    with pytest.raises(ValueError, match="accelerate"):
        nmf(V, W0, H0, accelerate="yes")


def test_zero_iterations_and_empty_support():
    V, W0, H0, allow_W, allow_H = score_like(seed=10, N=80)
    for beta in (2.0, 1.0):
        r0 = nmf(V, W0, H0, beta=beta, n_iter=0, allow_H=allow_H, method="sparse")
        d0 = nmf(V, W0, H0, beta=beta, n_iter=0, allow_H=allow_H, method="dense")
        assert r0.n_iter == 0 and r0.initial_loss == pytest.approx(d0.initial_loss, rel=1e-12)
        nothing = np.zeros_like(allow_H)
        a = nmf(V, W0, H0, beta=beta, n_iter=3, allow_H=nothing, method="sparse")
        b = nmf(V, W0, H0, beta=beta, n_iter=3, allow_H=nothing, method="dense")
        assert np.all(a.H == 0)
        assert_same_run(b, a, np.float64, V)
        assert a.losses[-1] == pytest.approx(beta_divergence(V, a.W @ a.H + (_eps_for(V) if beta == 1 else 0),
                                                             beta), rel=1e-9)


@pytest.mark.parametrize("update_W, update_H", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kl_without_loss_tracking_gives_the_same_factors(update_W, update_H, dtype):
    """track_loss=False (a quiet headless run) skips the losses, never the updates: W and H are bitwise
    those of the tracked run, every loss is NaN, and the number of steps is the same."""
    V, W0, H0, aW, aH = score_like(dtype=dtype)
    runs = {}
    for track in (True, False):
        steps = nmf_steps(V, W0, H0, beta=1.0, n_iter=12, update_W=update_W, update_H=update_H, allow_W=aW,
                          allow_H=aH, method="sparse", track_loss=track)
        states = [(s.loss, s.W.copy(), s.H.copy()) for s in steps]
        runs[track] = states
    assert len(runs[True]) == len(runs[False]) == 12
    for (l1, W1, H1), (l2, W2, H2) in zip(runs[True], runs[False], strict=True):
        assert np.isfinite(l1) and np.isnan(l2)
        np.testing.assert_array_equal(W1, W2)
        np.testing.assert_array_equal(H1, H2)
