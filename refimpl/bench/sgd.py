"""``python cli.py bench sgd``: one SGD step of h* at the fig4c configuration, per backend and dtype.

Before timing, each backend's loss and gradients are checked against the NumPy reference on the same
batch. GFLOP/s counts the three GEMMs of a step (scores, dU, dX), 2·B·Ld·K flops each. When PyTorch is
importable (optional, never a dependency), the same step written with ``torch.nn`` as in the authors'
notebooks is checked and timed too.
"""

import dataclasses
import time

import numpy as np

from refimpl.feature_collapse import data, model, sgd
from refimpl.registry import Spec, option

TOLERANCE = {"float64": 1e-10, "float32": 1e-4}  # max |Δ| / max |reference| of loss and gradients


@dataclasses.dataclass(frozen=True)
class SGDBenchConfig:
    nc: int = option(3, "concepts (fig4c)")
    nw: int = option(1200, "words (fig4c)")
    L: int = option(15, "sentence length (fig4c)")
    K: int = option(1000, "classes (fig4c)")
    d: int = option(100, "embedding dimension (fig4c)")
    batch: int = option(100, "mini-batch size (fig4c)")
    steps: int = option(200, "timed steps per repeat")
    repeats: int = option(5, "repeats; the median is reported")
    backends: tuple[str, ...] = option(("numba", "numpy"), "backends to time")
    dtypes: tuple[str, ...] = option(("float32", "float64"), "dtypes to time")
    torch: bool = option(True, "also time PyTorch when it is importable")


def _problem(cfg: SGDBenchConfig, dtype: str):
    task = data.make_task(cfg.nc, cfg.nw, cfg.L, cfg.K, 5, freq="zipf", seed=0)
    perm = np.random.default_rng(0).permutation(len(task.train_labels))
    batches = [(task.train_tokens[perm[i:i + cfg.batch]], task.train_labels[perm[i:i + cfg.batch]])
               for i in range(0, len(perm) - cfg.batch + 1, cfg.batch)]
    W, U = sgd.init_params(cfg.nw, cfg.d, cfg.K, cfg.L, seed=0, dtype=dtype)
    return batches, W, U


STEP = dict(lr=0.1, lam_W=0.0, lam_U=1e-3, layernorm=True, eps=1e-5)  # fig4c: h*, decay on U only


def _max_rel_err(got, want) -> float:
    return max(float(np.max(np.abs(np.asarray(g, np.float64) - w)) / max(float(np.max(np.abs(w))), 1e-300))
               for g, w in zip(got, want, strict=True))


def _reference(W, U, tokens, labels):
    """Loss and gradients of the NumPy reference in float64 (the yardstick of every check)."""
    loss, dW, dU = model.loss_and_grads(W.astype(np.float64), U.astype(np.float64), tokens, labels,
                                        layernorm=True, lam_U=STEP["lam_U"], eps=STEP["eps"])
    return np.array([loss]), dW, dU


def _time(step, batches, cfg: SGDBenchConfig) -> float:
    """Median milliseconds per step over `repeats` runs of `steps` steps (after a warm-up)."""
    for i in range(10):
        step(*batches[i % len(batches)])
    times = []
    for _ in range(cfg.repeats):
        t0 = time.perf_counter()
        for i in range(cfg.steps):
            step(*batches[i % len(batches)])
        times.append((time.perf_counter() - t0) / cfg.steps * 1e3)
    return float(np.median(times))


def _ours(backend: str, dtype: str, cfg: SGDBenchConfig):
    batches, W, U = _problem(cfg, dtype)
    want = _reference(W, U, *batches[0])
    loss, dW, dU = model.loss_and_grads(W, U, *batches[0], layernorm=True, lam_U=STEP["lam_U"],
                                        eps=STEP["eps"], backend=backend)
    err = _max_rel_err((np.array([loss]), dW, dU), want)
    train_cfg = sgd.TrainConfig(d=cfg.d, backend=backend, dtype=dtype, layernorm=True, decay_W=False)
    return batches, sgd._stepper(W, U, train_cfg), err


def run(cfg: SGDBenchConfig, ctx):
    gemm_flops = 3 * 2 * cfg.batch * cfg.L * cfg.d * cfg.K
    ctx.info(f"one SGD step of h*, nc={cfg.nc} nw={cfg.nw} L={cfg.L} K={cfg.K} d={cfg.d} batch={cfg.batch}; "
             f"GFLOP/s counts the three GEMMs ({gemm_flops / 1e9:.2f} GFLOP)")
    impls = [(b, dt, _ours) for dt in cfg.dtypes for b in cfg.backends]
    if cfg.torch:
        from refimpl.bench import sgd_torch as torch_step
        if torch_step.available():
            impls += [("torch", dt, torch_step.prepare) for dt in cfg.dtypes]
        else:
            ctx.info("PyTorch is not importable: no PyTorch comparison")
    rows = []
    for backend, dtype, prepare in impls:
        batches, step, err = prepare(backend, dtype, cfg)
        ok = err <= TOLERANCE[dtype]
        ms = _time(step, batches, cfg) if ok else float("nan")
        row = {"backend": backend, "dtype": dtype, "ms_per_step": ms, "gflops": gemm_flops / ms / 1e6,
               "check_max_rel_err": err, "check_passed": ok}
        rows.append(row)
        ctx.emit(f"{backend:>6} {dtype}: {ms:7.3f} ms/step  {row['gflops']:6.1f} GFLOP/s   "
                 f"(check vs NumPy float64: max rel err {err:.1e} {'ok' if ok else 'FAILED'})", row)
    _compare(rows, ctx)
    return all(r["check_passed"] for r in rows)


TARGET_RATIO = 0.5  # issue 2: the Numba step in float32 at most half the time of the PyTorch step


def _compare(rows, ctx):
    by = {(r["backend"], r["dtype"]): r["ms_per_step"] for r in rows}
    for dtype in ("float32", "float64"):
        if ("torch", dtype) in by and ("numba", dtype) in by:
            ratio = by[("numba", dtype)] / by[("torch", dtype)]
            target = f"; target (issue 2) <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'NOT met'}"
            ctx.emit(f"numba / torch ({dtype}): {ratio:.2f}" + (target if dtype == "float32" else ""),
                     {"backend": "numba/torch", "dtype": dtype, "ratio": ratio,
                      **({"target_ratio": TARGET_RATIO, "target_met": ratio <= TARGET_RATIO}
                         if dtype == "float32" else {})})


SPECS = [Spec("sgd", SGDBenchConfig, run, "Time one SGD step at the fig4c configuration (default).")]
