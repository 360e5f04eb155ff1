"""layernorm_numba against the reference layernorm: forward and backward (random upstream gradients)."""

import numpy as np
import pytest

from refimpl.feature_collapse import layernorm, layernorm_numba

TOL = {np.float64: 1e-12, np.float32: 2e-6}   # float32: reassociated row sums, one reciprocal per row
SHAPES = [(7, 5), (1, 2), (3, 1, 2), (4, 6, 100), (2, 3)]


def _rel(got, want):
    want = np.asarray(want, np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - want)) / max(np.max(np.abs(want)), 1e-300))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_forward(dtype, shape, eps, rng):
    V = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    Y, (_, sigma) = layernorm.forward(V, eps)
    got, (_, got_sigma) = layernorm_numba.forward(V, eps)
    assert got.shape == Y.shape and got.dtype == dtype and got_sigma.shape == sigma.shape
    assert _rel(got, Y) <= TOL[dtype]
    assert _rel(got_sigma, sigma) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_with_random_upstream_gradient(dtype, shape, rng):
    V = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    dY = rng.standard_normal(shape).astype(dtype)                         # random, never ones
    want = layernorm.backward(dY, layernorm.forward(V, 1e-5)[1])
    got = layernorm_numba.backward(dY, layernorm_numba.forward(V, 1e-5)[1])
    assert got.shape == want.shape and got.dtype == dtype
    # d = 2: the VJP is zero up to rounding (φ is constant on each half-line of R²): judged at |dY|'s scale
    scale = np.max(np.abs(dY)) if shape[-1] == 2 else np.max(np.abs(want))
    assert np.max(np.abs(got - want)) <= TOL[dtype] * scale


def test_backward_is_the_jacobian_transpose_times_g(rng):
    """The twin's VJP equals Jᵀg with the reference's explicit Jacobian, vector by vector."""
    V = rng.standard_normal((4, 6))
    g = rng.standard_normal((4, 6))
    got = layernorm_numba.backward(g, layernorm_numba.forward(V, 0.0)[1])
    for i in range(4):
        np.testing.assert_allclose(got[i], layernorm.jacobian(V[i]).T @ g[i], rtol=1e-12, atol=1e-14)
