"""The deep unconstrained features model (DUFM) — the NumPy reference forward and backward passes.

Parameters are the list ``params = [H_1, W_1, …, W_L]`` (the paper's convention: L counts the weight
matrices after the free features H_1):

    H_1 ∈ R^{d×Kn}  (column k·n+i is sample i of class k),  W_1 … W_{L−1} ∈ R^{d×d},  W_L ∈ R^{K×d}.

Three models share them (``model=``):

* ``"linear"`` — the linear CE DUFM, eqs. (1)–(2):  Z = W_L … W_1 H_1,
  loss = g(Z)/(Kn) + λ/2 (‖H_1‖² + Σ_l ‖W_l‖²), g the column-wise softmax cross-entropy (a sum over
  the Kn columns, hence the 1/(Kn) mean).  Its backward is written literally as the chain of
  products of eq. (7):  ∂L/∂W_l = A_{l+1}ᵀ M B_{l−1}ᵀ/(Kn) + λ W_l  with W_0 = H_1, M = P − Y.
* ``"relu"`` — the ReLU CE DUFM of section 3.4, eq. (3):  H_2 = W_1 H_1, Λ_l = ReLU(H_l) and
  H_{l+1} = W_l Λ_l for 2 ≤ l ≤ L, Z = H_{L+1}; ReLU never acts on H_1 nor on Z.
* ``"mse"`` — the minimal non-linear MSE DUFM of Appendix A, eq. (4):
  Z = W_L ζ(W_{L−1} … W_1 H_1), loss = ‖Z − Y‖²/(2Kn) + the same λ/2 terms, with ζ = ReLU by default
  or the Hadamard power x^p (``power=p``, section A.2) on the last hidden layer H_L only.

Y = I_K ⊗ 1_nᵀ ∈ R^{K×Kn} holds the one-hot labels; the paper's n = 1 gives Y = I_K.  The relu and
mse backward passes are ordinary reverse accumulation through :func:`forward`'s cache; for the linear
model that reverse accumulation is the same sum of products as eq. (7) (a test checks both forms).
:mod:`refimpl.dufm.model_numba` is the compiled twin: ``model_numba.loss_and_grads`` has this module's
signature, and its batched variants fuse these passes with the update for many runs at once.  This module
never imports the twin; :mod:`refimpl.dufm.train` chooses the backend.
"""

import numpy as np

from refimpl.errors import InputError, require
from refimpl.validate import choice, float_array, nonneg_number, positive_int, width

MODELS = ("linear", "relu", "mse")


def checked_params(params, *, lam=0.0, model="linear", power=None, finite=True):
    """Validate the inputs of the public functions; return (params as arrays, (K, n, d, L)).  Raises
    InputError, one line naming the argument and the bad value.

    Every matrix by :func:`refimpl.validate.float_array`'s rule (float32/float64 as they are, other real
    input such as lists or ints as float64; complex, object, strings refused; finite unless `finite` is
    False), all of one dtype.  Bad input also: fewer than two matrices (L < 1), no class (K = 0), d < K,
    shapes that do not chain, a negative or non-finite λ, an unknown model, a power that is not a positive
    integer or given for a CE model.
    """
    choice("model", model, MODELS)
    require(isinstance(params, (list, tuple)) and len(params) >= 2,
            f"params = [H_1, W_1, ..., W_L] needs L >= 1 weight matrices, got L = "
            f"{len(params) - 1 if isinstance(params, (list, tuple)) else params!r}")
    L = len(params) - 1
    params = [float_array("H_1" if l == 0 else f"W_{l}", p, 2, finite=finite) for l, p in enumerate(params)]
    require(all(p.dtype == params[0].dtype for p in params),
            f"params must share one floating dtype, got {[str(p.dtype) for p in params]}")
    d, Kn = params[0].shape
    K = params[-1].shape[0]
    require(K >= 1, f"W_{L} has shape {params[-1].shape}: it needs at least one row (K >= 1 classes)")
    width(d, K)
    require(Kn % K == 0 and Kn > 0, f"H_1 has {Kn} columns, not a positive multiple of K = {K}")
    for l in range(1, L + 1):
        want = (K if l == L else d, d)
        require(params[l].shape == want, f"W_{l} has shape {params[l].shape}, expected {want}")
    nonneg_number("lam", lam)
    if power is not None:
        require(model == "mse", f"power={power!r} selects a Hadamard power: only for model='mse'")
        positive_int("power", power)
    return params, (K, Kn // K, d, L)


def check_params(params, *, lam=0.0, model="linear", power=None, finite=True):
    """:func:`checked_params`'s checks alone: returns (K, n, d, L)."""
    return checked_params(params, lam=lam, model=model, power=power, finite=finite)[1]


def targets(K: int, n: int = 1, dtype=np.float64) -> np.ndarray:
    """One-hot labels Y = I_K ⊗ 1_nᵀ of shape (K, K·n): column k·n+i belongs to class k."""
    return np.repeat(np.eye(K, dtype=dtype), n, axis=1)                   # (K, Kn)


def cross_entropy(Z: np.ndarray, n: int = 1):
    """Mean column-wise softmax cross-entropy g(Z)/(Kn) (eq. 2) and its gradient M/(Kn).

    Parameters
    ----------
    Z : ndarray of shape (K, K·n), column k·n+i scores sample i of class k.

    Returns
    -------
    fit : float, g(Z)/(Kn) with g(Z) = Σ_columns −log(e^{Z_{k,col}} / Σ_c e^{Z_{c,col}}).
    dZ : ndarray of shape (K, K·n), (P − Y)/(Kn) with P the column-wise softmax (M = P − Y, B.1).
    """
    K, Kn = Z.shape
    Y = targets(K, n, Z.dtype)                                            # (K, Kn)
    shifted = Z - Z.max(axis=0, keepdims=True)                            # (K, Kn)
    log_z = np.log(np.exp(shifted).sum(axis=0))                           # (Kn,)
    fit = float(np.sum(log_z - np.sum(shifted * Y, axis=0))) / Kn
    P = np.exp(shifted - log_z)                                           # (K, Kn) softmax columns
    return fit, (P - Y) / Kn


def squared_error(Z: np.ndarray, n: int = 1):
    """Fit term of eq. (4): ‖Z − Y‖²/(2Kn) and its gradient (Z − Y)/(Kn); Z of shape (K, K·n)."""
    K, Kn = Z.shape
    R = Z - targets(K, n, Z.dtype)                                        # (K, Kn)
    return 0.5 * float(np.vdot(R, R)) / Kn, R / Kn


def mse_activation(power=None):
    """ζ of the MSE model (eq. 4): "relu" (power None) or the Hadamard power p (section A.2)."""
    return "relu" if power is None else int(power)


def activations(L: int, model: str = "linear", power=None) -> list:
    """Which non-linearity acts on H_l before W_l, for l = 1..L (index 0 unused): None, "relu" or p.

    relu: H_2..H_L (eq. 3); mse: H_L only (eq. 4), ReLU or the Hadamard power p; linear: none.
    """
    acts = [None] * (L + 1)                                               # acts[l] acts on H_l
    if model == "relu":
        acts[2:] = ["relu"] * (L - 1)
    elif model == "mse":
        acts[L] = mse_activation(power)
    return acts


def zeta(H, act):
    """ζ(H) element-wise for act = None (identity), "relu" (max(H, 0)) or an integer power p (H^p)."""
    if act is None:
        return H
    if act == "relu":
        return np.maximum(H, 0.0)
    return H ** act


def zeta_prime(H, act):
    """ζ'(H) element-wise: None for the identity, the mask 1[H > 0] for ReLU, p H^{p−1} for a power."""
    if act is None:
        return None
    if act == "relu":
        return (H > 0).astype(H.dtype)
    return act * H ** (act - 1)


def forward(params, *, model="linear", power=None):
    """Network output Z = H_{L+1} (eq. 1 / eq. 3 / eq. 4) for params = [H_1, W_1, …, W_L].

    Returns
    -------
    Z : ndarray of shape (K, K·n)
    cache : (Hs, Lams, dzetas, model, n) with Hs[l−1] = H_l (d, Kn) for l = 1..L+1 (H_{L+1} = Z),
        Lams[l−1] = Λ_l = ζ(H_l) the input of W_l, dzetas[l−1] = ζ'(H_l) (None where ζ = id).
    """
    params, (K, n, d, L) = checked_params(params, model=model, power=power)
    return _forward(params, n, L, model, power)


def _forward(params, n, L, model, power):
    """The pass of :func:`forward`, on checked params."""
    acts = activations(L, model, power)
    Hs, Lams, dzetas = [params[0]], [], []                                # Hs[0] = H_1 (d, Kn)
    for l in range(1, L + 1):
        Lams.append(zeta(Hs[-1], acts[l]))                                # (d, Kn) Λ_l
        dzetas.append(zeta_prime(Hs[-1], acts[l]))                        # (d, Kn) ζ'(H_l) or None
        Hs.append(params[l] @ Lams[-1])                                   # (d, Kn) H_{l+1}; Z (K, Kn)
    return Hs[-1], (Hs, Lams, dzetas, model, n)


def suffix_products(params) -> list:
    """A_l = W_L … W_l for l = 1..L and A_{L+1} = I_K (appendix B), each of shape (K, d) / (K, K).

    Returns a list A with A[l] = A_l (A[0] is None).
    """
    L = len(params) - 1
    A = [None] * (L + 2)
    A[L + 1] = np.eye(params[-1].shape[0], dtype=params[-1].dtype)       # (K, K)
    for l in range(L, 0, -1):
        A[l] = A[l + 1] @ params[l]                                       # (K, d)
    return A


def eq7_gradients(params, M_scaled, Hs) -> list:
    """Data-term gradients of the linear CE DUFM by eq. (7): ∂(g/Kn)/∂W_l = A_{l+1}ᵀ (M/Kn) B_{l−1}ᵀ.

    Parameters
    ----------
    params : [H_1 (d, Kn), W_1 (d, d), …, W_L (K, d)], with W_0 = H_1 as in appendix B.1.
    M_scaled : ndarray of shape (K, Kn), M/(Kn) = (P − Y)/(Kn).
    Hs : [H_1, …, H_L] from :func:`forward`; B_{l−1} = W_{l−1} … W_1 H_1 = H_l (d, Kn), B_{−1} = I.

    Returns
    -------
    grads : list, grads[0] = A_1ᵀ M/(Kn) of shape (d, Kn) (B_{−1} = I), grads[l] = A_{l+1}ᵀ (M/Kn) H_lᵀ
        of shape (d, d) for 1 ≤ l < L and (K, d) for l = L (A_{L+1} = I_K).
    """
    L = len(params) - 1
    A = suffix_products(params)                                           # A[l] (K, d), A[L+1] (K, K)
    grads = [A[1].T @ M_scaled]                                           # (d, Kn)
    for l in range(1, L + 1):
        grads.append(A[l + 1].T @ M_scaled @ Hs[l - 1].T)                 # (d, d) or (K, d)
    return grads


def backward(dZ, params, cache) -> list:
    """Reverse accumulation from dZ = ∂fit/∂Z (K, Kn) through eq. (3)/(4); grads ordered as params.

    Notes
    -----
    With G_{l+1} = ∂fit/∂H_{l+1}:  ∂fit/∂W_l = G_{l+1} Λ_lᵀ,  G_l = (W_lᵀ G_{l+1}) ⊙ ζ'(H_l)
    (⊙ ζ' dropped where ζ = id), and ∂fit/∂H_1 = W_1ᵀ G_2.  With ζ = id throughout this is eq. (7):
    G_{l+1} = A_{l+1}ᵀ dZ.
    """
    Hs, Lams, dzetas, _, _ = cache
    L = len(params) - 1
    grads = [None] * (L + 1)
    G = dZ                                                                # (K, Kn) ∂fit/∂H_{L+1}
    for l in range(L, 0, -1):
        grads[l] = G @ Lams[l - 1].T                                      # (d, d) or (K, d)
        G = params[l].T @ G                                               # (d, Kn) ∂fit/∂Λ_l
        if dzetas[l - 1] is not None:
            G = G * dzetas[l - 1]                                         # (d, Kn) ∂fit/∂H_l
    grads[0] = G                                                          # (d, Kn)
    return grads


def regularization(params) -> float:
    """½ (‖H_1‖² + Σ_l ‖W_l‖²), the bracket multiplied by λ in eqs. (1) and (4)."""
    return 0.5 * sum(float(np.vdot(p, p)) for p in params)


def loss_and_grads(params, *, lam, model="linear", power=None):
    """Regularized DUFM loss (eq. 1 linear, eq. 3 relu, eq. 4 mse) and its gradients.

    Parameters
    ----------
    params : list [H_1 (d, Kn), W_1 (d, d), …, W_{L−1} (d, d), W_L (K, d)], L ≥ 1, d ≥ K.
    lam : float ≥ 0, the weight decay λ of all L+1 matrices.
    model : "linear", "relu" or "mse".
    power : None (ζ = ReLU) or an integer p ≥ 1 (ζ(x) = x^p) — model "mse" only.

    Returns
    -------
    loss : float, fit/(Kn) + λ/2 Σ ‖·‖²_F.
    grads : list of arrays in the order and shapes of params; linear: eq. (7) + λ W_l.

    Notes
    -----
    The parameters' values are not required to be finite (unlike :func:`forward` and :func:`loss`): this
    is the step the trainers call, and a diverged run's inf or NaN must come back as a non-finite loss,
    their divergence signal.  Finite input never gives NaN.
    """
    params, (K, n, d, L) = checked_params(params, lam=lam, model=model, power=power, finite=False)
    lam = float(lam)                                                      # a number >= 0 (checked)
    Z, cache = _forward(params, n, L, model, power)                       # (K, Kn)
    fit, dZ = squared_error(Z, n) if model == "mse" else cross_entropy(Z, n)
    if model == "linear":
        grads = eq7_gradients(params, dZ, cache[0])
    else:
        grads = backward(dZ, params, cache)
    loss = fit + lam * regularization(params)
    return loss, [g + lam * p for g, p in zip(grads, params, strict=True)]


def loss(params, *, lam, model="linear", power=None) -> float:
    """The loss of :func:`loss_and_grads` without the gradients (finite parameters only)."""
    params, (K, n, d, L) = checked_params(params, lam=lam, model=model, power=power)
    lam = float(lam)                                                      # a number >= 0 (checked)
    Z, _ = _forward(params, n, L, model, power)                           # (K, Kn)
    fit = squared_error(Z, n)[0] if model == "mse" else cross_entropy(Z, n)[0]
    return fit + lam * regularization(params)


__all__ = ["MODELS", "InputError", "activations", "backward", "check_params", "checked_params",
           "cross_entropy", "eq7_gradients", "forward", "loss", "loss_and_grads", "mse_activation",
           "regularization", "squared_error", "suffix_products", "targets", "zeta", "zeta_prime"]
