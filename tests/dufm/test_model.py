"""DUFM reference passes: finite-difference gradients, eq. (7), closed forms of the fit term, input errors."""

import numpy as np
import pytest

from refimpl.dufm import loss_and_grads
from refimpl.dufm import model as m
from refimpl.errors import InputError

MODELS = [("linear", None), ("relu", None), ("mse", None), ("mse", 2), ("mse", 3)]
SHAPES = [(2, 2, 1, 1), (3, 5, 2, 1), (4, 6, 3, 2), (5, 8, 4, 1), (10, 12, 2, 3)]   # (K, d, L, n)


def random_params(rng, K, d, L, n=1, scale=1.0):
    """[H_1, W_1, …, W_L] with entries N(0, scale²/fan-in) so that Z stays of order one."""
    shapes = [(d, K * n)] + [(d, d)] * (L - 1) + [(K, d)]
    return [rng.standard_normal(s) * scale / np.sqrt(s[1]) for s in shapes]


def check_gradient(loss_fn, params, grads, rng, n_dirs=3, h=1e-5, rtol=1e-6, atol=1e-9):
    """Central differences of loss_fn along random directions V: (f(p+hV) − f(p−hV))/2h = <grad, V>."""
    for _ in range(n_dirs):
        V = [rng.standard_normal(p.shape) for p in params]
        fd = (loss_fn([p + h * v for p, v in zip(params, V, strict=True)])
              - loss_fn([p - h * v for p, v in zip(params, V, strict=True)])) / (2 * h)
        an = sum(float(np.vdot(g, v)) for g, v in zip(grads, V, strict=True))
        assert abs(fd - an) <= atol + rtol * abs(an), f"finite difference {fd!r} != analytic {an!r}"


@pytest.mark.parametrize("model,power", MODELS)
@pytest.mark.parametrize("K,d,L,n", SHAPES)
def test_gradient_matches_central_differences(rng, model, power, K, d, L, n):
    params = random_params(rng, K, d, L, n, scale=1.5)
    lam = 0.01
    loss, grads = loss_and_grads(params, lam=lam, model=model, power=power)
    assert [g.shape for g in grads] == [p.shape for p in params]
    assert loss == pytest.approx(m.loss(params, lam=lam, model=model, power=power), rel=1e-14)
    check_gradient(lambda p: m.loss(p, lam=lam, model=model, power=power), params, grads, rng)


@pytest.mark.parametrize("model,power", MODELS)
def test_checker_fails_on_a_perturbed_gradient(rng, model, power):
    params = random_params(rng, 4, 6, 3, 1, scale=1.5)
    _, grads = loss_and_grads(params, lam=0.01, model=model, power=power)
    for i in range(len(grads)):
        bad = [g.copy() for g in grads]
        bad[i][0, 0] += 1e-3 * max(1.0, abs(bad[i][0, 0]))
        with pytest.raises(AssertionError, match="finite difference"):
            check_gradient(lambda p: m.loss(p, lam=0.01, model=model, power=power), params, bad,
                           np.random.default_rng(7), n_dirs=2)


@pytest.mark.parametrize("K,d,L,n", SHAPES)
def test_eq7_chain_of_products_equals_reverse_accumulation(rng, K, d, L, n):
    params = random_params(rng, K, d, L, n)
    Z, cache = m.forward(params)
    _, dZ = m.cross_entropy(Z, n)
    for a, b in zip(m.eq7_gradients(params, dZ, cache[0]), m.backward(dZ, params, cache), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_eq7_entrywise_from_eq6(rng):
    """∂(g/K)/∂(W_l)_ab = Σ_xy (A_{l+1})_xa (M/K)_xy (B_{l−1})_by (eq. 6 summed against ∂g/∂Z = M)."""
    K, d, L = 3, 4, 3
    params = random_params(rng, K, d, L)
    Z, cache = m.forward(params)
    _, dZ = m.cross_entropy(Z)
    A = m.suffix_products(params)
    grads = m.eq7_gradients(params, dZ, cache[0])
    for l in range(1, L + 1):
        B = cache[0][l - 1]                                               # B_{l−1} = H_l (d, K)
        want = np.einsum("xa,xy,by->ab", A[l + 1], dZ, B)
        np.testing.assert_allclose(grads[l], want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("K", [2, 3, 7, 10])
@pytest.mark.parametrize("alpha", [0.1, 2.0, 30.0])
def test_fit_term_of_dnc_and_block_lr_matches_appendix_b2(K, alpha):
    """(1/K) g(α(I − 11ᵀ/K)) = log(1 + (K−1)e^{−α}); even K: (1/K) g(β X̄) = log(1 + (K−2)e^{−β} + e^{−2β})."""
    fit, _ = m.cross_entropy(alpha * (np.eye(K) - np.ones((K, K)) / K))
    assert fit == pytest.approx(np.log1p((K - 1) * np.exp(-alpha)), rel=1e-12)
    if K % 2 == 0:
        Xbar = np.kron(np.eye(K // 2), np.array([[1.0, -1.0], [-1.0, 1.0]]))
        fit_lr, _ = m.cross_entropy(alpha * Xbar)
        want = np.log1p((K - 2) * np.exp(-alpha) + np.exp(-2 * alpha))
        assert fit_lr == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("model,power", MODELS)
def test_n_copies_per_class_keep_the_fit_term(rng, model, power):
    """Section 3: with H_1 = H̄_1 ⊗ 1_nᵀ the fit term equals the n = 1 one; only ‖H_1‖² grows n-fold."""
    K, d, L, n = 4, 5, 3, 3
    params = random_params(rng, K, d, L, 1)
    copies = [np.repeat(params[0], n, axis=1)] + params[1:]
    one = m.loss(params, lam=0.0, model=model, power=power)
    assert m.loss(copies, lam=0.0, model=model, power=power) == pytest.approx(one, rel=1e-13)
    lam = 0.1
    extra = 0.5 * lam * (n - 1) * float(np.vdot(params[0], params[0]))
    assert m.loss(copies, lam=lam, model=model, power=power) == pytest.approx(
        m.loss(params, lam=lam, model=model, power=power) + extra, rel=1e-13)


def test_relu_model_places_relu_on_h2_to_hL_only(rng):
    """Eq. (3): L = 1 has no ReLU; non-negative H_1, W_l (l < L) make every ReLU the identity."""
    K, d = 3, 4
    p1 = random_params(rng, K, d, 1)
    assert m.loss(p1, lam=0.1, model="relu") == m.loss(p1, lam=0.1, model="linear")
    p = [np.abs(x) for x in random_params(rng, K, d, 4)]
    p[-1] = -p[-1]                                                        # negative Z: no ReLU on Z
    assert m.loss(p, lam=0.1, model="relu") == pytest.approx(m.loss(p, lam=0.1), rel=1e-14)
    q = random_params(rng, K, d, 3)
    Z, (Hs, Lams, _, _, _) = m.forward(q, model="relu")
    np.testing.assert_array_equal(Lams[0], q[0])
    np.testing.assert_array_equal(Lams[1], np.maximum(Hs[1], 0))
    np.testing.assert_allclose(Z, q[3] @ np.maximum(q[2] @ np.maximum(q[1] @ q[0], 0), 0), rtol=1e-14)


def test_mse_model_applies_zeta_to_the_last_hidden_layer(rng):
    """Eq. (4): Z = W_L ζ(W_{L−1} … W_1 H_1); ζ = ReLU by default, x^p with power=p."""
    K, d, L = 3, 5, 3
    p = random_params(rng, K, d, L)
    HL = p[2] @ p[1] @ p[0]
    for power, zeta in [(None, np.maximum(HL, 0)), (2, HL ** 2), (3, HL ** 3)]:
        Z, _ = m.forward(p, model="mse", power=power)
        np.testing.assert_allclose(Z, p[3] @ zeta, rtol=1e-13)
        want = 0.5 * np.sum((p[3] @ zeta - np.eye(K)) ** 2) / K
        assert m.loss(p, lam=0.0, model="mse", power=power) == pytest.approx(want, rel=1e-13)


@pytest.mark.parametrize("bad,kwargs,match", [
    (lambda p: [p[0][:2], p[1][:, :2], p[2][:, :2]], {}, "d = 2 is smaller than the number of classes K = 3"),
    (lambda p: p[:1], {}, "L >= 1"),
    (lambda p: p, {"lam": -0.1}, "lam must be"),
    (lambda p: p, {"lam": float("nan")}, "lam must be"),
    (lambda p: p, {"lam": np.float64(-1.0)}, r"lam must be a finite number >= 0, got -1$"),   # no np.float64(
    (lambda p: [p[0], p[1][:, :3], p[2]], {}, "W_1 has shape"),
    (lambda p: [np.hstack([p[0], p[0][:, :1]]), p[1], p[2]], {}, "not a positive multiple of K = 3"),
    (lambda p: p, {"model": "tanh"}, "unknown model"),
    (lambda p: p, {"power": 2}, "only for model='mse'"),
    (lambda p: p, {"model": "mse", "power": 0}, "positive integer"),
    (lambda p: [p[0].astype(np.float32), p[1], p[2]], {}, "one floating dtype"),
])
def test_bad_input_is_a_one_line_input_error(rng, bad, kwargs, match):
    params = bad(random_params(rng, 3, 4, 2))
    kwargs = {"lam": 0.1, **kwargs}
    with pytest.raises(InputError, match=match) as info:
        loss_and_grads(params, **kwargs)
    assert "\n" not in str(info.value)
