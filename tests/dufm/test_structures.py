"""The loss in Z and its structures (refimpl.dufm.structures) against the full model.

The full loss and gradients come from refimpl.dufm.model (the NumPy reference passes); every closed form
is checked against them at parameters built by Lemma 1's builder.
"""

import numpy as np
import pytest

from refimpl.dufm import critical, structures, thresholds
from refimpl.dufm.model import forward, loss, loss_and_grads
from refimpl.errors import InputError


def grad_norm(params, lam, model="linear"):
    return float(np.sqrt(sum(np.sum(g ** 2) for g in loss_and_grads(params, lam=lam, model=model)[1])))



@pytest.mark.parametrize("K", [2, 3, 4, 5, 7, 10])
@pytest.mark.parametrize("L", [1, 2, 4])
def test_closed_forms_equal_reduced_loss(K, L):
    lam = 3e-3
    for t in (0.2, 1.7, 9.0):
        want = structures.reduced_loss(t * structures.dnc_matrix(K), L, lam)
        assert structures.dnc_loss(t, K, L, lam) == pytest.approx(want, rel=1e-13)
        want = structures.reduced_loss(t * structures.lr_matrix(K), L, lam)
        assert structures.lr_loss(t, K, L, lam) == pytest.approx(want, rel=1e-13)
        if K >= 3:
            want = structures.reduced_loss(t * structures.circle_matrix(K), L, lam)
            assert structures.circle_loss(t, K, L, lam) == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("K,L,d", [(3, 1, 3), (4, 2, 6), (5, 3, 5), (6, 4, 8)])
def test_balanced_builder_full_loss_equals_reduced_loss(K, L, d, rng):
    lam = 0.02
    Zs = {"random": rng.standard_normal((K, K)), "dnc": 2.5 * structures.dnc_matrix(K),
          "lr": 1.5 * structures.lr_matrix(K),
          "rank2": rng.standard_normal((K, 2)) @ rng.standard_normal((2, K))}
    for name, Z in Zs.items():
        params = structures.balanced_params(Z, L, d, rng=rng)
        Zout, _ = forward(params)
        np.testing.assert_allclose(Zout, Z, atol=1e-12, err_msg=name)
        assert loss(params, lam=lam) == pytest.approx(structures.reduced_loss(Z, L, lam), rel=1e-12), name
        for l in range(1, L + 1):   # Lemma 1's balancedness W_lᵀ W_l = W_{l−1} W_{l−1}ᵀ
            np.testing.assert_allclose(params[l].T @ params[l], params[l - 1] @ params[l - 1].T, atol=1e-12)


@pytest.mark.parametrize("K,L", [(4, 1), (5, 2), (10, 3)])
def test_builders_full_loss_equals_closed_forms(K, L, rng):
    lam, t = 1e-3, 4.2
    cases = [(structures.dnc_matrix, structures.dnc_loss), (structures.lr_matrix, structures.lr_loss),
             (structures.circle_matrix, structures.circle_loss)]
    for make, closed in cases:
        params = structures.balanced_params(t * make(K), L, K + 1, rng=rng)
        assert loss(params, lam=lam) == pytest.approx(float(closed(t, K, L, lam)), rel=1e-12), make.__name__



@pytest.mark.parametrize("K,L", [(4, 2), (6, 3), (10, 4), (8, 1)])
def test_gradient_vanishes_at_even_lr_and_circle_optima(K, L, rng):
    lam = 1e-3
    for opt, make in ((structures.optimal_lr(K, L, lam), structures.lr_matrix),
                      (structures.optimal_circle(K, L, lam), structures.circle_matrix)):
        assert opt.scale > 0 and opt.success
        params = structures.balanced_params(opt.scale * make(K), L, K + 2, rng=rng)
        assert grad_norm(params, lam) < 1e-10, (make.__name__, grad_norm(params, lam))
        assert loss(params, lam=lam) == pytest.approx(opt.loss, rel=1e-12)


@pytest.mark.parametrize("K,L", [(5, 2), (7, 3), (9, 4)])
def test_odd_lr_block_is_not_a_critical_point(K, L):
    # At the best scale of the odd block matrix, the lone column's softmax mass 1/(K−1+e^β) on the other
    # rows points out of the range of Z: the full gradient does not vanish (~1e-4 here), so gradient
    # descent leaves this structure.
    lam = 1e-3
    opt = structures.optimal_lr(K, L, lam)
    params = structures.balanced_params(opt.scale * structures.lr_matrix(K), L, K)
    assert opt.residual < 1e-12                      # stationary along its own scale …
    assert grad_norm(params, lam) > 1e-5             # … but not a critical point of the full loss


@pytest.mark.parametrize("K,L,lam", [(3, 1, 1e-2), (6, 2, 1e-3), (10, 4, 1e-4), (20, 8, 1e-3)])
def test_optimal_scales_are_global_on_a_grid(K, L, lam):
    grid = np.geomspace(1e-4, 200, 40001)
    for opt, closed in ((critical.optimal_dnc(K, L, lam), structures.dnc_loss),
                        (structures.optimal_lr(K, L, lam), structures.lr_loss),
                        (structures.optimal_circle(K, L, lam), structures.circle_loss)):
        assert opt.loss <= closed(grid, K, L, lam).min() + 1e-12, opt
        assert opt.loss == pytest.approx(float(closed(opt.scale, K, L, lam)), rel=1e-13)
    generic = structures.minimize_scale(structures.dnc_matrix(K), L, lam)
    assert generic.scale == pytest.approx(critical.optimal_dnc(K, L, lam).scale, rel=1e-10)



@pytest.mark.parametrize("K", range(3, 13))
def test_circle_is_diagonally_superior_of_rank_2(K):
    X = structures.circle_matrix(K)
    assert structures.is_diagonally_superior(X)
    assert np.linalg.matrix_rank(X) == 2 == thresholds.min_diagonally_superior_rank(K)
    np.testing.assert_allclose(np.linalg.svd(X, compute_uv=False)[:2], K / 2, rtol=1e-12)
    assert np.linalg.matrix_rank(structures.lr_matrix(K)) == (K + 1) // 2   # the paper's q < K/2 + 1


def test_circle_beats_lr_block_at_depth():
    lam = 1e-3
    assert structures.optimal_circle(10, 8, lam).loss < structures.optimal_lr(10, 8, lam).loss
    assert structures.optimal_circle(5, 3, lam).loss < structures.optimal_lr(5, 3, lam).loss



@pytest.mark.parametrize("rows,cols", [(5, 5), (7, 3), (3, 7)])
def test_haar_orthogonal_has_orthonormal_columns_or_rows(rows, cols, rng):
    Q = structures.haar_orthogonal(rng, rows, cols)
    assert Q.shape == (rows, cols)
    small = Q.T @ Q if rows >= cols else Q @ Q.T
    np.testing.assert_allclose(small, np.eye(min(rows, cols)), atol=1e-14)


def test_is_diagonally_superior_compares_each_column_with_its_diagonal():
    assert structures.is_diagonally_superior(structures.dnc_matrix(5))
    assert structures.is_diagonally_superior(np.ones((1, 1)))              # K = 1: nothing to compare
    M = np.eye(3)
    M[0, 2] = 1.0                                                         # ties in column 2: not strict
    assert not structures.is_diagonally_superior(M)
    assert structures.is_diagonally_superior(M.T + np.eye(3)) and not structures.is_diagonally_superior(M.T)


@pytest.mark.parametrize("call,match", [
    (lambda: structures.balanced_params(np.eye(5), 2, 4), "d = 4"),
    (lambda: structures.dnc_loss(1.0, 4, 0, 1e-3), "L must be a positive integer, got 0"),
    (lambda: structures.optimal_lr(4, 2, -1e-3), "lam must be a finite number > 0, got -0.001"),
    (lambda: structures.optimal_lr(1, 2, 1e-3), "K must be >= 2, got 1"),
    (lambda: structures.circle_loss(1.0, 2, 2, 1e-3), "K must be >= 3, got 2"),
    (lambda: structures.dnc_loss(-1.0, 4, 2, 1e-3), r"alpha must be a scale >= 0, got -1$"),
    (lambda: structures.lr_loss(np.array([1.0, -0.5]), 4, 2, 1e-3), r"beta must be a scale >= 0, got -0.5$"),
    (lambda: structures.circle_loss(float("nan"), 4, 2, 1e-3), r"gamma must be a scale >= 0, got nan$"),
    (lambda: structures.reduced_loss(np.ones((2, 3)), 2, 1e-3), "square"),
    (lambda: structures.minimize_scale(np.ones((3, 3)), 2, 1e-3), "not diagonally superior"),
])
def test_bad_input_one_line_error(call, match):
    with pytest.raises(InputError, match=match) as e:
        call()
    assert "\n" not in str(e.value)
