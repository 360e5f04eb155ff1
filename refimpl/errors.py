"""The one exception type for bad user input.

Library code raises :class:`InputError` with a one-line message naming the bad value, and :class:`RunError`
when started work fails (a diverged run); the CLI turns either into ``Error: <message>`` and a non-zero exit
(2 for bad arguments, 1 for failed work), without a traceback. Bugs stay ordinary exceptions.
The validators of each kind of argument (sizes, numbers, seeds, widths, backends) are in
:mod:`refimpl.validate`.
"""


class InputError(ValueError):
    """Bad user input (sizes, options, files). The message is one line and names the bad value."""


class RunError(RuntimeError):
    """Work that started and failed for a reason the user can act on (a training run diverged, …). The
    message is one line and names where (epoch, step, run)."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with `message` unless `condition` holds."""
    if not condition:
        raise InputError(message)
