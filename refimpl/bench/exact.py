"""``python cli.py bench exact``: the exact true risk and its gradient, Numba against the NumPy reference.

Default instance: nc = 3, sc = 4, L = 5, d = 8, all K = 3^5 = 243 latent variables, Zipf words —
K·sc^L = 248,832 sentences. The Numba result is checked against the reference (risk and both gradients,
max |Δ| ≤ 1e-12 relative) before anything is timed. ``--scaling`` then times the kernel at a few sizes
around the default and divides by K²·sc^L·L (sentences × classes × positions), the model of its cost:
a roughly constant ns per unit says the cost grows as K²·sc^L·L.
"""

import dataclasses
import time

import numpy as np

from refimpl.feature_collapse import data, exact
from refimpl.registry import Spec, option

TOLERANCE = 1e-12  # max |numba − numpy| / max(1, |numpy|) over R, dW, dU


@dataclasses.dataclass(frozen=True)
class ExactBenchConfig:
    nc: int = option(3, "concepts")
    sc: int = option(4, "words per concept")
    L: int = option(5, "sentence length")
    d: int = option(8, "embedding dimension")
    K: int = option(0, "classes: a random subset of the latent variables (0: all nc^L)")
    layernorm: bool = option(False, "h* (risk 10) instead of h (risk 5)")
    repeats: int = option(5, "timed Numba repeats (the median is reported)")
    numpy_repeats: int = option(1, "timed NumPy repeats (0: skip the reference timing)")
    scaling: bool = option(True, "also time the kernel at other K, sc, L")


def _instance(nc, sc, L, d, K, seed=0):
    rng = np.random.default_rng(seed)
    Z = data.latent_variables(nc, L, K if K else "all", rng)            # (K, L)
    W = rng.standard_normal((d, nc * sc))                                 # (d, nw)
    U = 0.5 * rng.standard_normal((len(Z), L * d))                        # (K, L·d)
    return W, U, Z, data.word_frequencies(sc, "zipf")


def _seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _check(args, layernorm) -> float:
    """Max relative difference of (R, dW, dU) between the Numba kernel and the NumPy reference."""
    got = exact.risk_and_grads(*args, lam=1e-3, layernorm=layernorm, backend="numba")
    want = exact.risk_and_grads(*args, lam=1e-3, layernorm=layernorm, backend="numpy")
    return max(float(np.max(np.abs(np.asarray(g) - w)) / max(1.0, float(np.max(np.abs(w)))))
               for g, w in zip(got, want, strict=True))


def scaling_rows(cfg: ExactBenchConfig):
    """(label, K, sc, L, seconds) for the kernel at sizes around the default (K varied on random subsets)."""
    sizes = [(81, cfg.sc, cfg.L), (162, cfg.sc, cfg.L), (243, cfg.sc, cfg.L), (243, cfg.sc - 1, cfg.L),
             (243, cfg.sc + 1, cfg.L), (81, cfg.sc, cfg.L - 1), (81, cfg.sc, cfg.L + 1)]
    for K, sc, L in sizes:
        if K > cfg.nc**L or sc < 1:
            continue
        args = _instance(cfg.nc, sc, L, cfg.d, K, seed=1)
        fn = lambda a=args: exact.risk_and_grads(*a, lam=1e-3, layernorm=cfg.layernorm)  # noqa: E731
        fn()
        yield K, sc, L, _seconds(fn, max(1, cfg.repeats // 2))


def run(cfg: ExactBenchConfig, ctx) -> bool:
    args = _instance(cfg.nc, cfg.sc, cfg.L, cfg.d, cfg.K)
    K, n = len(args[2]), exact.sentence_count(len(args[2]), cfg.sc, cfg.L)
    ctx.info(f"exact risk + gradient of {'h*' if cfg.layernorm else 'h'}: nc={cfg.nc} sc={cfg.sc} L={cfg.L} "
             f"d={cfg.d} K={K}, {n:,} sentences, Zipf µ")
    err = _check(args, cfg.layernorm)
    ok = err <= TOLERANCE
    fn = lambda: exact.risk_and_grads(*args, lam=1e-3, layernorm=cfg.layernorm, backend="numba")  # noqa: E731
    fn()
    t_numba = _seconds(fn, cfg.repeats) if ok else float("nan")
    t_numpy = float("nan")
    if cfg.numpy_repeats:
        t_numpy = _seconds(lambda: exact.risk_and_grads(*args, lam=1e-3, layernorm=cfg.layernorm,
                                                        backend="numpy"), cfg.numpy_repeats)
    row = {"K": K, "sc": cfg.sc, "L": cfg.L, "d": cfg.d, "sentences": n, "numba_seconds": t_numba,
           "numpy_seconds": t_numpy, "speedup": t_numpy / t_numba, "check_max_rel_err": err,
           "check_passed": ok, "ns_per_unit": t_numba / (K * n * cfg.L) * 1e9}
    ctx.emit(f"numba {t_numba:.3f} s   numpy {t_numpy:.3f} s   speed-up {row['speedup']:.1f}x   "
             f"({row['ns_per_unit']:.2f} ns per K²·sc^L·L unit; check vs NumPy: max rel err {err:.1e} "
             f"{'ok' if ok else 'FAILED'})", row)
    if cfg.scaling and ok:
        for K_, sc, L, seconds in scaling_rows(cfg):
            units = K_ * K_ * sc**L * L
            rec = {"K": K_, "sc": sc, "L": L, "sentences": K_ * sc**L, "numba_seconds": seconds,
                   "ns_per_unit": seconds / units * 1e9}
            ctx.emit(f"  scaling K={K_:4d} sc={sc} L={L}: {K_ * sc**L:>9,} sentences  {seconds:.4f} s  "
                     f"{rec['ns_per_unit']:.2f} ns per K²·sc^L·L unit", rec)
    return ok


SPECS = [Spec("exact", ExactBenchConfig, run, "Time the exact true risk + gradient (Numba vs NumPy).")]
