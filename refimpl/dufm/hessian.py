"""The Hessian of the linear CE DUFM (Appendix B.5) and Theorem 4 at the DNC critical points.

With W_0 = H_1, A_{l+1} = W_L … W_{l+1}, B_{l−1} = W_{l−1} … W_0 (B_{−1} = I), h_y^{(l)} the y-th column
of B_{l−1}, p_y the y-th column of the softmax P, M = P − Y and N = Kn columns, row-major flattening:

    ∂²L/∂(W_l)_{ab}∂(W_r)_{cd} = λ δ_{lr} δ_{ac} δ_{bd}
        + (1/N) Σ_y [A_{l+1}ᵀ (diag p_y − p_y p_yᵀ) A_{r+1}]_{ac} [h_y^{(l)} h_y^{(r)ᵀ}]_{bd}
        + (1/N) [A_{l+1}ᵀ M B_{r−1}ᵀ]_{ad} [W_{l−1} … W_{r+1}]_{bc}          (r < l; transposed for r > l)

Theorem 4 made exact. At Z = αS with α a root of eq. (10), the reduced loss L(Z) (B.2) has second
variation, per unit ‖Δ‖ and with c₀ = 1/(K−1+e^α), q = (L−1)/(L+1), κ = (e^α−1)c₀ (see docs/dufm.md):

    c₀ (1/K − q/α)                    Δ symmetric, zero diagonal and row sums   (K(K−3)/2 directions)
    smaller eigenvalue of a 2×2 form  Δ symmetric, Δ1 = 0, diag Δ ⊥ 1, paired
                                      with the row-space rotation v1ᵀ, v ⊥ 1    (K−1)
    c₀ (1/K − q/α + κ(1 − 1/K))      Δ ∝ S (the scale: > 0 at the large root)  (1)
    c₀ (1/K + 1/α)                    Δ antisymmetric, Δ1 = 0                   ((K−1)(K−2)/2)

and the remaining directions (column shifts 1wᵀ, rank increase) cost more. The negative curvatures,
counted with multiplicity, equal the Hessian's negative eigenvalues (tested). So for K ≥ 4 the
large-root DNC point is a local minimum iff α ≥ K(L−1)/(L+1), and below that it has K(K−3)/2
negative directions (K(K−3)/2 + K−1 close to λ_max, where the second line is negative too). The
paper's Theorem 4 keeps only the O(αλ) terms (PSD) and drops the O(λ) ones: those make the point a
saddle for λ_c < λ < λ_max, where λ_c is eq. (10)'s right side at α_c = K(L−1)/(L+1).
"""

import dataclasses

import numpy as np
from scipy import optimize

from refimpl.dufm import orbits
from refimpl.dufm.critical import dnc_critical_scales, dnc_lambda_max
from refimpl.dufm.model import check_params, forward, loss_and_grads, suffix_products, targets
from refimpl.dufm.structures import balanced_params, dnc_matrix
from refimpl.errors import require


def flatten(params) -> np.ndarray:
    """Concatenate [H_1, W_1, …, W_L] row-major into one vector of length P."""
    return np.concatenate([p.ravel() for p in params])


def unflatten(theta: np.ndarray, like) -> list:
    """Inverse of :func:`flatten` with the shapes of `like`."""
    out, k = [], 0
    for p in like:
        out.append(theta[k:k + p.size].reshape(p.shape))
        k += p.size
    return out


def _chain(params, lo, hi, size):
    """W_{hi} … W_{lo} (identity of `size` when hi < lo)."""
    C = np.eye(size)
    for l in range(lo, hi + 1):
        C = params[l] @ C
    return C


def hessian(params, *, lam: float) -> np.ndarray:
    """Analytic Hessian of the linear CE DUFM loss (B.5), shape (P, P), ordered as :func:`flatten`."""
    K, n, d, L = check_params(params, lam=lam)
    N = K * n
    Z, (Hs, *_) = forward(params)                                         # (K, N)
    A = suffix_products(params)                                           # A[l] (K, ·), A[L+1] = I_K
    B = [np.eye(N)] + Hs[:L]                                              # B[l] = B_{l−1}: (N, N), (d, N)
    Pm = np.exp(Z - Z.max(axis=0))
    Pm /= Pm.sum(axis=0)                                                  # (K, N) softmax columns
    Ms = (Pm - targets(K, n)) / N                                         # (K, N) M/N
    Hy = np.einsum("ky,kj->ykj", Pm, np.eye(K)) - np.einsum("ky,jy->ykj", Pm, Pm)  # (N, K, K)
    off = np.concatenate([[0], np.cumsum([p.size for p in params])])
    H = np.zeros((off[-1], off[-1]))                                      # (P, P)
    for l in range(L + 1):
        for r in range(l + 1):
            T = np.einsum("ka,ykj,jc->yac", A[l + 1], Hy, A[r + 1])        # (N, rows_l, rows_r)
            blk = np.einsum("yac,by,dy->abcd", T, B[l], B[r]) / N         # (rows_l, cols_l, rows_r, cols_r)
            if r < l:
                X = A[l + 1].T @ Ms @ B[r].T                              # (rows_l, cols_r)
                C = _chain(params, r + 1, l - 1, params[r].shape[0])      # (cols_l, rows_r)
                blk += np.einsum("ad,bc->abcd", X, C)
            blk = blk.reshape(params[l].size, params[r].size)
            H[off[l]:off[l + 1], off[r]:off[r + 1]] = blk
            H[off[r]:off[r + 1], off[l]:off[l + 1]] = blk.T
    return H + lam * np.eye(off[-1])


def fd_hessian(params, *, lam: float, eps: float = 1e-5, model: str = "linear") -> np.ndarray:
    """Central differences of :func:`refimpl.dufm.model.loss_and_grads`, column by column, symmetrized."""
    theta = flatten(params)
    H = np.empty((theta.size, theta.size))
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = eps
        gp = flatten(loss_and_grads(unflatten(theta + e, params), lam=lam, model=model)[1])
        gm = flatten(loss_and_grads(unflatten(theta - e, params), lam=lam, model=model)[1])
        H[:, i] = (gp - gm) / (2 * eps)
    return 0.5 * (H + H.T)


@dataclasses.dataclass(frozen=True)
class HessianSpectrum:
    """Hessian eigenvalues with the O(d)^L symmetry directions separated.

    eigenvalues: all, ascending (P,). free: on the orthogonal complement of the orbit tangent space.
    orbit_dimension: rank of the symmetry generators. null_dimension: eigenvalues with |e| ≤ tol.
    n_negative: free eigenvalues < −tol. orbit_residual: ‖H T‖/‖H‖ for an orthonormal tangent basis T
    (0 at a critical point, where the symmetry directions are exact zero modes).
    """

    eigenvalues: np.ndarray
    free: np.ndarray
    orbit_dimension: int
    null_dimension: int
    n_negative: int
    orbit_residual: float
    tol: float

    @property
    def min_free(self) -> float:
        return float(self.free[0]) if self.free.size else float("nan")


def spectrum(params, *, lam: float, rtol: float = 1e-9) -> HessianSpectrum:
    """Spectrum of :func:`hessian` at params, the orbit's zero modes split off (relative tolerance rtol)."""
    H = hessian(params, lam=lam)                                          # (P, P)
    eig = np.linalg.eigvalsh(H)                                           # (P,)
    tol = rtol * np.abs(eig).max()
    U, s, _ = np.linalg.svd(orbits.symmetry_generators(params))           # (P, P), (min(P, G),)
    k = int(np.sum(s > 1e-9 * s.max()))
    T, C = U[:, :k], U[:, k:]                                             # (P, k) tangent, (P, P−k) rest
    free = np.linalg.eigvalsh(C.T @ H @ C)                                # (P−k,)
    res = float(np.linalg.norm(H @ T) / np.linalg.norm(H))
    return HessianSpectrum(eig, free, k, int(np.sum(np.abs(eig) <= tol)), int(np.sum(free < -tol)), res, tol)


def dnc_critical_point(K: int, L: int, lam: float, d: int, *, root: int = -1, rng=None):
    """Balanced parameters at Z = αS with α = dnc_critical_scales(K, L, lam)[root] (large root: −1)."""
    roots = dnc_critical_scales(K, L, lam)
    require(len(roots) > 0, f"lam = {float(lam):g} exceeds eq. (10)'s maximum "
                            f"{dnc_lambda_max(K, L)[0]:.6g}: no DNC critical point")
    alpha = roots[root]
    return balanced_params(alpha * dnc_matrix(K), L, d, rng=rng), alpha


def dnc_reduced_curvatures(K: int, L: int, alpha: float) -> list:
    """Second derivatives of the reduced loss at Z = αS (an eq. (10) point) along unit directions Δ
    with columns ⊥ 1: a list of (name, curvature, multiplicity), see the module notes.

    The K−1 symmetric directions whose diagonal d is ⊥ 1 couple with the rotations Δ = v1ᵀ (v ⊥ 1) of
    the row space, which shift the diagonal by v: their curvature is the smaller eigenvalue of the 2×2
    form c₀[[1/K − q/α + κμ, −κ√(μ/K)], [−κ√(μ/K), 1/K + 1/α + κ/K]], μ = 1 − 2/K.
    """
    q, e = (L - 1) / (L + 1), np.exp(alpha)
    c0, kappa = 1.0 / (K - 1 + e), (e - 1.0) / (K - 1 + e)
    base, mu = 1.0 / K - q / alpha, 1.0 - 2.0 / K
    pair = np.array([[base + kappa * mu, -kappa * np.sqrt(mu / K)],
                     [-kappa * np.sqrt(mu / K), 1.0 / K + 1.0 / alpha + kappa / K]])   # (2, 2)
    return [("symmetric, zero diagonal and row sums", c0 * base, max(K * (K - 3) // 2, 0)),
            ("symmetric, diagonal orthogonal to 1", c0 * np.linalg.eigvalsh(pair)[0], K - 1 if K > 2 else 0),
            ("scale", c0 * (base + kappa * (1 - 1 / K)), 1),
            ("antisymmetric", c0 * (1.0 / K + 1.0 / alpha), (K - 1) * (K - 2) // 2)]


def dnc_negative_count(K: int, L: int, alpha: float) -> int:
    """Predicted number of negative Hessian eigenvalues at the DNC critical point of scale α."""
    return sum(m for _, c, m in dnc_reduced_curvatures(K, L, alpha) if c < 0)


def dnc_minimum_threshold(K: int, L: int):
    """(α_c, λ_c): the large-root DNC point is a local minimum iff α ≥ α_c ⟺ λ ≤ λ_c.

    α_c = K(L−1)/(L+1) when K ≥ 4 and that lies on the large branch (α ≥ α*); for K = 3 the root of the
    second curvature; otherwise α* (every large-root point is a minimum); λ_c = eq. (10)'s right side.
    """
    lam_max, a_star = dnc_lambda_max(K, L)
    if L == 1:
        return 0.0, lam_max
    q = (L - 1) / (L + 1)
    if K >= 4:
        a_c = max(K * q, a_star)
    elif K == 3:
        mid = lambda a: dnc_reduced_curvatures(K, L, a)[1][1]             # noqa: E731
        a_c = a_star if mid(a_star) >= 0 else optimize.brentq(mid, a_star, 50.0 * (1 + a_star))
    else:
        a_c = a_star
    return a_c, float(a_c ** q / (K - 1 + np.exp(a_c)))


__all__ = ["HessianSpectrum", "dnc_critical_point", "dnc_minimum_threshold", "dnc_negative_count",
           "dnc_reduced_curvatures", "fd_hessian", "flatten", "hessian", "spectrum", "unflatten"]
