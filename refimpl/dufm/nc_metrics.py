"""Neural-collapse measures NC1–NC4 per layer, Lemma 1's balancedness residual and the DUFM end point.

Definitions follow section 2.1 of *The persistence of neural collapse despite low-rank bias* (Papyan et
al.'s NC1–NC3) and its DUFM definition of DNC (section 3, Z = α(I − 11ᵀ/K)).  Features are columns:
H of shape (d, K·n), column k·n+i is sample i of class k (the DUFM convention).  Every measure is 0 at
exact collapse.  S = I − 11ᵀ/K is :func:`refimpl.dufm.structures.dnc_matrix`.

    measure   function                    definition
    NC1       :func:`nc1`                 tr(Σ_W Σ_B⁺)/K
    NC2       :func:`nc2`                 ‖Gram(M̄)/‖Gram(M̄)‖ − S/‖S‖‖_F, S = I − 11ᵀ/K
    NC3       :func:`nc3`                 ‖Wᵀ/‖W‖ − M̄/‖M̄‖‖_F (last layer: W_L against the means of H_L)
    NC3 (l)   :func:`nc3_subspace`        ‖W_l (I − Π_M̄)‖²_F/‖W_l‖²_F (rows of W_l in span of the means)
    NC4       :func:`nc4`                 share of samples whose nearest class mean ≠ their argmax
    Lemma 1   :func:`balancedness`        ‖W_lᵀW_l − W_{l−1}W_{l−1}ᵀ‖_F / (‖W_lᵀW_l‖_F + ‖W_{l−1}W_{l−1}ᵀ‖_F)
    end point :func:`classify`            "DNC", "low rank", "zero", "other" from the singular values of Z

Every function checks its arguments (one-line InputError naming the argument and the bad value): arrays
by :func:`refimpl.validate.float_array`'s rule (real, finite — except :func:`classify`'s Z, where a
diverged run's inf or NaN is the end point "other"), H of shape (d, K·n) with n ≥ 1 samples per class
dividing its columns, W and Z of the shapes that K and d imply.
"""

import dataclasses

import numpy as np

from refimpl.dufm.structures import dnc_matrix, is_diagonally_superior
from refimpl.errors import require
from refimpl.validate import flag, float_array, nonneg_number, positive_int


def check_features(H, n):
    """Features H (d, K·n), finite reals, and n ≥ 1 samples per class dividing its columns; returns
    (H, n, K)."""
    H, n = float_array("H", H, 2), positive_int("n", n)
    d, Kn = H.shape
    require(d >= 1 and Kn >= 1, f"H must be (d, K·n) with a row and a column at least, got shape {H.shape}")
    require(Kn % n == 0, f"H has {Kn} columns, not a multiple of n = {n} samples per class")
    return H, n, Kn // n


def class_means(H: np.ndarray, n: int = 1):
    """Class means μ_k (columns) and the global mean μ_G of features H (d, K·n); returns ((d, K), (d,))."""
    H, n, _ = check_features(H, n)
    return _means(H, n)


def _means(H, n):
    d, Kn = H.shape
    means = H.reshape(d, Kn // n, n).mean(axis=2)                         # (d, K)
    return means, means.mean(axis=1)


def nc1(H: np.ndarray, n: int = 1) -> float:
    """NC1, variability collapse: tr(Σ_W Σ_B⁺)/K (section 2.1); 0 when n = 1 (Σ_W = 0)."""
    H, n, K = check_features(H, n)
    Kn = H.shape[1]
    means, mu_g = _means(H, n)
    centered = means - mu_g[:, None]                                      # (d, K)
    within = H - np.repeat(means, n, axis=1)                              # (d, Kn)
    sigma_w = within @ within.T / Kn                                      # (d, d)
    sigma_b = centered @ centered.T / K                                   # (d, d)
    return float(np.trace(sigma_w @ np.linalg.pinv(sigma_b, rtol=1e-10))) / K


def _unit(A: np.ndarray) -> np.ndarray:
    nrm = np.linalg.norm(A)
    return A / nrm if nrm > 0 else A


def nc2(H: np.ndarray, n: int = 1, center: bool = True) -> float:
    """NC2, distance to a simplex ETF: ‖M̄ᵀM̄/‖M̄ᵀM̄‖_F − S/‖S‖_F‖_F, M̄ the (globally centered) means.

    Equal norms and pairwise cosines −1/(K−1) (section 2.1) hold iff M̄ᵀM̄ ∝ S.  With center=False the
    uncentered means are used, as in the linear DUFM's DNC (H_lᵀH_l ∝ S, section 3).
    """
    H, n, _ = check_features(H, n)
    means, mu_g = _means(H, n)
    center = flag("center", center)
    M = means - mu_g[:, None] if center else means                        # (d, K)
    return float(np.linalg.norm(_unit(M.T @ M) - _unit(dnc_matrix(M.shape[1]))))


def nc3(W: np.ndarray, H: np.ndarray, n: int = 1) -> float:
    """NC3, self-duality: ‖W_Lᵀ/‖W_L‖_F − M̄/‖M̄‖_F‖_F with W_L (K, d) and H = H_L's input features (d, Kn)."""
    H, n, K = check_features(H, n)
    W = float_array("W", W, 2)
    require(W.shape == (K, H.shape[0]), f"W has shape {W.shape}, expected (K, d) = ({K}, {H.shape[0]})")
    means, mu_g = _means(H, n)
    return float(np.linalg.norm(_unit(W.T) - _unit(means - mu_g[:, None])))


def nc3_subspace(W: np.ndarray, H: np.ndarray, n: int = 1, center: bool = True) -> float:
    """Per-layer NC3 (the DUFM's DNC3, section 3.4): share of ‖W_l‖²_F outside the span of the means.

    ‖W_l (I − Π)‖²_F / ‖W_l‖²_F with Π the orthogonal projector on the span of the (centered) class
    means of the layer's input H (d, Kn); W_l (p, d).  0 when every row of W_l lies in that span.
    """
    H, n, _ = check_features(H, n)
    W = float_array("W", W, 2)
    require(W.shape[1] == H.shape[0], f"W has shape {W.shape}, expected (p, d) with d = {H.shape[0]}")
    center = flag("center", center)
    means, mu_g = _means(H, n)
    M = means - mu_g[:, None] if center else means                        # (d, K)
    U, s, _ = np.linalg.svd(M, full_matrices=False)
    U = U[:, s > 1e-10 * max(s.max(initial=0.0), 1e-300)]                 # (d, rank)
    outside = W - (W @ U) @ U.T                                           # (p, d)
    total = float(np.vdot(W, W))
    return float(np.vdot(outside, outside)) / total if total > 0 else 0.0


def nc4(H: np.ndarray, Z: np.ndarray, n: int = 1) -> float:
    """NC4: share of samples whose nearest class mean (in H (d, Kn)) differs from argmax of Z (K, Kn)."""
    H, n, K = check_features(H, n)
    Z = float_array("Z", Z, 2)
    require(Z.shape == (K, H.shape[1]), f"Z has shape {Z.shape}, expected (K, K·n) = ({K}, {H.shape[1]})")
    means, _ = _means(H, n)
    dist = ((H[:, :, None] - means[:, None, :]) ** 2).sum(axis=0)         # (Kn, K)
    return float(np.mean(dist.argmin(axis=1) != Z.argmax(axis=0)))


def balancedness(params) -> np.ndarray:
    """Lemma 1's residuals ‖W_lᵀW_l − W_{l−1}W_{l−1}ᵀ‖_F, relative, for l = 1..L (W_0 = H_1); shape (L,).

    Each is divided by ‖W_lᵀW_l‖_F + ‖W_{l−1}W_{l−1}ᵀ‖_F; all vanish at any critical point (B.1).
    params: a non-empty list of finite real matrices that chain (W_l has as many columns as W_{l−1} rows).
    """
    require(isinstance(params, (list, tuple)) and len(params) >= 1,
            f"params must be a non-empty list [H_1, W_1, ..., W_L], got {type(params).__name__}")
    params = [float_array("H_1" if l == 0 else f"W_{l}", p, 2) for l, p in enumerate(params)]
    for l in range(1, len(params)):
        require(params[l].shape[1] == params[l - 1].shape[0],
                f"W_{l} has shape {params[l].shape}: its {params[l].shape[1]} columns must match the "
                f"{params[l - 1].shape[0]} rows of {'H_1' if l == 1 else f'W_{l - 1}'}")
    out = []
    for l in range(1, len(params)):
        a = params[l].T @ params[l]                                       # (d, d)
        b = params[l - 1] @ params[l - 1].T                               # (d, d)
        scale = np.linalg.norm(a) + np.linalg.norm(b)
        out.append(np.linalg.norm(a - b) / scale if scale > 0 else 0.0)
    return np.array(out)


@dataclasses.dataclass(frozen=True)
class EndPoint:
    """Where a run ended: kind in {"DNC", "low rank", "zero", "other"}, numerical rank r of Z,
    the normalized singular values s/s_1 of Z, the DNC distance ‖Ẑ − Ŝ‖_F and whether Z is
    diagonally superior (Z_jj > Z_ij for all i ≠ j, section 3.1)."""

    kind: str
    rank: int
    sv: np.ndarray
    dnc_distance: float
    superior: bool


RANK_TOL = 1e-3      # s_i/s_1 above this counts towards the rank (suppressed values decay exponentially)
DNC_TOL = 1e-2       # ‖Z/‖Z‖ − S/‖S‖‖_F below this (and rank K−1) is DNC
ZERO_TOL = 1e-6      # s_1 below this: the zero solution (regularization too strong, Theorem 3 (i))


def classify(Z: np.ndarray, n: int = 1, rank_tol=RANK_TOL, dnc_tol=DNC_TOL, zero_tol=ZERO_TOL) -> EndPoint:
    """Classify a trained output Z (K, K·n) by its class means Z̄ (K, K).

    DNC: rank K−1 and ‖Z̄/‖Z̄‖_F − S/‖S‖_F‖_F ≤ dnc_tol with S = I − 11ᵀ/K;  low rank: diagonally
    superior with rank r < K−1;  zero: s_1 ≤ zero_tol;  other: anything else (rank K, rank K−1 off
    the simplex, or not diagonally superior).  The rank counts s_i/s_1 > rank_tol.  A Z with inf or NaN
    (a diverged run) is "other", with rank −1.
    """
    Z, n = float_array("Z", Z, 2, finite=False), positive_int("n", n)
    K, Kn = Z.shape
    require(K >= 1 and Kn == K * n, f"Z has shape {Z.shape}, expected (K, K·n) = ({K}, {K * n}) with K >= 1")
    rank_tol, dnc_tol = nonneg_number("rank_tol", rank_tol), nonneg_number("dnc_tol", dnc_tol)
    zero_tol = nonneg_number("zero_tol", zero_tol)
    with np.errstate(invalid="ignore"):
        Zbar, _ = _means(Z, n)                                            # (K, K)
    if not np.all(np.isfinite(Zbar)):
        return EndPoint("other", -1, np.full(K, np.nan), np.nan, False)
    s = np.linalg.svd(Zbar, compute_uv=False)                             # (K,)
    sv = s / s[0] if s[0] > 0 else s
    rank = int(np.sum(sv > rank_tol)) if s[0] > 0 else 0
    dist = float(np.linalg.norm(_unit(Zbar) - _unit(dnc_matrix(K))))
    superior = is_diagonally_superior(Zbar)
    if s[0] <= zero_tol:
        kind = "zero"
    elif rank == K - 1 and dist <= dnc_tol:
        kind = "DNC"
    elif superior and rank < K - 1:
        kind = "low rank"
    else:
        kind = "other"
    return EndPoint(kind, rank, sv, dist, superior)
