"""The one exception type for bad user input.

Library code raises :class:`InputError` with a one-line message naming the bad value; the CLI turns it
into ``Error: <message>`` and a non-zero exit, without a traceback. Bugs stay ordinary exceptions.
"""


class InputError(ValueError):
    """Bad user input (sizes, options, files). The message is one line and names the bad value."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with `message` unless `condition` holds."""
    if not condition:
        raise InputError(message)


def positive_int(name: str, value) -> int:
    """Return `value` as an int, or raise InputError naming `name` if it is not an integer >= 1."""
    if isinstance(value, bool) or not float(value).is_integer() or int(value) < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
