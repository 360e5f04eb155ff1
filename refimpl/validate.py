"""One validator per kind of argument, shared by the library, the figures and the benchmarks.

Each returns the value in its canonical type or raises :class:`refimpl.errors.InputError` with one line
naming the argument and the bad value (plain numbers: ``got -1``, not ``np.float64(-1.0)``).

Arrays, and the one conversion rule of every public function that takes them
----------------------------------------------------------------------------
:func:`float_array` (parameters, features, gradients), :func:`index_array` (tokens, labels, latent
variables) and :func:`distribution` (word frequencies µ) accept any array-like:

* float32 and float64 arrays are used as they are (no copy; their dtype decides the arithmetic);
* other real numeric input — Python lists and numbers, bool, int, unsigned and float16 arrays — is
  converted to float64;
* complex, object and string input is refused (``W must hold real numbers, got dtype complex128``), and
  so is a ragged list;
* every value must be finite (``W must be finite, got nan at index (0, 3)``). The exception is a
  parameter that a training step updates or evaluates for its trainer (``sgd_step``'s W and U, the
  DUFM's ``loss_and_grads``): a diverged run's inf or NaN gives a non-finite loss, the trainers' signal.

Index arrays hold integers: an integer dtype, or floats whose values are all integers (then converted to
int64); anything else is refused naming its first bad value and index (``tokens must hold integers, got
2.7 at index (0, 1)``, never truncated), and every index must lie in [0, upper).

Empty batches are refused: a function of sentences needs at least one sentence of at least one word
(``tokens needs at least one sentence (N >= 1), got shape (0, 3)``) — an empty mean has no value, and a
twin's kernels have nothing to do.

The entry checks of *Feature collapse*'s networks and exact risk, built from these, are in
:mod:`refimpl.feature_collapse.inputs`.
"""

import math

import numpy as np

from refimpl.errors import InputError, require

BACKENDS = ("numba", "numpy")
DEFAULT_BACKEND = "numba"   # every ``backend=`` of the package: the compiled twin unless asked otherwise


def _plain(value):
    """`value` as a plain Python number for messages (NumPy scalars print as their value)."""
    try:
        return value.item()
    except AttributeError:
        return value


def _is_integer(value) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value)) and float(value).is_integer()
    except (TypeError, ValueError):
        return False


def positive_int(name: str, value) -> int:
    """`value` as an int >= 1."""
    if not _is_integer(value) or int(value) < 1:
        raise InputError(f"{name} must be a positive integer, got {_plain(value)!r}")
    return int(value)


def nonneg_int(name: str, value) -> int:
    """`value` as an int >= 0."""
    if not _is_integer(value) or int(value) < 0:
        raise InputError(f"{name} must be an integer >= 0, got {_plain(value)!r}")
    return int(value)


def seed(value, name: str = "seed") -> int:
    """A seed for ``numpy.random.default_rng``: an integer >= 0."""
    return nonneg_int(name, value)


def _number(name: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {_plain(value)!r}") from None
    require(math.isfinite(x), f"{name} must be a finite number, got {x:g}")
    return x


def positive_number(name: str, value) -> float:
    """`value` as a finite float > 0."""
    x = _number(name, value)
    require(x > 0, f"{name} must be a finite number > 0, got {x:g}")
    return x


def nonneg_number(name: str, value) -> float:
    """`value` as a finite float >= 0."""
    x = _number(name, value)
    require(x >= 0, f"{name} must be a finite number >= 0, got {x:g}")
    return x


def positive_numbers(name: str, values) -> tuple[float, ...]:
    """A non-empty list of finite numbers > 0 (λ grids)."""
    require(len(values) > 0, f"{name} must list at least one value")
    return tuple(positive_number(name, v) for v in values)


def distinct_ints(name: str, values, minimum: int = 1, why: str = "") -> tuple[int, ...]:
    """A non-empty list of distinct integers >= `minimum` (grids of L or d); `why` explains the minimum."""
    require(len(values) > 0, f"{name} must list at least one value")
    require(len(set(values)) == len(values), f"{name} has repeated values: {tuple(values)}")
    out = tuple(positive_int(name, v) for v in values)
    for v in out:
        require(v >= minimum, f"{name} must be >= {minimum}{why}, got {v}")
    return out


def width(d, K) -> int:
    """The DUFM's width: an integer d >= K (the number of classes)."""
    d = positive_int("d", d)
    require(d >= K, f"width d = {d} is smaller than the number of classes K = {K}; the DUFM needs d >= K")
    return d


def choice(name: str, value, choices) -> str:
    """One of `choices` (strings)."""
    require(value in choices, f"unknown {name} {value!r}; use one of {', '.join(map(str, choices))}")
    return value


def backend(value) -> str:
    """``"numba"`` (the compiled twins) or ``"numpy"`` (the readable references)."""
    return choice("backend", value, BACKENDS)


# ---- arrays (the conversion rule of the module docstring) -------------------------------------------------

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _as_array(name: str, x) -> np.ndarray:
    try:
        return np.asarray(x)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a rectangular array of numbers, got a ragged {type(x).__name__}") \
            from None


def first_bad(bad: np.ndarray, a: np.ndarray):
    """(value, " at index …") of the first True of `bad` in C order, the value a plain Python number."""
    i = tuple(int(j) for j in np.unravel_index(int(np.argmax(bad)), bad.shape))
    where = "" if not i else f" at index {i[0]}" if len(i) == 1 else f" at index {i}"
    return a[i].item(), where


def _integral(v):
    """An integral float as an int, for messages about indices (``got 12``, not ``got 12.0``)."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def all_finite(name: str, a: np.ndarray) -> np.ndarray:
    """`a` unchanged if every value is finite; else InputError naming the first one that is not."""
    ok = np.isfinite(a)
    if not ok.all():
        v, where = first_bad(~ok, a)
        raise InputError(f"{name} must be finite, got {v!r}{where}")
    return a


def float_array(name: str, x, ndim: int | None = None, *, finite: bool = True) -> np.ndarray:
    """`x` as a float32 or float64 ndarray by the conversion rule (float32/float64 as they are, other real
    numbers to float64, complex/object/strings refused), of `ndim` dimensions when given, every value
    finite unless `finite` is False."""
    a = _as_array(name, x)
    if a.dtype not in FLOATS:
        require(a.dtype.kind in "biuf", f"{name} must hold real numbers, got dtype {a.dtype}")
        a = a.astype(np.float64, copy=False)
    if ndim is not None:
        require(a.ndim == ndim, f"{name} must be {ndim}-D, got shape {a.shape}")
    return all_finite(name, a) if finite else a


def float64_array(name: str, x, ndim: int | None = None) -> np.ndarray:
    """:func:`float_array`, then as float64 (for the passes that compute in float64 whatever the input)."""
    return float_array(name, x, ndim).astype(np.float64, copy=False)


def inplace_array(name: str, x, ndim: int) -> np.ndarray:
    """A writable float32 or float64 ndarray of `ndim` dimensions that a function updates in place: never
    converted (a converted copy would be updated instead of `x`); its values are not checked (a diverged
    step leaves inf or NaN, which the step's non-finite loss reports)."""
    got = f"dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
    require(isinstance(x, np.ndarray) and x.dtype in FLOATS,
            f"{name} is updated in place: it must be a float32 or float64 ndarray, got {got}")
    require(x.flags.writeable, f"{name} is updated in place but is read-only")
    require(x.ndim == ndim, f"{name} must be {ndim}-D, got shape {x.shape}")
    return x


def like(name: str, x, shape: tuple) -> np.ndarray:
    """An upstream gradient: a finite real array (:func:`float_array`) of exactly `shape`."""
    a = float_array(name, x)
    require(a.shape == tuple(shape), f"{name} has shape {a.shape}, expected {tuple(shape)}")
    return a


def index_array(name: str, x, ndim: int | None, upper: int | None, *, what: str = "") -> np.ndarray:
    """`x` as an int64 ndarray of `ndim` dimensions with values in [0, upper) (no bound when None).

    Integer dtypes are taken as they are; a float array only if every value is an integer (2.0 is 2, 2.7
    is refused naming its value and index, never truncated); bool, complex, strings are refused. `what`
    says in the messages what the integers are (``Z must hold integers (latent variables)``).
    """
    a = _as_array(name, x)
    kind = f"integers ({what})" if what else "integers"
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.trunc(a))
        if bad.any():
            v, where = first_bad(bad, a)
            raise InputError(f"{name} must hold {kind}, got {v!r}{where}")
    elif a.dtype.kind not in "iu":
        raise InputError(f"{name} must hold {kind}, got dtype {a.dtype}")
    if ndim is not None:
        require(a.ndim == ndim, f"{name} must be {ndim}-D, got shape {a.shape}")
    if upper is not None:
        bad = (a < 0) | (a >= upper)
        if bad.any():
            v, where = first_bad(bad, a)
            raise InputError(f"{name} must lie in [0, {upper}), got {_integral(v)}{where}")
    return a.astype(np.int64, copy=False)


def distribution(name: str, mu) -> np.ndarray:
    """A probability vector as float64: 1-D, at least one entry, finite, non-negative, summing to 1 within
    1e-9."""
    mu = float_array(name, mu, 1).astype(np.float64, copy=False)
    require(mu.size >= 1, f"{name} must have at least one entry, got shape {mu.shape}")
    negative = mu < 0
    if negative.any():
        v, where = first_bad(negative, mu)
        raise InputError(f"{name} must be non-negative, got {v:g}{where}")
    total = float(mu.sum())
    require(abs(total - 1.0) <= 1e-9, f"{name} must sum to 1, got sum {total:.12g}")
    return mu


def flag(name: str, value) -> bool:
    """A switch: True, False (or NumPy's bools, or the integers 0 and 1)."""
    if isinstance(value, (bool, np.bool_)) or (_is_integer(value) and int(value) in (0, 1)):
        return bool(value)
    raise InputError(f"{name} must be True or False, got {_plain(value)!r}")


def layernorm_rows(V: np.ndarray, eps: float, what: str = "row {i} of V", ids=None) -> None:
    """Refuse a vector φ cannot normalize: a row of V (its last axis) whose σ = sqrt(var + eps) is zero to
    V's precision, i.e. σ ≤ 16·ε·max|v| (ε of V's dtype) or below its smallest normal number. φ divides
    by σ: it would return NaN (σ = 0) or rounding noise blown up to unit size. `what` names row i (a
    format with ``{i}``); `ids` numbers the rows (default: their index in V's leading axes).
    NaN and inf rows pass (their σ is NaN or inf): they are :func:`all_finite`'s business."""
    d = V.shape[-1]
    rows = V.reshape(-1, d).astype(np.float64)                            # (n, d)
    info = np.finfo(V.dtype)
    with np.errstate(over="ignore", invalid="ignore"):                    # inf rows: NaN σ, not refused here
        centered = rows - rows.mean(axis=1, keepdims=True)                # (n, d)
        sigma = np.sqrt((centered * centered).mean(axis=1) + float(V.dtype.type(eps)))  # (n,), eps as V's
        floor = np.maximum(16 * float(info.eps) * np.abs(rows).max(axis=1, initial=0.0), float(info.tiny))
        bad = sigma <= floor                                              # (n,)
    if bad.any():
        r = int(np.argmax(bad))
        i = int(ids[r]) if ids is not None else r if V.ndim <= 2 else tuple(
            int(j) for j in np.unravel_index(r, V.shape[:-1]))
        raise InputError(f"{what.format(i=i)} is constant to {V.dtype} precision: LayerNorm with "
                         f"eps = {eps:g} divides by its standard deviation σ = {sigma[r]:.3g}")
