"""Appendix A (refimpl.dufm.mse): Lemma A1's reduced MSE loss against the full model, Damm–Dietrich ranks."""

import numpy as np
import pytest

from refimpl.dufm import mse
from refimpl.dufm.model import loss, loss_and_grads
from refimpl.errors import InputError


@pytest.mark.parametrize("d,K,L,power", [(5, 4, 1, None), (5, 4, 3, None), (6, 4, 2, 2), (4, 4, 3, 3)])
def test_lemma_a1_reduced_mse_loss(d, K, L, power, rng):
    lam = 0.01
    X = rng.standard_normal((d, K))
    params = mse.mse_params(X, L, lam, power)
    assert loss(params, lam=lam, model="mse", power=power) == pytest.approx(
        mse.mse_reduced_loss(X, L, lam, power), rel=1e-12)
    dWL = loss_and_grads(params, lam=lam, model="mse", power=power)[1][-1]
    assert np.abs(dWL).max() < 1e-12                                  # W_L is optimal (C.1)


@pytest.mark.parametrize("m,n,r,p", [(8, 8, 2, 2), (10, 12, 3, 2), (12, 12, 2, 3), (20, 20, 3, 3),
                                     (6, 6, 3, 2)])
def test_damm_dietrich_rank(m, n, r, p, rng):
    X = rng.standard_normal((m, r)) @ rng.standard_normal((r, n))
    assert np.linalg.matrix_rank(X ** p) == mse.hadamard_power_rank(r, p, m, n)


def test_min_rank_hadamard():
    # C(r+1, 2) = 1, 3, 6, 10, 15: the least r with C(r+1, 2) ≥ K.
    got = [mse.min_rank_hadamard(K, 2) for K in (1, 2, 3, 4, 6, 7, 10, 11)]
    assert got == [1, 2, 2, 3, 3, 4, 4, 5]



def test_bad_input_one_line_error():
    with pytest.raises(InputError, match="width d = 3 is smaller than the number of classes K = 4"):
        mse.mse_reduced_loss(np.ones((3, 4)), 2, 1e-2)
    with pytest.raises(InputError, match="lam must be a finite number > 0"):
        mse.mse_params(np.ones((4, 4)), 2, 0.0)
