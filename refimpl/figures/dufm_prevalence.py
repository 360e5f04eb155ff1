"""Figure ``dufm-prevalence``: how often gradient descent ends at DNC, versus the width d (section 3.3).

Left: the share of runs ending at DNC (:func:`refimpl.dufm.nc_metrics.classify`) versus d for a few λ,
beside the orbit-dimension ratio R(d) of Theorem 5 (corrected count,
:func:`refimpl.dufm.orbits.dimension_ratio`, r = ⌈K/2⌉ the rank of the block LR structure).  Right:
each run's trained loss relative to the DNC optimum (eq. 10, :mod:`refimpl.dufm.critical`), beside the
block-LR and circle optima (B.2, :mod:`refimpl.dufm.structures`).

Runs: :func:`refimpl.dufm.train.train_seeds` (full-batch GD, orthogonal × gain, seeds 0..seeds−1);
defaults are the issue's trial settings (see each option's help).
"""

import dataclasses
import time
from typing import Literal

import numpy as np

from refimpl import plotting
from refimpl.dufm import orbits, structures
from refimpl.dufm import train as tr
from refimpl.dufm.critical import optimal_dnc
from refimpl.errors import require
from refimpl.registry import Spec, option
from refimpl.validate import distinct_ints, positive_int, positive_numbers, width


@dataclasses.dataclass
class PrevalenceConfig:
    K: int = option(10, "classes (trial: 10)")
    L: int = option(2, "weight matrices after H_1 (trial: 2)")
    ds: tuple[int, ...] = option((10, 20, 40, 80), "widths d (trial: 10, 20, 40, 80)")
    lams: tuple[float, ...] = option((1e-4, 1e-3, 5e-3), "weight decays λ (trial: 1e-4, 1e-3, 5e-3)")
    lr: float = option(1.0, "learning rate (trial: 1)")
    steps: int = option(0, "gradient steps (0: max(20/(lr·λ), 20000) per λ, the trial's rule)")
    seeds: int = option(16, "runs per (d, λ), seeds 0..seeds−1 (trial: 16)")
    gain: float = option(1.0, "initialization scale (trial: orthogonal × 1)")
    init: Literal["orthogonal", "gaussian"] = option("orthogonal", "initialization (trial: orthogonal)")

    def __post_init__(self):
        require(positive_int("K", self.K) >= 3,
                f"K must be >= 3 (the circle optimum needs K >= 3), got {self.K}")
        tr.check_seed_options(seeds=self.seeds, lr=self.lr, gain=self.gain, steps=self.steps, init=self.init)
        positive_int("L", self.L)
        for d in distinct_ints("ds", self.ds):
            width(d, self.K)
        positive_numbers("lams", self.lams)


TRIAL_DNC = {"0.001": [0, 1, 6, 16], "0.0001": [0, 3, 12, 16]}   # issue 4's trial, of 16 seeds


def run_prevalence(cfg: PrevalenceConfig, ctx) -> dict:
    """Train cfg.seeds runs per (λ, d); writes dufm-prevalence.png/.json (DNC counts, losses, optima)."""
    t0 = time.perf_counter()
    K, L = cfg.K, cfg.L
    cells = {}
    for lam in cfg.lams:
        for d in cfg.ds:
            trained, rows, steps = tr.train_seeds(K, d, L, lam=lam, lr=cfg.lr, steps=cfg.steps,
                                                  seeds=cfg.seeds, init=cfg.init, gain=cfg.gain,
                                                  show_progress=ctx.progress)
            cells[(lam, d)] = {"lam": lam, "d": d, "steps": steps, "ends": [r["end"] for r in rows],
                               "ranks": [r["rank"] for r in rows], "loss": [r["loss"] for r in rows],
                               "dnc": sum(r["end"] == "DNC" for r in rows), "runs": len(rows),
                               "train_seconds": trained.seconds}
    optima = {lam: {"dnc": optimal_dnc(K, L, lam).loss, "lr": structures.optimal_lr(K, L, lam).loss,
                    "circle": structures.optimal_circle(K, L, lam).loss} for lam in cfg.lams}
    r_lr = K // 2 + K % 2                                                 # rank of the block LR structure
    ratio = {d: orbits.dimension_ratio(d, K, L, r_lr) for d in cfg.ds}
    fig = draw_prevalence(cfg, cells, optima, ratio, r_lr)
    summary = {"figure": "dufm-prevalence", "config": dataclasses.asdict(cfg),
               "seeds": list(range(cfg.seeds)), "cells": list(cells.values()),
               "optima": {str(k): v for k, v in optima.items()},
               "dnc_counts": {str(lam): [cells[(lam, d)]["dnc"] for d in cfg.ds] for lam in cfg.lams},
               "orbit_ratio_r": r_lr, "orbit_ratio": {str(d): v for d, v in ratio.items()},
               "trial_dnc_counts": TRIAL_DNC, "wall_seconds": time.perf_counter() - t0}
    plotting.save_figure(ctx.out_dir, "dufm-prevalence", fig, summary)
    counts = "; ".join(f"λ={lam}: {summary['dnc_counts'][str(lam)]}" for lam in cfg.lams)
    ctx.emit(f"dufm-prevalence: runs at DNC (of {cfg.seeds}) for d = {list(cfg.ds)} — {counts} "
             f"(trial: λ=1e-3 [0, 1, 6, 16], λ=1e-4 [0, 3, 12, 16]) -> {ctx.out_dir / 'dufm-prevalence.png'}",
             summary)
    return summary


def draw_prevalence(cfg: PrevalenceConfig, cells: dict, optima: dict, ratio: dict, r_lr: int):
    """Left: share of runs at DNC versus d per λ, with R(d); right: each run's loss against the optima."""
    fig, (ax0, ax1) = plotting.subplots(2, width=5.4, height=4.2)
    for lam in cfg.lams:
        frac = [cells[(lam, d)]["dnc"] / cells[(lam, d)]["runs"] for d in cfg.ds]
        ax0.plot(cfg.ds, frac, "o-", label=f"λ = {lam:g}")
    ax0.set_xscale("log", base=2)
    ax0.set_xticks(cfg.ds, [str(d) for d in cfg.ds])
    ax0.set_xlabel("width d")
    ax0.set_ylabel("fraction of runs ending at DNC")
    ax0.set_ylim(-0.03, 1.03)
    twin = ax0.twinx()
    twin.plot(cfg.ds, [ratio[d] for d in cfg.ds], "k--", lw=1, label=f"R(d), r = {r_lr}")
    twin.axhline(1.0, color="gray", lw=0.6, ls=":")
    twin.set_ylabel(f"orbit-dimension ratio R(d) (Theorem 5, r = {r_lr})")
    ax0.legend(loc="upper left", fontsize=8)
    twin.legend(loc="lower right", fontsize=8)
    ax0.set_title(f"K={cfg.K}, L={cfg.L}, lr={cfg.lr}, {cfg.seeds} seeds per point", fontsize=9)
    offsets = {lam: i for i, lam in enumerate(cfg.lams)}
    for (lam, d), cell in cells.items():
        rel = np.array(cell["loss"]) / optima[lam]["dnc"] - 1
        x = np.full(rel.size, cfg.ds.index(d) + 0.25 * (offsets[lam] - (len(cfg.lams) - 1) / 2))
        ax1.scatter(x, rel, s=12, c=[plotting.KIND_COLORS.get(e, "black") for e in cell["ends"]], alpha=0.7)
    levels = {lam: {k: optima[lam][k] / optima[lam]["dnc"] - 1 for k in ("lr", "circle")} for lam in cfg.lams}
    rel_all = np.concatenate([np.array(c["loss"]) / optima[c["lam"]]["dnc"] - 1 for c in cells.values()])
    top = max(0.0, float(np.nanmax(np.where(np.isfinite(rel_all), rel_all, np.nan), initial=0.0)))
    bottom = min(min(v["lr"] for v in levels.values()), float(np.nanmin(rel_all, initial=0.0)))
    for lam in cfg.lams:
        for key, style in (("lr", "r--"), ("circle", "g:")):
            ax1.plot([-0.5, len(cfg.ds) - 0.5], [levels[lam][key]] * 2, style, lw=0.8)
    ax1.axhline(0.0, color="tab:blue", lw=0.8)
    span = top - bottom
    ax1.set_ylim(bottom - 0.1 * span, top + 0.15 * span)
    ax1.set_xticks(range(len(cfg.ds)), [f"d={d}" for d in cfg.ds])
    ax1.set_ylabel("trained loss / DNC optimum − 1")
    circles = ", ".join(f"{levels[lam]['circle']:+.2f}" for lam in cfg.lams)
    ax1.set_title("blue: DNC optimum, red dashed: block-LR optimum (per λ); circle optimum "
                  f"{circles} (off scale)\npoints: runs (blue DNC, red low rank, orange other), "
                  "λ increasing left to right", fontsize=8)
    fig.tight_layout()
    return fig


SPECS = [Spec("dufm-prevalence", PrevalenceConfig, run_prevalence,
              "Share of GD runs ending at DNC versus width d and λ, beside Theorem 5's R(d).")]
