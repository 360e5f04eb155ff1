"""Figures ``dufm-thresholds`` and ``dufm-hessian``: the closed-form side of the DUFM paper.

dufm-thresholds — where DNC stops being a global optimum (Theorems 1 and 6, and the circle of Theorem 3):
relative gaps min_scale L(structure) / min_α L_DNC(α) − 1 over K × L for a few λ, with the theorems'
regions outlined. dufm-hessian — Theorem 4: the smallest Hessian eigenvalue off the O(d)^L symmetry
directions at the large-root DNC critical point of eq. (10), versus λ, for several L, with the exact
threshold λ_c (α_c = K(L−1)/(L+1)) derived in refimpl.dufm.hessian.
"""

import dataclasses
import time

import numpy as np
from matplotlib.colors import TwoSlopeNorm

from refimpl import plotting, progress
from refimpl.dufm import hessian, theory, thresholds
from refimpl.errors import require
from refimpl.registry import Spec, option
from refimpl.validate import positive_int


@dataclasses.dataclass
class ThresholdsConfig:
    K_max: int = option(20, "largest number of classes K (K = 2..K_max; the issue's 20)")
    L_max: int = option(8, "largest number of weight matrices L (L = 1..L_max; the issue's 8)")
    lams: tuple[float, ...] = option((1e-4, 1e-3, 1e-2), "weight decays λ, one column each")

    def __post_init__(self):
        require(positive_int("K_max", self.K_max) >= 3, f"K_max must be >= 3, got {self.K_max}")
        positive_int("L_max", self.L_max)
        require(len(self.lams) > 0 and all(np.isfinite(x) and x > 0 for x in self.lams),
                f"lams must be positive numbers, got {self.lams!r}")


ROWS = [("lr", "LR block (B.2) vs DNC — Theorem 1", thresholds.theorem1_paper,
         thresholds.theorem1_inequality),
        ("relu", "ReLU: B.7 construction vs DNC bound — Theorem 6", thresholds.theorem6_paper,
         thresholds.theorem6_inequality),
        ("circle", "circle (rank 2) vs DNC — Theorem 3's q = 2", None, None)]


def run_thresholds(config: ThresholdsConfig, ctx) -> dict:
    """Tables of relative gaps (structure − DNC)/DNC at each λ; draws dufm-thresholds.png/.json."""
    t0 = time.perf_counter()
    Ks, Ls = list(range(2, config.K_max + 1)), list(range(1, config.L_max + 1))
    tables = {}
    with progress.bar(len(ROWS) * len(config.lams) * len(Ks) * len(Ls), "dufm-thresholds",
                      enabled=ctx.progress) as bar:
        dnc = {lam: np.array([[theory.optimal_dnc(K, L, lam).loss for L in Ls] for K in Ks])
               for lam in config.lams}
        for name, *_ in ROWS:
            tables[name] = {lam: thresholds.gap_table(Ks, Ls, lam, name, progress=bar) / dnc[lam]
                            for lam in config.lams}
    rules = {name: {"paper": thresholds.rule_table(paper, Ks, Ls).tolist(),
                    "inequality": thresholds.rule_table(ineq, Ks, Ls).tolist()}
             for name, _, paper, ineq in ROWS if paper is not None}
    summary = {"figure": "dufm-thresholds", "config": dataclasses.asdict(config), "seed": None, "K": Ks,
               "L": Ls, "relative_gap": {name: {str(lam): t.tolist() for lam, t in tab.items()}
                                         for name, tab in tables.items()},
               "dnc_loss": {str(lam): t.tolist() for lam, t in dnc.items()}, "rules": rules,
               "beats_dnc_count": {name: {str(lam): int(np.sum(t < -1e-12)) for lam, t in tab.items()}
                                   for name, tab in tables.items()}}
    fig = draw_thresholds(Ks, Ls, config.lams, tables)
    summary["wall_seconds"] = time.perf_counter() - t0
    plotting.save_figure(ctx.out_dir, "dufm-thresholds", fig, summary)
    counts = ", ".join(f"{n}: {summary['beats_dnc_count'][n]}" for n, *_ in ROWS)
    ctx.emit(f"dufm-thresholds: cells (of {len(Ks) * len(Ls)}) where the structure beats DNC, per λ — "
             f"{counts}  -> {ctx.out_dir / 'dufm-thresholds.png'}", summary)
    return summary


def _outline(ax, Ks, Ls, table, **style):
    """Draw the boundary of the True cells of a (K, L) boolean table; cell (K, L) spans L ± ½, K ± ½."""
    T = np.pad(table, 1)                                                  # (len(Ks)+2, len(Ls)+2)
    for i in range(T.shape[0] - 1):
        for j in range(T.shape[1] - 1):
            K, L = Ks[0] + i - 0.5, Ls[0] + j - 0.5                       # lower-left corner of cell (i, j)
            if T[i + 1, j + 1] != T[i, j + 1]:                            # edge below cell (i, j)
                ax.plot([L, L + 1], [K, K], **style)
            if T[i + 1, j + 1] != T[i + 1, j]:                            # edge left of cell (i, j)
                ax.plot([L, L], [K, K + 1], **style)


def draw_thresholds(Ks, Ls, lams, tables):
    fig, axes = plotting.plt.subplots(len(ROWS), len(lams), figsize=(4.4 * len(lams) + 1.2, 4.2 * len(ROWS)),
                                      squeeze=False, layout="constrained")
    norm = TwoSlopeNorm(vmin=-0.5, vcenter=0.0, vmax=0.5)
    for r, (name, title, paper, ineq) in enumerate(ROWS):
        for c, lam in enumerate(lams):
            ax = axes[r, c]
            im = ax.imshow(tables[name][lam], origin="lower", cmap="RdBu_r", norm=norm, aspect="auto",
                           extent=(Ls[0] - 0.5, Ls[-1] + 0.5, Ks[0] - 0.5, Ks[-1] + 0.5))
            if paper is not None:
                _outline(ax, Ks, Ls, thresholds.rule_table(paper, Ks, Ls), color="k", lw=2.2)
                _outline(ax, Ks, Ls, thresholds.rule_table(ineq, Ks, Ls), color="gold", lw=1.2, ls="--")
            ax.set_xlim(Ls[0] - 0.5, Ls[-1] + 0.5)
            ax.set_ylim(Ks[0] - 0.5, Ks[-1] + 0.5)
            ax.set_xticks(Ls)
            ax.set_yticks(Ks[::2])
            ax.set_title(f"{title}\nλ = {lam:g}", fontsize=9)
            ax.set_xlabel("L")
            ax.set_ylabel("K")
    fig.colorbar(im, ax=axes, shrink=0.6, label="min L(structure) / min L_DNC − 1  (blue: beats DNC)")
    fig.get_layout_engine().set(h_pad=0.12)
    fig.supxlabel("black: the paper's statement (Theorems 1, 6); dashed gold: its proof's inequality "
                  "at equal scales.\nTheorem 6's gap is B.7's construction minus the DNC lower bound. "
                  "White: undefined (L = 1 has no ReLU; the circle needs K ≥ 3).", fontsize=8)
    return fig


@dataclasses.dataclass
class HessianConfig:
    K: int = option(10, "classes (the issue's trial K = 10)")
    Ls: tuple[int, ...] = option((1, 2, 3, 4), "numbers of weight matrices L, one curve each")
    d: int = option(0, "width (0: d = K)")
    n_lam: int = option(40, "λ values per L, log-spaced from λ_max(K, L) down to lam_min")
    lam_min: float = option(1e-4, "smallest λ")

    def __post_init__(self):
        require(positive_int("K", self.K) >= 2, f"K must be >= 2, got {self.K}")
        for L in self.Ls:
            positive_int("L", L)
        require(self.d == 0 or positive_int("d", self.d) >= self.K,
                f"width d = {self.d} is smaller than the number of classes K = {self.K}; "
                "the DUFM needs d >= K")
        require(positive_int("n_lam", self.n_lam) >= 2, f"n_lam must be >= 2, got {self.n_lam}")
        require(np.isfinite(self.lam_min) and self.lam_min > 0,
                f"lam_min must be > 0, got {float(self.lam_min):g}")


def hessian_curve(K, L, d, lams, bar):
    """Per λ: the large root α, min free eigenvalue, negative count (numerical and predicted)."""
    out = {"lam": [], "alpha": [], "min_free": [], "n_negative": [], "predicted_negative": [],
           "null_dimension": [], "orbit_dimension": []}
    for lam in lams:
        params, alpha = hessian.dnc_critical_point(K, L, lam, d)
        spec = hessian.spectrum(params, lam=lam)
        for key, val in (("lam", lam), ("alpha", alpha), ("min_free", spec.min_free),
                         ("n_negative", spec.n_negative), ("predicted_negative",
                                                            hessian.dnc_negative_count(K, L, alpha)),
                         ("null_dimension", spec.null_dimension), ("orbit_dimension", spec.orbit_dimension)):
            out[key].append(float(val) if isinstance(val, float) else val)
        bar.update(1)
    return out


def run_hessian(config: HessianConfig, ctx) -> dict:
    """Spectra at the DNC critical points over λ for each L; draws dufm-hessian.png/.json."""
    t0 = time.perf_counter()
    K, d = config.K, config.d or config.K
    curves = {}
    with progress.bar(len(config.Ls) * config.n_lam, "dufm-hessian", enabled=ctx.progress) as bar:
        for L in config.Ls:
            lam_max, _ = theory.dnc_lambda_max(K, L)
            lams = np.geomspace(lam_max * (1 - 1e-4), min(config.lam_min, lam_max / 2), config.n_lam)
            a_c, lam_c = hessian.dnc_minimum_threshold(K, L)
            curves[L] = {"lam_max": lam_max, "alpha_c": a_c, "lam_c": lam_c,
                         **hessian_curve(K, L, d, lams, bar)}
    agree = all(c["n_negative"] == c["predicted_negative"] for c in curves.values())
    summary = {"figure": "dufm-hessian", "config": dataclasses.asdict(config), "seed": None, "d": d,
               "curves": {str(L): c for L, c in curves.items()}, "counts_match_prediction": agree,
               "lam_c": {str(L): c["lam_c"] for L, c in curves.items()}}
    fig = draw_hessian(K, d, curves)
    summary["wall_seconds"] = time.perf_counter() - t0
    plotting.save_figure(ctx.out_dir, "dufm-hessian", fig, summary)
    lc = ", ".join(f"L={L}: {c['lam_c']:.4g}" for L, c in curves.items())
    ctx.emit(f"dufm-hessian: K = {K}, d = {d}; DNC is a local minimum iff λ <= λ_c ({lc}); negative counts "
             f"{'match' if agree else 'DO NOT match'} the reduced analysis  -> "
             f"{ctx.out_dir / 'dufm-hessian.png'}",
             summary)
    return summary


def draw_hessian(K, d, curves):
    fig, (ax, bx) = plotting.subplots(2, width=6.2, height=4.8)
    colors = plotting.CONCEPT_COLORS
    for i, (L, c) in enumerate(curves.items()):
        col = colors[i % len(colors)]
        lam = np.array(c["lam"])
        ax.plot(lam, np.array(c["min_free"]) / lam, "o-", ms=3, color=col, label=f"L = {L}")
        bx.step(lam, c["n_negative"], where="mid", color=col, label=f"L = {L} (Hessian)")
        bx.plot(lam, c["predicted_negative"], "x", ms=4, color=col)
        if L > 1:
            for a in (ax, bx):
                a.axvline(c["lam_c"], color=col, ls="--", lw=1)
    ax.axhline(0, color="k", lw=0.8)
    bx.axhline(K * (K - 3) / 2, color="grey", lw=0.8, ls=":")
    bx.text(min(min(c["lam"]) for c in curves.values()), K * (K - 3) / 2,
            f" K(K−3)/2 = {K * (K - 3) // 2}", fontsize=8, va="bottom", color="grey")
    for a in (ax, bx):
        a.set_xscale("log")
        a.set_xlabel("λ")
        a.legend(fontsize=8)
    ax.set_ylabel("smallest non-symmetry Hessian eigenvalue / λ")
    bx.set_ylabel("number of negative eigenvalues (x: reduced-loss prediction)")
    ax.set_title(f"Theorem 4 at the large root of eq. (10), K = {K}, d = {d}\n"
                 f"dashed: λ_c where α = K(L−1)/(L+1); local minimum iff λ ≤ λ_c", fontsize=9)
    bx.set_title("saddle for λ_c < λ < λ_max: K(K−3)/2 directions (K−1 more right at λ_max)", fontsize=9)
    return fig


SPECS = [Spec("dufm-thresholds", ThresholdsConfig, run_thresholds,
              "DUFM: where low-rank structures beat DNC (Theorems 1, 6 and the rank-2 circle) over K × L"),
         Spec("dufm-hessian", HessianConfig, run_hessian,
              "DUFM Theorem 4: Hessian at the DNC critical point vs λ, exact local-minimum threshold")]
