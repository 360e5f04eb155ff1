"""Closed forms of the DUFM (refimpl.dufm.theory, thresholds, mse_theory) against the full model.

The full loss and gradients come from refimpl.dufm.model (the NumPy reference passes); every closed form
is checked against them at parameters built by Lemma 1 (or B.7, C.1).
"""

import numpy as np
import pytest

from refimpl.dufm import mse as mse_theory
from refimpl.dufm import theory, thresholds
from refimpl.dufm.model import forward, loss, loss_and_grads
from refimpl.errors import InputError


def grad_norm(params, lam, model="linear"):
    return float(np.sqrt(sum(np.sum(g ** 2) for g in loss_and_grads(params, lam=lam, model=model)[1])))


@pytest.mark.parametrize("K", [2, 3, 4, 5, 7, 10])
@pytest.mark.parametrize("L", [1, 2, 4])
def test_closed_forms_equal_reduced_loss(K, L):
    lam = 3e-3
    for t in (0.2, 1.7, 9.0):
        want = theory.reduced_loss(t * theory.dnc_matrix(K), L, lam)
        assert theory.dnc_loss(t, K, L, lam) == pytest.approx(want, rel=1e-13)
        want = theory.reduced_loss(t * theory.lr_matrix(K), L, lam)
        assert theory.lr_loss(t, K, L, lam) == pytest.approx(want, rel=1e-13)
        if K >= 3:
            want = theory.reduced_loss(t * theory.circle_matrix(K), L, lam)
            assert theory.circle_loss(t, K, L, lam) == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("K,L,d", [(3, 1, 3), (4, 2, 6), (5, 3, 5), (6, 4, 8)])
def test_balanced_builder_full_loss_equals_reduced_loss(K, L, d, rng):
    lam = 0.02
    Zs = {"random": rng.standard_normal((K, K)), "dnc": 2.5 * theory.dnc_matrix(K),
          "lr": 1.5 * theory.lr_matrix(K), "rank2": rng.standard_normal((K, 2)) @ rng.standard_normal((2, K))}
    for name, Z in Zs.items():
        params = theory.balanced_params(Z, L, d, rng=rng)
        Zout, _ = forward(params)
        np.testing.assert_allclose(Zout, Z, atol=1e-12, err_msg=name)
        assert loss(params, lam=lam) == pytest.approx(theory.reduced_loss(Z, L, lam), rel=1e-12), name
        for l in range(1, L + 1):   # Lemma 1's balancedness W_lᵀ W_l = W_{l−1} W_{l−1}ᵀ
            np.testing.assert_allclose(params[l].T @ params[l], params[l - 1] @ params[l - 1].T, atol=1e-12)


@pytest.mark.parametrize("K,L", [(4, 1), (5, 2), (10, 3)])
def test_builders_full_loss_equals_closed_forms(K, L, rng):
    lam, t = 1e-3, 4.2
    cases = [(theory.dnc_matrix, theory.dnc_loss), (theory.lr_matrix, theory.lr_loss),
             (theory.circle_matrix, theory.circle_loss)]
    for make, closed in cases:
        params = theory.balanced_params(t * make(K), L, K + 1, rng=rng)
        assert loss(params, lam=lam) == pytest.approx(float(closed(t, K, L, lam)), rel=1e-12), make.__name__


@pytest.mark.parametrize("K", [2, 4, 10])
@pytest.mark.parametrize("L", [1, 2, 3, 6])
def test_eq10_roots(K, L):
    lam_max, a_star = theory.dnc_lambda_max(K, L)
    f = lambda a: a ** ((L - 1) / (L + 1)) / (K - 1 + np.exp(a))     # noqa: E731 eq. (10)'s right side
    grid = np.linspace(1e-6, 40, 200001)
    assert lam_max == pytest.approx(1 / K if L == 1 else f(grid).max(), rel=1e-8)
    for lam in (0.9 * lam_max, 0.1 * lam_max, 1e-6):
        roots = theory.dnc_critical_scales(K, L, lam)
        assert len(roots) == (1 if L == 1 else 2)
        assert list(roots) == sorted(roots)
        for a in roots:
            assert f(a) == pytest.approx(lam, rel=1e-12)
        if L > 1:
            assert roots[0] < a_star < roots[1]
    assert theory.dnc_critical_scales(K, L, 1.01 * lam_max) == ()


def test_eq10_one_root_when_L_is_1():
    # L = 1: the exponent (L−1)/(L+1) is 0 and λ = 1/(K−1+e^α) has the single root log(1/λ − K + 1).
    assert theory.dnc_critical_scales(10, 1, 1e-3) == pytest.approx((np.log(1e3 - 9),), rel=1e-14)
    assert theory.dnc_critical_scales(10, 1, 0.1) == ()


@pytest.mark.parametrize("K,L,d", [(4, 1, 4), (5, 2, 7), (10, 3, 10), (6, 4, 6)])
def test_gradient_vanishes_at_eq10_dnc_points(K, L, d, rng):
    lam = 1e-3
    for a in theory.dnc_critical_scales(K, L, lam):
        params = theory.balanced_params(a * theory.dnc_matrix(K), L, d, rng=rng)
        assert grad_norm(params, lam) < 1e-12, (a, grad_norm(params, lam))
    a = theory.dnc_critical_scales(K, L, lam)[-1]
    off = theory.balanced_params(1.05 * a * theory.dnc_matrix(K), L, d)
    assert grad_norm(off, lam) > 1e-5   # the check can fail: 5% off the root is not critical


@pytest.mark.parametrize("K,L", [(4, 2), (6, 3), (10, 4), (8, 1)])
def test_gradient_vanishes_at_even_lr_and_circle_optima(K, L, rng):
    lam = 1e-3
    for opt, make in ((theory.optimal_lr(K, L, lam), theory.lr_matrix),
                      (theory.optimal_circle(K, L, lam), theory.circle_matrix)):
        assert opt.scale > 0 and opt.success
        params = theory.balanced_params(opt.scale * make(K), L, K + 2, rng=rng)
        assert grad_norm(params, lam) < 1e-10, (make.__name__, grad_norm(params, lam))
        assert loss(params, lam=lam) == pytest.approx(opt.loss, rel=1e-12)


@pytest.mark.parametrize("K,L", [(5, 2), (7, 3), (9, 4)])
def test_odd_lr_block_is_not_a_critical_point(K, L):
    # At the best scale of the odd block matrix, the lone column's softmax mass 1/(K−1+e^β) on the other
    # rows points out of the range of Z: the full gradient does not vanish (~1e-4 here), so gradient
    # descent leaves this structure.
    lam = 1e-3
    opt = theory.optimal_lr(K, L, lam)
    params = theory.balanced_params(opt.scale * theory.lr_matrix(K), L, K)
    assert opt.residual < 1e-12                      # stationary along its own scale …
    assert grad_norm(params, lam) > 1e-5             # … but not a critical point of the full loss


@pytest.mark.parametrize("K,L,lam", [(3, 1, 1e-2), (6, 2, 1e-3), (10, 4, 1e-4), (20, 8, 1e-3)])
def test_optimal_scales_are_global_on_a_grid(K, L, lam):
    grid = np.geomspace(1e-4, 200, 40001)
    for opt, closed in ((theory.optimal_dnc(K, L, lam), theory.dnc_loss),
                        (theory.optimal_lr(K, L, lam), theory.lr_loss),
                        (theory.optimal_circle(K, L, lam), theory.circle_loss)):
        assert opt.loss <= closed(grid, K, L, lam).min() + 1e-12, opt
        assert opt.loss == pytest.approx(float(closed(opt.scale, K, L, lam)), rel=1e-13)
    generic = theory.minimize_scale(theory.dnc_matrix(K), L, lam)
    assert generic.scale == pytest.approx(theory.optimal_dnc(K, L, lam).scale, rel=1e-10)


def test_optimum_at_zero_for_large_lambda():
    opt = theory.optimal_dnc(10, 3, 0.5)
    assert opt.scale == 0.0 and opt.loss == pytest.approx(np.log(10))


def test_theorem1_inequality_table_is_the_papers_statement():
    Ks, Ls = range(2, 41), range(1, 13)
    assert np.array_equal(thresholds.rule_table(thresholds.theorem1_inequality, Ks, Ls),
                          thresholds.rule_table(thresholds.theorem1_paper, Ks, Ls))


def test_theorem1_numerically_lr_beats_dnc_exactly_on_the_papers_region():
    Ks, Ls = range(2, 13), range(1, 7)
    gap = thresholds.gap_table(Ks, Ls, 1e-3, "lr")
    paper = thresholds.rule_table(thresholds.theorem1_paper, Ks, Ls)
    assert np.all(gap[paper] < 0)
    assert np.all(gap[~paper] > -1e-12), gap[~paper].min()     # K = 2: LR = 2·DNC, a tie


def test_theorem6_inequalities_and_statement():
    Ks, Ls = range(2, 41), range(1, 13)
    ineq = thresholds.rule_table(thresholds.theorem6_inequality, Ks, Ls)
    paper = thresholds.rule_table(thresholds.theorem6_paper, Ks, Ls)
    assert np.all(ineq[paper]), "the statement must follow from B.7's inequalities"
    # B.7's own numbers: L = 4 from K = 14 (even) / 17 (odd); L = 5 from K = 10 / 11.
    first = {(L, par): min(K for K in Ks if K % 2 == par and thresholds.theorem6_inequality(K, L))
             for L in (4, 5) for par in (0, 1)}
    assert first == {(4, 0): 14, (4, 1): 17, (5, 0): 10, (5, 1): 11}


@pytest.mark.parametrize("K,L,d", [(2, 2, 3), (4, 2, 4), (5, 3, 7), (10, 5, 10), (11, 4, 12)])
def test_relu_construction_full_loss_and_nonnegativity(K, L, d):
    lam = 1e-3
    params, value = thresholds.relu_lr_construction(K, L, lam, d)
    assert loss(params, lam=lam, model="relu") == pytest.approx(value, rel=1e-12)
    norms = [np.sum(p ** 2) for p in params]
    np.testing.assert_allclose(norms, norms[0], rtol=1e-12)          # equal scales, as in B.7
    Hs = forward(params, model="relu")[1][0]
    assert min(h.min() for h in Hs[1:-1]) > -1e-12                   # H_2 … H_L ≥ 0: ReLU is inactive


@pytest.mark.parametrize("K,L", [(10, 5), (16, 4), (12, 6)])
def test_relu_construction_beats_dnc_bound_in_theorem6_region(K, L):
    lam = 1e-3
    assert thresholds.theorem6_paper(K, L)
    assert thresholds.relu_lr_construction(K, L, lam, K)[1] < theory.relu_dnc_lower_bound(K, L, lam)


@pytest.mark.parametrize("K", range(3, 13))
def test_circle_is_diagonally_superior_of_rank_2(K):
    X = theory.circle_matrix(K)
    assert theory.is_diagonally_superior(X)
    assert np.linalg.matrix_rank(X) == 2 == thresholds.min_diagonally_superior_rank(K)
    np.testing.assert_allclose(np.linalg.svd(X, compute_uv=False)[:2], K / 2, rtol=1e-12)
    assert np.linalg.matrix_rank(theory.lr_matrix(K)) == (K + 1) // 2   # the paper's q < K/2 + 1


def test_circle_beats_lr_block_at_depth():
    lam = 1e-3
    assert theory.optimal_circle(10, 8, lam).loss < theory.optimal_lr(10, 8, lam).loss
    assert theory.optimal_circle(5, 3, lam).loss < theory.optimal_lr(5, 3, lam).loss


@pytest.mark.parametrize("d,K,L,power", [(5, 4, 1, None), (5, 4, 3, None), (6, 4, 2, 2), (4, 4, 3, 3)])
def test_lemma_a1_reduced_mse_loss(d, K, L, power, rng):
    lam = 0.01
    X = rng.standard_normal((d, K))
    params = mse_theory.mse_params(X, L, lam, power)
    assert loss(params, lam=lam, model="mse", power=power) == pytest.approx(
        mse_theory.mse_reduced_loss(X, L, lam, power), rel=1e-12)
    dWL = loss_and_grads(params, lam=lam, model="mse", power=power)[1][-1]
    assert np.abs(dWL).max() < 1e-12                                  # W_L is optimal (C.1)


@pytest.mark.parametrize("m,n,r,p", [(8, 8, 2, 2), (10, 12, 3, 2), (12, 12, 2, 3), (20, 20, 3, 3),
                                     (6, 6, 3, 2)])
def test_damm_dietrich_rank(m, n, r, p, rng):
    X = rng.standard_normal((m, r)) @ rng.standard_normal((r, n))
    assert np.linalg.matrix_rank(X ** p) == mse_theory.hadamard_power_rank(r, p, m, n)


def test_min_rank_hadamard():
    # C(r+1, 2) = 1, 3, 6, 10, 15: the least r with C(r+1, 2) ≥ K.
    got = [mse_theory.min_rank_hadamard(K, 2) for K in (1, 2, 3, 4, 6, 7, 10, 11)]
    assert got == [1, 2, 2, 3, 3, 4, 4, 5]


def test_theorem2_depth_for_dnc_against_the_circle_has_a_closed_form():
    """X = S (μ = 1, K−1 times), M = circle (ν = K/2 twice): γ = 1/(1 − cos(2π/K)) and B.3's inequality
    2(γK/2)^{2/(L+1)} < K−1 fails exactly for L + 1 ≤ 2 log(γK/2)/log((K−1)/2)."""
    for K in range(4, 31):
        x = 2 * np.log(K / 2 / (1 - np.cos(2 * np.pi / K))) / np.log((K - 1) / 2)
        got = thresholds.theorem2_depth(theory.dnc_matrix(K), theory.circle_matrix(K))
        assert got == max(0, int(np.floor(x - 1))), K
    # K = 4: the circle is the LR block up to a permutation, and L_0 = 2 is Theorem 1's boundary (L >= 3)
    assert thresholds.theorem2_depth(theory.dnc_matrix(4), theory.circle_matrix(4)) == 2
    assert [thresholds.theorem1_inequality(4, L) for L in (2, 3)] == [False, True]


@pytest.mark.parametrize("K", [5, 7, 10, 16])
@pytest.mark.parametrize("lam", [1e-4, 1e-2])
def test_theorem2_beyond_its_depth_the_lower_rank_structure_wins(K, lam):
    """Theorem 2 at L_0 + 1 and L_0 + 2 (B.3's L_0): the rank-2 circle beats DNC (rank K−1) and, with
    its own L_0, the block LR (rank ⌈K/2⌉); the optima are at positive scales, so strictly."""
    S, C, B = theory.dnc_matrix(K), theory.circle_matrix(K), theory.lr_matrix(K)
    for X, name, optimum in ((S, "dnc", theory.optimal_dnc), (B, "lr", theory.optimal_lr)):
        L0 = thresholds.theorem2_depth(X, C)
        for L in (L0 + 1, L0 + 2):
            circle, other = theory.optimal_circle(K, L, lam), optimum(K, L, lam)
            assert circle.scale > 0 and circle.loss < other.loss, (name, L0, L, circle.loss, other.loss)


def test_theorem2_equality_only_at_scale_zero():
    """λ above every optimum's threshold: both minima are at scale 0 (loss log K), so they are equal."""
    K, L, lam = 10, 8, 1.0
    circle, dnc = theory.optimal_circle(K, L, lam), theory.optimal_dnc(K, L, lam)
    assert circle.scale == dnc.scale == 0.0 and circle.loss == dnc.loss == pytest.approx(np.log(K))


@pytest.mark.parametrize("call,match", [
    (lambda: thresholds.theorem2_depth(theory.circle_matrix(5), theory.dnc_matrix(5)),
     "needs rank M < rank X, got rank M = 4, rank X = 2"),
    (lambda: thresholds.theorem2_depth(theory.dnc_matrix(5), -theory.circle_matrix(5)),
     "M is not diagonally superior"),
    (lambda: thresholds.theorem2_depth(np.eye(4), np.eye(3)), "square of one shape"),
    (lambda: theory.balanced_params(np.eye(5), 2, 4), "d = 4"),
    (lambda: theory.dnc_loss(1.0, 4, 0, 1e-3), "L must be a positive integer, got 0"),
    (lambda: theory.optimal_lr(4, 2, -1e-3), "lam must be a finite number > 0, got -0.001"),
    (lambda: theory.dnc_critical_scales(4, 2, -0.1), "lam"),
    (lambda: theory.optimal_dnc(4, 2, np.float64(-1.0)), r"lam must be a finite number > 0, got -1$"),
    (lambda: theory.dnc_loss(-1.0, 4, 2, 1e-3), r"alpha must be a scale >= 0, got -1$"),
    (lambda: theory.lr_loss(np.array([1.0, -0.5]), 4, 2, 1e-3), r"beta must be a scale >= 0, got -0.5$"),
    (lambda: theory.circle_loss(float("nan"), 4, 2, 1e-3), r"gamma must be a scale >= 0, got nan$"),
    (lambda: thresholds.relu_lr_construction(6, 1, 1e-3, 6), "L >= 2"),
    (lambda: thresholds.relu_lr_construction(6, 3, 1e-3, 5), "d = 5"),
    (lambda: theory.reduced_loss(np.ones((2, 3)), 2, 1e-3), "square"),
    (lambda: theory.minimize_scale(np.ones((3, 3)), 2, 1e-3), "not diagonally superior"),
])
def test_bad_input_one_line_error(call, match):
    with pytest.raises(InputError, match=match) as e:
        call()
    assert "\n" not in str(e.value)


def test_figure_dufm_thresholds_small(tmp_path):
    import json

    from refimpl.figures import dufm_theory
    from refimpl.registry import Context

    config = dufm_theory.ThresholdsConfig(K_max=7, L_max=3, lams=(1e-3,))
    summary = dufm_theory.run_thresholds(config, Context(out_dir=tmp_path, progress=False, json=True))
    assert (tmp_path / "dufm-thresholds.png").stat().st_size > 0
    saved = json.loads((tmp_path / "dufm-thresholds.json").read_text())
    gap = np.array(saved["relative_gap"]["lr"]["0.001"], dtype=float)      # (K = 2..7, L = 1..3)
    assert np.array_equal(gap < -1e-12, np.array(saved["rules"]["lr"]["paper"]))
    assert summary["beats_dnc_count"]["lr"]["0.001"] == 4 + 2               # L = 2: K = 6, 7; L = 3: K = 4..7


def test_figure_config_rejects_bad_input():
    from refimpl.figures import dufm_theory

    with pytest.raises(InputError, match="lams"):
        dufm_theory.ThresholdsConfig(lams=(1e-3, -1.0))
    with pytest.raises(InputError, match="d = 5"):
        dufm_theory.HessianConfig(K=10, d=5)
