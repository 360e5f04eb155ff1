"""Theorems 1, 2, 6 and B.7's construction (refimpl.dufm.thresholds) against the full model, and the
dufm-thresholds figure at a small size."""

import json

import numpy as np
import pytest

from refimpl.dufm import critical, structures, thresholds
from refimpl.dufm.model import forward, loss
from refimpl.errors import InputError


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
    assert thresholds.relu_lr_construction(K, L, lam, K)[1] < thresholds.relu_dnc_lower_bound(K, L, lam)



def test_theorem2_depth_for_dnc_against_the_circle_has_a_closed_form():
    """X = S (μ = 1, K−1 times), M = circle (ν = K/2 twice): γ = 1/(1 − cos(2π/K)) and B.3's inequality
    2(γK/2)^{2/(L+1)} < K−1 fails exactly for L + 1 ≤ 2 log(γK/2)/log((K−1)/2)."""
    for K in range(4, 31):
        x = 2 * np.log(K / 2 / (1 - np.cos(2 * np.pi / K))) / np.log((K - 1) / 2)
        got = thresholds.theorem2_depth(structures.dnc_matrix(K), structures.circle_matrix(K))
        assert got == max(0, int(np.floor(x - 1))), K
    # K = 4: the circle is the LR block up to a permutation, and L_0 = 2 is Theorem 1's boundary (L >= 3)
    assert thresholds.theorem2_depth(structures.dnc_matrix(4), structures.circle_matrix(4)) == 2
    assert [thresholds.theorem1_inequality(4, L) for L in (2, 3)] == [False, True]


@pytest.mark.parametrize("K", [5, 7, 10, 16])
@pytest.mark.parametrize("lam", [1e-4, 1e-2])
def test_theorem2_beyond_its_depth_the_lower_rank_structure_wins(K, lam):
    """Theorem 2 at L_0 + 1 and L_0 + 2 (B.3's L_0): the rank-2 circle beats DNC (rank K−1) and, with
    its own L_0, the block LR (rank ⌈K/2⌉); the optima are at positive scales, so strictly."""
    S, C, B = structures.dnc_matrix(K), structures.circle_matrix(K), structures.lr_matrix(K)
    for X, name, optimum in ((S, "dnc", critical.optimal_dnc), (B, "lr", structures.optimal_lr)):
        L0 = thresholds.theorem2_depth(X, C)
        for L in (L0 + 1, L0 + 2):
            circle, other = structures.optimal_circle(K, L, lam), optimum(K, L, lam)
            assert circle.scale > 0 and circle.loss < other.loss, (name, L0, L, circle.loss, other.loss)


def test_theorem2_equality_only_at_scale_zero():
    """λ above every optimum's threshold: both minima are at scale 0 (loss log K), so they are equal."""
    K, L, lam = 10, 8, 1.0
    circle, dnc = structures.optimal_circle(K, L, lam), critical.optimal_dnc(K, L, lam)
    assert circle.scale == dnc.scale == 0.0 and circle.loss == dnc.loss == pytest.approx(np.log(K))



def test_relu_dnc_lower_bound_is_the_linear_dnc_optimum():
    assert thresholds.relu_dnc_lower_bound(10, 4, 1e-3) == critical.optimal_dnc(10, 4, 1e-3).loss


@pytest.mark.parametrize("call,match", [
    (lambda: thresholds.theorem2_depth(structures.circle_matrix(5), structures.dnc_matrix(5)),
     "needs rank M < rank X, got rank M = 4, rank X = 2"),
    (lambda: thresholds.theorem2_depth(structures.dnc_matrix(5), -structures.circle_matrix(5)),
     "M is not diagonally superior"),
    (lambda: thresholds.theorem2_depth(np.eye(4), np.eye(3)), "square of one shape"),
    (lambda: thresholds.relu_lr_construction(6, 1, 1e-3, 6), "L >= 2"),
    (lambda: thresholds.relu_lr_construction(6, 3, 1e-3, 5), "d = 5"),
    (lambda: thresholds.gap_table([4], [2], 1e-3, "star"), "unknown structure 'star'"),
])
def test_bad_input_one_line_error(call, match):
    with pytest.raises(InputError, match=match) as e:
        call()
    assert "\n" not in str(e.value)


def test_figure_dufm_thresholds_small(tmp_path):
    from refimpl.figures import dufm_thresholds
    from refimpl.registry import Context

    config = dufm_thresholds.ThresholdsConfig(K_max=7, L_max=3, lams=(1e-3,))
    summary = dufm_thresholds.run_thresholds(config, Context(out_dir=tmp_path, progress=False, json=True))
    assert (tmp_path / "dufm-thresholds.png").stat().st_size > 0
    saved = json.loads((tmp_path / "dufm-thresholds.json").read_text())
    gap = np.array(saved["relative_gap"]["lr"]["0.001"], dtype=float)      # (K = 2..7, L = 1..3)
    assert np.array_equal(gap < -1e-12, np.array(saved["rules"]["lr"]["paper"]))
    assert summary["beats_dnc_count"]["lr"]["0.001"] == 4 + 2               # L = 2: K = 6, 7; L = 3: K = 4..7



def test_figure_config_rejects_bad_input():
    from refimpl.figures import dufm_thresholds

    with pytest.raises(InputError, match="lams"):
        dufm_thresholds.ThresholdsConfig(lams=(1e-3, -1.0))
