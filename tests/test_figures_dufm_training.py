"""The training figures dufm-rank, dufm-prevalence and dufm-relu at tiny sizes, written to tmp_path.

Their JSONs are checked against facts computed here independently of the figure code: eq. (10)'s L = 1
root α = log(1/λ − K + 1) and L_DNC(α) written out, the circle of K = 4 being the block LR structure up
to a permutation, the numerical orbit rank of balanced points, the ReLU model's loss at B.7's
parameters, and each run's loss at its own initialization (gradient descent with a small step only
lowers it).
"""

import json

import numpy as np
import pytest
from scipy import optimize

from refimpl import fileio, plotting
from refimpl.dufm import model, orbits, structures
from refimpl.dufm import train as tr
from refimpl.figures import dufm_prevalence, dufm_rank, dufm_relu
from refimpl.registry import Context

PNG = b"\x89PNG\r\n\x1a\n"


def _ctx(tmp_path):
    return Context(out_dir=tmp_path, progress=False, json=True)


def _saved(tmp_path, name):
    assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == [f"{name}.json", f"{name}.png", f"{name}.timing.json"]
    assert "wall_seconds" in json.loads((tmp_path / f"{name}.timing.json").read_text())
    return json.loads((tmp_path / f"{name}.json").read_text())


def ufm_dnc_optimum(K, lam):
    """L = 1: eq. (10)'s single root α = log(1/λ − K + 1) in L_DNC(α) = log(1 + (K−1)e^{−α}) + (K−1)λα."""
    a = np.log(1 / lam - K + 1)
    return np.log1p((K - 1) * np.exp(-a)) + (K - 1) * lam * a


def dnc_optimum(K, L, lam):
    """min_α of B.2's L_DNC(α) = log(1 + (K−1)e^{−α}) + ½(L+1)(K−1)λα^{2/(L+1)}, by a bounded search."""
    f = lambda a: np.log1p((K - 1) * np.exp(-a)) + 0.5 * (L + 1) * (K - 1) * lam * a ** (2 / (L + 1))  # noqa: E731
    return optimize.minimize_scalar(f, bounds=(1e-6, 50), method="bounded", options={"xatol": 1e-10}).fun


def initial_losses(cfg, K, d, L, lam, model_name="linear"):
    return [model.loss(tr.init_params(K, d, L, s, init=cfg.init, gain=cfg.gain), lam=lam, model=model_name)
            for s in range(cfg.seeds)]


def test_run_rank_small(tmp_path):
    cfg = dufm_rank.RankConfig(K=4, d=5, Ls=(1, 3), lam=1e-2, lr=1.0, steps=3000, seeds=2, gain=1.0)
    summary = dufm_rank.run_rank(cfg, _ctx(tmp_path))
    saved = _saved(tmp_path, "dufm-rank")
    assert saved["per_L"] == json.loads(fileio.dumps(summary["per_L"], digits=plotting.FIGURE_DIGITS))
    assert {"figure", "config", "seeds", "rank_tol", "per_L", "trial_ranks"} <= saved.keys()
    assert saved["config"]["Ls"] == [1, 3] and saved["seeds"] == [0, 1] and "timing" not in saved
    for L, info in ((int(k), v) for k, v in saved["per_L"].items()):
        assert info["steps"] == 3000 and len(info["ranks"]) == len(info["loss"]) == 2
        assert info["median_rank"] == np.median(info["ranks"])
        assert np.all(np.array(info["loss"]) < initial_losses(cfg, 4, 5, L, cfg.lam))
        for sv, end, rank in zip(info["sv"], info["ends"], info["ranks"], strict=True):
            assert sv[0] == pytest.approx(1.0) and np.all(np.diff(sv) <= 1e-12)   # s_i / s_1, descending
            assert rank == int(np.sum(np.array(sv) > saved["rank_tol"]))
            assert end != "DNC" or rank == 3
        # K = 4: the circle cos(2π(i−j)/4) is the LR block up to a permutation, so their optima coincide
        assert info["circle_optimum"] == pytest.approx(info["lr_optimum"], rel=1e-9)
    one, three = saved["per_L"]["1"], saved["per_L"]["3"]
    best = ufm_dnc_optimum(4, cfg.lam)
    assert one["dnc_optimum"] == pytest.approx(best, rel=1e-12)
    # L = 1 (the UFM): DNC is the global optimum; every run reaches it from above
    assert one["ends"] == ["DNC", "DNC"]
    assert np.all(np.array(one["loss"]) >= best - 1e-12) and np.allclose(one["loss"], best, rtol=1e-8)
    assert three["lr_optimum"] < three["dnc_optimum"]                       # Theorem 1: K = 4, L = 3
    assert three["lr_optimum"] == pytest.approx(even_lr_optimum(4, 3, cfg.lam), rel=1e-8)
    assert three["ends"] == ["low rank"] * 2 and three["ranks"] == [2, 2]   # both seeds reach the LR block
    assert np.allclose(three["loss"], three["lr_optimum"], rtol=1e-9)


def test_run_prevalence_small(tmp_path):
    K, L = 4, 1
    cfg = dufm_prevalence.PrevalenceConfig(K=K, L=L, ds=(4, 6), lams=(1e-2, 3e-2), lrs=(1.0,), steps=2000,
                                           seeds=3)
    summary = dufm_prevalence.run_prevalence(cfg, _ctx(tmp_path))
    saved = _saved(tmp_path, "dufm-prevalence")
    assert {"figure", "config", "seeds", "cells", "optima", "dnc_counts", "orbit_ratio_r", "orbit_ratio",
            "earlier_dnc_counts_lr1"} <= saved.keys() and "timing" not in saved
    assert len(saved["cells"]) == 4 and summary["dnc_counts"] == saved["dnc_counts"]
    # the file holds the summary at the committed records' 12 significant digits
    assert saved == json.loads(fileio.dumps({k: v for k, v in summary.items() if k != "timing"},
                                            digits=plotting.FIGURE_DIGITS))
    for cell in saved["cells"]:
        share = cell["dnc"] / cell["runs"]
        assert cell["runs"] == 3 and 0.0 <= share <= 1.0
        assert cell["dnc"] == sum(end == "DNC" for end in cell["ends"])
        best = ufm_dnc_optimum(K, cell["lam"])
        assert summary["optima"][str(cell["lam"])]["dnc"] == pytest.approx(best, rel=1e-12)
        # L = 1: DNC is the global optimum; all runs end there, no loss below it
        assert cell["ends"] == ["DNC"] * 3 and np.all(np.array(cell["loss"]) >= best - 1e-12)
    for lam in cfg.lams:
        want = [c["dnc"] for c in saved["cells"] if c["lam"] == lam]
        assert saved["dnc_counts"][f"lam={lam:g} lr=1"] == want
    # R(d) = orbit dimension of DNC / of the block LR (rank r = 2), both from the generators' rank
    r = saved["orbit_ratio_r"]
    assert r == 2
    for d in cfg.ds:
        dims = [orbits.orbit_dimension(structures.balanced_params(2.0 * X(K), L, d,
                                                                  rng=np.random.default_rng(d)))
                for X in (structures.dnc_matrix, structures.lr_matrix)]
        assert summary["orbit_ratio"][str(d)] == pytest.approx(dims[0] / dims[1], rel=1e-12)


def even_lr_optimum(K, L, lam):
    """min_β of B.2's even-K L_LR(β) = log(1 + (K−2)e^{−β} + e^{−2β}) + ½(L+1)λ(K/2)(2β)^{2/(L+1)}."""
    f = lambda b: (np.log1p((K - 2) * np.exp(-b) + np.exp(-2 * b))   # noqa: E731
                   + 0.5 * (L + 1) * lam * (K // 2) * (2 * b) ** (2 / (L + 1)))
    return optimize.minimize_scalar(f, bounds=(1e-6, 50), method="bounded", options={"xatol": 1e-10}).fun


def test_run_prevalence_counts_a_mixed_outcome(tmp_path):
    """K = 4, L = 2, λ = 1e-2 from orthogonal × 1: of 6 seeds 4 end at DNC, 2 at the rank-2 block LR
    optimum; the DNC count is the count of runs classified DNC, and each run sits at its optimum."""
    K, L, lam = 4, 2, 1e-2
    cfg = dufm_prevalence.PrevalenceConfig(K=K, L=L, ds=(4,), lams=(lam,), lrs=(1.0,), steps=2000, seeds=6)
    saved = dufm_prevalence.run_prevalence(cfg, _ctx(tmp_path))
    cell = saved["cells"][0]
    assert saved["dnc_counts"]["lam=0.01 lr=1"] == [cell["ends"].count("DNC")] == [4]
    assert saved["optima"]["0.01"]["lr"] == pytest.approx(even_lr_optimum(K, L, lam), rel=1e-8)
    assert saved["optima"]["0.01"]["dnc"] < saved["optima"]["0.01"]["lr"]   # K = 4, L = 2: DNC still wins
    for end, rank, loss in zip(cell["ends"], cell["ranks"], cell["loss"], strict=True):
        assert (end, rank) in {("DNC", 3), ("low rank", 2)}
        want = saved["optima"]["0.01"]["dnc" if end == "DNC" else "lr"]
        assert loss == pytest.approx(want, rel=1e-9)


def test_run_relu_small(tmp_path):
    K, d = 3, 4
    cfg = dufm_relu.ReluConfig(K=K, d=d, Ls=(2, 3), lam=1e-2, lr=0.5, steps=400, seeds=2)
    dufm_relu.run_relu(cfg, _ctx(tmp_path))
    saved = _saved(tmp_path, "dufm-relu")
    assert {"figure", "config", "seeds", "per_L"} <= saved.keys() and "timing" not in saved
    assert sorted(saved["per_L"]) == ["2", "3"]
    for L, info in ((int(k), v) for k, v in saved["per_L"].items()):
        assert info["steps"] == 400 and len(info["loss"]) == len(info["ends"]) == 2
        # B.7's lower bound is the linear DNC optimum, min over α of L_DNC
        assert info["dnc_lower_bound"] == pytest.approx(dnc_optimum(K, L, cfg.lam), rel=1e-8)
        # the ReLU forward pass at B.7's parameters reproduces the construction's closed-form loss
        assert info["b7_construction_model_loss"] == pytest.approx(info["b7_construction"], rel=1e-10)
        assert np.all(np.array(info["loss"]) < initial_losses(cfg, K, d, L, cfg.lam, "relu"))
