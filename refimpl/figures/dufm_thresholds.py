"""Figure ``dufm-thresholds``: where DNC stops being a global optimum of the DUFM, over K × L.

Relative gaps min_scale L(structure) / min_α L_DNC(α) − 1 for a few λ (tables of shape (len(Ks), len(Ls))),
one row per structure: the block LR of B.2 (Theorem 1), B.7's ReLU construction against the ReLU DNC
lower bound (Theorem 6), and the rank-2 circle (Theorem 3's q = 2).  The theorems' statements and their
proofs' inequalities at equal scales are outlined.  Closed forms: :mod:`refimpl.dufm.structures`,
:mod:`refimpl.dufm.critical` (eq. 10), :mod:`refimpl.dufm.thresholds`.
"""

import dataclasses
import time

import numpy as np
from matplotlib.colors import TwoSlopeNorm

from refimpl import plotting, progress
from refimpl.dufm import thresholds
from refimpl.dufm.critical import optimal_dnc
from refimpl.errors import require
from refimpl.registry import Spec, option
from refimpl.validate import positive_int, positive_numbers


@dataclasses.dataclass
class ThresholdsConfig:
    K_max: int = option(20, "largest number of classes K (K = 2..K_max)")
    L_max: int = option(8, "largest number of weight matrices L (L = 1..L_max)")
    lams: tuple[float, ...] = option((1e-4, 1e-3, 1e-2), "weight decays λ, one column each")

    def __post_init__(self):
        require(positive_int("K_max", self.K_max) >= 3, f"K_max must be >= 3, got {self.K_max}")
        positive_int("L_max", self.L_max)
        positive_numbers("lams", self.lams)


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
        dnc = {lam: np.array([[optimal_dnc(K, L, lam).loss for L in Ls] for K in Ks])
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
    summary["timing"] = {"wall_seconds": time.perf_counter() - t0}
    plotting.save_figure(ctx.out_dir, "dufm-thresholds", fig, summary)
    counts = ", ".join(f"{n}: {summary['beats_dnc_count'][n]}" for n, *_ in ROWS)
    ctx.emit(f"dufm-thresholds: cells (of {len(Ks) * len(Ls)}) where the structure beats DNC, per λ — "
             f"{counts}  -> {ctx.out_dir / 'dufm-thresholds.png'}",
             {k: v for k, v in summary.items() if k != "timing"})
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
    """One heat map of relative gaps per (structure, λ) over K × L, the theorems' regions outlined."""
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


SPECS = [Spec("dufm-thresholds", ThresholdsConfig, run_thresholds,
              "DUFM: where low-rank structures beat DNC (Theorems 1, 6 and the rank-2 circle) over K × L",
              quick=dict(K_max=4, L_max=3, lams=(1e-3,)))]
