"""The parameter-free LayerNorm φ of *Feature collapse* (section 3), its Jacobian and its backward.

    φ(v) = (v − mean(v)·1_d) / σ(v),   σ(v)² = (1/d) Σ_i (v_i − mean(v))² + eps

``eps = 0`` is the paper's φ; ``eps = 1e-5`` is PyTorch's ``nn.LayerNorm`` default, used by the authors'
runs. With y = φ(v) and σ as above (eps included), the Jacobian is

    J(v) = ∂φ/∂v = (I − 1 1ᵀ/d − y yᵀ/d) / σ                                         (symmetric)

so the vector–Jacobian product for an upstream gradient g is

    Jᵀ g = (g − mean(g)·1 − y·mean(g ⊙ y)) / σ.

φ acts on the last axis; leading axes are batch axes. :func:`forward` and :func:`backward` check their
arguments (:func:`check_inputs`, :func:`check_upstream`; the twin calls the same two) and run the passes
:func:`phi` and :func:`vjp`, which the model and the exact risk call on arrays they have checked
themselves.
"""

import numpy as np

from refimpl import validate
from refimpl.errors import require


def check_inputs(V, eps):
    """φ's arguments: V (..., d) finite reals with d ≥ 1, eps ≥ 0 a number, and no row that φ cannot
    normalize (σ zero to V's precision, :func:`refimpl.validate.layernorm_rows`). Returns (V, eps)."""
    V = validate.float_array("V", V)
    require(V.ndim >= 1 and V.shape[-1] >= 1, f"V must be (..., d) with d >= 1, got shape {V.shape}")
    eps = validate.nonneg_number("eps", eps)
    validate.layernorm_rows(V, eps)
    return V, eps


def check_upstream(dY, cache):
    """dY of the shape of the cached φ(V), finite reals."""
    return validate.like("dY", dY, cache[0].shape)


def forward(V: np.ndarray, eps: float = 0.0):
    """φ applied along the last axis.

    Parameters
    ----------
    V : ndarray of shape (..., d)
    eps : float, added to the variance (0: the paper's φ).

    Returns
    -------
    Y : ndarray of shape (..., d), φ(V).
    cache : (Y, sigma) with sigma of shape (..., 1), for :func:`backward`.
    """
    return phi(*check_inputs(V, eps))


def phi(V: np.ndarray, eps: float):
    """The pass of :func:`forward`, on checked input: returns (Y, (Y, sigma))."""
    centered = V - V.mean(axis=-1, keepdims=True)                          # (..., d)
    sigma = np.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)  # (..., 1)
    Y = centered / sigma                                                   # (..., d)
    return Y, (Y, sigma)


def backward(dY: np.ndarray, cache) -> np.ndarray:
    """Closed-form VJP: dV = (dY − mean(dY) − Y·mean(dY ⊙ Y)) / σ along the last axis.

    Parameters
    ----------
    dY : ndarray of shape (..., d), upstream gradient.
    cache : from :func:`forward`.

    Returns
    -------
    dV : ndarray of shape (..., d).
    """
    return vjp(check_upstream(dY, cache), cache)


def vjp(dY: np.ndarray, cache) -> np.ndarray:
    """The pass of :func:`backward`, on a checked dY: Jᵀ dY along the last axis."""
    Y, sigma = cache
    mean_g = dY.mean(axis=-1, keepdims=True)                               # (..., 1)
    mean_gy = (dY * Y).mean(axis=-1, keepdims=True)                        # (..., 1)
    return (dY - mean_g - Y * mean_gy) / sigma                             # (..., d)


def jacobian(v: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """Explicit Jacobian J = (I − 11ᵀ/d − y yᵀ/d)/σ of φ at a single vector.

    Parameters
    ----------
    v : ndarray of shape (d,)

    Returns
    -------
    J : ndarray of shape (d, d), J[i, j] = ∂φ_i/∂v_j.
    """
    d = v.shape[0]
    y, (_, sigma) = forward(v, eps)                                        # (d,), ((d,), (1,))
    return (np.eye(d) - np.ones((d, d)) / d - np.outer(y, y) / d) / sigma[0]
