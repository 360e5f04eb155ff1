"""Full-batch gradient descent on the DUFM for many runs at once, and what each run ended at.

    init_batch            orthogonal (× gain) or isotropic Gaussian initializations, one seed per run
    gradient_descent      θ ← θ − η ∇L(θ), fixed η, on the compiled twin (batched) or the NumPy reference
    summarize             per run: final loss, singular values of Z, end point (DNC / low rank r / …),
                          NC1–NC4 per layer and Lemma 1's balancedness residuals
    train_seeds           the three above for seeds 0..seeds−1 (what the training figures run)
    default_steps         max(20/(η λ), 20000): ~20 e-folds of weight decay, when the structure is readable

Batched parameters are lists [H_1 (R, d, Kn), W_1 (R, d, d), …, W_L (R, K, d)]: run r is
``[p[r] for p in params]``.  This module chooses the backend: ``"numba"`` runs
:func:`refimpl.dufm.model_numba.gradient_descent_batch` (see it for the stopping rule), ``"numpy"`` loops
:func:`refimpl.dufm.model.loss_and_grads` over runs and steps; both take the same steps in the same order
(tests check that they agree).
"""

import dataclasses
import math
import time

import numpy as np

from refimpl import progress, validate
from refimpl.dufm import model, nc_metrics
from refimpl.dufm.structures import haar_orthogonal
from refimpl.errors import RunError
from refimpl.validate import choice, nonneg_int, nonneg_number, positive_int, positive_number, width

INITS = ("orthogonal", "gaussian")
CHUNK = 5000          # steps per kernel call on the Numba path (drives the progress bar)


def default_steps(lr: float, lam: float) -> int:
    """max(20/(η λ), 20000): after ~20 e-folds of the weight decay e^{−ηλt} the end point is readable."""
    return int(max(np.ceil(20.0 / (lr * lam)) if lam > 0 else 20000, 20000))


def init_params(K: int, d: int, L: int, seed: int, *, n: int = 1, init: str = "orthogonal",
                gain: float = 1.0) -> list:
    """One run's [H_1 (d, Kn), W_1 (d, d), …, W_L (K, d)] from ``np.random.default_rng(seed)``.

    orthogonal: each matrix has orthonormal columns or rows (W_l orthogonal), times ``gain``;
    gaussian: i.i.d. N(0, gain²/d) entries (the same scale: singular values near ``gain``).
    K, d, L, n must be positive integers with d ≥ K (InputError otherwise: L = 0 is no model).
    """
    K, L, n = (positive_int(name, v) for name, v in (("K", K), ("L", L), ("n", n)))
    d = width(d, K)
    choice("init", init, INITS)
    gain = positive_number("gain", gain)
    rng = np.random.default_rng(seed)
    shapes = [(d, K * n)] + [(d, d)] * (L - 1) + [(K, d)]
    if init == "orthogonal":
        return [gain * haar_orthogonal(rng, *s) for s in shapes]
    return [rng.standard_normal(s) * gain / np.sqrt(d) for s in shapes]


def init_batch(K, d, L, seeds, **kwargs) -> list:
    """Batched initializations, one run per seed: [H_1 (R, d, Kn), …, W_L (R, K, d)]."""
    runs = [init_params(K, d, L, int(s), **kwargs) for s in seeds]
    return [np.stack(ms) for ms in zip(*runs, strict=True)]


@dataclasses.dataclass
class Trained:
    """Result of :func:`gradient_descent` for R runs.

    params: the trained batch; loss, grad_norm (R,): L(θ) and ‖∇L(θ)‖ at the returned parameters
    (recomputed with the NumPy reference); steps (R,): steps taken; diverged_at (R,): step whose loss
    was not finite (−1: none); history (R, T): the loss every ``record_every`` steps; seconds: wall time.
    """

    params: list
    loss: np.ndarray
    grad_norm: np.ndarray
    steps: np.ndarray
    diverged_at: np.ndarray
    history: np.ndarray
    seconds: float


def _numpy_run(p, lam, lr, steps, tol, model_name, power, check_every, record_every, history):
    """The NumPy reference of one run, with the kernel's schedule; returns (params, steps, diverged)."""
    for t in range(steps):
        record = record_every > 0 and t % record_every == 0
        measure = record or (check_every > 0 and t % check_every == 0)
        with np.errstate(over="ignore", invalid="ignore"):
            loss, grads = model.loss_and_grads(p, lam=lam, model=model_name, power=power)
        if record:
            history[t // record_every] = loss
        if not np.isfinite(loss):
            return p, t + 1, t
        p = [x - lr * g for x, g in zip(p, grads, strict=True)]
        if measure and np.sqrt(sum(float(np.vdot(g, g)) for g in grads)) <= tol:
            return p, t + 1, -1
    return p, steps, -1


def _kernel_chunks(params, lam, lr, steps, tol, model_name, power, check_every, record_every, bar):
    """Run the kernel in chunks of steps (for the progress bar); stopped runs leave the batch."""
    from refimpl.dufm import model_numba as kernel  # imported here: Numba loads only for this backend
    R = params[0].shape[0]
    done, diverged = np.zeros(R, dtype=np.int64), np.full(R, -1)
    history = np.full((R, -(-steps // record_every) if record_every else 0), np.nan)
    active = np.ones(R, dtype=bool)
    # The kernel counts steps from 0 in every call and evaluates at t ≡ 0 mod check_every / record_every,
    # so a chunk must be a multiple of both periods (their lcm) to keep the reference's global schedule.
    unit = math.lcm(max(record_every, 1), max(check_every, 1))
    chunk = unit * max(1, CHUNK // unit)
    params = [p.copy() for p in params]
    while done.max(initial=0) < steps and active.any():
        idx = np.flatnonzero(active)
        start = int(done[idx[0]])
        todo = min(chunk, steps - start)
        sub, out, hist = kernel.gradient_descent_batch(
            [p[idx] for p in params], lam=lam[idx], lr=lr[idx], steps=todo, tol=tol, model=model_name,
            power=power, check_every=check_every, record_every=record_every)
        for p, q in zip(params, sub, strict=True):
            p[idx] = q
        if record_every:
            history[idx, start // record_every:start // record_every + hist.shape[1]] = hist
        done[idx] += out[:, 2].astype(np.int64)
        stopped = (out[:, 2] < todo) | (out[:, 1] <= tol) | (out[:, 3] >= 0)   # also on a last step
        diverged[idx[out[:, 3] >= 0]] = start + out[out[:, 3] >= 0, 3]
        active[idx[stopped]] = False
        bar.update(todo)
    return params, done, diverged, history


def gradient_descent(params, *, lam, lr, steps, tol=0.0, model_name="linear", power=None,
                     backend=validate.DEFAULT_BACKEND, check_every=10, record_every=0,
                     show_progress=False) -> Trained:
    """Full-batch gradient descent with a fixed learning rate on every run of a batch.

    Parameters
    ----------
    params : batched [H_1 (R, d, Kn), W_1 (R, d, d), …, W_L (R, K, d)] (not modified).
    lam, lr : float or ndarray of shape (R,) — seeds × hyper-parameters in one batch.
    steps : step budget; tol : stop once ‖∇L‖ ≤ tol (checked every ``check_every`` steps).
    model_name, power : as in :func:`refimpl.dufm.model.loss_and_grads`.
    backend : "numba" (the compiled twin, batched, parallel over runs; the default,
        :data:`refimpl.validate.DEFAULT_BACKEND`) or "numpy" (the reference, loop over runs).
    """
    backend, steps, tol = validate.backend(backend), positive_int("steps", steps), nonneg_number("tol", tol)
    check_every = nonneg_int("check_every", check_every)
    record_every = nonneg_int("record_every", record_every)
    R = params[0].shape[0]
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), (R,)).copy()
    lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), (R,)).copy()
    for value in lr:
        positive_number("lr", value)
    for r in range(R):
        model.check_params([p[r] for p in params], lam=lam[r], model=model_name, power=power)
    t0 = time.perf_counter()
    with progress.bar(steps * (R if backend == "numpy" else 1), f"GD {R} runs",
                      enabled=show_progress) as bar:
        if backend == "numba":
            out, done, diverged, history = _kernel_chunks(params, lam, lr, steps, tol, model_name, power,
                                                          check_every, record_every, bar)
        else:
            history = np.full((R, -(-steps // record_every) if record_every else 0), np.nan)
            runs, done, diverged = [], np.zeros(R, dtype=np.int64), np.full(R, -1)
            for r in range(R):
                p, done[r], diverged[r] = _numpy_run([x[r].copy() for x in params], lam[r], lr[r], steps,
                                                     tol, model_name, power, check_every, record_every,
                                                     history[r])
                runs.append(p)
                bar.update(steps)
            out = [np.stack(ms) for ms in zip(*runs, strict=True)]
    seconds = time.perf_counter() - t0
    loss, gnorm = np.empty(R), np.empty(R)
    with np.errstate(all="ignore"):
        for r in range(R):
            f, g = model.loss_and_grads([p[r] for p in out], lam=lam[r], model=model_name, power=power)
            loss[r], gnorm[r] = f, np.sqrt(sum(float(np.vdot(x, x)) for x in g))
    return Trained(out, loss, gnorm, done, diverged, history, seconds)


def summarize(trained: Trained, *, model_name="linear", power=None, n=1) -> list[dict]:
    """Per run: loss, gradient norm, steps, divergence, singular values of Z (normalized), the end
    point (:func:`refimpl.dufm.nc_metrics.classify`), NC1–NC3 per layer and the balancedness residuals."""
    rows = []
    for r in range(trained.params[0].shape[0]):
        p = [x[r] for x in trained.params]
        row = {"loss": float(trained.loss[r]), "grad_norm": float(trained.grad_norm[r]),
               "steps": int(trained.steps[r]), "diverged_at": int(trained.diverged_at[r])}
        if trained.diverged_at[r] >= 0 or not all(np.all(np.isfinite(x)) for x in p):
            rows.append({**row, "end": "diverged", "rank": -1})
            continue
        Z, (Hs, Lams, _, _, _) = model.forward(p, model=model_name, power=power)
        end = nc_metrics.classify(Z, n)
        row.update(end=end.kind, rank=end.rank, sv=end.sv.tolist(), dnc_distance=end.dnc_distance,
                   superior=end.superior, balancedness=nc_metrics.balancedness(p).tolist())
        feats = Hs                                                        # H_1 … H_{L+1} = Z
        row["nc1"] = [nc_metrics.nc1(H, n) for H in feats]
        row["nc2"] = [nc_metrics.nc2(H, n, center=model_name != "linear") for H in feats]
        row["nc3"] = [nc_metrics.nc3_subspace(p[l], Lams[l - 1], n, center=model_name != "linear")
                      for l in range(1, len(p))]
        rows.append(row)
    return rows


def check_seed_options(*, seeds, lr, gain, steps, init) -> None:
    """Validate the options of :func:`train_seeds` that do not depend on the model (figure configs call
    this before any training): seeds ≥ 1, lr > 0, gain > 0, steps ≥ 0 (0: :func:`default_steps`)."""
    positive_int("seeds", seeds)
    positive_number("lr", lr)
    positive_number("gain", gain)
    nonneg_int("steps", steps)
    choice("init", init, INITS)


def train_seeds(K, d, L, *, lam, lr, steps, seeds, init="orthogonal", gain=1.0, model_name="linear",
                power=None, show_progress=False):
    """Train runs from seeds 0..seeds−1: :func:`init_batch`, :func:`gradient_descent`, :func:`summarize`.

    steps = 0 means :func:`default_steps` (lr, lam).  Returns (Trained, one summary row per run, steps);
    a run whose loss became non-finite is a RunError naming its seed and step.
    """
    check_seed_options(seeds=seeds, lr=lr, gain=gain, steps=steps, init=init)
    steps = steps or default_steps(lr, lam)
    params = init_batch(K, d, L, range(seeds), init=init, gain=gain)
    trained = gradient_descent(params, lam=lam, lr=lr, steps=steps, model_name=model_name, power=power,
                               show_progress=show_progress)
    bad = np.flatnonzero(trained.diverged_at >= 0)
    if bad.size:
        r = int(bad[0])
        raise RunError(f"run seed {r} diverged (K = {K}, d = {d}, L = {L}, λ = {lam:g}, lr = {lr:g}): the "
                       f"loss became non-finite at step {int(trained.diverged_at[r])}"
                       + (f" ({bad.size - 1} more runs too)" if bad.size > 1 else "") + "; try a smaller lr")
    return trained, summarize(trained, model_name=model_name, power=power), steps
