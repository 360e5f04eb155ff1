"""Numba mirror of :mod:`.exact`: the same three passes, same names and signatures.

Versions
--------
* ``score_tables``   S[k, ℓ, w] = ⟨u_{k,ℓ}, w_w⟩ (eq. 20): one BLAS product, as in the reference.
* ``risk0_and_phi``  R0 (eq. 46) and Φ (eq. 130) with no exponential per sentence: products of per-word
  exponentials along an odometer, prefix products and subtree sums (Notes; docs/exact-kernel.md).
* ``lemma_s``        the two contractions of Lemma S: two BLAS products, as in the reference.

CPU reference: :func:`.exact.score_tables`, :func:`.exact.risk0_and_phi`, :func:`.exact.lemma_s`;
tests/feature_collapse/test_exact_numba.py checks agreement to 1e-12. This module does not import
:mod:`.exact` (which imports it lazily for ``backend="numba"``): its public functions check their
arguments with the functions the reference calls (:func:`refimpl.inputs.score_table_inputs`,
:func:`refimpl.inputs.enumeration_inputs`, :func:`refimpl.inputs.lemma_s_inputs`), so both backends
refuse the same input with the same message.

Notes
-----
**Factorization.** h(x)_k = Σ_ℓ S[k, ℓ, x_ℓ] is additive over positions. With c_{ℓ,w} = max_k S[k, ℓ, w] and
E[w, ℓ, k] = exp(S[k, ℓ, w] − c_{ℓ,w}) ∈ [0, 1] (K·L·nw exponentials, once), and C(x) = Σ_ℓ c_{ℓ,x_ℓ}:

    e_k(x) = exp(h(x)_k − C(x)) = Π_ℓ E[x_ℓ, ℓ, k],      s(x) = Σ_k e_k(x),      q_k(x) = e_k(x) / s(x),
    ℓ(h(x), j) = log s(x) + Σ_ℓ (c_{ℓ,x_ℓ} − S[j, ℓ, x_ℓ])                     (the loss inside eq. 46)

— one logarithm per sentence, no exponential, and every term of the last sum is ≥ 0.

**What needs no enumeration.** D(x) = Π_ℓ µ_{β_ℓ}, so for any f of one position Σ_{x ∈ X_j} D(x) f(x_ℓ) =
Σ_β µ_β f(z_{j,ℓ}, β): the last sum's share of R0 is Σ_j Σ_ℓ Σ_β µ_β (c_{ℓ,w} − S[j, ℓ, w]) / K, and the
1{k=j} part of Φ is Φ[w, j, ℓ] = µ_β / K for w = (z_{j,ℓ}, β) — K·L·sc terms each (``_assemble``).
The walk below only computes Σ_x D(x) log s(x) and Φ's −q part.

**Odometer and prefix products.** Class j's sentences are the leaves of a tree whose level ℓ picks β_ℓ.
The walk goes block by block: a block is the sc² sentences that share x_1..x_{L−2}, i.e. sc groups
(x_{L−1}) of sc leaves (x_L). Per depth the walk keeps P_ℓ = Π_{ℓ'≤ℓ} E[x_ℓ', ℓ'] and D's prefix
product; when digit ℓ changes only depths ≥ ℓ are recomputed (K multiplications each).
A group's prefix Q = P_{L−2} ∘ E[x_{L−1}, L−1]; a leaf's s = Q·E[x_L, L] (K multiply-adds).

**Φ by subtree sums.** g(x)_k = (1{k=j} − q_k(x)) D(x)/K goes into Φ[x_ℓ, :, ℓ] for every ℓ (eq. 130);
its 1{k=j} part is closed-form (above). In a block q_k(x) = Q_{g,k} E[w_b, L, k] / s_{g,b}; with
F[g, b] = D_{g,b} / (K s_{g,b}), the −q part sums as

    −Σ_b q_k D_{g,b}/K = −Q_{g,k} Σ_b F[g, b] E[w_b, L, k]                    (group g, into Φ's row x_{L−1})
    −Σ q_k D/K over leaves w = −E[w, L, k] Σ_{groups} F[g, b] Q_{g,k}         (summed per word, applied once)

A block's Σ goes to Φ's row of depth L − 2 and to its parent's running sum; a depth's running sum goes
to Φ and to its parent's when its digit changes. Groups and leaves are taken four by four (zero weights
past sc), so each K-vector pass serves several sentences. Per sentence ≈ K·(3 + 1/(sc − 1)) multiply-adds:
the dot, the group sum and the per-word sum, and K/sc + K/(sc(sc − 1)) for the prefix products; O(K²·sc^L)
in all, where the reference's per-sentence scores (K·L adds), K exponentials and L rows of Φ (K·L adds)
cost O(K²·sc^L·L).

**Underflow.** e_k ≤ 1, so nothing overflows; s(x) underflows only when the positions' maxima disagree by
~700 (C(x) − max_k h(x)_k ≳ 700). A leaf with s < 2^-960 (or NaN) is redone in the log domain as the
reference does it (scores summed, max subtracted, K exponentials), and its −q·D/K added directly.

**Floating point.** ``_block`` (with the loops it inlines: ``_dot4``, ``_group_totals``, ``_leaf_rows``) is
compiled with fastmath {reassoc, contract} only: its K-long sums vectorize and multiply-adds fuse, so their
rounding depends on the CPU's vector width (never on the thread count). No flag that assumes away NaN or
infinity is set (the s < SMALLEST_SUM test must see a NaN); everything else is IEEE in source order.
Agreement with the reference: ~1e-15 relative to its largest entry.

**Chunks.** The K·sc^(L−2) blocks are cut into ``n_chunks`` contiguous ranges, a number fixed by the sizes
(not the thread count), each with private Φ and buffers summed in a fixed order: the result does not
depend on the number of threads. A pool of ``numba.get_num_threads()`` threads runs them (``_chunk``
releases the GIL; a ``prange`` over chunks does the same but doubles the compile time, to ~20 s, by
re-optimizing the whole kernel inside the parallel loop). Small enumerations (K·K·sc^L < SERIAL_WORK)
run on one thread: handing chunks to the pool costs more than they do. L = 1 (sc sentences per class)
takes the log-domain path for every sentence.
"""

import functools
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from refimpl import (
    compiled,  # noqa: F401  (Numba settings first)
    )
from refimpl.feature_collapse import inputs
from refimpl.feature_collapse.data import sentence_count

MAX_CHUNKS = 16
CHUNK_SENTENCES = 4096     # at least this many sentences per chunk
CHUNK_BUFFER = 2**24       # at most this many float64 over all private copies of Φ (128 MiB)
SERIAL_WORK = 2**20        # below K·(K·sc^L) units (≈ 0.5 ms on one core) the enumeration runs on one thread
LANES = 8                  # classes are padded to a multiple of LANES (zero weight: E = 0 there)
SMALLEST_SUM = 2.0**-960   # a leaf with s(x) below this (or NaN) is redone in the log domain
BLOCK = 4                  # groups and leaves are handled four at a time (zero weights past sc)
MANTISSA, ONE = (1 << 52) - 1, 1023 << 52    # a float64's mantissa bits; the exponent bits of 1.0
SQRT2, LN2 = np.sqrt(2.0), np.log(2.0)
# atanh(f)/f = 1 + Σ_{i ≥ 1} f^2i/(2i + 1): the coefficients A_i = 1/(2i + 1)
A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11 = (1.0 / (2 * i + 1) for i in range(1, 12))


def _threads_for(work: int) -> int:
    """How many threads run the chunks: one for small `work` (K·K·sc^L < SERIAL_WORK), else Numba's."""
    return 1 if work < SERIAL_WORK else numba.get_num_threads()


@functools.lru_cache(maxsize=1)
def _pool(threads: int) -> ThreadPoolExecutor:
    """A pool of `threads` threads (the helpers of the calling thread), kept between calls (chunks
    release the GIL)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="exact_numba")


def score_tables(W: np.ndarray, U: np.ndarray, L: int, *, check: bool = True) -> np.ndarray:
    """Mirror of :func:`.exact.score_tables` (eq. 20): one BLAS product. Returns S of shape (K, L, nw);
    `check` as there."""
    if check:
        W, U, L = inputs.score_table_inputs(W, U, L)
    d, nw = W.shape
    K = U.shape[0]
    return (U.reshape(K * L, d) @ W).reshape(K, L, nw)                   # (K, L, nw)


@numba.njit(cache=True, error_model="numpy")
def _tables(S, Kp):
    """Per-word tables, rows contiguous in k: St (nw, L, Kp) = S, c (nw, L) = max_k S and
    E (nw + 3, L, Kp) = exp(S − c). Padding (classes K..Kp−1, and E's last three rows: "no word") is 0."""
    K, L, nw = S.shape
    St = np.zeros((nw, L, Kp))                                            # (nw, L, Kp)
    E = np.zeros((nw + BLOCK - 1, L, Kp))                                 # (nw + 3, L, Kp)
    c = np.empty((nw, L))                                                 # (nw, L)
    for w in range(nw):
        for l in range(L):
            m = S[0, l, w]
            for k in range(K):
                St[w, l, k] = S[k, l, w]
                m = max(m, S[k, l, w])
            c[w, l] = m
            for k in range(K):
                E[w, l, k] = np.exp(St[w, l, k] - m)
    return St, c, E


@numba.njit(cache=True, error_model="numpy", inline="always")
def _four(z, i0, sc, nw):
    """Rows z + i0 .. z + i0 + 3 for slots i0..i0 + 3; a slot past sc gets its own "no word" row nw + 0..2."""
    return (z + i0, z + i0 + 1 if i0 + 1 < sc else nw, z + i0 + 2 if i0 + 2 < sc else nw + 1,
            z + i0 + 3 if i0 + 3 < sc else nw + 2)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _dot4(Q, g, E, l, w0, w1, w2, w3):
    """Σ_k Q[g, k] E[w_i, l, k] for four words w_i. Reassociated so that the sums vectorize: their order
    depends on the CPU's vector width, never on the thread count; every term is ≥ 0."""
    s0 = s1 = s2 = s3 = 0.0
    for k in range(Q.shape[1]):
        q = Q[g, k]
        s0 += q * E[w0, l, k]
        s1 += q * E[w1, l, k]
        s2 += q * E[w2, l, k]
        s3 += q * E[w3, l, k]
    return s0, s1, s2, s3


@numba.njit(cache=True, error_model="numpy", inline="always")
def _group_totals(Q, F, E, g0, b0, xs, ws, up, phi, A):
    """Tile (groups g0..g0+3) × (leaves b0..b0+3): v_g = −Q[g] ∘ Σ_b F[g, b] E[w_b, L] (the −q part of the
    group's Σ g) added to Φ[x_g, :, L−1]; Σ_g v_g added to the block's row Φ[x, :, L−2] and to its parent's
    running sum A[a], (x, a) = up. Fused multiply-adds allowed."""
    l = E.shape[1] - 1
    x0, x1, x2, x3 = xs
    w0, w1, w2, w3 = ws
    x, a = up
    f00, f01, f02, f03 = F[g0, b0], F[g0, b0 + 1], F[g0, b0 + 2], F[g0, b0 + 3]
    f10, f11, f12, f13 = F[g0 + 1, b0], F[g0 + 1, b0 + 1], F[g0 + 1, b0 + 2], F[g0 + 1, b0 + 3]
    f20, f21, f22, f23 = F[g0 + 2, b0], F[g0 + 2, b0 + 1], F[g0 + 2, b0 + 2], F[g0 + 2, b0 + 3]
    f30, f31, f32, f33 = F[g0 + 3, b0], F[g0 + 3, b0 + 1], F[g0 + 3, b0 + 2], F[g0 + 3, b0 + 3]
    for k in range(Q.shape[1]):
        e0, e1, e2, e3 = E[w0, l, k], E[w1, l, k], E[w2, l, k], E[w3, l, k]
        v0 = -Q[g0, k] * (((f00 * e0 + f01 * e1) + f02 * e2) + f03 * e3)
        v1 = -Q[g0 + 1, k] * (((f10 * e0 + f11 * e1) + f12 * e2) + f13 * e3)
        v2 = -Q[g0 + 2, k] * (((f20 * e0 + f21 * e1) + f22 * e2) + f23 * e3)
        v3 = -Q[g0 + 3, k] * (((f30 * e0 + f31 * e1) + f32 * e2) + f33 * e3)
        phi[x0, l - 1, k] += v0
        phi[x1, l - 1, k] += v1
        phi[x2, l - 1, k] += v2
        phi[x3, l - 1, k] += v3
        v = ((v0 + v1) + v2) + v3
        phi[x, max(l - 2, 0), k] += v
        A[a, k] += v


@numba.njit(cache=True, error_model="numpy", inline="always")
def _leaf_rows(Q, F, g0, b0, ws, bw):
    """Tile (groups g0..g0+3) × (leaves b0..b0+3): bw[w_b] += Σ_g F[g, b] Q[g] (Σ f P, for Φ[w_b, :, L])."""
    w0, w1, w2, w3 = ws
    f00, f01, f02, f03 = F[g0, b0], F[g0, b0 + 1], F[g0, b0 + 2], F[g0, b0 + 3]
    f10, f11, f12, f13 = F[g0 + 1, b0], F[g0 + 1, b0 + 1], F[g0 + 1, b0 + 2], F[g0 + 1, b0 + 3]
    f20, f21, f22, f23 = F[g0 + 2, b0], F[g0 + 2, b0 + 1], F[g0 + 2, b0 + 2], F[g0 + 2, b0 + 3]
    f30, f31, f32, f33 = F[g0 + 3, b0], F[g0 + 3, b0 + 1], F[g0 + 3, b0 + 2], F[g0 + 3, b0 + 3]
    for k in range(Q.shape[1]):
        q0, q1, q2, q3 = Q[g0, k], Q[g0 + 1, k], Q[g0 + 2, k], Q[g0 + 3, k]
        bw[w0, k] += ((f00 * q0 + f10 * q1) + f20 * q2) + f30 * q3
        bw[w1, k] += ((f01 * q0 + f11 * q1) + f21 * q2) + f31 * q3
        bw[w2, k] += ((f02 * q0 + f12 * q1) + f22 * q2) + f32 * q3
        bw[w3, k] += ((f03 * q0 + f13 * q1) + f23 * q2) + f33 * q3


@numba.njit(cache=True, error_model="numpy", inline="always")
def _leaf_logs(Ssum, mu2, Dn, K, n, F, Mb):
    """The first n leaves of a block (rows g < sc of the (scp, scp) tiles): F = D/(K s) and Σ D log s over
    the leaves with s ≥ SMALLEST_SUM; returns (that sum, how many have s below or NaN). The logarithm is
    written out so that the loop vectorizes: s = m·2^e with m ∈ [√½, √2) read from s's bits (through the
    int64 scratch Mb), log m = 2 atanh(f) = 2f Σ_i f^2i/(2i+1), f = (m − 1)/(m + 1), |f| ≤ 0.1716,
    summed to i = 11 (the next term is below 1e-20 relative), and log s = e·ln 2 + log m."""
    size = Ssum.size
    s_, F_, w_ = Ssum.reshape(size), F.reshape(size), mu2.reshape(size)   # (scp²,) flat views
    bits = s_.view(np.int64)                                              # (n,) s's bits
    m_ = Mb.view(np.float64)                                              # (n,) m ∈ [1, 2), then its log
    for t in range(n):
        Mb[t] = (bits[t] & MANTISSA) | ONE                                # m: s's mantissa, exponent 0
    risk, fell = 0.0, 0
    for t in range(n):
        s, D = s_[t], Dn * w_[t]
        e = np.float64(np.int32(bits[t] >> 52) - 1023)                    # s's exponent (s normal, > 0)
        m = m_[t]
        big = m > SQRT2
        m = m * 0.5 if big else m
        e = e + 1.0 if big else e
        f = (m - 1.0) / (m + 1.0)
        f2 = f * f
        p = ((((((((((A11 * f2 + A10) * f2 + A9) * f2 + A8) * f2 + A7) * f2 + A6) * f2 + A5) * f2 + A4) * f2
               + A3) * f2 + A2) * f2 + A1) * f2 + 1.0
        logs = e * LN2 + 2.0 * f * p                                      # log s
        ok = s >= SMALLEST_SUM                                            # False for NaN
        risk += D * logs if ok else 0.0                                   # D(x)·log s(x)
        F_[t] = D / (K * s) if ok else 0.0                                # q_k D/K = F P_k E[w, L, k]
        fell += 0 if ok else 1
    return risk, fell


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _block(E, Z, mu, mu2, j, P, Dn, up, Q, F, Ssum, Mb, A, phi, bw):
    """The sc² sentences of class j that share the prefix product P[L−2] (sc groups of sc leaves; Dn: D's
    prefix; up = (the block's word at depth L−3, or a sink row, and its parent's running sum); mu2 (scp,
    scp) = µ_g µ_b, zero past sc). Returns (Σ D(x) log s(x) over its leaves with s ≥ SMALLEST_SUM, how many
    leaves have s below). Adds the −q part of g to Φ's rows of depths L (via bw), L−1 and L−2 and to
    A[up[1]], except for the log-domain leaves (:func:`_block_log_domain` adds theirs). Calls nothing."""
    K, L = Z.shape
    nw, sc, M, Kp = E.shape[0] - (BLOCK - 1), mu.shape[0], L - 1, Q.shape[1]
    scp = F.shape[1]
    z1, z2 = Z[j, M - 1] * sc, Z[j, M] * sc
    for g in range(sc):
        w1 = z1 + g
        for k in range(Kp):
            Q[g, k] = P[M - 1, k] * E[w1, M - 1, k]                       # Π_{ℓ ≤ L−1} E[x_ℓ, ℓ, k]
        for b0 in range(0, sc, BLOCK):
            w0, w1_, w2, w3 = _four(z2, b0, sc, nw)
            s0, s1, s2, s3 = _dot4(Q, g, E, M, w0, w1_, w2, w3)           # s(x) for four leaves
            Ssum[g, b0], Ssum[g, b0 + 1], Ssum[g, b0 + 2], Ssum[g, b0 + 3] = s0, s1, s2, s3
    risk, fell = _leaf_logs(Ssum, mu2, Dn, K, sc * scp, F, Mb)
    for g0 in range(0, sc, BLOCK):
        xs = _four(z1, g0, sc, nw)
        for b0 in range(0, sc, BLOCK):
            ws = _four(z2, b0, sc, nw)
            _group_totals(Q, F, E, g0, b0, xs, ws, up, phi, A)
            _leaf_rows(Q, F, g0, b0, ws, bw)
    return risk, fell - sc * (scp - sc)                                   # padded leaves (s = 0) do not count


@numba.njit(cache=True)
def _log_domain(St, c, tok, j, K, g, phi, w, l, extra, y):
    """Sentence tok of class j as the reference computes it (scores summed, max subtracted, K exponentials):
    returns log s(x) = log Σ_k exp(h(x)_k − C(x)) = log Σ_k exp(h(x)_k − m) + (m − C(x)), m = max_k h(x)_k,
    and adds −q(x)·g to Φ[w, :, l] and to `extra`."""
    C = 0.0
    for k in range(K):
        y[k] = 0.0
    for i in range(tok.shape[0]):
        C += c[tok[i], i]                                                 # C(x) = Σ_ℓ c_{ℓ, x_ℓ}
        for k in range(K):
            y[k] += St[tok[i], i, k]                                      # h(x)_k = Σ_ℓ S[k, ℓ, x_ℓ]
    m, total = y[0], 0.0
    for k in range(K):
        m = max(m, y[k])
    for k in range(K):
        y[k] = np.exp(y[k] - m)
        total += y[k]
    for k in range(K):
        v = -y[k] / total * g                                             # −q_k(x) D(x)/K
        phi[w, l, k] += v
        extra[k] += v
    return np.log(total) + (m - C)


@numba.njit(cache=True)
def _block_log_domain(St, c, Z, mu, j, tok, Dn, up, Ssum, A, phi, extra, y):
    """The block's leaves with s < SMALLEST_SUM (or NaN), in the log domain: returns their Σ D·log s and adds
    their −q·D/K to Φ's rows of depths L, L−1 and L−2 and to A[up[1]]."""
    K, L = Z.shape
    sc, M = mu.shape[0], L - 1
    risk = 0.0
    for g in range(sc):
        tok[M - 1] = Z[j, M - 1] * sc + g
        for b in range(sc):
            if not Ssum[g, b] >= SMALLEST_SUM:
                tok[M] = Z[j, M] * sc + b
                D = Dn * mu[g] * mu[b]
                risk += D * _log_domain(St, c, tok, j, K, D / K, phi, tok[M], M, extra, y)
        for k in range(extra.shape[0]):
            phi[tok[M - 1], M - 1, k] += extra[k]
            phi[up[0], max(M - 2, 0), k] += extra[k]
            A[up[1], k] += extra[k]
            extra[k] = 0.0
    return risk


@numba.njit(cache=True, error_model="numpy", inline="always")
def _prefixes(E, Z, mu, j, beta, d0, tok, P, Dp):
    """Depths d0..L−3 of the prefix state: P[d+1] = P[d]∘E[x_d, d] and D's prefix Dp[d+1] = Dp[d]·µ_{β_d}."""
    sc = mu.shape[0]
    for d in range(d0, tok.shape[0] - 2):
        x = Z[j, d] * sc + beta[d]
        tok[d] = x
        for k in range(P.shape[1]):
            P[d + 1, k] = P[d, k] * E[x, d, k]
        Dp[d + 1] = Dp[d] * mu[beta[d]]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _flush(phi, A, tok, d0):
    """Depths L−4 down to d0 are complete: move each running sum A[d+1] into Φ's row and its parent's
    (a block, depth L−3, adds its sums to its own row and to its parent's running sum directly)."""
    for d in range(tok.shape[0] - 4, d0 - 1, -1):
        x = tok[d]
        for k in range(A.shape[1]):
            phi[x, d, k] += A[d + 1, k]
        if d > 0:                                                         # A[0], the class root, is unread
            for k in range(A.shape[1]):
                A[d, k] += A[d + 1, k]
        for k in range(A.shape[1]):
            A[d + 1, k] = 0.0


@numba.njit(cache=True, error_model="numpy", nogil=True)
def _chunk(E, St, c, Z, mu, mu2, b0, b1, phi, stats):
    """Blocks b0..b1−1 (block i: class i // sc^(L−2), digits i % sc^(L−2)): the −q parts of g into phi
    (nw + 3, L, Kp), L ≥ 2. Returns Σ D(x)·log s(x) over their sentences; stats[0] counts the log-domain
    ones. (The 1{k=j} parts of g and the Σ_ℓ (c − S_j) part of the loss are :func:`_assemble`'.)"""
    K, L = Z.shape
    nw, _, Kp = St.shape
    sc, M, scp = mu.shape[0], L - 1, -(-mu.shape[0] // BLOCK) * BLOCK
    P, A = np.zeros((L, Kp)), np.zeros((L, Kp))                           # prefix products, running Σ g
    P[0, :K] = 1.0
    Q, F, Ssum = np.zeros((scp, Kp)), np.zeros((scp, scp)), np.zeros((scp, scp))  # a block's P, f and s
    Mb = np.zeros(scp * scp, dtype=np.int64)                              # the leaves' mantissas, as bits
    Dp = np.ones(L)                                                       # prefixes of D
    bw, extra, y = np.zeros((nw + BLOCK - 1, Kp)), np.zeros(Kp), np.empty(Kp)
    tok, beta = np.zeros(L, dtype=np.int64), np.zeros(L, dtype=np.int64)  # (L,) words, digits
    j, code = b0 // sc ** (M - 1), b0 % sc ** (M - 1)
    for d in range(M - 2, -1, -1):
        beta[d] = code % sc
        code //= sc
    _prefixes(E, Z, mu, j, beta, 0, tok, P, Dp)
    risk = 0.0
    for i in range(b0, b1):
        up = (tok[M - 2], M - 2) if M >= 2 else (nw, 0)                  # L = 2: the block is the class
        r, fell = _block(E, Z, mu, mu2, j, P, Dp[M - 1], up, Q, F, Ssum, Mb, A, phi, bw)
        risk += r
        if fell:
            stats[0] += fell
            risk += _block_log_domain(St, c, Z, mu, j, tok, Dp[M - 1], up, Ssum, A, phi, extra, y)
        d = M - 2                                                         # odometer step over the prefix
        while d >= 0:
            beta[d] += 1
            if beta[d] < sc:
                break
            beta[d] = 0
            d -= 1
        _flush(phi, A, tok, max(d, 0) if i + 1 < b1 else 0)               # completed depths (all at the end)
        if d < 0:
            j, d = j + 1, 0                                               # next class
        if i + 1 < b1:
            _prefixes(E, Z, mu, j, beta, d, tok, P, Dp)
    for w in range(nw):
        for k in range(Kp):
            phi[w, M, k] -= E[w, M, k] * bw[w, k]                         # Φ[w, k, L] −= E[w, L, k] Σ f P_k
    return risk


@numba.njit(cache=True, error_model="numpy", nogil=True)
def _chunks(E, St, c, Z, mu, mu2, bounds, first, step, phi, stats, risk):
    """Chunks first, first + step, … (chunk i: blocks bounds[i] .. bounds[i + 1] − 1) into phi[i], stats[i]
    and risk[i]: one thread's share, in one call that holds no GIL."""
    for i in range(first, bounds.shape[0] - 1, step):
        if bounds[i + 1] > bounds[i]:
            risk[i] = _chunk(E, St, c, Z, mu, mu2, bounds[i], bounds[i + 1], phi[i], stats[i])


@numba.njit(cache=True)
def _chunk_one_word(St, c, Z, mu, b0, b1, phi):
    """L = 1: classes b0..b1−1, each of sc one-word sentences, all in the log domain (the reference's way):
    returns Σ D(x)·log s(x) and adds the −q parts of g to phi."""
    K = Z.shape[0]
    sc = mu.shape[0]
    tok, y, sink = np.zeros(1, dtype=np.int64), np.empty(St.shape[2]), np.zeros(St.shape[2])
    risk = 0.0
    for j in range(b0, b1):
        for b in range(sc):
            w = Z[j, 0] * sc + b
            tok[0] = w
            risk += mu[b] * _log_domain(St, c, tok, j, K, mu[b] / K, phi, w, 0, sink, y)
    return risk


def _enumerate(E, St, c, Z, mu, n_chunks, threads):
    """Per-chunk risk sums (n_chunks,), Φ (n_chunks, nw + 3, L, Kp) and log-domain counts (n_chunks,), L ≥ 2.
    Chunk i covers a range of blocks fixed by the sizes; `threads` only decides who runs it: the calling
    thread and threads − 1 pool threads take the next chunk from a shared counter until none is left."""
    nw, L, Kp = St.shape
    blocks = Z.shape[0] * mu.shape[0] ** (L - 2)
    risk = np.zeros(n_chunks)
    phi = np.zeros((n_chunks, nw + BLOCK - 1, L, Kp))                     # 3 sink rows for padded slots
    stats = np.zeros((n_chunks, 1), dtype=np.int64)
    sc, scp = mu.shape[0], -(-mu.shape[0] // BLOCK) * BLOCK
    mu2 = np.zeros((scp, scp))                                            # (scp, scp) µ_g µ_b, 0 past sc
    mu2[:sc, :sc] = np.outer(mu, mu)
    bounds = blocks * np.arange(n_chunks + 1) // n_chunks                 # (n_chunks + 1,) chunk i: blocks
    T = min(threads, n_chunks)                                            # bounds[i] .. bounds[i + 1] − 1

    def run(first):
        _chunks(E, St, c, Z, mu, mu2, bounds, first, T, phi, stats, risk)

    helpers = [_pool(threads - 1).submit(run, t) for t in range(1, T)]
    run(0)
    for helper in helpers:
        helper.result()
    return risk, phi, stats[:, 0]


def n_chunks_for(K: int, sc: int, L: int, nw: int) -> int:
    """How many private copies of Φ: a power of two (so that 2 or 4 threads share them evenly),
    ≤ MAX_CHUNKS, ≥ CHUNK_SENTENCES sentences each, within CHUNK_BUFFER floats in all."""
    n = sentence_count(K, sc, L)
    most = max(1, min(MAX_CHUNKS, n // CHUNK_SENTENCES, CHUNK_BUFFER // ((nw + BLOCK - 1) * L * _padded(K))))
    return 1 << (most.bit_length() - 1)


def _padded(K: int) -> int:
    return -(-K // LANES) * LANES


def enumerate_sentences(S: np.ndarray, Z: np.ndarray, mu: np.ndarray, *, check: bool = True):
    """:func:`risk0_and_phi` and how many sentences took the log-domain path: (R0, Phi, count)."""
    if check:
        S, Z, mu = inputs.enumeration_inputs(S, Z, mu)
    K, L, nw = S.shape
    Z = np.ascontiguousarray(Z, dtype=np.int64)
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    sc = mu.shape[0]
    S = np.ascontiguousarray(S, dtype=np.float64)
    St, c, E = _tables(S, _padded(K))
    if L == 1:                                                            # K·sc sentences: one chunk
        phi, stats = np.zeros((1, nw + BLOCK - 1, 1, St.shape[2])), np.array([K * sc])
        risk = np.array([_chunk_one_word(St, c, Z, mu, 0, K, phi[0])])
    else:
        threads = _threads_for(K * sentence_count(K, sc, L))
        risk, phi, stats = _enumerate(E, St, c, Z, mu, n_chunks_for(K, sc, L, nw), threads)
    Phi = np.empty((nw, K, L))                                            # (nw, K, L)
    risk_H = _assemble(phi, S, c, Z, mu, Phi)
    return (float(risk.sum()) + risk_H) / K, Phi, int(stats.sum())


@numba.njit(cache=True)
def _assemble(phi, S, c, Z, mu, Phi):
    """Φ (nw, K, L) ← the chunks' −q parts phi (n_chunks, nw + 3, L, Kp), summed in chunk order, plus the
    two parts of R0 and Φ that need no enumeration, since Σ_{x ∈ X_j} D(x) f(x_ℓ) = Σ_β µ_β f(z_{j,ℓ}, β)
    (D's other factors sum to 1): Φ's 1{k=j} part, Φ[w, j, ℓ] += µ_β/K for w = (z_{j,ℓ}, β); returns K
    times the loss's additive part, Σ_j Σ_ℓ Σ_β µ_β (c_{ℓ,w} − S[j, ℓ, w]) (every term ≥ 0)."""
    K, L, nw = S.shape
    sc = mu.shape[0]
    for w in range(nw):
        for l in range(L):
            for k in range(K):                                            # phi's rows are contiguous in k
                Phi[w, k, l] = phi[0, w, l, k]
            for i in range(1, phi.shape[0]):                              # then the chunks, in order
                for k in range(K):
                    Phi[w, k, l] += phi[i, w, l, k]
    total = 0.0
    for j in range(K):
        for l in range(L):
            for b in range(sc):
                w = Z[j, l] * sc + b
                Phi[w, j, l] += mu[b] / K
                total += mu[b] * (c[w, l] - S[j, l, w])
    return total


def risk0_and_phi(S: np.ndarray, Z: np.ndarray, mu: np.ndarray, *, check: bool = True):
    """Mirror of :func:`.exact.risk0_and_phi`: R0 (eq. 46) and Φ of shape (nw, K, L) (eq. 130).

    Parameters
    ----------
    S : ndarray of shape (K, L, nw), score tables.
    Z : ndarray of shape (K, L), ints in 0..nc-1; mu : ndarray of shape (sc,).
    check : validate the arguments (InputError) first; False skips that, for callers that have.

    Returns
    -------
    R0 : float; Phi : ndarray of shape (nw, K, L).
    """
    R0, Phi, _ = enumerate_sentences(S, Z, mu, check=check)
    return R0, Phi


def lemma_s(W: np.ndarray, U: np.ndarray, Phi: np.ndarray, *, check: bool = True):
    """Mirror of :func:`.exact.lemma_s`, two BLAS products. Lemma S (eq. 130): ∂R0/∂u_{k,ℓ} =
    −Σ_w Φ[w, k, ℓ] w_w and ∂R0/∂w_w = −Σ_{k,ℓ} Φ[w, k, ℓ] u_{k,ℓ}. `check` as there.

    Returns
    -------
    dW0 : ndarray of shape (d, nw); dU0 : ndarray of shape (K, L·d).
    """
    if check:
        W, U, Phi = inputs.lemma_s_inputs(W, U, Phi)
    d, nw = W.shape
    _, K, L = Phi.shape
    Phi2 = Phi.reshape(nw, K * L)                                         # (nw, K·L), column k·L+ℓ
    dU0 = -(W @ Phi2).T.reshape(K, L * d)                                 # (K·L, d) -> (K, L·d)
    dW0 = -(U.reshape(K * L, d).T @ Phi2.T)                               # (d, nw)
    return dW0, dU0
