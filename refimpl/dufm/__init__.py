"""The deep unconstrained features model of *The persistence of neural collapse despite low-rank bias*.

    model.py         linear / ReLU / MSE DUFM: NumPy forward and backward (eq. 7 chain of products)
    model_numba.py   its compiled twin (same loss_and_grads), batched variants; small_gemm.py its products
    train.py         full-batch gradient descent (backend "numba" or "numpy"), end-point classification
    structures.py    the loss in Z (B.2), DNC / block LR / circle, their optimal scales, Lemma 1's builder
    critical.py      eq. (10): the DNC critical points
    thresholds.py    Theorems 1, 2, 6 and B.7        hessian.py  B.5, Theorem 4      orbits.py  Theorem 5
    mse.py           Appendix A                      nc_metrics.py  NC1–NC4, balancedness, end points

The public entry point is re-exported here: ``refimpl.dufm.loss_and_grads(params, *, lam,
model="linear"|"relu"|"mse", power=None) -> (loss, grads)`` with params = [H_1, W_1, …, W_L].
"""

from refimpl.dufm.model import forward, loss, loss_and_grads

__all__ = ["forward", "loss", "loss_and_grads"]
