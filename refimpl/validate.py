"""One validator per kind of argument, shared by the library, the figures and the benchmarks.

Each returns the value in its canonical type or raises :class:`refimpl.errors.InputError` with one line
naming the argument and the bad value (plain numbers: ``got -1``, not ``np.float64(-1.0)``).
"""

import math

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
