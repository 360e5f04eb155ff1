"""``python cli.py verify theorem1|theorem2|theorem3|all``: Theorems 1–3 of *Feature collapse*, checked
with the exact true risk on small instances with all K = nc^L latent variables (where Assumption A holds).

Each check builds the collapse configuration from the theorem's solver (:mod:`.theory`,
:mod:`.collapse`) and tests the theorem's claims with :func:`.exact.risk_and_grads`:

* Theorem 1 (h, uniform µ) and Theorem 3 (h*, any µ > 0): the exact risk equals the closed form H(τ) /
  H*(τ); the gradient vanishes; random perturbations do not lower the risk (a local minimum); L-BFGS on the
  exact risk from random starts does not get below H(τ) (the global minimum).
* Theorem 2 (h, any µ > 0, condition 9): the type-III configuration solving (7)–(8) is critical; the best
  type-I configuration (the best c, c′ of Definition 1) is not critical unless µ is uniform.

Claims are scale-invariant. At a critical point ∇R0 = −λθ (θ the regularized parameters: (W, U) for h,
U for h*), so gradients are measured in units of λ‖θ‖ and risk differences in units of λ‖θ‖² (the
curvature of R along θ is of that order): ‖∇R‖/(λ‖θ‖), |R − H(τ)|/(λ‖θ‖²), … (θ = 0, the trivial point of
a large λ, uses λ and λ as the units). Absolute thresholds do not survive a change of λ: ‖∇R‖ at the
non-critical best type-I point is below 1e-6 at λ = 1e-7, and at a perturbed "critical" point below 1e-10
at λ ≲ 1e-10. Each tolerance is the larger of a fixed relative one and the float64 rounding floor of the
quantity (‖∇R‖ is rounded to ≲ 16ε‖θ‖, R to ≲ 256ε·max(1, R); observed ≈ 0.25ε‖θ‖ and ≲ 20ε), and is
printed in the claim. A λ so small that the gradient tolerance exceeds 1e-4 (λ < 3.6e-11) is refused:
float64 could not tell a critical point there.

``--perturb ε`` multiplies the solver's constants by 1 + ε: a negative control under which the checks
must fail. Defaults run in seconds; the paper's λ is 0.001 (any λ > 0 works, 0.01 converges faster).
"""

import dataclasses

import numpy as np
from scipy.optimize import minimize, root

from refimpl import validate
from refimpl.errors import InputError, require
from refimpl.feature_collapse import collapse, data, exact, theory
from refimpl.feature_collapse.claims import (
    GRAD_FLOOR,
    MAX_GRAD_TOL,
    NOT_CRITICAL,
    Risk,
    at_least,
    at_most,
    grad_tolerance,
    lbfgs_best,
    measure,
    perturbation_gap,
    report,
    risk_tolerance,
)
from refimpl.registry import Spec


def check_seed(seed) -> None:
    """A seed for numpy.random.default_rng: an integer >= 0 (one-line InputError otherwise)."""
    require(not isinstance(seed, bool) and isinstance(seed, int | np.integer) and seed >= 0,
            f"seed must be an integer >= 0, got {seed!r}")


@dataclasses.dataclass
class Instance:
    """A small instance: nc concepts of sc words, sentences of length L, all K = nc^L latent variables."""

    nc: int = dataclasses.field(default=3, metadata={"help": "concepts"})
    sc: int = dataclasses.field(default=2, metadata={"help": "words per concept (nw = nc·sc)"})
    L: int = dataclasses.field(default=4, metadata={"help": "sentence length (K = nc^L classes)"})
    d: int = dataclasses.field(default=8, metadata={"help": "embedding dimension"})
    lam: float = dataclasses.field(default=0.01, metadata={"help": "weight decay λ (paper: 0.001)"})
    freq: str = dataclasses.field(default="zipf", metadata={
        "help": "word frequencies µ: uniform, zipf, random (Dirichlet, from the seed) or p1,p2,..."})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of frames, perturbations, starts"})
    starts: int = dataclasses.field(default=5, metadata={"help": "random starts of L-BFGS"})
    perturbations: int = dataclasses.field(default=40, metadata={"help": "random perturbations"})
    perturb: float = dataclasses.field(default=0.0, metadata={
        "help": "negative control: scale the solver's constants by 1+perturb (the check must fail)"})

    def __post_init__(self):
        for name in ("nc", "sc", "L", "d"):
            setattr(self, name, validate.positive_int(name, getattr(self, name)))
        require(self.nc >= 2, f"nc must be >= 2, got {self.nc}")
        require(self.lam > 0, f"lam must be positive, got {self.lam!r}")
        require(self.starts >= 0 and self.perturbations >= 0, "starts and perturbations must be >= 0")
        require(self.perturb > -1, f"perturb must be > -1, got {self.perturb!r}")
        validate.seed(self.seed)
        require(grad_tolerance(self.lam) <= MAX_GRAD_TOL,
                f"lam = {self.lam:g} is too small to check in float64: ‖∇R‖ is only known to ~16ε‖θ‖, more "
                f"than {MAX_GRAD_TOL:g}·λ‖θ‖ (lam must be >= {GRAD_FLOOR / MAX_GRAD_TOL:.2g})")
        n = data.sentence_count(self.nc**self.L, self.sc, self.L)
        require(n <= 2_000_000, f"nc^L·sc^L = {n:,} sentences: too many for a check (at most 2,000,000)")
        self.mu()

    def mu(self) -> np.ndarray:
        """µ of shape (sc,) from ``freq`` (InputError on zeros, bad sums, unknown names)."""
        if self.freq == "random":
            return np.random.default_rng([self.seed, 1]).dirichlet(np.ones(self.sc))
        if self.freq in ("uniform", "zipf"):
            return data.word_frequencies(self.sc, self.freq)
        try:
            values = [float(v) for v in self.freq.split(",")]
        except ValueError:
            raise InputError(f"freq must be uniform, zipf, random or p1,p2,..., got {self.freq!r}") from None
        return data.word_frequencies(self.sc, values)


@dataclasses.dataclass
class Theorem1Config(Instance):
    freq: str = dataclasses.field(default="uniform", metadata={"help": "Theorem 1 assumes uniform µ"})

    def __post_init__(self):
        super().__post_init__()
        require(self.freq == "uniform",
                f"Theorem 1 assumes uniform word frequencies, got freq = {self.freq!r} (see theorem2)")


@dataclasses.dataclass
class Theorem2Config(Instance):
    sc: int = dataclasses.field(default=3, metadata={"help": "words per concept (nw = nc·sc)"})
    d: int = dataclasses.field(default=4, metadata={"help": "embedding dimension"})


@dataclasses.dataclass
class Theorem3Config(Instance):
    sc: int = dataclasses.field(default=3, metadata={"help": "words per concept (nw = nc·sc)"})
    d: int = dataclasses.field(default=4, metadata={"help": "embedding dimension (>= nc)"})

    def __post_init__(self):
        super().__post_init__()
        require(self.d >= self.nc, f"type-II collapse needs mean-zero equiangular vectors: d >= nc, "
                                   f"got d = {self.d}, nc = {self.nc}")


@dataclasses.dataclass
class AllConfig:
    """``verify all``: the three default instances, sharing a seed, a perturbation and the search sizes."""

    seed: int = dataclasses.field(default=0, metadata={"help": "seed of every check"})
    perturb: float = dataclasses.field(default=0.0, metadata={
        "help": "negative control passed to every check: constants scaled by 1+perturb (must fail)"})
    starts: int = dataclasses.field(default=5, metadata={"help": "random starts of L-BFGS, every check"})
    perturbations: int = dataclasses.field(default=40, metadata={
        "help": "random perturbations (theorems 1 and 3)"})

    def __post_init__(self):
        validate.seed(self.seed)
        self.configs()                                                    # every instance valid, up front

    def configs(self) -> list[Instance]:
        """The three theorems' default instances with this seed, perturb, starts and perturbations."""
        common = dataclasses.asdict(self)
        return [Theorem1Config(**common), Theorem2Config(**common), Theorem3Config(**common)]


def _minimum_claims(risk, W, U, closed_form, config, ctx, rng) -> tuple[list[str], list[dict], dict]:
    """Theorems 1 and 3: R = closed form, ∇R = 0, local minimum, nothing lower from random starts.
    Returns (lines, claims, the measures of :func:`measure` at (W, U))."""
    at = measure(risk, W, U)
    R, s2 = at["R"], at["lam_theta_sq"]
    grad_tol, risk_tol = grad_tolerance(risk.lam), risk_tolerance(s2, R)
    lines = [f"  exact risk R = {R:.15f}   closed form = {closed_form:.15f}   ‖∇R‖ = {at['grad_norm']:.2e}",
             f"  natural scales (θ regularized): λ‖θ‖ = {at['lam_theta']:.4e}, λ‖θ‖² = {s2:.4e}"]
    claims = [at_most("|R − closed form|/(λ‖θ‖²)", abs(R - closed_form) / s2, risk_tol),
              at_most("gradient norm ‖∇R‖/(λ‖θ‖) at the configuration", at["grad_rel"], grad_tol)]
    if config.perturbations:
        gap = perturbation_gap(risk, W, U, config.perturbations, rng)
        lines.append(f"  {config.perturbations} random perturbations (ε‖θ‖, ε = 1e-4..1e-1): "
                     f"min R(θ+εv) − R(θ) = {gap:+.2e}")
        claims.append(at_least("random perturbations: min (R(θ+εv) − R(θ))/(λ‖θ‖²)", gap / s2, -risk_tol))
    if config.starts:
        best, best_grad = lbfgs_best(risk, config.starts, rng, ctx)
        lines.append(f"  L-BFGS from {config.starts} random starts: min R − closed form = "
                     f"{best - closed_form:+.2e} (‖∇R‖ there {best_grad:.1e})")
        claims.append(at_least("L-BFGS from random starts: (min R − closed form)/(λ‖θ‖²)",
                               (best - closed_form) / s2, -risk_tol))
    return lines, claims, at


def check_theorem1(config: Theorem1Config, ctx) -> bool:
    """Theorem 1: type-I collapse with c = √(τ/nw), c′ = √(τ/(KL)) minimizes the true risk (5)."""
    rng = np.random.default_rng(config.seed)
    nc, sc, L, K = config.nc, config.sc, config.L, config.nc**config.L
    sol = theory.theorem1(nc, nc * sc, L, K, config.lam)
    f = 1.0 + config.perturb
    c, c_prime = f * sol.c, f * sol.c_prime                               # the constants used
    F, Z = collapse.equiangular_frame(nc, config.d, rng), data.all_latent_variables(nc, L)
    W, U = collapse.type1_configuration(F, Z, sc, c, c_prime)
    lines, claims, at = _minimum_claims(Risk(config, False), W, U, sol.value, config, ctx, rng)
    head = [f"Theorem 1 (type-I collapse of h): nc={nc} sc={sc} L={L} K={K} d={config.d} λ={config.lam:g} "
            f"uniform µ", f"  solver: τ = {sol.tau:.10g}, c = {sol.c:.10g}, c′ = {sol.c_prime:.10g} "
            f"(|H′(τ)| = {sol.residual:.1e})"
            + (f"; used × {f:g}: c = {c:.10g}, c′ = {c_prime:.10g}" if f != 1 else "")]
    record = {"config": dataclasses.asdict(config), "tau": sol.tau, "c": sol.c, "c_prime": sol.c_prime,
              "c_used": c, "c_prime_used": c_prime, "H": sol.value, **at}
    return report(ctx, "theorem1", head + lines, claims, record)


def check_theorem3(config: Theorem3Config, ctx) -> bool:
    """Theorem 3: type-II collapse with c = τ/√(KL) minimizes the true risk (10) of h*, for any µ > 0."""
    rng = np.random.default_rng(config.seed)
    nc, sc, L, K = config.nc, config.sc, config.L, config.nc**config.L
    sol = theory.theorem3(nc, L, K, config.d, config.lam)
    f = 1.0 + config.perturb
    F = collapse.equiangular_frame(nc, config.d, rng, mean_zero=True)
    W, U = collapse.type2_configuration(F, data.all_latent_variables(nc, L), sc, f * sol.c,
                                        rng)                              # W scrambled: only φ(W) collapses
    lines, claims, at = _minimum_claims(Risk(config, True), W, U, sol.value, config, ctx, rng)
    head = [f"Theorem 3 (type-II collapse of h*): nc={nc} sc={sc} L={L} K={K} d={config.d} "
            f"λ={config.lam:g} µ={np.array2string(config.mu(), precision=3)}",
            f"  solver: τ = {sol.tau:.10g}, c = {sol.c:.10g} (|H*′(τ)| = {sol.residual:.1e})"
            + (f"; used × {f:g}: c = {f * sol.c:.10g}" if f != 1 else "")]
    record = {"config": dataclasses.asdict(config), "tau": sol.tau, "c": sol.c, "c_used": f * sol.c,
              "H_star": sol.value, **at}
    return report(ctx, "theorem3", head + lines, claims, record)


def best_type1(risk: Risk, F, Z, sc) -> tuple[float, float, float]:
    """The type-I configuration W = a F P, Û = b F Z of lowest exact risk: (a, b, R).

    L-BFGS on R/λ (so that gtol is relative to the natural scale whatever λ) locates the minimum only to
    ~√(rounding of R); a root of the two projected gradients started there (``hybr``) then makes it
    stationary to the precision of the gradient itself, which the uniform-µ claim needs at small λ.
    """
    W1, U1 = collapse.type1_configuration(F, Z, sc, 1.0, 1.0)

    def fun(ab):
        R, dW, dU = exact.risk_and_grads(ab[0] * W1, ab[1] * U1, Z, risk.mu, lam=risk.lam)
        return R / risk.lam, np.array([np.vdot(dW, W1), np.vdot(dU, U1)]) / risk.lam

    res = minimize(fun, np.ones(2), jac=True, method="L-BFGS-B", options={"gtol": 1e-13, "ftol": 1e-16})
    polished = root(lambda ab: fun(ab)[1], res.x, method="hybr", options={"xtol": 1e-15})
    ab = polished.x if np.linalg.norm(fun(polished.x)[1]) < np.linalg.norm(res.jac) else res.x
    return float(ab[0]), float(ab[1]), risk.lam * float(fun(ab)[0])


def _theorem2_claims(mu, residual: float, type3: dict, type1: dict, lam: float) -> list[dict]:
    """(7)–(8) solved; type III critical; the best type I critical iff µ is uniform (relative norms)."""
    tol = grad_tolerance(lam)
    claims = [at_most("relative residual of (7)-(8)", residual, 1e-10),
              at_most("gradient norm ‖∇R‖/(λ‖θ‖) at the type-III configuration", type3["grad_rel"], tol)]
    if np.allclose(mu, 1.0 / mu.size, rtol=1e-12):
        claims.append(at_most("µ uniform: the best type-I configuration is critical too, ‖∇R‖/(λ‖θ‖)",
                              type1["grad_rel"], tol))
    else:
        claims.append(at_least("µ non-uniform: the best type-I configuration is not critical, ‖∇R‖/(λ‖θ‖)",
                               type1["grad_rel"], NOT_CRITICAL * tol, strict=True))
    return claims


def check_theorem2(config: Theorem2Config, ctx) -> bool:
    """Theorem 2: the type-III configuration solving (7)–(8) is critical; type-I is not (µ non-uniform)."""
    rng = np.random.default_rng(config.seed)
    nc, sc, L = config.nc, config.sc, config.L
    mu, risk = config.mu(), Risk(config, False)
    sol = theory.theorem2(nc, L, mu, config.lam)                          # InputError when (9) fails
    F, f = collapse.equiangular_frame(nc, config.d, rng), 1.0 + config.perturb
    c, r = f * sol.c, f * sol.r                                           # the constants used
    type3 = measure(risk, *collapse.type3_configuration(F, risk.Z, r, c))
    residual = float(np.abs(theory.theorem2_residuals(nc, L, mu, config.lam, c, r)).max())
    a, b, _ = best_type1(risk, F, risk.Z, sc)
    type1 = measure(risk, *collapse.type1_configuration(F, risk.Z, sc, a, b))
    best, _ = lbfgs_best(risk, config.starts, rng, ctx)                  # the paper's conjecture, not claimed
    lines = [f"Theorem 2 (type-III collapse of h): nc={nc} sc={sc} L={L} K={nc**L} d={config.d} "
             f"λ={config.lam:g} µ={np.array2string(mu, precision=3)}",
             f"  solver: c = {sol.c:.10g}, r = {np.array2string(sol.r, precision=6)}"
             + (f"; used × {f:g}" if f != 1 else ""),
             f"  type III: R = {type3['R']:.15f}  ‖∇R‖ = {type3['grad_norm']:.2e}  λ‖θ‖ = "
             f"{type3['lam_theta']:.3e}  residual of (7)-(8) = {residual:.1e}",
             f"  best type I (c = {a:.6g}, c′ = {b:.6g}): R = {type1['R']:.15f}  ‖∇R‖ = "
             f"{type1['grad_norm']:.2e}  λ‖θ‖ = {type1['lam_theta']:.3e}"]
    if config.starts:
        lines.append(f"  conjecture (global optimality, not part of the theorem): L-BFGS ({config.starts} "
                     f"starts) min R − R(type III) = {best - type3['R']:+.2e}")
    claims = _theorem2_claims(mu, residual, type3, type1, config.lam)
    record = {"config": dataclasses.asdict(config), "mu": mu.tolist(), "c": sol.c, "r": sol.r.tolist(),
              "c_used": c, "r_used": r.tolist(), "R_type3": type3["R"], "grad_type3": type3["grad_norm"],
              "grad_rel_type3": type3["grad_rel"], "type1_constants": [a, b], "R_best_type1": type1["R"],
              "grad_best_type1": type1["grad_norm"], "grad_rel_best_type1": type1["grad_rel"],
              "R_lbfgs": best if config.starts else None}
    return report(ctx, "theorem2", lines, claims, record)


def check_all(config: AllConfig, ctx) -> bool:
    """Theorems 1, 2 and 3 with their default instances (--perturb: each with its constants perturbed)."""
    configs = config.configs()                                            # all validated before any check
    results = [check(cfg, ctx) for check, cfg in zip((check_theorem1, check_theorem2, check_theorem3),
                                                     configs, strict=True)]
    return all(results)


class _Collect:
    """A context that keeps the emitted records instead of printing them (for a ``reproduce`` task)."""

    progress, json, quiet = False, True, True

    def __init__(self):
        self.records = []

    def emit(self, text, record=None):
        if record is not None:
            self.records.append(record)

    def info(self, text):
        pass


def all_records(settings: dict):
    """A ``reproduce`` task: ``verify all`` with `settings` (AllConfig's fields); returns
    ({"passed": all claims hold, "checks": one record per theorem}, None)."""
    ctx = _Collect()
    passed = check_all(AllConfig(**settings), ctx)
    return {"passed": passed, "checks": ctx.records}, None


SPECS = [
    Spec("theorem1", Theorem1Config, check_theorem1, check_theorem1.__doc__),
    Spec("theorem2", Theorem2Config, check_theorem2, check_theorem2.__doc__),
    Spec("theorem3", Theorem3Config, check_theorem3, check_theorem3.__doc__),
    Spec("all", AllConfig, check_all, check_all.__doc__),
]
