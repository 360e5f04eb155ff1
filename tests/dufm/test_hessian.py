"""The analytic Hessian of B.5 against finite differences, and Theorem 4 at the DNC critical points."""

import numpy as np
import pytest

from refimpl.dufm import critical, hessian, orbits
from refimpl.dufm.model import forward
from refimpl.errors import InputError


def random_params(K, d, L, n, rng, scale=0.7):
    shapes = [(d, K * n)] + [(d, d)] * (L - 1) + [(K, d)]
    return [scale * rng.standard_normal(shape) for shape in shapes]


@pytest.mark.parametrize("K,d,L,n", [(2, 2, 1, 1), (3, 4, 1, 1), (3, 4, 2, 1), (4, 5, 3, 1), (3, 3, 2, 2)])
def test_analytic_hessian_matches_finite_differences(K, d, L, n, rng):
    params = random_params(K, d, L, n, rng)
    H = hessian.hessian(params, lam=0.01)
    F = hessian.fd_hessian(params, lam=0.01)
    np.testing.assert_allclose(H, H.T, atol=1e-14)
    assert np.abs(H - F).max() < 1e-7 * np.abs(H).max(), np.abs(H - F).max()


def test_hessian_without_its_second_term_fails_the_check(rng):
    # The O(λ) term (A_{l+1}ᵀ M B_{r−1}ᵀ ⊗ W_{l−1}…W_{r+1}) that Theorem 4's proof drops is not small
    # away from a critical point: a Gauss–Newton-only Hessian is detectably wrong.
    params = random_params(3, 4, 2, 1, rng)
    F = hessian.fd_hessian(params, lam=0.01)
    theta = hessian.flatten(params)

    def z(t):
        return forward(hessian.unflatten(t, params))[0].ravel()          # (K²,) row-major vec Z

    J = np.stack([(z(theta + e) - z(theta - e)) / 2e-6 for e in 1e-6 * np.eye(theta.size)], axis=1)  # (K², P)
    Z = z(theta).reshape(3, 3)
    P = np.exp(Z - Z.max(0))
    P /= P.sum(0)
    Hg = np.zeros((9, 9))                                                 # ∇² g/K in row-major vec Z
    for y in range(3):
        idx = np.arange(3) * 3 + y
        Hg[np.ix_(idx, idx)] = (np.diag(P[:, y]) - np.outer(P[:, y], P[:, y])) / 3
    gauss_newton = J.T @ Hg @ J + 0.01 * np.eye(theta.size)
    assert np.abs(gauss_newton - F).max() > 1e-2 * np.abs(F).max()


@pytest.mark.parametrize("K,L,d", [(4, 2, 4), (5, 2, 6), (6, 3, 6), (3, 1, 4)])
def test_symmetry_directions_are_the_null_space_at_dnc(K, L, d, rng):
    lam = 0.3 * hessian.dnc_minimum_threshold(K, L)[1]                   # a local minimum
    params, alpha = hessian.dnc_critical_point(K, L, lam, d, rng=rng)
    spec = hessian.spectrum(params, lam=lam)
    assert spec.orbit_residual < 1e-12
    assert spec.null_dimension == spec.orbit_dimension == orbits.orbit_dimension_formula(d, K, L, K - 1)
    assert spec.n_negative == 0 and spec.min_free > 1e3 * spec.tol


def test_theorem4_thresholds_for_K10():
    # The trial values: λ_c ≈ 0.0403, 0.0142, 0.0071 for L = 2, 3, 4 (α_c = K(L−1)/(L+1)).
    got = [hessian.dnc_minimum_threshold(10, L) for L in (2, 3, 4)]
    assert [a for a, _ in got] == pytest.approx([10 / 3, 5.0, 6.0])
    assert [lam for _, lam in got] == pytest.approx([0.040339, 0.014205, 0.0071046], rel=1e-4)


@pytest.mark.parametrize("K,L", [(4, 2), (5, 2), (6, 3), (3, 2), (8, 2)])
def test_theorem4_negative_directions_match_the_reduced_analysis(K, L):
    lam_max, _ = critical.dnc_lambda_max(K, L)
    a_c, lam_c = hessian.dnc_minimum_threshold(K, L)
    above = min(1.02 * lam_c, 0.5 * (lam_c + lam_max))
    counts = []
    for lam in (0.9999 * lam_max, above, 0.98 * lam_c, 0.3 * lam_c):
        params, alpha = hessian.dnc_critical_point(K, L, lam, K)
        spec = hessian.spectrum(params, lam=lam)
        assert spec.n_negative == hessian.dnc_negative_count(K, L, alpha), (lam, alpha)
        counts.append(spec.n_negative)
    if K >= 4:                                                    # just above λ_c: K(K−3)/2 directions
        assert counts[1] == K * (K - 3) // 2
    assert counts[0] == K * (K - 3) // 2 + K - 1                  # next to λ_max: K−1 more
    assert counts[2] == counts[3] == 0                            # below λ_c: a local minimum
    small, _ = hessian.dnc_critical_point(K, L, 0.5 * lam_c, K, root=0)
    assert hessian.spectrum(small, lam=0.5 * lam_c).n_negative == K * (K - 1) // 2


def test_min_free_eigenvalue_changes_sign_at_lambda_c():
    K, L = 6, 3
    _, lam_c = hessian.dnc_minimum_threshold(K, L)
    above = hessian.spectrum(hessian.dnc_critical_point(K, L, 1.001 * lam_c, K)[0], lam=1.001 * lam_c)
    below = hessian.spectrum(hessian.dnc_critical_point(K, L, 0.999 * lam_c, K)[0], lam=0.999 * lam_c)
    assert above.min_free < 0 < below.min_free


def test_L1_dnc_is_always_a_local_minimum():
    # L = 1 (the UFM): q = 0, every curvature is positive: DNC is a local minimum for every λ < 1/K.
    for lam in (0.166, 1e-2, 1e-4):
        params, _ = hessian.dnc_critical_point(6, 1, lam, 6)
        assert hessian.spectrum(params, lam=lam).n_negative == 0


def test_dnc_point_requires_lambda_below_max():
    with pytest.raises(InputError, match="exceeds eq"):
        hessian.dnc_critical_point(10, 2, 0.5, 10)
    with pytest.raises(InputError, match="d = 8"):
        hessian.dnc_critical_point(10, 2, 1e-3, 8)


def test_figure_dufm_hessian_small(tmp_path):
    from refimpl.figures import dufm_hessian
    from refimpl.registry import Context

    config = dufm_hessian.HessianConfig(K=5, Ls=(1, 2), n_lam=6, lam_min=1e-3)
    summary = dufm_hessian.run_hessian(config, Context(out_dir=tmp_path, progress=False, json=True))
    assert (tmp_path / "dufm-hessian.png").stat().st_size > 0 and (tmp_path / "dufm-hessian.json").exists()
    assert summary["counts_match_prediction"]
    curve = summary["curves"]["2"]
    below = np.array(curve["lam"]) < curve["lam_c"]
    assert np.all(np.array(curve["min_free"])[below] > 0) and np.all(np.array(curve["min_free"])[~below] < 0)


def test_figure_config_rejects_bad_input():
    from refimpl.figures import dufm_hessian

    with pytest.raises(InputError, match="d = 5"):
        dufm_hessian.HessianConfig(K=10, d=5)
