"""``python cli.py bench exact``: the exact true risk and its gradient, Numba against the NumPy reference.

Default instance: nc = 3, sc = 4, L = 5, d = 8, all K = 3^5 = 243 latent variables, Zipf words —
K·sc^L = 248,832 sentences. Before anything is timed, the Numba result (R, dW, dU) is checked against the
reference (:func:`refimpl.bench.common.max_rel_err` ≤ 1e-12: max |Δ| / max |reference| per output); a
failed check exits with status 1 and nothing is timed. Then, with the median of at least ``repeats`` calls
in steady state (after 0.1 s of untimed calls; repeated until 0.3 s, see :class:`_Timer`):

* the speed targets (2 cores), each printed as ``met`` / ``NOT met``: the default instance (K = 243) in
  ≤ 25 ms for risk + gradient, and nc = 3, sc = 4, L = 6, K = 729 (2,985,984 sentences) in ≤ 1 s;
* the configured instance, beside the NumPy reference;
* ``--scaling``: seven sizes from 20,736 to 2,985,984 sentences, each time divided by K²·sc^L (sentences
  × classes), the kernel's cost model; the largest / smallest ns per unit is printed, and whether it is
  flat within 2×. The sizes are timed in ROUNDS rounds, each size in turn within a round (ROUND_WARMUP
  seconds untimed, then at least ROUND_SECONDS timed, one call at least of each), the median over all its
  timed calls reported: a ratio of two rows compares calls made under the same load, where timing one
  size after another would compare the machine's good minute with its bad one (the host's speed was seen
  to move by ±25% within minutes).

Beside each wall time the CPU time of all the process's threads is printed: when other jobs share the
cores, the wall time grows and the CPU time shows what the work itself costs.

``--json`` prints one record per line: the targets (target, sentences, seconds, cpu_seconds,
limit_seconds, met), the configured instance (numba_seconds, numba_cpu_seconds, numpy_seconds, speedup,
check_max_rel_err, check_passed, ns_per_unit), the scaling rows (K, sc, L, sentences, numba_seconds,
cpu_seconds, ns_per_unit, cpu_ns_per_unit) and the scaling summary (scaling_max_over_min, flat_within_2x).
"""

import dataclasses
import functools
import time

import numpy as np

from refimpl.bench.common import max_rel_err, median_seconds, timed
from refimpl.feature_collapse import data, exact
from refimpl.registry import Spec, option
from refimpl.validate import nonneg_int, positive_int

TOLERANCE = 1e-12  # max |numba − numpy| / max |numpy| over R, dW, dU
TARGETS = (        # (nc, sc, L, d, K, seconds): risk + gradient on 2 cores
    (3, 4, 5, 8, 243, 0.025),
    (3, 4, 6, 8, 729, 1.0),
)
WARMUP_SECONDS, TIMED_SECONDS, MAX_REPEATS = 0.1, 0.3, 100  # per instance (see _Timer)
ROUNDS, ROUND_WARMUP, ROUND_SECONDS = 5, 0.4, 0.06          # the scaling rows, in turn (_scaling_times)
SCALING = (        # (K, sc, L), nc = 3: 20,736 .. 2,985,984 sentences
    (81, 4, 4), (81, 4, 5), (243, 3, 5), (243, 4, 5), (729, 3, 6), (243, 5, 5), (729, 4, 6),
)


@dataclasses.dataclass(frozen=True)
class ExactBenchConfig:
    nc: int = option(3, "concepts")
    sc: int = option(4, "words per concept")
    L: int = option(5, "sentence length")
    d: int = option(8, "embedding dimension")
    K: int = option(0, "classes: a random subset of the latent variables (0: all nc^L)")
    layernorm: bool = option(False, "h* (risk 10) instead of h (risk 5)")
    repeats: int = option(7, "timed Numba repeats at least (more until 0.3 s; the median is reported)")
    numpy_repeats: int = option(1, "timed NumPy repeats (0: skip the reference timing)")
    targets: bool = option(True, "also time the two target instances and say whether each target is met")
    scaling: bool = option(True, "also time the kernel at seven sizes (ns per K²·sc^L unit)")

    def __post_init__(self):
        for name in ("nc", "sc", "L", "d", "repeats"):
            positive_int(name, getattr(self, name))
        nonneg_int("K", self.K)
        nonneg_int("numpy_repeats", self.numpy_repeats)
        data.check_distinct_count(self.nc, self.L, self.K)


def _instance(nc, sc, L, d, K, seed=0):
    rng = np.random.default_rng(seed)
    Z = data.latent_variables(nc, L, K if K and K < nc**L else "all", rng)  # (K, L)
    W = rng.standard_normal((d, nc * sc))                                 # (d, nw)
    U = 0.5 * rng.standard_normal((len(Z), L * d))                        # (K, L·d)
    return W, U, Z, data.word_frequencies(sc, "zipf")


def _risk_and_grads(args, layernorm, backend):
    return exact.risk_and_grads(*args, lam=1e-3, layernorm=layernorm, backend=backend)


def _check(args, layernorm) -> float:
    """max_rel_err of (R, dW, dU): the Numba kernel against the NumPy reference."""
    return max_rel_err(_risk_and_grads(args, layernorm, "numba"), _risk_and_grads(args, layernorm, "numpy"))


class _Timer:
    """Median Numba (wall, CPU) seconds of risk + gradient per instance (nc, sc, L, d, K), each timed once.
    CPU seconds count every thread of the process: on a shared machine they show the work itself.

    Steady state, not the first calls: after the compiling call the instance runs for WARMUP_SECONDS
    untimed (a millisecond call's first few repeats are up to 2× slower while the helper thread and the
    caches warm up), then at least `repeats` timed calls and more until TIMED_SECONDS (≤ MAX_REPEATS)."""

    def __init__(self, cfg: ExactBenchConfig):
        self.cfg, self.seconds = cfg, {}

    def __call__(self, nc, sc, L, d, K, args=None, repeats=None):
        key = (nc, sc, L, d, K if K and K < nc**L else 0)
        if key not in self.seconds:
            args = args if args is not None else _instance(*key, seed=1)
            fn = lambda: _risk_and_grads(args, self.cfg.layernorm, "numba")  # noqa: E731
            fn()                                                          # compile
            _run_for(fn, WARMUP_SECONDS)                                  # warm up
            runs = [timed(fn) for _ in range(repeats or self.cfg.repeats)]
            while sum(r[0] for r in runs) < TIMED_SECONDS and len(runs) < MAX_REPEATS:
                runs.append(timed(fn))
            times = np.array(runs)                                        # (repeats, 2) wall, CPU
            self.seconds[key] = tuple(float(t) for t in np.median(times, axis=0))
        return self.seconds[key]


def _targets(cfg, timer, ctx) -> None:
    for nc, sc, L, d, K, limit in TARGETS:
        seconds, cpu = timer(nc, sc, L, d, K, repeats=min(3, cfg.repeats) if limit >= 1 else None)
        n, met = data.sentence_count(K, sc, L), seconds <= limit
        ctx.emit(f"target: nc={nc} sc={sc} L={L} d={d} K={K} ({n:,} sentences), risk + gradient in <= "
                 f"{limit * 1e3:g} ms on 2 cores: {seconds * 1e3:.1f} ms (CPU {cpu * 1e3:.1f} ms)  "
                 f"{'met' if met else 'NOT met'}",
                 {"target": f"nc={nc} sc={sc} L={L} d={d} K={K}", "sentences": n, "seconds": seconds,
                  "cpu_seconds": cpu, "limit_seconds": limit, "met": met})


def _scaling_times(cfg) -> dict:
    """Median (wall, CPU) seconds per scaling size (K, sc, L), the sizes timed in turn: after each size's
    compiling call, ROUNDS rounds, each running every size for ROUND_WARMUP seconds untimed, then for at
    least ROUND_SECONDS timed (one call at least of each); the median is over all of a size's timed calls.
    The untimed calls are not a formality: right after a 0.4 s call of the largest size, K = 81 calls ran
    40% slower for about 0.1 s and 20% slower until 0.4 s on the 2-core VM (docs/exact-kernel.md)."""
    sizes = [(K, sc, L) for K, sc, L in SCALING if K <= cfg.nc**L]
    calls = {}
    for K, sc, L in sizes:
        args = _instance(cfg.nc, sc, L, cfg.d, K, seed=1)
        calls[K, sc, L] = functools.partial(_risk_and_grads, args, cfg.layernorm, "numba")
        calls[K, sc, L]()                                                 # compile
    runs = {size: [] for size in sizes}
    for _ in range(ROUNDS):
        for size, fn in calls.items():
            _run_for(fn, ROUND_WARMUP)                                    # settle after the other sizes
            start = time.perf_counter()
            runs[size].append(timed(fn))
            while time.perf_counter() - start < ROUND_SECONDS:
                runs[size].append(timed(fn))
    return {size: tuple(float(t) for t in np.median(np.array(r), axis=0)) for size, r in runs.items()}


def _run_for(fn, seconds) -> None:
    """Call `fn` (untimed) once, then until `seconds` have passed."""
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < seconds:
        fn()


def _scaling(cfg, ctx) -> None:
    per_unit = []
    for (K, sc, L), (seconds, cpu) in _scaling_times(cfg).items():
        n = data.sentence_count(K, sc, L)
        per_unit.append(seconds / (K * n) * 1e9)
        record = {"K": K, "sc": sc, "L": L, "sentences": n, "numba_seconds": seconds, "cpu_seconds": cpu,
                  "ns_per_unit": per_unit[-1], "cpu_ns_per_unit": cpu / (K * n) * 1e9}
        ctx.emit(f"  scaling K={K:4d} sc={sc} L={L}: {n:>9,} sentences  {seconds:.4f} s  "
                 f"{per_unit[-1]:.3f} ns per K²·sc^L unit (CPU {record['cpu_ns_per_unit']:.3f})", record)
    if per_unit:
        ratio = max(per_unit) / min(per_unit)
        ctx.emit(f"  ns per K²·sc^L unit: {min(per_unit):.3f} .. {max(per_unit):.3f}, max/min {ratio:.2f}: "
                 f"{'flat' if ratio <= 2 else 'NOT flat'} within 2x",
                 {"scaling_max_over_min": ratio, "flat_within_2x": ratio <= 2})


def run(cfg: ExactBenchConfig, ctx) -> bool:
    args = _instance(cfg.nc, cfg.sc, cfg.L, cfg.d, cfg.K)
    K, n = len(args[2]), data.sentence_count(len(args[2]), cfg.sc, cfg.L)
    ctx.info(f"exact risk + gradient of {'h*' if cfg.layernorm else 'h'}: nc={cfg.nc} sc={cfg.sc} L={cfg.L} "
             f"d={cfg.d} K={K}, {n:,} sentences, Zipf µ")
    err = _check(args, cfg.layernorm)
    row = {"K": K, "sc": cfg.sc, "L": cfg.L, "d": cfg.d, "sentences": n, "check_max_rel_err": err,
           "check_passed": err <= TOLERANCE}
    if not row["check_passed"]:
        ctx.emit(f"numba kernel disagrees with the NumPy reference: max rel err {err:.2e} > {TOLERANCE:g}; "
                 "not timed", {**row, "numba_seconds": None, "numpy_seconds": None, "speedup": None})
        return False
    timer = _Timer(cfg)
    t_numba, cpu = timer(cfg.nc, cfg.sc, cfg.L, cfg.d, cfg.K, args=args)
    if cfg.targets:
        _targets(cfg, timer, ctx)
    t_numpy = float("nan")
    if cfg.numpy_repeats:
        t_numpy = median_seconds(lambda: _risk_and_grads(args, cfg.layernorm, "numpy"), cfg.numpy_repeats)
    row.update(numba_seconds=t_numba, numba_cpu_seconds=cpu, numpy_seconds=t_numpy, speedup=t_numpy / t_numba,
               ns_per_unit=t_numba / (K * n) * 1e9)
    versus = (f"numpy {t_numpy:.3f} s   speed-up {row['speedup']:.0f}x" if cfg.numpy_repeats
              else "numpy not timed (--numpy-repeats 0)")
    ctx.emit(f"numba {t_numba * 1e3:.1f} ms (CPU {cpu * 1e3:.1f} ms)   {versus}   "
             f"({row['ns_per_unit']:.3f} ns per K²·sc^L unit; check vs NumPy: max rel err {err:.1e} ok)", row)
    if cfg.scaling:
        _scaling(cfg, ctx)
    return True


SPECS = [Spec("exact", ExactBenchConfig, run, "Time the exact true risk + gradient (Numba vs NumPy).")]
