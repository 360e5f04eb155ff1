"""exact_tiles: the padding rule against a search, and each tile kernel (four and three wide) against the
formula it computes, written with NumPy, padded slots included (they must read zeros and write to sinks)."""

import numpy as np
import pytest

from refimpl.feature_collapse import exact_tiles as tiles


@pytest.mark.parametrize("sc", range(1, 41))
def test_padded_is_the_least_multiple_of_three_or_four(sc):
    m = sc
    while m % 3 and m % 4:
        m += 1
    assert tiles.padded(sc) == m
    assert m % tiles.tile_of(m) == 0


def _setup(rng, T, sc, nw=7, L=3, Kp=16):
    """E (nw + 3, L, Kp) with zero "no word" rows, a block's Q (T, Kp), F (T, T) zero past sc, and the
    tile's group / leaf rows (words 0.. and 3.., padded with nw, nw + 1, nw + 2)."""
    E = np.zeros((nw + 3, L, Kp))                                         # (nw + 3, L, Kp)
    E[:nw] = rng.uniform(0.0, 1.0, (nw, L, Kp))
    Q = rng.uniform(0.0, 1.0, (T, Kp))                                    # (T, Kp)
    F = np.zeros((T, T))
    F[:sc, :sc] = rng.uniform(0.0, 1.0, (sc, sc))                         # (T, T) zero past sc
    make = tiles.four if T == 4 else tiles.three
    return E, Q, F, make(0, 0, sc, nw), make(3, 0, sc, nw)


@pytest.mark.parametrize("T, sc", [(4, 4), (4, 3), (4, 1), (3, 3), (3, 2)])
def test_tile_kernels_match_their_formulas(rng, T, sc):
    E, Q, F, xs, ws = _setup(rng, T, sc)
    nw, L, Kp = E.shape[0] - 3, E.shape[1], E.shape[2]
    l = L - 1
    assert all(w >= nw for w in ws[sc:]) and len(set(ws[sc:])) == T - sc    # distinct "no word" rows
    Ew = E[list(ws), l]                                                   # (T, Kp) the leaves' rows

    Ssum, p = np.zeros((T, T + 1)), rng.uniform(0.0, 1.0, Kp)
    dot = tiles.dot4 if T == 4 else tiles.dot3
    for g in range(T):
        Qg = Q.copy()
        dot(Qg, g, E, l, ws, Ssum, 1, p, xs[0])                           # b0 ≠ 0: Q[g] is read
        np.testing.assert_array_equal(Qg, Q)
        np.testing.assert_allclose(Ssum[g, 1:], Ew @ Q[g], rtol=1e-14)   # written at b0..b0 + T − 1
    S0 = np.zeros((T, T + 1))
    dot(Q, 0, E, l, ws, S0, 0, p, xs[1])                                  # b0 = 0: Q[0] = p ∘ E[x, l − 1]
    np.testing.assert_allclose(Q[0], p * E[xs[1], l - 1], rtol=1e-15)
    np.testing.assert_allclose(S0[0, :T], Ew @ Q[0], rtol=1e-14)

    phi, A, up = np.zeros((nw + 3, L, Kp)), np.zeros((2, Kp)), (5, 1)
    totals = tiles.group_totals4 if T == 4 else tiles.group_totals3
    totals(Q, F, E, 0, 0, xs, ws, up, phi, A)
    v = -Q * (F @ Ew)                                                     # (T, Kp) v_g = −Q_g ∘ Σ_b F_gb E_b
    want = np.zeros_like(phi)
    np.add.at(want, (list(xs), l - 1), v)
    want[5, l - 2] += v.sum(axis=0)
    np.testing.assert_allclose(phi, want, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(A[1], v.sum(axis=0), rtol=1e-14)
    assert not A[0].any()

    bw = np.zeros((nw + 3, Kp))
    rows = tiles.leaf_rows4 if T == 4 else tiles.leaf_rows3
    rows(Q, F, 0, 0, ws, bw)
    want_bw = np.zeros_like(bw)
    np.add.at(want_bw, list(ws), F.T @ Q)                                 # bw[w_b] += Σ_g F_gb Q_g
    np.testing.assert_allclose(bw, want_bw, rtol=1e-14, atol=1e-15)
    assert not bw[nw:].any()                                              # padded leaves: zero weights
