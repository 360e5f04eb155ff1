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

Every public function checks its arguments with :func:`refimpl.inputs.network_inputs` (the twin calls
the same function, so both backends refuse the same input with the same one-line InputError; the
conversion rule is :mod:`refimpl.validate`'s) and runs the unchecked passes ``_embed``, ``_forward``,
``_cross_entropy``, ``_backward`` — which is also how :func:`loss_and_grads`, :func:`sgd_step` and
:func:`predict` chain them, checking once at entry. :func:`sgd_step` updates W and U in place: they must
be float32/float64 ndarrays, and their values are not checked (a diverged run's inf or NaN comes back as
a non-finite loss, the trainer's signal).
"""

import numpy as np

from refimpl import validate
from refimpl.feature_collapse import inputs
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
    W, _, tokens, _, _, _ = inputs.network_inputs(W, None, tokens)
    return _embed(W, tokens)


def _embed(W, tokens):
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
    W, U, tokens, _, layernorm, eps = inputs.network_inputs(W, U, tokens, layernorm=layernorm, eps=eps)
    return _forward(W, U, tokens, layernorm, eps)


def _forward(W, U, tokens, layernorm, eps):
    N, L = tokens.shape
    E = _embed(W, tokens)                                                 # (N, L, d)
    ln_cache = None
    if layernorm:
        E, ln_cache = ln.phi(E, eps)                                      # (N, L, d) word representations
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
    return _cross_entropy(*inputs.score_inputs(scores, labels))


def _cross_entropy(scores, labels):
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

    Parameters
    ----------
    dscores : ndarray of shape (N, K), finite; cache : from :func:`forward`.

    Returns
    -------
    dW : ndarray of shape (d, nw), scatter-add of dX over the tokens of the batch.
    dU : ndarray of shape (K, L·d)
    """
    _, U, tokens, _, _ = cache
    return _backward(validate.like("dscores", dscores, (tokens.shape[0], U.shape[0])), cache)


def _backward(dscores, cache):
    (d, nw), U, tokens, X, ln_cache = cache
    N, L = tokens.shape
    dU = dscores.T @ X                                                    # (K, L·d)
    dX = (dscores @ U).reshape(N, L, d)                                   # (N, L, d)
    if ln_cache is not None:
        dX = ln.vjp(dX, ln_cache)                                         # (N, L, d) through φ
    dW = np.zeros((d, nw), dtype=dscores.dtype)
    np.add.at(dW.T, tokens.ravel(), dX.reshape(N * L, d))                # dW[:, w] += dX[n, ℓ] if x_{n,ℓ}=w
    return dW, dU


def loss_and_grads(W, U, tokens, labels, *, layernorm=False, lam_W=0.0, lam_U=0.0, eps=0.0,
                   backend=validate.DEFAULT_BACKEND):
    """Regularized empirical risk (eq. 2 for h, eq. 3 for h*) and its gradients.

    Parameters
    ----------
    W : ndarray of shape (d, nw); its dtype decides the arithmetic (float32 or float64; other real
        input is converted to float64).
    U : ndarray of shape (K, L·d), same dtype as W.
    tokens : ndarray of shape (N, L), ints in [0, nw), N ≥ 1; labels : ndarray of shape (N,), ints in [0, K).
    layernorm : bool, h* (True) or h (False).
    lam_W, lam_U : weight decay of W and U (the λ/2‖·‖² terms), ≥ 0.
    eps : LayerNorm epsilon ≥ 0 (0: the paper's φ).
    backend : "numba" (:mod:`.model_numba`, the default) or "numpy" (this module).

    Returns
    -------
    loss : float, batch-mean cross-entropy + lam_W/2‖W‖² + lam_U/2‖U‖².
    dW : ndarray of shape (d, nw); dU : ndarray of shape (K, L·d).
    """
    backend = validate.backend(backend)
    W, U, tokens, labels, layernorm, eps = inputs.network_inputs(W, U, tokens, labels, layernorm=layernorm,
                                                                   eps=eps)
    lam_W, lam_U = validate.nonneg_number("lam_W", lam_W), validate.nonneg_number("lam_U", lam_U)
    if backend == "numba":
        from refimpl.feature_collapse import model_numba
        return model_numba.loss_and_grads(W, U, tokens, labels, layernorm=layernorm, lam_W=lam_W,
                                          lam_U=lam_U, eps=eps)
    scores, cache = _forward(W, U, tokens, layernorm, eps)
    loss, dscores = _cross_entropy(scores, labels)
    dW, dU = _backward(dscores, cache)
    loss += 0.5 * lam_W * float(np.vdot(W, W)) + 0.5 * lam_U * float(np.vdot(U, U))
    return loss, dW + lam_W * W, dU + lam_U * U


def sgd_step(W, U, tokens, labels, *, lr, lam_W=0.0, lam_U=0.0, layernorm=False, eps=0.0):
    """One plain SGD step with coupled weight decay, in place: θ ← θ − lr (∂ℓ/∂θ + λ_θ θ).

    W, U are float32/float64 ndarrays of one dtype, updated in place (values unchecked: a diverged run
    shows as a non-finite loss); lr > 0, lam_W, lam_U ≥ 0.

    Returns
    -------
    loss : float, the batch-mean cross-entropy *before* the step (without the λ terms).
    correct : int, how many rows of the batch were classified correctly before the step.
    """
    W, U, tokens, labels, layernorm, eps = inputs.network_inputs(W, U, tokens, labels, layernorm=layernorm,
                                                                   eps=eps, inplace=True)
    lr = validate.positive_number("lr", lr)
    lam_W, lam_U = validate.nonneg_number("lam_W", lam_W), validate.nonneg_number("lam_U", lam_U)
    scores, cache = _forward(W, U, tokens, layernorm, eps)
    loss, dscores = _cross_entropy(scores, labels)
    correct = int(np.sum(scores.argmax(axis=1) == labels))
    dW, dU = _backward(dscores, cache)
    W -= lr * (dW + lam_W * W)
    U -= lr * (dU + lam_U * U)
    return loss, correct


def predict(W, U, tokens, *, layernorm=False, eps=0.0, batch: int = 1000) -> np.ndarray:
    """Predicted class argmax_k h(x)_k for each sentence, in batches. Returns ndarray of shape (N,)."""
    W, U, tokens, _, layernorm, eps = inputs.network_inputs(W, U, tokens, layernorm=layernorm, eps=eps)
    batch = validate.positive_int("batch", batch)
    out = np.empty(len(tokens), dtype=np.int64)
    for i in range(0, len(tokens), batch):
        scores, _ = _forward(W, U, tokens[i:i + batch], layernorm, eps)
        out[i:i + batch] = scores.argmax(axis=1)
    return out
