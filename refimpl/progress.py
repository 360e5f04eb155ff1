"""A progress bar on stderr for anything that runs longer than a few seconds.

Built on :func:`click.progressbar` (click is already a dependency); silent when ``enabled=False``
(tests, library use) and reduced to a label when stderr is not a terminal.
"""

import contextlib
import sys

import click


class _Silent:
    def update(self, n_steps, current_item=None):
        pass


@contextlib.contextmanager
def bar(length: int, label: str, enabled: bool = True):
    """Context manager yielding an object with ``update(n)``; a no-op when not `enabled`."""
    if not enabled:
        yield _Silent()
        return
    with click.progressbar(length=length, label=label, file=sys.stderr, show_eta=True,
                           show_pos=True, item_show_func=lambda s: s) as b:
        yield b
