"""Theorems 1–3 of *Feature collapse*: the analytic solvers.

* Theorem 1 (h, uniform µ): type-I collapse with c = √(τ/nw), c′ = √(τ/(KL)), τ = argmin H (Lemma K, eq. 92)
      H(t) = log(1 − K/nc^L + K/nc^L (1 + (nc−1) e^{−ηt})^L) + λt,     η = nc/(nc−1) · 1/√(nw K L).
* Theorem 3 (h*, any µ > 0): type-II collapse with c = τ/√(KL), τ = argmin H* (Lemma R, eq. 124)
      H*(t) = log(1 − K/nc^L + K/nc^L (1 + (nc−1) e^{−η* t})^L) + λ/2 t²,  η* = nc/(nc−1) · √(d/(KL)).
* Theorem 2 (h, K = nc^L, any µ > 0): type-III critical points solve (7)–(8), reduced by Proposition D
  to ρ_β = r_β/c = ϕ_β(c), the root of g(c, ρ) = L µ_β/(λ nc) with g(c, x) = x(1 + γ e^{(1+γ)c²x})/(1+γ),
  γ = 1/(nc−1), then the one root c of Σ_β ϕ_β(c)² = L nc^{L−1}; it exists iff (9): λ² < L Σµ²/nc^{L+1}.

Each solver returns a :class:`Solution` (a ``scipy.optimize.OptimizeResult``): the constants, ``solution``,
``residual`` (how far the returned point is from solving its equation) and ``success``.
"""

import numpy as np
from scipy.optimize import OptimizeResult, brentq
from scipy.special import expit

from refimpl.errors import InputError, require
from refimpl.validate import positive_int


class Solution(OptimizeResult):
    """Result of a theorem's solver: attribute access to its fields, ``success``, ``residual``."""


def _log_weight(nc: int, L: int, K: int) -> tuple[float, float]:
    """(log p, log(1 − p)) with p = K/nc^L, computed without forming nc^L as a float."""
    log_p = np.log(K) - L * np.log(nc)
    return log_p, (np.log(-np.expm1(log_p)) if log_p < 0 else -np.inf)


def _collapse_log_term(t, eta, nc, L, K):
    """log(1 − p + p (1 + (nc−1)e^{−ηt})^L) and its derivative in t, p = K/nc^L (Lemmas K and R)."""
    log_p, log_1mp = _log_weight(nc, L, K)
    s = (nc - 1) * np.exp(-eta * t)                                       # (nc−1) e^{−ηt}
    u = L * np.log1p(s)                                                   # log (1 + s)^L
    value = np.logaddexp(log_1mp, log_p + u)
    slope = -L * eta * s / (1.0 + s) * expit(log_p + u - log_1mp)         # d/dt; expit(…) = pE/(1 − p + pE)
    return value, slope


def _check_common(nc, L, K, lam):
    nc, L, K = positive_int("nc", nc), positive_int("L", L), positive_int("K", K)
    require(nc >= 2, f"the theorems need nc >= 2 concepts, got nc = {nc}")
    require(K <= nc**L, f"K = {K} exceeds nc^L = {nc**L}: the K latent variables must be distinct")
    require(np.isfinite(lam) and lam > 0, f"lambda must be positive, got {lam!r}")
    return nc, L, K, float(lam)


def H(t, nc, nw, L, K, lam):
    """Theorem 1's H(t) (= R on a type-I configuration with t = nw c², eq. 92). Returns (H(t), H′(t))."""
    eta = nc / (nc - 1) / np.sqrt(nw * K * L)
    value, slope = _collapse_log_term(t, eta, nc, L, K)
    return value + lam * t, slope + lam


def H_star(t, nc, L, K, d, lam):
    """Theorem 3's H*(t) (= R* on a type-II configuration with t = √(KL) c, eq. 124). Returns (H*, H*′)."""
    eta = nc / (nc - 1) * np.sqrt(d / (K * L))
    value, slope = _collapse_log_term(t, eta, nc, L, K)
    return value + 0.5 * lam * t * t, slope + lam * t


def _root(f, lo, hi, what, xtol):
    """brentq at full double precision; a failure (non-finite values at extreme λ) is an InputError."""
    try:
        return brentq(f, lo, hi, xtol=xtol, rtol=4 * np.finfo(float).eps, maxiter=500, full_output=True)
    except (RuntimeError, ValueError) as e:
        raise InputError(f"{what}: no root found ({e}); lambda is probably too extreme for double "
                         f"precision") from None


def _argmin_convex(fun, t_hi):
    """Root of the increasing derivative fun(t)[1] on [0, t_hi] (0 when fun′(0) ≥ 0). Returns (τ, ok)."""
    if fun(0.0)[1] >= 0:
        return 0.0, True
    while fun(t_hi)[1] <= 0:
        t_hi *= 2.0
        require(np.isfinite(t_hi), "the minimizer of H is beyond double precision: lambda is too small")
    tau, info = _root(lambda t: fun(t)[1], 0.0, t_hi, "argmin H", xtol=1e-300)
    return tau, info.converged


def theorem1(nc: int, nw: int, L: int, K: int, lam: float) -> Solution:
    """Theorem 1: τ = argmin H (strictly convex), c = √(τ/nw), c′ = √(τ/(KL)).

    Returns
    -------
    Solution with tau, c, c_prime, value (H(τ)), eta, solution (= tau), residual (|H′(τ)|), success.
    """
    nc, L, K, lam = _check_common(nc, L, K, lam)
    nw = positive_int("nw", nw)
    require(nw % nc == 0, f"nw = {nw} is not divisible by nc = {nc}")
    eta = nc / (nc - 1) / np.sqrt(nw * K * L)
    fun = lambda t: H(t, nc, nw, L, K, lam)  # noqa: E731
    tau, ok = _argmin_convex(fun, (np.log(max(L * eta * (nc - 1) / lam, 1.0)) + 1.0) / eta)
    value, slope = fun(tau)
    residual = abs(slope) if tau > 0 else max(-slope, 0.0)
    return Solution(tau=tau, c=np.sqrt(tau / nw), c_prime=np.sqrt(tau / (K * L)), value=value, eta=eta,
                    solution=tau, residual=residual, success=bool(ok and residual <= 1e-12 * (1 + lam * tau)),
                    message="τ minimizes H (Theorem 1)")


def theorem3(nc: int, L: int, K: int, d: int, lam: float) -> Solution:
    """Theorem 3: τ = argmin H* (strictly convex), c = τ/√(KL).

    Returns
    -------
    Solution with tau, c, value (H*(τ)), eta, solution (= tau), residual (|H*′(τ)|), success.
    """
    nc, L, K, lam = _check_common(nc, L, K, lam)
    d = positive_int("d", d)
    require(d >= nc, f"type-II collapse needs mean-zero equiangular vectors: d >= nc, got d = {d}, nc = {nc}")
    eta = nc / (nc - 1) * np.sqrt(d / (K * L))
    fun = lambda t: H_star(t, nc, L, K, d, lam)  # noqa: E731
    tau, ok = _argmin_convex(fun, L * eta * (nc - 1) / lam + 1.0)
    value, slope = fun(tau)
    return Solution(tau=tau, c=tau / np.sqrt(K * L), value=value, eta=eta, solution=tau, residual=abs(slope),
                    success=bool(ok and abs(slope) <= 1e-12 * (1 + lam * tau)),
                    message="τ minimizes H* (Theorem 3)")


def condition9(nc: int, L: int, mu, lam: float) -> tuple[bool, float, float]:
    """Condition (9): λ² < L/nc^{L+1} Σ_β µ_β². Returns (holds, λ², L Σµ²/nc^{L+1})."""
    bound = L * float(np.sum(np.square(mu))) / float(nc) ** (L + 1)
    return lam * lam < bound, lam * lam, bound


def _rho(c2: float, target: float, gamma: float) -> float:
    """ϕ_β(c): the root x > 0 of x(1 + γ e^{(1+γ)c²x}) = (1+γ)·target, solved in log x (monotone)."""
    a, log_rhs = (1 + gamma) * c2, np.log((1 + gamma) * target)
    f = lambda u: u + np.logaddexp(0.0, np.log(gamma) + a * np.exp(u)) - log_rhs  # noqa: E731
    hi = np.log(target) + 1.0                                             # g(c, x) ≥ x, so ρ ≤ target
    lo = log_rhs - np.logaddexp(0.0, np.log(gamma) + a * target) - 1.0    # f(lo) < 0
    return float(np.exp(_root(f, lo, hi, "Proposition D's rho", xtol=1e-15)[0]))


def theorem2_residuals(nc, L, mu, lam, c, r) -> np.ndarray:
    """Relative residuals of (7) (one per β) and (8) (last entry) at (c, r_1..r_sc)."""
    rho = np.asarray(r) / c                                               # (sc,)
    eq7 = lam / L * rho * (nc - 1 + np.exp(nc / (nc - 1) * c * np.asarray(r))) / mu - 1.0
    eq8 = np.sum(rho**2) / (L * float(nc) ** (L - 1)) - 1.0
    return np.append(eq7, eq8)


def theorem2(nc: int, L: int, mu, lam: float) -> Solution:
    """Theorem 2 / Proposition D: the type-III constants (c, r_1..r_sc) solving (7)–(8) for K = nc^L.

    Raises InputError when condition (9) fails: the only critical point is then the trivial (W, U) = 0.

    Returns
    -------
    Solution with c, r (ndarray of shape (sc,)), rho = r/c, solution (= [c, *r]), residual (max relative
    residual of (7)–(8)), success.
    """
    nc, L, _, lam = _check_common(nc, L, 1, lam)
    mu = np.asarray(mu, dtype=np.float64)
    require(mu.ndim == 1 and np.all(mu > 0) and abs(mu.sum() - 1) < 1e-9,
            f"mu must be positive and sum to 1, got {np.array2string(mu, precision=4)}")
    ok9, lhs, rhs = condition9(nc, L, mu, lam)
    if not ok9:
        raise InputError(f"lambda = {lam:g} violates condition (9): lambda^2 = {lhs:.4g} >= L·Σµ²/nc^(L+1) = "
                         f"{rhs:.4g}; the only critical point is the trivial one (W, U) = (0, 0)")
    gamma, targets = 1.0 / (nc - 1), L * mu / (lam * nc)                  # (sc,) ϕ_β(0) = L µ_β/(λ nc)
    level = L * float(nc) ** (L - 1)

    def excess(c):  # Σ_β ϕ_β(c)² − L nc^{L−1}: strictly decreasing, positive at 0 by (9)
        return sum(_rho(c * c, t, gamma) ** 2 for t in targets) - level

    c_hi = 1.0
    while excess(c_hi) > 0:
        c_hi *= 2.0
        require(np.isfinite(c_hi), "Proposition D's c is beyond double precision: lambda is too small")
    c = _root(excess, 0.0, c_hi, "Proposition D's c", xtol=1e-15)[0]
    rho = np.array([_rho(c * c, t, gamma) for t in targets])              # (sc,)
    r = c * rho
    residual = float(np.abs(theorem2_residuals(nc, L, mu, lam, c, r)).max())
    return Solution(c=c, r=r, rho=rho, solution=np.append(c, r), residual=residual,
                    success=bool(residual <= 1e-10), message="(c, r) solve (7)-(8) (Theorem 2, Prop. D)")


def proposition_c(nc: int, L: int, mu, c: float, r) -> tuple[float, np.ndarray]:
    """Proposition C: on a type-III configuration with K = nc^L, −∂R0/∂u_{k,ℓ} = a_u u_{k,ℓ} and
    −∂R0/∂w_{(α,β)} = a_w[β] w_{(α,β)}, with σ(x) = 1/(1 + γ e^{(1+γ)x}) (eq. 134):

        a_u = (1+γ)/(c nc^L) Σ_β µ_β σ(c r_β) r_β,      a_w[β] = c L (1+γ)/nc · µ_β σ(c r_β)/r_β.

    Returns (a_u, a_w of shape (sc,)).
    """
    gamma = 1.0 / (nc - 1)
    r, mu = np.asarray(r, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    sigma = expit(-((1 + gamma) * c * r + np.log(gamma)))                 # 1/(1 + γ e^{(1+γ)c r_β})
    a_u = (1 + gamma) / (c * float(nc) ** L) * float(np.sum(mu * sigma * r))
    return a_u, c * L * (1 + gamma) / nc * mu * sigma / r
