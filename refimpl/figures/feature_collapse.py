"""Figures 3 and 4(a–c) of *Feature collapse*: train h or h*, then PCA of W and of the u_{k,ℓ}.

Each figure has two panels, as in the paper: the first two principal components of the word embeddings
(after the LayerNorm for h*) and of the vectors u_{k,ℓ} (eq. 1), colored by concept, with the top three
singular values σ1, σ2, σ3 of each PCA. Settings: the authors' notebooks (paper 1, section 2; see
/shared/papers/README.md), kept in :data:`refimpl.feature_collapse.settings.PRESETS` next to the
numbers the paper reports.
"""

import dataclasses
import time

import numpy as np

from refimpl import plotting
from refimpl.feature_collapse import collapse, experiment
from refimpl.feature_collapse.settings import PRESETS, TITLES, FeatureCollapseConfig
from refimpl.registry import Spec


def _pct(x) -> str:
    """A share as a percentage; "n/a" when undefined (no epoch trained)."""
    return "n/a" if x is None else f"{x:.1%}"


def draw(name: str, cfg: FeatureCollapseConfig, arrays: dict, summary: dict):
    """Two panels: PCA of the word embeddings (features for h*) and of the u_{k,ℓ}, by concept."""
    words = experiment.word_points(arrays["W"], cfg)                                 # (nw, d)
    u, u_concepts = collapse.u_vectors(np.asarray(arrays["U"], dtype=np.float64), arrays["Z"])
    word_concepts = np.arange(cfg.nw) // (cfg.nw // cfg.nc)              # (nw,) concept α of word α·sc+β
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
    fig.suptitle(f"{TITLES.get(name, name)} — train {_pct(summary['train_accuracy'])}, "
                 f"test {_pct(summary['test_accuracy'])} after {cfg.epochs} epochs", fontsize=11)
    return fig


def write(name: str, cfg: FeatureCollapseConfig, summary: dict, arrays: dict, ctx) -> dict:
    """Draw and write ctx.out_dir/<name>.png and <name>.json, print the result line; returns the summary."""
    plotting.save_figure(ctx.out_dir, name, draw(name, cfg, arrays, summary), summary)
    ctx.emit(f"{name}: train accuracy {_pct(summary['train_accuracy'])}, test accuracy "
             f"{_pct(summary['test_accuracy'])}, σ(words) = {np.round(summary['sigma_words'], 4).tolist()}, "
             f"σ(u) = {np.round(summary['sigma_u'], 4).tolist()}  -> {ctx.out_dir / name}.png",
             {k: v for k, v in summary.items() if k != "timing"})
    return summary


def run(name: str, cfg: FeatureCollapseConfig, ctx) -> dict:
    """Train, measure, draw: writes ctx.out_dir/<name>.png and <name>.json, returns the summary."""
    t0 = time.perf_counter()
    summary, arrays, train_seconds = experiment.compute(name, cfg, ctx.progress, ctx.info)
    summary["timing"] = {"wall_seconds": time.perf_counter() - t0, "train_seconds": train_seconds}
    return write(name, cfg, summary, arrays, ctx)


def assemble(name: str, cfg: FeatureCollapseConfig, runs, ctx) -> dict:
    """The figure of the first seed's run (the PNG shows one trained network), from the run store."""
    first = runs[0]
    return write(name, dataclasses.replace(cfg, seed=first.record["seed"]), dict(first.record), first.arrays,
                 ctx)


# `reproduce --quick`: the same pipeline at sizes that train in a second.
QUICK = dict(nw=30, K=20, L=4, d=8, epochs=3, test_every=1)


def _spec(name: str) -> Spec:
    return Spec(name, PRESETS[name], lambda cfg, ctx: run(name, cfg, ctx), TITLES[name],
                jobs=lambda cfg, seeds: experiment.jobs(name, cfg, seeds),
                assemble=lambda cfg, runs, ctx: assemble(name, cfg, runs, ctx), quick=QUICK)


SPECS = [_spec(name) for name in PRESETS]
