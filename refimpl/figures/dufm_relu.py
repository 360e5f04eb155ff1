"""Figure ``dufm-relu``: the ReLU CE DUFM (eq. 3, section 3.4) against Theorem 6's bounds (B.7).

Trained losses per L, colored by end point, against B.7's lower bound on every DNC point of the ReLU
model (the linear DNC optimum, :func:`refimpl.dufm.thresholds.relu_dnc_lower_bound`) and the loss of
its non-negative low-rank construction (:func:`refimpl.dufm.thresholds.relu_lr_construction`, whose
parameters the ReLU forward pass also evaluates, as a check).

Runs: :func:`refimpl.dufm.train.train_seeds` with model "relu" (full-batch GD, orthogonal × gain, seeds
0..seeds−1).
"""

import dataclasses
import time
from typing import Literal

import numpy as np

from refimpl import plotting
from refimpl.dufm import model, thresholds
from refimpl.dufm import train as tr
from refimpl.errors import require
from refimpl.registry import Spec, option
from refimpl.validate import distinct_ints, positive_int, positive_number, width


@dataclasses.dataclass
class ReluConfig:
    K: int = option(10, "classes (Theorem 6: K >= 10 for L >= 5)")
    d: int = option(20, "width")
    Ls: tuple[int, ...] = option((2, 3, 4, 5, 6), "numbers of weight matrices L (ReLU needs L >= 2)")
    lam: float = option(1e-3, "weight decay λ")
    lr: float = option(0.5, "learning rate (1 diverges or collapses to zero for some seeds at L = 6)")
    steps: int = option(100_000, "gradient steps (0: max(20/(lr·λ), 20000))")
    seeds: int = option(8, "runs per L, seeds 0..seeds−1")
    gain: float = option(1.0, "initialization scale")
    init: Literal["orthogonal", "gaussian"] = option("orthogonal", "initialization")

    def __post_init__(self):
        require(positive_int("K", self.K) >= 2,
                f"K must be >= 2 (B.7's construction needs K >= 2), got {self.K}")
        tr.check_seed_options(seeds=self.seeds, lr=self.lr, gain=self.gain, steps=self.steps, init=self.init)
        distinct_ints("Ls", self.Ls, 2, " (no ReLU layer when L = 1)")
        width(self.d, self.K)
        positive_number("lam", self.lam)


def run_relu(cfg: ReluConfig, ctx) -> dict:
    """Train cfg.seeds ReLU runs per L; writes dufm-relu.png/.json (losses, B.7's bound and construction)."""
    t0 = time.perf_counter()
    per_L, train_seconds = {}, {}
    for L in cfg.Ls:
        trained, rows, steps = tr.train_seeds(cfg.K, cfg.d, L, lam=cfg.lam, lr=cfg.lr, steps=cfg.steps,
                                              seeds=cfg.seeds, init=cfg.init, gain=cfg.gain,
                                              model_name="relu", show_progress=ctx.progress)
        p_b7, loss_b7 = thresholds.relu_lr_construction(cfg.K, L, cfg.lam, cfg.d)
        per_L[L] = {"steps": steps, "loss": [r["loss"] for r in rows], "ends": [r["end"] for r in rows],
                    "ranks": [r["rank"] for r in rows], "grad_norm": [r["grad_norm"] for r in rows],
                    "dnc_lower_bound": thresholds.relu_dnc_lower_bound(cfg.K, L, cfg.lam),
                    "b7_construction": loss_b7,
                    "b7_construction_model_loss": model.loss(p_b7, lam=cfg.lam, model="relu")}
        train_seconds[str(L)] = trained.seconds
    fig = draw_relu(cfg, per_L)
    summary = {"figure": "dufm-relu", "config": dataclasses.asdict(cfg), "seeds": list(range(cfg.seeds)),
               "per_L": {str(L): v for L, v in per_L.items()},
               "timing": {"wall_seconds": time.perf_counter() - t0, "train_seconds": train_seconds}}
    plotting.save_figure(ctx.out_dir, "dufm-relu", fig, summary)
    best = "; ".join(f"L={L}: best {min(per_L[L]['loss']):.4g} vs bound {per_L[L]['dnc_lower_bound']:.4g}, "
                     f"B.7 {per_L[L]['b7_construction']:.4g}" for L in cfg.Ls)
    ctx.emit(f"dufm-relu: {best} -> {ctx.out_dir / 'dufm-relu.png'}",
             {k: v for k, v in summary.items() if k != "timing"})
    return summary


def draw_relu(cfg: ReluConfig, per_L: dict):
    """Trained losses per L (colored by end point) against B.7's DNC lower bound and its construction."""
    fig, (ax,) = plotting.subplots(1, width=6.0, height=4.2)
    for i, L in enumerate(cfg.Ls):
        info = per_L[L]
        x = i + np.linspace(-0.15, 0.15, len(info["loss"]))
        colors = [plotting.KIND_COLORS.get(e, "black") for e in info["ends"]]
        ax.scatter(x, info["loss"], s=14, c=colors, alpha=0.8)
    ax.plot(range(len(cfg.Ls)), [per_L[L]["dnc_lower_bound"] for L in cfg.Ls], "b-", lw=1,
            label="DNC lower bound (B.7: linear DNC optimum)")
    ax.plot(range(len(cfg.Ls)), [per_L[L]["b7_construction"] for L in cfg.Ls], "r--", lw=1,
            label="B.7 low-rank construction")
    ax.set_xticks(range(len(cfg.Ls)), [f"L={L}" for L in cfg.Ls])
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(f"dufm-relu: ReLU CE DUFM, K={cfg.K}, d={cfg.d}, λ={cfg.lam}, lr={cfg.lr}, "
                 f"{per_L[cfg.Ls[0]]['steps']} steps, {cfg.seeds} seeds\n"
                 "points: trained runs (blue DNC, red low rank, orange other)", fontsize=8)
    return fig


SPECS = [Spec("dufm-relu", ReluConfig, run_relu,
              "ReLU DUFM: trained losses against B.7's DNC lower bound and low-rank construction.",
              quick=dict(K=3, d=4, Ls=(2, 3), steps=100, seeds=2))]
