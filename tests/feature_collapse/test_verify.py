"""`verify theorem1|theorem2|theorem3|all`, `predict`, the theorem2-norms figure and `bench exact`."""

import dataclasses
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from refimpl.feature_collapse import claims, collapse, data, predict, verify
from refimpl.figures import theorem2_norms as fig_theorem2
from refimpl.registry import Context

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

QUIET = Context(progress=False, json=True)
FAST = {"starts": 1, "perturbations": 8}

# Three instances per theorem: different nc, sc, L, d, µ.
T1 = [dict(nc=3, sc=2, L=3, d=8), dict(nc=2, sc=3, L=4, d=7), dict(nc=4, sc=2, L=2, d=9, lam=0.001)]
T2 = [dict(nc=3, sc=3, L=3, d=4), dict(nc=2, sc=4, L=3, d=2, freq="random"),
      dict(nc=4, sc=3, L=2, d=5, freq="0.6,0.3,0.1", lam=0.02)]
T3 = [dict(nc=3, sc=3, L=3, d=4), dict(nc=2, sc=4, L=3, d=5, freq="random", lam=0.001),
      dict(nc=4, sc=2, L=2, d=4, freq="uniform")]


def _claims(capsys):
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return {c["claim"]: c for rec in out for c in rec["claims"]}


@pytest.mark.parametrize("kw", T1)
def test_theorem1_check_passes(kw, capsys):
    assert verify.check_theorem1(verify.Theorem1Config(**kw, **FAST), QUIET)
    assert all(c["ok"] for c in _claims(capsys).values())


@pytest.mark.parametrize("kw", T2)
def test_theorem2_check_passes(kw, capsys):
    assert verify.check_theorem2(verify.Theorem2Config(**kw, starts=0), QUIET)


@pytest.mark.parametrize("kw", T3)
def test_theorem3_check_passes(kw, capsys):
    assert verify.check_theorem3(verify.Theorem3Config(**kw, **FAST), QUIET)


@pytest.mark.parametrize("check,config", [
    (verify.check_theorem1, verify.Theorem1Config(**T1[1], **FAST, perturb=1e-3)),
    (verify.check_theorem2, verify.Theorem2Config(**T2[0], starts=0, perturb=1e-3)),
    (verify.check_theorem3, verify.Theorem3Config(**T3[0], **FAST, perturb=-1e-3)),
])
def test_checks_fail_when_a_constant_is_perturbed(check, config, capsys):
    assert not check(config, QUIET)
    claims = _claims(capsys)
    failed = [name for name, c in claims.items() if not c["ok"]]
    assert any("gradient norm" in name for name in failed), claims


def test_theorem2_with_uniform_mu_finds_the_type1_configuration_critical(capsys):
    assert verify.check_theorem2(verify.Theorem2Config(freq="uniform", starts=0), QUIET)
    assert any(name.startswith("µ uniform: the best type-I configuration is critical too")
               for name in _claims(capsys))


@pytest.mark.parametrize("lam", [1e-7, 1e-8])
@pytest.mark.parametrize("freq", ["zipf", "uniform"])
def test_theorem2_claims_do_not_depend_on_the_scale_of_lambda(lam, freq, capsys):
    """At λ = 1e-7 and 1e-8 the gradients are ~λ‖θ‖ ≈ 1e-6..1e-7: claims relative to λ‖θ‖ still pass, and
    a perturbed constant still fails (an absolute threshold of 1e-6 failed the first, passed the second)."""
    config = verify.Theorem2Config(lam=lam, freq=freq, starts=0)
    assert verify.check_theorem2(config, QUIET), _claims(capsys)
    capsys.readouterr()
    assert not verify.check_theorem2(dataclasses.replace(config, perturb=1e-3), QUIET)
    failed = [c for c in _claims(capsys).values() if not c["ok"]]
    assert any("type-III configuration" in c["claim"] and c["value"] > 1e-3 for c in failed), failed


@pytest.mark.parametrize("check,config", [
    (verify.check_theorem1, verify.Theorem1Config(lam=1e-8, **FAST)),
    (verify.check_theorem3, verify.Theorem3Config(lam=1e-7, **FAST)),
])
def test_minimum_checks_pass_at_small_lambda_and_fail_perturbed(check, config, capsys):
    assert check(config, QUIET), _claims(capsys)
    capsys.readouterr()
    assert not check(dataclasses.replace(config, perturb=1e-3), QUIET)
    failed = {name for name, c in _claims(capsys).items() if not c["ok"]}
    assert any(name.startswith("gradient norm") for name in failed)
    assert any(name.startswith("|R − closed form|") for name in failed)


def test_tolerances_are_relative_with_a_float64_floor():
    assert claims.grad_tolerance(0.01) == claims.GRAD_RTOL
    assert claims.grad_tolerance(1e-8) == pytest.approx(16 * np.finfo(float).eps / 1e-8)
    assert claims.risk_tolerance(1.0, 0.7) == claims.RISK_RTOL
    assert claims.risk_tolerance(1e-6, 2.0) == pytest.approx(256 * np.finfo(float).eps * 2.0 / 1e-6)


@pytest.mark.parametrize("check,config,keys,point", [
    (verify.check_theorem1, verify.Theorem1Config(**T1[0], starts=0, perturbations=0, perturb=0.01),
     {"c": "c_used", "c_prime": "c_prime_used"}, ("R", "grad_norm")),
    (verify.check_theorem3, verify.Theorem3Config(**T3[0], starts=0, perturbations=0, perturb=0.01),
     {"c": "c_used"}, ("R", "grad_norm")),
    (verify.check_theorem2, verify.Theorem2Config(**T2[0], starts=0, perturb=0.01), {"c": "c_used"},
     ("R_type3", "grad_type3")),
])
def test_json_record_has_the_risk_its_gradient_and_the_constants_used(check, config, keys, point, capsys):
    """--perturb 0.01: the record keeps the solver's constants and the (× 1.01) ones the risk was taken at."""
    check(config, QUIET)
    record = json.loads(capsys.readouterr().out)
    for solved, used in keys.items():
        assert record[used] == pytest.approx(1.01 * record[solved], rel=1e-15)
    R, grad = record[point[0]], record[point[1]]
    assert np.isfinite(R) and grad > 0
    assert all(np.isfinite(c["tolerance"]) for c in record["claims"])


def test_verify_all_on_the_command_line_prints_pass_and_exits_zero():
    result = CliRunner().invoke(cli.main, ["verify", "all"])
    assert result.exit_code == 0, result.output
    for name in ("theorem1: PASS", "theorem2: PASS", "theorem3: PASS"):
        assert name in result.output


def test_verify_all_perturbed_fails_every_theorem_and_exits_one():
    args = ["verify", "all", "--perturb", "1e-2", "--starts", "0", "--perturbations", "4"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 1, result.output
    for name in ("theorem1: FAIL", "theorem2: FAIL", "theorem3: FAIL"):
        assert name in result.output


def test_verify_json_and_a_failing_claim_exits_one():
    args = ["verify", "theorem3", "--perturb", "0.01", "--starts", "0", "--json"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 1
    record = json.loads(result.output.strip().splitlines()[-1])
    assert record["check"] == "theorem3" and record["passed"] is False


@pytest.mark.parametrize("args,message", [
    (["theorem2", "--lam", "0.5"], "violates condition (9)"),
    (["theorem3", "--freq", "0.5,0.5,0"], "word frequencies must be positive"),
    (["theorem2", "--freq", "0.5,0.4,0.2"], "word frequencies must sum to 1"),
    (["theorem2", "--freq", "pareto"], "freq must be uniform, zipf, random or p1,p2,..."),
    (["theorem1", "--freq", "zipf"], "Theorem 1 assumes uniform word frequencies"),
    (["theorem3", "--d", "2"], "d >= nc"),
    (["theorem1", "--L", "9"], "sentences: too many for a check"),
    (["theorem1", "--nc", "1"], "nc must be >= 2"),
    (["theorem1", "--seed", "-1"], "seed must be an integer >= 0, got -1"),
    (["all", "--seed", "-1"], "seed must be an integer >= 0, got -1"),
    (["all", "--perturb", "-1"], "perturb must be > -1"),
    (["theorem2", "--lam", "1e-11"], "too small to check in float64"),
])
def test_bad_input_is_a_one_line_error(args, message):
    result = CliRunner().invoke(cli.main, ["verify", *args])
    assert result.exit_code == (1 if "condition (9)" in message else 2)  # the solver refuses λ: failed work
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output


def test_predict_prints_the_published_norms():
    result = CliRunner().invoke(cli.main, ["predict"])
    assert result.exit_code == 0, result.output
    assert "c = 1.42214 (paper: 1.42214)" in result.output and "c = 0.61602 (paper: 0.61602)" in result.output


def _fake_trainer(norm_w, norm_u, seen):
    """A stand-in for sgd.train_preset: type-I-like weights with known norms."""
    def train_preset(name, progress=False, log=None, **overrides):
        seen.append((name, overrides))
        nc, nw, L, d = 3, 1200, 15, 6
        rng = np.random.default_rng(0)
        Z = data.latent_variables(nc, L, overrides["K"], rng)
        F = collapse.equiangular_frame(nc, d, rng)
        W, U = collapse.type1_configuration(F, Z, nw // nc, 1.0, norm_u)
        W = W * np.tile([norm_w - 0.1, norm_w + 0.1], nw // 2)           # mean norm_w, std 0.1
        task = types.SimpleNamespace(Z=Z, nc=nc, sc=nw // nc, K=len(Z), L=L)
        return task, types.SimpleNamespace(W=W, U=U, train_accuracy=1.0, test_accuracy=0.9, seconds=1.0)
    return train_preset


def test_predict_train_reports_the_trained_norms(monkeypatch, capsys):
    from refimpl.feature_collapse import sgd as fc
    seen = []
    monkeypatch.setattr(fc, "train_preset", _fake_trainer(1.4, 0.4, seen))
    records = predict.run(predict.PredictConfig(train=True, epochs=7), QUIET)
    assert [s for s in seen] == [("fig3", {"K": 1000, "n_spl": 5, "seed": 0, "epochs": 7}),
                                 ("fig3", {"K": 50, "n_spl": 100, "seed": 0, "epochs": 7})]
    obs = records[0]["observed"]
    assert obs["word_norm_mean"] == pytest.approx(1.4) and obs["word_norm_std"] == pytest.approx(0.1)
    assert obs["u_norm_mean"] == pytest.approx(0.4) and obs["u_norm_std"] == pytest.approx(0.0, abs=1e-12)
    assert round(records[1]["word_norm"], 5) == 0.61602


def test_theorem2_figure_recovers_the_scales_of_relation_7(monkeypatch, tmp_path):
    """Word norms r_β on a grid, and frequencies from relation (7) written out (not through the figure's
    solver): µ_β = (λ/L)(r_β/c)(nc − 1 + exp(nc c r_β/(nc − 1))), c = 0.8 (the fit does not need Σµ = 1).
    The fit gives back A = λ/(Lc), B = nc c/(nc − 1) with R² = 1, and the caption finds c consistent."""
    from refimpl.feature_collapse import sgd as fc
    nc, sc, L, d, lam, c = 3, 400, 15, 6, 1e-3, 0.8
    r = np.linspace(3.0, 0.2, sc)                                         # (sc,) decreasing word norms
    mu = lam / L * (r / c) * (nc - 1 + np.exp(nc / (nc - 1) * c * r))   # (sc,) eq. (7) solved for µ_β

    def train_preset(name, progress=False, log=None, **overrides):
        assert name == "fig4a"
        rng = np.random.default_rng(0)
        Z = data.latent_variables(nc, L, 30, rng)
        W, U = collapse.type3_configuration(collapse.equiangular_frame(nc, d, rng), Z, r, c)
        task = types.SimpleNamespace(Z=Z, mu=mu, nc=nc, sc=sc, K=len(Z), L=L)
        return task, types.SimpleNamespace(W=W, U=U, train_accuracy=1.0, test_accuracy=1.0, seconds=1.0)

    monkeypatch.setattr(fc, "train_preset", train_preset)
    ctx = Context(out_dir=tmp_path, progress=False, json=True)
    summary = fig_theorem2.run(fig_theorem2.Theorem2NormsConfig(epochs=1), ctx)
    fit = summary["fit"]
    assert fit["r2"] > 1 - 1e-10
    assert fit["A"] == pytest.approx(lam / (L * c), rel=1e-6) and fit["B"] == pytest.approx(nc * c / (nc - 1),
                                                                                             rel=1e-6)
    assert fit["c_from_A"] == pytest.approx(c, rel=1e-6) and fit["c_from_B"] == pytest.approx(c, rel=1e-6)
    assert summary["u_norm_mean"] == pytest.approx(c)
    assert "K = nc^L = 14,348,907" in summary["caption"] and "fails" in summary["caption"]
    assert "imply consistent values of c (0.800 from A, 0.800 from B" in summary["caption"]
    assert (tmp_path / "theorem2-norms.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "theorem2-norms.json").read_text())["fit"]["r2"] == fit["r2"]


def test_theorem2_caption_reports_inconsistent_scales():
    """The fitted figure's numbers (figures/theorem2-norms.json): c from A, c from B and mean ‖u‖ disagree."""
    fit = {"c_from_A": 0.0937578, "c_from_B": 0.3494487}
    text = fig_theorem2.caption(3, 15, 1000, data.word_frequencies(400, "zipf"), 1e-3, fit, 0.2802740)
    assert "inconsistent values of c (0.094 from A, 0.349 from B; mean ‖u_kl‖ = 0.280" in text
    assert "in shape only" in text and "1.33e-08" in text


def test_bench_exact_checks_then_times():
    result = CliRunner().invoke(cli.main, ["bench", "exact", "--nc", "2", "--sc", "2", "--L", "3", "--d", "3",
                                           "--repeats", "1", "--no-scaling", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[-1])
    assert record["check_passed"] and record["check_max_rel_err"] < 1e-12 and record["sentences"] == 64
