"""Property: every call of the public API either returns the reference's result or raises InputError.

Hypothesis draws shapes (degenerate ones included: N = 1, L = 1, d = 1 or 2, K = 1 or 2, empty batches),
input kinds (float64, float32, float16, int, bool, complex, Python lists, mixed dtypes) and values
(NaN and inf, negative λ and eps, tokens and labels out of range or not integral, µ not a distribution).
For each call:

* both backends raise InputError with one and the same one-line message — never another exception type;
* or both return, and then every number returned is finite and the twin's results equal the reference's
  within ``tol · max(1, max|reference|)``: tol = 1e-9 when the arithmetic is float64, 2e-3 when it is
  float32 (the twins sum in another order; float32 LayerNorm amplifies rounding by up to max|v|/σ).

Values lie on a grid of quarters in [−2, 2]: bounded, because products of huge finite numbers overflow
(a property of floating point that no entry check can refuse), and away from rounding noise, because φ
of a row whose spread is a few ulps is noise in both backends (rows constant to the dtype's precision
are refused, as tested here). Runs are derandomized (the same examples every run) with no example
database written.
"""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from refimpl import InputError  # noqa: E402
from refimpl.dufm import model as dufm  # noqa: E402
from refimpl.dufm import model_numba as dufm_numba  # noqa: E402
from refimpl.dufm import nc_metrics as nc  # noqa: E402
from refimpl.feature_collapse import exact, layernorm, layernorm_numba, model, model_numba  # noqa: E402

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TOL = {np.float64: 1e-9, np.float32: 2e-3}

# How an array reaches the API: float64 and float32 most often; all but complex are accepted (converted).
KINDS = ["float64"] * 4 + ["float32"] * 3 + ["float16", "int64", "bool", "list"]
BAD_VALUES = [np.nan, np.inf, -np.inf]
BAD_INDICES = ["out of range", "negative", "half", "nan"]


def fault(*names):
    """At most one deliberate fault per example: "none" half of the time, else one of `names`."""
    return st.sampled_from(["none"] * len(names) + list(names))


# ---- drawing -----------------------------------------------------------------------------------------------

@st.composite
def grid(draw, shape, bad=False):
    """Values k/4 in [−2, 2] (a float64 array of `shape`); with `bad`, one NaN or ±inf among them."""
    size = int(np.prod(shape))
    a = np.array(draw(st.lists(st.integers(-8, 8), min_size=size, max_size=size)), dtype=np.float64) / 4
    if bad and size:
        a[draw(st.integers(0, size - 1))] = draw(st.sampled_from(BAD_VALUES))
    return a.reshape(shape)


def as_kind(a: np.ndarray, kind: str):
    """`a` as the API receives it (complex gets an imaginary part, which must not be dropped)."""
    if kind == "list":
        return a.tolist()
    if kind == "complex128":
        return a + 0.5j
    if kind in ("int64", "bool"):
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(a).astype(kind)
    return a.astype(kind)


def arithmetic(*kinds) -> type:
    """The dtype the functions compute in for inputs of these kinds (when they accept them)."""
    return np.float32 if all(k == "float32" for k in kinds) else np.float64


@st.composite
def indices(draw, shape, upper, bad=False):
    """Integers in [0, upper) of `shape` as int64, int32, integral floats or lists; with `bad`, one of
    them out of range, negative, not integral or NaN."""
    size = int(np.prod(shape))
    a = np.array(draw(st.lists(st.integers(0, max(upper - 1, 0)), min_size=size, max_size=size)),
                 dtype=np.int64).reshape(shape)
    if bad and size:
        flat = a.astype(np.float64).ravel()
        i = draw(st.integers(0, size - 1))
        how = draw(st.sampled_from(BAD_INDICES))
        flat[i] = {"out of range": upper, "negative": -1, "half": flat[i] + 0.5, "nan": np.nan}[how]
        return flat.reshape(shape) if how in ("half", "nan") else flat.astype(np.int64).reshape(shape)
    how = draw(st.sampled_from(["int64"] * 3 + ["int32", "float", "list"]))
    return {"int64": a, "int32": a.astype(np.int32), "float": a.astype(np.float64), "list": a.tolist()}[how]


def number(good, bad=False):
    """A λ or eps: `good`, or with `bad` a negative, NaN or infinite one."""
    return st.sampled_from([-1.0, -1e-12, np.nan, np.inf]) if bad else st.just(good)


# ---- the property ------------------------------------------------------------------------------------------

def _leaves(x):
    if isinstance(x, (tuple, list)):
        for y in x:
            yield from _leaves(y)
    elif isinstance(x, (np.ndarray, float, int, np.floating, np.integer)) and not isinstance(x, bool):
        yield np.asarray(x, dtype=np.float64)


def finite(*arrays) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(a)))) for a in arrays)


def same_outcome(calls, tol, finite_input=True):
    """Run every call: all raise one InputError message, or all return finite results that agree with the
    first call's within tol · max(1, max|first|). Any other exception fails the test. Returns the first
    result (None when refused).

    `finite_input` False: the functions that let inf and NaN through on purpose (an SGD step's W and U, the
    DUFM's loss_and_grads: a diverged run's loss must come back non-finite) — then only the shapes of the
    results are compared."""
    outcomes = []
    # Finite input: no overflow, no 0/0, no log 0 anywhere (FloatingPointError fails the test).
    errors = dict(over="raise", invalid="raise", divide="raise", under="ignore") if finite_input else \
        dict(all="ignore")
    for call in calls:
        try:
            with np.errstate(**errors):
                outcomes.append(call())
        except InputError as e:
            outcomes.append(e)
    refused = [isinstance(o, InputError) for o in outcomes]
    if any(refused):
        assert all(refused), f"one backend refused, another returned: {outcomes}"
        texts = {str(o) for o in outcomes}
        assert len(texts) == 1, f"backends refuse with different messages: {texts}"
        text = texts.pop()
        assert "\n" not in text
        event(f"refused: {text.split(',')[0].split(':')[0][:40]}")
        return None
    event("accepted")
    first = list(_leaves(outcomes[0]))
    if not finite_input:
        assert all([g.shape for g in _leaves(o)] == [w.shape for w in first] for o in outcomes)
        return outcomes[0]
    for leaf in first:
        assert np.all(np.isfinite(leaf)), f"non-finite result from accepted input: {leaf}"
    for other in outcomes[1:]:
        got = list(_leaves(other))
        assert len(got) == len(first)
        for g, w in zip(got, first, strict=True):
            assert g.shape == w.shape
            scale = max(1.0, float(np.max(np.abs(w), initial=0.0)))
            err = float(np.max(np.abs(g - w), initial=0.0))
            assert err <= tol * scale, f"twin differs from the reference by {err:.3g} (scale {scale:.3g})"
    return outcomes[0]


# ---- Feature collapse: the networks ------------------------------------------------------------------------

@st.composite
def network_problem(draw):
    bad = draw(fault("W", "U", "tokens", "labels", "lam_W", "lam_U", "eps", "complex", "mixed", "empty"))
    N = 0 if bad == "empty" else draw(st.sampled_from([1, 1, 2, 3, 5]))
    L, d = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    nw, K = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    kind_W = "complex128" if bad == "complex" else draw(st.sampled_from(KINDS))
    kind_U = draw(st.sampled_from(["float64", "float32"])) if bad == "mixed" else kind_W
    if bad == "mixed" and kind_W == kind_U:
        kind_W = "float32" if kind_U == "float64" else "float64"
    return dict(
        W=as_kind(draw(grid((d, nw), bad == "W")), kind_W),
        U=as_kind(draw(grid((K, L * d), bad == "U")), kind_U),
        tokens=draw(indices((N, L), nw, bad == "tokens")), labels=draw(indices((N,), K, bad == "labels")),
        layernorm=draw(st.booleans()),
        eps=draw(number(draw(st.sampled_from([0.0, 1e-5, 0.5])), bad == "eps")),
        lam_W=draw(number(0.01, bad == "lam_W")), lam_U=draw(number(0.1, bad == "lam_U")),
    ), arithmetic(kind_W, kind_U)


@PROPERTY
@given(network_problem())
def test_feature_collapse_loss_and_grads(problem):
    kw, dtype = problem
    same_outcome([lambda: model.loss_and_grads(**kw, backend="numpy"),
                  lambda: model.loss_and_grads(**kw, backend="numba"),
                  lambda: model_numba.loss_and_grads(**kw)], TOL[dtype])


@PROPERTY
@given(network_problem(), st.sampled_from([0.5] * 4 + [0.0, -0.1]))
def test_feature_collapse_sgd_step(problem, lr):
    kw, dtype = problem

    def step(module):                                                 # on copies: the step works in place
        W, U = (np.array(kw[k]) if isinstance(kw[k], np.ndarray) else kw[k] for k in ("W", "U"))
        loss, correct = module.sgd_step(W, U, kw["tokens"], kw["labels"], lr=lr, lam_W=kw["lam_W"],
                                        lam_U=kw["lam_U"], layernorm=kw["layernorm"], eps=kw["eps"])
        return loss, correct, W, U

    same_outcome([lambda: step(model), lambda: step(model_numba)], TOL[dtype],
                 finite_input=finite(kw["W"], kw["U"]))


# ---- LayerNorm --------------------------------------------------------------------------------------------

@st.composite
def layernorm_problem(draw):
    bad = draw(fault("V", "dY", "eps", "complex", "dY shape", "V shape"))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))     # (..., d), d = 1 included
    if bad == "V shape":
        shape = draw(st.sampled_from([(), (0,), (2, 0), (0, 3)]))                   # (0, 3): no row, accepted
    kind = "complex128" if bad == "complex" else draw(st.sampled_from(KINDS))
    V = as_kind(draw(grid(shape, bad == "V")), kind)
    dY_shape = shape + (1,) if bad == "dY shape" else shape
    dY = as_kind(draw(grid(dY_shape, bad == "dY")), draw(st.sampled_from([kind, "float64"])))
    return V, dY, draw(number(draw(st.sampled_from([0.0, 1e-5])), bad == "eps")), arithmetic(kind)


@PROPERTY
@given(layernorm_problem())
def test_layernorm_forward_and_backward(problem):
    V, dY, eps, dtype = problem

    def both(module):
        Y, cache = module.forward(V, eps)
        return Y, cache[1], module.backward(dY, cache)

    same_outcome([lambda: both(layernorm), lambda: both(layernorm_numba)], TOL[dtype])


# ---- Feature collapse: the exact risk ----------------------------------------------------------------------

@st.composite
def risk_problem(draw):
    bad = draw(fault("W", "U", "Z", "lam", "mu", "complex"))
    nc_, sc, L = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    d, K = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    weights = np.array(draw(st.lists(st.integers(1, 4), min_size=sc, max_size=sc)), dtype=np.float64)
    mu = weights / weights.sum()
    if bad == "mu":
        how = draw(st.sampled_from(["too long", "negative", "unnormalized", "nan"]))
        mu = {"too long": np.full(sc + 1, 1 / (sc + 1)), "negative": np.r_[mu + 1, -1.0],
              "unnormalized": weights, "nan": np.r_[mu[:-1], np.nan]}[how]
    kind = "complex128" if bad == "complex" else draw(st.sampled_from(KINDS))
    return dict(W=as_kind(draw(grid((d, nc_ * sc), bad == "W")), kind),
                U=as_kind(draw(grid((K, L * d), bad == "U")), kind),
                Z=draw(indices((K, L), nc_, bad == "Z")),
                mu=mu, lam=draw(number(0.1, bad == "lam")), layernorm=draw(st.booleans()))


@PROPERTY
@given(risk_problem())
def test_exact_risk_and_grads(kw):
    same_outcome([lambda: exact.risk_and_grads(**kw, backend="numpy"),
                  lambda: exact.risk_and_grads(**kw, backend="numba")], TOL[np.float64])


# ---- DUFM --------------------------------------------------------------------------------------------------

@st.composite
def dufm_problem(draw):
    bad = draw(fault("value", "lam", "complex", "shape", "width"))
    K, n, L = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    d = K - 1 if bad == "width" and K > 1 else draw(st.integers(K, 4))      # d < K is refused
    shapes = [(d, K * n)] + [(d, d)] * (L - 1) + [(K, d + (bad == "shape"))]
    kind = "complex128" if bad == "complex" else draw(st.sampled_from(KINDS))
    l_bad = draw(st.integers(0, L)) if bad == "value" else -1
    params = [as_kind(draw(grid(s, l == l_bad)), kind) for l, s in enumerate(shapes)]
    model_name = draw(st.sampled_from(["linear", "relu", "mse"]))
    power = draw(st.sampled_from([None, None, 2, 3])) if model_name == "mse" else None
    return params, dict(lam=draw(number(0.01, bad == "lam")), model=model_name, power=power), arithmetic(kind)


@PROPERTY
@given(dufm_problem())
def test_dufm_loss_and_grads(problem):
    params, kw, dtype = problem
    same_outcome([lambda: dufm.loss_and_grads(params, **kw),
                  lambda: dufm_numba.loss_and_grads(params, **kw)], TOL[dtype], finite_input=finite(*params))


# ---- neural-collapse measures ------------------------------------------------------------------------------

@st.composite
def features(draw):
    bad = draw(fault("H", "W", "Z", "n", "H shape", "W shape", "complex"))
    K, n, d = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    kind = "complex128" if bad == "complex" else draw(st.sampled_from(KINDS))
    H = as_kind(draw(grid((d, K * n + (bad == "H shape")), bad == "H")), kind)
    W = as_kind(draw(grid((K + (bad == "W shape"), d), bad == "W")), kind)
    Z = as_kind(draw(grid((K, K * n), bad == "Z")), kind)
    return H, W, Z, draw(st.sampled_from([0, -1, 2.5])) if bad == "n" else n, kind


@PROPERTY
@given(features())
def test_nc_metrics(problem):
    H, W, Z, n, _ = problem
    for call in (lambda: nc.nc1(H, n), lambda: nc.nc2(H, n), lambda: nc.nc2(H, n, center=False),
                 lambda: nc.nc3(W, H, n), lambda: nc.nc3_subspace(W, H, n), lambda: nc.nc4(H, Z, n),
                 lambda: nc.class_means(H, n), lambda: nc.balancedness([H, W]),
                 lambda: nc.balancedness([W, H])):
        same_outcome([call], 0.0)


@PROPERTY
@given(features())
def test_classify(problem):
    _, _, Z, n, _ = problem
    try:
        end = nc.classify(Z, n)
    except InputError as e:
        assert "\n" not in str(e)
        return
    assert end.kind in ("DNC", "low rank", "zero", "other")
    if finite(Z):
        assert end.rank >= 0 and np.all(np.isfinite(end.sv)) and np.isfinite(end.dnc_distance)
