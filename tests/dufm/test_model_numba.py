"""The compiled twin (refimpl.dufm.model_numba) against its NumPy reference (refimpl.dufm.model), pass by
pass before end to end: the small GEMMs against ``@``; one run's ``loss_and_grads`` against the
reference's at several shapes, degenerate ones included (K = 1, 2; L = 1; d = K; n = 1 and n > 1); the
batched variant run by run; then gradient-descent trajectories, stopping and divergence (float64)."""

import inspect

import numpy as np
import pytest

from refimpl.bench.common import max_rel_err
from refimpl.dufm import model as m
from refimpl.dufm import model_numba as kernel
from refimpl.dufm import small_gemm
from refimpl.errors import InputError

MODELS = [("linear", None), ("relu", None), ("mse", None), ("mse", 2), ("mse", 3)]
SHAPES = [(2, 2, 1, 1), (3, 5, 2, 1), (4, 6, 3, 2), (10, 40, 2, 1), (5, 9, 4, 3)]   # (K, d, L, n)
DEGENERATE = [(1, 1, 1, 1), (1, 3, 2, 2), (2, 2, 1, 3), (2, 5, 3, 1), (3, 3, 1, 1), (3, 3, 2, 2),
              (7, 7, 5, 1)]
TWIN_RTOL = 1e-12   # relative to the reference's largest entry, per output


def random_params(rng, K, d, L, n=1, scale=1.5):
    """One run's [H_1, W_1, …, W_L] with N(0, scale²/fan-in) entries."""
    shapes = [(d, K * n)] + [(d, d)] * (L - 1) + [(K, d)]
    return [rng.standard_normal(s) * scale / np.sqrt(s[1]) for s in shapes]


def random_batch(rng, R, K, d, L, n=1, scale=1.5):
    """R runs of [H_1, W_1, …, W_L] with N(0, scale²/fan-in) entries; runs first."""
    shapes = [(d, K * n)] + [(d, d)] * (L - 1) + [(K, d)]
    return [rng.standard_normal((R,) + s) * scale / np.sqrt(s[1]) for s in shapes]


def assert_twin(got, want, what):
    """Agreement to TWIN_RTOL relative to the reference's largest entry (bench.common.max_rel_err)."""
    err = max_rel_err([got], [want])
    assert err <= TWIN_RTOL, f"{what}: relative difference {err:.3e} (twin {np.ravel(got)[:3]}, " \
                             f"reference {np.ravel(want)[:3]})"


def assert_close(got, want, what):
    err = np.max(np.abs(got - want)) / max(1.0, np.max(np.abs(want)))
    assert err <= 1e-10, f"{what}: relative difference {err:.3e} (kernel {got.ravel()[:3]}, " \
                         f"reference {want.ravel()[:3]})"


# ------------------------------------------------------------------------------------- small GEMMs
@pytest.mark.parametrize("m_rows", [2, 4, 6])
@pytest.mark.parametrize("p", [4, 8, 12, 20])
@pytest.mark.parametrize("q", [1, 3, 8, 13])
def test_gemm_equals_numpy_matmul(rng, m_rows, p, q):
    X, B = rng.standard_normal((m_rows, p)), rng.standard_normal((p, q))
    out = np.full((m_rows, q), np.nan)                                    # overwritten, not accumulated
    small_gemm.gemm(X, B, out)
    assert max_rel_err([out], [X @ B]) <= 1e-14, (out, X @ B)


@pytest.mark.parametrize("m_rows", [4, 8, 12])
@pytest.mark.parametrize("p", [2, 4, 6, 10])
@pytest.mark.parametrize("q", [1, 3, 8, 13])
def test_gemm_tn_equals_numpy_matmul_of_the_transpose(rng, m_rows, p, q):
    Xt, B = rng.standard_normal((p, m_rows)), rng.standard_normal((p, q))
    out = np.full((m_rows, q), np.nan)
    small_gemm.gemm_tn(Xt, B, out)
    assert max_rel_err([out], [Xt.T @ B]) <= 1e-14, (out, Xt.T @ B)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (3, 5), (8, 8), (13, 2)])
def test_transpose_equals_numpy(rng, shape):
    A = rng.standard_normal(shape)
    At = np.empty(shape[::-1])
    small_gemm.transpose(A, At)
    np.testing.assert_array_equal(At, A.T)


# ------------------------------------------------------------------- one run: the twin of the reference
def test_the_twin_has_the_reference_signature():
    assert inspect.signature(kernel.loss_and_grads) == inspect.signature(m.loss_and_grads)


@pytest.mark.parametrize("model,power", MODELS)
@pytest.mark.parametrize("K,d,L,n", SHAPES + DEGENERATE)
@pytest.mark.parametrize("lam", [0.0, 0.03])
def test_loss_and_grads_equals_the_reference(rng, model, power, K, d, L, n, lam):
    params = random_params(rng, K, d, L, n)
    loss, grads = kernel.loss_and_grads(params, lam=lam, model=model, power=power)
    ref_loss, ref_grads = m.loss_and_grads(params, lam=lam, model=model, power=power)
    assert isinstance(loss, float) and isinstance(grads, list)
    assert [g.shape for g in grads] == [p.shape for p in params]
    assert_twin(loss, ref_loss, "loss")
    for l, (g, h) in enumerate(zip(grads, ref_grads, strict=True)):
        assert_twin(g, h, f"gradient {l}")


def test_the_twin_checks_its_input_like_the_reference(rng):
    params = random_params(rng, 3, 4, 2)
    for bad, kwargs in [([params[0][:2], params[1][:2, :2], params[2][:, :2]], {"lam": 0.1}),
                        (params, {"lam": -1.0}), (params, {"lam": 0.1, "model": "tanh"}),
                        (params, {"lam": 0.1, "power": 2})]:
        with pytest.raises(InputError) as want:
            m.loss_and_grads(bad, **kwargs)
        with pytest.raises(InputError) as got:
            kernel.loss_and_grads(bad, **kwargs)
        assert str(got.value) == str(want.value)


# ----------------------------------------------------------------------- batched: the reference per run
@pytest.mark.parametrize("model,power", MODELS)
@pytest.mark.parametrize("K,d,L,n", SHAPES + DEGENERATE[:3])
def test_batched_loss_and_grads_equal_the_reference_per_run(rng, model, power, K, d, L, n):
    R = 3
    params = random_batch(rng, R, K, d, L, n)
    lam = np.array([0.0, 1e-3, 0.1])
    loss, grads = kernel.loss_and_grads_batch(params, lam=lam, model=model, power=power)
    assert [g.shape for g in grads] == [p.shape for p in params]
    for r in range(R):
        ref_loss, ref_grads = m.loss_and_grads([p[r] for p in params], lam=lam[r], model=model, power=power)
        assert_close(np.array(loss[r]), np.array(ref_loss), f"loss of run {r}")
        assert_twin(loss[r], ref_loss, f"loss of run {r}")
        for l, (g, h) in enumerate(zip(grads, ref_grads, strict=True)):
            assert_close(g[r], h, f"gradient {l} of run {r}")
            assert_twin(g[r], h, f"gradient {l} of run {r}")


# ------------------------------------------------------------------------ fused descent, end to end
def reference_descent(p, lam, lr, steps, model, power):
    """Plain NumPy gradient descent θ ← θ − η ∇L(θ) with the reference gradients; returns θ and losses."""
    losses = []
    for _ in range(steps):
        loss, grads = m.loss_and_grads(p, lam=lam, model=model, power=power)
        losses.append(loss)
        p = [x - lr * g for x, g in zip(p, grads, strict=True)]
    return p, np.array(losses)


@pytest.mark.parametrize("model,power", [("linear", None), ("relu", None), ("mse", None), ("mse", 3)])
@pytest.mark.parametrize("K,d,L,n", [(3, 5, 2, 1), (4, 6, 3, 2), (10, 12, 2, 1)])
def test_batched_descent_follows_the_reference_trajectory(rng, model, power, K, d, L, n):
    R, steps = 3, 60
    params = random_batch(rng, R, K, d, L, n, scale=1.0)
    lam, lr = np.array([1e-3, 1e-2, 0.05]), np.array([0.05, 0.1, 0.2])
    trained, out, history = kernel.gradient_descent_batch(params, lam=lam, lr=lr, steps=steps, model=model,
                                                          power=power, check_every=1, record_every=1)
    np.testing.assert_array_equal(out[:, 2], steps)
    np.testing.assert_array_equal(out[:, 3], -1)
    for r in range(R):
        p, losses = reference_descent([x[r] for x in params], lam[r], lr[r], steps, model, power)
        assert_close(history[r], losses, f"losses of run {r}")
        for l, (a, b) in enumerate(zip(trained, p, strict=True)):
            assert_close(a[r], b, f"trained matrix {l} of run {r}")


def test_descent_leaves_its_input_alone_and_is_deterministic(rng):
    params = random_batch(rng, 4, 3, 5, 2)
    copy = [p.copy() for p in params]
    a, out_a, _ = kernel.gradient_descent_batch(params, lam=1e-3, lr=0.5, steps=50)
    b, out_b, _ = kernel.gradient_descent_batch(params, lam=1e-3, lr=0.5, steps=50)
    for p, q in zip(params, copy, strict=True):
        np.testing.assert_array_equal(p, q)
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(out_a, out_b)


def test_stops_on_gradient_tolerance_and_reports_divergence(rng):
    params = random_batch(rng, 3, 3, 4, 2, scale=1.0)
    lr = np.array([0.5, 1.0, 500.0])                                      # the last one blows up
    _, out, _ = kernel.gradient_descent_batch(params, lam=0.05, lr=lr, steps=50_000, tol=1e-7, check_every=1)
    for r in range(2):
        steps = int(out[r, 2])
        assert 0 < steps < 50_000 and out[r, 1] <= 1e-7 and out[r, 3] == -1
        p = [x[r] for x in params]
        for t in range(steps):                                            # the reference agrees on when
            _, grads = m.loss_and_grads(p, lam=0.05)
            gnorm = np.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            assert (gnorm <= 1e-7) == (t == steps - 1), f"run {r}: step {t} has gradient norm {gnorm:.3e}"
            p = [x - lr[r] * g for x, g in zip(p, grads, strict=True)]
    assert out[2, 3] >= 0 and out[2, 2] == out[2, 3] + 1 and not np.isfinite(out[2, 0])


def test_batch_input_errors(rng):
    params = random_batch(rng, 2, 3, 4, 2)
    with pytest.raises(InputError, match=r"lam must be a number or an array of shape \(2,\)"):
        kernel.loss_and_grads_batch(params, lam=np.ones(3))
    with pytest.raises(InputError, match="smaller than the number of classes"):
        kernel.gradient_descent_batch([p[:, :2, :] if i == 0 else p[:, :, :2] if i == 2 else p[:, :2, :2]
                                       for i, p in enumerate(params)], lam=0.1, lr=0.1, steps=1)
    with pytest.raises(InputError, match="lam must be a finite number >= 0"):
        kernel.gradient_descent_batch(params, lam=-1.0, lr=0.1, steps=1)
