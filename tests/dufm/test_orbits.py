"""Theorem 5: the dimension of the set of parameters producing one Z, numerically and by formula."""

import numpy as np
import pytest
from scipy.linalg import expm

from refimpl.dufm import hessian, orbits, structures
from refimpl.dufm.model import forward, loss
from refimpl.errors import InputError


def outputs(K, rng):
    return {"dnc": 3.0 * structures.dnc_matrix(K), "lr": 2.0 * structures.lr_matrix(K),
            "circle": 2.0 * structures.circle_matrix(K),
            "random rank 2": rng.standard_normal((K, 2)) @ rng.standard_normal((2, K))}


@pytest.mark.parametrize("K,d,L", [(4, 4, 2), (4, 6, 1), (5, 5, 3), (6, 9, 2)])
def test_orbit_dimension_is_L_times_stiefel(K, d, L, rng):
    for name, Z in outputs(K, rng).items():
        r = np.linalg.matrix_rank(Z)
        params = structures.balanced_params(Z, L, d, rng=rng)
        assert orbits.orbit_dimension(params) == orbits.orbit_dimension_formula(d, K, L, r), name


@pytest.mark.parametrize("K,d,L", [(4, 4, 2), (5, 7, 3), (6, 6, 1)])
def test_papers_dnc_count_is_too_small(K, d, L):
    params = structures.balanced_params(2.0 * structures.dnc_matrix(K), L, d)
    numeric = orbits.orbit_dimension(params)
    assert numeric == L * ((K - 1) * d - (K - 1) * K // 2)
    assert orbits.paper_dnc_dimension(d, K, L) < numeric
    if (K, d, L) == (4, 4, 2):
        assert (numeric, orbits.paper_dnc_dimension(d, K, L)) == (12, 6)   # the example


def test_generators_are_tangent_to_the_orbit(rng):
    K, d, L = 4, 5, 2
    params = structures.balanced_params(rng.standard_normal((K, K)), L, d, rng=rng)
    G = orbits.symmetry_generators(params)                                # (P, L·d(d−1)/2)
    n = d * (d - 1) // 2
    a, b = np.triu_indices(d, 1)
    for col in (0, n + 3):
        j, k = divmod(col, n)
        E = np.zeros((d, d))
        E[a[k], b[k]], E[b[k], a[k]] = 1.0, -1.0
        t = 1e-6
        O = expm(t * E)
        moved = [p.copy() for p in params]
        moved[j] = O @ moved[j]
        moved[j + 1] = moved[j + 1] @ O.T
        np.testing.assert_allclose(forward(moved)[0], forward(params)[0], atol=1e-12)
        assert loss(moved, lam=0.1) == pytest.approx(loss(params, lam=0.1), rel=1e-13)
        step = (hessian.flatten(moved) - hessian.flatten(params)) / t
        np.testing.assert_allclose(step, G[:, col], atol=1e-5)


@pytest.mark.parametrize("K,L,d", [(4, 2, 4), (5, 2, 7), (6, 3, 6)])
def test_orbit_dimension_equals_hessian_null_space(K, L, d, rng):
    lam = 1e-3                                                             # below λ_c: local minima
    cases = {"dnc": hessian.dnc_critical_point(K, L, lam, d, rng=rng)[0]}
    if K % 2 == 0:
        Z = structures.optimal_lr(K, L, lam).scale * structures.lr_matrix(K)
        cases["lr"] = structures.balanced_params(Z, L, d, rng=rng)
    Z = structures.optimal_circle(K, L, lam).scale * structures.circle_matrix(K)
    cases["circle"] = structures.balanced_params(Z, L, d, rng=rng)
    for name, params in cases.items():
        spec = hessian.spectrum(params, lam=lam)
        assert spec.null_dimension == spec.orbit_dimension == orbits.orbit_dimension(params), name
        assert spec.orbit_residual < 1e-12


@pytest.mark.parametrize("K,r", [(4, 2), (10, 2), (10, 5), (20, 3)])
def test_dimension_ratio(K, r):
    ds = np.arange(K, 40 * K)
    R = np.array([orbits.dimension_ratio(int(d), K, 2, r) for d in ds])
    assert R[0] > 1                                  # above 1 already at d = K …
    assert np.all(np.diff(R) > 0)                    # … and still increasing …
    assert R[-1] < (K - 1) / r and R[-1] > (K - 1) / r - 0.05 * (K - 1) / r   # … towards (K−1)/r
    assert orbits.paper_ratio_bounds(K, K, r)[1] < 1 # B.6's count started below 1


@pytest.mark.parametrize("call,match", [
    (lambda: orbits.orbit_dimension_formula(3, 4, 2, 2), "d = 3"),
    (lambda: orbits.dimension_ratio(10, 4, 0, 2), "L must be a positive integer, got 0"),
    (lambda: orbits.dimension_ratio(10, 4, 2, 5), "rank r = 5"),
])
def test_bad_input(call, match):
    with pytest.raises(InputError, match=match):
        call()
