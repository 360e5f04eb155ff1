"""Where DNC stops being optimal: Theorems 1 and 6 (inequalities and numerical optima), B.7's ReLU
construction, Theorem 2's depth L_0 (B.3) and Theorem 3's minimal rank q.

Theorem 1 (linear, B.2): at equal scales the LR block beats DNC on the fit term, and on the
regularizer exactly when 2^{2/(L+1)} < (2m−1)/m, m = ⌊K/2⌋ — i.e. K ≥ 4, L ≥ 3 or K ≥ 6, L = 2.
Theorem 6 (ReLU, B.7): DNC's loss is bounded below by the linear DNC optimum; a ReLU-compatible LR
construction beats that bound when (even K) ((K+2)/K)^{3/(L+1)} 2^{(L−3)/(L+1)} (K−1) ≥ K+2, (odd K)
(K−1) 2^{(L−3)/(L+1)} ((K+3)/(K+1))^{1/(L+1)} ((K+3)/K)^{2/(L+1)} ≥ K+3 — i.e. L = 4, K ≥ 16 or L ≥ 5,
K ≥ 10 as the paper states (even K ≥ 14 already suffices at L = 4).
Both are sufficient conditions at equal scales; :func:`gap_table` optimizes both scales instead.

Structures are (K, K) matrices (:mod:`refimpl.dufm.structures`); B.7's construction returns the ReLU
model's parameters [H_1 (d, K), W_1 (d, d), …, W_L (K, d)]; tables are (len(Ks), len(Ls)).
"""

import numpy as np

from refimpl.dufm import structures
from refimpl.dufm.critical import optimal_dnc
from refimpl.errors import require
from refimpl.validate import choice, positive_int, width


def theorem1_inequality(K: int, L: int) -> bool:
    """B.2: 2^{2/(L+1)} < (2m−1)/m with m = ⌊K/2⌋ (LR's regularizer below DNC's at equal scale)."""
    m = positive_int("K", K) // 2
    return m >= 1 and 2.0 ** (2.0 / (positive_int("L", L) + 1)) < (2 * m - 1) / m


def theorem1_paper(K: int, L: int) -> bool:
    """Theorem 1's statement: K ≥ 4, L ≥ 3 or K ≥ 6, L = 2."""
    return (K >= 4 and L >= 3) or (K >= 6 and L == 2)


def theorem6_inequality(K: int, L: int) -> bool:
    """B.7's final inequalities (even and odd K), for L ≥ 2 (no ReLU layer when L = 1)."""
    K, L = positive_int("K", K), positive_int("L", L)
    if L < 2 or K < 2:
        return False
    e = 2.0 ** ((L - 3) / (L + 1))
    if K % 2 == 0:
        return ((K + 2) / K) ** (3 / (L + 1)) * e * (K - 1) >= K + 2
    return (K - 1) * e * ((K + 3) / (K + 1)) ** (1 / (L + 1)) * ((K + 3) / K) ** (2 / (L + 1)) >= K + 3


def theorem6_paper(K: int, L: int) -> bool:
    """Theorem 6's statement: L = 4, K ≥ 16 or L ≥ 5, K ≥ 10."""
    return (L == 4 and K >= 16) or (L >= 5 and K >= 10)


def rule_table(rule, Ks, Ls) -> np.ndarray:
    """Boolean table rule(K, L) of shape (len(Ks), len(Ls))."""
    return np.array([[bool(rule(K, L)) for L in Ls] for K in Ks])


def min_diagonally_superior_rank(K: int) -> int:
    """Theorem 3's q: the minimal rank of a diagonally superior K×K matrix — 1 for K ≤ 2, 2 for K ≥ 3.

    Notes
    -----
    Rank 2 is reached by :func:`structures.circle_matrix`. Rank 1 is impossible for K ≥ 3: for M = abᵀ,
    M_jj > M_ij for all i ≠ j forces a_j to be the strict maximum of a (b_j > 0) or its strict minimum
    (b_j < 0) for every j, and only two indices can be either. The paper only bounds q < K/2 + 1.
    """
    return 1 if positive_int("K", K) <= 2 else 2


def theorem2_depth(X, M) -> int:
    """Theorem 2's L_0 as B.3's proof constructs it: for every L > L_0 and every λ > 0,
    min_β L_L(βM) ≤ min_α L_L(αX) (strictly unless both minima are at scale 0).

    Parameters
    ----------
    X : ndarray of shape (K, K), any structure of rank p.
    M : ndarray of shape (K, K), diagonally superior, of rank q < p.

    Notes
    -----
    B.3 takes γ with γ(M_{c'c} − M_cc) ≤ X_{c'c} − X_cc for all c' ≠ c — the least is
    γ = max_{c'≠c} (X_{c'c} − X_cc)/(M_{c'c} − M_cc) — so that g(γαM) ≤ g(αX) at every α ≥ 0; then the
    regularizers compare as Σ_i (γν_i)^{2/(L+1)} < Σ_j μ_j^{2/(L+1)} (ν, μ the non-zero singular values
    of M and X). L_0 is the largest L ≥ 1 at which that fails (0 if none, or if γ ≤ 0). With
    q·max(γν)^s < p·min(μ)^s for s = 2/(L+1) < log(p/q)/log(max γν / min μ) it holds at every larger L,
    so a finite scan decides. The paper only states that some L_0 exists.
    """
    X, M = np.asarray(X, dtype=np.float64), np.asarray(M, dtype=np.float64)
    require(X.ndim == 2 and X.shape[0] == X.shape[1] and X.shape == M.shape,
            f"X and M must be square of one shape, got {X.shape} and {M.shape}")
    require(structures.is_diagonally_superior(M), "M is not diagonally superior")
    mu, nu = (_nonzero_singular_values(A) for A in (X, M))                # (p,), (q,)
    p, q = mu.size, nu.size
    require(q < p, f"Theorem 2 needs rank M < rank X, got rank M = {q}, rank X = {p}")
    off = ~np.eye(X.shape[0], dtype=bool)
    gamma = float(np.max((X - np.diag(X))[off] / (M - np.diag(M))[off]))   # columns: Z_{c'c} − Z_cc
    if gamma <= 0:
        return 0
    worst = np.log(gamma * nu.max() / mu.min())
    last = int(np.floor(2 * worst / np.log(p / q))) if worst > 0 else 0  # holds for every L ≥ last

    def holds(L):
        s = 2.0 / (L + 1)
        return float(np.sum((gamma * nu) ** s)) < float(np.sum(mu ** s))

    return max((L for L in range(1, last + 1) if not holds(L)), default=0)


def _nonzero_singular_values(A):
    s = np.linalg.svd(A, compute_uv=False)                                # (K,)
    return s[s > structures.RTOL_ZERO * s.max()] if s.max() > 0 else s[:0]


def _relu_structure(K: int, L: int):
    """B.7's X̄, Ȳ (K, K), c with Z = c ψ^{L+1} X̄, n with ‖·‖² = n ψ² for each of the L+1 matrices,
    and the ratios φ_2/ψ², χ/ψ, ψ_L/ψ that equalize those norms."""
    Xb = structures.lr_matrix(K)                                          # (K, K)
    Yb = np.ones((K, K))                                                  # (K, K)
    if K % 2 == 0:
        c = 2.0 ** (L - 1) * ((K + 2) / K) ** 1.5
        return Xb, Yb, c, 2.0 * (K + 2), (K + 2) / K, 2.0 / K, np.sqrt((K + 2) / K)
    Xb[-1, -1], Yb[-1, :], Yb[:, -1] = 2.0, 0.0, 0.0
    c = 2.0 ** (L - 1) * np.sqrt((K + 3) / (K + 1)) * (K + 3) / K
    return Xb, Yb, c, 2.0 * (K + 3), (K + 3) / K, 2.0 / (K - 1), np.sqrt((K + 3) / (K + 1))


def relu_dnc_lower_bound(K: int, L: int, lam: float) -> float:
    """B.7: no DNC point of the ReLU CE DUFM has a loss below min_α L_DNC(α) of the linear model."""
    return optimal_dnc(K, L, lam).loss


def relu_lr_construction(K: int, L: int, lam: float, d: int, *, psi=None):
    """B.7's non-negative low-rank point of the ReLU CE DUFM at its best scale ψ (or the given ψ).

    For 2 ≤ l ≤ L: H_l = [φ_l (X̄ + Ȳ); 0] ≥ 0 (ReLU acts as the identity), W_l = [ψX̄ + χȲ, 0; 0, 0]
    (2 ≤ l ≤ L−1), W_L = [ψ_L X̄, 0], and W_1, H_1 split H_2 = U Σ Vᵀ as U Σ^{1/2}, Σ^{1/2} Vᵀ. All L+1
    matrices have the squared norm n ψ² (n = 2(K+2) even, 2(K+3) odd K) and Z = c ψ^{L+1} X̄.

    Returns
    -------
    params : [H_1 (d, K), W_1 (d, d), …, W_L (K, d)]
    loss : float, g(Z)/K + ½ λ (L+1) n ψ².
    """
    K, L = positive_int("K", K), positive_int("L", L)
    require(K >= 2, f"B.7's construction needs K >= 2, got K = {K}")
    require(L >= 2, f"B.7's construction needs L >= 2 (no ReLU layer when L = 1), got L = {L}")
    d = width(d, K)
    Xb, Yb, c, n, phi_ratio, chi_ratio, last_ratio = _relu_structure(K, L)
    p = 2.0 / (L + 1)
    if psi is None:
        opt = structures.minimize_scale(Xb, L, lam, weight=n * c ** (-p), name="relu-lr")
        psi = (opt.scale / c) ** (1.0 / (L + 1))
    loss = structures.fit_term(c * psi ** (L + 1) * Xb) + 0.5 * lam * (L + 1) * n * psi ** 2
    pad = np.zeros((d, d))                                                # (d, d)
    H2 = pad[:, :K].copy()
    H2[:K] = phi_ratio * psi ** 2 * (Xb + Yb)                             # (d, K) φ_2 (X̄ + Ȳ)
    U, s, Vt = np.linalg.svd(H2, full_matrices=False)                     # (d, K), (K,), (K, K)
    W1 = pad.copy()
    W1[:, :K] = U * np.sqrt(s)                                            # (d, d) U Σ^{1/2} Ũᵀ, Ũ = I
    H1 = pad[:, :K].copy()
    H1[:K] = np.sqrt(s)[:, None] * Vt                                     # (d, K) Ũ Σ^{1/2} Vᵀ
    Wmid = pad.copy()
    Wmid[:K, :K] = psi * Xb + chi_ratio * psi * Yb                        # (d, d)
    WL = np.zeros((K, d))
    WL[:, :K] = last_ratio * psi * Xb                                      # (K, d) ψ_L X̄
    return [H1, W1] + [Wmid.copy() for _ in range(L - 2)] + [WL], float(loss)


def gap_table(Ks, Ls, lam: float, structure: str = "lr", progress=None) -> np.ndarray:
    """min over scales of (structure's loss) − (DNC's), shape (len(Ks), len(Ls)); NaN where undefined.

    structure: "lr" (B.2), "circle" (K ≥ 3), or "relu" (B.7's construction minus the ReLU DNC lower
    bound, L ≥ 2). Negative entries: DNC is not a global optimum there.
    """
    choice("structure", structure, ("lr", "circle", "relu"))
    out = np.full((len(Ks), len(Ls)), np.nan)
    for i, K in enumerate(Ks):
        for j, L in enumerate(Ls):
            if progress is not None:
                progress.update(1)
            if K < 2 or (structure == "circle" and K < 3) or (structure == "relu" and L < 2):
                continue
            dnc = optimal_dnc(K, L, lam).loss
            if structure == "lr":
                other = structures.optimal_lr(K, L, lam).loss
            elif structure == "circle":
                other = structures.optimal_circle(K, L, lam).loss
            else:
                other = relu_lr_construction(K, L, lam, K)[1]
            out[i, j] = other - dnc
    return out


__all__ = ["gap_table", "min_diagonally_superior_rank", "relu_dnc_lower_bound", "relu_lr_construction",
           "rule_table", "theorem1_inequality", "theorem1_paper", "theorem2_depth", "theorem6_inequality",
           "theorem6_paper"]
