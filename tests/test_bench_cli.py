"""`bench sgd|exact|dufm`: each checks its implementations against the NumPy reference before timing,
prints the documented JSON keys with --json, and exits 1 when a check fails (nothing is timed then)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

TINY = {
    "sgd": ["--nw", "30", "--K", "20", "--L", "4", "--d", "8", "--batch", "10", "--steps", "3",
            "--repeats", "1", "--backends", "numba,numpy", "--dtypes", "float64,float32", "--no-torch"],
    "dufm": ["--runs", "2", "--K", "3", "--d", "4", "--steps", "20", "--numpy-steps", "20", "--check-steps",
             "5", "--repeats", "1", "--no-torch"],
    "exact": ["--nc", "2", "--sc", "2", "--L", "3", "--d", "3", "--repeats", "1", "--no-scaling",
              "--no-targets"],
}
KEYS = {"sgd": {"backend", "dtype", "ms_per_step", "gflops"}, "dufm": {"impl", "runs", "steps", "seconds"},
        "exact": {"numba_seconds", "numpy_seconds", "speedup", "check_passed"}}


def _records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("name", ["sgd", "dufm", "exact"])
def test_bench_json_has_the_documented_keys_and_positive_times(name):
    result = CliRunner().invoke(cli.main, ["bench", name, *TINY[name], "--json"])
    assert result.exit_code == 0, result.output
    records = [r for r in _records(result.output) if KEYS[name] <= r.keys()]
    assert records, result.output
    for r in records:
        times = [r[k] for k in ("ms_per_step", "seconds", "numba_seconds") if k in r]
        assert all(t > 0 for t in times), r


def test_bench_sgd_times_every_backend_and_dtype_asked():
    result = CliRunner().invoke(cli.main, ["bench", "sgd", *TINY["sgd"], "--json"])
    rows = {(r["backend"], r["dtype"]) for r in _records(result.output) if "ms_per_step" in r}
    assert rows == {(b, t) for b in ("numba", "numpy") for t in ("float64", "float32")}
    assert all(r["check_passed"] for r in _records(result.output) if "check_passed" in r)


def test_bench_sgd_reports_the_blas_the_gemms_and_the_ratio_with_its_target():
    """Beside each numba step: its three GEMMs alone, the ratio step / GEMMs (target 1.08 for float32 only,
    met or not), and which BLAS ran."""
    from refimpl import blas

    result = CliRunner().invoke(cli.main, ["bench", "sgd", *TINY["sgd"], "--json"])
    records = _records(result.output)
    assert [r["blas"] for r in records if "library" in r] == [blas.active().name]
    gemms = {r["dtype"]: r for r in records if "gemms_ms" in r}
    assert set(gemms) == {"float64", "float32"} and all(r["gemms_ms"] > 0 for r in gemms.values())
    ratios = {r["dtype"]: r for r in records if r.get("ratio") == "step/gemms"}
    assert set(ratios) == {"float64", "float32"} and all(r["value"] > 0 for r in ratios.values())
    f32 = ratios["float32"]
    assert f32["target"] == 1.08 and f32["met"] == (f32["value"] <= 1.08)
    assert ratios["float64"]["target"] is None and ratios["float64"]["met"] is None
    assert not [r for r in records if r.get("ratio") == "numba/torch"]              # --no-torch


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed (optional)")
def test_bench_sgd_against_torch_has_a_target_only_with_mkl():
    from refimpl import blas

    args = [a if a != "--no-torch" else "--torch" for a in TINY["sgd"]]
    args[args.index("--backends") + 1], args[args.index("--dtypes") + 1] = "numba", "float32"
    result = CliRunner().invoke(cli.main, ["bench", "sgd", *args, "--json"])
    assert result.exit_code == 0, result.output
    [ratio] = [r for r in _records(result.output) if r.get("ratio") == "numba/torch"]
    assert ratio["value"] > 0 and ratio["target"] == (0.80 if blas.active().name == "mkl" else None)


@pytest.mark.parametrize("name, module", [("sgd", "refimpl.bench.sgd"), ("dufm", "refimpl.bench.dufm"),
                                          ("exact", "refimpl.bench.exact")])
def test_a_failed_check_exits_1(name, module, monkeypatch):
    """With a tolerance no implementation can meet, the pre-timing check fails: exit status 1."""
    bench = sys.modules.get(module) or __import__(module, fromlist=["TOLERANCE"])
    tol = bench.TOLERANCE
    monkeypatch.setattr(bench, "TOLERANCE", {k: -1.0 for k in tol} if isinstance(tol, dict) else -1.0)
    result = CliRunner().invoke(cli.main, ["bench", name, *TINY[name]])
    assert result.exit_code == 1, result.output


def test_a_bad_option_value_is_one_error_line_with_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main.main(["figure", "fig4c", "--epochs", "abc"], prog_name="cli.py")
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert err == ["Error: Invalid value for '--epochs': 'abc' is not a valid integer."]


def test_the_scaling_sizes_are_timed_in_turn(monkeypatch):
    """bench exact's scaling rows: each size compiled once, then ROUNDS rounds that run every size in turn,
    untimed (at least one call) and then timed (a ratio of two rows compares calls made under the same
    load), the median per size."""
    from refimpl.bench import exact as bench

    calls = []
    monkeypatch.setattr(bench, "SCALING", ((4, 2, 2), (8, 2, 3)))
    monkeypatch.setattr(bench, "ROUNDS", 3)
    monkeypatch.setattr(bench, "ROUND_SECONDS", 0.0)
    monkeypatch.setattr(bench, "ROUND_WARMUP", 0.0)
    monkeypatch.setattr(bench, "_risk_and_grads", lambda args, ln, backend: calls.append(len(args[2])))
    times = bench._scaling_times(bench.ExactBenchConfig(nc=3))
    assert list(times) == [(4, 2, 2), (8, 2, 3)]
    # each size's compiling call, then three rounds: per size one untimed and one timed call, alternating
    assert calls == [4, 8] + [4, 4, 8, 8] * 3
    assert all(len(t) == 2 and t[0] >= 0 and t[1] >= 0 for t in times.values())
