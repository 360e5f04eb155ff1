"""Register-blocked small matrix products for the DUFM kernel (:mod:`refimpl.dufm.model_numba`).

CPU reference: NumPy's ``@`` (tests compare at several sizes, the tails of each block included).

    gemm(X, B, out)       out = X B        X (m, p), B (p, q)     2×8 register block, 2×4 tail
    gemm_tn(Xt, B, out)   out = Xtᵀ B      Xt (p, m), B (p, q)    4×4 register block, 4×2 tail
    transpose(A, At)      At = Aᵀ          A (m, q)

Every product is written as out[s, :] = Σ_j X[s, j] B[j, :]: the inner loop runs along a contiguous row
of B and of out (length q), which LLVM vectorizes without re-associating any sum, and a small block of X
is held in registers so that each loaded row of B serves several output rows.  The sum over j runs in
increasing order, as in a plain triple loop.  The caller pads m and p to the multiples each product
needs (zero rows and columns add exact zeros); q is free.

Floating point: ``fastmath={"contract"}`` only — a·b + c may be fused into one FMA (one rounding instead
of two, as BLAS does); no re-association, no NaN/inf assumptions.  float64 arrays, C-contiguous rows.
"""

import numba

from refimpl import compiled  # noqa: F401  (Numba settings first)

FM = {"contract"}   # fused multiply-add allowed; no re-association, no NaN/inf assumptions


@numba.njit(cache=True, fastmath=FM)
def gemm(X, B, out):
    """out = X B (NumPy: ``X @ B``);  X (m, p), B (p, q), out (m, q);  m a multiple of 2, p of 4, any q.

    Register block: a 2×8 block of X, so each pass along the rows of out updates 2 output rows from 8
    rows of B (a 2×4 block for the last four rows when p is not a multiple of 8).  The sum over j runs
    in increasing order, as in a plain triple loop.
    """
    out[:, :] = 0.0
    p = B.shape[0]
    p8 = p - p % 8
    for s in range(0, out.shape[0], 2):
        o0, o1, x0, x1 = out[s], out[s + 1], X[s], X[s + 1]
        for j in range(0, p8, 8):
            b0, b1, b2, b3 = B[j], B[j + 1], B[j + 2], B[j + 3]
            b4, b5, b6, b7 = B[j + 4], B[j + 5], B[j + 6], B[j + 7]
            a00, a01, a02, a03 = x0[j], x0[j + 1], x0[j + 2], x0[j + 3]
            a04, a05, a06, a07 = x0[j + 4], x0[j + 5], x0[j + 6], x0[j + 7]
            a10, a11, a12, a13 = x1[j], x1[j + 1], x1[j + 2], x1[j + 3]
            a14, a15, a16, a17 = x1[j + 4], x1[j + 5], x1[j + 6], x1[j + 7]
            for i in range(o0.shape[0]):
                c0, c1, c2, c3, c4, c5, c6, c7 = b0[i], b1[i], b2[i], b3[i], b4[i], b5[i], b6[i], b7[i]
                o0[i] = (o0[i] + a00 * c0 + a01 * c1 + a02 * c2 + a03 * c3
                         + a04 * c4 + a05 * c5 + a06 * c6 + a07 * c7)
                o1[i] = (o1[i] + a10 * c0 + a11 * c1 + a12 * c2 + a13 * c3
                         + a14 * c4 + a15 * c5 + a16 * c6 + a17 * c7)
        for j in range(p8, p, 4):
            b0, b1, b2, b3 = B[j], B[j + 1], B[j + 2], B[j + 3]
            a00, a01, a02, a03 = x0[j], x0[j + 1], x0[j + 2], x0[j + 3]
            a10, a11, a12, a13 = x1[j], x1[j + 1], x1[j + 2], x1[j + 3]
            for i in range(o0.shape[0]):
                c0, c1, c2, c3 = b0[i], b1[i], b2[i], b3[i]
                o0[i] = o0[i] + a00 * c0 + a01 * c1 + a02 * c2 + a03 * c3
                o1[i] = o1[i] + a10 * c0 + a11 * c1 + a12 * c2 + a13 * c3


@numba.njit(cache=True, fastmath=FM)
def gemm_tn(Xt, B, out):
    """out = Xtᵀ B (NumPy: ``Xt.T @ B``);  Xt (p, m), B (p, q), out (m, q);  m a multiple of 4, p of 2.

    Register block: a 4×4 block of X = Xtᵀ (4 output rows from 4 rows of B per pass), and a 4×2 block
    for the last two rows of B when p is not a multiple of 4.  Sums over j in increasing order.
    """
    out[:, :] = 0.0
    p = B.shape[0]
    p4 = p - p % 4
    for s in range(0, out.shape[0], 4):
        o0, o1, o2, o3 = out[s], out[s + 1], out[s + 2], out[s + 3]
        for j in range(0, p4, 4):
            b0, b1, b2, b3 = B[j], B[j + 1], B[j + 2], B[j + 3]
            x0, x1, x2, x3 = Xt[j], Xt[j + 1], Xt[j + 2], Xt[j + 3]
            a00, a01, a02, a03 = x0[s], x1[s], x2[s], x3[s]
            a10, a11, a12, a13 = x0[s + 1], x1[s + 1], x2[s + 1], x3[s + 1]
            a20, a21, a22, a23 = x0[s + 2], x1[s + 2], x2[s + 2], x3[s + 2]
            a30, a31, a32, a33 = x0[s + 3], x1[s + 3], x2[s + 3], x3[s + 3]
            for i in range(o0.shape[0]):
                c0, c1, c2, c3 = b0[i], b1[i], b2[i], b3[i]
                o0[i] = o0[i] + a00 * c0 + a01 * c1 + a02 * c2 + a03 * c3
                o1[i] = o1[i] + a10 * c0 + a11 * c1 + a12 * c2 + a13 * c3
                o2[i] = o2[i] + a20 * c0 + a21 * c1 + a22 * c2 + a23 * c3
                o3[i] = o3[i] + a30 * c0 + a31 * c1 + a32 * c2 + a33 * c3
        for j in range(p4, p, 2):
            b0, b1 = B[j], B[j + 1]
            a00, a01, a10, a11 = Xt[j, s], Xt[j + 1, s], Xt[j, s + 1], Xt[j + 1, s + 1]
            a20, a21, a30, a31 = Xt[j, s + 2], Xt[j + 1, s + 2], Xt[j, s + 3], Xt[j + 1, s + 3]
            for i in range(o0.shape[0]):
                c0, c1 = b0[i], b1[i]
                o0[i] = o0[i] + a00 * c0 + a01 * c1
                o1[i] = o1[i] + a10 * c0 + a11 * c1
                o2[i] = o2[i] + a20 * c0 + a21 * c1
                o3[i] = o3[i] + a30 * c0 + a31 * c1


@numba.njit(cache=True, fastmath=FM)
def transpose(A, At):
    """At = Aᵀ (NumPy: ``A.T``);  A (m, q), At (q, m), any sizes (written row by row: contiguous stores)."""
    m, q = A.shape
    for j in range(q):
        for i in range(m):
            At[j, i] = A[i, j]


__all__ = ["FM", "gemm", "gemm_tn", "transpose"]
