"""Progress on stderr for anything that runs longer than a few seconds, and side remarks that keep their
own lines.

:func:`bar` yields an object with ``update(n, info)`` and ``log(text)``. On a terminal the bar is one line
redrawn in place (``label [#####     ] 120/500  2:31 left  info``); a logged line first clears it, so it
never glues onto the bar. Elsewhere (a pipe, a log file) nothing is redrawn: logged lines are printed as they
come. The remaining time is estimated from the steps done since the bar started, so a bar started after the
compiled kernels are ready (:func:`notice_while`) does not count their compilation.
"""

import contextlib
import sys
import threading
import time


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class _Bar:
    WIDTH = 28

    def __init__(self, length: int, label: str, stream):
        self.length, self.label, self.stream = max(int(length), 0), label, stream
        self.done, self.info, self.start = 0, "", time.perf_counter()
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._drawn = False

    def _line(self) -> str:
        frac = self.done / self.length if self.length else 1.0
        filled = int(frac * self.WIDTH)
        elapsed = time.perf_counter() - self.start
        rest = elapsed / self.done * (self.length - self.done) if self.done else None
        left = f"{_clock(rest)} left" if rest is not None else "--:-- left"
        return (f"{self.label} [{'#' * filled}{' ' * (self.WIDTH - filled)}] {self.done}/{self.length}  "
                f"{left}  {self.info}")

    def _draw(self):
        if self.tty:
            self.stream.write("\r\033[K" + self._line())
            self.stream.flush()
            self._drawn = True

    def update(self, n_steps: int, info: str = ""):
        self.done = min(self.done + n_steps, self.length)
        if info:
            self.info = info
        self._draw()

    def log(self, text: str):
        """A line of its own, above the bar."""
        if self._drawn:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()
        self._draw()

    def close(self):
        if self._drawn:
            self.stream.write("\r\033[K" + self._line() + "\n")
            self.stream.flush()


class _Silent:
    def update(self, n_steps: int, info: str = ""):
        pass

    def log(self, text: str):
        pass


@contextlib.contextmanager
def bar(length: int, label: str, enabled: bool = True, stream=None):
    """Context manager yielding an object with ``update(n, info)`` and ``log(text)``; silent when not
    `enabled` (tests, library use, ``--quiet``)."""
    if not enabled:
        yield _Silent()
        return
    b = _Bar(length, label, stream or sys.stderr)
    try:
        yield b
    finally:
        b.close()


@contextlib.contextmanager
def notice_while(text: str, enabled: bool = True, after: float = 0.5, stream=None):
    """Print ``text…`` on stderr if the block is still running after `after` seconds (a first run
    compiling its kernels), then how long it took; nothing when the block is quick (kernels cached)."""
    stream = stream or sys.stderr
    start = time.perf_counter()
    shown = threading.Event()

    def show():
        stream.write(f"{text}…\n")
        stream.flush()
        shown.set()

    timer = threading.Timer(after, show) if enabled else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
            if shown.is_set():
                stream.write(f"{text}: done in {time.perf_counter() - start:.0f} s\n")
                stream.flush()
