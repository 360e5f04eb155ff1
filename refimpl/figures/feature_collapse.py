"""Figures 3 and 4(a–c) of *Feature collapse*: train h or h*, then PCA of W and of the u_{k,ℓ}.

Each figure has two panels, as in the paper: the first two principal components of the word embeddings
(after the LayerNorm for h*) and of the vectors u_{k,ℓ} (eq. 1), colored by concept, with the top three
singular values σ1, σ2, σ3 of each PCA. Settings: the authors' notebooks (paper 1, section 2; see
/shared/papers/README.md), kept in :data:`PRESETS` next to the numbers the paper reports.
"""

import dataclasses
import time
from typing import Literal

import numpy as np

from refimpl import plotting
from refimpl.errors import require
from refimpl.feature_collapse import collapse, data, layernorm, sgd
from refimpl.registry import Spec, option
from refimpl.validate import positive_int


@dataclasses.dataclass(frozen=True)
class FeatureCollapseConfig(sgd.TrainConfig):
    """Data model + training settings of one figure (defaults: section 2.1's instance)."""

    nc: int = option(3, "concepts")
    nw: int = option(1200, "words (a multiple of nc)")
    L: int = option(15, "sentence length")
    K: int = option(1000, "classes = distinct latent variables")
    n_spl: int = option(5, "training sentences per class")
    freq: Literal["uniform", "zipf"] = option("uniform", "word frequencies within a concept")
    checkpoint: str = option("", "checkpoint .npz written every 50 epochs ('' = none)")
    resume: bool = option(False, "continue from --checkpoint")

    def __post_init__(self):
        super().__post_init__()
        for name in ("nc", "nw", "L", "K", "n_spl"):
            positive_int(name, getattr(self, name))
        data.check_sizes(self.nc, self.nw, self.L)
        data.check_distinct_count(self.nc, self.L, self.K)
        require(not self.resume or self.checkpoint, "--resume needs --checkpoint PATH")

    def train_config(self) -> sgd.TrainConfig:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(sgd.TrainConfig)}
        return sgd.TrainConfig(**fields)


# The four figures: the authors' settings, and what the paper reports for each.
PRESETS = {
    "fig3": FeatureCollapseConfig(freq="uniform", layernorm=False, decay_W=True, n_spl=5, epochs=1200),
    "fig4a": FeatureCollapseConfig(freq="zipf", layernorm=False, decay_W=True, n_spl=500, epochs=10),
    "fig4b": FeatureCollapseConfig(freq="zipf", layernorm=False, decay_W=True, n_spl=5, epochs=3000),
    "fig4c": FeatureCollapseConfig(freq="zipf", layernorm=True, decay_W=False, n_spl=5, epochs=500),
}
PAPER = {
    "fig3": {"test_accuracy": 1.0, "sigma_words": [34.9, 34.7, 0.001], "sigma_u": [34.9, 34.6, 0.0003],
             "word_norm": "1.41 ± 0.13 (Theorem 1 predicts 1.42214)"},
    "fig4a": {"test_accuracy": 1.0, "shape": "embeddings aligned by concept, norms growing with frequency; "
              "u_{k,l} collapsed to three points"},
    "fig4b": {"test_accuracy": 0.45, "shape": "embeddings as in 4a; u_{k,l} dispersed"},
    "fig4c": {"test_accuracy": 1.0, "shape": "word features and u_{k,l} collapsed to three points"},
}
TITLES = {"fig3": "Figure 3: h, uniform words", "fig4a": "Figure 4(a): h, Zipf, n_spl = 500",
          "fig4b": "Figure 4(b): h, Zipf, n_spl = 5", "fig4c": "Figure 4(c): h* (LayerNorm), Zipf, n_spl = 5"}


def make_task(cfg: FeatureCollapseConfig) -> data.Task:
    return data.make_task(cfg.nc, cfg.nw, cfg.L, cfg.K, cfg.n_spl, freq=cfg.freq, seed=cfg.seed)


def train_preset(name: str, progress: bool = False, log=None, **overrides):
    """Train the network of figure `name` with its settings (fields overridden by `overrides`).

    Returns
    -------
    task : refimpl.feature_collapse.data.Task
    result : refimpl.feature_collapse.sgd.TrainResult
    """
    cfg = dataclasses.replace(PRESETS[name], **overrides)
    task = make_task(cfg)
    result = sgd.train(task, cfg.train_config(), show_progress=progress, log=log,
                       checkpoint=cfg.checkpoint or None, resume=cfg.resume)
    return task, result


def word_points(W: np.ndarray, cfg) -> np.ndarray:
    """Word embeddings as rows (nw, d): w_{(α,β)}, or φ(w_{(α,β)}) for h* (the word representations)."""
    points = np.asarray(W, dtype=np.float64).T                           # (nw, d)
    return layernorm.forward(points, cfg.eps)[0] if cfg.layernorm else points


def summarize(name: str, cfg, task: data.Task, result: sgd.TrainResult) -> dict:
    """The numbers of the figure: accuracies, loss, σ1..σ3 of both PCAs, norms."""
    words = word_points(result.W, cfg)
    u, _ = collapse.u_vectors(np.asarray(result.U, dtype=np.float64), task.Z)
    _, sigma_words = collapse.pca(words)
    _, sigma_u = collapse.pca(u)
    norm_mean, norm_std = collapse.norm_stats(np.asarray(result.W, dtype=np.float64).T)
    return {
        "figure": name, "config": dataclasses.asdict(cfg), "seed": cfg.seed, "backend": cfg.backend,
        "dtype": cfg.dtype, "epochs": cfg.epochs, "train_loss": result.train_loss,
        "train_accuracy": result.train_accuracy, "test_accuracy": result.test_accuracy,
        "sigma_words": sigma_words, "sigma_u": sigma_u,
        "word_norm_mean": norm_mean, "word_norm_std": norm_std,
        "u_norm_mean": collapse.norm_stats(u)[0], "u_norm_std": collapse.norm_stats(u)[1],
        "paper": PAPER.get(name, {}),
        "history": [h for h in result.history if "test_accuracy" in h],
    }


def draw(name: str, cfg, task: data.Task, result: sgd.TrainResult, summary: dict):
    """Two panels: PCA of the word embeddings (features for h*) and of the u_{k,ℓ}, by concept."""
    words = word_points(result.W, cfg)
    u, u_concepts = collapse.u_vectors(np.asarray(result.U, dtype=np.float64), task.Z)
    word_concepts = np.arange(task.nw) // task.sc
    fig, (ax_w, ax_u) = plotting.subplots(2, layout="constrained")
    panels = ((ax_w, words, word_concepts, summary["sigma_words"],
               r"word features $\varphi(w_{(\alpha,\beta)})$" if cfg.layernorm
               else r"word embeddings $w_{(\alpha,\beta)}$"),
              (ax_u, u, u_concepts, summary["sigma_u"], r"vectors $u_{k,\ell}$"))
    for ax, points, concepts, sigma, label in panels:
        coords, _ = collapse.pca(points, 2)
        size = min(12.0, max(1.5, 3000 / len(points)))
        ax.scatter(coords[:, 0], coords[:, 1], s=size, c=plotting.concept_colors(concepts), linewidths=0)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"{label}\nσ1 = {sigma[0]:.3g}, σ2 = {sigma[1]:.3g}, σ3 = {sigma[2]:.3g}", fontsize=10)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    fig.suptitle(f"{TITLES.get(name, name)} — train {summary['train_accuracy']:.1%}, "
                 f"test {summary['test_accuracy']:.1%} after {cfg.epochs} epochs", fontsize=11)
    return fig


def run(name: str, cfg: FeatureCollapseConfig, ctx) -> dict:
    """Train, measure, draw: writes ctx.out_dir/<name>.png and <name>.json, returns the summary."""
    t0 = time.perf_counter()
    task = make_task(cfg)
    result = sgd.train(task, cfg.train_config(), show_progress=ctx.progress, log=ctx.info,
                       checkpoint=cfg.checkpoint or None, resume=cfg.resume)
    summary = summarize(name, cfg, task, result)
    summary["wall_seconds"] = time.perf_counter() - t0
    fig = draw(name, cfg, task, result, summary)
    plotting.save_figure(ctx.out_dir, name, fig, summary)
    ctx.emit(f"{name}: train accuracy {summary['train_accuracy']:.1%}, test accuracy "
             f"{summary['test_accuracy']:.1%}, σ(words) = {np.round(summary['sigma_words'], 4).tolist()}, "
             f"σ(u) = {np.round(summary['sigma_u'], 4).tolist()}  -> {ctx.out_dir / name}.png", summary)
    return summary


def _spec(name: str) -> Spec:
    return Spec(name, PRESETS[name], lambda cfg, ctx: run(name, cfg, ctx), TITLES[name])


SPECS = [_spec(name) for name in PRESETS]
