"""The one exception type for bad user input.

Library code raises :class:`InputError` with a one-line message naming the bad value; the CLI turns it
into ``Error: <message>`` and a non-zero exit, without a traceback. Bugs stay ordinary exceptions.
The validators of each kind of argument (sizes, numbers, seeds, widths, backends) are in
:mod:`refimpl.validate`.
"""


class InputError(ValueError):
    """Bad user input (sizes, options, files). The message is one line and names the bad value."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`InputError` with `message` unless `condition` holds."""
    if not condition:
        raise InputError(message)
