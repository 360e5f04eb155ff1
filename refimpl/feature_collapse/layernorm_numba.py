"""Numba twin of :mod:`.layernorm`: φ along the last axis and its vector–Jacobian product, compiled.

    forward(V, eps)   ->  (Y, (Y, sigma))     Y = (V − mean)/σ,  σ² = var + eps          (section 3)
    backward(dY, cache) -> dV                 dV = (dY − mean(dY) − Y·mean(dY ⊙ Y))/σ

Same names, parameters and returns as the reference. The row kernels :func:`phi_row` and :func:`vjp_row`
are the single place where φ and its VJP are compiled: :mod:`.model_numba` calls them inside its fused
passes (gather + φ, and φ's VJP in place). Arithmetic in the dtype of the data (float32 stays float32,
so LLVM vectorizes), with one reciprocal of σ per row; sums may be reassociated (``SUMS``), so results
differ from the reference by rounding only (tests: 1e-12 relative in float64). :func:`forward` and
:func:`backward` check their arguments with the reference's :func:`.layernorm.check_inputs` and
:func:`.layernorm.check_upstream`: the same input is refused with the same message.
"""

import math

import numba
import numpy as np
from numba import prange

from refimpl import compiled  # noqa: F401  (Numba settings first)
from refimpl.feature_collapse.layernorm import check_inputs, check_upstream

# Reordering of sums (and fused multiply-adds) only: lets LLVM vectorize the row reductions. No assumption
# about NaN/inf and no approximate functions.
SUMS = {"reassoc", "contract"}


@numba.njit(cache=True, fastmath=SUMS, error_model="numpy", inline="always")
def phi_row(v, y, eps):
    """y ← φ(v) for one row; returns σ. v, y of shape (d,) (y may be v); arithmetic in y's dtype."""
    T = y.dtype.type
    d = v.shape[0]
    inv_d = T(1.0 / d)
    mean = T(0)
    for i in range(d):
        mean += v[i]
    mean *= inv_d
    var = T(0)
    for i in range(d):
        var += (v[i] - mean) * (v[i] - mean)
    s = T(math.sqrt(var * inv_d + eps))
    inv_s = T(1) / s
    for i in range(d):
        y[i] = (v[i] - mean) * inv_s
    return s


@numba.njit(cache=True, fastmath=SUMS, error_model="numpy", inline="always")
def vjp_row(g, y, sigma, out):
    """out ← Jᵀg = (g − mean(g) − y·mean(g ⊙ y))/σ for one row (out may be g); g, y, out of shape (d,)."""
    T = out.dtype.type
    d = g.shape[0]
    inv_d = T(1.0 / d)
    mean_g = T(0)
    mean_gy = T(0)
    for i in range(d):
        mean_g += g[i]
        mean_gy += g[i] * y[i]
    inv_s = T(1) / T(sigma)
    a = mean_g * inv_d * inv_s
    b = mean_gy * inv_d * inv_s
    for i in range(d):
        out[i] = g[i] * inv_s - a - y[i] * b


@numba.njit(parallel=True, cache=True, fastmath=SUMS, error_model="numpy")
def _forward_rows(V, eps, Y, sigma):
    for r in prange(V.shape[0]):
        sigma[r] = phi_row(V[r], Y[r], eps)


@numba.njit(parallel=True, cache=True, fastmath=SUMS, error_model="numpy")
def _backward_rows(dY, Y, sigma, dV):
    for r in prange(dY.shape[0]):
        vjp_row(dY[r], Y[r], sigma[r], dV[r])


def forward(V: np.ndarray, eps: float = 0.0):
    """φ applied along the last axis (twin of :func:`.layernorm.forward`).

    Parameters
    ----------
    V : ndarray of shape (..., d), float32 or float64.
    eps : float, added to the variance (0: the paper's φ).

    Returns
    -------
    Y : ndarray of shape (..., d), φ(V).
    cache : (Y, sigma) with sigma of shape (..., 1), for :func:`backward`.
    """
    V, eps = check_inputs(V, eps)                                         # the reference's checks
    V = np.ascontiguousarray(V)
    d = V.shape[-1]
    rows = V.reshape(-1, d)                                               # (n, d)
    Y = np.empty_like(rows)                                               # (n, d)
    sigma = np.empty(rows.shape[0], dtype=V.dtype)                        # (n,)
    _forward_rows(rows, float(eps), Y, sigma)
    Y = Y.reshape(V.shape)
    return Y, (Y, sigma.reshape(V.shape[:-1] + (1,)))


def backward(dY: np.ndarray, cache) -> np.ndarray:
    """Closed-form VJP along the last axis (twin of :func:`.layernorm.backward`).

    Parameters
    ----------
    dY : ndarray of shape (..., d), upstream gradient.
    cache : from :func:`forward`.

    Returns
    -------
    dV : ndarray of shape (..., d).
    """
    dY = check_upstream(dY, cache)                                        # the reference's checks
    Y, sigma = cache
    d = Y.shape[-1]
    g = np.ascontiguousarray(dY, dtype=Y.dtype).reshape(-1, d)            # (n, d)
    dV = np.empty_like(g)                                                 # (n, d)
    _backward_rows(g, np.ascontiguousarray(Y).reshape(-1, d), np.ascontiguousarray(sigma).reshape(-1), dV)
    return dV.reshape(Y.shape)
