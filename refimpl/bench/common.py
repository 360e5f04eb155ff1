"""What every benchmark shares: the agreement measure of its pre-timing check, timers, PyTorch detection."""

import importlib.util
import time

import numpy as np


def max_rel_err(got, want) -> float:
    """Agreement of an implementation with its reference over several outputs (loss, gradients, …).

    For each pair (g, w): max |g − w| / max |w|, the error relative to the reference's largest entry
    (so a gradient of tiny scale is judged at its own scale); 0 when both are zero. Returns the largest.
    """
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        w = np.asarray(w, dtype=np.float64)
        diff = float(np.max(np.abs(np.asarray(g, dtype=np.float64) - w), initial=0.0))
        scale = float(np.max(np.abs(w), initial=0.0))
        worst = max(worst, diff / scale if scale > 0 else (0.0 if diff == 0 else np.inf))
    return worst


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process — all threads —) of one call of `fn`."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of `repeats` calls of `fn`."""
    return float(np.median([timed(fn)[0] for _ in range(repeats)]))


def torch_available() -> bool:
    """Whether PyTorch can be imported (an optional comparison, never a dependency)."""
    return importlib.util.find_spec("torch") is not None
