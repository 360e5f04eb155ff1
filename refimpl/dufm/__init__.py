"""The deep unconstrained features model of *The persistence of neural collapse despite low-rank bias*.

    model.py   linear / ReLU / MSE DUFM: NumPy forward and backward (eq. 7 chain of products)
    train.py   full-batch gradient descent, batched on refimpl.dufm.model_numba, end-point classification

The issue's public entry point is re-exported here: ``refimpl.dufm.loss_and_grads(params, *, lam,
model="linear"|"relu"|"mse", power=None) -> (loss, grads)`` with params = [H_1, W_1, …, W_L].
"""

from refimpl.dufm.model import forward, loss, loss_and_grads

__all__ = ["forward", "loss", "loss_and_grads"]
