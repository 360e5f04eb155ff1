"""``python cli.py bench dufm``: a sweep of independent DUFM gradient-descent runs, per implementation.

Default sweep: 16 runs (seeds 0..15), K = 10, d = 40, L = 2, λ = 1e-3, lr 1, 20,000 full-batch
steps each, float64, orthogonal initialization.  Timed:

* ``numpy``  — :func:`refimpl.dufm.train.gradient_descent` with ``backend="numpy"``: the reference
  :func:`refimpl.dufm.model.loss_and_grads`, looped over runs and steps;
* ``numba``  — :func:`refimpl.dufm.model_numba.gradient_descent_batch`, all runs and steps in one compiled
  call (prange over runs), with 1 thread and with all threads;
* ``torch-bmm`` — optional, when PyTorch is importable (never a dependency): autograd with all runs
  batched through ``bmm`` and a hand-written SGD update, with 1 thread and with all threads, over
  ``torch_steps`` steps (after the ``check_steps`` of the check, which also warm it up).

Before anything is timed, the kernel (and PyTorch) are checked against the NumPy reference run by run
over ``check_steps`` steps (:func:`refimpl.bench.common.max_rel_err` ≤ 1e-10 in float64: max |Δθ| / max |θ|
per matrix).  ``--json`` prints one object per line: impl, runs, steps, seconds, us_per_run_step
(+ threads, cpu_seconds — the CPU time of all the process's threads, which shows the cost per run-step
when other jobs share the cores — and the check).
"""

import dataclasses

import numba

from refimpl.bench.common import max_rel_err, timed, torch_available
from refimpl.dufm import model_numba as kernel
from refimpl.dufm import train as trainer
from refimpl.registry import Spec, option
from refimpl.validate import nonneg_int, nonneg_number, positive_int, positive_number, width

TOLERANCE = 1e-10
TARGET_US = 4.0     # the batched kernel at <= 4 us per run-step on 2 cores (the default sweep)


@dataclasses.dataclass(frozen=True)
class DUFMBenchConfig:
    runs: int = option(16, "independent runs (seeds 0..runs−1)")
    K: int = option(10, "classes")
    d: int = option(40, "width")
    L: int = option(2, "weight matrices after H_1")
    lam: float = option(1e-3, "weight decay λ")
    lr: float = option(1.0, "learning rate")
    steps: int = option(20_000, "gradient steps per run")
    numpy_steps: int = option(0, "steps timed for the NumPy reference (0: the same as --steps)")
    check_steps: int = option(200, "steps compared run by run before timing")
    repeats: int = option(3, "repeats of the Numba timing; the fastest is reported")
    torch: bool = option(True, "also time a batched-bmm PyTorch version when PyTorch is importable")
    torch_steps: int = option(1000, "steps timed for PyTorch (µs per run-step is what compares)")

    def __post_init__(self):
        for name in ("runs", "K", "L", "steps", "check_steps", "repeats", "torch_steps"):
            positive_int(name, getattr(self, name))
        width(self.d, self.K)
        nonneg_number("lam", self.lam)
        positive_number("lr", self.lr)
        nonneg_int("numpy_steps", self.numpy_steps)


def _numpy_descent(params, lam, lr, steps):
    """The reference run by run: :func:`refimpl.dufm.train.gradient_descent` on the NumPy backend."""
    return trainer.gradient_descent(params, lam=lam, lr=lr, steps=steps, backend="numpy").params


def _numba_descent(params, lam, lr, steps):
    """All runs and steps in one compiled call."""
    return kernel.gradient_descent_batch(params, lam=lam, lr=lr, steps=steps)[0]


def _torch_descent(params, lam, lr, steps, threads):
    """All runs batched through torch.bmm, gradients by autograd, plain SGD update; returns params."""
    import torch

    torch.set_num_threads(threads)
    ps = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    R, K = params[-1].shape[0], params[-1].shape[1]
    labels = torch.arange(K).repeat(R)                                    # column k of run r is class k
    for _ in range(steps):
        Z = ps[0]
        for W in ps[1:]:
            Z = torch.bmm(W, Z)                                           # (R, ·, K)
        fit = torch.nn.functional.cross_entropy(Z.transpose(1, 2).reshape(R * K, K), labels,
                                                reduction="sum") / K
        loss = fit + 0.5 * lam * sum((p * p).sum() for p in ps)
        grads = torch.autograd.grad(loss, ps)
        with torch.no_grad():
            for p, g in zip(ps, grads, strict=True):
                p -= lr * g
    return [p.detach().numpy() for p in ps]


def _record(ctx, impl, cfg, steps, seconds, cpu_seconds, threads, err):
    us = seconds / (cfg.runs * steps) * 1e6
    rec = {"impl": impl, "runs": cfg.runs, "steps": steps, "seconds": seconds, "us_per_run_step": us,
           "threads": threads, "cpu_seconds": cpu_seconds, "check_max_rel_err": err}
    ctx.emit(f"{impl:>10s} {threads} thread(s): {seconds:8.3f} s for {cfg.runs} runs x {steps} steps  "
             f"= {us:7.2f} us per run-step  (CPU {cpu_seconds / (cfg.runs * steps) * 1e6:6.2f} us; "
             f"check vs NumPy: {err:.1e})", rec)
    return us


def run(cfg: DUFMBenchConfig, ctx) -> bool:
    params = trainer.init_batch(cfg.K, cfg.d, cfg.L, range(cfg.runs))
    ctx.info(f"DUFM sweep: {cfg.runs} runs, K={cfg.K} d={cfg.d} L={cfg.L} lam={cfg.lam} lr={cfg.lr}, "
             f"{cfg.steps} steps, float64; Numba threads available: {numba.get_num_threads()}")
    want = _numpy_descent(params, cfg.lam, cfg.lr, cfg.check_steps)
    got = _numba_descent(params, cfg.lam, cfg.lr, cfg.check_steps)                    # also compiles
    err = max_rel_err(got, want)
    ok = err <= TOLERANCE
    if not ok:
        ctx.emit(f"numba kernel disagrees with the NumPy reference: {err:.2e} > {TOLERANCE}; not timed",
                 {"impl": "numba", "check_max_rel_err": err, "check_passed": False})
        return False
    n_steps = cfg.numpy_steps or cfg.steps
    _record(ctx, "numpy", cfg, n_steps, *timed(lambda: _numpy_descent(params, cfg.lam, cfg.lr, n_steps)), 1,
            0.0)
    all_threads = numba.get_num_threads()
    for threads in sorted({1, all_threads}):
        numba.set_num_threads(threads)
        times = [timed(lambda: _numba_descent(params, cfg.lam, cfg.lr, cfg.steps))
                 for _ in range(cfg.repeats)]
        us = _record(ctx, "numba", cfg, cfg.steps, *min(times), threads, err)
    numba.set_num_threads(all_threads)
    ctx.emit(f"numba, {all_threads} thread(s): {us:.2f} us per run-step; target: <= {TARGET_US} us "
             f"on 2 cores: {'met' if us <= TARGET_US else 'NOT met'}",
             {"impl": "numba", "target_us_per_run_step": TARGET_US, "us_per_run_step": us,
              "target_met": us <= TARGET_US})
    if cfg.torch and torch_available():
        t_err = max_rel_err(_torch_descent(params, cfg.lam, cfg.lr, cfg.check_steps, all_threads), want)
        if t_err > TOLERANCE:
            ctx.emit(f"torch disagrees with the NumPy reference: {t_err:.2e} > {TOLERANCE}; not timed",
                     {"impl": "torch-bmm", "check_max_rel_err": t_err, "check_passed": False})
            return False
        for threads in sorted({1, all_threads}):
            timing = timed(lambda t=threads: _torch_descent(params, cfg.lam, cfg.lr, cfg.torch_steps, t))
            _record(ctx, "torch-bmm", cfg, cfg.torch_steps, *timing, threads, t_err)
    return ok


SPECS = [Spec("dufm", DUFMBenchConfig, run,
              "Time a sweep of DUFM gradient-descent runs: NumPy reference vs batched Numba (vs PyTorch).")]
