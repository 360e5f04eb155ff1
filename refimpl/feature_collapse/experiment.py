"""The authors' runs of *Feature collapse* (figures 3, 4), trained and measured: what the figures draw,
the reproduction report compares, and ``reproduce`` stores.

A run is :func:`compute`: train with :func:`refimpl.feature_collapse.sgd.train_run`, then measure the
trained W, U the way the figures do — PCA (3 components) of the word embeddings (after φ for h*) and of
the u_{k,ℓ} (σ1..σ3), norms — into a JSON-able summary, beside the arrays needed to draw it again.
"""

import dataclasses

import numpy as np

from refimpl import tasks
from refimpl.feature_collapse import collapse, layernorm, sgd
from refimpl.feature_collapse.settings import PAPER, FeatureCollapseConfig
from refimpl.registry import result_settings


def word_points(W: np.ndarray, cfg: FeatureCollapseConfig) -> np.ndarray:
    """Word embeddings as rows (nw, d): w_{(α,β)}, or φ(w_{(α,β)}) for h* (the word representations)."""
    points = np.asarray(W, dtype=np.float64).T                           # (nw, d)
    return layernorm.forward(points, cfg.eps)[0] if cfg.layernorm else points


def summarize(name: str, cfg: FeatureCollapseConfig, arrays: dict, history: list) -> dict:
    """The numbers of the figure from the trained arrays: accuracies, loss, σ1..σ3 of both PCAs, norms."""
    words = word_points(arrays["W"], cfg)                                 # (nw, d)
    u, _ = collapse.u_vectors(np.asarray(arrays["U"], dtype=np.float64), arrays["Z"])   # (K·L, d)
    _, sigma_words = collapse.pca(words)
    _, sigma_u = collapse.pca(u)
    norm_mean, norm_std = collapse.norm_stats(np.asarray(arrays["W"], dtype=np.float64).T)
    last = history[-1] if history else {}
    tested = [h for h in history if "test_accuracy" in h]
    return {
        "figure": name, "config": dataclasses.asdict(cfg), "seed": cfg.seed, "backend": cfg.backend,
        "dtype": cfg.dtype, "epochs": cfg.epochs, "train_loss": last.get("train_loss"),
        "train_accuracy": last.get("train_accuracy"),
        "test_accuracy": tested[-1]["test_accuracy"] if tested else None,
        "sigma_words": sigma_words, "sigma_u": sigma_u,
        "word_norm_mean": norm_mean, "word_norm_std": norm_std,
        "u_norm_mean": collapse.norm_stats(u)[0], "u_norm_std": collapse.norm_stats(u)[1],
        "paper": PAPER.get(name, {}),
        "history": tested,
    }


def compute(name: str, cfg: FeatureCollapseConfig, progress: bool = False, log=None):
    """Train the figure's network and measure it: (summary, arrays W (d, nw), U (K, L·d), Z (K, L), mu (sc,),
    training seconds)."""
    task, result = sgd.train_run(cfg, progress=progress, log=log)
    arrays = {"W": result.W, "U": result.U, "Z": task.Z, "mu": task.mu}
    return summarize(name, cfg, arrays, result.history), arrays, result.seconds


def train_and_measure(name: str, settings: dict):
    """A ``reproduce`` task: train figure `name` with `settings` (the fields of FeatureCollapseConfig, its
    seed included) and measure it. Returns (summary, arrays W (d, nw), U (K, L·d), Z (K, L))."""
    summary, arrays, _ = compute(name, FeatureCollapseConfig(**settings))
    return summary, arrays


def jobs(name: str, cfg: FeatureCollapseConfig, seeds) -> list:
    """The ``reproduce`` tasks of figure `name`: one training run per seed (:func:`train_and_measure`),
    keyed by the settings that determine its result."""
    out = []
    for seed in seeds:
        settings = result_settings(dataclasses.replace(cfg, seed=seed))
        out.append(tasks.job(name, settings, seed, train_and_measure, (name, settings), backend=cfg.backend,
                             dtype=cfg.dtype))
    return out
