"""Appendix A: the minimal non-linear MSE DUFM (eq. 4) reduced to H_L (Lemma A1), and Hadamard powers.

Lemma A1: over balanced W_{L−1} … H_1 with product X = H_L ∈ R^{d×K} and the optimal
W_L = ζ(X)ᵀ (ζ(X)ζ(X)ᵀ + KλI_d)^{−1}, the loss of eq. (4) is

    L(X) = ½λ Σ_{i=1}^K 1/(σ̃_i² + Kλ) + ½ L λ Σ_{i=1}^K σ_i^{2/L}          (C.1)

with σ_i the singular values of X and σ̃_i those of ζ(X). Eq. (5) is this divided by ½Lλ.

Damm–Dietrich (section A.2): for a generic rank-r matrix of size m×n, rank(X^{∘p}) = min(C(r+p−1, p), m, n).

ζ is :func:`refimpl.dufm.model.zeta` (ReLU, or the Hadamard power x^p with ``power=p``); X is (d, K), d ≥ K.
"""

from math import comb

import numpy as np

from refimpl.dufm.model import mse_activation, zeta
from refimpl.dufm.structures import RTOL_ZERO
from refimpl.errors import require
from refimpl.validate import positive_int, positive_number, width


def _inputs(X, L, lam, power):
    """X as a float (d, K) array with d ≥ K, L ≥ 1, λ > 0, power None or a positive integer."""
    X = np.asarray(X, dtype=np.float64)
    require(X.ndim == 2, f"X must have shape (d, K), got {X.shape}")
    width(X.shape[0], X.shape[1])
    if power is not None:
        positive_int("power", power)
    return X, positive_int("L", L), positive_number("lam", lam)


def mse_reduced_loss(X: np.ndarray, L: int, lam: float, power=None, rtol: float = RTOL_ZERO) -> float:
    """Lemma A1 (C.1): ½λ Σ 1/(σ̃_i² + Kλ) + ½Lλ Σ σ_i^{2/L}; X of shape (d, K), ζ = ReLU or x^power.

    Singular values of X below rtol · max are dropped from the Schatten term (numerically zero).
    """
    X, L, lam = _inputs(X, L, lam, power)
    K = X.shape[1]
    s = np.linalg.svd(X, compute_uv=False)                                # (K,)
    st = np.linalg.svd(zeta(X, mse_activation(power)), compute_uv=False)  # (K,)
    s = s[s > rtol * s.max()] if s.max() > 0 else s[:0]
    fit_and_last = 0.5 * lam * float(np.sum(1.0 / (st ** 2 + K * lam)))   # ½λ‖W_L‖² + ‖W_Lζ − I‖²/(2K)
    return fit_and_last + 0.5 * L * lam * float(np.sum(s ** (2.0 / L)))


def mse_params(X: np.ndarray, L: int, lam: float, power=None) -> list:
    """Parameters [H_1, W_1, …, W_L] of eq. (4) attaining :func:`mse_reduced_loss` at H_L = X.

    H_1, W_1 … W_{L−1}: the balanced factors of X = U diag(s) Vᵀ, each with singular values s^{1/L}
    (singular vectors: the identity on the hidden spaces); W_L = ζ(X)ᵀ(ζ(X)ζ(X)ᵀ + KλI_d)^{−1} (C.1).
    """
    X, L, lam = _inputs(X, L, lam, power)
    d, K = X.shape
    U, s, Vt = np.linalg.svd(X, full_matrices=False)                      # (d, K), (K,), (K, K)
    sig = np.where(s > RTOL_ZERO * max(s.max(), 1e-300), s, 0.0) ** (1.0 / L)   # (K,)
    E = np.eye(d)[:, :K]                                                  # (d, K) hidden singular vectors
    if L == 1:
        factors = [X.copy()]
    else:
        factors = [E * sig @ Vt]                                          # (d, K) H_1
        factors += [E * sig @ E.T for _ in range(L - 2)]                  # (d, d) W_1 … W_{L−2}
        factors.append(U * sig @ E.T)                                     # (d, d) W_{L−1}
    F = zeta(X, mse_activation(power))                                    # (d, K) ζ(H_L)
    WL = np.linalg.solve(F @ F.T + K * lam * np.eye(d), F).T              # (K, d) symmetric system
    return factors + [WL]


def hadamard_power_rank(r: int, p: int, m: int, n: int) -> int:
    """Damm–Dietrich: rank of the p-th Hadamard power of a generic rank-r m×n matrix,
    min(C(r+p−1, p), m, n) (section A.2)."""
    r, p, m, n = (positive_int(k, v) for k, v in (("r", r), ("p", p), ("m", m), ("n", n)))
    require(r <= min(m, n), f"rank r = {r} exceeds min(m, n) = {min(m, n)}")
    return min(comb(r + p - 1, p), m, n)


def min_rank_hadamard(K: int, p: int) -> int:
    """Corollary of A.2: the least r with C(r+p−1, p) ≥ K — the predicted number of unsuppressed
    singular values at global optima of eq. (5) with ζ(x) = x^p, d ≥ K."""
    K, p = positive_int("K", K), positive_int("p", p)
    r = 1
    while comb(r + p - 1, p) < K:
        r += 1
    return r


__all__ = ["hadamard_power_rank", "min_rank_hadamard", "mse_params", "mse_reduced_loss"]
