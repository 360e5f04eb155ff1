"""Eq. (10) (refimpl.dufm.critical): its roots, its maximum λ, and the DNC critical points they build."""

import numpy as np
import pytest

from refimpl.dufm import critical, structures
from refimpl.dufm.model import loss_and_grads
from refimpl.errors import InputError


def grad_norm(params, lam, model="linear"):
    return float(np.sqrt(sum(np.sum(g ** 2) for g in loss_and_grads(params, lam=lam, model=model)[1])))



@pytest.mark.parametrize("K", [2, 4, 10])
@pytest.mark.parametrize("L", [1, 2, 3, 6])
def test_eq10_roots(K, L):
    lam_max, a_star = critical.dnc_lambda_max(K, L)
    f = lambda a: a ** ((L - 1) / (L + 1)) / (K - 1 + np.exp(a))     # noqa: E731 eq. (10)'s right side
    grid = np.linspace(1e-6, 40, 200001)
    assert lam_max == pytest.approx(1 / K if L == 1 else f(grid).max(), rel=1e-8)
    for lam in (0.9 * lam_max, 0.1 * lam_max, 1e-6):
        roots = critical.dnc_critical_scales(K, L, lam)
        assert len(roots) == (1 if L == 1 else 2)
        assert list(roots) == sorted(roots)
        for a in roots:
            assert f(a) == pytest.approx(lam, rel=1e-12)
        if L > 1:
            assert roots[0] < a_star < roots[1]
    assert critical.dnc_critical_scales(K, L, 1.01 * lam_max) == ()


def test_eq10_one_root_when_L_is_1():
    # L = 1: the exponent (L−1)/(L+1) is 0 and λ = 1/(K−1+e^α) has the single root log(1/λ − K + 1).
    assert critical.dnc_critical_scales(10, 1, 1e-3) == pytest.approx((np.log(1e3 - 9),), rel=1e-14)
    assert critical.dnc_critical_scales(10, 1, 0.1) == ()


@pytest.mark.parametrize("K,L,d", [(4, 1, 4), (5, 2, 7), (10, 3, 10), (6, 4, 6)])
def test_gradient_vanishes_at_eq10_dnc_points(K, L, d, rng):
    lam = 1e-3
    for a in critical.dnc_critical_scales(K, L, lam):
        params = structures.balanced_params(a * structures.dnc_matrix(K), L, d, rng=rng)
        assert grad_norm(params, lam) < 1e-12, (a, grad_norm(params, lam))
    a = critical.dnc_critical_scales(K, L, lam)[-1]
    off = structures.balanced_params(1.05 * a * structures.dnc_matrix(K), L, d)
    assert grad_norm(off, lam) > 1e-5   # the check can fail: 5% off the root is not critical



def test_optimum_at_zero_for_large_lambda():
    opt = critical.optimal_dnc(10, 3, 0.5)
    assert opt.scale == 0.0 and opt.loss == pytest.approx(np.log(10))



@pytest.mark.parametrize("call,match", [
    (lambda: critical.dnc_critical_scales(4, 2, -0.1), "lam"),
    (lambda: critical.optimal_dnc(4, 2, np.float64(-1.0)), r"lam must be a finite number > 0, got -1$"),
    (lambda: critical.dnc_lambda_max(0, 2), "K must be a positive integer, got 0"),
])
def test_bad_input_one_line_error(call, match):
    with pytest.raises(InputError, match=match) as e:
        call()
    assert "\n" not in str(e.value)
