"""``python cli.py predict``: Theorem 1's embedding norms for the paper's settings, and training beside them.

Section 3.1 of *Feature collapse*: with nc = 3, nw = 1200, L = 15, λ = 0.001 and uniform words, the type-I
minimizer of the true risk has word embeddings of norm c = √(τ/nw) — 1.42214 for K = 1000 (figure 3,
n_spl = 5; observed 1.41 ± 0.13) and 0.61602 for K = 50 (n_spl = 100; observed 0.61 ± 0.06) — and vectors
u_{k,ℓ} of norm c′ = √(τ/(KL)). The theorem is about the true risk with K = nc^L latent variables; these
are finite samples with K ≪ nc^L, which is why the comparison is a prediction, not a check.

``--train`` trains h with figure 3's settings (:data:`.settings.PRESETS`, K and n_spl changed for the
second setting, the same 1200 epochs) and reports the observed mean ± std.
"""

import dataclasses
from typing import Literal

import numpy as np

from refimpl.errors import require
from refimpl.feature_collapse import collapse, sgd, theory
from refimpl.feature_collapse.settings import PREDICTIONS, PRESETS
from refimpl.registry import Spec, option

FIG3 = PRESETS["fig3"]
NC, NW, L, LAM = FIG3.nc, FIG3.nw, FIG3.L, FIG3.lam                     # section 2.1 / 3.1
SETTINGS = PREDICTIONS


@dataclasses.dataclass
class PredictConfig:
    settings: Literal["both", "fig3", "k50"] = option("both", "fig3: K=1000, n_spl=5; k50: K=50, n_spl=100")
    train: bool = option(False, "also train h (figure 3's settings) and report the observed norms")
    epochs: int = option(0, "training epochs (0: figure 3's 1200)")
    seed: int = option(0, "seed of the training run")

    def __post_init__(self):
        require(self.epochs >= 0, f"epochs must be >= 0, got {self.epochs}")
        require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")


def prediction(K: int) -> dict:
    """Theorem 1 at nc = 3, nw = 1200, L = 15, λ = 0.001: the predicted norms of w and u_{k,ℓ}."""
    sol = theory.theorem1(NC, NW, L, K, LAM)
    return {"tau": sol.tau, "word_norm": sol.c, "u_norm": sol.c_prime, "solver_residual": sol.residual}


def observe(name: str, config: PredictConfig, progress: bool, log=None) -> dict:
    """Train h with figure 3's preset (K, n_spl of setting `name`): observed norms and accuracies."""
    setting = SETTINGS[name]
    overrides = {"K": setting["K"], "n_spl": setting["n_spl"], "seed": config.seed}
    if config.epochs:
        overrides["epochs"] = config.epochs
    task, result = sgd.train_preset("fig3", progress=progress, log=log, **overrides)
    W, U = np.asarray(result.W, dtype=np.float64), np.asarray(result.U, dtype=np.float64)
    word_mean, word_std = collapse.norm_stats(W.T)                        # rows: w_{(α,β)}
    u_mean, u_std = collapse.norm_stats(collapse.u_vectors(U, task.Z)[0])  # rows: u_{k,ℓ}
    return {"word_norm_mean": word_mean, "word_norm_std": word_std, "u_norm_mean": u_mean,
            "u_norm_std": u_std, "epochs": config.epochs or None, "train_accuracy": result.train_accuracy,
            "test_accuracy": result.test_accuracy, "seconds": result.seconds}


def run(config: PredictConfig, ctx) -> list[dict]:
    """Print (or emit as JSON) one record per setting; returns the records."""
    names = list(SETTINGS) if config.settings == "both" else [config.settings]
    records = []
    for name in names:
        s = SETTINGS[name]
        rec = {"setting": name, "nc": NC, "nw": NW, "L": L, "lam": LAM, "K": s["K"], "n_spl": s["n_spl"],
               **prediction(s["K"]), "paper_prediction": s["paper_prediction"],
               "paper_observed": list(s["paper_observed"])}
        text = (f"K = {s['K']}, n_spl = {s['n_spl']} (nc = {NC}, nw = {NW}, L = {L}, λ = {LAM:g}): Theorem 1 "
                f"predicts ‖w‖ = c = {rec['word_norm']:.5f} (paper: {s['paper_prediction']:.5f}), "
                f"‖u_kl‖ = c′ = {rec['u_norm']:.5f}; paper observed ‖w‖ = "
                f"{s['paper_observed'][0]} ± {s['paper_observed'][1]}")
        if config.train:
            rec["observed"] = obs = observe(name, config, ctx.progress, ctx.info)
            text += (f"\n  trained here (seed {config.seed}): ‖w‖ = {obs['word_norm_mean']:.4f} ± "
                     f"{obs['word_norm_std']:.4f}, ‖u_kl‖ = {obs['u_norm_mean']:.4f} ± "
                     f"{obs['u_norm_std']:.4f}, "
                     f"train accuracy {obs['train_accuracy']:.1%}, test accuracy {obs['test_accuracy']:.1%}")
        ctx.emit(text, rec)
        records.append(rec)
    return records


SPEC = Spec("predict", PredictConfig, run,
            "Theorem 1's predicted embedding norms for the paper's settings (--train: and observed ones).")
