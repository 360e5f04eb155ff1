"""Figure ``dufm-rank``: the low-rank bias of gradient descent in the linear CE DUFM (Theorems 2–3).

Normalized singular values s_i/s_1 of the trained Z (K, K) for L = 1..6, one line per seed, colored by
end point (:func:`refimpl.dufm.nc_metrics.classify`); the numerical rank falls with L.  The JSON also
holds the DNC, block-LR and circle optima (eq. 10, B.2) that the trained losses are compared with.

Runs: :func:`refimpl.dufm.train.train_seeds` (full-batch GD, orthogonal × gain, seeds 0..seeds−1);
defaults: K = 10, d = 20, λ = 1e-3, 8 seeds.
"""

import dataclasses
import time
from typing import Literal

import numpy as np

from refimpl import plotting
from refimpl.dufm import nc_metrics, structures
from refimpl.dufm import train as tr
from refimpl.dufm.critical import optimal_dnc
from refimpl.errors import require
from refimpl.registry import Spec, option
from refimpl.validate import distinct_ints, positive_int, positive_number, width


@dataclasses.dataclass
class RankConfig:
    K: int = option(10, "classes")
    d: int = option(20, "width")
    Ls: tuple[int, ...] = option((1, 2, 3, 4, 5, 6), "numbers of weight matrices L")
    lam: float = option(1e-3, "weight decay λ")
    lr: float = option(0.1, "learning rate")
    steps: int = option(200_000, "gradient steps (0: max(20/(lr·λ), 20000))")
    seeds: int = option(8, "runs, seeds 0..seeds−1")
    gain: float = option(0.5, "initialization scale")
    init: Literal["orthogonal", "gaussian"] = option("orthogonal", "initialization")

    def __post_init__(self):
        require(positive_int("K", self.K) >= 3,
                f"K must be >= 3 (the circle optimum needs K >= 3), got {self.K}")
        tr.check_seed_options(seeds=self.seeds, lr=self.lr, gain=self.gain, steps=self.steps, init=self.init)
        distinct_ints("Ls", self.Ls)
        width(self.d, self.K)
        positive_number("lam", self.lam)


TRIAL_RANKS = {1: 9, 2: 5, 3: 4, 4: 3, 5: 3, 6: 2}   # an earlier run's ranks (K=10, d=20, λ=1e-3, 8 seeds)


def run_rank(cfg: RankConfig, ctx) -> dict:
    """Train cfg.seeds runs per L; writes dufm-rank.png/.json (ranks, singular values, losses, optima)."""
    t0 = time.perf_counter()
    per_L, train_seconds = {}, {}
    for L in cfg.Ls:
        trained, rows, steps = tr.train_seeds(cfg.K, cfg.d, L, lam=cfg.lam, lr=cfg.lr, steps=cfg.steps,
                                              seeds=cfg.seeds, init=cfg.init, gain=cfg.gain,
                                              show_progress=ctx.progress)
        per_L[L] = {"steps": steps, "ranks": [r["rank"] for r in rows], "ends": [r["end"] for r in rows],
                    "loss": [r["loss"] for r in rows], "grad_norm": [r["grad_norm"] for r in rows],
                    "sv": [r.get("sv") for r in rows],
                    "balancedness_max": [max(r.get("balancedness", [np.nan])) for r in rows],
                    "median_rank": float(np.median([r["rank"] for r in rows])),
                    "dnc_optimum": optimal_dnc(cfg.K, L, cfg.lam).loss,
                    "lr_optimum": structures.optimal_lr(cfg.K, L, cfg.lam).loss,
                    "circle_optimum": structures.optimal_circle(cfg.K, L, cfg.lam).loss}
        train_seconds[str(L)] = trained.seconds
    fig = draw_rank(cfg, per_L)
    summary = {"figure": "dufm-rank", "config": dataclasses.asdict(cfg), "seeds": list(range(cfg.seeds)),
               "rank_tol": nc_metrics.RANK_TOL, "per_L": {str(L): v for L, v in per_L.items()},
               "trial_ranks": TRIAL_RANKS, "timing": {"wall_seconds": time.perf_counter() - t0,
                                                 "train_seconds": train_seconds}}
    plotting.save_figure(ctx.out_dir, "dufm-rank", fig, summary)
    ranks = ", ".join(f"L={L}: {per_L[L]['median_rank']:g}" for L in cfg.Ls)
    ctx.emit(f"dufm-rank: median numerical rank of Z — {ranks} "
             f"-> {ctx.out_dir / 'dufm-rank.png'}",
             {k: v for k, v in summary.items() if k != "timing"})
    return summary


def draw_rank(cfg: RankConfig, per_L: dict):
    """One panel per L: s_i/s_1 of each run's Z on a log scale, the rank tolerance dotted."""
    ncols = min(3, len(cfg.Ls))
    nrows = -(-len(cfg.Ls) // ncols)
    fig, grid = plotting.plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 3.3 * nrows), squeeze=False)
    axes = grid.ravel()
    for ax in axes[len(cfg.Ls):]:
        ax.set_visible(False)
    for ax, L in zip(axes, cfg.Ls, strict=False):
        info = per_L[L]
        for sv, end in zip(info["sv"], info["ends"], strict=True):
            if sv is not None:
                ax.semilogy(np.arange(1, cfg.K + 1), np.maximum(sv, 1e-18), "o-", ms=3, lw=0.8, alpha=0.7,
                            color=plotting.KIND_COLORS.get(end, "black"))
        ax.axhline(nc_metrics.RANK_TOL, color="gray", ls=":", lw=0.8)
        ax.set_title(f"L = {L}: ranks {sorted(info['ranks'])}", fontsize=8)
        ax.set_xlabel("i")
        ax.set_ylim(1e-18, 3)
    for row in grid:
        row[0].set_ylabel("s_i / s_1 of trained Z")
    fig.suptitle(f"dufm-rank: K={cfg.K}, d={cfg.d}, λ={cfg.lam}, lr={cfg.lr}, {cfg.seeds} seeds\n"
                 f"blue: DNC, red: low rank, orange: other; dotted: rank tolerance {nc_metrics.RANK_TOL}",
                 fontsize=9)
    fig.tight_layout()
    return fig


SPECS = [Spec("dufm-rank", RankConfig, run_rank,
              "Singular values of the trained Z for L = 1..6 (low-rank bias).",
              quick=dict(K=4, d=4, Ls=(1, 2), steps=100, seeds=2))]
