"""The plain SGD trainer of *Feature collapse* (section 2), as in its authors' runs.

Mini-batches of 100 reshuffled every epoch, constant learning rate 0.1, coupled weight decay per
parameter group (θ ← θ − lr·(∂ℓ/∂θ + λ_θ θ): W gets λ for h and nothing for h*, U gets λ), initialization
PyTorch's default divided by 1000 (embedding N(0, 1)/1000, linear U(±1/√(Ld))/1000). Deterministic for a
given seed and backend: the initialization and every epoch's permutation come from their own seeded
streams, so a run resumed from a checkpoint continues exactly as the uninterrupted run.
"""

import dataclasses
import hashlib
import json
import time
import zipfile
from pathlib import Path

import numpy as np

from refimpl import fileio, progress
from refimpl.errors import InputError, RunError, require
from refimpl.feature_collapse import model
from refimpl.feature_collapse.data import Task
from refimpl.feature_collapse.settings import PRESETS, FeatureCollapseConfig, TrainConfig

_INIT_STREAM, _SHUFFLE_STREAM = 1, 2


@dataclasses.dataclass
class TrainResult:
    """Trained weights and what was measured along the way."""

    W: np.ndarray               # (d, nw)
    U: np.ndarray               # (K, L·d)
    history: list               # one dict per epoch: epoch, train_loss, train_accuracy[, test_accuracy]
    seconds: float

    @property
    def train_loss(self) -> float:
        return self.history[-1]["train_loss"] if self.history else float("nan")

    @property
    def train_accuracy(self) -> float:
        return self.history[-1]["train_accuracy"] if self.history else float("nan")

    @property
    def test_accuracy(self) -> float:
        tested = [h["test_accuracy"] for h in self.history if "test_accuracy" in h]
        return tested[-1] if tested else float("nan")


def init_params(nw: int, d: int, K: int, L: int, *, seed: int = 0, scale: float = 1e-3,
                dtype="float32"):
    """The authors' initialization: W ~ N(0, 1)·scale, U ~ U(±1/√(Ld))·scale.

    Returns
    -------
    W : ndarray of shape (d, nw), Fortran-ordered (each embedding contiguous).
    U : ndarray of shape (K, L·d), C-ordered (each row k = [u_{k,1} … u_{k,L}] contiguous).
    """
    rng = np.random.default_rng([seed, _INIT_STREAM])
    W = rng.standard_normal((nw, d)).T * scale                           # (d, nw), F-ordered
    bound = 1.0 / np.sqrt(L * d)
    U = rng.uniform(-bound, bound, size=(K, L * d)) * scale               # (K, L·d)
    return np.asfortranarray(W, dtype=dtype), np.ascontiguousarray(U, dtype=dtype)


def stepper(W, U, cfg: TrainConfig):
    """``step(tokens, labels) -> (batch-mean loss, number correct)``: one SGD step in place on W, U.

    numpy: :func:`refimpl.feature_collapse.model.sgd_step`; numba: its fused twin
    :func:`refimpl.feature_collapse.model_numba.sgd_step_fused` on Wᵀ (a C-ordered view of the F-ordered
    W) with one workspace reused across steps.
    """
    kw = cfg.step_settings()
    if cfg.backend == "numpy":
        return lambda tokens, labels: model.sgd_step(W, U, tokens, labels, **kw)
    from refimpl.feature_collapse import model_numba
    workspace = [None]

    def step(tokens, labels):
        loss, correct, workspace[0] = model_numba.sgd_step_fused(W.T, U, tokens, labels, ws=workspace[0],
                                                                 **kw)
        return loss, correct
    return step


def accuracy(W, U, tokens, labels, cfg: TrainConfig) -> float:
    """Fraction of sentences whose argmax score is their class."""
    pred = model.predict(W, U, tokens, layernorm=cfg.layernorm, eps=cfg.eps)
    return float(np.mean(pred == labels))


def _run_epoch(step, task: Task, cfg: TrainConfig, epoch: int):
    N = len(task.train_labels)
    perm = np.random.default_rng([cfg.seed, _SHUFFLE_STREAM, epoch]).permutation(N)
    losses, correct = [], 0
    for start in range(0, N, cfg.batch):
        idx = perm[start:start + cfg.batch]
        loss, c = step(task.train_tokens[idx], task.train_labels[idx])
        if not np.isfinite(loss):
            raise RunError(f"training diverged: the loss became {loss} at epoch {epoch}, "
                           f"step {start // cfg.batch + 1} (lr = {cfg.lr}); try a smaller lr")
        losses.append(loss)
        correct += c
    return float(np.mean(losses)), correct / N


def default_checkpoint_every(epochs: int) -> int:
    """Epochs between checkpoints when not given: max(1, min(50, epochs // 10)) — at least ten per run up to
    500 epochs (figure 4(a)'s 10 epochs: every epoch), every 50 beyond."""
    return max(1, min(50, epochs // 10))


def _warm_up(task: Task, cfg: TrainConfig, show_progress: bool):
    """Compile the twin's kernels for this dtype on a copy of one small batch, before the progress bar
    starts (so that its remaining-time estimate does not count a first run's compilation)."""
    if cfg.backend != "numba":
        return
    from refimpl.feature_collapse import model_numba
    W, U = init_params(task.nw, cfg.d, task.K, task.L, seed=cfg.seed, scale=cfg.init_scale, dtype=cfg.dtype)
    n = min(2, len(task.train_labels))
    with progress.notice_while("compiling the Numba kernels (first run on this machine only)", show_progress):
        model_numba.sgd_step_fused(W.T, U, task.train_tokens[:n], task.train_labels[:n],
                                   **cfg.step_settings())
        accuracy(W, U, task.test_tokens[:n], task.test_labels[:n], cfg)


def train(task: Task, cfg: TrainConfig, *, show_progress: bool = False, checkpoint=None,
          resume: bool = False, checkpoint_every: int = 0, log=None) -> TrainResult:
    """Train h (or h*) on ``task`` with plain SGD; see the module docstring.

    ``checkpoint``: path of an .npz written every ``checkpoint_every`` epochs (0: the default of
    :func:`default_checkpoint_every`) and at the end; ``resume``: continue from it (same task and settings,
    possibly more epochs). ``log(text)`` receives a line at epoch 1, every ``test_every`` epochs and at the
    end (above the progress bar when there is one).
    """
    W, U = init_params(task.nw, cfg.d, task.K, task.L, seed=cfg.seed, scale=cfg.init_scale,
                       dtype=cfg.dtype)
    history, first = [], 1
    if resume:
        require(checkpoint is not None, "resume needs a checkpoint path")
        W, U, history = load_checkpoint(checkpoint, task, cfg)
        first = len(history) + 1
    step = stepper(W, U, cfg)
    checkpoint_every = checkpoint_every or default_checkpoint_every(cfg.epochs)
    _warm_up(task, cfg, show_progress)
    t0 = time.perf_counter()
    with progress.bar(max(cfg.epochs - first + 1, 0), "train", show_progress) as bar:
        say = bar.log if show_progress else log
        for epoch in range(first, cfg.epochs + 1):
            loss, acc = _run_epoch(step, task, cfg, epoch)
            record = {"epoch": epoch, "train_loss": loss, "train_accuracy": acc}
            if epoch == 1 or epoch % cfg.test_every == 0 or epoch == cfg.epochs:
                record["test_accuracy"] = accuracy(W, U, task.test_tokens, task.test_labels, cfg)
                if say is not None:
                    say(f"epoch {epoch}/{cfg.epochs}  train loss {loss:.3e}  train accuracy "
                        f"{acc:.1%}  test accuracy {record['test_accuracy']:.1%}")
            history.append(record)
            bar.update(1, f"loss {loss:.2e} acc {acc:.1%}")
            if checkpoint is not None and (epoch % checkpoint_every == 0 or epoch == cfg.epochs):
                save_checkpoint(checkpoint, W, U, history, task, cfg)
    return TrainResult(W, U, history, time.perf_counter() - t0)


def _fingerprint(task: Task, cfg: TrainConfig) -> dict:
    """What a checkpoint must agree on to be resumed: every setting but `epochs`, the sizes, the data."""
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "epochs"}
    data_hash = hashlib.sha256()
    for array in (task.Z, task.train_tokens, task.train_labels):
        data_hash.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    return {**settings, "K": task.K, "L": task.L, "nw": task.nw, "data": data_hash.hexdigest()}


def save_checkpoint(path, W, U, history, task: Task, cfg: TrainConfig) -> None:
    fileio.save_npz(path, W=W, U=U, history=json.dumps(history),
                    fingerprint=json.dumps(_fingerprint(task, cfg), sort_keys=True))


def load_checkpoint(path, task: Task, cfg: TrainConfig):
    """(W, U, history) from a checkpoint written by the same task and settings; InputError otherwise,
    naming the first setting that differs."""
    path = Path(path)
    require(path.is_file(), f"checkpoint {path} does not exist (or is not a file)")
    require(zipfile.is_zipfile(path), f"checkpoint {path} is not a checkpoint written by refimpl "
                                      "(not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as f:
            W, U = f["W"], f["U"]
            history, saved = json.loads(str(f["history"])), json.loads(str(f["fingerprint"]))
    except Exception as e:  # any unreadable archive: one line naming it
        raise InputError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}".splitlines()[0]) from None
    want = _fingerprint(task, cfg)
    differ = [k for k in sorted(set(want) | set(saved)) if want.get(k) != saved.get(k)]
    if differ:
        k = differ[0]
        what = "the training data (latent variables or sentences)" if k == "data" else k
        raise InputError(f"checkpoint {path} was written with different settings: {what} is "
                         f"{saved.get(k, 'missing')!r} there, {want.get(k)!r} here"
                         + (f" (and {len(differ) - 1} more)" if len(differ) > 1 else ""))
    require(len(history) <= cfg.epochs,
            f"checkpoint {path} is at epoch {len(history)}, beyond epochs = {cfg.epochs}")
    return np.asfortranarray(W), np.ascontiguousarray(U), history


def train_run(cfg: FeatureCollapseConfig, progress: bool = False, log=None):
    """Build the task of a figure's configuration and train on it (checkpoint and resume as it says).

    Returns
    -------
    task : refimpl.feature_collapse.data.Task
    result : TrainResult
    """
    task = cfg.make_task()
    result = train(task, cfg.train_config(), show_progress=progress, log=log,
                   checkpoint=cfg.checkpoint or None, resume=cfg.resume,
                   checkpoint_every=cfg.checkpoint_every)
    return task, result


def train_preset(name: str, progress: bool = False, log=None, **overrides):
    """:func:`train_run` on the authors' run `name` (:data:`settings.PRESETS`), fields overridden."""
    return train_run(dataclasses.replace(PRESETS[name], **overrides), progress, log)
