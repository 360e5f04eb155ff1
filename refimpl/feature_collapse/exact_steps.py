"""The compiled steps of :mod:`.exact_numba` before and after its walk (:mod:`.exact_walk`), each the
formula of the reference pass it serves, and two calls that run them together: called one by one from
Python, the steps took 0.2–0.3 ms of a K = 81, L = 4 call, as two calls ≈ 0.12 ms of its ≈ 0.55 ms
(docs/exact-kernel.md).

    scores(V, U, L)                          S (K, L, nw), eq. (20): one BLAS product
    tables(S, Kp)                            St, c, E: the per-word tables of the factorization
    walk_arrays(St, K, mu, scp, n_chunks)    the chunks' shared arrays and zeroed private results
    assemble(phi, risk, S, c, Z, mu)         R0 (eq. 46) and Φ (eq. 130) from the chunks' results
    lemma(V, U, Phi)                         Lemma S's two products (eq. 130)
    prepare(V, U, Z, mu, Kp, scp, n_chunks)  scores, whether they are finite, tables, walk_arrays
    finish(phi, risk, S, c, Z, mu, V, U)     assemble, then lemma
    values_ok(W, U, Z, mu, nc)               the value checks of exact.check_inputs, in one scan

The factorization (c, E) and the closed-form parts of ``assemble`` are derived in :mod:`.exact_numba`'s
notes. The products call BLAS through Numba's ``np.dot`` (SciPy's BLAS), as the reference's ``@`` does.
"""

import numba
import numpy as np

from refimpl import (
    compiled,  # noqa: F401  (Numba settings first)
)
from refimpl.feature_collapse.exact_tiles import BLOCK

ROUNDING = 2.3e-16   # per entry of µ, a bound on two orders of summing it (values_ok)


@numba.njit(cache=True)
def scores(V, U, L):
    """S (K, L, nw): S[k, ℓ, w] = ⟨u_{k,ℓ}, v_w⟩ (eq. 20), as (K·L, d) @ (d, nw). V, U C-contiguous."""
    d, nw = V.shape
    K = U.shape[0]
    return np.dot(U.reshape(K * L, d), V).reshape(K, L, nw)               # (K, L, nw)


@numba.njit(cache=True, error_model="numpy")
def tables(S, Kp):
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


@numba.njit(cache=True)
def walk_arrays(St, K, mu, scp, n_chunks):
    """The chunks' shared arrays and private results: mu2 (scp, scp) = µ_g µ_b (0 past sc), bounds
    (n_chunks + 1,) (chunk i: blocks bounds[i] .. bounds[i + 1] − 1 of the K·sc^(L−2); L = 1: K), claims
    (2,) = (next chunk, chunks done), and zeroed risk (n_chunks,), phi (n_chunks, nw + 3, L, Kp) (3 sink
    rows for padded slots) and stats (n_chunks, 1)."""
    nw, L, Kp = St.shape
    sc = mu.shape[0]
    mu2 = np.zeros((scp, scp))                                            # (scp, scp)
    for g in range(sc):
        for b in range(sc):
            mu2[g, b] = mu[g] * mu[b]
    blocks = K * sc ** max(L - 2, 0)
    bounds = blocks * np.arange(n_chunks + 1) // n_chunks                 # (n_chunks + 1,)
    claims = np.zeros(2, dtype=np.int64)                                  # (2,)
    risk, stats = np.zeros(n_chunks), np.zeros((n_chunks, 1), dtype=np.int64)
    return mu2, bounds, claims, risk, np.zeros((n_chunks, nw + BLOCK - 1, L, Kp)), stats


@numba.njit(cache=True)
def assemble(phi, risk, S, c, Z, mu):
    """R0 (eq. 46) and Φ (nw, K, L) (eq. 130) from the chunks' −q parts phi (n_chunks, nw + 3, L, Kp) and
    their Σ D log s, risk (n_chunks,), both summed in chunk order, plus the two parts that need no
    enumeration, since Σ_{x ∈ X_j} D(x) f(x_ℓ) = Σ_β µ_β f(z_{j,ℓ}, β) (D's other factors sum to 1): Φ's
    1{k=j} part, Φ[w, j, ℓ] += µ_β/K for w = (z_{j,ℓ}, β), and the loss's additive part,
    Σ_j Σ_ℓ Σ_β µ_β (c_{ℓ,w} − S[j, ℓ, w]) / K (every term ≥ 0)."""
    K, L, nw = S.shape
    sc = mu.shape[0]
    Phi = np.empty((nw, K, L))                                            # (nw, K, L)
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
    walked = 0.0
    for i in range(risk.shape[0]):
        walked += risk[i]
    return (walked + total) / K, Phi


@numba.njit(cache=True)
def lemma(V, U, Phi):
    """Lemma S (eq. 130): dV0 (d, nw) with ∂R0/∂v_w = −Σ_{k,ℓ} Φ[w, k, ℓ] u_{k,ℓ}, and dU0 (K, L·d) with
    ∂R0/∂u_{k,ℓ} = −Σ_w Φ[w, k, ℓ] v_w: two BLAS products. V, U, Phi C-contiguous."""
    d, nw = V.shape
    _, K, L = Phi.shape
    Phi2 = Phi.reshape(nw, K * L)                                         # (nw, K·L), column k·L+ℓ
    dU0 = np.ascontiguousarray(np.dot(V, Phi2).T).reshape(K, L * d)       # (K·L, d) -> (K, L·d)
    dV0 = np.dot(U.reshape(K * L, d).T, Phi2.T)                           # (d, nw)
    return -dV0, -dU0


@numba.njit(cache=True)
def prepare(V, U, Z, mu, Kp, scp, n_chunks):
    """:func:`scores`, whether every score is finite, :func:`tables` and :func:`walk_arrays` in one call:
    (S, finite, St, c, E, mu2, bounds, claims, risk, phi, stats)."""
    K, L = Z.shape
    S = scores(V, U, L)                                                   # (K, L, nw)
    finite = True
    for x in S.ravel():
        finite &= np.isfinite(x)
    St, c, E = tables(S, Kp)
    return (S, finite, St, c, E) + walk_arrays(St, K, mu, scp, n_chunks)


@numba.njit(cache=True)
def finish(phi, risk, S, c, Z, mu, V, U):
    """:func:`assemble`, then :func:`lemma`, in one call: (R0, dV0, dU0)."""
    R0, Phi = assemble(phi, risk, S, c, Z, mu)
    return (R0,) + lemma(V, U, Phi)


@numba.njit(cache=True)
def values_ok(W, U, Z, mu, nc):
    """True if the values pass exact.check_inputs' value checks — W, U finite; Z in 0..nc−1; µ finite,
    ≥ 0, summing to 1 within 1e-9 — False if any might not. The check sums µ in order where the reference
    sums pairwise; two orders differ by at most 2(sc − 1)u·Σµ (u = 2^-53, µ ≥ 0), so this one asks for
    1e-9 less ROUNDING·sc: it says True only where the reference's check passes."""
    for x in W.ravel():
        if not np.isfinite(x):
            return False
    for x in U.ravel():
        if not np.isfinite(x):
            return False
    for z in Z.ravel():
        if z < 0 or z >= nc:
            return False
    total = 0.0
    for x in mu:
        if not (x >= 0.0 and np.isfinite(x)):
            return False
        total += x
    return abs(total - 1.0) <= 1e-9 - ROUNDING * mu.shape[0]
