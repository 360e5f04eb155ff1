"""The DNC critical points of the linear CE DUFM, eq. (10): Z = αS with S = I − 11ᵀ/K (K, K).

Along the DNC direction the loss in Z (B.2) is L_DNC(α) = log(1 + (K−1)e^{−α}) + ½(L+1)(K−1)λα^{2/(L+1)}
(:func:`refimpl.dufm.structures.dnc_loss`); dL_DNC/dα = 0 is eq. (10):

    λ = f(α) = α^q / (K − 1 + e^α),        q = (L−1)/(L+1).

For L ≥ 2, f rises from 0 to its maximum λ_max at α* ((α − q)e^α = q(K−1), B.5) and falls back to 0,
so eq. (10) has two roots below λ_max; for L = 1 (q = 0) f decreases from 1/K and has one root
α = log(1/λ − K + 1). By Lemma 1 each root is a critical point of the full loss (eq. 1), built by
:func:`refimpl.dufm.structures.balanced_params`; :func:`refimpl.dufm.hessian.spectrum` tells which
are minima (Theorem 4).
"""

import numpy as np
from scipy import optimize, special

from refimpl.dufm.structures import ScaleOptimum, dnc_loss
from refimpl.validate import positive_int, positive_number


def _log_rhs10(alpha, K, L):
    """log of the right side of eq. (10): q log α − α − log(1 + (K−1)e^{−α}), q = (L−1)/(L+1)."""
    q = (L - 1) / (L + 1)
    return q * np.log(alpha) - alpha - np.log1p((K - 1) * np.exp(-alpha))


def dnc_lambda_max(K: int, L: int):
    """(λ_max, α*): the maximum of eq. (10)'s right side f(α) = α^q/(K−1+e^α), q = (L−1)/(L+1).

    f'(α) = 0 ⟺ (α − q) e^α = q(K−1) (B.5), i.e. α* = q + W₀(q(K−1)e^{−q}) (Lambert W). For L = 1,
    f = 1/(K−1+e^α) decreases from its supremum 1/K at α* = 0 (not attained by a DNC scale α > 0).
    """
    K, L = positive_int("K", K), positive_int("L", L)
    q = (L - 1) / (L + 1)
    if L == 1:
        return 1.0 / K, 0.0
    a_star = q + float(np.real(special.lambertw(q * (K - 1) * np.exp(-q))))
    return float(np.exp(_log_rhs10(a_star, K, L))), a_star


def dnc_critical_scales(K: int, L: int, lam: float) -> tuple:
    """Roots α > 0 of eq. (10), λ = α^{(L−1)/(L+1)}/(K − 1 + e^α), in increasing order.

    Two roots for L ≥ 2 and λ < λ_max (one at λ = λ_max), one root α = log(1/λ − K + 1) for L = 1 and
    λ < 1/K, none above. These are the scales of the DNC critical points of the full loss (B.5).
    """
    K, L, lam = positive_int("K", K), positive_int("L", L), positive_number("lam", lam)
    if L == 1:
        return (float(np.log(1.0 / lam - (K - 1))),) if lam < 1.0 / K else ()
    lam_max, a_star = dnc_lambda_max(K, L)
    if lam > lam_max * (1 + 1e-14):
        return ()
    if lam >= lam_max:
        return (a_star,)

    def h(a):
        return _log_rhs10(a, K, L) - np.log(lam)

    hi = 2 * a_star + 1
    while h(hi) > 0:
        hi *= 2.0
    lo = a_star * 1e-3
    while h(lo) > 0:
        lo *= 1e-3
    tol = dict(xtol=1e-300, rtol=4 * np.finfo(float).eps)
    return (optimize.brentq(h, lo, a_star, **tol), optimize.brentq(h, a_star, hi, **tol))


def optimal_dnc(K: int, L: int, lam: float) -> ScaleOptimum:
    """argmin_α L_DNC(α): the largest root of eq. (10) (the only local minimum α > 0) or α = 0."""
    K, L, lam = positive_int("K", K), positive_int("L", L), positive_number("lam", lam)
    roots = dnc_critical_scales(K, L, lam)
    best = ScaleOptimum("dnc", 0.0, float(np.log(K)), 0.0, True)
    if roots and float(dnc_loss(roots[-1], K, L, lam)) < best.loss:
        a = roots[-1]
        dL = (K - 1) * (lam * a ** (-(L - 1) / (L + 1)) - 1.0 / (K - 1 + np.exp(a)))
        best = ScaleOptimum("dnc", a, float(dnc_loss(a, K, L, lam)), abs(float(dL)), True)
    return best


__all__ = ["dnc_critical_scales", "dnc_lambda_max", "optimal_dnc"]
