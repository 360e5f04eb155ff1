"""The true risks (5) and (10) of *Feature collapse*, exactly, and their gradients — the NumPy reference.

    R(W, U)  = R0(W, U) + λ/2 (‖W‖² + ‖U‖²)                                            (eq. 5)
    R*(W, U) = R0(φ(W), U) + λ/2 ‖U‖²                                      (eq. 10, Lemma L eq. 96)
    R0(W, U) = (1/K) Σ_k Σ_{x ∈ X_k} ℓ(h(x), k) D_{z_k}(x)                              (eqs. 45–46)

Class k's support X_k is every sentence x = [(z_{k,1}, β_1), …, (z_{k,L}, β_L)] with β ∈ [sc]^L, of
probability D_{z_k}(x) = Π_ℓ µ_{β_ℓ} (appendix A.3): K·sc^L sentences in all, enumerated here one class
at a time. Two tables make this cheap and give the gradient:

* score tables S[k, ℓ, w] = ⟨u_{k,ℓ}, w_w⟩, so that h(x)_k = Σ_ℓ S[k, ℓ, x_ℓ] costs O(K·L) per sentence
  instead of O(K·L·d);
* the table of eq. (130), Φ[w, k, ℓ] = (1/K) Σ_j Σ_{x ∈ X_j} 1{x_ℓ = w} (1{j = k} − q_k(x)) D_{z_j}(x),
  q = softmax(h(x)), from which Lemma S gives both gradients of R0:
      −∂R0/∂u_{k,ℓ} = Σ_w Φ[w, k, ℓ] w_w,        −∂R0/∂w_w = Σ_{k,ℓ} Φ[w, k, ℓ] u_{k,ℓ}.

For h* the same passes run on V = φ(W) (φ acts column-wise, so h*_{W,U} = h_{φ(W),U}: Lemma L) and the
gradient in V goes back to W through the LayerNorm Jacobian, column by column.

Total cost O(K²·sc^L·L): K·sc^L sentences, each scored against K classes over L positions, and each adding
its K-vector (1{j=k} − q_k)·D/K into L rows of Φ. :func:`risk0_and_grads` runs the three passes in
turn; ``backend="numba"`` runs the twins of it and of :func:`check_inputs` from
:mod:`refimpl.feature_collapse.exact_numba`.

Every public function checks its arguments (:func:`check_inputs` for :func:`risk_and_grads` and
:func:`risk0_and_grads`; the three passes with :func:`refimpl.inputs.score_table_inputs`,
:func:`refimpl.inputs.enumeration_inputs` and :func:`refimpl.inputs.lemma_s_inputs`; the twins call
the same checks; ``check=False`` skips that, as :func:`risk_and_grads` does after its own check) and
computes in float64.
"""

import sys

import numpy as np

from refimpl import validate
from refimpl.feature_collapse import inputs
from refimpl.feature_collapse import layernorm as ln
from refimpl.feature_collapse.data import all_latent_variables

MAX_SENTENCES = inputs.MAX_SENTENCES  # default refusal threshold for K·sc^L


def check_inputs(W, U, Z, mu, max_sentences=MAX_SENTENCES):
    """Arrays, shapes, ranges and the enumeration limit of :func:`risk_and_grads`
    (:func:`refimpl.feature_collapse.inputs.risk_inputs`, which the twin calls too). Raises InputError
    (one line); returns (W, U, Z, mu) as float64, float64, int64, float64.

    W (d, nw), U (K, L·d) finite reals; Z (K, L) integers in 0..nc−1 with nc = nw / len(mu) (floats
    only if integral, never truncated); mu a distribution (:func:`refimpl.validate.distribution`);
    K·sc^L ≤ max_sentences.
    """
    return inputs.risk_inputs(W, U, Z, mu, max_sentences)


def word_choices(mu: np.ndarray, L: int):
    """Every β ∈ [sc]^L (lexicographic) and its probability Π_ℓ µ_{β_ℓ}.

    Returns
    -------
    B : ndarray of shape (sc**L, L), int64, B[i, ℓ] = β_ℓ of the i-th choice.
    p : ndarray of shape (sc**L,), D_z(x) for the sentence of any class built from B[i].
    """
    mu, L = validate.distribution("mu", mu), validate.positive_int("L", L)
    B = all_latent_variables(mu.shape[0], L)                              # (sc^L, L) base-sc digits
    return B, np.prod(mu[B], axis=1)                                      # (sc^L, L), (sc^L,)


def score_tables(W: np.ndarray, U: np.ndarray, L: int, *, check: bool = True) -> np.ndarray:
    """Per-position score tables S[k, ℓ, w] = ⟨u_{k,ℓ}, w_w⟩, so that h(x)_k = Σ_ℓ S[k, ℓ, x_ℓ] (eq. 20).

    Parameters
    ----------
    W : ndarray of shape (d, nw); U : ndarray of shape (K, L·d).
    check : validate the arguments (InputError) first; False skips that, for callers that have.

    Returns
    -------
    S : ndarray of shape (K, L, nw).
    """
    if check:
        W, U, L = inputs.score_table_inputs(W, U, L)
    d, nw = W.shape
    K = U.shape[0]
    return (U.reshape(K * L, d) @ W).reshape(K, L, nw)                   # (K, L, nw)


def risk0_and_phi(S: np.ndarray, Z: np.ndarray, mu: np.ndarray, *, check: bool = True):
    """Unregularized true risk R0 (eq. 46) and the table Φ of eq. (130), by enumeration of every sentence.

    Parameters
    ----------
    S : ndarray of shape (K, L, nw), score tables from :func:`score_tables`.
    Z : ndarray of shape (K, L), ints in 0..nc-1; mu : ndarray of shape (sc,).
    check : validate the arguments (InputError) first; False skips that, for callers that have.

    Returns
    -------
    R0 : float, (1/K) Σ_k Σ_{x ∈ X_k} D_{z_k}(x) (logsumexp(h(x)) − h(x)_k).
    Phi : ndarray of shape (nw, K, L), Φ[w, k, ℓ] of eq. (130) with w = α·sc + β.

    Notes
    -----
    Class j's sentences form a grid: axis ℓ of an array of shape (sc,)*L is β_ℓ, and its C-order
    flattening is the lexicographic order of :func:`word_choices`. With T_j[ℓ, b, k] = S[k, ℓ, z_{j,ℓ}·sc + b]
    the scores are the broadcast sum h(x) = Σ_ℓ T_j[ℓ, β_ℓ] over the grid. With G[x, k] = (1{j=k} − q_k(x))
    D(x)/K, Φ[z_{j,ℓ}·sc + b, k, ℓ] gains Σ_{x: β_ℓ = b} G[x, k], the sum of G over every axis but ℓ.
    """
    if check:
        S, Z, mu = inputs.enumeration_inputs(S, Z, mu)
    K, L, nw = S.shape
    sc = mu.shape[0]
    grid = (sc,) * L
    _, p = word_choices(mu, L)                                            # (n,) D_z(x), n = sc^L
    St = S.transpose(1, 2, 0)                                             # (L, nw, K)
    R0 = 0.0
    Phi = np.zeros((nw, K, L))
    for j in range(K):
        words = Z[j][:, None] * sc + np.arange(sc)                        # (L, sc) the words of z_{j,ℓ}
        T = St[np.arange(L)[:, None], words]                              # (L, sc, K)
        scores = sum(_on_axis(T[l], l, L) for l in range(L))              # (sc,)*L + (K,) h(x), x ∈ X_j
        scores = scores.reshape(-1, K)                                    # (n, K)
        m = scores.max(axis=1, keepdims=True)                             # (n, 1)
        e = np.exp(scores - m)                                            # (n, K)
        lse = m[:, 0] + np.log(e.sum(axis=1))                             # (n,) log Σ_k e^{h(x)_k}
        R0 += float(p @ (lse - scores[:, j])) / K
        G = -e / e.sum(axis=1, keepdims=True)                             # (n, K) −q(x)
        G[:, j] += 1.0                                                    # 1{j=k} − q_k(x)
        G *= p[:, None] / K                                               # (n, K) × D_{z_j}(x)/K
        G = G.reshape(grid + (K,))                                        # (sc,)*L + (K,)
        for l in range(L):
            others = tuple(a for a in range(L) if a != l)
            Phi[words[l], :, l] += G.sum(axis=others)                     # (sc, K) Σ_{x: β_ℓ = b} G[x]
    return R0, Phi


def _on_axis(v: np.ndarray, l: int, L: int) -> np.ndarray:
    """v of shape (sc, K) as an array of shape (1,)*l + (sc,) + (1,)*(L-1-l) + (K,): axis ℓ of the grid."""
    return v.reshape((1,) * l + (v.shape[0],) + (1,) * (L - 1 - l) + (v.shape[1],))


def lemma_s(W: np.ndarray, U: np.ndarray, Phi: np.ndarray, *, check: bool = True):
    """Lemma S: ∂R0/∂u_{k,ℓ} = −Σ_w Φ[w, k, ℓ] w_w and ∂R0/∂w_w = −Σ_{k,ℓ} Φ[w, k, ℓ] u_{k,ℓ} (eq. 130).

    Parameters
    ----------
    W : ndarray of shape (d, nw); U : ndarray of shape (K, L·d); Phi : ndarray of shape (nw, K, L).
    check : validate the arguments (InputError) first; False skips that, for callers that have.

    Returns
    -------
    dW0 : ndarray of shape (d, nw), ∂R0/∂W.
    dU0 : ndarray of shape (K, L·d), ∂R0/∂U (row k = [∂R0/∂u_{k,1} … ∂R0/∂u_{k,L}]).
    """
    if check:
        W, U, Phi = inputs.lemma_s_inputs(W, U, Phi)
    d, nw = W.shape
    _, K, L = Phi.shape
    Phi2 = Phi.reshape(nw, K * L)                                         # (nw, K·L), column k·L+ℓ
    dU0 = -(W @ Phi2).T.reshape(K, L * d)                                 # (K·L, d) -> (K, L·d)
    dW0 = -(U.reshape(K * L, d).T @ Phi2.T)                               # (d, nw)
    return dW0, dU0


def risk0_and_grads(V, U, Z, mu, *, check: bool = True):
    """R0 (eq. 46) and its gradient by Lemma S (eq. 130): the three passes in turn, S (eq. 20) refused if
    it overflowed. V is W for h, φ(W) for h*.

    Parameters
    ----------
    V : ndarray of shape (d, nw); U : ndarray of shape (K, L·d); Z : ndarray of shape (K, L);
    mu : ndarray of shape (sc,). check : validate them (:func:`check_inputs`) first; False skips that.

    Returns
    -------
    R0 : float; dV0 : ndarray of shape (d, nw); dU0 : ndarray of shape (K, L·d).
    """
    if check:
        V, U, Z, mu = check_inputs(V, U, Z, mu)
    with np.errstate(over="ignore"):                                      # an overflow is refused below
        S = score_tables(V, U, Z.shape[1], check=False)                   # (K, L, nw)
    inputs.finite_scores(S)
    R0, Phi = risk0_and_phi(S, Z, mu, check=False)                        # float, (nw, K, L)
    return (R0, *lemma_s(V, U, Phi, check=False))


def _backend(backend: str):
    """The module that runs :func:`check_inputs` and :func:`risk0_and_grads`: this one or its twin."""
    if validate.backend(backend) == "numba":
        from refimpl.feature_collapse import exact_numba
        return exact_numba
    return sys.modules[__name__]


def risk_and_grads(W, U, Z, mu, *, lam, layernorm=False, backend=validate.DEFAULT_BACKEND,
                   max_sentences=MAX_SENTENCES):
    """True risk R (eq. 5) for h, or R* (eq. 10) for h* with φ's eps = 0, and its exact gradient.

    Parameters
    ----------
    W : ndarray of shape (d, nw), column α·sc+β the embedding of word (α, β).
    U : ndarray of shape (K, L·d), row k = [u_{k,1} … u_{k,L}] (eq. 16).
    Z : ndarray of shape (K, L), latent variables, ints in 0..nc-1 (nc = nw / sc).
    mu : ndarray of shape (sc,), word frequencies (non-negative, summing to 1).
    lam : float ≥ 0, λ of eqs. (5)/(10): λ/2 (‖W‖² + ‖U‖²) for h, λ/2 ‖U‖² for h*.
    layernorm : bool, h* (True) or h (False).
    backend : "numba" (:mod:`.exact_numba`, the default) or "numpy" (this module).
    max_sentences : refuse (InputError) when K·sc^L exceeds this.

    Returns
    -------
    R : float; dW : ndarray of shape (d, nw); dU : ndarray of shape (K, L·d).
    """
    passes = _backend(backend)
    W, U, Z, mu = passes.check_inputs(W, U, Z, mu, max_sentences)
    lam, layernorm = validate.nonneg_number("lam", lam), validate.flag("layernorm", layernorm)
    V, cache = W, None
    if layernorm:
        Vt, cache = layernorm_forward(W)                                  # (nw, d) word representations
        V = Vt.T                                                          # (d, nw) φ(W), column-wise
    R0, dV, dU = passes.risk0_and_grads(V, U, Z, mu, check=False)        # float, (d, nw), (K, L·d)
    reg_U = 0.5 * lam * float(np.vdot(U, U))
    if layernorm:
        dW = ln.vjp(dV.T, cache).T                                        # (d, nw) Jᵀ ∂R0/∂φ(w), per column
        return R0 + reg_U, dW, dU + lam * U
    return R0 + reg_U + 0.5 * lam * float(np.vdot(W, W)), dV + lam * W, dU + lam * U


def layernorm_forward(W: np.ndarray):
    """φ applied to every column of W with the paper's eps = 0. Returns (φ(W)ᵀ of shape (nw, d), cache).

    φ(w) = (w − mean(w))/σ(w) is undefined for a constant column (σ = 0, and within rounding of 0 when the
    mean is not exact): refused with a one-line InputError naming the word instead of returning NaN
    (:func:`refimpl.validate.layernorm_rows`, the model's check).
    """
    W = validate.float64_array("W", W, 2)
    validate.layernorm_rows(W.T, 0.0, "the embedding of word {i} (column {i} of W)")
    return ln.phi(W.T, 0.0)                                               # (nw, d), ((nw, d), (nw, 1))


def layernorm_backward_explicit(W: np.ndarray, dV: np.ndarray) -> np.ndarray:
    """∂R*/∂w_w = J(w_w)ᵀ ∂R0/∂φ(w_w) with the explicit Jacobian J = (I − 11ᵀ/d − yyᵀ/d)/σ, column by
    column — the slow twin of the closed-form VJP used by :func:`risk_and_grads` (tests compare them).

    Parameters
    ----------
    W : ndarray of shape (d, nw); dV : ndarray of shape (d, nw), gradient with respect to φ(W).

    Returns
    -------
    dW : ndarray of shape (d, nw).
    """
    W = validate.float64_array("W", W, 2)
    dV = validate.like("dV", dV, W.shape)
    return np.stack([ln.jacobian(W[:, w]).T @ dV[:, w] for w in range(W.shape[1])], axis=1)
