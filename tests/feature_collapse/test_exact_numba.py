"""The Numba passes of exact_numba against the NumPy reference exact (to 1e-12)."""

import numba
import numpy as np
import pytest

from refimpl.feature_collapse import data, exact
from refimpl.feature_collapse import exact_numba as kernels


def _problem(rng, nc, sc, L, d, K, mu, scale):
    Z = data.latent_variables(nc, L, K, rng)                              # (K, L)
    W = rng.standard_normal((d, nc * sc))                                 # (d, nw)
    U = scale * rng.standard_normal((len(Z), L * d))                      # (K, L·d)
    mu = rng.dirichlet(np.ones(sc)) if mu == "random" else data.word_frequencies(sc, mu)
    return W, U, Z, mu


# (nc, sc, L, d, K, µ, weight scale): one chunk and many chunks, a random subset, d = 2, one class, large
# scores (softmax far from uniform, checks the log-sum-exp).
SHAPES = [
    (3, 2, 3, 4, "all", "uniform", 0.5),
    (3, 4, 4, 6, "all", "zipf", 0.5),
    (2, 3, 5, 2, 9, "random", 1.0),
    (4, 3, 2, 5, "all", "random", 3.0),
    (2, 2, 3, 3, 1, "zipf", 0.5),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "-".join(map(str, s)))
def test_passes_agree_with_the_reference(rng, shape):
    W, U, Z, mu = _problem(rng, *shape)
    L = Z.shape[1]
    S_ref, S = exact.score_tables(W, U, L), kernels.score_tables(W, U, L)
    np.testing.assert_allclose(S, S_ref, rtol=1e-12, atol=1e-12)
    (R_ref, Phi_ref), (R, Phi) = exact.risk0_and_phi(S_ref, Z, mu), kernels.risk0_and_phi(S_ref, Z, mu)
    assert abs(R - R_ref) <= 1e-12 * max(1.0, abs(R_ref)), (R, R_ref)
    np.testing.assert_allclose(Phi, Phi_ref, rtol=1e-12, atol=1e-14)
    for got, want in zip(kernels.lemma_s(W, U, Phi_ref), exact.lemma_s(W, U, Phi_ref), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("ln_on", [False, True], ids=["h", "h*"])
@pytest.mark.parametrize("shape", SHAPES[1:3], ids=lambda s: "-".join(map(str, s)))
def test_risk_and_grads_backends_agree(rng, shape, ln_on):
    W, U, Z, mu = _problem(rng, *shape)
    ref = exact.risk_and_grads(W, U, Z, mu, lam=0.01, layernorm=ln_on, backend="numpy")
    got = kernels.risk_and_grads(W, U, Z, mu, lam=0.01, layernorm=ln_on)
    assert abs(got[0] - ref[0]) <= 1e-12 * max(1.0, abs(ref[0]))
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-12, atol=1e-13)


def test_result_does_not_depend_on_the_thread_count(rng):
    """The chunking is fixed by the sizes, so one thread and all threads give the same bits."""
    W, U, Z, mu = _problem(rng, 3, 4, 4, 6, "all", "zipf", 0.5)
    S = kernels.score_tables(W, U, 4)
    assert kernels.n_chunks_for(len(Z), 4, 4, 12) > 1
    R_all, Phi_all = kernels.risk0_and_phi(S, Z, mu)
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        R_one, Phi_one = kernels.risk0_and_phi(S, Z, mu)
    finally:
        numba.set_num_threads(old)
    assert R_one == R_all and np.array_equal(Phi_one, Phi_all)
