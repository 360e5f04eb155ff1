"""The LayerNorm φ: explicit Jacobian against finite differences, VJP against Jᵀg, properties."""

import numpy as np
import pytest

from refimpl.feature_collapse import layernorm


@pytest.mark.parametrize("d", [2, 3, 10, 100])
@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_jacobian_matches_central_differences(d, eps, rng):
    v = rng.standard_normal(d) * 0.3 + 0.1
    J = layernorm.jacobian(v, eps)
    h = 1e-6
    fd = np.stack([(layernorm.forward(v + h * e, eps)[0] - layernorm.forward(v - h * e, eps)[0]) / (2 * h)
                   for e in np.eye(d)], axis=1)                                  # (d, d), column j = ∂φ/∂v_j
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_vjp_equals_jacobian_transpose_times_random_upstream(eps, rng):
    V = rng.standard_normal((4, 5, 7))                                           # batch axes (4, 5), d = 7
    G = rng.standard_normal(V.shape)                                             # random, never ones
    Y, cache = layernorm.forward(V, eps)
    dV = layernorm.backward(G, cache)
    for idx in np.ndindex(4, 5):
        expected = layernorm.jacobian(V[idx], eps).T @ G[idx]
        np.testing.assert_allclose(dV[idx], expected, rtol=1e-12, atol=1e-12)


def test_output_is_mean_zero_with_norm_sqrt_d(rng):
    """φ(v) has mean 0 and ‖φ(v)‖ = √d (σ is the 1/d standard deviation): Definition 2's √d f_α."""
    V = rng.standard_normal((50, 16)) * 3 + 2
    Y, _ = layernorm.forward(V)
    np.testing.assert_allclose(Y.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(Y, axis=1), np.sqrt(16), rtol=1e-12)


def test_jacobian_annihilates_ones_and_input_direction(rng):
    """φ is invariant to shifts (J1 = 0) and positive scalings (J v = 0 when eps = 0)."""
    v = rng.standard_normal(9)
    J = layernorm.jacobian(v)
    np.testing.assert_allclose(J @ np.ones(9), 0, atol=1e-12)
    np.testing.assert_allclose(J @ v, 0, atol=1e-12)


def test_eps_matches_pytorch_definition(rng):
    """With eps, σ = sqrt(var + eps) (biased variance), as nn.LayerNorm(elementwise_affine=False)."""
    v = rng.standard_normal(6) * 1e-3
    expected = (v - v.mean()) / np.sqrt(v.var() + 1e-5)
    np.testing.assert_allclose(layernorm.forward(v, 1e-5)[0], expected, rtol=1e-12)


def test_jacobian_vanishes_in_dimension_two(rng):
    """For d = 2, φ(v) = ±(1, −1) is locally constant: J = 0 (why dW of h* is 0 when d = 2)."""
    v = rng.standard_normal(2)
    np.testing.assert_allclose(layernorm.jacobian(v), 0.0, atol=1e-12)
