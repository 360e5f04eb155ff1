"""Figures ``dufm-rank``, ``dufm-prevalence`` and ``dufm-relu``: what gradient descent finds in the DUFM.

dufm-rank — the low-rank bias (Theorems 2–3): normalized singular values s_i/s_1 of the trained Z for
L = 1..6, one line per seed; the numerical rank falls with L.  dufm-prevalence — section 3.3: the share of
runs ending at DNC versus the width d for a few λ, beside the orbit-dimension ratio R(d) of Theorem 5
(corrected count, :func:`refimpl.dufm.orbits.dimension_ratio`), and the trained losses against the DNC,
block-LR and circle optima of :mod:`refimpl.dufm.theory`.  dufm-relu — section 3.4: trained losses of
the ReLU model against B.7's DNC lower bound and its low-rank construction (Theorem 6).

Every run is full-batch gradient descent from :mod:`refimpl.dufm.train` on the batched Numba kernel;
defaults are the issue's trial settings (see each option's help).
"""

import dataclasses
import time
from typing import Literal

import numpy as np

from refimpl import plotting
from refimpl.dufm import model, nc_metrics, orbits, theory
from refimpl.dufm import train as tr
from refimpl.errors import require
from refimpl.registry import Spec, option
from refimpl.validate import positive_int

KIND_COLORS = {"DNC": "tab:blue", "low rank": "tab:red", "zero": "tab:gray", "other": "tab:orange",
               "diverged": "black"}


def _check_common(cfg, min_K: int, why: str):
    """Validate what every training figure shares, before any training (one-line InputError)."""
    require(positive_int("K", cfg.K) >= min_K, f"K must be >= {min_K} ({why}), got {cfg.K}")
    positive_int("seeds", cfg.seeds)
    for name in ("lr", "gain"):
        value = getattr(cfg, name)
        require(np.isfinite(value) and value > 0, f"{name} must be a positive number, got {float(value):g}")
    require(float(cfg.steps).is_integer() and cfg.steps >= 0,
            f"steps must be an integer >= 0 (0: max(20/(lr·λ), 20000)), got {cfg.steps}")
    require(cfg.init in tr.INITS, f"unknown init {cfg.init!r}; use one of {', '.join(tr.INITS)}")


def _check_lams(name: str, lams):
    """Every λ finite and > 0: the DNC, block-LR and circle optima (eq. 10, B.2) need λ > 0."""
    require(len(lams) > 0, f"{name} must list at least one value")
    for lam in lams:
        require(np.isfinite(lam) and lam > 0,
                f"{name} must be a finite number > 0 (the closed-form optima need λ > 0), got {float(lam):g}")


def _check_sizes(name: str, values, minimum: int, why: str = ""):
    """A non-empty tuple of distinct integers ≥ minimum (L or d values)."""
    require(len(values) > 0, f"{name} must list at least one value")
    require(len(set(values)) == len(values), f"{name} has repeated values: {values}")
    for v in values:
        require(positive_int(name, v) >= minimum, f"{name} must be >= {minimum}{why}, got {v}")


def _check_width(d: int, K: int):
    require(positive_int("d", d) >= K,
            f"width d = {d} is smaller than the number of classes K = {K}; the DUFM needs d >= K")


def _train(K, d, L, lam, cfg, ctx, model_name="linear"):
    """Train cfg.seeds runs from orthogonal (× gain) inits; returns (Trained, summary rows, steps)."""
    steps = cfg.steps or tr.default_steps(cfg.lr, lam)
    params = tr.init_batch(K, d, L, range(cfg.seeds), init=cfg.init, gain=cfg.gain)
    trained = tr.gradient_descent(params, lam=lam, lr=cfg.lr, steps=steps, model_name=model_name,
                                  show_progress=ctx.progress)
    return trained, tr.summarize(trained, model_name=model_name), steps


def _save(ctx, name, fig, summary):
    plotting.save_figure(ctx.out_dir, name, fig, summary)


# --------------------------------------------------------------------------------------- dufm-rank
@dataclasses.dataclass
class RankConfig:
    K: int = option(10, "classes (trial: 10)")
    d: int = option(20, "width (trial: 20)")
    Ls: tuple[int, ...] = option((1, 2, 3, 4, 5, 6), "numbers of weight matrices L (trial: 1..6)")
    lam: float = option(1e-3, "weight decay λ (trial: 1e-3)")
    lr: float = option(0.1, "learning rate (trial: 0.1)")
    steps: int = option(200_000, "gradient steps (trial: 200k; 0: max(20/(lr·λ), 20000))")
    seeds: int = option(8, "runs, seeds 0..seeds−1 (trial: 8)")
    gain: float = option(0.5, "initialization scale (trial: orthogonal × 0.5)")
    init: Literal["orthogonal", "gaussian"] = option("orthogonal", "initialization (trial: orthogonal)")

    def __post_init__(self):
        _check_common(self, 3, "the circle optimum needs K >= 3")
        _check_sizes("Ls", self.Ls, 1)
        _check_width(self.d, self.K)
        _check_lams("lam", (self.lam,))


TRIAL_RANKS = {1: 9, 2: 5, 3: 4, 4: 3, 5: 3, 6: 2}   # issue 4's trial (K=10, d=20, λ=1e-3, 8 seeds)


def run_rank(cfg: RankConfig, ctx) -> dict:
    t0 = time.perf_counter()
    per_L = {}
    for L in cfg.Ls:
        trained, rows, steps = _train(cfg.K, cfg.d, L, cfg.lam, cfg, ctx)
        per_L[L] = {"steps": steps, "ranks": [r["rank"] for r in rows], "ends": [r["end"] for r in rows],
                    "loss": [r["loss"] for r in rows], "grad_norm": [r["grad_norm"] for r in rows],
                    "sv": [r.get("sv") for r in rows],
                    "balancedness_max": [max(r.get("balancedness", [np.nan])) for r in rows],
                    "median_rank": float(np.median([r["rank"] for r in rows])),
                    "dnc_optimum": theory.optimal_dnc(cfg.K, L, cfg.lam).loss,
                    "lr_optimum": theory.optimal_lr(cfg.K, L, cfg.lam).loss,
                    "circle_optimum": theory.optimal_circle(cfg.K, L, cfg.lam).loss,
                    "train_seconds": trained.seconds}
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
                            color=KIND_COLORS.get(end, "black"))
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
    summary = {"figure": "dufm-rank", "config": dataclasses.asdict(cfg), "seeds": list(range(cfg.seeds)),
               "rank_tol": nc_metrics.RANK_TOL, "per_L": {str(L): v for L, v in per_L.items()},
               "trial_ranks": TRIAL_RANKS, "wall_seconds": time.perf_counter() - t0}
    _save(ctx, "dufm-rank", fig, summary)
    ranks = ", ".join(f"L={L}: {per_L[L]['median_rank']:g}" for L in cfg.Ls)
    ctx.emit(f"dufm-rank: median numerical rank of Z — {ranks} (trial: 9, 5, 4, 3, 3, 2) "
             f"-> {ctx.out_dir / 'dufm-rank.png'}", summary)
    return summary


# --------------------------------------------------------------------------------- dufm-prevalence
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
        _check_common(self, 3, "the circle optimum needs K >= 3")
        positive_int("L", self.L)
        _check_sizes("ds", self.ds, 1)
        for d in self.ds:
            _check_width(d, self.K)
        _check_lams("lams", self.lams)


TRIAL_DNC = {"0.001": [0, 1, 6, 16], "0.0001": [0, 3, 12, 16]}   # issue 4's trial, of 16 seeds


def run_prevalence(cfg: PrevalenceConfig, ctx) -> dict:
    t0 = time.perf_counter()
    K, L = cfg.K, cfg.L
    cells = {}
    for lam in cfg.lams:
        for d in cfg.ds:
            trained, rows, steps = _train(K, d, L, lam, cfg, ctx)
            cells[(lam, d)] = {"lam": lam, "d": d, "steps": steps, "ends": [r["end"] for r in rows],
                               "ranks": [r["rank"] for r in rows], "loss": [r["loss"] for r in rows],
                               "dnc": sum(r["end"] == "DNC" for r in rows), "runs": len(rows),
                               "train_seconds": trained.seconds}
    optima = {lam: {"dnc": theory.optimal_dnc(K, L, lam).loss, "lr": theory.optimal_lr(K, L, lam).loss,
                    "circle": theory.optimal_circle(K, L, lam).loss} for lam in cfg.lams}
    r_lr = K // 2 + K % 2                                                 # rank of the block LR structure
    ratio = {d: orbits.dimension_ratio(d, K, L, r_lr) for d in cfg.ds}
    fig = _draw_prevalence(cfg, cells, optima, ratio, r_lr)
    summary = {"figure": "dufm-prevalence", "config": dataclasses.asdict(cfg),
               "seeds": list(range(cfg.seeds)), "cells": list(cells.values()),
               "optima": {str(k): v for k, v in optima.items()},
               "dnc_counts": {str(lam): [cells[(lam, d)]["dnc"] for d in cfg.ds] for lam in cfg.lams},
               "orbit_ratio_r": r_lr, "orbit_ratio": {str(d): v for d, v in ratio.items()},
               "trial_dnc_counts": TRIAL_DNC, "wall_seconds": time.perf_counter() - t0}
    _save(ctx, "dufm-prevalence", fig, summary)
    counts = "; ".join(f"λ={lam}: {summary['dnc_counts'][str(lam)]}" for lam in cfg.lams)
    ctx.emit(f"dufm-prevalence: runs at DNC (of {cfg.seeds}) for d = {list(cfg.ds)} — {counts} "
             f"(trial: λ=1e-3 [0, 1, 6, 16], λ=1e-4 [0, 3, 12, 16]) -> {ctx.out_dir / 'dufm-prevalence.png'}",
             summary)
    return summary


def _draw_prevalence(cfg, cells, optima, ratio, r_lr):
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
        ax1.scatter(x, rel, s=12, c=[KIND_COLORS.get(e, "black") for e in cell["ends"]], alpha=0.7)
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


# ---------------------------------------------------------------------------------------- dufm-relu
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
    init: Literal["orthogonal", "gaussian"] = option("orthogonal", "initialization (trial: orthogonal)")

    def __post_init__(self):
        _check_common(self, 2, "B.7's construction needs K >= 2")
        _check_sizes("Ls", self.Ls, 2, " (no ReLU layer when L = 1)")
        _check_width(self.d, self.K)
        _check_lams("lam", (self.lam,))


def run_relu(cfg: ReluConfig, ctx) -> dict:
    t0 = time.perf_counter()
    per_L = {}
    for L in cfg.Ls:
        trained, rows, steps = _train(cfg.K, cfg.d, L, cfg.lam, cfg, ctx, model_name="relu")
        p_b7, loss_b7 = theory.relu_lr_construction(cfg.K, L, cfg.lam, cfg.d)
        per_L[L] = {"steps": steps, "loss": [r["loss"] for r in rows], "ends": [r["end"] for r in rows],
                    "ranks": [r["rank"] for r in rows], "grad_norm": [r["grad_norm"] for r in rows],
                    "dnc_lower_bound": theory.relu_dnc_lower_bound(cfg.K, L, cfg.lam),
                    "b7_construction": loss_b7,
                    "b7_construction_model_loss": model.loss(p_b7, lam=cfg.lam, model="relu"),
                    "train_seconds": trained.seconds}
    fig, (ax,) = plotting.subplots(1, width=6.0, height=4.2)
    for i, L in enumerate(cfg.Ls):
        info = per_L[L]
        x = i + np.linspace(-0.15, 0.15, len(info["loss"]))
        ax.scatter(x, info["loss"], s=14, c=[KIND_COLORS.get(e, "black") for e in info["ends"]], alpha=0.8)
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
    summary = {"figure": "dufm-relu", "config": dataclasses.asdict(cfg), "seeds": list(range(cfg.seeds)),
               "per_L": {str(L): v for L, v in per_L.items()}, "wall_seconds": time.perf_counter() - t0}
    _save(ctx, "dufm-relu", fig, summary)
    best = "; ".join(f"L={L}: best {min(per_L[L]['loss']):.4g} vs bound {per_L[L]['dnc_lower_bound']:.4g}, "
                     f"B.7 {per_L[L]['b7_construction']:.4g}" for L in cfg.Ls)
    ctx.emit(f"dufm-relu: {best} -> {ctx.out_dir / 'dufm-relu.png'}", summary)
    return summary


SPECS = [Spec("dufm-rank", RankConfig, run_rank,
              "Singular values of the trained Z for L = 1..6 (low-rank bias)."),
         Spec("dufm-prevalence", PrevalenceConfig, run_prevalence,
              "Share of GD runs ending at DNC versus width d and λ, beside Theorem 5's R(d)."),
         Spec("dufm-relu", ReluConfig, run_relu,
              "ReLU DUFM: trained losses against B.7's DNC lower bound and low-rank construction.")]
