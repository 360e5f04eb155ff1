"""The DUFM's compiled twin: :mod:`refimpl.dufm.model`'s passes in Numba, fused, parallel over runs.

Versions (each checked against the CPU reference in ``tests/dufm/test_model_numba.py``):

    loss_and_grads(params, *, lam, model, power)            one run: the twin of model.loss_and_grads
    loss_and_grads_batch(params_batch, *, lam, model, power) R runs, per-run λ: that pass for each run
    gradient_descent_batch(params_batch, *, lam, lr, steps, …) fuses forward + fit + backward (eq. 7)
        + update, all steps of a run in one compiled call, ``prange`` over the independent runs

CPU reference: :func:`refimpl.dufm.model.loss_and_grads`, pass by pass —

    model.forward (eqs. 1, 3, 4)            _forward     H_{l+1}ᵀ = Λ_lᵀ W_lᵀ, Zᵀ = Λ_Lᵀ W_Lᵀ, Λ_l = ζ(H_l)
    model.zeta, model.zeta_prime            _zeta, _times_zeta_prime
    model.cross_entropy / squared_error     _fit         G = ∂fit/∂Zᵀ, zero on the padding
    model.eq7_gradients / model.backward    _step        ∂W_L = Gᵀ Λ_Lᵀ, ∂Λ_Lᵀ = G W_L; for l < L with
                                                         g = ∂fit/∂H_{l+1}ᵀ: ∂W_l = gᵀ Λ_lᵀ (eq. 7:
                                                         A_{l+1}ᵀ M B_{l−1}ᵀ/(Kn)), ∂Λ_lᵀ = g W_l,
                                                         ∂H_l = ∂Λ_l ⊙ ζ'(H_l)
    the update θ ← θ − η(∂θ + λθ)           _update      ‖θ‖², ‖∇L‖² accumulated in the same pass

Layout of one run (:func:`to_layout`).  Every product is one small GEMM of :mod:`refimpl.dufm.small_gemm`
(rows of length d, register-blocked).  Sizes are padded with zeros — d to a multiple of 8 (D), K to a
multiple of 8 (Kp: the rows of Zᵀ then fill whole vectors; at K = 10 the output GEMM takes half the
time it takes padded to 12), Kn to a multiple of 2 (Np) — which changes nothing: zero features, weights
and samples get exactly zero gradient (the fit term skips padded classes and samples), so they stay
zero and only add exact zeros to the sums.

    Ht (Np, D) = H_1ᵀ      W, Wt (L−1, D, D) = W_l and W_lᵀ      WL (Kp, D), WLt (D, Kp)

Floating point: ``fastmath={"contract"}`` only (FMA; no re-association); the sums run in the order of a
plain triple loop, and the tests find agreement with the reference to ~1e-15.  float64 only.
Activation codes ``acts[l]`` (ζ applied to H_l before W_l, l = 1..L): 0 identity, −1 ReLU, p ≥ 2 the
Hadamard power x^p (from :func:`refimpl.dufm.model.activations`).
"""

import numba
import numpy as np
from numba import prange

from refimpl import compiled  # noqa: F401  (Numba settings first)
from refimpl.dufm.model import activations, check_params, checked_params
from refimpl.dufm.small_gemm import FM, gemm, gemm_tn, transpose
from refimpl.errors import require
from refimpl.validate import float_array, nonneg_int, nonneg_number, positive_int, positive_number

ACT_ID, ACT_RELU = 0, -1


@numba.njit(cache=True, fastmath=FM)
def _zeta(H, out, act):
    """out = ζ(H) element-wise: ReLU (act = −1) or H^p (act = p ≥ 2); H, out (Np, D)."""
    for s in range(H.shape[0]):
        for j in range(H.shape[1]):
            h = H[s, j]
            if act == ACT_RELU:
                out[s, j] = h if h > 0.0 else 0.0
            else:
                out[s, j] = h ** act


@numba.njit(cache=True, fastmath=FM)
def _times_zeta_prime(g, H, act):
    """g ⊙= ζ'(H): the mask H > 0 for ReLU, p H^{p−1} for the power p; g, H (Np, D)."""
    for s in range(H.shape[0]):
        for j in range(H.shape[1]):
            h = H[s, j]
            if act == ACT_RELU:
                if not h > 0.0:
                    g[s, j] = 0.0
            else:
                g[s, j] *= act * h ** (act - 1)


@numba.njit(cache=True, fastmath=FM)
def _layer_input(l, Ht, Hs, Lam, acts):
    """Λ_lᵀ (Np, D), the input of W_l: ζ(H_l) where acts[l] ≠ 0, else H_l (H_1 = the parameter)."""
    if acts[l] != ACT_ID:
        return Lam[l - 1]
    if l == 1:
        return Ht
    return Hs[l - 1]


@numba.njit(cache=True, fastmath=FM)
def _forward(Ht, Wt, WLt, acts, Hs, Lam, Z):
    """Zᵀ (Np, Kp) = (W_L Λ_L)ᵀ with H_{l+1} = W_l Λ_l (eqs. 1, 3, 4); fills Hs[l−1] = H_lᵀ, Lam."""
    L = acts.shape[0] - 1
    for l in range(1, L + 1):
        if acts[l] != ACT_ID:
            _zeta(Ht if l == 1 else Hs[l - 1], Lam[l - 1], acts[l])
        x = _layer_input(l, Ht, Hs, Lam, acts)
        if l < L:
            gemm(x, Wt[l - 1], Hs[l])                                     # (Np, D) H_{l+1}ᵀ
        else:
            gemm(x, WLt, Z)                                               # (Np, Kp) Zᵀ


@numba.njit(cache=True, fastmath=FM)
def _fit(Z, K, Kn, n, mse, G):
    """Fit term over the K×Kn real entries of Zᵀ (Np, Kp) and G = ∂fit/∂Zᵀ (zero on the padding).

    CE: g(Z)/(Kn), G = (P − Y)ᵀ/(Kn) (eq. 2, B.1);  MSE: ‖Z − Y‖²/(2Kn), G = (Z − Y)ᵀ/(Kn) (eq. 4).
    """
    G[:, :] = 0.0
    fit = 0.0
    for s in range(Kn):
        k = s // n
        if mse:
            for c in range(K):
                r = Z[s, c] - (1.0 if c == k else 0.0)
                fit += 0.5 * r * r
                G[s, c] = r / Kn
        else:
            mx = Z[s, 0]
            for c in range(1, K):
                mx = max(mx, Z[s, c])
            tot = 0.0
            for c in range(K):
                e = np.exp(Z[s, c] - mx)
                G[s, c] = e
                tot += e
            fit += np.log(tot) - (Z[s, k] - mx)
            for c in range(K):
                G[s, c] = G[s, c] / tot / Kn
            G[s, k] -= 1.0 / Kn
    return fit / Kn


@numba.njit(cache=True, fastmath=FM)
def _update(P, dP, lam, lr, acc_w, acc_g, grad_out, measure, store):
    """P ← P − η g with g = dP + λP, row by row;  P, dP (m, D).

    measure: also acc_w += P², acc_g += g² column-wise (for ‖θ‖² and ‖∇L‖²); store: grad_out = g.
    """
    for s in range(P.shape[0]):
        p, dp = P[s], dP[s]
        if store:
            for j in range(p.shape[0]):
                grad_out[s, j] = dp[j] + lam * p[j]
        if measure:
            for j in range(p.shape[0]):
                w = p[j]
                g = dp[j] + lam * w
                acc_w[j] += w * w
                acc_g[j] += g * g
                p[j] = w - lr * g
        else:
            for j in range(p.shape[0]):
                p[j] = p[j] - lr * (dp[j] + lam * p[j])


@numba.njit(cache=True, fastmath=FM)
def _step(Ht, W, Wt, WL, WLt, acts, dims, lam, lr, ws, gH, gW, gWL, measure, store):
    """One gradient step of one run, in place; returns (fit, ½‖θ‖², ‖∇L‖²) at the parameters before it
    (the two norms only when ``measure``, else NaN).

    dims = (K, Kn, n, mse); ws = (Hs, Lam, Z, G, gA, gB, dW, dWL, acc_w, acc_g), the run's work arrays.
    With store, the gradients (eq. 7 + λθ) are also written to gH, gW, gWL.
    """
    K, Kn, n, mse = dims
    Hs, Lam, Z, G, gA, gB, dW, dWL, acc_w, acc_g = ws
    L = acts.shape[0] - 1
    _forward(Ht, Wt, WLt, acts, Hs, Lam, Z)
    fit = _fit(Z, K, Kn, n, mse != 0, G)
    if not np.isfinite(fit):
        return fit, 0.0, 0.0
    acc_w[:] = 0.0
    acc_g[:] = 0.0
    x = _layer_input(L, Ht, Hs, Lam, acts)
    gemm_tn(G, x, dWL)                                                    # (Kp, D) ∂W_L = Gᵀ Λ_Lᵀ
    gemm(G, WL, gA)                                                       # (Np, D) ∂Λ_Lᵀ = G W_L
    _update(WL, dWL, lam, lr, acc_w, acc_g, gWL, measure, store)
    transpose(WL, WLt)
    g, gnext = gA, gB
    for l in range(L - 1, 0, -1):
        if acts[l + 1] != ACT_ID:
            _times_zeta_prime(g, Hs[l], acts[l + 1])                      # (Np, D) ∂H_{l+1}ᵀ
        x = _layer_input(l, Ht, Hs, Lam, acts)
        gemm_tn(g, x, dW)                                                 # (D, D) ∂W_l = gᵀ Λ_lᵀ
        gemm(g, W[l - 1], gnext)                                          # (Np, D) ∂Λ_lᵀ = g W_l
        _update(W[l - 1], dW, lam, lr, acc_w, acc_g, gW[l - 1], measure, store)
        transpose(W[l - 1], Wt[l - 1])
        g, gnext = gnext, g
    if acts[1] != ACT_ID:
        _times_zeta_prime(g, Ht, acts[1])                                 # (Np, D) ∂H_1ᵀ
    _update(Ht, g, lam, lr, acc_w, acc_g, gH, measure, store)
    if not measure:
        return fit, np.nan, np.nan
    return fit, 0.5 * acc_w.sum(), acc_g.sum()


@numba.njit(cache=True, fastmath=FM)
def _workspace(Np, Kp, D, L):
    """Work arrays of one run (allocated once per run, outside the step loop)."""
    return (np.zeros((L, Np, D)), np.zeros((L, Np, D)), np.zeros((Np, Kp)), np.zeros((Np, Kp)),
            np.zeros((Np, D)), np.zeros((Np, D)), np.zeros((D, D)), np.zeros((Kp, D)), np.zeros(D),
            np.zeros(D))


@numba.njit(cache=True, fastmath=FM)
def _run_one(Ht, W, Wt, WL, WLt, acts, dims, lam, lr, steps, tol, check_every, record_every,
             history, gH, gW, gWL, store):
    """``steps`` gradient steps of one run in place; returns (loss, ‖∇L‖, steps taken, diverged at).

    The loss and gradient norm are evaluated at steps t ≡ 0 mod check_every (or mod record_every), and
    always when store.  The run stops after an evaluated step whose gradient norm is ≤ tol, or at the
    first step whose fit term (or evaluated loss) is not finite (diverged at = that step, else −1).
    history[t // record_every] = loss at step t when record_every > 0.
    """
    ws = _workspace(Ht.shape[0], WL.shape[0], Ht.shape[1], acts.shape[0] - 1)
    loss, gnorm, done, diverged = np.nan, np.nan, 0, -1
    for t in range(steps):
        record = record_every > 0 and t % record_every == 0
        measure = store or record or (check_every > 0 and t % check_every == 0)
        fit, half_sq, grad_sq = _step(Ht, W, Wt, WL, WLt, acts, dims, lam, lr, ws, gH, gW, gWL, measure,
                                      store)
        done = t + 1
        if measure:
            loss, gnorm = fit + lam * half_sq, np.sqrt(grad_sq)
        if record:
            history[t // record_every] = loss
        if not (np.isfinite(fit) and np.isfinite(loss)):
            loss, diverged = fit + lam * half_sq, t
            break
        if measure and gnorm <= tol:
            break
    return loss, gnorm, done, diverged


@numba.njit(cache=True, parallel=True)
def _run_batch(Ht, W, Wt, WL, WLt, acts, dims, lam, lr, steps, tol, check_every, record_every,
               history, out, gH, gW, gWL, store):
    """:func:`_run_one` for every run r, in parallel (prange); out[r] = its 4 numbers.

    Work arrays are allocated once per run, results kept in locals until the run ends (no false
    sharing between threads); gradients are written only when store (else gH… are dummies).
    """
    for r in prange(Ht.shape[0]):
        rg = np.int64(r) if store else np.int64(0)
        res = _run_one(Ht[r], W[r], Wt[r], WL[r], WLt[r], acts, dims, lam[r], lr[r], steps, tol,
                       check_every, record_every, history[r], gH[rg], gW[rg], gWL[rg], store)
        out[r, 0], out[r, 1], out[r, 2], out[r, 3] = res


def act_codes(L: int, model: str, power=None) -> np.ndarray:
    """``acts`` (L+1,) int64 from :func:`refimpl.dufm.model.activations`: 0 id, −1 ReLU, p power."""
    codes = [ACT_ID if a is None or a == 1 else ACT_RELU if a == "relu" else int(a)
             for a in activations(L, model, power)]
    return np.array(codes, dtype=np.int64)


def _up(x: int, m: int) -> int:
    return -(-x // m) * m


def to_layout(params_batch):
    """Batched params [H_1 (R, d, Kn), W_1 (R, d, d), …, W_L (R, K, d)] -> zero-padded kernel arrays.

    Returns (Ht (R, Np, D), W (R, L−1, D, D), Wt, WL (R, Kp, D), WLt (R, D, Kp)), all new C arrays.
    """
    R, d, Kn = params_batch[0].shape
    K, L = params_batch[-1].shape[1], len(params_batch) - 1
    D, Np, Kp = _up(d, 8), _up(Kn, 2), _up(K, 8)
    Ht, WL = np.zeros((R, Np, D)), np.zeros((R, Kp, D))
    W = np.zeros((R, L - 1, D, D))
    Ht[:, :Kn, :d] = params_batch[0].transpose(0, 2, 1)
    for l in range(1, L):
        W[:, l - 1, :d, :d] = params_batch[l]
    WL[:, :K, :d] = params_batch[-1]
    Wt, WLt = np.ascontiguousarray(W.transpose(0, 1, 3, 2)), np.ascontiguousarray(WL.transpose(0, 2, 1))
    return Ht, W, Wt, WL, WLt


def from_layout(Ht, W, WL, K, Kn, d):
    """Inverse of :func:`to_layout`: the batched list [H_1 (R, d, Kn), W_1, …, W_L (R, K, d)]."""
    return ([Ht[:, :Kn, :d].transpose(0, 2, 1).copy()] + [W[:, l, :d, :d].copy() for l in range(W.shape[1])]
            + [WL[:, :K, :d].copy()])


def _per_run(value, R, name):
    v = float_array(name, value).astype(np.float64, copy=False)
    require(v.ndim == 0 or v.shape == (R,), f"{name} must be a number or an array of shape ({R},), "
            f"got shape {v.shape}")
    return np.array(np.broadcast_to(v, (R,)), dtype=np.float64)              # a fresh writable copy


def _prepare(params_batch, lam, model, power):
    """Check the batch like the reference checks a run (the conversion rule of :mod:`refimpl.validate`;
    values may be non-finite, as in :func:`refimpl.dufm.model.loss_and_grads`); return (params_batch as
    arrays, K, Kn, d, L, R, lam (R,), dims)."""
    require(isinstance(params_batch, (list, tuple)) and len(params_batch) >= 2,
            "batched params must be a list [H_1, W_1, ..., W_L] of 3-D arrays (runs first)")
    params_batch = [float_array("H_1" if l == 0 else f"W_{l}", p, 3, finite=False)
                    for l, p in enumerate(params_batch)]
    R = params_batch[0].shape[0]
    runs = [p.shape[0] for p in params_batch]
    require(R >= 1 and all(r == R for r in runs), f"every array of the batch needs the same number of runs "
                                                   f">= 1, got {runs}")
    lam = _per_run(lam, R, "lam")
    K, n, d, L = check_params([p[0] for p in params_batch], lam=float(lam.min()), model=model, power=power,
                              finite=False)
    dims = np.array([K, K * n, n, int(model == "mse")], dtype=np.int64)
    return params_batch, K, K * n, d, L, R, lam, dims


def loss_and_grads(params, *, lam, model="linear", power=None):
    """One run's loss and gradients: the twin of :func:`refimpl.dufm.model.loss_and_grads`.

    Same parameters and return as the reference (params [H_1 (d, Kn), W_1 (d, d), …, W_L (K, d)], λ ≥ 0,
    model "linear" | "relu" | "mse", power; returns the loss as a float and the gradients shaped like
    params), computed in float64 by the compiled step (:func:`loss_and_grads_batch` with R = 1). Input is
    checked by the reference's :func:`refimpl.dufm.model.checked_params` (same rule, same messages;
    non-finite values pass, as in the reference: they give a non-finite loss).
    """
    params, _ = checked_params(params, lam=lam, model=model, power=power, finite=False)
    loss, grads = loss_and_grads_batch([p[None] for p in params], lam=lam, model=model, power=power)
    return float(loss[0]), [g[0] for g in grads]


def loss_and_grads_batch(params_batch, *, lam, model="linear", power=None):
    """:func:`refimpl.dufm.model.loss_and_grads` for each of R runs (forward + fit + backward, fused).

    Parameters
    ----------
    params_batch : list [H_1 (R, d, Kn), W_1 (R, d, d), …, W_L (R, K, d)] — R runs (converted to float64).
    lam : float or ndarray of shape (R,).

    Returns
    -------
    loss : ndarray of shape (R,); grads : list of arrays shaped like params_batch.
    """
    params_batch, K, Kn, d, L, R, lam, dims = _prepare(params_batch, lam, model, power)
    Ht, W, Wt, WL, WLt = to_layout(params_batch)
    gH, gW, gWL = np.zeros_like(Ht), np.zeros_like(W), np.zeros_like(WL)
    out = np.empty((R, 4))
    _run_batch(Ht, W, Wt, WL, WLt, act_codes(L, model, power), dims, lam, np.zeros(R), 1, -1.0, 1, 0,
               np.empty((R, 0)), out, gH, gW, gWL, True)
    return out[:, 0], from_layout(gH, gW, gWL, K, Kn, d)


def gradient_descent_batch(params_batch, *, lam, lr, steps, tol=0.0, model="linear", power=None,
                           check_every=10, record_every=0):
    """Full-batch gradient descent on R independent runs: fuses forward + fit + backward (eq. 7) +
    update, all steps of a run in one compiled call (``prange`` over runs).

    Step t computes ∇L(θ_t) (:func:`refimpl.dufm.model.loss_and_grads`) and sets θ_{t+1} = θ_t − η ∇L(θ_t).
    The loss L(θ_t) and ‖∇L(θ_t)‖ are evaluated at the steps t ≡ 0 mod ``check_every`` (and mod
    ``record_every``): a run stops after an evaluated step whose gradient norm is ≤ tol, at the first
    step whose loss is not finite (diverged; the fit term is checked at every step), or after ``steps``.

    Parameters
    ----------
    params_batch : list [H_1 (R, d, Kn), W_1 (R, d, d), …, W_L (R, K, d)] (not modified).
    lam, lr : float or ndarray of shape (R,).
    check_every : evaluate the loss and gradient norm every that many steps (1: every step).
    record_every : keep L(θ_t) for t = 0, record_every, 2·record_every, … (0: no history).

    Returns
    -------
    params_batch : the trained batch, same shapes.
    out : ndarray of shape (R, 4): loss L(θ_t) and ‖∇L(θ_t)‖ at the last evaluated step t, the number of
        steps taken, the step at which the loss became non-finite (−1 if never).
    history : ndarray of shape (R, ceil(steps / record_every)), NaN where not reached.
    """
    params_batch, K, Kn, d, L, R, lam, dims = _prepare(params_batch, lam, model, power)
    lr = _per_run(lr, R, "lr")
    for value in lr:
        positive_number("lr", value)
    steps, tol = positive_int("steps", steps), nonneg_number("tol", tol)
    check_every = nonneg_int("check_every", check_every)
    record_every = nonneg_int("record_every", record_every)
    Ht, W, Wt, WL, WLt = to_layout(params_batch)
    history = np.full((R, -(-steps // record_every) if record_every > 0 else 0), np.nan)
    out = np.empty((R, 4))
    dummy = (np.empty((1,) + Ht.shape[1:]), np.empty((1,) + W.shape[1:]), np.empty((1,) + WL.shape[1:]))
    _run_batch(Ht, W, Wt, WL, WLt, act_codes(L, model, power), dims, lam, lr, int(steps), float(tol),
               int(check_every), int(record_every), history, out, *dummy, False)
    return from_layout(Ht, W, WL, K, Kn, d), out, history


__all__ = ["act_codes", "from_layout", "gradient_descent_batch", "loss_and_grads", "loss_and_grads_batch",
           "to_layout"]
