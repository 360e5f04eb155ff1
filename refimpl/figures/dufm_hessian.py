"""Figure ``dufm-hessian``: Theorem 4 — is the DNC critical point of eq. (10) a local minimum?

At the large root α of eq. (10) (:mod:`refimpl.dufm.critical`), the smallest Hessian eigenvalue off the
O(d)^L symmetry directions and the number of negative eigenvalues (:func:`refimpl.dufm.hessian.spectrum`,
Hessian (P, P) of B.5), versus λ for several L, beside the exact threshold λ_c (α_c = K(L−1)/(L+1)) and
the negative counts predicted by the reduced loss, both derived in :mod:`refimpl.dufm.hessian`.
"""

import dataclasses
import time

import numpy as np

from refimpl import plotting, progress
from refimpl.dufm import hessian
from refimpl.dufm.critical import dnc_lambda_max
from refimpl.errors import require
from refimpl.registry import Spec, option
from refimpl.validate import positive_int, positive_number, width


@dataclasses.dataclass
class HessianConfig:
    K: int = option(10, "classes")
    Ls: tuple[int, ...] = option((1, 2, 3, 4), "numbers of weight matrices L, one curve each")
    d: int = option(0, "width (0: d = K)")
    n_lam: int = option(40, "λ values per L, log-spaced from λ_max(K, L) down to lam_min")
    lam_min: float = option(1e-4, "smallest λ")

    def __post_init__(self):
        require(positive_int("K", self.K) >= 2, f"K must be >= 2, got {self.K}")
        for L in self.Ls:
            positive_int("L", L)
        if self.d != 0:
            width(self.d, self.K)
        require(positive_int("n_lam", self.n_lam) >= 2, f"n_lam must be >= 2, got {self.n_lam}")
        positive_number("lam_min", self.lam_min)


def hessian_curve(K, L, d, lams, bar) -> dict:
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
            lam_max, _ = dnc_lambda_max(K, L)
            lams = np.geomspace(lam_max * (1 - 1e-4), min(config.lam_min, lam_max / 2), config.n_lam)
            a_c, lam_c = hessian.dnc_minimum_threshold(K, L)
            curves[L] = {"lam_max": lam_max, "alpha_c": a_c, "lam_c": lam_c,
                         **hessian_curve(K, L, d, lams, bar)}
    agree = all(c["n_negative"] == c["predicted_negative"] for c in curves.values())
    summary = {"figure": "dufm-hessian", "config": dataclasses.asdict(config), "seed": None, "d": d,
               "curves": {str(L): c for L, c in curves.items()}, "counts_match_prediction": agree,
               "lam_c": {str(L): c["lam_c"] for L, c in curves.items()}}
    fig = draw_hessian(K, d, curves)
    summary["timing"] = {"wall_seconds": time.perf_counter() - t0}
    plotting.save_figure(ctx.out_dir, "dufm-hessian", fig, summary)
    lc = ", ".join(f"L={L}: {c['lam_c']:.4g}" for L, c in curves.items())
    ctx.emit(f"dufm-hessian: K = {K}, d = {d}; DNC is a local minimum iff λ <= λ_c ({lc}); negative counts "
             f"{'match' if agree else 'DO NOT match'} the reduced analysis  -> "
             f"{ctx.out_dir / 'dufm-hessian.png'}",
             summary)
    return summary


def draw_hessian(K, d, curves):
    """Left: smallest free Hessian eigenvalue / λ versus λ per L; right: the negative counts."""
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


SPECS = [Spec("dufm-hessian", HessianConfig, run_hessian,
              "DUFM Theorem 4: Hessian at the DNC critical point vs λ, exact local-minimum threshold",
              quick=dict(K=4, Ls=(1, 2), n_lam=3))]
