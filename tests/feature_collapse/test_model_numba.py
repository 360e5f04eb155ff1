"""model_numba against the reference model, pass by pass: embed, forward, cross_entropy, backward,
loss_and_grads, sgd_step (and its fused form), at several shapes including degenerate ones.

float64 agreement is 1e-12 relative to the reference's largest entry. float32: the twin accumulates in
float32 in another order than NumPy's pairwise sums and multiplies by reciprocals where the reference
divides; the deviations measured here are ≲ 2e-6, the tolerance is 2e-5.
"""

import numpy as np
import pytest

from refimpl import blas
from refimpl.feature_collapse import data, layernorm, model, model_numba, settings, sgd

TOL = {np.float64: 1e-12, np.float32: 2e-5}
# (N, L, d, nw, K): the fig-3-like small case, degenerate ones (one sentence, one position, d = 2, one or
# two classes) and a larger one.
SHAPES = [(12, 5, 6, 12, 7), (1, 1, 2, 3, 1), (1, 1, 2, 4, 2), (3, 1, 3, 2, 2), (160, 6, 16, 20, 40)]
IDS = ["small", "N1-L1-d2-K1", "N1-L1-d2-K2", "L1-d3-K2", "larger"]


def _problem(rng, dtype, N, L, d, nw, K):
    W = rng.standard_normal((d, nw)).astype(dtype)                        # (d, nw)
    U = (0.5 * rng.standard_normal((K, L * d))).astype(dtype)             # (K, L·d)
    tokens = rng.integers(0, nw, size=(N, L))                             # (N, L)
    labels = rng.integers(0, K, size=N)                                   # (N,)
    return W, U, tokens, labels


def rel_err(got, want, scale=None) -> float:
    """max |got − want| / max |want| (or / `scale`)."""
    want = np.asarray(want, dtype=np.float64)
    scale = scale if scale is not None else float(np.max(np.abs(want)))
    return float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want))) / max(scale, 1e-300)


def assert_close(got, want, tol, name, scale=None):
    err = rel_err(got, want, scale)
    assert err <= tol, f"{name}: max relative deviation {err:.3e} > {tol:.0e}"


dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32])
shapes = pytest.mark.parametrize("shape", SHAPES, ids=IDS)
networks = pytest.mark.parametrize("ln", [False, True], ids=["h", "h*"])


@dtypes
@shapes
def test_embed(dtype, shape, rng):
    W, _, tokens, _ = _problem(rng, dtype, *shape)
    got = model_numba.embed(W, tokens)
    assert got.shape == model.embed(W, tokens).shape and got.dtype == dtype
    np.testing.assert_array_equal(got, model.embed(W, tokens))           # a gather: exact


@dtypes
@shapes
@networks
def test_forward(dtype, shape, ln, rng):
    W, U, tokens, _ = _problem(rng, dtype, *shape)
    want, _ = model.forward(W, U, tokens, layernorm=ln, eps=1e-5)
    got, _ = model_numba.forward(W, U, tokens, layernorm=ln, eps=1e-5)
    assert got.shape == want.shape and got.dtype == dtype
    assert_close(got, want, TOL[dtype], "scores")


@dtypes
@shapes
def test_cross_entropy(dtype, shape, rng):
    N, K = shape[0], shape[4]
    scores = (3 * rng.standard_normal((N, K))).astype(dtype)
    labels = rng.integers(0, K, size=N)
    loss, dscores = model.cross_entropy(scores.copy(), labels)
    got_loss, got_dscores = model_numba.cross_entropy(scores, labels)
    assert got_loss == pytest.approx(loss, rel=TOL[dtype], abs=TOL[dtype])
    assert got_dscores.shape == dscores.shape
    assert np.max(np.abs(got_dscores - dscores)) <= TOL[dtype] * max(np.max(np.abs(dscores)), 1.0 / N)


@dtypes
@shapes
@networks
def test_backward_with_random_upstream_gradient(dtype, shape, ln, rng):
    """Random dscores (not the softmax's): every path of the backward pass is exercised."""
    W, U, tokens, _ = _problem(rng, dtype, *shape)
    dscores = rng.standard_normal((shape[0], shape[4])).astype(dtype)     # (N, K)
    _, cache = model.forward(W, U, tokens, layernorm=ln, eps=1e-5)
    dW, dU = model.backward(dscores, cache)
    _, twin_cache = model_numba.forward(W, U, tokens, layernorm=ln, eps=1e-5)
    got_dW, got_dU = model_numba.backward(dscores, twin_cache)
    assert got_dW.shape == dW.shape and got_dU.shape == dU.shape
    assert_close(got_dU, dU, TOL[dtype], "dU")
    # dW through φ with d = 2 is zero up to rounding (φ is constant on each half-line of R²): judged at dU's
    # scale there, at its own otherwise.
    scale = max(np.max(np.abs(dU)), np.max(np.abs(dW))) if ln and shape[2] == 2 else None
    assert_close(got_dW, dW, TOL[dtype], "dW", scale)


@dtypes
@shapes
@networks
def test_loss_and_grads(dtype, shape, ln, rng):
    W, U, tokens, labels = _problem(rng, dtype, *shape)
    kw = dict(layernorm=ln, lam_W=0.0 if ln else 0.3, lam_U=0.2, eps=1e-5)
    ref = model.loss_and_grads(W, U, tokens, labels, backend="numpy", **kw)
    got = model_numba.loss_and_grads(W, U, tokens, labels, **kw)
    assert got[0] == pytest.approx(ref[0], rel=TOL[dtype])
    scale = max(np.max(np.abs(ref[1])), np.max(np.abs(ref[2])))          # dW alone may vanish (d = 2, K = 1)
    for name, g, r in zip(("dW", "dU"), got[1:], ref[1:], strict=True):
        assert g.shape == r.shape and g.dtype == dtype
        assert_close(g, r, TOL[dtype], name, scale)


def test_loss_and_grads_routes_to_the_twin_by_default(rng):
    W, U, tokens, labels = _problem(rng, np.float64, *SHAPES[0])
    by_default = model.loss_and_grads(W, U, tokens, labels, layernorm=True, lam_U=0.1)
    twin = model_numba.loss_and_grads(W, U, tokens, labels, layernorm=True, lam_U=0.1)
    assert by_default[0] == twin[0]
    np.testing.assert_array_equal(by_default[1], twin[1])


@dtypes
@shapes
@networks
@pytest.mark.parametrize("layout", ["trainer", "C-ordered"])
def test_sgd_step(dtype, shape, ln, layout, rng):
    """The twin's sgd_step updates W and U in place as the reference's does, in either memory layout."""
    W, U, tokens, labels = _problem(rng, dtype, *shape)
    kw = dict(lr=0.1, lam_W=0.0 if ln else 0.01, lam_U=0.02, layernorm=ln, eps=1e-5)
    W_ref, U_ref = W.copy(), U.copy()
    loss_ref, correct_ref = model.sgd_step(W_ref, U_ref, tokens, labels, **kw)
    W_k = np.asfortranarray(W) if layout == "trainer" else np.ascontiguousarray(W)
    U_k = U.copy()
    loss_k, correct_k = model_numba.sgd_step(W_k, U_k, tokens, labels, **kw)
    assert correct_k == correct_ref
    assert loss_k == pytest.approx(loss_ref, rel=TOL[dtype])
    assert_close(W_k, W_ref, TOL[dtype], "W after the step")
    assert_close(U_k, U_ref, TOL[dtype], "U after the step")


@dtypes
def test_sgd_step_fused_reuses_its_workspace_and_matches_steps_of_the_reference(dtype, rng):
    W, U, tokens, labels = _problem(rng, dtype, *SHAPES[0])
    kw = dict(lr=0.2, lam_W=0.01, lam_U=0.02, layernorm=True, eps=1e-5)
    W_ref, U_ref = W.copy(), U.copy()
    Wf, Uf = np.asfortranarray(W), U.copy()
    ws = None
    for _ in range(3):
        loss_ref, correct_ref = model.sgd_step(W_ref, U_ref, tokens, labels, **kw)
        loss, correct, ws_next = model_numba.sgd_step_fused(Wf.T, Uf, tokens, labels, ws=ws, **kw)
        assert ws is None or ws_next is ws
        ws = ws_next
        assert correct == correct_ref and loss == pytest.approx(loss_ref, rel=TOL[dtype])
    assert_close(Wf, W_ref, TOL[dtype], "W after three steps")
    assert_close(Uf, U_ref, TOL[dtype], "U after three steps")


def test_cross_entropy_is_stable_for_large_scores(rng):
    """Scores of ±1e4 must give finite losses equal to the reference's log-sum-exp."""
    S = rng.standard_normal((5, 9)) * 1e4
    labels = rng.integers(0, 9, 5)
    ref_loss, ref_grad = model.cross_entropy(S.copy(), labels)
    loss, grad = model_numba.cross_entropy(S, labels)
    assert np.isfinite(loss) and loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, atol=1e-15)


def test_two_epochs_of_training_agree_across_backends_in_float64():
    task = data.make_task(3, 12, 4, 20, 4, freq="zipf", seed=3)
    results = {}
    for backend in ("numpy", "numba"):
        cfg = settings.TrainConfig(d=8, epochs=2, batch=16, dtype="float64", backend=backend, layernorm=True,
                                   decay_W=False, lr=0.5)
        results[backend] = sgd.train(task, cfg)
    a, b = results["numpy"], results["numba"]
    np.testing.assert_allclose(b.W, a.W, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b.U, a.U, rtol=1e-12, atol=1e-15)
    assert [h["train_accuracy"] for h in a.history] == [h["train_accuracy"] for h in b.history]


# ---- the fused passes of the trainer's step, each against the reference ------------------------------------

@dtypes
@shapes
@networks
def test_layernorm_backward_scatter_add_is_the_two_passes_and_the_reference(dtype, shape, ln, rng):
    """The fused VJP + scatter gives the reference's dW for a random upstream dX, and the same as its two
    halves (layernorm_backward_inplace, then scatter_add) run one after the other."""
    W, U, tokens, _ = _problem(rng, dtype, *shape)
    N, L, d, nw, _ = shape
    dX = rng.standard_normal((N, L * d)).astype(dtype)                   # (N, L·d) upstream gradient
    _, ref_cache = model.forward(W, U, tokens, layernorm=ln, eps=1e-5)
    dE = dX.reshape(N, L, d).astype(np.float64)                          # (N, L, d)
    if ln:
        dE = layernorm.backward(dE, ref_cache[4])                        # Jᵀ dX, the reference's VJP
    want = np.zeros((nw, d))                                             # (nw, d) dWᵀ = np.add.at of Jᵀ dX
    np.add.at(want, tokens.ravel(), dE.reshape(N * L, d))
    _, cache = model_numba.forward(W, U, tokens, layernorm=ln, eps=1e-5)
    X, sigma = cache.ws.X, cache.ws.sigma                                # (N, L·d), (N, L)
    fused, g = np.zeros((nw, d), dtype), dX.copy()
    model_numba.layernorm_backward_scatter_add(fused, tokens, g, X, sigma, ln, dtype(1.0))
    halves, g2 = np.zeros((nw, d), dtype), dX.copy()
    if ln:
        model_numba.layernorm_backward_inplace(g2, X, sigma, L)
    model_numba.scatter_add(halves, tokens, g2, dtype(1.0))
    scale = float(np.max(np.abs(dX)))                                    # dW through φ vanishes when d = 2
    assert_close(fused, want, TOL[dtype], "fused dWᵀ vs the reference", scale)
    assert_close(fused, halves, TOL[dtype], "fused dWᵀ vs its two halves", scale)
    assert_close(g, g2, TOL[dtype], "dX after the VJP", scale)


@dtypes
def test_cross_entropy_counts_a_tie_as_the_first_maximum(dtype):
    """Ties go to the first maximal class (np.argmax's rule, the reference's): a label tied for the
    maximum but later is wrong, one tied and first is right; losses and dscores as the reference's."""
    S = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0]], dtype)   # (3, 4)
    labels = np.array([2, 0, 3])
    loss, dscores = model.cross_entropy(S.copy(), labels)
    correct = int(np.sum(S.argmax(axis=1) == labels))
    N = len(labels)
    S_twin = S.copy()
    loss_rows, correct_rows, margin_rows = np.empty(N), np.empty(N, np.int64), np.empty(N)
    model_numba.cross_entropy_inplace(S_twin, labels, loss_rows, correct_rows, margin_rows)
    assert correct_rows.tolist() == [0, 1, 0] and int(correct_rows.sum()) == correct
    assert loss_rows.mean() == pytest.approx(loss, rel=TOL[dtype])
    assert_close(S_twin, dscores, TOL[dtype], "dscores")


@dtypes
@networks
def test_sgd_step_gemms_are_the_steps_three_products(dtype, ln, rng):
    """After a step, sgd_step_gemms recomputes S = X Uᵀ, dX = S U and U ← (1 − lr·λ_U)U − lr·2^-60·SᵀX on
    the step's own buffers (what bench sgd times as the step's GEMMs)."""
    W, U, tokens, labels = _problem(rng, dtype, *SHAPES[4])
    kw = dict(lr=0.1, lam_W=0.0, lam_U=0.02, layernorm=ln, eps=1e-5)
    ws = model_numba.sgd_step_fused(np.asfortranarray(W).T, U, tokens, labels, **kw)[2]
    X, U0 = ws.X.astype(np.float64), U.astype(np.float64)
    model_numba.sgd_step_gemms(U, ws, lr=kw["lr"], lam_U=kw["lam_U"])
    S = X @ U0.T                                                          # (N, K)
    assert_close(ws.S, S, TOL[dtype], "S = X Uᵀ")
    assert_close(ws.dX, ws.S.astype(np.float64) @ U0, TOL[dtype], "dX = S U")
    want_U = (1 - kw["lr"] * kw["lam_U"]) * U0 - kw["lr"] * 2.0**-60 * ws.S.astype(np.float64).T @ X
    assert_close(U, want_U, TOL[dtype], "U after its GEMM")


@dtypes
def test_sgd_step_gemms_repeated_leave_the_training_state_finite(dtype, rng):
    """bench sgd alternates steps with hundreds of calls of sgd_step_gemms on the same U and buffers: with
    the step's own α = −lr, S = X Uᵀ used as dscores blew U up to inf within a few calls (every step
    timed after that ran on NaN). Now 300 calls only decay U by β³⁰⁰ and the next step's loss is finite."""
    W, U, tokens, labels = _problem(rng, dtype, *SHAPES[4])
    kw = dict(lr=0.1, lam_W=0.0, lam_U=1e-3, layernorm=True, eps=1e-5)
    Wt = np.asfortranarray(W).T
    ws = model_numba.sgd_step_fused(Wt, U, tokens, labels, **kw)[2]
    U0 = U.astype(np.float64)
    for _ in range(300):
        model_numba.sgd_step_gemms(U, ws, lr=kw["lr"], lam_U=kw["lam_U"])
    assert_close(U, (1 - kw["lr"] * kw["lam_U"]) ** 300 * U0, 1e-4, "U after 300 GEMM rounds")
    loss, _, _ = model_numba.sgd_step_fused(Wt, U, tokens, labels, ws=ws, **kw)
    assert np.isfinite(loss) and np.all(np.isfinite(U))


@pytest.mark.parametrize("name", [pytest.param("openblas"), pytest.param("mkl", marks=pytest.mark.skipif(
    "mkl" not in blas.available(), reason="MKL is not installed (pip install -e '.[mkl]')"))])
@dtypes
def test_sgd_step_fused_agrees_with_the_reference_on_either_blas(name, dtype, monkeypatch, rng):
    monkeypatch.setattr(blas, "_ACTIVE", [blas.load(name)])
    W, U, tokens, labels = _problem(rng, dtype, *SHAPES[4])
    kw = dict(lr=0.2, lam_W=0.01, lam_U=0.02, layernorm=True, eps=1e-5)
    W_ref, U_ref = W.copy(), U.copy()
    loss_ref, correct_ref = model.sgd_step(W_ref, U_ref, tokens, labels, **kw)
    Wf = np.asfortranarray(W)
    loss, correct, _ = model_numba.sgd_step_fused(Wf.T, U, tokens, labels, **kw)
    assert correct == correct_ref and loss == pytest.approx(loss_ref, rel=TOL[dtype])
    assert_close(Wf, W_ref, TOL[dtype], f"W after the step ({name})")
    assert_close(U, U_ref, TOL[dtype], f"U after the step ({name})")
