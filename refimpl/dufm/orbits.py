"""Theorem 5: how many parameters produce one output Z — the orbit of O(d)^L, counted two ways.

The loss of eq. (1) is invariant under an orthogonal change of basis of each hidden space j = 0..L−1
(the output space of W_j, with W_0 = H_1): W_j → O_j W_j, W_{j+1} → W_{j+1} O_jᵀ. At a balanced point
producing Z of rank r, every other balanced point producing Z is reached this way (Lemma 1), so the
solution set is one orbit. Its tangent space is spanned by δW_j = A W_j, δW_{j+1} = −W_{j+1} A for skew
A; A acts trivially iff it vanishes on the r-dimensional range of W_j, so each hidden space contributes
dim so(d) − dim so(d−r) = rd − r(r+1)/2 = dim St(r, d), whatever the multiplicities of the singular
values:  D_Z(d) = L (rd − r(r+1)/2).

B.6 instead counts L((K−1)d − (K−1)²) (a Grassmannian per layer) for DNC, whose singular values are all
equal; but the O(r) that leaves a degenerate W_l unchanged must act on U_l and U_{l−1} together, so it
is one O(r) shared by all layers and the outputs — not one per layer. For K = d = 4, L = 2 the orbit has
dimension 12, not 6. With the corrected count R(d) = D_DNC/D_Z already exceeds 1 at d = K (r < K−1) and
still increases towards (K−1)/r.
"""

import numpy as np

from refimpl.errors import require
from refimpl.validate import positive_int, width


def stiefel_dimension(r: int, d: int) -> int:
    """dim St(r, d) = rd − r(r+1)/2, orthonormal r-frames in R^d."""
    return r * d - r * (r + 1) // 2


def grassmann_dimension(r: int, d: int) -> int:
    """dim Gr(r, d) = rd − r², r-dimensional subspaces of R^d."""
    return r * d - r * r


def _check(d, K, L, r=None):
    """(d, K, L, r) as ints: K, L ≥ 1, d ≥ K (:func:`refimpl.validate.width`), 1 ≤ r ≤ K when given."""
    K, L = positive_int("K", K), positive_int("L", L)
    d = width(d, K)
    if r is not None:
        r = positive_int("r", r)
        require(r <= K, f"rank r = {r} exceeds K = {K}")
    return d, K, L, r


def orbit_dimension_formula(d: int, K: int, L: int, r: int) -> int:
    """D_Z(d) = L·dim St(r, d) for any Z of rank r (all singular-value multiplicities)."""
    d, K, L, r = _check(d, K, L, r)
    return L * stiefel_dimension(r, d)


def paper_dnc_dimension(d: int, K: int, L: int) -> int:
    """B.6's count for DNC, L((K−1)d − (K−1)²) = L·dim Gr(K−1, d) — too small (see module notes)."""
    d, K, L, _ = _check(d, K, L)
    return L * grassmann_dimension(K - 1, d)


def dimension_ratio(d: int, K: int, L: int, r: int) -> float:
    """R(d) = D_DNC(d)/D_Z(d) = ((K−1)d − K(K−1)/2)/(rd − r(r+1)/2) by the corrected count."""
    d, K, L, r = _check(d, K, L, r)
    return stiefel_dimension(K - 1, d) / stiefel_dimension(r, d)


def paper_ratio_bounds(d: int, K: int, r: int):
    """B.6's bounds on R(d) from its DNC count: ((K−1)d−(K−1)²)/(rd − r(r+1)/2) ≤ R ≤ …/(rd − r²)."""
    d, K, _, r = _check(d, K, 1, r)
    num = grassmann_dimension(K - 1, d)
    return num / stiefel_dimension(r, d), num / grassmann_dimension(r, d)


def symmetry_generators(params) -> np.ndarray:
    """Tangent vectors of the O(d)^L orbit at params = [H_1, W_1, …, W_L], flattened row-major.

    Returns
    -------
    G : ndarray of shape (P, L·d(d−1)/2), P the number of parameters; column (j, a<b) is the
        flattened (δH_1, δW_1, …, δW_L) with δW_j = E W_j, δW_{j+1} = −W_{j+1} E, E = e_a e_bᵀ − e_b e_aᵀ.
    """
    L = len(params) - 1
    d = params[0].shape[0]
    sizes = [p.size for p in params]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    a, b = np.triu_indices(d, 1)                                          # (n,) pairs a < b
    n = a.size
    G = np.zeros((offsets[-1], L * n))                                    # (P, L·n)
    for j in range(L):
        Wj, Wn = params[j], params[j + 1]                                 # (d, ·), (·, d)
        EW = np.zeros((n,) + Wj.shape)                                    # (n, d, cols_j): E W_j
        EW[np.arange(n), a] = Wj[b]
        EW[np.arange(n), b] = -Wj[a]
        WE = np.zeros((n,) + Wn.shape)                                    # (n, rows, d): W_{j+1} E
        WE[np.arange(n), :, b] = Wn[:, a].T                               # (n, rows): advanced axes first
        WE[np.arange(n), :, a] = -Wn[:, b].T
        G[offsets[j]:offsets[j + 1], j * n:(j + 1) * n] = EW.reshape(n, -1).T
        G[offsets[j + 1]:offsets[j + 2], j * n:(j + 1) * n] = -WE.reshape(n, -1).T
    return G


def orbit_dimension(params, rtol: float = 1e-9) -> int:
    """Numerical dimension of the orbit: rank of :func:`symmetry_generators` (singular values > rtol·max)."""
    s = np.linalg.svd(symmetry_generators(params), compute_uv=False)
    return int(np.sum(s > rtol * s.max())) if s.size and s.max() > 0 else 0


__all__ = ["dimension_ratio", "grassmann_dimension", "orbit_dimension", "orbit_dimension_formula",
           "paper_dnc_dimension", "paper_ratio_bounds", "stiefel_dimension", "symmetry_generators"]
