"""The claims of ``python cli.py verify``: scale-invariant tolerances, the exact risk as an objective, and
the searches that test a minimum (random perturbations, L-BFGS from random starts).

At a critical point ∇R0 = −λθ (θ the regularized parameters: (W, U) for h, U for h*), so gradients are
measured in units of λ‖θ‖ and risk differences in units of λ‖θ‖² (the curvature of R along θ is of that
order). Each tolerance is the larger of a fixed relative one and the float64 rounding floor of the quantity
(‖∇R‖ is rounded to ≲ 16ε‖θ‖, R to ≲ 256ε·max(1, R); observed ≈ 0.25ε‖θ‖ and ≲ 20ε), and is printed in
the claim. The theorems' checks themselves are in :mod:`.verify`.
"""

import numpy as np
from scipy.optimize import minimize

from refimpl import progress
from refimpl.feature_collapse import data, exact

EPS = float(np.finfo(np.float64).eps)
GRAD_RTOL = 1e-9       # ‖∇R‖/(λ‖θ‖) at an analytic critical point (≈4e-15 observed at λ = 0.01)
GRAD_FLOOR = 16 * EPS  # float64 rounding of ‖∇R‖, in units of ‖θ‖ (≈0.25ε observed)
RISK_RTOL = 1e-12      # |R − closed form| and how far below it R may go, in units of λ‖θ‖²
RISK_FLOOR = 256 * EPS  # float64 rounding of R, in units of max(1, R) (≲ 20ε observed)
NOT_CRITICAL = 100     # not a critical point: ‖∇R‖/(λ‖θ‖) above this many gradient tolerances
MAX_GRAD_TOL = 1e-4    # refuse λ for which the gradient tolerance would exceed this
EPSILONS = (1e-4, 1e-3, 1e-2, 1e-1)  # relative sizes of the random perturbations


def grad_tolerance(lam: float) -> float:
    """Tolerance on ‖∇R‖/(λ‖θ‖) at a critical point: max(GRAD_RTOL, GRAD_FLOOR/λ)."""
    return max(GRAD_RTOL, GRAD_FLOOR / lam)


def risk_tolerance(scale2: float, value: float) -> float:
    """Tolerance on a risk difference over λ‖θ‖² (= scale2): max(RISK_RTOL, RISK_FLOOR·max(1, R)/scale2)."""
    return max(RISK_RTOL, RISK_FLOOR * max(1.0, abs(value)) / scale2)


class Risk:
    """The exact risk (eq. 5, or eq. 10 with ``layernorm``) of an instance, for flat parameter vectors."""

    def __init__(self, config, layernorm: bool):
        """`config`: a verify instance (nc, sc, L, d, lam and its word frequencies mu())."""
        self.Z = data.all_latent_variables(config.nc, config.L)           # (K, L), K = nc^L
        self.mu, self.lam, self.layernorm = config.mu(), config.lam, layernorm
        self.shape_W = (config.d, config.nc * config.sc)
        self.shape_U = (len(self.Z), config.L * config.d)

    def __call__(self, W, U):
        """(R, ‖∇R‖) at (W, U)."""
        R, dW, dU = exact.risk_and_grads(W, U, self.Z, self.mu, lam=self.lam, layernorm=self.layernorm)
        return R, float(np.sqrt(np.vdot(dW, dW) + np.vdot(dU, dU)))

    def scales(self, W, U) -> tuple[float, float]:
        """(λ‖θ‖, λ‖θ‖²), θ the regularized parameters ((W, U) for h, U for h*): at a critical point
        ∇R0 = −λθ, so ‖∇R‖/(λ‖θ‖) and risk differences over λ‖θ‖² do not shrink with λ."""
        sq = float(np.vdot(U, U)) + (0.0 if self.layernorm else float(np.vdot(W, W)))
        sq = sq if sq > 0 else 1.0                                        # θ = 0 (the trivial point): scale λ
        return self.lam * np.sqrt(sq), self.lam * sq

    def scaled_flat(self, x):
        """(R/λ, ∇R/λ): L-BFGS's gtol then compares gradients with the natural scale, whatever λ."""
        R, g = self.flat(x)
        return R / self.lam, g / self.lam

    def flat(self, x):
        """(R, ∇R) for x = [vec W, vec U], as scipy.optimize wants."""
        n = self.shape_W[0] * self.shape_W[1]
        R, dW, dU = exact.risk_and_grads(x[:n].reshape(self.shape_W), x[n:].reshape(self.shape_U), self.Z,
                                         self.mu, lam=self.lam, layernorm=self.layernorm)
        return R, np.concatenate([dW.ravel(), dU.ravel()])


def perturbation_gap(risk: Risk, W, U, n: int, rng) -> float:
    """min over n random directions v (‖v‖ = ‖θ‖) and sizes ε of R(θ + εv) − R(θ)."""
    theta = np.concatenate([W.ravel(), U.ravel()])
    R0 = risk.flat(theta)[0]
    gaps = [np.inf]
    for i in range(n):
        v = rng.standard_normal(theta.size)
        v *= np.linalg.norm(theta) / np.linalg.norm(v)
        gaps.append(risk.flat(theta + EPSILONS[i % len(EPSILONS)] * v)[0] - R0)
    return float(min(gaps))


def lbfgs_best(risk: Risk, n: int, rng, ctx) -> tuple[float, float]:
    """L-BFGS on the exact risk from n random starts N(0, 1/d): (lowest value, its gradient norm).
    The objective is R/λ, so that gtol stays relative to the natural gradient scale whatever λ."""
    size = np.prod(risk.shape_W) + np.prod(risk.shape_U)
    K, L = risk.Z.shape
    slow = K * data.sentence_count(K, risk.mu.size, L) * L > 2e7        # ≳ 50 ms per evaluation
    best = (np.inf, np.nan)
    with progress.bar(n, "L-BFGS starts", enabled=ctx.progress and slow and n > 0) as bar:
        for _ in range(n):
            x0 = rng.standard_normal(size) / np.sqrt(risk.shape_W[0])
            res = minimize(risk.scaled_flat, x0, jac=True, method="L-BFGS-B",
                           options={"maxiter": 5000, "gtol": 1e-10, "ftol": 1e-16, "maxcor": 20})
            best = min(best, (risk.lam * float(res.fun), risk.lam * float(np.linalg.norm(res.jac))))
            bar.update(1)
    return best


def claim(text: str, value: float, ok: bool, tolerance: float) -> dict:
    return {"claim": text, "value": float(value), "tolerance": float(tolerance), "ok": bool(ok)}


def at_most(text: str, value: float, tol: float) -> dict:
    """The claim value <= tol, with the tolerance in its text (NaN fails)."""
    return claim(f"{text} (<= {tol:.1e})", value, value <= tol, tol)


def at_least(text: str, value: float, bound: float, strict: bool = False) -> dict:
    """The claim value >= bound (> bound when strict), with the bound in its text (NaN fails)."""
    return claim(f"{text} ({'>' if strict else '>='} {bound:.1e})", value,
                 value > bound if strict else value >= bound, bound)


def report(ctx, name: str, lines: list[str], claims: list[dict], record: dict) -> bool:
    """Print the numbers and every claim with ok/FAIL; one JSON record with --json. Returns all ok."""
    passed = all(c["ok"] for c in claims)
    text = lines + [f"  {'ok  ' if c['ok'] else 'FAIL'}  {c['claim']}: {c['value']:.3e}" for c in claims]
    ctx.emit("\n".join(text + [f"{name}: {'PASS' if passed else 'FAIL'}"]),
             {"check": name, "passed": passed, "claims": claims, **record})
    return passed


def measure(risk: Risk, W, U) -> dict:
    """R, ‖∇R‖, the natural scales λ‖θ‖ and λ‖θ‖², and ‖∇R‖/(λ‖θ‖) at (W, U)."""
    R, grad = risk(W, U)
    scale, scale2 = risk.scales(W, U)
    return {"R": R, "grad_norm": grad, "lam_theta": scale, "lam_theta_sq": scale2, "grad_rel": grad / scale}
