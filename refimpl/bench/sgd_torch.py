"""The fig4c SGD step written with torch.nn, as in the authors' notebooks — an optional comparison.

PyTorch is never a dependency: :func:`available` says whether it can be imported.
"""

import importlib.util

import numpy as np


def available() -> bool:
    return importlib.util.find_spec("torch") is not None


def prepare(backend, dtype, cfg):
    """(batches, step, err): the torch step on the bench problem, checked against the reference."""
    import torch

    from refimpl.bench import sgd as bench

    batches, W, U = bench._problem(cfg, dtype)
    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    emb = torch.nn.Embedding(cfg.nw, cfg.d, dtype=tdtype)
    lnorm = torch.nn.LayerNorm(cfg.d, elementwise_affine=False, eps=bench.STEP["eps"])
    clf = torch.nn.Linear(cfg.L * cfg.d, cfg.K, bias=False, dtype=tdtype)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
        clf.weight.copy_(torch.from_numpy(U))
    criterion = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD([{"params": emb.parameters(), "weight_decay": 0.0},
                           {"params": clf.parameters(), "weight_decay": bench.STEP["lam_U"]}],
                          lr=bench.STEP["lr"])

    def loss_of(tokens, labels):
        scores = clf(lnorm(emb(tokens)).reshape(-1, cfg.L * cfg.d))
        return criterion(scores, labels), scores

    tokens, labels = (torch.from_numpy(a) for a in batches[0])
    loss, _ = loss_of(tokens, labels)
    loss = loss + 0.5 * bench.STEP["lam_U"] * (clf.weight ** 2).sum()
    dW, dU = torch.autograd.grad(loss, [emb.weight, clf.weight])
    got = (np.array([loss.item()]), dW.numpy().T, dU.numpy())
    err = bench._max_rel_err(got, bench._reference(W, U, *batches[0]))
    torch_batches = [tuple(torch.from_numpy(a) for a in b) for b in batches]

    def step(tokens, labels):
        opt.zero_grad()
        loss, scores = loss_of(tokens, labels)
        loss.backward()
        opt.step()
        return loss.item(), int((scores.argmax(dim=1) == labels).sum())

    return torch_batches, step, err
