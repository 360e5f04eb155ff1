"""The compiled walk of :mod:`.exact_numba`'s ``risk0_and_phi``: Σ_x D(x) log s(x) and the −q part of Φ
(eq. 130) over every sentence, block by block, with products of per-word exponentials (no exponential
per sentence). The derivation is in :mod:`.exact_numba`'s notes and docs/exact-kernel.md; this module
holds the loops.

    chunks(E, St, c, Z, mu, mu2, bounds, claims, phi, stats, risk, bell, call, linger)
                                                one thread's chunks, GIL-free
    finished(claims, n, spins, bell)            all n chunks done? (polls)
    chunk_one_word(St, c, Z, mu, b0, b1, phi)   L = 1: the log domain throughout

Notes
-----
**Odometer and prefix products.** Class j's sentences are the leaves of a tree whose level ℓ picks β_ℓ.
The walk goes block by block: a block is the sc² sentences that share x_1..x_{L−2}, i.e. sc groups
(x_{L−1}) of sc leaves (x_L). Per depth the walk keeps P_ℓ = Π_{ℓ'≤ℓ} E[x_ℓ', ℓ'] and D's prefix
product; when digit ℓ changes only depths ≥ ℓ are recomputed (K multiplications each).
A group's prefix Q = P_{L−2} ∘ E[x_{L−1}, L−1]; a leaf's s = Q·E[x_L, L] (K multiply-adds).

**Φ by subtree sums.** g(x)_k = (1{k=j} − q_k(x)) D(x)/K goes into Φ[x_ℓ, :, ℓ] for every ℓ (eq. 130);
its 1{k=j} part is closed-form (:mod:`.exact_numba`). In a block q_k(x) = Q_{g,k} E[w_b, L, k] / s_{g,b};
with F[g, b] = D_{g,b} / (K s_{g,b}), the −q part sums as

    −Σ_b q_k D_{g,b}/K = −Q_{g,k} Σ_b F[g, b] E[w_b, L, k]                    (group g, into Φ's row x_{L−1})
    −Σ q_k D/K over leaves w = −E[w, L, k] Σ_{groups} F[g, b] Q_{g,k}         (summed per word, applied once)

A block's Σ goes to Φ's row of depth L − 2 and to its parent's running sum; a depth's running sum goes
to Φ and to its parent's when its digit changes. Groups and leaves are taken in tiles of four or three
(:mod:`.exact_tiles`; zero weights past sc), so each K-vector pass serves several sentences. Per sentence
≈ K·(3 + 1/(sc − 1)) multiply-adds: the dot, the group sum and the per-word sum, and K/sc + K/(sc(sc − 1))
for the prefix products; O(K²·sc^L) in all, where the reference's per-sentence scores (K·L adds),
K exponentials and L rows of Φ (K·L adds) cost O(K²·sc^L·L).

**Underflow.** e_k ≤ 1, so nothing overflows; s(x) underflows only when the positions' maxima disagree by
~700 (C(x) − max_k h(x)_k ≳ 700). A leaf with s < 2^-960 (or NaN) is redone in the log domain as the
reference does it (scores summed, max subtracted, K exponentials), and its −q·D/K added directly.

**Floating point.** ``_chunk`` (with everything it inlines: ``_block``, :mod:`.exact_tiles`' loops,
``_leaf_logs``, the prefix and flush loops) is compiled with fastmath {reassoc, contract} only: the
K-long sums vectorize and multiply-adds fuse, so their rounding depends on the CPU's vector width (never
on the thread count). ``_block`` is inlined rather than called because a call per block cost ten
reference-count updates of its array arguments (5–11% of the walk at K = 81 and 243); the prefix products and
the flushes are one operation per element, which the two flags leave as written. No flag that assumes
away NaN or infinity is set (the s < SMALLEST_SUM test must see a NaN); everything else is IEEE in source
order. Agreement with the reference: ~1e-15 relative to its largest entry.
"""

import numba
import numpy as np

from refimpl import atomics, compiled  # noqa: F401  (Numba settings first)
from refimpl.feature_collapse import exact_tiles as tiles
from refimpl.feature_collapse.exact_tiles import BLOCK

SMALLEST_SUM = 2.0**-960   # a leaf with s(x) below this (or NaN) is redone in the log domain
MANTISSA, ONE = (1 << 52) - 1, 1023 << 52    # a float64's mantissa bits; the exponent bits of 1.0
SQRT2, LN2 = np.sqrt(2.0), np.log(2.0)
# atanh(f)/f = 1 + Σ_{i ≥ 1} f^2i/(2i + 1): the coefficients A_i = 1/(2i + 1)
A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11 = (1.0 / (2 * i + 1) for i in range(1, 12))


@numba.njit(cache=True, error_model="numpy", inline="always")
def _leaf_logs(s_, w_, Dn, K, n, F_, Mb):
    """The first n leaves of a block, in the flat (scp²,) views of its (scp, scp) tiles s_ (the sums s),
    w_ (µ_g µ_b) and F_ (rows g < sc): F = D/(K s) and Σ D log s over the leaves with s ≥ SMALLEST_SUM;
    returns (that sum, how many have s below or NaN). The logarithm is written out so that the loop
    vectorizes: s = m·2^e with m ∈ [√½, √2) read from s's bits (through the int64 scratch Mb), log m =
    2 atanh(f) = 2f Σ_i f^2i/(2i+1), f = (m − 1)/(m + 1), |f| ≤ 0.1716, summed to i = 11 (the next term
    is below 1e-20 relative), and log s = e·ln 2 + log m. The views are made once per chunk, not here: a
    reshape per block is a call into Numba's runtime."""
    bits = s_.view(np.int64)                                              # (scp²,) s's bits
    m_ = Mb.view(np.float64)                                              # (scp²,) m ∈ [1, 2)
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


@numba.njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract"}, inline="always")
def _block(E, Z, mu, flat, j, P, Dn, up, Q, F, Ssum, A, phi, bw):
    """The sc² sentences of class j that share the prefix product P[L−2] (sc groups of sc leaves; Dn: D's
    prefix; up = (the block's word at depth L−3, or a sink row, and its parent's running sum); flat = the
    flat views (s_, w_, F_, Mb) of :func:`_leaf_logs`, s_ and F_ of Ssum and F, w_ of µ_g µ_b (zero past
    sc)). Returns (Σ D(x) log s(x) over its leaves with s ≥ SMALLEST_SUM, how many leaves have s below).
    Adds the −q part of g to Φ's rows of depths L (via bw), L−1 and L−2 and to A[up[1]], except for the
    log-domain leaves (:func:`_block_log_domain` adds theirs). The K-long loops are :mod:`.exact_tiles`'
    (inlined), in tiles of four or of three slots."""
    K, L = Z.shape
    nw, sc, M, scp = E.shape[0] - (BLOCK - 1), mu.shape[0], L - 1, F.shape[1]
    T = tiles.tile_of(scp)
    z1, z2 = Z[j, M - 1] * sc, Z[j, M] * sc
    p = P[M - 1]                                                          # (Kp,) Π_{ℓ < L−1} E[x_ℓ, ℓ]
    for g in range(sc):                                                   # Q[g] = p ∘ E[x_g, L−1], then
        for b0 in range(0, sc, T):                                        # s(x) for a tile's leaves
            if T == BLOCK:
                tiles.dot4(Q, g, E, M, tiles.four(z2, b0, sc, nw), Ssum, b0, p, z1 + g)
            else:
                tiles.dot3(Q, g, E, M, tiles.three(z2, b0, sc, nw), Ssum, b0, p, z1 + g)
    s_, w_, F_, Mb = flat
    risk, fell = _leaf_logs(s_, w_, Dn, K, sc * scp, F_, Mb)
    for g0 in range(0, sc, T):
        for b0 in range(0, sc, T):
            if T == BLOCK:
                ws4 = tiles.four(z2, b0, sc, nw)
                tiles.group_totals4(Q, F, E, g0, b0, tiles.four(z1, g0, sc, nw), ws4, up, phi, A)
                tiles.leaf_rows4(Q, F, g0, b0, ws4, bw)
            else:
                ws3 = tiles.three(z2, b0, sc, nw)
                tiles.group_totals3(Q, F, E, g0, b0, tiles.three(z1, g0, sc, nw), ws3, up, phi, A)
                tiles.leaf_rows3(Q, F, g0, b0, ws3, bw)
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


@numba.njit(cache=True, error_model="numpy", nogil=True, fastmath={"reassoc", "contract"})
def _chunk(E, St, c, Z, mu, mu2, b0, b1, phi, stats):
    """Blocks b0..b1−1 (block i: class i // sc^(L−2), digits i % sc^(L−2)): the −q parts of g into phi
    (nw + 3, L, Kp), L ≥ 2. Returns Σ D(x)·log s(x) over their sentences; stats[0] counts the log-domain
    ones. (The 1{k=j} parts of g and the Σ_ℓ (c − S_j) part of the loss are
    :func:`.exact_steps.assemble`'.)"""
    K, L = Z.shape
    nw, _, Kp = St.shape
    sc, M, scp = mu.shape[0], L - 1, mu2.shape[0]
    P, A = np.zeros((L, Kp)), np.zeros((L, Kp))                           # prefix products, running Σ g
    P[0, :K] = 1.0
    Q, F_, s_ = np.zeros((scp, Kp)), np.zeros(scp * scp), np.zeros(scp * scp)  # a block's P, f and s
    F, Ssum = F_.reshape(scp, scp), s_.reshape(scp, scp)                 # (scp, scp) views, made once
    flat = (s_, mu2.reshape(scp * scp), F_, np.zeros(scp * scp, dtype=np.int64))  # + mantissas as bits
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
        r, fell = _block(E, Z, mu, flat, j, P, Dp[M - 1], up, Q, F, Ssum, A, phi, bw)
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
def chunks(E, St, c, Z, mu, mu2, bounds, claims, phi, stats, risk, bell, call, linger):
    """One thread's share, in one call that holds no GIL: it claims the next chunk (claims[0], shared by
    every thread), computes chunk i (blocks bounds[i] .. bounds[i + 1] − 1) into phi[i], stats[i] and
    risk[i], counts it in claims[1], and so on until none is left. Returns how many chunks it computed.
    Which thread computes a chunk changes nothing in it: the result does not depend on the claims.

    bell[0] counts the calls whose calling thread has started its share. The calling thread passes
    call = 0 and rings the bell on entry; a helper passes its call's number (the bell's value once that
    call's caller has rung) and, with no chunk left, polls the bell ≤ `linger` times until the next call's
    caller rings — that caller has then released the GIL, so the helper takes the next call's share
    without sleeping on the GIL or on the pool's queue (a wake-up costs tens of µs on a small VM)."""
    n, mine = bounds.shape[0] - 1, 0
    if call == 0:
        atomics.fetch_add(bell, 0, 1)
    while True:
        i = atomics.fetch_add(claims, 0, 1)
        if i >= n:
            break
        if bounds[i + 1] > bounds[i]:
            risk[i] = _chunk(E, St, c, Z, mu, mu2, bounds[i], bounds[i + 1], phi[i], stats[i])
        atomics.fetch_add(claims, 1, 1)                                   # chunk i's results written first
        mine += 1
    if call > 0:
        for _ in range(linger):
            if atomics.load(bell, 0) > call:
                break
    return mine


@numba.njit(cache=True, nogil=True)
def finished(claims, n, spins, bell):
    """Whether all n chunks are counted in claims[1], polled at most `spins` times (GIL-free): a thread that
    has no chunk left to claim waits here for the others' last ones instead of sleeping. If they are not
    done by then, it rings the bell before returning False: the caller is about to block on its helpers,
    and a helper that finishes later must not poll for a next call that cannot start."""
    for _ in range(spins):
        if atomics.load(claims, 1) >= n:
            return True
    atomics.fetch_add(bell, 0, 1)
    return False


@numba.njit(cache=True)
def chunk_one_word(St, c, Z, mu, b0, b1, phi):
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
