"""Figure ``dufm-prevalence``: how often gradient descent ends at DNC, versus the width d (section 3.3).

Left: the share of runs ending at DNC (:func:`refimpl.dufm.nc_metrics.classify`) versus d for a few λ,
beside the orbit-dimension ratio R(d) of Theorem 5 (corrected count,
:func:`refimpl.dufm.orbits.dimension_ratio`, r = ⌈K/2⌉ the rank of the block LR structure).  Right:
each run's trained loss relative to the DNC optimum (eq. 10, :mod:`refimpl.dufm.critical`), beside the
block-LR and circle optima (B.2, :mod:`refimpl.dufm.structures`).

Runs: :func:`refimpl.dufm.train.train_seeds` (full-batch GD, orthogonal × gain, seeds 0..seeds−1);
the grid is width × weight decay × learning rate, the three factors the paper's discussion names.
"""

import dataclasses
import time
from typing import Literal

import numpy as np

from refimpl import plotting, tasks
from refimpl.dufm import orbits, structures
from refimpl.dufm import train as tr
from refimpl.dufm.critical import optimal_dnc
from refimpl.errors import require
from refimpl.registry import Spec, option
from refimpl.validate import distinct_ints, positive_int, positive_numbers, width


@dataclasses.dataclass
class PrevalenceConfig:
    K: int = option(10, "classes")
    L: int = option(2, "weight matrices after H_1")
    ds: tuple[int, ...] = option((10, 20, 40, 80), "widths d")
    lams: tuple[float, ...] = option((1e-4, 1e-3, 5e-3), "weight decays λ")
    lrs: tuple[float, ...] = option((0.1, 0.3, 1.0), "learning rates")
    steps: int = option(0, "gradient steps (0: max(20/(lr·λ), 20000) per cell: ~20 e-folds of weight decay)")
    seeds: int = option(16, "runs per (d, λ, lr), seeds 0..seeds−1")
    gain: float = option(1.0, "initialization scale (orthogonal × gain)")
    init: Literal["orthogonal", "gaussian"] = option("orthogonal", "initialization")

    def __post_init__(self):
        require(positive_int("K", self.K) >= 3,
                f"K must be >= 3 (the circle optimum needs K >= 3), got {self.K}")
        positive_numbers("lrs", self.lrs)
        for lr in self.lrs:
            tr.check_seed_options(seeds=self.seeds, lr=lr, gain=self.gain, steps=self.steps, init=self.init)
        positive_int("L", self.L)
        for d in distinct_ints("ds", self.ds):
            width(d, self.K)
        positive_numbers("lams", self.lams)

    def cells(self) -> list[tuple[float, float, int]]:
        """Every (λ, lr, d) of the grid, in drawing order."""
        return [(lam, lr, d) for lam in self.lams for lr in self.lrs for d in self.ds]


TRIAL_DNC = {"0.001": [0, 1, 6, 16], "0.0001": [0, 3, 12, 16]}   # an earlier run's counts at lr = 1, of 16


def train_cell(K: int, L: int, d: int, lam: float, lr: float, steps: int, seeds: int, init: str, gain: float,
               progress: bool = False):
    """One cell of the grid: `seeds` runs of full-batch GD; returns (the cell's record, None) — also a
    ``reproduce`` task (the runs of a cell are one batch on the compiled kernel)."""
    trained, rows, steps = tr.train_seeds(K, d, L, lam=lam, lr=lr, steps=steps, seeds=seeds, init=init,
                                          gain=gain, show_progress=progress)
    return {"lam": lam, "lr": lr, "d": d, "steps": steps, "ends": [r["end"] for r in rows],
            "ranks": [r["rank"] for r in rows], "loss": [r["loss"] for r in rows],
            "dnc": sum(r["end"] == "DNC" for r in rows), "runs": len(rows)}, None


def _cell_args(cfg: PrevalenceConfig, lam, lr, d) -> tuple:
    return (cfg.K, cfg.L, d, lam, lr, cfg.steps, cfg.seeds, cfg.init, cfg.gain)


def jobs(cfg: PrevalenceConfig, seeds) -> list:
    """One ``reproduce`` task per (λ, lr, d) cell (its seeds run together)."""
    out = []
    for lam, lr, d in cfg.cells():
        args = _cell_args(cfg, lam, lr, d)
        names = ("K", "L", "d", "lam", "lr", "steps", "seeds", "init", "gain")
        settings = dict(zip(names, args, strict=True))
        out.append(tasks.job("dufm-prevalence-cell", settings, 0, train_cell, args,
                             label=f"dufm-prevalence λ={lam:g} lr={lr:g} d={d}"))
    return out


def finish(cfg: PrevalenceConfig, cells: list[dict], ctx, timing: dict) -> dict:
    """The figure and its summary from the trained cells (in :meth:`PrevalenceConfig.cells` order)."""
    K, L = cfg.K, cfg.L
    by = {(c["lam"], c["lr"], c["d"]): c for c in cells}
    optima = {lam: {"dnc": optimal_dnc(K, L, lam).loss, "lr": structures.optimal_lr(K, L, lam).loss,
                    "circle": structures.optimal_circle(K, L, lam).loss} for lam in cfg.lams}
    r_lr = K // 2 + K % 2                                                 # rank of the block LR structure
    ratio = {d: orbits.dimension_ratio(d, K, L, r_lr) for d in cfg.ds}
    fig = draw_prevalence(cfg, by, optima, ratio, r_lr)
    counts = {f"lam={lam:g} lr={lr:g}": [by[(lam, lr, d)]["dnc"] for d in cfg.ds]
              for lam in cfg.lams for lr in cfg.lrs}
    summary = {"figure": "dufm-prevalence", "config": dataclasses.asdict(cfg),
               "seeds": list(range(cfg.seeds)), "cells": cells,
               "optima": {str(k): v for k, v in optima.items()}, "dnc_counts": counts,
               "orbit_ratio_r": r_lr, "orbit_ratio": {str(d): v for d, v in ratio.items()},
               "earlier_dnc_counts_lr1": TRIAL_DNC, "timing": timing}
    plotting.save_figure(ctx.out_dir, "dufm-prevalence", fig, summary)
    text = "; ".join(f"{k}: {v}" for k, v in counts.items())
    ctx.emit(f"dufm-prevalence: runs at DNC (of {cfg.seeds}) for d = {list(cfg.ds)} — {text} "
             f"-> {ctx.out_dir / 'dufm-prevalence.png'}", {k: v for k, v in summary.items() if k != "timing"})
    return summary


def run_prevalence(cfg: PrevalenceConfig, ctx) -> dict:
    """Train cfg.seeds runs per (λ, lr, d); writes dufm-prevalence.png/.json (DNC counts, losses, optima)."""
    t0, cells = time.perf_counter(), []
    for lam, lr, d in cfg.cells():
        c0 = time.perf_counter()
        cell, _ = train_cell(*_cell_args(cfg, lam, lr, d), progress=ctx.progress)
        cells.append({**cell})
        cell_seconds = time.perf_counter() - c0
        ctx.info(f"λ = {lam:g}, lr = {lr:g}, d = {d}: {cell['dnc']} of {cell['runs']} runs at DNC "
                 f"({cell_seconds:.0f} s)")
    return finish(cfg, cells, ctx, {"wall_seconds": time.perf_counter() - t0})


def assemble(cfg: PrevalenceConfig, runs, ctx) -> dict:
    """The figure from the stored cells."""
    return finish(cfg, [dict(r.record) for r in runs], ctx, {})


def draw_prevalence(cfg: PrevalenceConfig, by: dict, optima: dict, ratio: dict, r_lr: int):
    """Left: share of runs at DNC versus d per (λ, lr), with R(d); right: each run's loss / the optima."""
    fig, (ax0, ax1) = plotting.subplots(2, width=5.6, height=4.4)
    colors = plotting.CONCEPT_COLORS
    styles = ["o:", "s--", "^-", "D-.", "v-"]
    for i, lam in enumerate(cfg.lams):
        for j, lr in enumerate(cfg.lrs):
            frac = [by[(lam, lr, d)]["dnc"] / by[(lam, lr, d)]["runs"] for d in cfg.ds]
            ax0.plot(cfg.ds, frac, styles[j % len(styles)], color=colors[i % len(colors)], ms=4,
                     label=f"λ = {lam:g}, lr = {lr:g}")
    ax0.set_xscale("log", base=2)
    ax0.set_xticks(cfg.ds, [str(d) for d in cfg.ds])
    ax0.set_xlabel("width d")
    ax0.set_ylabel("fraction of runs ending at DNC")
    ax0.set_ylim(-0.03, 1.03)
    twin = ax0.twinx()
    twin.plot(cfg.ds, [ratio[d] for d in cfg.ds], "k-", lw=2.5, alpha=0.3, label=f"R(d), r = {r_lr}")
    twin.axhline(1.0, color="gray", lw=0.6, ls=":")
    twin.set_ylabel(f"orbit-dimension ratio R(d) (Theorem 5, r = {r_lr})")
    ax0.legend(loc="upper left", fontsize=6, ncol=1)
    twin.legend(loc="lower right", fontsize=7)
    same = all(len({by[(lam, lr, d)]["dnc"] for lr in cfg.lrs}) == 1 for lam in cfg.lams for d in cfg.ds)
    note = "\nthe lines of the lrs coincide: equal counts" if same and len(cfg.lrs) > 1 else ""
    ax0.set_title(f"K={cfg.K}, L={cfg.L}, {cfg.seeds} seeds per point; color λ, marker lr{note}", fontsize=9)
    groups = [(lam, lr) for lam in cfg.lams for lr in cfg.lrs]
    width_ = 0.8 / len(groups)
    for g, (lam, lr) in enumerate(groups):
        for k, d in enumerate(cfg.ds):
            cell = by[(lam, lr, d)]
            rel = np.array(cell["loss"], dtype=float) / optima[lam]["dnc"] - 1
            x = np.full(rel.size, k - 0.4 + width_ * (g + 0.5))
            kinds = [plotting.KIND_COLORS.get(e, "black") for e in cell["ends"]]
            ax1.scatter(x, rel, s=8, c=kinds, alpha=0.7)
    levels = {lam: {k: optima[lam][k] / optima[lam]["dnc"] - 1 for k in ("lr", "circle")} for lam in cfg.lams}
    rel_all = np.concatenate([np.array(c["loss"], dtype=float) / optima[lam]["dnc"] - 1
                              for (lam, _, _), c in by.items()])
    top = max(0.0, float(np.nanmax(np.where(np.isfinite(rel_all), rel_all, np.nan), initial=0.0)))
    bottom = min(min(v["lr"] for v in levels.values()), float(np.nanmin(rel_all, initial=0.0)))
    for lam in cfg.lams:
        ax1.plot([-0.5, len(cfg.ds) - 0.5], [levels[lam]["lr"]] * 2, "r--", lw=0.8)
    ax1.axhline(0.0, color="tab:blue", lw=0.8)
    span = max(top - bottom, 1e-12)
    ax1.set_ylim(bottom - 0.1 * span, top + 0.15 * span)
    ax1.set_xticks(range(len(cfg.ds)), [f"d={d}" for d in cfg.ds])
    ax1.set_ylabel("trained loss / DNC optimum − 1")
    circles = ", ".join(f"{levels[lam]['circle']:+.2f}" for lam in cfg.lams)
    ax1.set_title("blue: DNC optimum, red dashed: block-LR optimum (per λ); circle optimum "
                  f"{circles} (off scale)\npoints: runs (blue DNC, red low rank, orange other), "
                  "grouped by (λ, lr) left to right", fontsize=8)
    fig.tight_layout()
    return fig


SPECS = [Spec("dufm-prevalence", PrevalenceConfig, run_prevalence,
              "Share of GD runs ending at DNC versus width d, λ and learning rate, beside Theorem 5's R(d).",
              jobs=jobs, assemble=assemble,
              quick=dict(K=3, ds=(3, 6), lams=(1e-3,), lrs=(1.0,), steps=50, seeds=2))]
