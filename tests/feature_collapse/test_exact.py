"""The exact true risk (eqs. 5, 10), the Φ table (eq. 130) and Lemma S — NumPy reference."""

import numpy as np
import pytest

from refimpl.errors import InputError
from refimpl.feature_collapse import data, exact, layernorm, model


def _problem(rng, nc, sc, L, d, K="all", mu="zipf", scale=0.5):
    Z = data.latent_variables(nc, L, K, rng)                              # (K, L)
    W = rng.standard_normal((d, nc * sc))                                 # (d, nw)
    U = scale * rng.standard_normal((len(Z), L * d))                      # (K, L·d)
    return W, U, Z, data.word_frequencies(sc, mu)


# Latent sets: all nc^L (Assumption A holds), a random subset, other sizes, one class.
LATENT_SETS = [(3, 2, 3, 4, "all"), (3, 2, 3, 4, 10), (2, 3, 4, 5, 7), (4, 2, 2, 3, "all"), (2, 2, 3, 2, 1)]


@pytest.mark.parametrize("ln_on", [False, True], ids=["h", "h*"])
def test_uniform_mu_equals_the_empirical_risk_of_every_sentence(rng, ln_on):
    """With uniform µ, D(x) = 1/sc^L: R is model.loss_and_grads on all K·sc^L sentences, labels k."""
    nc, sc, L, lam = 3, 2, 3, 0.1
    W, U, Z, mu = _problem(rng, nc, sc, L, 4, mu="uniform")
    B, _ = exact.word_choices(mu, L)                                      # (sc^L, L)
    tokens = (Z[:, None, :] * sc + B[None]).reshape(-1, L)                # (K·sc^L, L)
    labels = np.repeat(np.arange(len(Z)), len(B))
    want = model.loss_and_grads(W, U, tokens, labels, layernorm=ln_on, lam_W=0.0 if ln_on else lam, lam_U=lam)
    got = exact.risk_and_grads(W, U, Z, mu, lam=lam, layernorm=ln_on, backend="numpy")
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("ln_on", [False, True], ids=["h", "h*"])
def test_exact_risk_and_gradient_match_monte_carlo(ln_on):
    """Zipf µ, a random subset of latents: the exact risk (and a random projection of its gradient) lies
    within 4 standard errors of the batch means of model.loss_and_grads on sampled sentences."""
    rng = np.random.default_rng(7)
    nc, sc, L, d, lam = 3, 4, 3, 4, 0.05
    W, U, Z, mu = _problem(rng, nc, sc, L, d, K=12)
    R, dW, dU = exact.risk_and_grads(W, U, Z, mu, lam=lam, layernorm=ln_on, backend="numpy")
    VW, VU = rng.standard_normal(W.shape), rng.standard_normal(U.shape)
    samples = []
    for _ in range(60):
        tokens, labels = data.sample_sentences(Z, mu, 200, rng)
        loss, gW, gU = model.loss_and_grads(W, U, tokens, labels, layernorm=ln_on,
                                            lam_W=0.0 if ln_on else lam, lam_U=lam)
        samples.append((loss, np.vdot(gW, VW) + np.vdot(gU, VU)))
    samples = np.array(samples)                                           # (60, 2)
    mean, se = samples.mean(axis=0), samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    exact_vals = np.array([R, np.vdot(dW, VW) + np.vdot(dU, VU)])
    assert np.all(np.abs(exact_vals - mean) <= 4 * se), (exact_vals, mean, se)
    assert np.all(se < 0.05 * np.abs(mean)), se                          # resolves a 20% error


def _fd_errors(f, W, U, grads, rng, n_dirs=3, h=1e-5):
    """Relative error between ⟨∇R, v⟩ and the central difference (R(θ+hv) − R(θ−hv))/2h, random v."""
    errs = []
    for _ in range(n_dirs):
        VW, VU = rng.standard_normal(W.shape), rng.standard_normal(U.shape)
        fd = (f(W + h * VW, U + h * VU) - f(W - h * VW, U - h * VU)) / (2 * h)
        an = np.vdot(grads[0], VW) + np.vdot(grads[1], VU)
        errs.append(abs(fd - an) / max(abs(fd), abs(an), 1e-8))
    return max(errs)


@pytest.mark.parametrize("ln_on", [False, True], ids=["h", "h*"])
@pytest.mark.parametrize("nc,sc,L,d,K", LATENT_SETS)
def test_lemma_s_gradient_matches_central_differences(rng, nc, sc, L, d, K, ln_on):
    W, U, Z, mu = _problem(rng, nc, sc, L, d, K=K, mu="zipf")
    f = lambda W_, U_: exact.risk_and_grads(W_, U_, Z, mu, lam=0.03, layernorm=ln_on, backend="numpy")[0]  # noqa
    _, dW, dU = exact.risk_and_grads(W, U, Z, mu, lam=0.03, layernorm=ln_on, backend="numpy")
    assert _fd_errors(f, W, U, (dW, dU), rng) < 1e-6


def test_gradient_check_catches_a_wrong_gradient(rng):
    """The checker can fail: the gradient in φ(W) passed off as the gradient in W (no LayerNorm Jacobian)."""
    W, U, Z, mu = _problem(rng, 3, 2, 3, 4)
    V = exact.layernorm_forward(W)[0].T                                   # (d, nw) φ(W)
    R0, Phi = exact.risk0_and_phi(exact.score_tables(V, U, 3), Z, mu)
    dV, dU = exact.lemma_s(V, U, Phi)
    f = lambda W_, U_: exact.risk_and_grads(W_, U_, Z, mu, lam=0.0, layernorm=True, backend="numpy")[0]  # noqa
    assert _fd_errors(f, W, U, (dV, dU), rng) > 1e-2
    assert _fd_errors(f, W, U, (np.zeros_like(W), -dU), rng) > 1e-2


def test_phi_table_is_eq_130_summed_sentence_by_sentence(rng):
    """Φ[w,k,ℓ] = (1/K) Σ_j Σ_{x∈X_j} 1{x_ℓ=w}(1{j=k} − q_k(x)) D_{z_j}(x), with q from model.forward."""
    nc, sc, L = 2, 3, 2
    W, U, Z, mu = _problem(rng, nc, sc, L, 3, K=3)
    K = len(Z)
    _, Phi = exact.risk0_and_phi(exact.score_tables(W, U, L), Z, mu)
    want = np.zeros((nc * sc, K, L))
    for j in range(K):
        for b1 in range(sc):
            for b2 in range(sc):
                x = np.array([[Z[j, 0] * sc + b1, Z[j, 1] * sc + b2]])    # (1, L)
                scores, _ = model.forward(W, U, x)                        # (1, K)
                q = np.exp(scores[0] - scores[0].max())
                q /= q.sum()
                for l in range(L):
                    want[x[0, l], :, l] += ((np.arange(K) == j) - q) * mu[b1] * mu[b2] / K
    np.testing.assert_allclose(Phi, want, rtol=1e-12, atol=1e-15)


def test_layernorm_path_explicit_jacobian_equals_the_vjp(rng):
    """Jᵀg column by column (explicit J of φ) equals the closed-form VJP used by risk_and_grads."""
    W, U, Z, mu = _problem(rng, 3, 2, 3, 5)
    dV = rng.standard_normal(W.shape)                                     # random upstream, not ones
    cache = exact.layernorm_forward(W)[1]
    np.testing.assert_allclose(exact.layernorm_backward_explicit(W, dV), layernorm.backward(dV.T, cache).T,
                               rtol=1e-12, atol=1e-13)


def test_one_class_has_zero_data_risk(rng):
    W, U, Z, mu = _problem(rng, 2, 2, 3, 2, K=1)
    R, dW, dU = exact.risk_and_grads(W, U, Z, mu, lam=0.2, backend="numpy")
    assert R == pytest.approx(0.1 * (np.vdot(W, W) + np.vdot(U, U)), rel=1e-14)
    np.testing.assert_allclose(dW, 0.2 * W, atol=1e-15)
    np.testing.assert_allclose(dU, 0.2 * U, atol=1e-15)


def test_word_choices_enumerate_the_grid_in_lexicographic_order():
    mu = np.array([0.5, 0.3, 0.2])
    B, p = exact.word_choices(mu, 2)
    assert B.tolist() == [[a, b] for a in range(3) for b in range(3)]
    assert p.sum() == pytest.approx(1.0, abs=1e-15) and p[5] == pytest.approx(0.3 * 0.2)


def test_refuses_an_enumeration_above_the_limit(rng):
    W, U, Z, mu = _problem(rng, 3, 2, 3, 4)
    with pytest.raises(InputError, match=r"27·2\^3 = 216 sentences exceeds max_sentences = 100") as e:
        exact.risk_and_grads(W, U, Z, mu, lam=0.1, max_sentences=100)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("change,match", [
    (lambda W, U, Z, mu: (W[:, :5], U, Z, mu), "not divisible by sc"),
    (lambda W, U, Z, mu: (W, U[:, :-1], Z, mu), "U has shape"),
    (lambda W, U, Z, mu: (W, U, Z + 3, mu), "latent variables must lie in 0..2"),
    (lambda W, U, Z, mu: (W, U, Z, mu * 0.9), "sum to 1"),
])
def test_bad_input_is_a_one_line_error(rng, change, match):
    W, U, Z, mu = change(*_problem(rng, 3, 2, 3, 4))
    with pytest.raises(InputError, match=match) as e:
        exact.risk_and_grads(W, U, Z, mu, lam=0.1, backend="numpy")
    assert "\n" not in str(e.value)


def test_unknown_backend(rng):
    with pytest.raises(InputError, match="unknown backend 'torch'"):
        exact.risk_and_grads(*_problem(rng, 3, 2, 3, 4), lam=0.1, backend="torch")


def test_integral_float_latents_are_accepted(rng):
    W, U, Z, mu = _problem(rng, 3, 2, 3, 4)
    want = exact.risk_and_grads(W, U, Z, mu, lam=0.1, backend="numpy")[0]
    assert exact.risk_and_grads(W, U, Z.astype(np.float64), mu, lam=0.1, backend="numpy")[0] == want


@pytest.mark.parametrize("bad,match", [
    (0.5, r"Z must hold integers \(latent variables\), got 0.5 at index \(2, 1\)"),
    (np.nan, r"got nan at index \(2, 1\)"),
])
def test_non_integer_latents_are_refused_not_truncated(rng, bad, match):
    """Z = 1.5 used to become 1 through astype(int64), silently evaluating another latent set."""
    W, U, Z, mu = _problem(rng, 3, 2, 3, 4)
    Z = Z.astype(np.float64)
    Z[2, 1] += bad
    with pytest.raises(InputError, match=match) as e:
        exact.risk_and_grads(W, U, Z, mu, lam=0.1, backend="numpy")
    assert "\n" not in str(e.value)


def test_latents_of_a_non_numeric_dtype_are_refused(rng):
    W, U, Z, mu = _problem(rng, 3, 2, 3, 4)
    with pytest.raises(InputError, match="Z must hold integers .*got dtype <U"):
        exact.risk_and_grads(W, U, Z.astype(str), mu, lam=0.1, backend="numpy")


@pytest.mark.parametrize("value", [0.0, 0.1, -3.7])
def test_layernorm_of_a_constant_word_is_a_one_line_error_naming_it(rng, value, recwarn):
    """φ with eps = 0 divides by σ = 0 (or by rounding noise, σ ≈ 1e-17 for a column of 0.1s): the
    evaluator names the word instead of returning NaN with a RuntimeWarning."""
    W, U, Z, mu = _problem(rng, 3, 2, 3, 7)
    W[:, 4] = value
    with pytest.raises(InputError, match=r"the embedding of word 4 \(column 4 of W\) is constant") as e:
        exact.risk_and_grads(W, U, Z, mu, lam=0.1, layernorm=True, backend="numpy")
    assert "\n" not in str(e.value)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    R = exact.risk_and_grads(W, U, Z, mu, lam=0.1, layernorm=False, backend="numpy")[0]  # h has no φ
    assert np.isfinite(R)
