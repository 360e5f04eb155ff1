"""Numba mirror of :mod:`.exact`: the same three passes, same names and signatures.

Versions
--------
* ``score_tables``   S[k, ℓ, w] = ⟨u_{k,ℓ}, w_w⟩ (serial: O(K·L·nw·d), small next to the enumeration).
* ``risk0_and_phi``  R0 (eq. 46) and Φ (eq. 130): the K·sc^L sentences are cut into ``n_chunks`` contiguous
  ranges (a number fixed by the sizes, not by the thread count, so results do not depend on the machine);
  each range walks its sentences with an odometer over (class j, β_1..β_L), accumulates into its own copy
  of Φ, and the copies are summed at the end. Per sentence: K·L adds for the scores, K exponentials for the
  softmax, K·L adds into Φ — O(K·L), so O(K²·sc^L·L) in all.
* ``lemma_s``        the two contractions of Lemma S (serial, same cost as the score tables).

Small enumerations (fewer than SERIAL_WORK score additions) run on one thread: waking the thread pool
costs more than they do, and on a loaded machine far more (tens of ms per call, which an optimizer
calling the risk hundreds of times feels).

CPU reference: :func:`.exact.score_tables`, :func:`.exact.risk0_and_phi`,
:func:`.exact.lemma_s`; tests/test_kernels_exact.py checks agreement to 1e-12. No fastmath.
"""

import contextlib

import numba
import numpy as np

from refimpl import compiled  # noqa: F401  (Numba settings first)
from refimpl.feature_collapse import exact

MAX_CHUNKS = 16
CHUNK_BUFFER = 2**24  # at most this many float64 over all private copies of Φ (128 MiB)
SERIAL_WORK = 2**21   # below K·(K·sc^L)·L score additions the enumeration runs on one thread


@contextlib.contextmanager
def _threads_for(work: int):
    """One Numba thread for small `work`, all of them otherwise."""
    old = numba.get_num_threads()
    if work >= SERIAL_WORK or old == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)


@numba.njit(cache=True)
def _score_tables(W, U, L):
    d, nw = W.shape
    K = U.shape[0]
    S = np.empty((K, L, nw))                                              # (K, L, nw)
    for k in range(K):
        for l in range(L):
            for w in range(nw):
                acc = 0.0
                for i in range(d):
                    acc += U[k, l * d + i] * W[i, w]
                S[k, l, w] = acc
    return S


def score_tables(W: np.ndarray, U: np.ndarray, L: int) -> np.ndarray:
    """Mirror of :func:`.exact.score_tables`. Returns S of shape (K, L, nw)."""
    return _score_tables(np.ascontiguousarray(W, dtype=np.float64),
                         np.ascontiguousarray(U, dtype=np.float64), int(L))


@numba.njit(cache=True, parallel=True)
def _enumerate(St, Z, mu, n_chunks):
    """St: (nw, L, K) score tables. Returns per-chunk risk sums (n_chunks,) and Φ (n_chunks, nw, L, K)."""
    nw, L, K = St.shape
    sc = mu.shape[0]
    per_class = sc**L
    total = K * per_class
    risk = np.zeros(n_chunks)
    phi = np.zeros((n_chunks, nw, L, K))
    for c in numba.prange(n_chunks):
        start = total * c // n_chunks
        stop = total * (c + 1) // n_chunks
        y = np.empty(K)                                                   # (K,) scores, then −q·D/K
        beta = np.empty(L, dtype=np.int64)                                # (L,) odometer digits
        tok = np.empty(L, dtype=np.int64)                                 # (L,) the sentence's words
        j = start // per_class
        code = start % per_class
        for l in range(L - 1, -1, -1):
            beta[l] = code % sc
            code //= sc
        for _ in range(start, stop):
            p = 1.0
            for l in range(L):
                tok[l] = Z[j, l] * sc + beta[l]
                p *= mu[beta[l]]
            y[:] = 0.0
            for l in range(L):
                row = St[tok[l], l]
                for k in range(K):
                    y[k] += row[k]                                        # h(x)_k = Σ_ℓ S[k, ℓ, x_ℓ]
            yj = y[j]
            m = y.max()
            total_e = 0.0
            for k in range(K):
                y[k] = np.exp(y[k] - m)
                total_e += y[k]
            risk[c] += p * (m + np.log(total_e) - yj)                     # D(x)·ℓ(h(x), j)
            g = p / K
            for k in range(K):
                y[k] = -y[k] / total_e * g                                # −q_k(x) D(x)/K
            y[j] += g                                                     # (1{j=k} − q_k(x)) D(x)/K
            for l in range(L):
                acc = phi[c, tok[l], l]
                for k in range(K):
                    acc[k] += y[k]                                        # Φ[x_ℓ, k, ℓ] += …
            l = L - 1                                                     # next sentence: odometer step
            while l >= 0:
                beta[l] += 1
                if beta[l] < sc:
                    break
                beta[l] = 0
                l -= 1
            if l < 0:
                j += 1
    return risk, phi


@numba.njit(cache=True, parallel=True)
def _sum_chunks(phi):
    n_chunks, nw, L, K = phi.shape
    out = np.zeros((nw, K, L))                                            # (nw, K, L), the public layout
    for w in numba.prange(nw):
        for c in range(n_chunks):
            for l in range(L):
                for k in range(K):
                    out[w, k, l] += phi[c, w, l, k]
    return out


def n_chunks_for(K: int, sc: int, L: int, nw: int) -> int:
    """How many private copies of Φ: ≤ MAX_CHUNKS, ≥ 1024 sentences each, within CHUNK_BUFFER floats."""
    n = exact.sentence_count(K, sc, L)
    return int(max(1, min(MAX_CHUNKS, n // 1024, CHUNK_BUFFER // (nw * L * K))))


def risk0_and_phi(S: np.ndarray, Z: np.ndarray, mu: np.ndarray):
    """Mirror of :func:`.exact.risk0_and_phi`: returns (R0, Phi of shape (nw, K, L))."""
    K, L, nw = S.shape
    St = np.ascontiguousarray(S.transpose(2, 1, 0), dtype=np.float64)  # (nw, L, K) rows contiguous in k
    Z = np.ascontiguousarray(Z, dtype=np.int64)
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    with _threads_for(K * exact.sentence_count(K, mu.shape[0], L) * L):
        risk, phi = _enumerate(St, Z, mu, n_chunks_for(K, mu.shape[0], L, nw))
        Phi = _sum_chunks(phi)
    return float(risk.sum()) / K, Phi


@numba.njit(cache=True)
def _lemma_s(W, U, Phi):
    d, nw = W.shape
    _, K, L = Phi.shape
    dU = np.zeros((K, L * d))                                             # (K, L·d)
    dW = np.zeros((d, nw))                                                # (d, nw)
    for k in range(K):
        for l in range(L):
            for w in range(nw):
                f = Phi[w, k, l]
                for i in range(d):
                    dU[k, l * d + i] -= f * W[i, w]                       # −Σ_w Φ[w,k,ℓ] w_w
    for w in range(nw):
        for k in range(K):
            for l in range(L):
                f = Phi[w, k, l]
                for i in range(d):
                    dW[i, w] -= f * U[k, l * d + i]                       # −Σ_{k,ℓ} Φ[w,k,ℓ] u_{k,ℓ}
    return dW, dU


def lemma_s(W: np.ndarray, U: np.ndarray, Phi: np.ndarray):
    """Mirror of :func:`.exact.lemma_s`: returns (dW0 of shape (d, nw), dU0 of shape (K, L·d))."""
    return _lemma_s(np.ascontiguousarray(W, dtype=np.float64), np.ascontiguousarray(U, dtype=np.float64),
                    np.ascontiguousarray(Phi, dtype=np.float64))


def risk_and_grads(W, U, Z, mu, *, lam, layernorm=False, max_sentences=exact.MAX_SENTENCES):
    """:func:`.exact.risk_and_grads` with this module's passes (backend="numba")."""
    return exact.risk_and_grads(W, U, Z, mu, lam=lam, layernorm=layernorm, backend="numba",
                                max_sentences=max_sentences)
