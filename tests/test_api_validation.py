"""Bad input at the public API, as tables: each row is a call and the fragment of the one-line InputError it
must raise, with the same message from every backend (the reference, the reference dispatching to its
twin, and the twin called directly). The first rows of each table are the reports that motivated the
checks: truncated float labels and tokens, negative λ and eps returning numbers, raw Numba errors,
complex parts dropped, empty batches, lists, a ZeroDivisionError in nc1, a misleading message for a
wrong-length µ. Then: what is accepted (the conversion rule of refimpl.validate) gives one result."""

import numpy as np
import pytest

from refimpl import InputError
from refimpl.dufm import model as dufm
from refimpl.dufm import model_numba as dufm_numba
from refimpl.dufm import nc_metrics as nc
from refimpl.feature_collapse import exact, exact_numba, layernorm, layernorm_numba, model, model_numba

# Feature collapse: d = 3, nw = 6 (nc = 3 concepts of sc = 2 words), K = 4 classes, L = 2, N = 5 sentences.
W = np.arange(18.0).reshape(3, 6) % 5 - 2.0                              # (d, nw), no constant column
U = (np.arange(24.0).reshape(4, 6) % 7 - 3.0) / 4                        # (K, L·d)
TOKENS = np.array([[0, 1], [2, 3], [4, 5], [1, 3], [5, 0]])               # (N, L)
LABELS = np.array([0, 1, 2, 3, 1])                                        # (N,)
Z = np.array([[0, 1], [1, 2], [2, 0], [1, 1]])                            # (K, L) latent variables
MU = np.array([0.5, 0.5])                                                 # (sc,)
# DUFM: K = 3, d = 4, L = 2, n = 1.
PARAMS = [np.random.default_rng(0).standard_normal(s) for s in [(4, 3), (4, 4), (3, 4)]]


def message(call) -> str:
    with pytest.raises(InputError) as info:
        call()
    text = str(info.value)
    assert "\n" not in text, f"not one line: {text!r}"
    return text


def assert_refused_alike(calls, fragment):
    """Every call raises InputError with one and the same one-line message, which contains `fragment`."""
    texts = [message(call) for call in calls]
    assert all(t == texts[0] for t in texts), f"backends disagree: {texts}"
    assert fragment in texts[0], f"{fragment!r} not in {texts[0]!r}"


def table(names, cases):
    """parametrize over rows (id, *values)."""
    return pytest.mark.parametrize(names, [c[1:] for c in cases], ids=[c[0] for c in cases])


def _with(**change):
    args = dict(W=W, U=U, tokens=TOKENS, labels=LABELS)
    args.update({k: v for k, v in change.items() if k in args})
    return args, {k: v for k, v in change.items() if k not in args}


# ---- feature_collapse.model.loss_and_grads: the reference, the reference dispatching, the twin ------------

LOSS_CASES = [
    ("float labels", dict(labels=LABELS + 0.7), "labels must hold integers, got 0.7 at index 0"),
    ("float tokens", dict(tokens=TOKENS + 0.7), "tokens must hold integers, got 0.7 at index (0, 0)"),
    ("negative lam_W", dict(lam_W=-1), "lam_W must be a finite number >= 0, got -1"),
    ("NaN lam_U", dict(lam_U=float("nan")), "lam_U must be a finite number, got nan"),
    ("negative eps", dict(layernorm=True, eps=-1), "eps must be a finite number >= 0, got -1"),
    ("complex W", dict(W=W + 1j), "W must hold real numbers, got dtype complex128"),
    ("complex U", dict(U=U.astype(np.complex64)), "U must hold real numbers, got dtype complex64"),
    ("object W", dict(W=W.astype(object)), "W must hold real numbers, got dtype object"),
    ("string tokens", dict(tokens=TOKENS.astype(str)), "tokens must hold integers, got dtype <U"),
    ("bool labels", dict(labels=LABELS > 0), "labels must hold integers, got dtype bool"),
    ("empty batch", dict(tokens=TOKENS[:0], labels=LABELS[:0]),
     "tokens needs at least one sentence (N >= 1), got shape (0, 2)"),
    ("no word per sentence", dict(tokens=TOKENS[:, :0], U=U[:, :0]),
     "tokens needs at least one word per sentence (L >= 1), got shape (5, 0)"),
    ("NaN in W", dict(W=np.where(np.arange(18).reshape(3, 6) == 8, np.nan, W)),
     "W must be finite, got nan at index (1, 2)"),
    ("inf in U", dict(U=np.where(np.arange(24).reshape(4, 6) == 23, -np.inf, U)),
     "U must be finite, got -inf at index (3, 5)"),
    ("token out of range", dict(tokens=TOKENS + 1), "tokens must lie in [0, 6), got 6 at index (2, 1)"),
    ("negative label", dict(labels=LABELS - 1), "labels must lie in [0, 4), got -1 at index 0"),
    ("labels too short", dict(labels=LABELS[:4]), "labels has 4 entries for N = 5 rows"),
    ("ragged W", dict(W=[[1.0, 2.0], [3.0]]), "W must be a rectangular array of numbers, got a ragged list"),
    ("W a vector", dict(W=W.ravel()), "W must be 2-D, got shape (18,)"),
    ("W float32, U float64", dict(W=W.astype(np.float32)),
     "U has dtype float64, W has float32: they must agree"),
    ("U columns", dict(U=U[:, :5]), "U has 5 columns, expected L·d = 2·3 = 6"),
    ("no class", dict(U=U[:0]), "U must have at least one row (K >= 1 classes), got shape (0, 6)"),
    ("constant word under φ", dict(W=np.where(np.arange(6) == 3, 0.25, W), layernorm=True),
     "the embedding of word 3 (column 3 of W) is constant to float64 precision: LayerNorm with eps = 0"),
    ("layernorm not a switch", dict(layernorm="yes"), "layernorm must be True or False, got 'yes'"),
]


@table("change, fragment", LOSS_CASES)
def test_loss_and_grads_refuses_alike_in_every_backend(change, fragment):
    args, kw = _with(**change)
    assert_refused_alike([lambda: model.loss_and_grads(**args, **kw, backend="numpy"),
                          lambda: model.loss_and_grads(**args, **kw, backend="numba"),
                          lambda: model_numba.loss_and_grads(**args, **kw)], fragment)


# ---- the other passes of feature_collapse.model and their twins ------------------------------------------

def _cache(module):
    return module.forward(W, U, TOKENS)[1]


PASS_CASES = [
    ("embed: float tokens", lambda m: m.embed(W, TOKENS + 0.5), "tokens must hold integers, got 0.5"),
    ("embed: complex W", lambda m: m.embed(W * 1j, TOKENS), "W must hold real numbers, got dtype complex128"),
    ("forward: negative eps", lambda m: m.forward(W, U, TOKENS, layernorm=True, eps=-1e-5),
     "eps must be a finite number >= 0, got -1e-05"),
    ("forward: empty batch", lambda m: m.forward(W, U, TOKENS[:0]), "tokens needs at least one sentence"),
    ("cross_entropy: NaN score", lambda m: m.cross_entropy(np.full((5, 4), np.nan), LABELS),
     "scores must be finite, got nan at index (0, 0)"),
    ("cross_entropy: label out of range", lambda m: m.cross_entropy(np.zeros((5, 4)), LABELS + 1),
     "labels must lie in [0, 4), got 4 at index 3"),
    ("cross_entropy: no row", lambda m: m.cross_entropy(np.zeros((0, 4)), LABELS[:0]),
     "scores needs at least one row and one class, got shape (0, 4)"),
    ("backward: dscores shape", lambda m: m.backward(np.zeros((4, 4)), _cache(m)),
     "dscores has shape (4, 4), expected (5, 4)"),
    ("backward: NaN dscores", lambda m: m.backward(np.full((5, 4), np.nan), _cache(m)),
     "dscores must be finite, got nan at index (0, 0)"),
    ("sgd_step: W a list", lambda m: m.sgd_step(W.tolist(), U.copy(), TOKENS, LABELS, lr=0.1),
     "W is updated in place: it must be a float32 or float64 ndarray, got list"),
    ("sgd_step: int U", lambda m: m.sgd_step(W.copy(), U.astype(int), TOKENS, LABELS, lr=0.1),
     "U is updated in place: it must be a float32 or float64 ndarray, got dtype int64"),
    ("sgd_step: lr = 0", lambda m: m.sgd_step(W.copy(), U.copy(), TOKENS, LABELS, lr=0),
     "lr must be a finite number > 0, got 0"),
    ("sgd_step: float labels", lambda m: m.sgd_step(W.copy(), U.copy(), TOKENS, LABELS + 0.5, lr=0.1),
     "labels must hold integers, got 0.5 at index 0"),
]


@table("call, fragment", PASS_CASES)
def test_each_pass_refuses_alike_in_both_backends(call, fragment):
    assert_refused_alike([lambda: call(model), lambda: call(model_numba)], fragment)


def test_predict_refuses_a_zero_batch_size_and_an_empty_test_set():
    assert "batch must be a positive integer, got 0" in message(lambda: model.predict(W, U, TOKENS, batch=0))
    assert "tokens needs at least one sentence" in message(lambda: model.predict(W, U, TOKENS[:0]))


# ---- LayerNorm ------------------------------------------------------------------------------------------

V = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]])                          # row 1 constant

LAYERNORM_CASES = [
    ("constant row", lambda m: m.forward(V), "row 1 of V is constant to float64 precision"),
    ("negative eps", lambda m: m.forward(V, -1.0),
     "eps must be a finite number >= 0, got -1"),
    ("complex V", lambda m: m.forward(V[:1] + 1j), "V must hold real numbers, got dtype complex128"),
    ("NaN in V", lambda m: m.forward(np.array([1.0, np.nan])), "V must be finite, got nan at index 1"),
    ("no entry", lambda m: m.forward(np.zeros((2, 0))), "V must be (..., d) with d >= 1, got shape (2, 0)"),
    ("dY shape", lambda m: m.backward(np.ones((1, 2)), m.forward(V[:1])[1]),
     "dY has shape (1, 2), expected (1, 3)"),
]


@table("call, fragment", LAYERNORM_CASES)
def test_layernorm_refuses_alike_in_both_backends(call, fragment):
    assert_refused_alike([lambda: call(layernorm), lambda: call(layernorm_numba)], fragment)


# ---- exact risk -------------------------------------------------------------------------------------------

RISK_CASES = [
    ("negative lam", dict(lam=-1), "lam must be a finite number >= 0, got -1"),
    ("wrong-length mu", dict(mu=[0.3, 0.3, 0.4]),
     "latent variables must lie in 0..1 (nc = nw / len(mu) = 6 / 3), got 2 at index (1, 1) of Z"),
    ("negative mu", dict(mu=[1.5, -0.5]), "mu must be non-negative, got -0.5 at index 1"),
    ("NaN in mu", dict(mu=[0.5, np.nan]), "mu must be finite, got nan at index 1"),
    ("mu not summing to 1", dict(mu=[0.5, 0.4]), "mu must sum to 1, got sum 0.9"),
    ("non-integral Z", dict(Z=Z + 0.25), "Z must hold integers (latent variables), got 0.25 at index (0, 0)"),
    ("NaN in W", dict(W=W * np.nan), "W must be finite, got nan at index (0, 0)"),
    ("complex U", dict(U=U + 0j), "U must hold real numbers, got dtype complex128"),
    ("max_sentences = 0", dict(max_sentences=0), "max_sentences must be a positive integer, got 0"),
    ("layernorm not a switch", dict(layernorm=2), "layernorm must be True or False, got 2"),
    ("scores overflow", dict(W=W * 1e160, U=U * 1e160),
     "the scores S[k, ℓ, w] = ⟨u_{k,ℓ}, w_w⟩ (eq. 20) overflowed to "),
    # float64 / int64 ndarrays, which the twin scans in compiled code before it calls the checks
    ("inf in U", dict(U=np.where(np.arange(24).reshape(4, 6) == 17, np.inf, U)),
     "U must be finite, got inf at index (2, 5)"),
    ("Z = nc", dict(Z=np.where(Z == 2, 3, Z)),
     "latent variables must lie in 0..2 (nc = nw / len(mu) = 6 / 2), got 3 at index (1, 1) of Z"),
    ("Z = -1", dict(Z=Z - 1),
     "latent variables must lie in 0..2 (nc = nw / len(mu) = 6 / 2), got -1 at index (0, 0) of Z"),
    ("mu summing to 1 + 2e-9", dict(mu=np.array([0.5, 0.5 + 2e-9])), "mu must sum to 1, got sum 1.000000002"),
    ("more sentences than max_sentences", dict(max_sentences=15),
     "exact enumeration of K·sc^L = 4·2^2 = 16 sentences exceeds max_sentences = 15"),
    ("max_sentences a bool", dict(max_sentences=True), "max_sentences must be a positive integer, got True"),
]


@table("change, fragment", RISK_CASES)
def test_risk_and_grads_refuses_alike_in_both_backends(change, fragment):
    args = {"W": W, "U": U, "Z": Z, "mu": MU, "lam": 0.1, **change}
    assert_refused_alike([lambda: exact.risk_and_grads(**args, backend="numpy"),
                          lambda: exact.risk_and_grads(**args, backend="numba")], fragment)


EXACT_PASS_CASES = [
    ("score_tables: L = 0", lambda m: m.score_tables(W, U, 0), "L must be a positive integer, got 0"),
    ("score_tables: U columns", lambda m: m.score_tables(W, U, 3),
     "U has shape (4, 6), expected (K, L·d) = (K, 9)"),
    ("risk0_and_phi: wrong-length mu", lambda m: m.risk0_and_phi(np.zeros((4, 2, 6)), Z, [0.2] * 5),
     "nw = 6 words is not divisible by sc = len(mu) = 5"),
    ("risk0_and_phi: Z shape", lambda m: m.risk0_and_phi(np.zeros((4, 2, 6)), Z[:3], MU),
     "Z has shape (3, 2), expected (K, L) = (4, 2)"),
    ("risk0_and_phi: inf in S", lambda m: m.risk0_and_phi(np.full((4, 2, 6), np.inf), Z, MU),
     "S must be finite, got inf at index (0, 0, 0)"),
    ("lemma_s: Phi shape", lambda m: m.lemma_s(W, U, np.zeros((5, 4, 2))),
     "Phi has shape (5, 4, 2), expected (nw, K, L) = (6, K, L)"),
]


@table("call, fragment", EXACT_PASS_CASES)
def test_exact_passes_refuse_alike_in_both_backends(call, fragment):
    assert_refused_alike([lambda: call(exact), lambda: call(exact_numba)], fragment)


# ---- DUFM -------------------------------------------------------------------------------------------------

def _params(l, value):
    return [value if i == l else p for i, p in enumerate(PARAMS)]


DUFM_CASES = [
    ("negative lam", PARAMS, dict(lam=-1.0), "lam must be a finite number >= 0, got -1"),
    ("complex H_1", _params(0, PARAMS[0] + 1j), {}, "H_1 must hold real numbers, got dtype complex128"),
    ("string W_1", _params(1, PARAMS[1].astype(str)), {}, "W_1 must hold real numbers, got dtype <U"),
    ("ragged W_2", _params(2, [[1.0, 2.0], [3.0]]), {}, "W_2 must be a rectangular array of numbers"),
    ("W_2 a vector", _params(2, PARAMS[2][0]), {}, "W_2 must be 2-D, got shape (4,)"),
    ("no class", _params(2, PARAMS[2][:0]), {}, "W_2 has shape (0, 4): it needs at least one row"),
]


@table("params, kw, fragment", DUFM_CASES)
def test_dufm_loss_and_grads_refuses_alike_in_both_backends(params, kw, fragment):
    kw = {"lam": 0.1, **kw}
    assert_refused_alike([lambda: dufm.loss_and_grads(params, **kw),
                          lambda: dufm_numba.loss_and_grads(params, **kw)], fragment)


@pytest.mark.parametrize("call, fragment", [
    (lambda: dufm.forward(_params(0, PARAMS[0] * np.nan)), "H_1 must be finite, got nan at index (0, 0)"),
    (lambda: dufm.loss(_params(1, PARAMS[1] * np.inf), lam=0.1), "W_1 must be finite, got"),
    (lambda: dufm.check_params(_params(2, PARAMS[2] + 1j)), "W_2 must hold real numbers"),
])
def test_dufm_forward_and_loss_refuse_non_finite_parameters(call, fragment):
    assert fragment in message(call)


def test_dufm_loss_and_grads_lets_a_diverged_run_through_in_both_backends():
    """The trainers' step: inf parameters give a non-finite loss (their divergence signal), not an error."""
    params = _params(1, PARAMS[1] * np.inf)
    with np.errstate(all="ignore"):
        losses = [dufm.loss_and_grads(params, lam=0.1)[0], dufm_numba.loss_and_grads(params, lam=0.1)[0]]
    assert not np.isfinite(losses).any()


# ---- neural-collapse measures ---------------------------------------------------------------------------

H = np.random.default_rng(1).standard_normal((4, 6))                     # d = 4, K·n = 6


@pytest.mark.parametrize("call, fragment", [
    (lambda: nc.nc1(H, 0), "n must be a positive integer, got 0"),
    (lambda: nc.nc1(H, 4), "H has 6 columns, not a multiple of n = 4 samples per class"),
    (lambda: nc.nc1(H[:, :0]), "H must be (d, K·n) with a row and a column at least, got shape (4, 0)"),
    (lambda: nc.nc2(H * np.nan, 2), "H must be finite, got nan at index (0, 0)"),
    (lambda: nc.nc2(H, 2, center="no"), "center must be True or False, got 'no'"),
    (lambda: nc.nc3(np.zeros((2, 4)), H, 2), "W has shape (2, 4), expected (K, d) = (3, 4)"),
    (lambda: nc.nc3_subspace(np.zeros((2, 3)), H, 2), "W has shape (2, 3), expected (p, d) with d = 4"),
    (lambda: nc.nc4(H, np.zeros((3, 5)), 2), "Z has shape (3, 5), expected (K, K·n) = (3, 6)"),
    (lambda: nc.class_means(H + 1j), "H must hold real numbers, got dtype complex128"),
    (lambda: nc.balancedness([H, np.zeros((4, 3))]),
     "W_1 has shape (4, 3): its 3 columns must match the 4 rows"),
    (lambda: nc.balancedness([]), "params must be a non-empty list"),
    (lambda: nc.classify(np.eye(3), 2), "Z has shape (3, 3), expected (K, K·n) = (3, 6)"),
    (lambda: nc.classify(np.eye(3), rank_tol=-1), "rank_tol must be a finite number >= 0, got -1"),
])
def test_nc_metrics_refuse_bad_input_in_one_line(call, fragment):
    assert fragment in message(call)


# ---- what the conversion rule accepts gives one result ---------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("convert", [
    lambda W, U, t, y: (W.tolist(), U.tolist(), t.tolist(), y.tolist()),         # lists
    lambda W, U, t, y: (W.astype(np.float16), U.astype(np.float16), t, y),       # float16 (values exact)
    lambda W, U, t, y: (W.astype(np.int32), U, t, y),                            # ints (values exact)
    lambda W, U, t, y: (W, U, t.astype(np.float64), y.astype(np.float32)),       # integral float indices
    lambda W, U, t, y: (W, U, t.astype(np.uint8), y.astype(np.int16)),           # other integer dtypes
], ids=["lists", "float16", "ints", "integral floats", "small ints"])
def test_accepted_input_gives_the_float64_result_in_both_backends(backend, convert):
    want = model.loss_and_grads(W, U, TOKENS, LABELS, layernorm=True, backend="numpy")
    got = model.loss_and_grads(*convert(W, U, TOKENS, LABELS), layernorm=True, backend=backend)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    for g, w in zip(got[1:], want[1:], strict=True):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


def test_wrong_length_mu_no_longer_blames_the_latent_variables_alone():
    """µ of length 3 for sc = 2 makes nc = 6/3 = 2, so Z's 2 is out of range: the message says where nc came
    from."""
    text = message(lambda: exact.risk_and_grads(W, U, Z, [0.2, 0.3, 0.5], lam=0.1, backend="numpy"))
    assert "len(mu)" in text
