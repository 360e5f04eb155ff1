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
its K-vector (1{j=k} − q_k)·D/K into L rows of Φ. ``backend="numba"`` runs the same passes from
:mod:`refimpl.feature_collapse.exact_numba`.
"""

import numpy as np

from refimpl import validate
from refimpl.errors import InputError, require
from refimpl.feature_collapse import layernorm as ln
from refimpl.feature_collapse.data import all_latent_variables

MAX_SENTENCES = 50_000_000  # default refusal threshold for K·sc^L (a few seconds per million with Numba)


def sentence_count(K: int, sc: int, L: int) -> int:
    """K·sc^L, the number of sentences of positive probability (exact Python int)."""
    return int(K) * int(sc) ** int(L)


def check_inputs(W, U, Z, mu, max_sentences=MAX_SENTENCES) -> tuple[int, int]:
    """Shapes, ranges and the enumeration limit; returns (nc, sc). Raises InputError (one line)."""
    require(W.ndim == 2 and U.ndim == 2, f"W and U must be matrices, got shapes {W.shape} and {U.shape}")
    require(Z.ndim == 2 and mu.ndim == 1, f"Z must be (K, L) and mu (sc,), got {Z.shape} and {mu.shape}")
    (d, nw), (K, L), sc = W.shape, Z.shape, mu.shape[0]
    require(sc >= 1 and nw % sc == 0, f"nw = {nw} words is not divisible by sc = len(mu) = {sc}")
    nc = nw // sc
    require(U.shape == (K, L * d), f"U has shape {U.shape}, expected (K, L·d) = ({K}, {L * d})")
    require(K >= 1 and L >= 1, f"Z must have at least one class and one position, got shape {Z.shape}")
    require(Z.min() >= 0 and Z.max() < nc,
            f"latent variables must lie in 0..{nc - 1}, got {Z.min()}..{Z.max()}")
    require(bool(np.all(mu >= 0)) and abs(mu.sum() - 1.0) < 1e-9,
            f"mu must be non-negative and sum to 1, got min {mu.min():g} and sum {mu.sum():.12g}")
    n = sentence_count(K, sc, L)
    require(n <= max_sentences, f"exact enumeration of K·sc^L = {K}·{sc}^{L} = {n:,} sentences exceeds "
                                f"max_sentences = {max_sentences:,}; raise the limit or shrink K, sc or L")
    return nc, sc


def as_latents(Z) -> np.ndarray:
    """Z as int64, refusing (one-line InputError) values that are not integers instead of truncating them."""
    Z = np.asarray(Z)
    if np.issubdtype(Z.dtype, np.integer):
        return Z.astype(np.int64)
    require(Z.dtype.kind == "f", f"Z must hold integers (latent variables), got dtype {Z.dtype}")
    bad = ~np.isfinite(Z) | (Z != np.round(Z))                            # (K, L)
    if bad.any():
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise InputError(f"Z must hold integers (latent variables), got {float(Z[i])!r} at index {i}")
    return Z.astype(np.int64)


def word_choices(mu: np.ndarray, L: int):
    """Every β ∈ [sc]^L (lexicographic) and its probability Π_ℓ µ_{β_ℓ}.

    Returns
    -------
    B : ndarray of shape (sc**L, L), int64, B[i, ℓ] = β_ℓ of the i-th choice.
    p : ndarray of shape (sc**L,), D_z(x) for the sentence of any class built from B[i].
    """
    B = all_latent_variables(mu.shape[0], L)                              # (sc^L, L) base-sc digits
    return B, np.prod(mu[B], axis=1)                                      # (sc^L, L), (sc^L,)


def score_tables(W: np.ndarray, U: np.ndarray, L: int) -> np.ndarray:
    """Per-position score tables S[k, ℓ, w] = ⟨u_{k,ℓ}, w_w⟩, so that h(x)_k = Σ_ℓ S[k, ℓ, x_ℓ] (eq. 20).

    Parameters
    ----------
    W : ndarray of shape (d, nw); U : ndarray of shape (K, L·d).

    Returns
    -------
    S : ndarray of shape (K, L, nw).
    """
    d, nw = W.shape
    K = U.shape[0]
    return (U.reshape(K * L, d) @ W).reshape(K, L, nw)                   # (K, L, nw)


def risk0_and_phi(S: np.ndarray, Z: np.ndarray, mu: np.ndarray):
    """Unregularized true risk R0 (eq. 46) and the table Φ of eq. (130), by enumeration of every sentence.

    Parameters
    ----------
    S : ndarray of shape (K, L, nw), score tables from :func:`score_tables`.
    Z : ndarray of shape (K, L), ints in 0..nc-1; mu : ndarray of shape (sc,).

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


def lemma_s(W: np.ndarray, U: np.ndarray, Phi: np.ndarray):
    """Lemma S: ∂R0/∂u_{k,ℓ} = −Σ_w Φ[w, k, ℓ] w_w and ∂R0/∂w_w = −Σ_{k,ℓ} Φ[w, k, ℓ] u_{k,ℓ} (eq. 130).

    Parameters
    ----------
    W : ndarray of shape (d, nw); U : ndarray of shape (K, L·d); Phi : ndarray of shape (nw, K, L).

    Returns
    -------
    dW0 : ndarray of shape (d, nw), ∂R0/∂W.
    dU0 : ndarray of shape (K, L·d), ∂R0/∂U (row k = [∂R0/∂u_{k,1} … ∂R0/∂u_{k,L}]).
    """
    d, nw = W.shape
    _, K, L = Phi.shape
    Phi2 = Phi.reshape(nw, K * L)                                         # (nw, K·L), column k·L+ℓ
    dU0 = -(W @ Phi2).T.reshape(K, L * d)                                 # (K·L, d) -> (K, L·d)
    dW0 = -(U.reshape(K * L, d).T @ Phi2.T)                               # (d, nw)
    return dW0, dU0


def passes(backend: str):
    """The three passes (score_tables, risk0_and_phi, lemma_s) of `backend`: this module or its kernel."""
    if validate.backend(backend) == "numba":
        from refimpl.feature_collapse import exact_numba
        return exact_numba.score_tables, exact_numba.risk0_and_phi, exact_numba.lemma_s
    return score_tables, risk0_and_phi, lemma_s


def risk_and_grads(W, U, Z, mu, *, lam, layernorm=False, backend=validate.DEFAULT_BACKEND,
                   max_sentences=MAX_SENTENCES):
    """True risk R (eq. 5) for h, or R* (eq. 10) for h* with φ's eps = 0, and its exact gradient.

    Parameters
    ----------
    W : ndarray of shape (d, nw), column α·sc+β the embedding of word (α, β).
    U : ndarray of shape (K, L·d), row k = [u_{k,1} … u_{k,L}] (eq. 16).
    Z : ndarray of shape (K, L), latent variables, ints in 0..nc-1 (nc = nw / sc).
    mu : ndarray of shape (sc,), word frequencies (non-negative, summing to 1).
    lam : float, λ of eqs. (5)/(10): λ/2 (‖W‖² + ‖U‖²) for h, λ/2 ‖U‖² for h*.
    layernorm : bool, h* (True) or h (False).
    backend : "numba" (:mod:`.exact_numba`, the default) or "numpy" (this module).
    max_sentences : refuse (InputError) when K·sc^L exceeds this.

    Returns
    -------
    R : float; dW : ndarray of shape (d, nw); dU : ndarray of shape (K, L·d).
    """
    W, U = np.asarray(W, dtype=np.float64), np.asarray(U, dtype=np.float64)
    Z, mu = as_latents(Z), np.asarray(mu, dtype=np.float64)
    check_inputs(W, U, Z, mu, max_sentences)
    scores_of, enumerate_, grads_of = passes(backend)
    L = Z.shape[1]
    V, cache = W, None
    if layernorm:
        Vt, cache = layernorm_forward(W)                                  # (nw, d) word representations
        V = Vt.T                                                          # (d, nw) φ(W), column-wise
    R0, Phi = enumerate_(scores_of(V, U, L), Z, mu)                     # float, (nw, K, L)
    dV, dU = grads_of(V, U, Phi)                                    # (d, nw), (K, L·d)
    reg_U = 0.5 * lam * float(np.vdot(U, U))
    if layernorm:
        dW = ln.backward(dV.T, cache).T                            # (d, nw) Jᵀ ∂R0/∂φ(w), per column
        return R0 + reg_U, dW, dU + lam * U
    return R0 + reg_U + 0.5 * lam * float(np.vdot(W, W)), dV + lam * W, dU + lam * U


def layernorm_forward(W: np.ndarray):
    """φ applied to every column of W with the paper's eps = 0. Returns (φ(W)ᵀ of shape (nw, d), cache).

    φ(w) = (w − mean(w))/σ(w) is undefined for a constant column (σ = 0, and within rounding of 0 when the
    mean is not exact): refused with a one-line InputError naming the word instead of returning NaN.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        Vt, cache = ln.forward(W.T, 0.0)                                  # (nw, d), ((nw, d), (nw, 1))
    sigma = cache[1][:, 0]                                                # (nw,)
    constant = sigma <= 16 * np.finfo(np.float64).eps * np.abs(W).max(axis=0, initial=0.0)   # (nw,)
    if constant.any():
        w = int(np.flatnonzero(constant)[0])
        raise InputError(f"the embedding of word {w} (column {w} of W) is constant to float64 precision: "
                         f"LayerNorm with eps = 0 divides by its standard deviation σ = {sigma[w]:.3g}")
    return Vt, cache


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
    return np.stack([ln.jacobian(W[:, w]).T @ dV[:, w] for w in range(W.shape[1])], axis=1)
