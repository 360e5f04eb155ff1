"""Measuring feature collapse: PCA of word embeddings / of the vectors u_{k,ℓ}, embedding norms.

The figures of *Feature collapse* (figs. 3–4) show the first two principal components of the word
embeddings w_{(α,β)} (after the LayerNorm for h*) and of the vectors u_{k,ℓ}, colored by concept, with
the top three singular values σ1, σ2, σ3 of the PCA: σ3 ≪ σ2 says the points live in a plane.
"""

import numpy as np


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
