"""The authors' runs of *Feature collapse* in one place, next to the numbers the paper reports.

Section 2's instance (nc = 3 concepts, nw = 1200 words, L = 15, K = 1000 classes) trained as in the authors'
notebooks: d = 100, λ = 0.001, batch 100, lr 0.1 constant, initialization PyTorch's default / 1000
(embedding N(0, 1)/1000, linear U(±1/√(Ld))/1000), test set 5 fresh sentences per class. The four figures
differ in µ, the network and n_spl (:data:`PRESETS`); :data:`PAPER` holds what the paper reports for each.
The figures, ``predict``, ``theorem2-norms`` and ``bench sgd`` all read their settings from here.
"""

import dataclasses
from typing import Literal

from refimpl import validate
from refimpl.errors import require
from refimpl.feature_collapse import data
from refimpl.registry import option


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of one SGD run (:func:`refimpl.feature_collapse.sgd.train`); defaults are the authors'."""

    d: int = option(100, "embedding dimension")
    lr: float = option(0.1, "learning rate (constant)")
    batch: int = option(100, "mini-batch size")
    epochs: int = option(500, "epochs")
    lam: float = option(1e-3, "weight decay λ")
    decay_W: bool = option(True, "weight decay on W too: eq. (2) for h; eq. (3) (h*) has none")
    layernorm: bool = option(False, "h* (LayerNorm) instead of h")
    eps: float = option(1e-5, "LayerNorm eps (1e-5: the authors' PyTorch runs; 0: the paper's φ)")
    init_scale: float = option(1e-3, "initialization = PyTorch default × init_scale")
    dtype: Literal["float32", "float64"] = option("float32", "arithmetic")
    backend: Literal["numba", "numpy"] = option(validate.DEFAULT_BACKEND,
                                                "compiled kernels or the NumPy reference")
    seed: int = option(0, "seed of data, initialization and shuffling")
    test_every: int = option(50, "test accuracy every this many epochs (and at the first and last)")

    def __post_init__(self):
        for name in ("d", "batch", "test_every"):
            validate.positive_int(name, getattr(self, name))
        validate.nonneg_int("epochs", self.epochs)
        validate.positive_number("lr", self.lr)
        validate.nonneg_number("lam", self.lam)
        validate.nonneg_number("eps", self.eps)
        validate.positive_number("init_scale", self.init_scale)
        validate.seed(self.seed)
        validate.choice("dtype", self.dtype, ("float32", "float64"))
        validate.backend(self.backend)

    def step_settings(self) -> dict:
        """The keyword arguments of one SGD step (``model.sgd_step``): lr, λ_W, λ_U, LayerNorm, eps."""
        return dict(lr=self.lr, lam_W=self.lam if self.decay_W else 0.0, lam_U=self.lam,
                    layernorm=self.layernorm, eps=self.eps)


@dataclasses.dataclass(frozen=True)
class FeatureCollapseConfig(TrainConfig):
    """Data model + training settings of one figure (defaults: section 2.1's instance)."""

    nc: int = option(3, "concepts")
    nw: int = option(1200, "words (a multiple of nc)")
    L: int = option(15, "sentence length")
    K: int = option(1000, "classes = distinct latent variables")
    n_spl: int = option(5, "training sentences per class")
    freq: Literal["uniform", "zipf"] = option("uniform", "word frequencies within a concept")
    checkpoint: str = option("", "checkpoint .npz file written during training ('' = none)", result=False)
    checkpoint_every: int = option(0, "epochs between checkpoints (0: max(1, min(50, epochs // 10)))",
                                   result=False)
    resume: bool = option(False, "continue from --checkpoint", result=False)

    def __post_init__(self):
        super().__post_init__()
        for name in ("nc", "nw", "L", "K", "n_spl"):
            validate.positive_int(name, getattr(self, name))
        data.check_sizes(self.nc, self.nw, self.L)
        data.check_distinct_count(self.nc, self.L, self.K)
        validate.nonneg_int("checkpoint_every", self.checkpoint_every)
        require(not self.resume or self.checkpoint, "--resume needs --checkpoint PATH")

    def train_config(self) -> TrainConfig:
        """The training half of the settings."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)})

    def make_task(self) -> data.Task:
        """Latent variables, train and test sets of this configuration (from its seed)."""
        return data.make_task(self.nc, self.nw, self.L, self.K, self.n_spl, freq=self.freq, seed=self.seed)


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
# What the authors' own notebook printed for its figure-3 run (reproduce_fig3.ipynb in their public
# repository xbresson/feature_collapse, the version run on CUDA, commit 1508808): train loss and test
# accuracy at epoch 1200, σ1..σ3 of the two PCAs. Its σ3 is 0.18, not the paper's 0.001 / 0.0003.
AUTHORS_NOTEBOOK = {
    "fig3": {"train_loss": 0.5131, "test_accuracy": 1.0, "sigma_words": [35.05, 34.46, 0.1841],
             "sigma_u": [35.07, 34.48, 0.1842],
             "source": "xbresson/feature_collapse, reproduce_fig3.ipynb (commit 1508808)"},
}
TITLES = {"fig3": "Figure 3: h, uniform words", "fig4a": "Figure 4(a): h, Zipf, n_spl = 500",
          "fig4b": "Figure 4(b): h, Zipf, n_spl = 5", "fig4c": "Figure 4(c): h* (LayerNorm), Zipf, n_spl = 5"}

# Section 3.1: Theorem 1's predicted norms for figure 3's instance (K = 1000, n_spl = 5) and for K = 50,
# n_spl = 100, beside the norms the paper observed after training h with figure 3's other settings.
PREDICTIONS = {
    "fig3": {"K": 1000, "n_spl": 5, "paper_prediction": 1.42214, "paper_observed": (1.41, 0.13)},
    "k50": {"K": 50, "n_spl": 100, "paper_prediction": 0.61602, "paper_observed": (0.61, 0.06)},
}
