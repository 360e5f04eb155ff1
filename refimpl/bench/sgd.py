"""``python cli.py bench sgd``: one SGD step of h* at the fig4c configuration, per backend and dtype.

Before timing, each implementation's loss and gradients are checked against the NumPy reference in float64
on the same batch (:func:`refimpl.bench.common.max_rel_err`). GFLOP/s counts the three GEMMs of a step
(scores, dU, dX), 2·B·Ld·K flops each. When PyTorch is importable (optional, never a dependency), the same
step written with ``torch.nn`` as in the authors' notebooks is checked and timed too.
"""

import dataclasses
import time

import numpy as np

from refimpl.bench.common import max_rel_err, torch_available
from refimpl.feature_collapse import model, sgd
from refimpl.feature_collapse.settings import PRESETS
from refimpl.registry import Spec, option

TOLERANCE = {"float64": 1e-10, "float32": 1e-4}  # max |Δ| / max |reference| of loss and gradients
FIG4C = PRESETS["fig4c"]


@dataclasses.dataclass(frozen=True)
class SGDBenchConfig:
    nc: int = option(FIG4C.nc, "concepts (fig4c)")
    nw: int = option(FIG4C.nw, "words (fig4c)")
    L: int = option(FIG4C.L, "sentence length (fig4c)")
    K: int = option(FIG4C.K, "classes (fig4c)")
    d: int = option(FIG4C.d, "embedding dimension (fig4c)")
    batch: int = option(FIG4C.batch, "mini-batch size (fig4c)")
    steps: int = option(200, "timed steps per repeat")
    repeats: int = option(5, "repeats; the median is reported")
    backends: tuple[str, ...] = option(("numba", "numpy"), "backends to time")
    dtypes: tuple[str, ...] = option(("float32", "float64"), "dtypes to time")
    torch: bool = option(True, "also time PyTorch when it is importable")

    def train_config(self, backend: str, dtype: str):
        """fig4c's training settings (h*, decay on U only) at this size, backend and dtype."""
        return dataclasses.replace(FIG4C, nc=self.nc, nw=self.nw, L=self.L, K=self.K, d=self.d,
                                   batch=self.batch, backend=backend, dtype=dtype)


def _problem(cfg: SGDBenchConfig, dtype: str):
    """fig4c's data at this size (seed 0), its first batches, and the authors' initialization."""
    task = cfg.train_config("numpy", dtype).make_task()
    perm = np.random.default_rng(0).permutation(len(task.train_labels))
    batches = [(task.train_tokens[perm[i:i + cfg.batch]], task.train_labels[perm[i:i + cfg.batch]])
               for i in range(0, len(perm) - cfg.batch + 1, cfg.batch)]
    W, U = sgd.init_params(cfg.nw, cfg.d, cfg.K, cfg.L, seed=0, dtype=dtype)
    return batches, W, U


def _grad_settings(cfg: SGDBenchConfig) -> dict:
    step = cfg.train_config("numpy", "float64").step_settings()
    return {k: v for k, v in step.items() if k != "lr"}


def _reference(cfg, W, U, tokens, labels):
    """Loss and gradients of the NumPy reference in float64 (the yardstick of every check)."""
    loss, dW, dU = model.loss_and_grads(W.astype(np.float64), U.astype(np.float64), tokens, labels,
                                        backend="numpy", **_grad_settings(cfg))
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
    want = _reference(cfg, W, U, *batches[0])
    loss, dW, dU = model.loss_and_grads(W, U, *batches[0], backend=backend, **_grad_settings(cfg))
    err = max_rel_err((np.array([loss]), dW, dU), want)
    return batches, sgd.stepper(W, U, cfg.train_config(backend, dtype)), err


def _torch(backend: str, dtype: str, cfg: SGDBenchConfig):
    """The fig4c step with torch.nn as in the authors' notebooks, checked against the reference."""
    import torch

    batches, W, U = _problem(cfg, dtype)
    step_kw = cfg.train_config("numpy", dtype).step_settings()
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    emb = torch.nn.Embedding(cfg.nw, cfg.d, dtype=tdtype)
    lnorm = torch.nn.LayerNorm(cfg.d, elementwise_affine=False, eps=step_kw["eps"])
    clf = torch.nn.Linear(cfg.L * cfg.d, cfg.K, bias=False, dtype=tdtype)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
        clf.weight.copy_(torch.from_numpy(U))
    criterion = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD([{"params": emb.parameters(), "weight_decay": step_kw["lam_W"]},
                           {"params": clf.parameters(), "weight_decay": step_kw["lam_U"]}], lr=step_kw["lr"])

    def loss_of(tokens, labels):
        scores = clf(lnorm(emb(tokens)).reshape(-1, cfg.L * cfg.d))
        return criterion(scores, labels), scores

    tokens, labels = (torch.from_numpy(a) for a in batches[0])
    loss, _ = loss_of(tokens, labels)
    loss = loss + 0.5 * step_kw["lam_U"] * (clf.weight ** 2).sum()
    dW, dU = torch.autograd.grad(loss, [emb.weight, clf.weight])
    err = max_rel_err((np.array([loss.item()]), dW.numpy().T, dU.numpy()), _reference(cfg, W, U, *batches[0]))

    def step(tokens, labels):
        opt.zero_grad()
        loss, scores = loss_of(tokens, labels)
        loss.backward()
        opt.step()
        return loss.item(), int((scores.argmax(dim=1) == labels).sum())

    return [tuple(torch.from_numpy(a) for a in b) for b in batches], step, err


def run(cfg: SGDBenchConfig, ctx):
    gemm_flops = 3 * 2 * cfg.batch * cfg.L * cfg.d * cfg.K
    ctx.info(f"one SGD step of h*, nc={cfg.nc} nw={cfg.nw} L={cfg.L} K={cfg.K} d={cfg.d} batch={cfg.batch}; "
             f"GFLOP/s counts the three GEMMs ({gemm_flops / 1e9:.2f} GFLOP)")
    impls = [(b, dt, _ours) for dt in cfg.dtypes for b in cfg.backends]
    if cfg.torch:
        if torch_available():
            impls += [("torch", dt, _torch) for dt in cfg.dtypes]
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


def _compare(rows, ctx):
    by = {(r["backend"], r["dtype"]): r["ms_per_step"] for r in rows}
    for dtype in ("float32", "float64"):
        if ("torch", dtype) in by and ("numba", dtype) in by:
            ratio = by[("numba", dtype)] / by[("torch", dtype)]
            ctx.emit(f"numba / torch ({dtype}): {ratio:.2f}",
                     {"backend": "numba/torch", "dtype": dtype, "ratio": ratio})


SPECS = [Spec("sgd", SGDBenchConfig, run, "Time one SGD step at the fig4c configuration (default).")]
