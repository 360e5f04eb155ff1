"""Figure ``fig1``: the data model of *Feature collapse* (its figure 1), drawn from a sampled instance.

nc = 3 concepts (vegetable, dairy, meat) of sc = 4 words each (nw = 12), sentences of L = 5 words, K = 3
classes. Left: the vocabulary by concept with the word frequencies µ_β of each concept (section 2). Right:
the K latent variables z_k ∈ C^L (section 2.1) and sentences they generate, each word (z_{k,ℓ}, β) drawn
with β ~ µ (appendix A.3) — the same sampler the experiments use (:func:`refimpl.feature_collapse.data`).
"""

import dataclasses
from typing import Literal

import numpy as np

from refimpl import plotting, validate
from refimpl.feature_collapse import data
from refimpl.registry import Spec, option

CONCEPTS = ["vegetable", "dairy", "meat"]
WORDS = [["potato", "carrot", "leek", "lettuce"], ["butter", "cheese", "cream", "yogurt"],
         ["beef", "chicken", "lamb", "pork"]]                            # word (α, β) = WORDS[α][β]


@dataclasses.dataclass(frozen=True)
class DataModelConfig:
    L: int = option(5, "sentence length (figure 1: 5)")
    K: int = option(3, "classes (figure 1: 3)")
    sentences: int = option(2, "sentences drawn per class")
    freq: Literal["uniform", "zipf"] = option("uniform", "word frequencies within a concept")
    seed: int = option(0, "seed of the latent variables and the sentences")

    def __post_init__(self):
        validate.positive_int("L", self.L)
        validate.positive_int("K", self.K)
        validate.positive_int("sentences", self.sentences)
        validate.seed(self.seed)
        data.check_distinct_count(len(CONCEPTS), self.L, self.K)


def sample(cfg: DataModelConfig) -> dict:
    """The instance: µ (sc,), latent variables Z (K, L), sentences (K·n, L) of tokens α·sc+β, labels."""
    nc, sc = len(CONCEPTS), len(WORDS[0])
    mu = data.word_frequencies(sc, cfg.freq)                              # (sc,)
    z_rng, x_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(2))
    Z = data.latent_variables(nc, cfg.L, cfg.K, z_rng)                    # (K, L)
    tokens, labels = data.sample_sentences(Z, mu, cfg.sentences, x_rng)   # (K·n, L), (K·n,)
    return {"mu": mu, "Z": Z, "tokens": tokens, "labels": labels}


def word(token: int) -> str:
    sc = len(WORDS[0])
    return WORDS[token // sc][token % sc]


def draw(cfg: DataModelConfig, inst: dict):
    fig, (left, right) = plotting.subplots(2, width=6.4, height=0.55 * (cfg.K * (cfg.sentences + 2)) + 2.4)
    colors = plotting.CONCEPT_COLORS
    for a, (name, words) in enumerate(zip(CONCEPTS, WORDS, strict=True)):
        y = np.arange(len(words)) + a * (len(words) + 1.5)                # one row per word
        left.barh(y, inst["mu"], color=colors[a], alpha=0.8)
        for yy, w in zip(y, words, strict=True):
            left.text(-0.01, yy, w, ha="right", va="center", color=colors[a], fontsize=10)
        left.text(0.5 * inst["mu"].max(), y[-1] + 1.0, name, ha="center", va="center", fontsize=11,
                  color=colors[a], fontweight="bold")
    left.set_yticks([])
    left.invert_yaxis()
    left.set_xlabel("word frequency µ_β within its concept")
    left.set_title(f"vocabulary: nc = {len(CONCEPTS)} concepts × sc = {len(WORDS[0])} words ({cfg.freq} µ)")
    right.axis("off")
    row = 0
    for k in range(cfg.K):
        concept_names = ", ".join(CONCEPTS[a] for a in inst["Z"][k])
        right.text(0, -row, f"z{k + 1} = [{concept_names}]", fontsize=10, fontweight="bold", va="top")
        row += 1
        for i, x in enumerate(inst["tokens"][inst["labels"] == k]):
            right.text(0.04, -row, f"x{k + 1}{i + 1} = ", fontsize=10, va="top")
            for ell, t in enumerate(x):
                right.text(0.2 + 0.16 * ell, -row, word(t), fontsize=10, va="top",
                           color=colors[t // len(WORDS[0])])
            row += 1
        row += 0.6
    right.set_xlim(0, 1)
    right.set_ylim(-row, 1)
    right.set_title(f"K = {cfg.K} latent variables (L = {cfg.L}) and sentences they generate (label k)")
    fig.suptitle("Figure 1: the data model (nc = 3, nw = 12, L = 5, K = 3), a sampled instance", fontsize=11)
    fig.tight_layout()
    return fig


def run(cfg: DataModelConfig, ctx) -> dict:
    """Sample the instance, draw it, write fig1.png and fig1.json."""
    inst = sample(cfg)
    summary = {"figure": "fig1", "config": dataclasses.asdict(cfg), "seed": cfg.seed, "concepts": CONCEPTS,
               "words": WORDS, "mu": inst["mu"],
               "latent_variables": [[CONCEPTS[a] for a in z] for z in inst["Z"]],
               "sentences": [{"label": int(y), "words": [word(t) for t in x], "tokens": x}
                             for x, y in zip(inst["tokens"], inst["labels"], strict=True)]}
    plotting.save_figure(ctx.out_dir, "fig1", draw(cfg, inst), summary)
    ctx.emit(f"fig1: {cfg.K} latent variables, {len(inst['labels'])} sentences -> {ctx.out_dir / 'fig1.png'}",
             summary)
    return summary


SPECS = [Spec("fig1", DataModelConfig, run, "Figure 1: the data model, from a sampled instance")]
