"""The Numba mirror of h/h* against the NumPy reference: loss and gradients, one fused SGD step."""

import numpy as np
import pytest

from refimpl.feature_collapse import data, model, sgd
from refimpl.feature_collapse import model_numba as kernels

# float32: the kernels accumulate in float32 in another order than NumPy (pairwise sums) and multiply
# by reciprocals where the reference divides; measured max relative deviations are ~1e-6 here.
TOL = {np.float64: 1e-10, np.float32: 2e-5}


def _problem(rng, dtype, nc=3, sc=4, L=5, K=7, d=6, n_spl=3, freq="zipf"):
    Z = data.latent_variables(nc, L, K, rng)
    tokens, labels = data.sample_sentences(Z, data.word_frequencies(sc, freq), n_spl, rng)
    W = rng.standard_normal((d, nc * sc)).astype(dtype)
    U = (rng.standard_normal((K, L * d)) * 0.5).astype(dtype)
    return W, U, tokens, labels


def _assert_close(got, want, tol, name, scale=None):
    scale = scale or max(float(np.max(np.abs(want))), 1e-300)
    err = float(np.max(np.abs(np.asarray(got, np.float64) - want))) / scale
    assert err <= tol, f"{name}: max relative deviation {err:.3e} > {tol:.0e}"


SHAPES = [dict(), dict(nc=2, sc=1, L=1, K=2, d=2, n_spl=1), dict(nc=4, sc=5, L=6, K=40, d=16, n_spl=4)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ln", [False, True], ids=["h", "h*"])
@pytest.mark.parametrize("shape", SHAPES, ids=["small", "degenerate", "larger"])
def test_loss_and_grads_numba_equals_numpy(dtype, ln, shape, rng):
    W, U, tokens, labels = _problem(rng, dtype, **shape)
    kw = dict(layernorm=ln, lam_W=0.0 if ln else 0.3, lam_U=0.2, eps=1e-5)
    ref = model.loss_and_grads(W, U, tokens, labels, **kw)
    got = model.loss_and_grads(W, U, tokens, labels, backend="numba", **kw)
    _assert_close(got[0], ref[0], TOL[dtype], "loss")
    # one scale for both gradients: with d = 2 and the LayerNorm, dW is zero up to rounding (φ is
    # locally constant on R², see test_layernorm), so its own maximum is no yardstick
    grad_scale = max(float(np.max(np.abs(ref[1]))), float(np.max(np.abs(ref[2]))))
    for name, g, r in zip(("dW", "dU"), got[1:], ref[1:], strict=True):
        _assert_close(g, np.asarray(r, np.float64), TOL[dtype], name, grad_scale)
    assert got[1].shape == W.shape and got[2].shape == U.shape
    assert got[1].dtype == dtype and got[2].dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ln", [False, True], ids=["h", "h*"])
def test_fused_sgd_step_equals_reference_step(dtype, ln, rng):
    W, U, tokens, labels = _problem(rng, dtype, K=30, n_spl=4)
    kw = dict(lr=0.1, lam_W=0.0 if ln else 0.01, lam_U=0.02, layernorm=ln, eps=1e-5)
    W_ref, U_ref = W.copy(), U.copy()
    loss_ref, correct_ref = model.sgd_step(W_ref, U_ref, tokens, labels, **kw)
    W_k = np.asfortranarray(W)                                  # the trainer's layout: Wᵀ C-ordered
    U_k = U.copy()
    loss_k, correct_k, _ = kernels.sgd_step(W_k.T, U_k, tokens, labels, **kw)
    assert correct_k == correct_ref
    assert loss_k == pytest.approx(loss_ref, rel=TOL[dtype])
    _assert_close(W_k, W_ref.astype(np.float64), TOL[dtype], "W after the step")
    _assert_close(U_k, U_ref.astype(np.float64), TOL[dtype], "U after the step")


def test_two_epochs_of_training_agree_across_backends_in_float64():
    task = data.make_task(3, 12, 4, 20, 4, freq="zipf", seed=3)
    results = {}
    for backend in ("numpy", "numba"):
        cfg = sgd.TrainConfig(d=8, epochs=2, batch=16, dtype="float64", backend=backend, layernorm=True,
                              decay_W=False, lr=0.5)
        results[backend] = sgd.train(task, cfg)
    a, b = results["numpy"], results["numba"]
    np.testing.assert_allclose(b.W, a.W, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b.U, a.U, rtol=1e-12, atol=1e-15)
    assert [h["train_accuracy"] for h in a.history] == [h["train_accuracy"] for h in b.history]


def test_cross_entropy_kernel_is_stable_for_large_scores(rng):
    """Scores of ±1e4 must give finite losses equal to the reference's log-sum-exp."""
    S = rng.standard_normal((5, 9)) * 1e4
    labels = rng.integers(0, 9, 5)
    ref_loss, ref_grad = model.cross_entropy(S.copy(), labels)
    G = S.copy()
    loss_rows, correct = np.empty(5), np.empty(5, np.int64)
    kernels.cross_entropy(G, labels, loss_rows, correct)
    assert np.all(np.isfinite(loss_rows))
    assert loss_rows.mean() == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(G, ref_grad, atol=1e-15)
    np.testing.assert_array_equal(correct, S.argmax(axis=1) == labels)
