"""h and h* (eqs. 17–18) and the risks (2)–(3): gradients against finite differences, forward against
the Frobenius form (eq. 20), bad input."""

import numpy as np
import pytest
from gradcheck import directional_check

from refimpl.errors import InputError
from refimpl.feature_collapse import data, layernorm, model


def _problem(rng, nc=3, sc=4, L=5, K=7, d=6, n_spl=3):
    Z = data.latent_variables(nc, L, K, rng)
    tokens, labels = data.sample_sentences(Z, data.word_frequencies(sc, "zipf"), n_spl, rng)
    W = rng.standard_normal((d, nc * sc))
    U = rng.standard_normal((K, L * d)) * 0.5
    return W, U, tokens, labels


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("ln", [False, True], ids=["h", "h*"])
@pytest.mark.parametrize("eps", [0.0, 1e-5])
@pytest.mark.parametrize("shape", [dict(), dict(nc=2, sc=1, L=1, K=2, d=2), dict(nc=4, sc=3, L=3, K=20, d=9)])
def test_gradients_match_central_differences(backend, ln, eps, shape, rng):
    """The reference's gradients, and the twin's (default backend), against central differences."""
    W, U, tokens, labels = _problem(rng, **shape)
    kw = dict(layernorm=ln, lam_W=0.0 if ln else 0.3, lam_U=0.2, eps=eps, backend=backend)
    _, dW, dU = model.loss_and_grads(W, U, tokens, labels, **kw)
    directional_check(lambda p: model.loss_and_grads(p[0], p[1], tokens, labels, **kw)[0],
                      [W, U], [dW, dU], rng)


def test_checker_fails_on_a_perturbed_gradient(rng):
    W, U, tokens, labels = _problem(rng)
    _, dW, dU = model.loss_and_grads(W, U, tokens, labels, layernorm=True, backend="numpy")
    dU_wrong = dU.copy()
    dU_wrong[0, 0] += 1e-3
    with pytest.raises(AssertionError, match="finite differences"):
        directional_check(lambda p: model.loss_and_grads(p[0], p[1], tokens, labels, layernorm=True)[0],
                          [W, U], [dW, dU_wrong], rng, n_dirs=5)


def _one_hot_sentence(x, nw):
    """ζ(x) ∈ R^{nw×L} of eq. (12)."""
    zeta = np.zeros((nw, len(x)))
    zeta[x, np.arange(len(x))] = 1.0
    return zeta


@pytest.mark.parametrize("ln", [False, True])
def test_forward_equals_frobenius_form_of_eq_20(ln, rng):
    """h(x)_k = ⟨Û_k, Wζ(x)⟩_F and h*(x)_k = ⟨Û_k, φ(Wζ(x))⟩_F with Û_k = [u_{k,1} … u_{k,L}] (eq. 19)."""
    W, U, tokens, _ = _problem(rng)
    d, nw = W.shape
    K, L = U.shape[0], tokens.shape[1]
    scores, _ = model.forward(W, U, tokens, layernorm=ln)
    for n in range(len(tokens)):
        E = W @ _one_hot_sentence(tokens[n], nw)                                    # (d, L) eq. (14)
        if ln:
            E = layernorm.forward(E.T)[0].T                                          # φ column-wise, eq. (15)
        U_hat = U.reshape(K, L, d).transpose(0, 2, 1)                                # (K, d, L): Û_k
        np.testing.assert_allclose(scores[n], np.einsum("kdl,dl->k", U_hat, E), rtol=1e-12, atol=1e-12)


def test_loss_is_mean_cross_entropy_plus_both_penalties(rng):
    W, U, tokens, labels = _problem(rng)
    scores, _ = model.forward(W, U, tokens)
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(len(labels)), labels])) + 0.05 * np.sum(W**2) + 0.1 * np.sum(U**2)
    loss, _, _ = model.loss_and_grads(W, U, tokens, labels, lam_W=0.1, lam_U=0.2, backend="numpy")
    assert loss == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_dW_is_zero_for_words_absent_from_the_batch(backend, rng):
    W, U, tokens, labels = _problem(rng, sc=10, n_spl=1)
    _, dW, _ = model.loss_and_grads(W, U, tokens, labels, backend=backend)
    absent = np.setdiff1d(np.arange(W.shape[1]), tokens)
    assert absent.size > 0
    np.testing.assert_array_equal(dW[:, absent], 0.0)


@pytest.mark.parametrize("bad, message", [
    (lambda W, U, t, y: (W, U[:, :-1], t, y), "columns"),
    (lambda W, U, t, y: (W, U, t + 100, y), "tokens"),
    (lambda W, U, t, y: (W, U, t, y + 100), "labels"),
    (lambda W, U, t, y: (W, U.astype(np.float32), t, y), "dtype"),
])
def test_bad_input_raises_one_line_input_error(bad, message, rng):
    W, U, tokens, labels = bad(*_problem(rng))
    with pytest.raises(InputError, match=message) as info:
        model.loss_and_grads(W, U, tokens, labels)
    assert "\n" not in str(info.value)


def test_unknown_backend_is_an_input_error(rng):
    with pytest.raises(InputError, match="backend"):
        model.loss_and_grads(*_problem(rng), backend="cuda")
