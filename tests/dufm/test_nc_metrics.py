"""NC1–NC4, Lemma 1's balancedness and the end-point classification, on configurations with known values."""

import numpy as np
import pytest

from refimpl.dufm import nc_metrics as nc
from refimpl.dufm import structures


def etf_features(rng, K, d, n=1, scale=2.0, offset=True):
    """Features whose class means form a rotated, scaled simplex ETF plus a global mean; (d, K·n)."""
    Q, _ = np.linalg.qr(rng.standard_normal((d, K)))                      # (d, K) orthonormal
    means = scale * Q @ structures.dnc_matrix(K)                                     # (d, K), Gram ∝ S
    if offset:
        means = means + rng.standard_normal((d, 1))
    return np.repeat(means, n, axis=1)


def test_nc1_is_zero_without_spread_and_matches_a_two_class_closed_form(rng):
    assert nc.nc1(etf_features(rng, 4, 6, n=3), n=3) == pytest.approx(0.0, abs=1e-20)
    eps = 0.1
    H = np.array([[1 - eps, 1 + eps, -1 - eps, -1 + eps]])                # d = 1, K = 2, n = 2
    assert nc.nc1(H, n=2) == pytest.approx(eps ** 2 / 2, rel=1e-12)       # Σ_W = ε², Σ_B = 1, /K


@pytest.mark.parametrize("K", [2, 3, 5, 10])
def test_nc2_vanishes_on_a_simplex_and_has_the_closed_form_for_orthogonal_means(rng, K):
    assert nc.nc2(etf_features(rng, K, K + 2), center=True) < 1e-12
    assert nc.nc2(etf_features(rng, K, K + 2, offset=False), center=False) < 1e-12
    assert nc.nc2(np.eye(K), center=True) < 1e-12                        # centered I_K is the simplex
    want = np.sqrt(2 - 2 * np.sqrt((K - 1) / K))                          # ‖I/√K − S/√(K−1)‖_F
    assert nc.nc2(np.eye(K), center=False) == pytest.approx(want, rel=1e-12)


def test_nc3_self_duality_and_subspace_alignment(rng):
    K, d = 4, 7
    H = etf_features(rng, K, d)
    means, mu = nc.class_means(H)
    W = 3.0 * (means - mu[:, None]).T                                     # (K, d) ∝ M̄ᵀ
    assert nc.nc3(W, H) < 1e-12
    assert nc.nc3(-W, H) == pytest.approx(2.0, rel=1e-12)                 # anti-aligned: ‖−a − a‖ = 2
    assert nc.nc3_subspace(rng.standard_normal((d, K)) @ W, H) < 1e-12    # rows in span of the means
    U, _, _ = np.linalg.svd(means - mu[:, None])
    outside = rng.standard_normal((d, d - K + 1)) @ U[:, K - 1:].T        # rows orthogonal to the span
    assert nc.nc3_subspace(outside, H) == pytest.approx(1.0, rel=1e-12)


def test_nc4_counts_disagreements(rng):
    H = np.eye(3)
    Z = np.eye(3)
    assert nc.nc4(H, Z) == 0.0
    assert nc.nc4(H, Z[:, [1, 0, 2]]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("L", [1, 2, 4])
def test_balancedness_is_zero_for_lemma1_parameters_and_not_for_random_ones(rng, L):
    params = structures.balanced_params(structures.lr_matrix(4) * 3.0, L, 6, rng=rng)
    assert np.max(nc.balancedness(params)) < 1e-12
    shapes = [(6, 4)] + [(6, 6)] * (L - 1) + [(4, 6)]
    assert np.min(nc.balancedness([rng.standard_normal(s) for s in shapes])) > 0.05


@pytest.mark.parametrize("K", [4, 5, 10])
def test_classify_recognizes_dnc_block_lr_circle_zero_and_full_rank(K):
    end = nc.classify(7.0 * structures.dnc_matrix(K))
    assert (end.kind, end.rank, end.superior) == ("DNC", K - 1, True) and end.dnc_distance < 1e-12
    end = nc.classify(5.0 * structures.lr_matrix(K))
    assert (end.kind, end.rank) == ("low rank", K // 2 + K % 2)
    end = nc.classify(2.0 * structures.circle_matrix(K))
    assert (end.kind, end.rank) == ("low rank", 2)
    assert nc.classify(1e-9 * structures.dnc_matrix(K)).kind == "zero"
    assert nc.classify(np.eye(K) + 0.1).kind == "other"                   # rank K
    noisy = 7.0 * structures.dnc_matrix(K) + 0.5 * np.eye(K)[::-1]
    assert nc.classify(noisy).kind == "other"                             # rank K, off the simplex
    assert nc.classify(np.full((K, K), np.nan)).kind == "other"


def test_classify_uses_class_means_when_n_exceeds_one():
    Z = np.repeat(4.0 * structures.dnc_matrix(5), 3, axis=1)                         # (5, 15)
    assert nc.classify(Z, n=3).kind == "DNC"
