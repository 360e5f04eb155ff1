"""The networks h and h* of *Feature collapse* and their empirical risks — the NumPy reference.

    h_{W,U}(x)  = U Vec[W ζ(x)]                                                       (eq. 17)
    h*_{W,U}(x) = U Vec[φ(W ζ(x))]                                                    (eq. 18)

W ∈ R^{d×nw} holds the word embeddings as columns (column α·sc+β is word (α, β)); U ∈ R^{K×Ld} has row
k = [u_{k,1} … u_{k,L}] (eq. 16), so Vec stacks the L embeddings of a sentence position after position.
The loss is the batch-mean softmax cross-entropy plus the regularization of eqs. (2)–(3):

    R_emp(W, U) = (1/N) Σ_i ℓ(h(x_i), y_i) + λ_W/2 ‖W‖² + λ_U/2 ‖U‖²

with (λ_W, λ_U) = (λ, λ) for h (eq. 2) and (0, λ) for h* (eq. 3). The backward pass is written out by
hand: dscores = (softmax − onehot)/N, dU = dscoresᵀ X, dX = dscores U, back through φ when present, and
dW as a scatter-add of dX over the words of the batch.

:mod:`.model_numba` mirrors the functions below one to one (same names and parameters);
:func:`loss_and_grads` runs it unless ``backend="numpy"``.
"""

import numpy as np

from refimpl import validate
from refimpl.errors import require
from refimpl.feature_collapse import layernorm as ln


def embed(W: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Embedding lookup W ζ(x) for a batch of sentences (eqs. 13–14).

    Parameters
    ----------
    W : ndarray of shape (d, nw)
    tokens : ndarray of shape (N, L), ints in [0, nw)

    Returns
    -------
    E : ndarray of shape (N, L, d), E[n, ℓ] = w_{tokens[n, ℓ]}.
    """
    return W.T[tokens]                                                    # (N, L, d)


def forward(W: np.ndarray, U: np.ndarray, tokens: np.ndarray, *, layernorm: bool = False, eps: float = 0.0):
    """Scores h(x) (eq. 17) or h*(x) (eq. 18) for a batch.

    Parameters
    ----------
    W : ndarray of shape (d, nw); U : ndarray of shape (K, L·d); tokens : ndarray of shape (N, L).
    layernorm : bool, h* (φ after the embedding) or h; eps : φ's epsilon.

    Returns
    -------
    scores : ndarray of shape (N, K)
    cache : what :func:`backward` needs.
    """
    N, L = tokens.shape
    E = embed(W, tokens)                                                  # (N, L, d)
    ln_cache = None
    if layernorm:
        E, ln_cache = ln.forward(E, eps)                           # (N, L, d) word representations
    X = E.reshape(N, -1)                                                  # (N, L·d) = Vec[φ(W ζ(x))]ᵀ
    scores = X @ U.T                                                      # (N, K)
    return scores, (W.shape, U, tokens, X, ln_cache)


def cross_entropy(scores: np.ndarray, labels: np.ndarray):
    """Batch-mean softmax cross-entropy ℓ(y, k) = −log(e^{y_k} / Σ_k' e^{y_k'}) and its gradient.

    Parameters
    ----------
    scores : ndarray of shape (N, K)
    labels : ndarray of shape (N,)

    Returns
    -------
    loss : float, the mean over the N rows.
    dscores : ndarray of shape (N, K), (softmax(scores) − onehot(labels)) / N.
    """
    N = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)                  # (N, K)
    log_z = np.log(np.exp(shifted).sum(axis=1))                           # (N,)
    rows = np.arange(N)
    loss = float(np.mean(log_z - shifted[rows, labels]))
    dscores = np.exp(shifted - log_z[:, None])                            # (N, K) softmax
    dscores[rows, labels] -= 1.0
    return loss, dscores / N


def backward(dscores: np.ndarray, cache):
    """Gradients of the data term from dscores = ∂loss/∂scores.

    Returns
    -------
    dW : ndarray of shape (d, nw), scatter-add of dX over the tokens of the batch.
    dU : ndarray of shape (K, L·d)
    """
    (d, nw), U, tokens, X, ln_cache = cache
    N, L = tokens.shape
    dU = dscores.T @ X                                                    # (K, L·d)
    dX = (dscores @ U).reshape(N, L, d)                                   # (N, L, d)
    if ln_cache is not None:
        dX = ln.backward(dX, ln_cache)                             # (N, L, d) through φ
    dW = np.zeros((d, nw), dtype=dscores.dtype)
    np.add.at(dW.T, tokens.ravel(), dX.reshape(N * L, d))                # dW[:, w] += dX[n, ℓ] if x_{n,ℓ}=w
    return dW, dU


def check_inputs(W, U, tokens, labels):
    """Shapes, dtypes and ranges of the public entry points; raises InputError."""
    require(W.ndim == 2 and U.ndim == 2, f"W and U must be matrices, got shapes {W.shape} and {U.shape}")
    require(tokens.ndim == 2 and labels.ndim == 1 and len(labels) == len(tokens),
            f"tokens must be (N, L) and labels (N,), got {tokens.shape} and {labels.shape}")
    d, nw = W.shape
    K, Ld = U.shape
    require(Ld == tokens.shape[1] * d, f"U has {Ld} columns, expected L·d = {tokens.shape[1] * d}")
    require(U.dtype == W.dtype, f"U has dtype {U.dtype}, W has {W.dtype}: they must agree")
    require(tokens.size == 0 or (tokens.min() >= 0 and tokens.max() < nw), f"tokens must lie in [0, {nw})")
    require(labels.size == 0 or (labels.min() >= 0 and labels.max() < K), f"labels must lie in [0, {K})")


def loss_and_grads(W, U, tokens, labels, *, layernorm=False, lam_W=0.0, lam_U=0.0, eps=0.0,
                   backend=validate.DEFAULT_BACKEND):
    """Regularized empirical risk (eq. 2 for h, eq. 3 for h*) and its gradients.

    Parameters
    ----------
    W : ndarray of shape (d, nw); its dtype decides the arithmetic.
    U : ndarray of shape (K, L·d), same dtype as W.
    tokens : ndarray of shape (N, L), ints; labels : ndarray of shape (N,), ints.
    layernorm : bool, h* (True) or h (False).
    lam_W, lam_U : weight decay of W and U (the λ/2‖·‖² terms).
    eps : LayerNorm epsilon (0: the paper's φ).
    backend : "numba" (:mod:`.model_numba`, the default) or "numpy" (this module).

    Returns
    -------
    loss : float, batch-mean cross-entropy + lam_W/2‖W‖² + lam_U/2‖U‖².
    dW : ndarray of shape (d, nw); dU : ndarray of shape (K, L·d).
    """
    tokens, labels = np.asarray(tokens, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    check_inputs(W, U, tokens, labels)
    if validate.backend(backend) == "numba":
        from refimpl.feature_collapse import model_numba
        return model_numba.loss_and_grads(W, U, tokens, labels, layernorm=layernorm, lam_W=lam_W,
                                          lam_U=lam_U, eps=eps)
    scores, cache = forward(W, U, tokens, layernorm=layernorm, eps=eps)
    loss, dscores = cross_entropy(scores, labels)
    dW, dU = backward(dscores, cache)
    loss += 0.5 * lam_W * float(np.vdot(W, W)) + 0.5 * lam_U * float(np.vdot(U, U))
    return loss, dW + lam_W * W, dU + lam_U * U


def sgd_step(W, U, tokens, labels, *, lr, lam_W=0.0, lam_U=0.0, layernorm=False, eps=0.0):
    """One plain SGD step with coupled weight decay, in place: θ ← θ − lr (∂ℓ/∂θ + λ_θ θ).

    Returns
    -------
    loss : float, the batch-mean cross-entropy *before* the step (without the λ terms).
    correct : int, how many rows of the batch were classified correctly before the step.
    """
    scores, cache = forward(W, U, tokens, layernorm=layernorm, eps=eps)
    loss, dscores = cross_entropy(scores, labels)
    correct = int(np.sum(scores.argmax(axis=1) == labels))
    dW, dU = backward(dscores, cache)
    W -= lr * (dW + lam_W * W)
    U -= lr * (dU + lam_U * U)
    return loss, correct


def predict(W, U, tokens, *, layernorm=False, eps=0.0, batch: int = 1000) -> np.ndarray:
    """Predicted class argmax_k h(x)_k for each sentence, in batches. Returns ndarray of shape (N,)."""
    out = np.empty(len(tokens), dtype=np.int64)
    for i in range(0, len(tokens), batch):
        scores, _ = forward(W, U, tokens[i:i + batch], layernorm=layernorm, eps=eps)
        out[i:i + batch] = scores.argmax(axis=1)
    return out
