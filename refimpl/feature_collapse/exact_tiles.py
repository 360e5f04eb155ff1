"""The K-long loops of :mod:`.exact_walk`'s blocks, in register tiles of four or three slots.

    padded(sc), tile_of(scp)                        sc rounded up to the tiles: min(⌈sc/4⌉·4, ⌈sc/3⌉·3);
                                                    the tile width, 4 when it divides scp, else 3
    four(z, i0, sc, nw) / three(…)                  a tile's word rows (a slot past sc: a "no word" row)
    dot4(Q, g, E, l, ws, Ssum, b0, p, x) / dot3(…)  s = Σ_k Q[g, k] E[w_b, l, k] for the tile's leaves;
                                                    the first tile (b0 = 0) makes Q[g] = p ∘ E[x, l − 1]
    group_totals4(Q, F, E, g0, b0, xs, ws, up, phi, A) / group_totals3(…)
    leaf_rows4(Q, F, g0, b0, ws, bw) / leaf_rows3(…)

A block is sc groups × sc leaves (:mod:`.exact_walk`'s notes); its three K-long passes work on a tile of
groups × leaves at a time, with the tile's weights F[g, b] held in registers, so that each load of a
K-vector serves several sentences. The tile is four slots wide when that pads sc least, else three (sc = 3,
5, 6 and 9 take tiles of three: sc = 5 pads to 6 slots, not 8, and a tile pass costs slots², so 36 of 64).
Slots past sc read the zero rows of E past nw and write to sink rows of Φ; their weights are zero.

Every loop here is inlined into ``exact_walk._block`` and with it into ``exact_walk._chunk``, which is
compiled with fastmath {reassoc, contract}: the K-long sums vectorize and multiply-adds fuse (their
rounding depends on the CPU's vector width, never on the thread count).
"""

import numba

from refimpl import compiled  # noqa: F401  (Numba settings first)

BLOCK = 4                  # the widest tile; E and Φ carry BLOCK − 1 zero / sink rows past nw
_INLINE = dict(cache=True, error_model="numpy", inline="always")


def padded(sc: int) -> int:
    """Slots per block side: sc rounded up to a multiple of four or of three, whichever is less (four on
    a tie). The tile width is then ``tile_of(padded(sc))``."""
    by_four, by_three = -(-sc // BLOCK) * BLOCK, -(-sc // 3) * 3
    return by_four if by_four <= by_three else by_three


@numba.njit(**_INLINE)
def tile_of(scp):
    """The tile width for `scp` slots: four when it divides them, else three."""
    return BLOCK if scp % BLOCK == 0 else 3


@numba.njit(**_INLINE)
def four(z, i0, sc, nw):
    """Rows z + i0 .. z + i0 + 3 for slots i0..i0 + 3; a slot past sc gets its own "no word" row nw + 0..2."""
    return (z + i0, z + i0 + 1 if i0 + 1 < sc else nw, z + i0 + 2 if i0 + 2 < sc else nw + 1,
            z + i0 + 3 if i0 + 3 < sc else nw + 2)


@numba.njit(**_INLINE)
def three(z, i0, sc, nw):
    """Rows z + i0 .. z + i0 + 2 for slots i0..i0 + 2; a slot past sc gets its own "no word" row nw + 0..1."""
    return z + i0, z + i0 + 1 if i0 + 1 < sc else nw, z + i0 + 2 if i0 + 2 < sc else nw + 1


@numba.njit(**_INLINE)
def dot4(Q, g, E, l, ws, Ssum, b0, p, x):
    """Ssum[g, b0 + i] = Σ_k Q[g, k] E[w_i, l, k] for the four leaves ws (every term ≥ 0). The tile b0 = 0
    first makes the group's row, Q[g] = p ∘ E[x, l − 1] (p: the block's prefix product)."""
    w0, w1, w2, w3 = ws
    s0 = s1 = s2 = s3 = 0.0
    fresh = b0 == 0
    for k in range(Q.shape[1]):
        if fresh:
            Q[g, k] = p[k] * E[x, l - 1, k]
        q = Q[g, k]
        s0 += q * E[w0, l, k]
        s1 += q * E[w1, l, k]
        s2 += q * E[w2, l, k]
        s3 += q * E[w3, l, k]
    Ssum[g, b0], Ssum[g, b0 + 1], Ssum[g, b0 + 2], Ssum[g, b0 + 3] = s0, s1, s2, s3


@numba.njit(**_INLINE)
def dot3(Q, g, E, l, ws, Ssum, b0, p, x):
    """:func:`dot4` for three leaves."""
    w0, w1, w2 = ws
    s0 = s1 = s2 = 0.0
    fresh = b0 == 0
    for k in range(Q.shape[1]):
        if fresh:
            Q[g, k] = p[k] * E[x, l - 1, k]
        q = Q[g, k]
        s0 += q * E[w0, l, k]
        s1 += q * E[w1, l, k]
        s2 += q * E[w2, l, k]
    Ssum[g, b0], Ssum[g, b0 + 1], Ssum[g, b0 + 2] = s0, s1, s2


@numba.njit(**_INLINE)
def group_totals4(Q, F, E, g0, b0, xs, ws, up, phi, A):
    """Tile (groups g0..g0+3) × (leaves b0..b0+3): v_g = −Q[g] ∘ Σ_b F[g, b] E[w_b, L] (the −q part of the
    group's Σ g) added to Φ[x_g, :, L−1]; Σ_g v_g added to the block's row Φ[x, :, L−2] and to its parent's
    running sum A[a], (x, a) = up."""
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


@numba.njit(**_INLINE)
def group_totals3(Q, F, E, g0, b0, xs, ws, up, phi, A):
    """:func:`group_totals4` for a tile of three groups × three leaves."""
    l = E.shape[1] - 1
    x0, x1, x2 = xs
    w0, w1, w2 = ws
    x, a = up
    f00, f01, f02 = F[g0, b0], F[g0, b0 + 1], F[g0, b0 + 2]
    f10, f11, f12 = F[g0 + 1, b0], F[g0 + 1, b0 + 1], F[g0 + 1, b0 + 2]
    f20, f21, f22 = F[g0 + 2, b0], F[g0 + 2, b0 + 1], F[g0 + 2, b0 + 2]
    for k in range(Q.shape[1]):
        e0, e1, e2 = E[w0, l, k], E[w1, l, k], E[w2, l, k]
        v0 = -Q[g0, k] * ((f00 * e0 + f01 * e1) + f02 * e2)
        v1 = -Q[g0 + 1, k] * ((f10 * e0 + f11 * e1) + f12 * e2)
        v2 = -Q[g0 + 2, k] * ((f20 * e0 + f21 * e1) + f22 * e2)
        phi[x0, l - 1, k] += v0
        phi[x1, l - 1, k] += v1
        phi[x2, l - 1, k] += v2
        v = (v0 + v1) + v2
        phi[x, max(l - 2, 0), k] += v
        A[a, k] += v


@numba.njit(**_INLINE)
def leaf_rows4(Q, F, g0, b0, ws, bw):
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


@numba.njit(**_INLINE)
def leaf_rows3(Q, F, g0, b0, ws, bw):
    """:func:`leaf_rows4` for a tile of three groups × three leaves."""
    w0, w1, w2 = ws
    f00, f01, f02 = F[g0, b0], F[g0, b0 + 1], F[g0, b0 + 2]
    f10, f11, f12 = F[g0 + 1, b0], F[g0 + 1, b0 + 1], F[g0 + 1, b0 + 2]
    f20, f21, f22 = F[g0 + 2, b0], F[g0 + 2, b0 + 1], F[g0 + 2, b0 + 2]
    for k in range(Q.shape[1]):
        q0, q1, q2 = Q[g0, k], Q[g0 + 1, k], Q[g0 + 2, k]
        bw[w0, k] += (f00 * q0 + f10 * q1) + f20 * q2
        bw[w1, k] += (f01 * q0 + f11 * q1) + f21 * q2
        bw[w2, k] += (f02 * q0 + f12 * q1) + f22 * q2
