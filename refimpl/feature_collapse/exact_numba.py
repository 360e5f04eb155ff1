"""Numba mirror of :mod:`.exact`: the same three passes, same names and signatures.

Versions
--------
* ``score_tables``     S[k, ℓ, w] = ⟨u_{k,ℓ}, w_w⟩ (eq. 20): one BLAS product, as in the reference.
* ``risk0_and_phi``    R0 (eq. 46) and Φ (eq. 130) with no exponential per sentence: products of per-word
  exponentials along an odometer, prefix products and subtree sums (Notes; docs/exact-kernel.md).
* ``lemma_s``          the two contractions of Lemma S: two BLAS products, as in the reference.
* ``risk0_and_grads``  the three in turn, as two compiled calls around the walk (:mod:`.exact_steps`).
* ``check_inputs``     the reference's checks; float64 / int64 arrays take one compiled scan of values.

CPU reference: :func:`.exact.score_tables`, :func:`.exact.risk0_and_phi`, :func:`.exact.lemma_s`,
:func:`.exact.risk0_and_grads`, :func:`.exact.check_inputs`; tests/feature_collapse/test_exact_numba.py
checks agreement to 1e-12 and the same refusals. This module does not import :mod:`.exact` (which imports
it lazily for ``backend="numba"``): its public functions check their arguments with the functions the
reference calls (:mod:`refimpl.feature_collapse.inputs`), so both backends refuse the same input with the
same message.

Notes
-----
**Factorization.** h(x)_k = Σ_ℓ S[k, ℓ, x_ℓ] is additive over positions. With c_{ℓ,w} = max_k S[k, ℓ, w] and
E[w, ℓ, k] = exp(S[k, ℓ, w] − c_{ℓ,w}) ∈ [0, 1] (K·L·nw exponentials, once), and C(x) = Σ_ℓ c_{ℓ,x_ℓ}:

    e_k(x) = exp(h(x)_k − C(x)) = Π_ℓ E[x_ℓ, ℓ, k],      s(x) = Σ_k e_k(x),      q_k(x) = e_k(x) / s(x),
    ℓ(h(x), j) = log s(x) + Σ_ℓ (c_{ℓ,x_ℓ} − S[j, ℓ, x_ℓ])                     (the loss inside eq. 46)

— one logarithm per sentence, no exponential, and every term of the last sum is ≥ 0.

**What needs no enumeration.** D(x) = Π_ℓ µ_{β_ℓ}, so for any f of one position Σ_{x ∈ X_j} D(x) f(x_ℓ) =
Σ_β µ_β f(z_{j,ℓ}, β): the last sum's share of R0 is Σ_j Σ_ℓ Σ_β µ_β (c_{ℓ,w} − S[j, ℓ, w]) / K, and the
1{k=j} part of Φ is Φ[w, j, ℓ] = µ_β / K for w = (z_{j,ℓ}, β) — K·L·sc terms each
(:func:`.exact_steps.assemble`).
The walk only computes Σ_x D(x) log s(x) and Φ's −q part.

**The walk** (:mod:`.exact_walk`): an odometer over each class's sentences, block by block (sc² sentences
sharing x_1..x_{L−2}), with prefix products of E, Φ's −q part by subtree sums, a log-domain fallback for
sums that underflow, and fused, reassociated K-long loops; its notes give the details.

**Chunks.** The K·sc^(L−2) blocks are cut into ``n_chunks`` contiguous ranges, a number fixed by the sizes
(not the thread count), each with private Φ and buffers summed in a fixed order: the result does not
depend on the number of threads, nor on which thread ran which chunk. With T = ``numba.get_num_threads()``
threads, the calling thread and T − 1 threads of a kept pool each make one call of
:func:`.exact_walk.chunks`, which releases the GIL and claims chunks from a shared atomic counter until
none is left; the caller then polls until the others' last chunks are done (:func:`.exact_walk.finished`)
rather than sleeping on them, and the helpers poll ≤ 1 ms for the next call's caller before they sleep:
waking a thread costs tens of microseconds on a small VM. (A ``prange`` over chunks doubles the compile
time, to ~20 s, by re-optimizing the whole kernel inside the parallel loop.) Small enumerations
(K·K·sc^L < SERIAL_WORK) run on one thread: handing chunks to the pool costs more than they do. L = 1
(sc sentences per class) takes the log-domain path for every sentence.
"""

import functools
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from refimpl import (
    compiled,  # noqa: F401  (Numba settings first)
)
from refimpl.feature_collapse import exact_steps as steps
from refimpl.feature_collapse import exact_tiles, exact_walk, inputs
from refimpl.feature_collapse.data import sentence_count
from refimpl.feature_collapse.exact_tiles import BLOCK

MAX_CHUNKS = 16
CHUNK_SENTENCES = 4096     # at least this many sentences per chunk
CHUNK_BUFFER = 2**24       # at most this many float64 over all private copies of Φ (128 MiB)
SERIAL_WORK = 2**20        # below K·(K·sc^L) units (≈ 0.5 ms on one core) the enumeration runs on one thread
LANES = 8                  # classes are padded to a multiple of LANES (zero weight: E = 0 there)
SPINS = 2**20              # polls (≈ 1 ms) for the helpers' last chunks before blocking on them
LINGER = 2**20             # polls (≈ 1 ms) a helper waits for the next call's caller before it sleeps
_BELL = np.zeros(1, dtype=np.int64)   # (1,) calls whose calling thread has started its share


def _threads_for(work: int) -> int:
    """How many threads run the chunks: one for small `work` (K·K·sc^L < SERIAL_WORK), else Numba's."""
    return 1 if work < SERIAL_WORK else numba.get_num_threads()


@functools.lru_cache(maxsize=1)
def _pool(threads: int) -> ThreadPoolExecutor:
    """A pool of `threads` threads (the helpers of the calling thread), kept between calls (chunks
    release the GIL)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="exact_numba")


def check_inputs(W, U, Z, mu, max_sentences=inputs.MAX_SENTENCES):
    """Mirror of :func:`.exact.check_inputs`: the same checks (:func:`.inputs.risk_inputs`), the same
    refusals. C-contiguous float64 W, U, mu and int64 Z of consistent shapes, within max_sentences (an
    int), have their values checked in one compiled scan (:func:`.exact_steps.values_ok`: the whole
    check ≈ 5 µs at K = 81, L = 4, where the reference's dozen NumPy calls take ≈ 32 µs); any other
    argument, and any value the scan does not pass, goes through the reference's checks, which convert
    it or say what is wrong."""
    arrays = (W, U, Z, mu)
    if (all(type(a) is np.ndarray and a.flags.c_contiguous for a in arrays)
            and W.dtype == U.dtype == mu.dtype == np.float64 and Z.dtype == np.int64
            and W.ndim == U.ndim == Z.ndim == 2 and mu.ndim == 1 and type(max_sentences) is int):
        (d, nw), (K, L), sc = W.shape, Z.shape, mu.shape[0]
        if (min(d, K, L, sc) >= 1 and U.shape == (K, L * d) and nw % sc == 0
                and sentence_count(K, sc, L) <= max_sentences and steps.values_ok(W, U, Z, mu, nw // sc)):
            return W, U, Z, mu
    return inputs.risk_inputs(W, U, Z, mu, max_sentences)


def score_tables(W: np.ndarray, U: np.ndarray, L: int, *, check: bool = True) -> np.ndarray:
    """Mirror of :func:`.exact.score_tables` (eq. 20): one BLAS product (:func:`.exact_steps.scores`).
    Returns S of shape (K, L, nw); `check` as there."""
    if check:
        W, U, L = inputs.score_table_inputs(W, U, L)
    return steps.scores(_plain(W), _plain(U), L)                         # (K, L, nw)


def _walk(E, St, c, Z, mu, mu2, bounds, claims, risk, phi, stats, threads):
    """Fill the chunks' risk (n_chunks,), phi (n_chunks, nw + 3, L, Kp) and stats (n_chunks, 1). L = 1:
    one chunk, the log domain (:func:`.exact_walk.chunk_one_word`). L ≥ 2: chunk i covers a range of
    blocks fixed by the sizes; `threads` only decides who runs it: the calling thread and
    min(threads, n_chunks) − 1 pool threads claim chunks one at a time from a shared counter
    (:func:`.exact_walk.chunks`) until none is left, then the caller polls for the others' last chunks
    (:func:`.exact_walk.finished`) and waits on them only if that takes longer than SPINS polls. The
    helpers then poll for the next call (≤ LINGER times) before they sleep."""
    K, L = Z.shape
    if L == 1:                                                            # K·sc sentences: one chunk
        risk[0] = exact_walk.chunk_one_word(St, c, Z, mu, 0, K, phi[0])
        stats[0, 0] = K * mu.shape[0]
        return
    n_chunks = risk.shape[0]
    T = min(threads, n_chunks)
    call = int(_BELL[0]) + 1                                              # the bell's value once we ring

    def run(number):                                                      # 0: the calling thread
        return exact_walk.chunks(E, St, c, Z, mu, mu2, bounds, claims, phi, stats, risk, _BELL, number,
                                 LINGER)

    helpers = [_pool(threads - 1).submit(run, call) for _ in range(1, T)]
    run(0)
    if not exact_walk.finished(claims, n_chunks, SPINS, _BELL):
        for helper in helpers:                                            # a helper late, or failed
            helper.result()


def n_chunks_for(K: int, sc: int, L: int, nw: int) -> int:
    """How many private copies of Φ: the largest power of two ≤ MAX_CHUNKS with ≥ CHUNK_SENTENCES
    sentences each and CHUNK_BUFFER floats in all (more chunks did not balance the claiming threads
    better at the sizes timed, and each is a Φ to zero and to sum: docs/exact-kernel.md); 1 for L = 1."""
    if L == 1:
        return 1
    n = sentence_count(K, sc, L)
    most = max(1, min(MAX_CHUNKS, n // CHUNK_SENTENCES, CHUNK_BUFFER // ((nw + BLOCK - 1) * L * _padded(K))))
    return 1 << (most.bit_length() - 1)


def _plain(a) -> np.ndarray:
    """`a` as a C-contiguous float64 array (the compiled steps' layout; no copy if it is one)."""
    return np.ascontiguousarray(a, dtype=np.float64)


def _padded(K: int) -> int:
    return -(-K // LANES) * LANES


def _sizes(Z, mu, nw):
    """(Kp, scp, n_chunks, threads) for the walk over Z (K, L) with sc = len(mu) words per concept."""
    (K, L), sc = Z.shape, mu.shape[0]
    threads = _threads_for(K * sentence_count(K, sc, L))
    return _padded(K), exact_tiles.padded(sc), n_chunks_for(K, sc, L, nw), threads


def enumerate_sentences(S: np.ndarray, Z: np.ndarray, mu: np.ndarray, *, check: bool = True):
    """:func:`risk0_and_phi` and how many sentences took the log-domain path: (R0, Phi, count)."""
    if check:
        S, Z, mu = inputs.enumeration_inputs(S, Z, mu)
    S, Z, mu = _plain(S), np.ascontiguousarray(Z, dtype=np.int64), _plain(mu)
    Kp, scp, n_chunks, threads = _sizes(Z, mu, S.shape[2])
    St, c, E = steps.tables(S, Kp)
    mu2, bounds, claims, risk, phi, stats = steps.walk_arrays(St, Z.shape[0], mu, scp, n_chunks)
    _walk(E, St, c, Z, mu, mu2, bounds, claims, risk, phi, stats, threads)
    R0, Phi = steps.assemble(phi, risk, S, c, Z, mu)                      # float, (nw, K, L)
    return R0, Phi, int(stats.sum())


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
    """Mirror of :func:`.exact.lemma_s`, two BLAS products (:func:`.exact_steps.lemma`). Lemma S
    (eq. 130): ∂R0/∂u_{k,ℓ} = −Σ_w Φ[w, k, ℓ] w_w and ∂R0/∂w_w = −Σ_{k,ℓ} Φ[w, k, ℓ] u_{k,ℓ}. `check`
    as there.

    Returns
    -------
    dW0 : ndarray of shape (d, nw); dU0 : ndarray of shape (K, L·d).
    """
    if check:
        W, U, Phi = inputs.lemma_s_inputs(W, U, Phi)
    return steps.lemma(_plain(W), _plain(U), _plain(Phi))


def risk0_and_grads(V, U, Z, mu, *, check: bool = True):
    """Mirror of :func:`.exact.risk0_and_grads`: R0 (eq. 46), dV0 (d, nw) and dU0 (K, L·d) (Lemma S,
    eq. 130), the three passes as two compiled calls around the walk — :func:`.exact_steps.prepare`
    (scores, tables, the chunks' arrays) and :func:`.exact_steps.finish` (Φ and R0, the two products) —
    with S refused as there if it overflowed. `check` as there."""
    if check:
        V, U, Z, mu = check_inputs(V, U, Z, mu)
    V, U, Z, mu = _plain(V), _plain(U), np.ascontiguousarray(Z, dtype=np.int64), _plain(mu)
    Kp, scp, n_chunks, threads = _sizes(Z, mu, V.shape[1])
    S, finite, St, c, E, mu2, bounds, claims, risk, phi, stats = steps.prepare(V, U, Z, mu, Kp, scp, n_chunks)
    if not finite:
        inputs.finite_scores(S)                                           # raises, naming the score
    _walk(E, St, c, Z, mu, mu2, bounds, claims, risk, phi, stats, threads)
    return steps.finish(phi, risk, S, c, Z, mu, V, U)
