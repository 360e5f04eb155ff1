"""The data model (paper 1, section 2 and A.3): frequencies, latent variables, sentences."""

import numpy as np
import pytest

from refimpl.errors import InputError
from refimpl.feature_collapse import data


def test_zipf_frequencies_are_proportional_to_one_over_beta():
    mu = data.word_frequencies(400, "zipf")
    harmonic = sum(1.0 / b for b in range(1, 401))
    np.testing.assert_allclose(mu, 1.0 / (np.arange(1, 401) * harmonic), rtol=1e-12)


def test_sampled_word_frequencies_match_mu_within_sampling_error():
    """Empirical frequency of each word β within its concept: |f̂ − µ| ≤ 5 standard errors."""
    sc, L = 20, 10
    task = data.make_task(2, 2 * sc, L, 64, 200, freq="zipf", seed=7)
    beta = task.train_tokens % sc
    n = beta.size
    freq = np.bincount(beta.ravel(), minlength=sc) / n
    stderr = np.sqrt(task.mu * (1 - task.mu) / n)
    assert np.all(np.abs(freq - task.mu) <= 5 * stderr), np.max(np.abs(freq - task.mu) / stderr)


def test_tokens_follow_the_latent_variable_of_their_label():
    """Word ℓ of a class-k sentence belongs to concept z_{k,ℓ}: token // sc = Z[label, ℓ] (eq. 26)."""
    task = data.make_task(3, 12, 5, 20, 7, freq="uniform", seed=1)
    for tokens, labels in ((task.train_tokens, task.train_labels), (task.test_tokens, task.test_labels)):
        assert tokens.min() >= 0 and tokens.max() < 12
        np.testing.assert_array_equal(tokens // task.sc, task.Z[labels])
    np.testing.assert_array_equal(np.bincount(task.train_labels), np.full(20, 7))
    np.testing.assert_array_equal(np.bincount(task.test_labels), np.full(20, 5))


def test_test_set_is_fresh():
    task = data.make_task(3, 300, 8, 50, 5, freq="uniform", seed=2)
    assert not np.array_equal(task.train_tokens, task.test_tokens)


@pytest.mark.parametrize("nc, L, K", [(3, 4, 81), (3, 4, 70), (2, 30, 500), (5, 2, 3)])
def test_latent_variables_are_distinct_and_in_range(nc, L, K, rng):
    Z = data.latent_variables(nc, L, K, rng)
    assert Z.shape == (K, L) and Z.min() >= 0 and Z.max() < nc
    assert len(np.unique(Z, axis=0)) == K


def test_all_latent_variables_enumerates_c_to_the_l():
    Z = data.latent_variables(3, 4, "all", None)
    assert Z.shape == (81, 4)
    assert len(np.unique(Z, axis=0)) == 81
    np.testing.assert_array_equal(Z[5], [0, 0, 1, 2])                    # 5 in base 3


def test_same_seed_same_task_and_other_seed_other_task():
    a, b = (data.make_task(3, 30, 5, 10, 3, freq="zipf", seed=4) for _ in range(2))
    c = data.make_task(3, 30, 5, 10, 3, freq="zipf", seed=5)
    np.testing.assert_array_equal(a.train_tokens, b.train_tokens)
    assert not np.array_equal(a.train_tokens, c.train_tokens)


@pytest.mark.parametrize("call, message", [
    (lambda: data.make_task(3, 10, 5, 10, 5), "not divisible"),
    (lambda: data.make_task(0, 12, 5, 10, 5), "nc must be a positive integer"),
    (lambda: data.make_task(3, 12, -1, 10, 5), "L must be a positive integer"),
    (lambda: data.make_task(3, 12, 5, 10, 0), "n_spl must be a positive integer"),
    (lambda: data.make_task(3, 12, 2, 10, 5), "exceeds nc\\^L = 9"),
    (lambda: data.word_frequencies(3, [0.5, 0.5, 0.1]), "sum to 1"),
    (lambda: data.word_frequencies(3, [0.5, 0.5, 0.0]), "positive"),
    (lambda: data.word_frequencies(3, "pareto"), "unknown word frequencies"),
])
def test_bad_input_gives_one_line_input_error(call, message):
    with pytest.raises(InputError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
