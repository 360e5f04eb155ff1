"""``python cli.py verify theorem1|theorem2|theorem3|all``: Theorems 1–3 of *Feature collapse*, checked
with the exact true risk on small instances with all K = nc^L latent variables (where Assumption A holds).

Each check builds the collapse configuration from the theorem's solver (:mod:`refimpl.theory`,
:mod:`refimpl.collapse`) and tests the theorem's claims with :func:`refimpl.exact.risk_and_grads`:

* Theorem 1 (h, uniform µ) and Theorem 3 (h*, any µ > 0): the exact risk equals the closed form H(τ) /
  H*(τ); the gradient vanishes; random perturbations do not lower the risk (a local minimum); L-BFGS on the
  exact risk from random starts does not get below H(τ) (the global minimum).
* Theorem 2 (h, any µ > 0, condition 9): the type-III configuration solving (7)–(8) is critical; the best
  type-I configuration (the best c, c′ of Definition 1) is not critical unless µ is uniform.

``--perturb ε`` multiplies the solver's constants by 1 + ε: a negative control under which the checks
must fail. Defaults run in seconds; the paper's λ is 0.001 (any λ > 0 works, 0.01 converges faster).
"""

import dataclasses

import numpy as np
from scipy.optimize import minimize

from refimpl import collapse, data, exact, progress, theory
from refimpl.errors import InputError, positive_int, require
from refimpl.registry import Spec

RISK_RTOL = 1e-12    # |R − H(τ)| / max(1, H(τ)) at the analytic solution (≈1e-16 observed)
GRAD_TOL = 1e-10     # ‖∇R‖ at an analytic critical point (≈1e-15 observed)
BELOW_TOL = 1e-12    # going lower than the claimed minimum by more than this refutes it
NOT_CRITICAL = 1e-6  # ‖∇R‖ above this: not a critical point
EPSILONS = (1e-4, 1e-3, 1e-2, 1e-1)  # relative sizes of the random perturbations



@dataclasses.dataclass
class Instance:
    """A small instance: nc concepts of sc words, sentences of length L, all K = nc^L latent variables."""

    nc: int = dataclasses.field(default=3, metadata={"help": "concepts"})
    sc: int = dataclasses.field(default=2, metadata={"help": "words per concept (nw = nc·sc)"})
    L: int = dataclasses.field(default=3, metadata={"help": "sentence length (K = nc^L classes)"})
    d: int = dataclasses.field(default=8, metadata={"help": "embedding dimension"})
    lam: float = dataclasses.field(default=0.01, metadata={"help": "weight decay λ (paper: 0.001)"})
    freq: str = dataclasses.field(default="zipf", metadata={
        "help": "word frequencies µ: uniform, zipf, random (Dirichlet, from the seed) or p1,p2,..."})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of frames, perturbations, starts"})
    starts: int = dataclasses.field(default=3, metadata={"help": "random starts of L-BFGS"})
    perturbations: int = dataclasses.field(default=20, metadata={"help": "random perturbations"})
    perturb: float = dataclasses.field(default=0.0, metadata={
        "help": "negative control: scale the solver's constants by 1+perturb (the check must fail)"})

    def __post_init__(self):
        for name in ("nc", "sc", "L", "d"):
            setattr(self, name, positive_int(name, getattr(self, name)))
        require(self.nc >= 2, f"nc must be >= 2, got {self.nc}")
        require(self.lam > 0, f"lam must be positive, got {self.lam!r}")
        require(self.starts >= 0 and self.perturbations >= 0, "starts and perturbations must be >= 0")
        require(self.perturb > -1, f"perturb must be > -1, got {self.perturb!r}")
        n = exact.sentence_count(self.nc**self.L, self.sc, self.L)
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


@dataclasses.dataclass
class AllConfig:
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of every check"})


class Risk:
    """The exact risk (eq. 5, or eq. 10 with ``layernorm``) of an instance, for flat parameter vectors."""

    def __init__(self, config: Instance, layernorm: bool):
        self.Z = data.all_latent_variables(config.nc, config.L)           # (K, L), K = nc^L
        self.mu, self.lam, self.layernorm = config.mu(), config.lam, layernorm
        self.shape_W = (config.d, config.nc * config.sc)
        self.shape_U = (len(self.Z), config.L * config.d)

    def __call__(self, W, U):
        """(R, ‖∇R‖) at (W, U)."""
        R, dW, dU = exact.risk_and_grads(W, U, self.Z, self.mu, lam=self.lam, layernorm=self.layernorm)
        return R, float(np.sqrt(np.vdot(dW, dW) + np.vdot(dU, dU)))

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
    """L-BFGS on the exact risk from n random starts N(0, 1/d): (lowest value, its gradient norm)."""
    size = np.prod(risk.shape_W) + np.prod(risk.shape_U)
    K, L = risk.Z.shape
    slow = K * exact.sentence_count(K, risk.mu.size, L) * L > 2e7        # ≳ 50 ms per evaluation
    best = (np.inf, np.nan)
    with progress.bar(n, "L-BFGS starts", enabled=ctx.progress and slow and n > 0) as bar:
        for _ in range(n):
            x0 = rng.standard_normal(size) / np.sqrt(risk.shape_W[0])
            res = minimize(risk.flat, x0, jac=True, method="L-BFGS-B",
                           options={"maxiter": 5000, "gtol": 1e-10, "ftol": 1e-16, "maxcor": 20})
            best = min(best, (float(res.fun), float(np.linalg.norm(res.jac))))
            bar.update(1)
    return best


def claim(text: str, value: float, ok: bool) -> dict:
    return {"claim": text, "value": float(value), "ok": bool(ok)}


def report(ctx, name: str, lines: list[str], claims: list[dict], record: dict) -> bool:
    """Print the numbers and every claim with ok/FAIL; one JSON record with --json. Returns all ok."""
    passed = all(c["ok"] for c in claims)
    text = lines + [f"  {'ok  ' if c['ok'] else 'FAIL'}  {c['claim']}: {c['value']:.3e}" for c in claims]
    ctx.emit("\n".join(text + [f"{name}: {'PASS' if passed else 'FAIL'}"]),
             {"check": name, "passed": passed, "claims": claims, **record})
    return passed


def _minimum_claims(risk, W, U, closed_form, config, ctx, rng) -> tuple[list[str], list[dict]]:
    """Theorems 1 and 3: R = closed form, ∇R = 0, local minimum, nothing lower from random starts."""
    R, grad = risk(W, U)
    gap = perturbation_gap(risk, W, U, config.perturbations, rng)
    best, best_grad = lbfgs_best(risk, config.starts, rng, ctx)
    lines = [f"  exact risk R = {R:.15f}   closed form = {closed_form:.15f}   ‖∇R‖ = {grad:.2e}"]
    claims = [claim("|R − closed form| / max(1, closed form)", abs(R - closed_form) / max(1.0, closed_form),
                    abs(R - closed_form) <= RISK_RTOL * max(1.0, closed_form)),
              claim("exact gradient norm at the configuration", grad, grad <= GRAD_TOL)]
    if config.perturbations:
        lines.append(f"  {config.perturbations} random perturbations (ε‖θ‖, ε = 1e-4..1e-1): "
                     f"min R(θ+εv) − R(θ) = {gap:+.2e}")
        claims.append(claim("random perturbations: min R(θ+εv) − R(θ) (>= 0)", gap, gap >= -BELOW_TOL))
    if config.starts:
        lines.append(f"  L-BFGS from {config.starts} random starts: min R − closed form = "
                     f"{best - closed_form:+.2e} (‖∇R‖ there {best_grad:.1e})")
        claims.append(claim("L-BFGS from random starts: min R − closed form (>= 0)", best - closed_form,
                            best >= closed_form - BELOW_TOL))
    return lines, claims


def check_theorem1(config: Theorem1Config, ctx) -> bool:
    """Theorem 1: type-I collapse with c = √(τ/nw), c′ = √(τ/(KL)) minimizes the true risk (5)."""
    rng = np.random.default_rng(config.seed)
    nc, sc, L, K = config.nc, config.sc, config.L, config.nc**config.L
    sol = theory.theorem1(nc, nc * sc, L, K, config.lam)
    f = 1.0 + config.perturb
    F, Z = collapse.equiangular_frame(nc, config.d, rng), data.all_latent_variables(nc, L)
    W, U = collapse.type1_configuration(F, Z, sc, f * sol.c, f * sol.c_prime)
    lines, claims = _minimum_claims(Risk(config, False), W, U, sol.value, config, ctx, rng)
    head = [f"Theorem 1 (type-I collapse of h): nc={nc} sc={sc} L={L} K={K} d={config.d} λ={config.lam:g} "
            f"uniform µ", f"  solver: τ = {sol.tau:.10g}, c = {sol.c:.10g}, c′ = {sol.c_prime:.10g} "
            f"(|H′(τ)| = {sol.residual:.1e})" + (f"; constants scaled by {f:g}" if f != 1 else "")]
    record = {"config": dataclasses.asdict(config), "tau": sol.tau, "c": sol.c, "c_prime": sol.c_prime,
              "H": sol.value}
    return report(ctx, "theorem1", head + lines, claims, record)


def check_theorem3(config: Theorem3Config, ctx) -> bool:
    """Theorem 3: type-II collapse with c = τ/√(KL) minimizes the true risk (10) of h*, for any µ > 0."""
    rng = np.random.default_rng(config.seed)
    nc, sc, L, K = config.nc, config.sc, config.L, config.nc**config.L
    sol = theory.theorem3(nc, L, K, config.d, config.lam)
    F = collapse.equiangular_frame(nc, config.d, rng, mean_zero=True)
    W, U = collapse.type2_configuration(F, data.all_latent_variables(nc, L), sc, (1 + config.perturb) * sol.c,
                                        rng)                              # W scrambled: only φ(W) collapses
    lines, claims = _minimum_claims(Risk(config, True), W, U, sol.value, config, ctx, rng)
    head = [f"Theorem 3 (type-II collapse of h*): nc={nc} sc={sc} L={L} K={K} d={config.d} "
            f"λ={config.lam:g} µ={np.array2string(config.mu(), precision=3)}",
            f"  solver: τ = {sol.tau:.10g}, c = {sol.c:.10g} (|H*′(τ)| = {sol.residual:.1e})"]
    record = {"config": dataclasses.asdict(config), "tau": sol.tau, "c": sol.c, "H_star": sol.value}
    return report(ctx, "theorem3", head + lines, claims, record)


def best_type1(risk: Risk, F, Z, sc) -> tuple[float, float, float]:
    """The type-I configuration W = a F P, Û = b F Z of lowest exact risk: (a, b, R)."""
    W1, U1 = collapse.type1_configuration(F, Z, sc, 1.0, 1.0)

    def fun(ab):
        R, dW, dU = exact.risk_and_grads(ab[0] * W1, ab[1] * U1, Z, risk.mu, lam=risk.lam)
        return R, np.array([np.vdot(dW, W1), np.vdot(dU, U1)])

    res = minimize(fun, np.ones(2), jac=True, method="L-BFGS-B", options={"gtol": 1e-13, "ftol": 1e-16})
    return float(res.x[0]), float(res.x[1]), float(res.fun)


def check_theorem2(config: Theorem2Config, ctx) -> bool:
    """Theorem 2: the type-III configuration solving (7)–(8) is critical; type-I is not (µ non-uniform)."""
    rng = np.random.default_rng(config.seed)
    nc, sc, L = config.nc, config.sc, config.L
    mu, risk = config.mu(), Risk(config, False)
    sol = theory.theorem2(nc, L, mu, config.lam)                          # InputError when (9) fails
    F, f = collapse.equiangular_frame(nc, config.d, rng), 1.0 + config.perturb
    R3, grad3 = risk(*collapse.type3_configuration(F, risk.Z, f * sol.r, f * sol.c))
    residual = float(np.abs(theory.theorem2_residuals(nc, L, mu, config.lam, f * sol.c, f * sol.r)).max())
    a, b, R1 = best_type1(risk, F, risk.Z, sc)
    grad1 = risk(*collapse.type1_configuration(F, risk.Z, sc, a, b))[1]
    best, _ = lbfgs_best(risk, config.starts, rng, ctx)                  # the paper's conjecture, not claimed
    uniform = bool(np.allclose(mu, 1.0 / sc, rtol=1e-12))
    lines = [f"Theorem 2 (type-III collapse of h): nc={nc} sc={sc} L={L} K={nc**L} d={config.d} "
             f"λ={config.lam:g} µ={np.array2string(mu, precision=3)}",
             f"  solver: c = {sol.c:.10g}, r = {np.array2string(sol.r, precision=6)}",
             f"  type III: R = {R3:.15f}  ‖∇R‖ = {grad3:.2e}  residual of (7)-(8) = {residual:.1e}",
             f"  best type I (c = {a:.6g}, c′ = {b:.6g}): R = {R1:.15f}  ‖∇R‖ = {grad1:.2e}"]
    if config.starts:
        lines.append(f"  conjecture (global optimality, not part of the theorem): L-BFGS ({config.starts} "
                     f"starts) min R − R(type III) = {best - R3:+.2e}")
    claims = [claim("relative residual of (7)-(8)", residual, residual <= 1e-10),
              claim("exact gradient norm at the type-III configuration", grad3, grad3 <= GRAD_TOL)]
    if uniform:
        claims.append(claim("µ uniform: the best type-I configuration is critical too", grad1, grad1 <= 1e-8))
    else:
        claims.append(claim("µ non-uniform: gradient norm at the best type-I configuration (> 1e-6)", grad1,
                            grad1 > NOT_CRITICAL))
    record = {"config": dataclasses.asdict(config), "mu": mu.tolist(), "c": sol.c, "r": sol.r.tolist(),
              "R_type3": R3, "R_best_type1": R1, "R_lbfgs": best if config.starts else None}
    return report(ctx, "theorem2", lines, claims, record)


def check_all(config: AllConfig, ctx) -> bool:
    """Theorems 1, 2 and 3 with their default instances."""
    results = [check_theorem1(Theorem1Config(seed=config.seed), ctx),
               check_theorem2(Theorem2Config(seed=config.seed), ctx),
               check_theorem3(Theorem3Config(seed=config.seed), ctx)]
    return all(results)


SPECS = [
    Spec("theorem1", Theorem1Config, check_theorem1, check_theorem1.__doc__),
    Spec("theorem2", Theorem2Config, check_theorem2, check_theorem2.__doc__),
    Spec("theorem3", Theorem3Config, check_theorem3, check_theorem3.__doc__),
    Spec("all", AllConfig, check_all, check_all.__doc__),
]
