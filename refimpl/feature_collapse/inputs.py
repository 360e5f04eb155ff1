"""The entry checks of *Feature collapse*'s networks and exact risk: one function per public entry point,
called by the NumPy reference and by its Numba twin alike (a reference and its twin cannot import each
other: the reference imports the twin lazily for ``backend="numba"``), so both backends refuse the same
input with the same one-line :class:`refimpl.InputError`. Built from the validators of
:mod:`refimpl.validate`, whose docstring states the conversion rule for arrays.
"""

import numpy as np

from refimpl.errors import InputError, require
from refimpl.feature_collapse.data import sentence_count
from refimpl.validate import (
    distribution,
    first_bad,
    flag,
    float64_array,
    float_array,
    index_array,
    inplace_array,
    layernorm_rows,
    nonneg_number,
    positive_int,
)

MAX_SENTENCES = 50_000_000  # default refusal threshold for K·sc^L (a few seconds per million with Numba)


def network_inputs(W, U, tokens, labels=None, *, layernorm=False, eps=0.0, inplace=False):
    """The arguments of h and h* (eqs. 17–18) for :mod:`refimpl.feature_collapse.model` and its twin.

    W (d, nw) and U (K, L·d) real, of one float dtype (U may be None: ``embed``); with `inplace` (SGD
    steps) float32/float64 ndarrays taken as they are, values unchecked. tokens (N, L) in [0, nw) with
    N, L ≥ 1; labels (N,) in [0, K) unless None; layernorm a switch; eps ≥ 0; with LayerNorm no word of
    the batch constant (:func:`layernorm_rows`). Returns (W, U, tokens, labels, layernorm, eps), the
    index arrays int64.
    """
    array = inplace_array if inplace else float_array
    W = array("W", W, 2)
    U = None if U is None else array("U", U, 2)
    d, nw = W.shape
    require(d >= 1 and nw >= 1, f"W must have at least one row and one column, got shape {W.shape}")
    tokens = index_array("tokens", tokens, 2, nw)
    N, L = tokens.shape
    require(N >= 1, f"tokens needs at least one sentence (N >= 1), got shape {tokens.shape}")
    require(L >= 1, f"tokens needs at least one word per sentence (L >= 1), got shape {tokens.shape}")
    if U is not None:
        K, Ld = U.shape
        require(K >= 1, f"U must have at least one row (K >= 1 classes), got shape {U.shape}")
        require(Ld == L * d, f"U has {Ld} columns, expected L·d = {L}·{d} = {L * d}")
        require(U.dtype == W.dtype, f"U has dtype {U.dtype}, W has {W.dtype}: they must agree")
        if labels is not None:
            labels = class_labels(labels, N, K)
    layernorm, eps = flag("layernorm", layernorm), nonneg_number("eps", eps)
    if layernorm:
        used = np.unique(tokens)                                          # (words of the batch,)
        layernorm_rows(W.T[used], eps, "the embedding of word {i} (column {i} of W)", ids=used)
    return W, U, tokens, labels, layernorm, eps


def class_labels(labels, N: int, K: int) -> np.ndarray:
    """labels (N,) in [0, K), as int64."""
    labels = index_array("labels", labels, 1, K)
    require(labels.shape[0] == N, f"labels has {labels.shape[0]} entries for N = {N} rows: they must agree")
    return labels


def score_inputs(scores, labels):
    """The cross-entropy's arguments: scores (N, K) finite reals with N, K ≥ 1; labels (N,) in [0, K)."""
    scores = float_array("scores", scores, 2)
    N, K = scores.shape
    require(N >= 1 and K >= 1, f"scores needs at least one row and one class, got shape {scores.shape}")
    return scores, class_labels(labels, N, K)


def score_table_inputs(W, U, L):
    """exact.score_tables's: W (d, nw) and U (K, L·d) finite reals (as float64), L ≥ 1."""
    W, U = float64_array("W", W, 2), float64_array("U", U, 2)
    L = positive_int("L", L)
    d, nw = W.shape
    require(d >= 1 and nw >= 1, f"W must have at least one row and one column, got shape {W.shape}")
    require(U.shape[0] >= 1 and U.shape[1] == L * d,
            f"U has shape {U.shape}, expected (K, L·d) = (K, {L * d}) with K >= 1")
    return W, U, L


def latent_variables(Z, K: int, L: int, nw: int, sc: int) -> np.ndarray:
    """Z (K, L) of latent variables in 0..nc−1, nc = nw / sc the concepts of nw words with sc = len(µ)
    words each; as int64."""
    require(nw % sc == 0, f"nw = {nw} words is not divisible by sc = len(mu) = {sc}")
    nc = nw // sc
    Z = index_array("Z", Z, 2, None, what="latent variables")
    require(Z.shape == (K, L), f"Z has shape {Z.shape}, expected (K, L) = ({K}, {L})")
    bad = (Z < 0) | (Z >= nc)
    if bad.any():
        v, where = first_bad(bad, Z)
        raise InputError(f"latent variables must lie in 0..{nc - 1} (nc = nw / len(mu) = {nw} / {sc}), "
                         f"got {v}{where} of Z")
    return Z


def enumeration_inputs(S, Z, mu):
    """exact.risk0_and_phi's: S (K, L, nw) finite (float64), Z (K, L) latent variables, mu a distribution."""
    S = float64_array("S", S, 3)
    K, L, nw = S.shape
    require(K >= 1 and L >= 1 and nw >= 1, f"S must be (K, L, nw) with K, L, nw >= 1, got shape {S.shape}")
    mu = distribution("mu", mu)
    return S, latent_variables(Z, K, L, nw, mu.shape[0]), mu


def lemma_s_inputs(W, U, Phi):
    """exact.lemma_s's: W (d, nw), U (K, L·d), Phi (nw, K, L), all finite (as float64)."""
    W, U, Phi = float64_array("W", W, 2), float64_array("U", U, 2), float64_array("Phi", Phi, 3)
    (d, nw), (nw_, K, L) = W.shape, Phi.shape
    require(nw_ == nw and K >= 1 and L >= 1,
            f"Phi has shape {Phi.shape}, expected (nw, K, L) = ({nw}, K, L) with K, L >= 1")
    require(U.shape == (K, L * d), f"U has shape {U.shape}, expected (K, L·d) = ({K}, {L * d})")
    return W, U, Phi


def risk_inputs(W, U, Z, mu, max_sentences=MAX_SENTENCES):
    """exact.risk_and_grads's (exact.check_inputs): W (d, nw), U (K, L·d) finite reals; Z (K, L) integers
    in 0..nc−1 with nc = nw / len(mu) (floats only if integral, never truncated); mu a distribution;
    K·sc^L ≤ max_sentences. Returns (W, U, Z, mu) as float64, float64, int64, float64."""
    W, U = float64_array("W", W, 2), float64_array("U", U, 2)
    mu = distribution("mu", mu)
    Z = index_array("Z", Z, 2, None, what="latent variables")
    (d, nw), (K, L), sc = W.shape, Z.shape, mu.shape[0]
    require(K >= 1 and L >= 1, f"Z must have at least one class and one position, got shape {Z.shape}")
    require(d >= 1, f"W must have at least one row, got shape {W.shape}")
    require(U.shape == (K, L * d), f"U has shape {U.shape}, expected (K, L·d) = ({K}, {L * d})")
    Z = latent_variables(Z, K, L, nw, sc)
    max_sentences = positive_int("max_sentences", max_sentences)
    n = sentence_count(K, sc, L)
    require(n <= max_sentences, f"exact enumeration of K·sc^L = {K}·{sc}^{L} = {n:,} sentences exceeds "
                                f"max_sentences = {max_sentences:,}; raise the limit or shrink K, sc or L")
    return W, U, Z, mu


def finite_scores(S) -> None:
    """Refuse score tables S (eq. 20) that overflowed: W and U too large for float64."""
    bad = ~np.isfinite(S)
    if bad.any():
        v, where = first_bad(bad, S)
        raise InputError(f"the scores S[k, ℓ, w] = ⟨u_{{k,ℓ}}, w_w⟩ (eq. 20) overflowed to {v!r}{where}: "
                         "W and U are too large for float64")
