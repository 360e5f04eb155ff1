"""The linear CE DUFM's loss in Z (Appendix B.2), the structures it is evaluated on, Lemma 1's builder.

At every critical point the parameters have Lemma 1's balanced SVD structure, so the loss (eq. 1) is a
function of the output Z = W_L … W_1 H_1 ∈ R^{K×K} alone (Appendix B.2):

    L(Z) = g(Z)/K + ½(L+1) λ Σ_i s_i^{2/(L+1)},        s_i the singular values of Z.

Three fixed structures X (K, K) are scaled by one number t ≥ 0 (Z = t X):

    DNC     X = S = I − 11ᵀ/K          rank K−1, s = 1 (K−1 times)                           (B.2)
    LR      X = blockdiag([[1,−1],[−1,1]], …) (+ a trailing 1 for odd K)   rank ⌈K/2⌉     (B.2)
    circle  X_ij = cos(2π(i−j)/K)      rank 2 for every K ≥ 3, s = K/2 (twice)  (not in the paper)

The circle is diagonally superior (X_jj = 1 > cos(2πk/K) for k ≠ 0), so the minimal rank q of
Theorem 3 is 2 for every K ≥ 3; the paper only shows q < K/2 + 1 with the LR block.

:func:`minimize_scale` finds min_{t ≥ 0} of the loss of tX for any diagonally superior X (Theorem 2);
the DNC scale's closed form (eq. 10) is in :mod:`refimpl.dufm.critical`. :func:`balanced_params` builds
Lemma 1's parameters [H_1 (d, K), W_1 (d, d), …, W_L (K, d)] producing a given Z.
"""

import dataclasses

import numpy as np
from scipy import optimize, special

from refimpl.errors import InputError, require
from refimpl.validate import nonneg_number, positive_int, positive_number, width

RTOL_ZERO = 1e-12   # singular values below RTOL_ZERO · s_max count as zero: s^{2/(L+1)} is not Lipschitz at 0


def _classes(K, minimum: int = 1) -> int:
    """The number of classes K as an int ≥ `minimum` (the LR block needs K ≥ 2, the circle K ≥ 3)."""
    K = positive_int("K", K)
    require(K >= minimum, f"K must be >= {minimum}, got {K}")
    return K


def _scale(t, name: str) -> np.ndarray:
    """The scale(s) t ≥ 0 of a structure as a float array; a negative or NaN scale is an InputError."""
    t = np.asarray(t, dtype=np.float64)
    bad = t[~(t >= 0)]                                                    # negative or NaN entries
    if bad.size:
        raise InputError(f"{name} must be a scale >= 0, got {float(bad.flat[0]):g}")
    return t


def haar_orthogonal(rng, rows: int, cols: int) -> np.ndarray:
    """A Haar-random (rows, cols) matrix with orthonormal columns (rows ≥ cols) or rows (rows < cols).

    QR of a standard Gaussian (max, min) matrix with the signs of R's diagonal moved into Q (Mezzadri's
    correction, which makes Q Haar-distributed); square when rows = cols.
    """
    big, small = max(rows, cols), min(rows, cols)
    Q, R = np.linalg.qr(rng.standard_normal((big, small)))               # (big, small)
    Q = Q * np.sign(np.diag(R))                                           # Haar measure
    return Q if rows >= cols else Q.T


def fit_term(Z: np.ndarray) -> float:
    """g(Z)/K, the mean column-wise softmax cross-entropy of eq. (2); Z of shape (K, K)."""
    Z = np.asarray(Z, dtype=np.float64)                                   # (K, K)
    lse = special.logsumexp(Z, axis=0)                                    # (K,)
    return float(np.mean(lse - np.diag(Z)))


def schatten_term(s, L: int, lam: float, rtol: float = RTOL_ZERO) -> float:
    """R = ½(L+1) λ Σ s_i^{2/(L+1)} over the singular values s_i > rtol · max(s) (Appendix B.2)."""
    s = np.asarray(s, dtype=np.float64)                                   # (K,)
    if s.size == 0 or s.max() <= 0:
        return 0.0
    s = s[s > rtol * s.max()]
    return 0.5 * (L + 1) * lam * float(np.sum(s ** (2.0 / (L + 1))))


def reduced_loss(Z: np.ndarray, L: int, lam: float, rtol: float = RTOL_ZERO) -> float:
    """Loss at a balanced point producing Z: g(Z)/K + ½(L+1) λ Σ s_i^{2/(L+1)} (Appendix B.2).

    Parameters
    ----------
    Z : ndarray of shape (K, K), the network output.
    L : int ≥ 1, the number of weight matrices after H_1.
    lam : float ≥ 0.
    rtol : singular values below rtol · s_max are dropped (numerically zero).
    """
    Z = np.asarray(Z, dtype=np.float64)
    require(Z.ndim == 2 and Z.shape[0] == Z.shape[1] and Z.size > 0, f"Z must be square, got {Z.shape}")
    L, lam = positive_int("L", L), nonneg_number("lam", lam)
    return fit_term(Z) + schatten_term(np.linalg.svd(Z, compute_uv=False), L, lam, rtol)


def dnc_matrix(K: int) -> np.ndarray:
    """S = I_K − 11ᵀ/K, the simplex ETF of the DNC definition (the Gram matrix of its means); (K, K)."""
    K = positive_int("K", K)
    return np.eye(K) - np.full((K, K), 1.0 / K)


def lr_matrix(K: int) -> np.ndarray:
    """The block low-rank structure of B.2: K//2 blocks [[1,−1],[−1,1]], plus a lone 1 when K is odd."""
    K = positive_int("K", K)
    X = np.zeros((K, K))                                                  # (K, K)
    for i in range(0, K - 1, 2):
        X[i:i + 2, i:i + 2] = [[1.0, -1.0], [-1.0, 1.0]]
    if K % 2:
        X[-1, -1] = 1.0
    return X


def circle_matrix(K: int) -> np.ndarray:
    """X_ij = cos(2π(i−j)/K): diagonally superior, rank 2 for K ≥ 3 (rank 1 for K = 2); shape (K, K)."""
    K = positive_int("K", K)
    i = np.arange(K)
    return np.cos(2 * np.pi * (i[:, None] - i[None, :]) / K)            # (K, K)


def is_diagonally_superior(M: np.ndarray) -> bool:
    """M_jj > M_ij for all i ≠ j (definition before Theorem 2); M of shape (K, K), columns compared."""
    M = np.asarray(M, dtype=np.float64)
    gap = np.diag(M)[None, :] - M                                         # (K, K)
    return bool(np.all(gap[~np.eye(M.shape[0], dtype=bool)] > 0))


def dnc_loss(alpha, K: int, L: int, lam: float):
    """L_DNC(α) = log(1 + (K−1)e^{−α}) + ½(L+1)(K−1) λ α^{2/(L+1)}  (B.2); α ≥ 0, array or scalar."""
    K, L, lam = positive_int("K", K), positive_int("L", L), nonneg_number("lam", lam)
    a = _scale(alpha, "alpha")
    return np.log1p((K - 1) * np.exp(-a)) + 0.5 * (L + 1) * (K - 1) * lam * a ** (2.0 / (L + 1))


def lr_loss(beta, K: int, L: int, lam: float):
    """L_LR(β) of B.2, block structure ``lr_matrix(K)`` at scale β ≥ 0 (K ≥ 2).

    Notes
    -----
    K = 2m:    log(1 + (K−2)e^{−β} + e^{−2β}) + ½(L+1) λ m (2β)^{2/(L+1)}
    K = 2m+1:  [2m log(1 + (K−2)e^{−β} + e^{−2β}) + log(1 + (K−1)e^{−β})]/K
               + ½(L+1) λ [m (2β)^{2/(L+1)} + β^{2/(L+1)}]
    """
    K, L, lam = _classes(K, 2), positive_int("L", L), nonneg_number("lam", lam)
    b = _scale(beta, "beta")
    m, p = K // 2, 2.0 / (L + 1)
    block = np.log1p((K - 2) * np.exp(-b) + np.exp(-2 * b))
    if K % 2 == 0:
        return block + 0.5 * (L + 1) * lam * m * (2 * b) ** p
    lone = np.log1p((K - 1) * np.exp(-b))
    return (2 * m * block + lone) / K + 0.5 * (L + 1) * lam * (m * (2 * b) ** p + b ** p)


def circle_loss(gamma, K: int, L: int, lam: float):
    """Loss of γ·circle_matrix(K), K ≥ 3: log Σ_k e^{γ(cos(2πk/K) − 1)} + (L+1) λ (γK/2)^{2/(L+1)}."""
    K, L, lam = _classes(K, 3), positive_int("L", L), nonneg_number("lam", lam)
    g = _scale(gamma, "gamma")
    c = np.cos(2 * np.pi * np.arange(K) / K) - 1.0                        # (K,) column of X − X_cc
    fit = special.logsumexp(np.multiply.outer(g, c), axis=-1)
    return fit + (L + 1) * lam * (g * K / 2) ** (2.0 / (L + 1))


@dataclasses.dataclass(frozen=True)
class ScaleOptimum:
    """min_{t ≥ 0} of the loss of t·X: the scale, the loss, |dL/dt| there (0 at t = 0), success."""

    structure: str
    scale: float
    loss: float
    residual: float
    success: bool


def _scale_derivative(t, D, weight, L, lam):
    """d/dt [Σ_c logsumexp(t D_{·c})/K + ½(L+1) λ w t^{2/(L+1)}] for an array t; D (K, K), D_cc = 0."""
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))                    # (T,)
    logits = t[:, None, None] * D[None]                                   # (T, K, K)
    P = np.exp(logits - special.logsumexp(logits, axis=1, keepdims=True))  # (T, K, K) column softmax
    dfit = np.sum(P * D[None], axis=(1, 2)) / D.shape[0]                  # (T,) Σ_c E_c[D]/K ≤ 0
    return dfit + lam * weight * t ** (2.0 / (L + 1) - 1.0)               # (T,)


def minimize_scale(X: np.ndarray, L: int, lam: float, *, weight=None, name="X") -> ScaleOptimum:
    """min_{t ≥ 0} g(tX)/K + ½(L+1) λ w t^{2/(L+1)}, w = Σ s_i(X)^{2/(L+1)} unless given (Theorem 2).

    Every local minimum is a sign change − → + of the derivative (bracketed on a log grid, refined
    by Brent's method); the best of them is compared with t = 0, where the loss is log K.
    X (K, K) must be diagonally superior so that the fit term decreases to 0.
    """
    X = np.asarray(X, dtype=np.float64)
    K, L, lam = positive_int("K", X.shape[0]), positive_int("L", L), positive_number("lam", lam)
    require(is_diagonally_superior(X), f"{name} is not diagonally superior")
    D = X - np.diag(X)[None, :]                                           # (K, K) X_{c'c} − X_cc ≤ 0
    p = 2.0 / (L + 1)
    if weight is None:
        s = np.linalg.svd(X, compute_uv=False)                            # (K,)
        weight = float(np.sum(s[s > RTOL_ZERO * s.max()] ** p))
    w = weight

    def loss(t):
        return float(np.mean(special.logsumexp(t * D, axis=0))) + 0.5 * (L + 1) * lam * w * t ** p

    def deriv(t):
        return float(_scale_derivative(t, D, w, L, lam)[0])

    gap = float(np.min(-D[~np.eye(K, dtype=bool)])) if K > 1 else 1.0
    hi = 1.0 / gap
    while (K - 1) * np.abs(D).max() * np.exp(-hi * gap) >= lam * w * hi ** (p - 1) or hi * gap < 1:
        hi *= 2.0
    grid = np.geomspace(hi * 1e-10, hi, 1200)                             # (T,)
    sign = np.sign(_scale_derivative(grid, D, w, L, lam))                 # (T,)
    best = ScaleOptimum(name, 0.0, loss(0.0), max(0.0, -deriv(grid[0])) if L == 1 else 0.0, True)
    for i in np.flatnonzero((sign[:-1] < 0) & (sign[1:] > 0)):
        t = optimize.brentq(deriv, grid[i], grid[i + 1], xtol=1e-300, rtol=4 * np.finfo(float).eps)
        if loss(t) < best.loss:
            best = ScaleOptimum(name, t, loss(t), abs(deriv(t)), True)
    return best


def optimal_lr(K: int, L: int, lam: float) -> ScaleOptimum:
    """argmin_β L_LR(β) (B.2), K ≥ 2."""
    return minimize_scale(lr_matrix(_classes(K, 2)), L, lam, name="lr")


def optimal_circle(K: int, L: int, lam: float) -> ScaleOptimum:
    """argmin_γ of the circle structure's loss, K ≥ 3."""
    return minimize_scale(circle_matrix(_classes(K, 3)), L, lam, name="circle")


def balanced_params(Z: np.ndarray, L: int, d: int, *, rng=None, rtol: float = RTOL_ZERO) -> list:
    """Lemma 1's builder: balanced [H_1, W_1, …, W_L] with W_L … W_1 H_1 = Z.

    With Z = U diag(s) Vᵀ and σ = s^{1/(L+1)} (zero where s < rtol·s_max):
    H_1 = U_0 Σ̃ᵀ Vᵀ (d, K), W_l = U_l Σ U_{l−1}ᵀ (d, d), W_L = U Σ̃ U_{L−1}ᵀ (K, d). U_0 … U_{L−1} are
    the identity, or Haar-random orthogonal (d, d) matrices when `rng` is given. Each matrix has squared
    norm Σ s_i^{2/(L+1)}, so the full loss (eq. 1) equals :func:`reduced_loss`.
    """
    Z = np.asarray(Z, dtype=np.float64)
    require(Z.ndim == 2 and Z.shape[0] == Z.shape[1], f"Z must be square (K, K), got shape {Z.shape}")
    K, L = positive_int("K", Z.shape[0]), positive_int("L", L)
    d = width(d, K)
    U, s, Vt = np.linalg.svd(Z)                                           # (K, K), (K,), (K, K)
    sig = np.where(s > rtol * max(s.max(), 1e-300), s, 0.0) ** (1.0 / (L + 1))   # (K,)
    Us = [haar_orthogonal(rng, d, d)[:, :K] if rng is not None else np.eye(d)[:, :K]
          for _ in range(L)]                                              # (d, K) each
    params = [Us[0] * sig @ Vt]                                           # (d, K) H_1
    params += [Us[l] * sig @ Us[l - 1].T for l in range(1, L)]           # (d, d) W_1 … W_{L−1}
    params.append(U * sig @ Us[L - 1].T)                                  # (K, d) W_L
    return params


__all__ = ["RTOL_ZERO", "ScaleOptimum", "balanced_params", "circle_loss", "circle_matrix",
           "dnc_loss", "dnc_matrix", "fit_term", "haar_orthogonal", "is_diagonally_superior", "lr_loss",
           "lr_matrix", "minimize_scale", "optimal_circle", "optimal_lr", "reduced_loss", "schatten_term"]
