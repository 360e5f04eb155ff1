"""Numba mirror of :mod:`.model` (h and h*, eqs. 17–18): the same passes, compiled.

The reference's passes map one to one onto the functions below:

    model.embed + layernorm.forward  ->  embed_layernorm   (gather + φ, parallel over word slots)
    X @ U.T                          ->  forward           (one GEMM)
    model.cross_entropy              ->  cross_entropy     (NumPy argmax/exp, compiled normalization)
    dscoresᵀ X, dscores U            ->  backward          (two GEMMs)
    layernorm.backward + np.add.at   ->  layernorm_backward, scatter_add

The three GEMMs are ~90% of a step at the fig4c size (bench sgd); the loops around them run in the
dtype of the data (float32 stays float32, so LLVM vectorizes them) with one reciprocal per row.

:func:`sgd_step` fuses the update into the passes: the weight decay of U rides on the dU GEMM
(U ← (1 − lr·λ_U)·U − lr·dscoresᵀX, one BLAS call with beta = 1 − lr·λ_U), and W is updated by a
scatter over the words of the batch — a dense dW is never formed.
"""

import math

import numba
import numpy as np
from numba import prange
from scipy.linalg import blas

from refimpl import compiled  # noqa: F401  (Numba settings first)

_GEMM = {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}

# Reordering of sums (and fused multiply-adds) only: lets LLVM vectorize the row reductions of the
# LayerNorm and the softmax. No assumption about NaN/inf and no approximate functions; the results
# differ from the reference by rounding only (tests: 1e-10 relative in float64).
SUMS = {"reassoc", "contract"}


@numba.njit(parallel=True, cache=True, fastmath=SUMS, error_model="numpy")
def embed_layernorm(Wt, tokens, layernorm, eps, X, sigma):
    """X[n, ℓd:(ℓ+1)d] = φ(w_{x_{n,ℓ}}) (or w itself when not `layernorm`); sigma[n, ℓ] = σ (eq. 18).

    Wt (nw, d) = Wᵀ, one embedding per row; tokens (N, L); X (N, L·d) and sigma (N, L) outputs
    (sigma is 1 without LayerNorm). Arithmetic in the dtype of X (``T``), so that float32 stays
    float32 and LLVM vectorizes; division by σ is one reciprocal per word slot.
    """
    N, L = tokens.shape
    d = Wt.shape[1]
    T = X.dtype.type
    slots = X.reshape(N * L, d)                                   # (N·L, d): one row per word slot
    sig = sigma.reshape(N * L)                                    # (N·L,)
    words = tokens.reshape(N * L)                                 # (N·L,)
    inv_d = T(1.0 / d)
    for r in prange(N * L):
        w = Wt[words[r]]                                          # (d,)
        x = slots[r]                                              # (d,)
        if not layernorm:
            x[:] = w
            sig[r] = 1
            continue
        mean = T(0)
        for i in range(w.shape[0]):
            mean += w[i]
        mean *= inv_d
        var = T(0)
        for i in range(w.shape[0]):
            var += (w[i] - mean) * (w[i] - mean)
        s = T(math.sqrt(var * inv_d + eps))
        inv_s = T(1) / s
        for i in range(x.shape[0]):
            x[i] = (w[i] - mean) * inv_s
        sig[r] = s


@numba.njit(parallel=True, cache=True, fastmath=SUMS, error_model="numpy")
def _normalize_rows(E, labels, margin_rows, loss_rows):
    """Second half of :func:`cross_entropy`, on E = exp(S − max): loss = log Σ_k E − margin and
    E ← E / (N Σ_k E) − onehot / N, i.e. (softmax − onehot)/N (the batch-mean loss's dscores)."""
    N, K = E.shape
    T = E.dtype.type
    for n in prange(N):
        row = E[n]                                                # (K,)
        z = T(0)
        for k in range(K):
            z += row[k]
        loss_rows[n] = math.log(z) - margin_rows[n]
        scale = T(1) / (z * T(N))
        for k in range(K):
            row[k] *= scale
        row[labels[n]] -= T(1) / N


def cross_entropy(S, labels, loss_rows, correct_rows, margin_rows=None):
    """In place: S ← (softmax(S) − onehot(labels)) / N; per-row loss and correctness (mean in caller).

    Mirror of :func:`.model.cross_entropy`. S (N, K) scores in, dscores out; labels (N,);
    loss_rows (N,), correct_rows (N,) outputs; margin_rows (N,) scratch. The row-wise argmax, shift
    and exponential are NumPy's SIMD loops (a Numba loop calls scalar libm for exp, ~7x slower, and
    does not vectorize the argmax); the normalization is compiled.
    """
    rows = np.arange(S.shape[0])
    best = S.argmax(axis=1)                                       # (N,)
    row_max = S[rows, best]                                       # (N,)
    correct_rows[:] = best == labels
    if margin_rows is None:
        margin_rows = np.empty(S.shape[0], np.float64)
    margin_rows[:] = S[rows, labels] - row_max                    # (N,) h(x)_y − max_k h(x)_k
    np.subtract(S, row_max[:, None], out=S)                       # (N, K) S − row max
    np.exp(S, out=S)                                              # (N, K) exp(S − row max)
    _normalize_rows(S, labels, margin_rows, loss_rows)


@numba.njit(parallel=True, cache=True, fastmath=SUMS, error_model="numpy")
def layernorm_backward(dX, X, sigma, L):
    """In place, per word slot: dX ← (dX − mean(dX) − y·mean(dX ⊙ y)) / σ with y = X (φ's VJP).

    dX, X (N, L·d); sigma (N, L). Arithmetic in the dtype of X, one reciprocal of σ per slot.
    """
    N = dX.shape[0]
    d = dX.shape[1] // L
    T = X.dtype.type
    gs = dX.reshape(N * L, d)                                     # (N·L, d)
    ys = X.reshape(N * L, d)                                      # (N·L, d)
    sig = sigma.reshape(N * L)                                    # (N·L,)
    inv_d = T(1.0 / d)
    for r in prange(N * L):
        g = gs[r]                                                 # (d,)
        y = ys[r]                                                 # (d,)
        mean_g = T(0)
        mean_gy = T(0)
        for i in range(g.shape[0]):
            mean_g += g[i]
            mean_gy += g[i] * y[i]
        inv_s = T(1) / sig[r]
        a = mean_g * inv_d * inv_s
        b = mean_gy * inv_d * inv_s
        for i in range(g.shape[0]):
            g[i] = g[i] * inv_s - a - y[i] * b


@numba.njit(cache=True)
def scatter_add(Wt, tokens, dX, scale):
    """Wt[x_{n,ℓ}] += scale · dX[n, ℓd:(ℓ+1)d] for every word slot, in the order of np.add.at.

    Sequential on purpose: words repeat within a batch, and a fixed order keeps the result
    deterministic (and equal to the reference's summation order).
    """
    N, L = tokens.shape
    d = Wt.shape[1]
    for n in range(N):
        for l in range(L):
            w = tokens[n, l]
            base = l * d
            for i in range(d):
                Wt[w, i] += scale * dX[n, base + i]


class Workspace:
    """Buffers of one batch shape, reused across steps (no allocation in the training loop)."""

    def __init__(self, N, L, d, dtype):
        self.X = np.empty((N, L * d), dtype)          # (N, L·d) word features
        self.dX = np.empty((N, L * d), dtype)         # (N, L·d) their gradient
        self.sigma = np.empty((N, L), dtype)          # (N, L) LayerNorm σ per word slot
        self.loss_rows = np.empty(N, np.float64)      # (N,)
        self.margin_rows = np.empty(N, np.float64)    # (N,) score of the label − row max
        self.correct_rows = np.empty(N, np.int64)     # (N,)

    @classmethod
    def get(cls, ws, N, L, d, dtype):
        """`ws` if it has the right shape and dtype, else a new workspace."""
        if ws is not None and ws.X.shape == (N, L * d) and ws.X.dtype == dtype:
            return ws
        return cls(N, L, d, dtype)


def _gemm(alpha, a, b, beta, c, trans_a=0, trans_b=0):
    """c ← alpha·op(a)·op(b) + beta·c in place, op = transpose where asked; all operands
    Fortran-ordered (C-ordered arrays passed transposed), so BLAS copies nothing."""
    _GEMM[c.dtype](alpha, a, b, beta=beta, c=c, overwrite_c=1, trans_a=trans_a, trans_b=trans_b)


def forward(Wt, U, tokens, *, layernorm_on=False, eps=0.0, ws=None):
    """Scores (N, K) = X Uᵀ, and the workspace holding X and σ (mirror of model.forward).

    Wt (nw, d) is Wᵀ, C-ordered; U (K, L·d) C-ordered.
    """
    N, L = tokens.shape
    ws = Workspace.get(ws, N, L, Wt.shape[1], Wt.dtype)
    embed_layernorm(Wt, tokens, layernorm_on, eps, ws.X, ws.sigma)      # X (N, L·d)
    scores = _GEMM[Wt.dtype](1.0, U.T, ws.X.T, trans_a=1).T               # (N, K): (U Xᵀ)ᵀ, no copies
    return scores, ws


def backward_dX(dscores, U, ws, L, layernorm_on):
    """dX (N, L·d) = dscores U, through φ when on; written into ws.dX (mirror of model.backward's
    second half, before the scatter)."""
    _gemm(1.0, U.T, dscores.T, 0.0, ws.dX.T)                              # (N, L·d)
    if layernorm_on:
        layernorm_backward(ws.dX, ws.X, ws.sigma, L)
    return ws.dX


def loss_and_grads(W, U, tokens, labels, *, layernorm=False, lam_W=0.0, lam_U=0.0, eps=0.0):
    """Mirror of :func:`.model.loss_and_grads` (inputs already checked there)."""
    N, L = tokens.shape
    Wt = np.ascontiguousarray(W.T)                                        # (nw, d)
    U = np.ascontiguousarray(U)
    scores, ws = forward(Wt, U, tokens, layernorm_on=layernorm, eps=eps)
    cross_entropy(scores, labels, ws.loss_rows, ws.correct_rows, ws.margin_rows)          # scores ← dscores
    dU = lam_U * U                                                        # (K, L·d)
    _gemm(1.0, ws.X.T, scores.T, 1.0, dU.T, trans_b=1)                    # dU += dscoresᵀ X
    dX = backward_dX(scores, U, ws, L, layernorm)
    dWt = lam_W * Wt                                                      # (nw, d)
    scatter_add(dWt, tokens, dX, Wt.dtype.type(1.0))                      # dWᵀ += scatter of dX
    loss = ws.loss_rows.mean() + 0.5 * lam_W * float(np.vdot(W, W)) + 0.5 * lam_U * float(np.vdot(U, U))
    return float(loss), dWt.T, dU


def sgd_step(Wt, U, tokens, labels, *, lr, lam_W=0.0, lam_U=0.0, layernorm=False, eps=0.0, ws=None):
    """Mirror of :func:`.model.sgd_step`, fused; returns (loss, correct, workspace).

    Wt (nw, d) = Wᵀ and U (K, L·d), both C-ordered, are updated in place: U by one GEMM carrying its
    weight decay (beta = 1 − lr·λ_U), W by a scatter over the words of the batch (no dense dW).
    """
    N, L = tokens.shape
    scores, ws = forward(Wt, U, tokens, layernorm_on=layernorm, eps=eps, ws=ws)
    cross_entropy(scores, labels, ws.loss_rows, ws.correct_rows, ws.margin_rows)          # scores ← dscores
    dX = backward_dX(scores, U, ws, L, layernorm)                         # uses U before its update
    _gemm(-lr, ws.X.T, scores.T, 1.0 - lr * lam_U, U.T, trans_b=1)        # U ← (1−lr·λ_U)U − lr·dscoresᵀX
    if lam_W:
        Wt *= 1.0 - lr * lam_W
    scatter_add(Wt, tokens, dX, Wt.dtype.type(-lr))                       # W ← W − lr·dW, word by word
    return float(ws.loss_rows.mean()), int(ws.correct_rows.sum()), ws
