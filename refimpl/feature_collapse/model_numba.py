"""Numba twin of :mod:`.model` (h and h*, eqs. 17–18): the same passes, names and parameters, compiled.

    model.embed(W, tokens)                  ->  embed           (gather)
    model.forward(W, U, tokens, …)          ->  forward         (gather + φ fused, then one GEMM)
    model.cross_entropy(scores, labels)     ->  cross_entropy   (NumPy argmax; compiled shift, exp, normalize)
    model.backward(dscores, cache)          ->  backward        (two GEMMs, then φ's VJP + scatter-add fused)
    model.loss_and_grads(W, U, tokens, …)   ->  loss_and_grads
    model.sgd_step(W, U, tokens, …)         ->  sgd_step

φ and its VJP are :func:`.layernorm_numba.phi_row` / :func:`.layernorm_numba.vjp_row`. The trainer's hot
path is :func:`sgd_step_fused`, a fusion of forward + cross_entropy + backward + the update: it works in
place on Wᵀ with preallocated buffers (:class:`Workspace`, scores included), carries U's weight decay on
the U GEMM (U ← (1 − lr·λ_U)·U − lr·dscoresᵀX, one BLAS call with beta = 1 − lr·λ_U) and updates W by a
scatter over the words of the batch, so a dense dW is never formed. The other in-place passes it uses
(:func:`embed_layernorm`, :func:`cross_entropy_inplace`, :func:`layernorm_backward_scatter_add`) are
named for what they fuse; :func:`layernorm_backward_inplace` and :func:`scatter_add` are that last
fusion's two halves, kept as passes of their own.

A step is three GEMMs (:func:`sgd_step_gemms` runs them alone, for ``python cli.py bench sgd``) and
cheap passes. The GEMMs go to :func:`refimpl.blas.gemm` (MKL when installed, else OpenBLAS; nothing
copied). The passes around them run serially on the calling thread: at the fig4c size (1500 word slots
of d = 100, 100 × 1000 scores) they are ≈ 0.12 ms (gather + φ), 0.17–0.20 ms (cross-entropy) and
0.14–0.17 ms (φ's VJP + scatter) inside a step on 2 AMD EPYC cores (about half that alone, with their
data in cache), and a parallel loop's launch next to BLAS's own threads cost more
than it saved (docs/sgd-step.md). (A serial and a parallel compilation of
one function, as umap does, would share one entry in Numba's cache, which does not key on the target
options: a compiled function has one mode here.) The loops run in the dtype of the data (float32 stays
float32, so LLVM vectorizes them) with one reciprocal per row.

The reference's passes (the last section) check their arguments as the reference does, with the same
functions (:func:`refimpl.inputs.network_inputs`, :func:`refimpl.inputs.score_inputs`,
:func:`refimpl.validate.like`): the same input is refused with the same message, and the same conversion
rule applies (float16, ints and lists become float64). The trainer's :func:`sgd_step_fused` and the
in-place passes check nothing: they run millions of times on arrays the trainer made.
"""

import dataclasses
import math

import numba
import numpy as np

from refimpl import (
    blas,
    compiled,  # noqa: F401  (Numba settings first)
    npexp,
    validate,
)
from refimpl.feature_collapse import inputs
from refimpl.feature_collapse.layernorm_numba import SUMS, phi_row, vjp_row

_KERNEL = dict(cache=True, fastmath=SUMS, error_model="numpy")
GEMMS_ALPHA_SCALE = 2.0**-60   # sgd_step_gemms' U update: α = −lr·GEMMS_ALPHA_SCALE (see there)


def _rows(W):
    """Wᵀ (nw, d) C-ordered: a view when W is Fortran-ordered (the trainer's layout), else a copy."""
    return np.ascontiguousarray(W.T)


# ---- fused, in-place passes (the trainer's) --------------------------------------------------------------

@numba.njit(**_KERNEL)
def embed_layernorm(Wt, tokens, layernorm, eps, X, sigma):
    """Fusion of model.embed and layernorm.forward: X[n, ℓd:(ℓ+1)d] = φ(w_{x_{n,ℓ}}) (or w itself when
    not `layernorm`), sigma[n, ℓ] = σ (1 without LayerNorm) (eqs. 17–18).

    Wt (nw, d) = Wᵀ; tokens (N, L); outputs X (N, L·d), sigma (N, L).
    """
    N, L = tokens.shape
    d = Wt.shape[1]
    slots = X.reshape(N * L, d)                                   # (N·L, d): one row per word slot
    sig = sigma.reshape(N * L)                                    # (N·L,)
    words = tokens.reshape(N * L)                                 # (N·L,)
    for r in range(N * L):
        if layernorm:
            sig[r] = phi_row(Wt[words[r]], slots[r], eps)
        else:
            slots[r, :] = Wt[words[r]]
            sig[r] = 1


@numba.njit(**_KERNEL)
def _softmax_rows(S, labels, best, margin_rows, loss_rows, scale):
    """Given best = the rows' argmax, row by row: margin = S[n, y_n] − max_k S[n, k] (h(x)_y − max_k h(x)_k),
    best[n] ← (best[n] == y_n), S[n] ← exp(S[n] − max) (:func:`refimpl.npexp.exp_shifted`: NumPy's bits),
    loss = log Σ_k exp(S[n, k] − max) − margin, and S[n] ← (softmax − onehot)/N (the batch-mean loss's
    dscores). scale (K,) int32 is the exponential's scratch."""
    N, K = S.shape
    T = S.dtype.type
    for n in range(N):
        row = S[n]                                                # (K,)
        top = row[best[n]]
        margin_rows[n] = row[labels[n]] - top
        best[n] = best[n] == labels[n]
        npexp.exp_shifted(row, top, scale)                        # (K,) exp(S − row max)
        z = T(0)
        for k in range(K):
            z += row[k]
        loss_rows[n] = math.log(z) - margin_rows[n]
        inv = T(1) / (z * T(N))
        for k in range(K):
            row[k] *= inv
        row[labels[n]] -= T(1) / N


def cross_entropy_inplace(S, labels, loss_rows, correct_rows, margin_rows, scale=None):
    """:func:`cross_entropy` in place: S ← (softmax(S) − onehot(labels))/N; per-row loss and correctness.

    S (N, K) C-ordered scores in, dscores out; labels (N,); loss_rows (N,), correct_rows (N,) int64
    outputs; margin_rows (N,) and scale (K,) int32 scratch (allocated when None). The row-wise argmax is
    NumPy's SIMD loop (a compiled loop does not vectorize it); the rest is one compiled pass per row whose
    exponential is NumPy's own algorithm (:mod:`refimpl.npexp`), so the results are NumPy's bit for bit,
    ~2× faster than np.exp here.
    """
    if S.size == 0:
        return
    np.argmax(S, axis=1, out=correct_rows)                        # (N,) the rows' argmax, then correctness
    scale = np.empty(S.shape[1], np.int32) if scale is None else scale
    _softmax_rows(S, labels, correct_rows, margin_rows, loss_rows, scale)


@numba.njit(**_KERNEL)
def layernorm_backward_inplace(dX, X, sigma, L):
    """layernorm.backward in place on every word slot: dX ← Jᵀ dX with y = X (φ's VJP).

    dX, X (N, L·d); sigma (N, L).
    """
    N = dX.shape[0]
    d = dX.shape[1] // L
    gs = dX.reshape(N * L, d)                                     # (N·L, d)
    ys = X.reshape(N * L, d)                                      # (N·L, d)
    sig = sigma.reshape(N * L)                                    # (N·L,)
    for r in range(N * L):
        vjp_row(gs[r], ys[r], sig[r], gs[r])


@numba.njit(cache=True)
def scatter_add(Wt, tokens, dX, scale):
    """Wt[x_{n,ℓ}] += scale · dX[n, ℓd:(ℓ+1)d] for every word slot, in the order of np.add.at (the
    reference's dW = Σ over the batch's words).

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


@numba.njit(**_KERNEL)
def layernorm_backward_scatter_add(Wt, tokens, dX, X, sigma, layernorm, scale):
    """Fusion of :func:`layernorm_backward_inplace` (when `layernorm`) and :func:`scatter_add`, slot by
    slot in np.add.at's order: dX[n, ℓ] ← Jᵀ dX[n, ℓ], then Wt[x_{n,ℓ}] += scale · dX[n, ℓ].

    Wt (nw, d); tokens (N, L); dX, X (N, L·d); sigma (N, L). One pass over dX instead of two.
    """
    N, L = tokens.shape
    d = Wt.shape[1]
    for n in range(N):
        for l in range(L):
            g = dX[n, l * d:(l + 1) * d]                          # (d,) this slot's gradient
            if layernorm:
                vjp_row(g, X[n, l * d:(l + 1) * d], sigma[n, l], g)
            w = Wt[tokens[n, l]]                                  # (d,) the word's row of Wᵀ
            for i in range(d):
                w[i] += scale * g[i]


class Workspace:
    """Buffers of one batch shape, reused across steps (no allocation in the training loop)."""

    def __init__(self, N, L, d, K, dtype):
        self.X = np.empty((N, L * d), dtype)          # (N, L·d) word features
        self.dX = np.empty((N, L * d), dtype)         # (N, L·d) their gradient
        self.S = np.empty((N, K), dtype)              # (N, K) scores, then dscores
        self.sigma = np.empty((N, L), dtype)          # (N, L) LayerNorm σ per word slot
        self.loss_rows = np.empty(N, np.float64)      # (N,)
        self.margin_rows = np.empty(N, np.float64)    # (N,) score of the label − row max
        self.correct_rows = np.empty(N, np.int64)     # (N,) argmax, then argmax == label
        self.scale = np.empty(K, np.int32)            # (K,) the exponential's 2^q (refimpl.npexp)

    @classmethod
    def get(cls, ws, N, L, d, K, dtype):
        """`ws` if it has the right shapes and dtype, else a new workspace."""
        if ws is not None and ws.X.shape == (N, L * d) and ws.S.shape == (N, K) and ws.X.dtype == dtype:
            return ws
        return cls(N, L, d, K, dtype)


# The three GEMMs of a step, one line each, shared by the step and by sgd_step_gemms.

def _scores_gemm(X, U, S):
    blas.gemm(1.0, X, U, 0.0, S, trans_b=True)                           # S (N, K) = X Uᵀ


def _dX_gemm(dscores, U, dX):
    blas.gemm(1.0, dscores, U, 0.0, dX)                                   # dX (N, L·d) = dscores U


def _U_gemm(dscores, X, U, alpha, beta):
    blas.gemm(alpha, dscores, X, beta, U, trans_a=True)                   # U (K, L·d) ← α dscoresᵀX + βU


def _scores(Wt, U, tokens, layernorm, eps, ws):
    """X (into ws) and scores ws.S (N, K) = X Uᵀ: one gather + φ pass, one GEMM."""
    embed_layernorm(Wt, tokens, layernorm, eps, ws.X, ws.sigma)          # X (N, L·d)
    _scores_gemm(ws.X, U, ws.S)
    return ws.S


def sgd_step_fused(Wt, U, tokens, labels, *, lr, lam_W=0.0, lam_U=0.0, layernorm=False, eps=0.0, ws=None):
    """Fusion of forward + cross_entropy + backward + the update of :func:`.model.sgd_step`, in place.

    Wt (nw, d) = Wᵀ and U (K, L·d), both C-ordered, are updated in place: U by one GEMM carrying its
    weight decay (beta = 1 − lr·λ_U), W by a scatter over the words of the batch (no dense dW).
    Returns (loss before the step, number correct before the step, the workspace to pass next time).
    """
    N, L = tokens.shape
    ws = Workspace.get(ws, N, L, Wt.shape[1], U.shape[0], Wt.dtype)
    S = _scores(Wt, U, tokens, layernorm, eps, ws)                        # (N, K)
    cross_entropy_inplace(S, labels, ws.loss_rows, ws.correct_rows, ws.margin_rows, ws.scale)  # dscores
    loss, correct = float(ws.loss_rows.mean()), int(ws.correct_rows.sum())  # now, while they are in cache
    _dX_gemm(S, U, ws.dX)                                                 # uses U before its update
    _U_gemm(S, ws.X, U, -lr, 1.0 - lr * lam_U)                            # U ← (1−lr·λ_U)U − lr·dscoresᵀX
    if lam_W:
        Wt *= 1.0 - lr * lam_W
    layernorm_backward_scatter_add(Wt, tokens, ws.dX, ws.X, ws.sigma, layernorm,
                                   Wt.dtype.type(-lr))                    # W ← W − lr·dW, word by word
    return loss, correct, ws


def sgd_step_gemms(U, ws, *, lr, lam_U=0.0):
    """The three GEMMs of :func:`sgd_step_fused` alone: the same calls, shapes, transposes and buffers (ws
    after a step), for timing the step against its GEMMs.

    Here ws.S holds the scores X Uᵀ, not dscores, so the step's update (α = −lr) repeated with it would be
    U ← U(I − lr·XᵀX)-like: it grows U by orders of magnitude per call and fills it with inf and NaN within
    a few calls. The U GEMM therefore runs with α = −lr·GEMMS_ALPHA_SCALE (nonzero, so BLAS does the
    product; far too small to change U beyond its β = 1 − lr·λ_U decay, and far above the subnormals):
    U, S and dX stay the finite numbers of a training run, as the steps timed beside these GEMMs need.
    """
    _scores_gemm(ws.X, U, ws.S)
    _dX_gemm(ws.S, U, ws.dX)
    _U_gemm(ws.S, ws.X, U, -lr * GEMMS_ALPHA_SCALE, 1.0 - lr * lam_U)


# ---- the reference's passes, one to one ------------------------------------------------------------------

@dataclasses.dataclass
class Cache:
    """What :func:`backward` needs from :func:`forward`: the workspace (X, σ), U, the tokens, the sizes."""

    ws: Workspace
    U: np.ndarray
    tokens: np.ndarray
    nw: int
    layernorm: bool


def embed(W: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Embedding lookup W ζ(x) (eqs. 13–14). W (d, nw), tokens (N, L); returns E of shape (N, L, d)."""
    W, _, tokens, _, _, _ = inputs.network_inputs(W, None, tokens)
    Wt = _rows(W)                                                         # (nw, d)
    N, L = tokens.shape
    X = np.empty((N, L * Wt.shape[1]), Wt.dtype)                          # (N, L·d)
    embed_layernorm(Wt, tokens, False, 0.0, X, np.empty((N, L), Wt.dtype))
    return X.reshape(N, L, -1)                                            # (N, L, d)


def forward(W: np.ndarray, U: np.ndarray, tokens: np.ndarray, *, layernorm: bool = False, eps: float = 0.0):
    """Scores h(x) (eq. 17) or h*(x) (eq. 18): returns (scores of shape (N, K), :class:`Cache`)."""
    W, U, tokens, _, layernorm, eps = inputs.network_inputs(W, U, tokens, layernorm=layernorm, eps=eps)
    N, L = tokens.shape
    Wt, U = _rows(W), np.ascontiguousarray(U)                             # (nw, d), (K, L·d)
    ws = Workspace(N, L, Wt.shape[1], U.shape[0], Wt.dtype)
    scores = _scores(Wt, U, tokens, layernorm, eps, ws)                   # (N, K)
    return scores, Cache(ws, U, tokens, Wt.shape[0], layernorm)


def cross_entropy(scores: np.ndarray, labels: np.ndarray):
    """Batch-mean softmax cross-entropy and dscores = (softmax − onehot)/N (twin of model.cross_entropy)."""
    scores, labels = inputs.score_inputs(scores, labels)
    N = scores.shape[0]
    S = np.array(scores, order="C")                                       # (N, K), becomes dscores
    loss_rows, correct_rows, margin_rows = np.empty(N), np.empty(N, np.int64), np.empty(N)
    cross_entropy_inplace(S, labels, loss_rows, correct_rows, margin_rows)
    return float(loss_rows.mean()), S


def _grads(dscores, U, tokens, ws, layernorm, dU, dWt):
    """dU += dscoresᵀX and dWᵀ += scatter of dX = (dscores U through φ): the data term's gradients."""
    _U_gemm(dscores, ws.X, dU, 1.0, 1.0)                                  # dU (K, L·d) += dscoresᵀ X
    _dX_gemm(dscores, U, ws.dX)                                           # dX (N, L·d)
    layernorm_backward_scatter_add(dWt, tokens, ws.dX, ws.X, ws.sigma, layernorm, dWt.dtype.type(1.0))


def backward(dscores: np.ndarray, cache: Cache):
    """Gradients of the data term from dscores (twin of model.backward): dW (d, nw), dU (K, L·d)."""
    dscores = validate.like("dscores", dscores, (cache.tokens.shape[0], cache.U.shape[0]))
    ws, d = cache.ws, cache.ws.X.shape[1] // cache.tokens.shape[1]
    dscores = np.ascontiguousarray(dscores, dtype=ws.X.dtype)             # (N, K)
    dU = np.zeros_like(cache.U)                                           # (K, L·d)
    dWt = np.zeros((cache.nw, d), ws.X.dtype)                             # (nw, d)
    _grads(dscores, cache.U, cache.tokens, ws, cache.layernorm, dU, dWt)
    return dWt.T, dU


def loss_and_grads(W, U, tokens, labels, *, layernorm=False, lam_W=0.0, lam_U=0.0, eps=0.0):
    """Regularized empirical risk (eq. 2 / eq. 3) and its gradients (twin of model.loss_and_grads).

    The weight decays ride on the passes: dU starts at λ_U·U and the GEMM adds dscoresᵀX (beta = 1);
    dWᵀ starts at λ_W·Wᵀ and the scatter adds dX.
    """
    W, U, tokens, labels, layernorm, eps = inputs.network_inputs(W, U, tokens, labels, layernorm=layernorm,
                                                                   eps=eps)
    lam_W, lam_U = validate.nonneg_number("lam_W", lam_W), validate.nonneg_number("lam_U", lam_U)
    N, L = tokens.shape
    Wt, U = _rows(W), np.ascontiguousarray(U)                             # (nw, d), (K, L·d)
    ws = Workspace(N, L, Wt.shape[1], U.shape[0], Wt.dtype)
    S = _scores(Wt, U, tokens, layernorm, eps, ws)                        # (N, K)
    cross_entropy_inplace(S, labels, ws.loss_rows, ws.correct_rows, ws.margin_rows, ws.scale)  # dscores
    dU, dWt = lam_U * U, lam_W * Wt                                       # (K, L·d), (nw, d)
    _grads(S, U, tokens, ws, layernorm, dU, dWt)
    loss = ws.loss_rows.mean() + 0.5 * lam_W * float(np.vdot(W, W)) + 0.5 * lam_U * float(np.vdot(U, U))
    return float(loss), dWt.T, dU


def sgd_step(W, U, tokens, labels, *, lr, lam_W=0.0, lam_U=0.0, layernorm=False, eps=0.0):
    """One SGD step in place, θ ← θ − lr (∂ℓ/∂θ + λ_θ θ) (twin of model.sgd_step); returns (loss, correct).

    Runs :func:`sgd_step_fused` on Wᵀ: in place when W is Fortran-ordered and U C-ordered (the trainer's
    layouts), else on copies written back.
    """
    W, U, tokens, labels, layernorm, eps = inputs.network_inputs(W, U, tokens, labels, layernorm=layernorm,
                                                                   eps=eps, inplace=True)
    lr = validate.positive_number("lr", lr)
    lam_W, lam_U = validate.nonneg_number("lam_W", lam_W), validate.nonneg_number("lam_U", lam_U)
    w_view, u_view = W.T.flags.c_contiguous, U.flags.c_contiguous
    Wt = W.T if w_view else np.ascontiguousarray(W.T)                     # (nw, d)
    Uc = U if u_view else np.ascontiguousarray(U)                         # (K, L·d)
    loss, correct, _ = sgd_step_fused(Wt, Uc, tokens, labels, lr=lr, lam_W=lam_W, lam_U=lam_U,
                                      layernorm=layernorm, eps=eps)
    if not w_view:
        W[...] = Wt.T
    if not u_view:
        U[...] = Uc
    return loss, correct
