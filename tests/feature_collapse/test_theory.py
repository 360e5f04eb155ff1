"""Theorems 1–3: the solvers against the paper's published numbers, brute force and the exact risk."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from refimpl.errors import InputError
from refimpl.feature_collapse import collapse, data, exact, theory


@pytest.mark.parametrize("K,published", [(1000, 1.42214), (50, 0.61602)])
def test_theorem1_reproduces_the_published_norms(K, published):
    """Section 3.1: nc = 3, nw = 1200, L = 15, λ = 0.001 gives c = √(τ/nw) = 1.42214 and 0.61602."""
    sol = theory.theorem1(3, 1200, 15, K, 1e-3)
    assert sol.success
    assert round(sol.c, 5) == published, sol.c


@pytest.mark.parametrize("which", ["H", "H*"])
@pytest.mark.parametrize("nc,nw,L,K,d,lam", [(3, 1200, 15, 1000, 100, 1e-3), (2, 4, 3, 8, 3, 0.05),
                                             (4, 8, 2, 16, 5, 0.01), (3, 6, 4, 20, 4, 0.2)])
def test_tau_is_the_minimizer_of_a_convex_function(which, nc, nw, L, K, d, lam):
    if which == "H":
        sol, f = theory.theorem1(nc, nw, L, K, lam), lambda t: theory.H(t, nc, nw, L, K, lam)[0]
    else:
        sol, f = theory.theorem3(nc, L, K, d, lam), lambda t: theory.H_star(t, nc, L, K, d, lam)[0]
    assert sol.success and sol.value == pytest.approx(f(sol.tau), abs=1e-15)
    brute = minimize_scalar(f, bounds=(0, 10 * sol.tau + 1), method="bounded", options={"xatol": 1e-10})
    assert brute.fun >= sol.value - 1e-13
    assert sol.tau == pytest.approx(brute.x, rel=1e-4, abs=1e-6)
    t = np.linspace(0, 4 * sol.tau + 1, 400)
    assert np.all(np.diff(f(t), 2) > 0)                                   # strictly convex on the grid


def test_theorem1_gives_the_trivial_solution_when_lambda_is_large():
    sol = theory.theorem1(3, 6, 2, 9, 10.0)
    assert sol.tau == 0.0 and sol.c == 0.0 and theory.H(0.0, 3, 6, 2, 9, 10.0)[1] >= 0


@pytest.mark.parametrize("nc,sc,L,d", [(2, 2, 3, 3), (3, 2, 3, 4), (4, 3, 2, 5)])
def test_lemma_k_H_is_the_exact_risk_of_every_type1_configuration(rng, nc, sc, L, d):
    """R(W, U) = H(nw c²) on a type-I configuration with c′ = c √(nw/(KL)) (eq. 92), at any c."""
    Z = data.all_latent_variables(nc, L)
    K, nw, lam = len(Z), nc * sc, 0.02
    mu = data.word_frequencies(sc, "uniform")
    for c in (0.3, 1.7, theory.theorem1(nc, nw, L, K, lam).c):
        W, U = collapse.type1_configuration(collapse.equiangular_frame(nc, d, rng), Z, sc, c,
                                            c * np.sqrt(nw / (K * L)))
        R = exact.risk_and_grads(W, U, Z, mu, lam=lam, backend="numpy")[0]
        assert R == pytest.approx(theory.H(nw * c * c, nc, nw, L, K, lam)[0], rel=1e-13)


@pytest.mark.parametrize("nc,sc,L,d,freq", [(2, 2, 3, 3, "zipf"), (3, 3, 2, 4, "random"),
                                            (4, 2, 2, 4, "uniform")])
def test_lemma_r_H_star_is_the_exact_risk_of_every_type2_configuration(rng, nc, sc, L, d, freq):
    """R*(W, U) = H*(√(KL) c) on a type-II configuration (eq. 124), whatever µ."""
    Z = data.all_latent_variables(nc, L)
    K, lam = len(Z), 0.02
    mu = rng.dirichlet(np.ones(sc)) if freq == "random" else data.word_frequencies(sc, freq)
    for c in (0.2, 2.5, theory.theorem3(nc, L, K, d, lam).c):
        F = collapse.equiangular_frame(nc, d, rng, mean_zero=True)
        W, U = collapse.type2_configuration(F, Z, sc, c, rng)
        R = exact.risk_and_grads(W, U, Z, mu, lam=lam, layernorm=True, backend="numpy")[0]
        assert R == pytest.approx(theory.H_star(np.sqrt(K * L) * c, nc, L, K, d, lam)[0], rel=1e-13)


@pytest.mark.parametrize("nc,sc,L,freq", [(2, 3, 3, "zipf"), (3, 4, 2, "random"), (4, 2, 2, "zipf")])
def test_proposition_c_is_the_exact_gradient_on_type3_configurations(rng, nc, sc, L, freq):
    """−∂R0/∂u = a_u u and −∂R0/∂w_(α,β) = a_w[β] w_(α,β) at an arbitrary (c, r), K = nc^L."""
    Z = data.all_latent_variables(nc, L)
    mu = rng.dirichlet(np.ones(sc)) if freq == "random" else data.word_frequencies(sc, freq)
    c, r = 0.8, rng.uniform(0.2, 3.0, size=sc)
    W, U = collapse.type3_configuration(collapse.equiangular_frame(nc, nc + 1, rng), Z, r, c)
    _, dW, dU = exact.risk_and_grads(W, U, Z, mu, lam=0.0, backend="numpy")
    a_u, a_w = theory.proposition_c(nc, L, mu, c, r)
    np.testing.assert_allclose(-dU, a_u * U, atol=1e-14)
    np.testing.assert_allclose(-dW, W * np.tile(a_w, nc), atol=1e-14)


@pytest.mark.parametrize("nc,L,freq,lam", [(3, 3, "zipf", 0.01), (2, 4, "random", 0.02), (4, 2, "zipf", 0.05),
                                           (3, 15, "zipf", 1e-5)])
def test_theorem2_solves_7_8_with_decreasing_magnitudes(rng, nc, L, freq, lam):
    mu = np.sort(rng.dirichlet(np.ones(4)))[::-1] if freq == "random" else data.word_frequencies(5, freq)
    sol = theory.theorem2(nc, L, mu, lam)
    assert sol.success and sol.residual < 1e-12
    assert np.all(np.diff(sol.r) < 0)                                     # µ_1 > µ_2 > … gives r_1 > r_2 > …
    assert np.abs(theory.theorem2_residuals(nc, L, mu, lam, sol.c, sol.r * 1.001)).max() > 1e-4


def test_theorem2_with_uniform_mu_is_theorem1_s_critical_point():
    """Uniform µ and K = nc^L: the type-III solution has equal r_β, and it is Theorem 1's type-I
    minimizer (r = c, c_III = c′), two independent solvers agreeing."""
    nc, sc, L, lam = 3, 4, 3, 0.01
    t2, t1 = theory.theorem2(nc, L, np.full(sc, 1 / sc), lam), theory.theorem1(nc, nc * sc, L, nc**L, lam)
    np.testing.assert_allclose(t2.r, t1.c, rtol=1e-10)
    assert t2.c == pytest.approx(t1.c_prime, rel=1e-10)


def test_condition_9_violated_is_a_one_line_error():
    mu = data.word_frequencies(3, "zipf")
    ok, lhs, rhs = theory.condition9(3, 3, mu, 0.2)
    assert not ok and lhs > rhs
    with pytest.raises(InputError, match=r"violates condition \(9\).*the only critical point") as e:
        theory.theorem2(3, 3, mu, 0.2)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("call,match", [
    (lambda: theory.theorem1(3, 10, 2, 9, 0.01), "nw = 10 is not divisible by nc = 3"),
    (lambda: theory.theorem1(3, 9, 2, 10, 0.01), "K = 10 exceeds nc\\^L = 9"),
    (lambda: theory.theorem1(3, 9, 2, 9, 0.0), "lambda must be positive"),
    (lambda: theory.theorem1(1, 9, 2, 1, 0.1), "nc >= 2"),
    (lambda: theory.theorem3(3, 2, 9, 2, 0.01), "d >= nc"),
    (lambda: theory.theorem2(3, 2, [0.5, 0.5, 0.0], 0.01), "mu must be positive"),
    (lambda: theory.theorem2(3, 2, [0.5, 0.4], 0.01), "sum to 1"),
])
def test_bad_input_is_a_one_line_error(call, match):
    with pytest.raises(InputError, match=match) as e:
        call()
    assert "\n" not in str(e.value)
