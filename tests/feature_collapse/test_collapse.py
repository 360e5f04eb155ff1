"""Equiangular frames (eq. 4), type-I/II/III configurations (Definitions 1–3), Assumption A / Lemma B."""

import itertools

import numpy as np
import pytest

from refimpl.errors import InputError
from refimpl.feature_collapse import collapse, data, layernorm


@pytest.mark.parametrize("nc,d,mean_zero,seeded", [
    (2, 1, False, False), (3, 2, False, True), (3, 3, True, True), (4, 7, True, False), (5, 9, False, True)])
def test_frames_satisfy_eq_4(nc, d, mean_zero, seeded):
    F = collapse.equiangular_frame(nc, d, np.random.default_rng(3) if seeded else None, mean_zero=mean_zero)
    assert F.shape == (d, nc)
    np.testing.assert_allclose(F.sum(axis=1), 0.0, atol=1e-14)          # Σ_α f_α = 0
    gram = np.where(np.eye(nc, dtype=bool), 1.0, -1.0 / (nc - 1))        # ⟨f_α, f_α'⟩ of eq. (4)
    np.testing.assert_allclose(F.T @ F, gram, atol=1e-14)
    if mean_zero:
        np.testing.assert_allclose(F.sum(axis=0), 0.0, atol=1e-14)      # ⟨f_α, 1_d⟩ = 0
    assert collapse.is_equiangular(F, mean_zero=mean_zero)
    assert not collapse.is_equiangular(1.01 * F)


@pytest.mark.parametrize("nc,d,mean_zero,match", [
    (1, 3, False, "nc >= 2"), (4, 2, False, "need d >= 3"),
    (3, 2, True, "mean-zero equiangular vectors f_1..f_3 need d >= 3")])
def test_frames_refuse_impossible_sizes(nc, d, mean_zero, match):
    with pytest.raises(InputError, match=match):
        collapse.equiangular_frame(nc, d, mean_zero=mean_zero)


def _partition_matrix(nc, sc):
    return np.kron(np.eye(nc), np.ones((1, sc)))                          # (nc, nw), eq. (24)


def test_type1_is_W_cFP_and_U_cprime_FZ(rng):
    nc, sc, L, d = 3, 2, 3, 4
    Z = data.latent_variables(nc, L, 10, rng)
    F = collapse.equiangular_frame(nc, d, rng)
    W, U = collapse.type1_configuration(F, Z, sc, 1.5, 0.25)
    np.testing.assert_allclose(W, 1.5 * F @ _partition_matrix(nc, sc), atol=1e-15)
    for k, l in itertools.product(range(len(Z)), range(L)):
        np.testing.assert_allclose(U[k, l * d:(l + 1) * d], 0.25 * F[:, Z[k, l]], atol=1e-15)
    assert np.vdot(W, W) == pytest.approx(1.5**2 * nc * sc)              # columns of F P have norm 1
    assert np.vdot(U, U) == pytest.approx(0.25**2 * len(Z) * L)


def test_type3_has_frequency_dependent_word_norms(rng):
    nc, sc, d = 3, 4, 5
    Z = data.all_latent_variables(nc, 2)
    F = collapse.equiangular_frame(nc, d, rng)
    r = np.array([3.0, 2.0, 1.0, 0.5])
    W, U = collapse.type3_configuration(F, Z, r, 0.7)
    for a, b in itertools.product(range(nc), range(sc)):
        np.testing.assert_allclose(W[:, a * sc + b], r[b] * F[:, a], atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(U.reshape(-1, d), axis=1), 0.7)


@pytest.mark.parametrize("scramble", [False, True])
def test_type2_collapses_the_word_representations(rng, scramble):
    nc, sc, d = 3, 3, 4
    Z = data.all_latent_variables(nc, 2)
    F = collapse.equiangular_frame(nc, d, rng, mean_zero=True)
    W, U = collapse.type2_configuration(F, Z, sc, 0.9, rng if scramble else None)
    phi_W = layernorm.forward(W.T)[0].T                                   # (d, nw) φ applied column-wise
    np.testing.assert_allclose(phi_W, np.sqrt(d) * F @ _partition_matrix(nc, sc), atol=1e-13)
    if scramble:
        assert not np.allclose(W, np.sqrt(d) * F @ _partition_matrix(nc, sc))
    np.testing.assert_allclose(np.linalg.norm(U.reshape(-1, d), axis=1), 0.9)


@pytest.mark.parametrize("nc,L", [(2, 1), (2, 4), (3, 3), (4, 2)])
def test_all_latent_variables_satisfy_assumption_a_and_lemma_b(nc, L):
    Z = data.all_latent_variables(nc, L)
    s = collapse.latent_symmetry(Z, nc)
    assert s.assumption_a and s.max_count_error == 0.0
    assert s.lemma_b_i and s.lemma_b_ii and s.lemma_b_iii
    r = np.arange(1, L + 1)
    np.testing.assert_allclose(s.theta, nc / (nc - 1) * r / L, rtol=1e-12)  # end of appendix B.1
    sizes = [len(Z) / nc**L * np.prod(range(L - k + 1, L + 1)) / np.prod(range(1, k + 1)) * (nc - 1) ** k
             for k in r]
    np.testing.assert_allclose(s.sphere[0, 1:], sizes)                    # |S_r| = K/nc^L C(L,r)(nc−1)^r (39)


def test_no_proper_subset_satisfies_assumption_a():
    """Exhaustively for nc = 2, L = 2, and for random subsets of 3^3: summing (35) over r gives K = nc^L."""
    Z = data.all_latent_variables(2, 2)
    for size in range(1, len(Z)):
        for rows in itertools.combinations(range(len(Z)), size):
            assert not collapse.latent_symmetry(Z[list(rows)], 2).assumption_a
    rng = np.random.default_rng(0)
    for K in (5, 13, 26):
        assert not collapse.latent_symmetry(data.latent_variables(3, 3, K, rng), 3).assumption_a


@pytest.mark.parametrize("rows", [[[0, 0], [1, 1]], [[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]]])
def test_lemma_b_can_hold_without_assumption_a(rows):
    """{00, 11} and the even-weight code of length 3: Lemma B's properties, which the proofs of
    Theorems 1 and 3 use for collapse, hold although Assumption A does not."""
    s = collapse.latent_symmetry(np.array(rows), 2)
    assert not s.assumption_a
    assert s.lemma_b


def test_lemma_b_fails_on_an_unbalanced_set():
    s = collapse.latent_symmetry(np.array([[0, 0], [0, 1], [1, 0]]), 2)
    assert not s.lemma_b_ii and not s.lemma_b_i
