"""``python cli.py bench sgd``: one SGD step of h* at the fig4c configuration, per backend and dtype, and
the numba step's three GEMMs alone.

Before timing, each implementation's loss and gradients are checked against the NumPy reference in float64
on the same batch (:func:`refimpl.bench.common.max_rel_err`); a failed check is not timed and the command
exits 1. GFLOP/s counts the three GEMMs of a step (scores, dU, dX), 2·B·Ld·K flops each. When PyTorch is
importable (optional, never a dependency), the same step written with ``torch.nn`` as in the authors'
notebooks is checked and timed too.

Timing is interleaved, because the machine may be shared, in phases (per dtype: ours, its GEMMs and
PyTorch's; then the NumPy reference alone, whose OpenBLAS threads slow whatever runs next): every repeat
times `steps` steps of each implementation of a phase in chunks of CHUNK = 10 steps taken in turn, and
beside each numba step its three GEMMs alone
(:func:`refimpl.feature_collapse.model_numba.sgd_step_gemms`: the same BLAS calls on the same buffers).
A time is the median over repeats; a ratio is the median over chunks of the ratio of two neighbouring
chunks (taken under the same load); docs/sgd-step.md has the numbers. Targets, printed as
met / NOT met:

* the numba float32 step ≤ 1.08 × its own GEMMs (the passes around the GEMMs cost at most 8%);
* the numba float32 step ≤ 0.80 × PyTorch's, when MKL is the active BLAS (:func:`refimpl.blas.active`).
"""

import dataclasses
import time
from typing import Literal

import numpy as np

from refimpl import blas, validate
from refimpl.bench.common import max_rel_err, torch_available
from refimpl.errors import require
from refimpl.feature_collapse import model, model_numba, sgd
from refimpl.feature_collapse.settings import PRESETS
from refimpl.registry import Spec, option

TOLERANCE = {"float64": 1e-10, "float32": 1e-4}  # max |Δ| / max |reference| of loss and gradients
TARGETS = {"step/gemms": 1.08, "numba/torch": 0.80}  # float32; numba/torch with MKL only
CHUNK = 10                                           # steps timed in a row before the next implementation
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
    backends: tuple[Literal["numba", "numpy"], ...] = option(("numba", "numpy"), "backends to time")
    dtypes: tuple[Literal["float32", "float64"], ...] = option(("float32", "float64"), "dtypes to time")
    torch: bool = option(True, "also time PyTorch when it is importable")

    def __post_init__(self):
        for name in ("steps", "repeats"):
            validate.positive_int(name, getattr(self, name))
        require(len(self.backends) > 0 and len(self.dtypes) > 0, "backends and dtypes must list a value")
        for b in self.backends:
            validate.backend(b)
        for dt in self.dtypes:
            validate.choice("dtype", dt, ("float32", "float64"))
        self.train_config("numpy", "float32")                             # sizes validated up front

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

    return [tuple(torch.from_numpy(a) for a in b) for b in batches], {"torch": step}, err


def _ours(backend: str, dtype: str, cfg: SGDBenchConfig):
    """(batches, {name: step}, check error): the trainer's step, and for numba its three GEMMs alone."""
    batches, W, U = _problem(cfg, dtype)
    want = _reference(cfg, W, U, *batches[0])
    loss, dW, dU = model.loss_and_grads(W, U, *batches[0], backend=backend, **_grad_settings(cfg))
    err = max_rel_err((np.array([loss]), dW, dU), want)
    train = cfg.train_config(backend, dtype)
    if backend != "numba":
        return batches, {backend: sgd.stepper(W, U, train)}, err
    kw = train.step_settings()
    ws = model_numba.sgd_step_fused(W.T, U, *batches[0], **kw)[2]      # the workspace the step reuses

    def step(tokens, labels):                                          # sgd.stepper's call, ws kept here
        return model_numba.sgd_step_fused(W.T, U, tokens, labels, ws=ws, **kw)[:2]

    def gemms(tokens, labels):
        model_numba.sgd_step_gemms(U, ws, lr=kw["lr"], lam_U=kw["lam_U"])

    return batches, {"numba": step, "numba GEMMs": gemms}, err


def _phases(timed: dict) -> list:
    """The implementations timed together: per dtype ours, its GEMMs and PyTorch's (the ratios with
    targets compare these), then the NumPy reference on its own (NumPy's OpenBLAS threads spin after each
    call and slowed whichever implementation came next: PyTorch's float32 step took 17–19 ms beside them,
    10–12 ms without)."""
    dtypes = dict.fromkeys(dtype for _, dtype in timed)
    phases = [[k for k in timed if k[1] == dt and k[0] != "numpy"] for dt in dtypes]
    return [p for p in phases + [[k for k in timed if k[0] == "numpy"]] if p]


def _time(timed: dict, batches: dict, cfg: SGDBenchConfig) -> dict:
    """{name: seconds of each chunk}. Phase by phase (:func:`_phases`), each of the `repeats` runs `steps`
    steps of every implementation of the phase, interleaved in chunks of CHUNK steps so that all of them
    see the same load (after a warm-up)."""
    chunks = {name: [] for name in timed}
    for phase in _phases(timed):
        for name in phase:
            for i in range(10):
                timed[name](*batches[name][i % len(batches[name])])
        for _ in range(cfg.repeats):
            for start in range(0, cfg.steps, CHUNK):
                for name in phase:
                    b, step = batches[name], timed[name]
                    t0 = time.perf_counter()
                    for i in range(start, min(start + CHUNK, cfg.steps)):
                        step(*b[i % len(b)])
                    chunks[name].append(time.perf_counter() - t0)
    return chunks


def _ms_per_step(chunks: list, cfg: SGDBenchConfig) -> float:
    """Median over the repeats of the repeat's milliseconds per step."""
    per_repeat = np.asarray(chunks).reshape(cfg.repeats, -1).sum(axis=1)
    return float(np.median(per_repeat)) / cfg.steps * 1e3


def _verdict(value: float, target: float | None) -> str:
    return "" if target is None else f"  target ≤ {target:.2f}: {'met' if value <= target else 'NOT met'}"


def _prepare(cfg: SGDBenchConfig, ctx):
    """Check every implementation; ({(name, dtype): step}, {(name, dtype): batches}, {(backend, dtype):
    check error}) with only the implementations that passed their check in the first two."""
    impls = [(b, dt, _ours) for dt in cfg.dtypes for b in cfg.backends]
    if cfg.torch:
        if torch_available():
            impls += [("torch", dt, _torch) for dt in cfg.dtypes]
        else:
            ctx.info("PyTorch is not importable: no PyTorch comparison")
    timed, batches, checks = {}, {}, {}
    for backend, dtype, prepare in impls:
        b, steps, err = prepare(backend, dtype, cfg)
        checks[(backend, dtype)] = err
        if err <= TOLERANCE[dtype]:
            for name, step in steps.items():
                timed[(name, dtype)], batches[(name, dtype)] = step, b
    return timed, batches, checks


def run(cfg: SGDBenchConfig, ctx):
    flops = 3 * 2 * cfg.batch * cfg.L * cfg.d * cfg.K
    active = blas.active()
    ctx.info(f"one SGD step of h*, nc={cfg.nc} nw={cfg.nw} L={cfg.L} K={cfg.K} d={cfg.d} batch={cfg.batch}; "
             f"GFLOP/s counts the three GEMMs ({flops / 1e9:.2f} GFLOP); timed interleaved in chunks of "
             f"{CHUNK} steps, {cfg.repeats} repeats of {cfg.steps} steps, medians")
    ctx.emit(f"BLAS: {active.describe()}  [{active.library}]",
             {"blas": active.name, "version": active.version, "library": active.library})
    timed, batches, checks = _prepare(cfg, ctx)
    ms = _time(timed, batches, cfg)
    for (backend, dtype), err in checks.items():
        ok = err <= TOLERANCE[dtype]
        t = _ms_per_step(ms[(backend, dtype)], cfg) if ok else float("nan")
        row = {"backend": backend, "dtype": dtype, "ms_per_step": t, "gflops": flops / t / 1e6,
               "check_max_rel_err": err, "check_passed": ok}
        ctx.emit(f"{backend:>6} {dtype}: {t:7.3f} ms/step  {row['gflops']:6.1f} GFLOP/s   "
                 f"(check vs NumPy float64: max rel err {err:.1e} {'ok' if ok else 'FAILED'})", row)
        if ("numba GEMMs", dtype) in ms and backend == "numba":
            g = _ms_per_step(ms[("numba GEMMs", dtype)], cfg)
            ctx.emit(f"        its 3 GEMMs alone: {g:7.3f} ms       {flops / g / 1e6:6.1f} GFLOP/s   "
                     f"({active.name})", {"gemms": "numba", "dtype": dtype, "blas": active.name,
                                          "gemms_ms": g, "gemms_gflops": flops / g / 1e6})
    _compare(ms, active, ctx)
    return all(err <= TOLERANCE[dt] for (_, dt), err in checks.items())


def _ratio(ms, a, b) -> float:
    """Median over the chunks of a's time / b's time in the chunk timed next to it (the same load)."""
    return float(np.median(np.asarray(ms[a]) / np.asarray(ms[b])))


def _compare(ms, active, ctx):
    """The ratios and their targets (float32): step / its GEMMs; numba / torch (target with MKL only)."""
    for dtype in ("float32", "float64"):
        pairs = [("step/gemms", ("numba", dtype), ("numba GEMMs", dtype), "numba step / its GEMMs"),
                 ("numba/torch", ("numba", dtype), ("torch", dtype), "numba step / torch step")]
        for key, a, b, text in pairs:
            if a not in ms or b not in ms:
                continue
            value = _ratio(ms, a, b)
            applies = dtype == "float32" and (key != "numba/torch" or active.name == "mkl")
            target = TARGETS[key] if applies else None
            ctx.emit(f"{text} ({dtype}, {active.name}): {value:.3f}{_verdict(value, target)}",
                     {"ratio": key, "dtype": dtype, "blas": active.name, "value": value, "target": target,
                      "met": None if target is None else value <= target})


SPECS = [Spec("sgd", SGDBenchConfig, run, "Time one SGD step at the fig4c configuration (default).")]
