"""Measuring feature collapse: PCA of word embeddings / of the vectors u_{k,ℓ}, embedding norms.

The figures of *Feature collapse* (figs. 3–4) show the first two principal components of the word
embeddings w_{(α,β)} (after the LayerNorm for h*) and of the vectors u_{k,ℓ}, colored by concept, with
the top three singular values σ1, σ2, σ3 of the PCA: σ3 ≪ σ2 says the points live in a plane.

The second half builds what the theorems speak of: equiangular frames (eq. 4), the type-I/II/III collapse
configurations (Definitions 1–3) for a latent set, and the check of Assumption A / Lemma B (appendix B).
"""

import dataclasses
from math import comb

import numpy as np

from refimpl.errors import require
from refimpl.validate import positive_int


def pca(points: np.ndarray, n_components: int = 3):
    """PCA by NumPy SVD of the centered points (as sklearn's PCA: singular values of the centered data).

    Parameters
    ----------
    points : ndarray of shape (n, d), one point per row.
    n_components : how many components to return.

    Returns
    -------
    coords : ndarray of shape (n, n_components), coordinates on the principal axes.
    sigma : ndarray of shape (n_components,), the top singular values of the centered data.
    """
    X = np.asarray(points, dtype=np.float64)
    X = X - X.mean(axis=0)                                                # (n, d)
    _, s, Vt = np.linalg.svd(X, full_matrices=False)                      # s: (min(n, d),)
    k = min(n_components, s.size)
    sigma = np.zeros(n_components)
    sigma[:k] = s[:k]
    coords = np.zeros((X.shape[0], n_components))
    coords[:, :k] = X @ Vt[:k].T                                          # (n, k)
    return coords, sigma


def u_vectors(U: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vectors u_{k,ℓ} of eq. (1)/(16) as rows, with the concept z_{k,ℓ} each one 'sees'.

    Parameters
    ----------
    U : ndarray of shape (K, L·d)
    Z : ndarray of shape (K, L)

    Returns
    -------
    u : ndarray of shape (K·L, d), row k·L+ℓ is u_{k,ℓ}.
    concept : ndarray of shape (K·L,), z_{k,ℓ}.
    """
    K, L = Z.shape
    return U.reshape(K * L, -1), Z.reshape(-1)


def norm_stats(vectors: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the row norms of `vectors` (shape (n, d))."""
    norms = np.linalg.norm(np.asarray(vectors, dtype=np.float64), axis=1)
    return float(norms.mean()), float(norms.std())


# ---- Collapse configurations: equiangular frames (eq. 4), Definitions 1–3, Assumption A / Lemma B ----

def equiangular_frame(nc: int, d: int, rng: np.random.Generator | None = None, *,
                      mean_zero: bool = False) -> np.ndarray:
    """Equiangular vectors f_1..f_nc ∈ R^d (eq. 4; Definition D), mean-zero ones when asked (Definition F).

    F 1 = 0 and Fᵀ F = nc/(nc−1) I − 1/(nc−1) 11ᵀ; with ``mean_zero`` also 1_dᵀ F = 0. Built as
    √(nc/(nc−1)) Q Bᵀ with B an orthonormal basis of 1^⊥ ⊂ R^nc (so Bᵀ1 = 0, BBᵀ = I − 11ᵀ/nc) and
    Q ∈ R^{d×(nc−1)} orthonormal — random when `rng` is given, else the first coordinate axes (of
    1_d^⊥ when mean-zero).

    Returns
    -------
    F : ndarray of shape (d, nc), column α is f_α. Needs nc ≥ 2 and d ≥ nc − 1 (d ≥ nc when mean-zero).
    """
    nc, d = positive_int("nc", nc), positive_int("d", d)
    require(nc >= 2, f"equiangular vectors need nc >= 2 concepts, got nc = {nc}")
    need = nc if mean_zero else nc - 1
    kind = "mean-zero equiangular" if mean_zero else "equiangular"
    require(d >= need, f"{kind} vectors f_1..f_{nc} need d >= {need}, got d = {d}")
    B = np.linalg.svd(np.eye(nc) - 1.0 / nc)[0][:, :nc - 1]              # (nc, nc-1) basis of 1^⊥
    if mean_zero:  # an orthonormal basis of 1_d^⊥, then nc-1 of its directions
        basis = np.linalg.svd(np.eye(d) - 1.0 / d)[0][:, :d - 1]          # (d, d-1)
    else:
        basis = np.eye(d)                                                 # (d, d)
    if rng is None:
        Q = basis[:, :nc - 1]                                             # (d, nc-1)
    else:
        mix = np.linalg.qr(rng.standard_normal((basis.shape[1], nc - 1)))[0]
        Q = basis @ mix                                                   # (d, nc-1) random orthonormal
    return np.sqrt(nc / (nc - 1)) * Q @ B.T                               # (d, nc)


def is_equiangular(F: np.ndarray, *, mean_zero: bool = False, atol: float = 1e-12) -> bool:
    """Whether the columns of F (shape (d, nc)) satisfy eq. (4) (and 1ᵀF = 0 when `mean_zero`)."""
    nc = F.shape[1]
    gram = nc / (nc - 1) * np.eye(nc) - 1.0 / (nc - 1)                   # (nc, nc) eq. (4)
    ok = np.allclose(F.sum(axis=1), 0.0, atol=atol) and np.allclose(F.T @ F, gram, atol=atol)
    return bool(ok and (not mean_zero or np.allclose(F.sum(axis=0), 0.0, atol=atol)))


def _u_of(F: np.ndarray, Z: np.ndarray, c: float) -> np.ndarray:
    """U with u_{k,ℓ} = c f_{z_{k,ℓ}} (condition ii of Definitions 1–3). Returns shape (K, L·d)."""
    K, L = Z.shape
    return c * F.T[Z].reshape(K, L * F.shape[0])                          # (K, L, d) -> (K, L·d)


def type3_configuration(F: np.ndarray, Z: np.ndarray, r, c: float):
    """Definition 3 (type-III collapse): w_{(α,β)} = r_β f_α and u_{k,ℓ} = c f_{z_{k,ℓ}}.

    Parameters
    ----------
    F : ndarray of shape (d, nc), equiangular; Z : ndarray of shape (K, L); r : sequence of sc magnitudes.

    Returns
    -------
    W : ndarray of shape (d, nc·sc), column α·sc+β = r_β f_α;  U : ndarray of shape (K, L·d).
    """
    r = np.asarray(r, dtype=np.float64)                                   # (sc,)
    d, nc = F.shape
    W = (F[:, :, None] * r[None, None, :]).reshape(d, nc * r.size)       # (d, nc, sc) -> (d, nw)
    return W, _u_of(F, Z, c)


def type1_configuration(F: np.ndarray, Z: np.ndarray, sc: int, c: float, c_prime: float):
    """Definition 1 (type-I collapse): w_{(α,β)} = c f_α and u_{k,ℓ} = c′ f_{z_{k,ℓ}}, i.e. W = c F P,
    Û = c′ F Z (appendix D). Returns W of shape (d, nc·sc) and U of shape (K, L·d)."""
    return type3_configuration(F, Z, np.full(sc, float(c)), c_prime)


def type2_configuration(F: np.ndarray, Z: np.ndarray, sc: int, c: float,
                        rng: np.random.Generator | None = None):
    """Definition 2 (type-II collapse, network h*): φ(w_{(α,β)}) = √d f_α and u_{k,ℓ} = c f_{z_{k,ℓ}}.

    F must be mean-zero equiangular; then φ(√d f_α) = √d f_α. φ is blind to a positive scale and a shift
    along 1_d, so with `rng` each word gets w = s·√d f_α + b·1_d (s ∈ [0.5, 2], b ~ N(0, 1)): W itself is
    then not collapsed, only φ(W) is — as in the definition.

    Returns
    -------
    W : ndarray of shape (d, nc·sc);  U : ndarray of shape (K, L·d).
    """
    d, nc = F.shape
    W = np.sqrt(d) * np.repeat(F, sc, axis=1)                             # (d, nw) = √d F P
    if rng is not None:
        W = W * rng.uniform(0.5, 2.0, size=nc * sc) + rng.standard_normal(nc * sc)  # (d, nw)
    return W, _u_of(F, Z, c)


@dataclasses.dataclass
class LatentSymmetry:
    """Assumption A (eq. 35) and the three properties of Lemma B for a latent set.

    ``counts[k, r, ℓ, α]`` = |{j : dist(z_j, z_k) = r, z_{j,ℓ} = α}| for r = 0..L;
    ``sphere[k, r]`` = |S_r(k)|; ``theta[r-1]`` the θ_r of Lemma B (iii) fitted by least squares (nan
    where every S_r(k) is empty).
    """

    assumption_a: bool
    max_count_error: float
    lemma_b_i: bool
    lemma_b_ii: bool
    lemma_b_iii: bool
    theta: np.ndarray
    residual_iii: float
    sphere: np.ndarray
    counts: np.ndarray

    @property
    def lemma_b(self) -> bool:
        return self.lemma_b_i and self.lemma_b_ii and self.lemma_b_iii


def neighbour_counts(Z: np.ndarray, nc: int, max_K: int = 4096) -> np.ndarray:
    """counts[k, r, ℓ, α] = |{j ∈ [K] : dist(z_j, z_k) = r and z_{j,ℓ} = α}| (the left side of eq. 35).

    Returns ndarray of shape (K, L+1, L, nc), float64; cost O(K²·L²·nc), refused above `max_K` classes.
    """
    K, L = Z.shape
    require(K <= max_K, f"Assumption A check on K = {K} latent variables exceeds max_K = {max_K}")
    Y = (Z[:, :, None] == np.arange(nc)).astype(np.float64)              # (K, L, nc) the matrices Z_jᵀ
    counts = np.empty((K, L + 1, L, nc))
    block = max(1, 2**22 // (K * (L + 1)))
    for s in range(0, K, block):
        dist = (Z[s:s + block, None, :] != Z[None, :, :]).sum(axis=2)   # (b, K) Hamming distances
        sphere = (dist[:, :, None] == np.arange(L + 1)).astype(np.float64)  # (b, K, L+1)
        counts[s:s + block] = np.einsum("bjr,jla->brla", sphere, Y)      # (b, L+1, L, nc)
    return counts


def expected_counts(Z: np.ndarray, nc: int) -> np.ndarray:
    """The right side of eq. (35) for r = 0..L: K/nc^L·C(L−1, r)(nc−1)^r if z_{k,ℓ} = α, else
    K/nc^L·C(L−1, r−1)(nc−1)^{r−1}. Returns ndarray of shape (K, L+1, L, nc)."""
    K, L = Z.shape
    scale = K / float(nc) ** L
    same = np.array([comb(L - 1, r) * (nc - 1) ** r for r in range(L + 1)], dtype=np.float64)
    diff = np.array([comb(L - 1, r - 1) * (nc - 1) ** (r - 1) if r else 0 for r in range(L + 1)],
                    dtype=np.float64)
    hit = (Z[:, :, None] == np.arange(nc))[:, None, :, :]                 # (K, 1, L, nc) 1{z_{k,ℓ} = α}
    return scale * np.where(hit, same[None, :, None, None], diff[None, :, None, None])


def latent_symmetry(Z: np.ndarray, nc: int, *, atol: float = 1e-9) -> LatentSymmetry:
    """Check Assumption A (eq. 35, r ∈ [L] = 1..L) and Lemma B (i)–(iii) for the latent variables Z.

    (i) |S_r(k)| does not depend on k; (ii) Σ_k Z_k = K/nc 1 1ᵀ and Z Zᵀ = KL/nc I; (iii) there are θ_r > 0
    and A_r with Z_k − mean_{j ∈ S_r(k)} Z_j = θ_r Z_k + A_r for all k (checked for each r whose spheres are
    non-empty, by least squares: averaging over k gives A_r = M̄ − θ_r Z̄, and θ_r then fits M_k − M̄ ≈
    θ_r (Z_k − Z̄)). Under Assumption A, θ_r = nc/(nc−1)·r/L (end of appendix B.1).

    Parameters
    ----------
    Z : ndarray of shape (K, L), ints in 0..nc-1.
    """
    K, L = Z.shape
    counts = neighbour_counts(Z, nc)                                      # (K, L+1, L, nc)
    err = np.abs(counts - expected_counts(Z, nc))[:, 1:]                  # (K, L, L, nc), r = 1..L
    sphere = counts[:, :, 0, :].sum(axis=2)                               # (K, L+1) |S_r(k)|
    b_i = bool(np.all(sphere == sphere[:1]))
    Y = (Z[:, :, None] == np.arange(nc)).astype(np.float64)              # (K, L, nc)
    b_ii = bool(np.allclose(Y.sum(axis=0), K / nc, atol=atol)
                and np.allclose(Y.sum(axis=(0, 1)), K * L / nc, atol=atol))
    theta, resid, b_iii = np.full(L, np.nan), 0.0, True
    for r in range(1, L + 1):
        if np.all(sphere[:, r] == 0):
            continue                                                      # empty spheres: nothing to check
        if np.any(sphere[:, r] == 0):
            b_iii = False                                                 # mean over an empty S_r(k)
            continue
        M = Y - counts[:, r] / sphere[:, r, None, None]                   # (K, L, nc) Z_kᵀ − mean Z_jᵀ
        dM, dY = M - M.mean(axis=0), Y - Y.mean(axis=0)                   # (K, L, nc)
        theta[r - 1] = np.vdot(dM, dY) / max(np.vdot(dY, dY), 1e-300)
        resid = max(resid, float(np.abs(dM - theta[r - 1] * dY).max()))
        b_iii = b_iii and theta[r - 1] > 0
    return LatentSymmetry(assumption_a=bool(err.max() <= atol), max_count_error=float(err.max()),
                          lemma_b_i=b_i, lemma_b_ii=b_ii, lemma_b_iii=bool(b_iii and resid <= atol),
                          theta=theta, residual_iii=resid, sphere=sphere, counts=counts)
