"""`reproduce`: stored runs reused, in-process and Dask runs identical, the report's verdicts, strict JSON."""

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from refimpl import report
from refimpl.cli import main
from refimpl.runstore import RunStore

NAMES = ["fig1", "fig4c", "theorem2-norms", "dufm-prevalence", "dufm-rank", "verify", "predict"]


def strict_json(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _reproduce(tmp_path, *extra):
    args = ["reproduce", *NAMES, "--quick", "--runs", str(tmp_path / "store"), "--report",
            str(tmp_path / "report.md"), "--json", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                                           # runs/quick/ lands here
    return tmp_path


def _records(store_dir):
    store = RunStore(store_dir)
    return {k: store.get(k).record for k in store}


def test_a_rerun_reuses_every_run_and_writes_the_same_files(in_tmp):
    first = _reproduce(in_tmp, "--seeds", "2")
    files = {p: p.read_bytes() for p in sorted((in_tmp / "runs" / "quick").glob("*.json"))}
    second = _reproduce(in_tmp, "--seeds", "2")
    assert first["ran"] > 0 and second["ran"] == 0 and second["reused"] == first["ran"]
    assert files == {p: p.read_bytes() for p in sorted((in_tmp / "runs" / "quick").glob("*.json"))}
    assert not (in_tmp / "figures").exists()                             # --quick never writes figures/


def test_every_json_written_is_strict_and_the_report_has_seed_statistics(in_tmp):
    _reproduce(in_tmp, "--seeds", "3")
    for path in list((in_tmp / "runs" / "quick").glob("*.json")) + list((in_tmp / "store").glob("*.json")):
        strict_json(path.read_text())
    text = (in_tmp / "report.md").read_text()
    assert "## Seeds" in text and "3 seeds" in text and " ± " in text
    seeds = strict_json((in_tmp / "runs" / "quick" / "seeds.json").read_text())
    assert seeds["figures"]["fig4c"]["test accuracy"]["n"] == 3


def _close(a, b, path="record"):
    """Equal structure and flags, numbers equal to 1e-12 (relative, or absolute below 1)."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert abs(a - b) <= 1e-12 * max(1.0, abs(a)), f"{path}: {a!r} vs {b!r}"
    else:
        assert a == b, path


def test_local_dask_cluster_gives_the_records_of_the_in_process_run(in_tmp):
    """Every training record is bit-identical. The theorem checks' claims are sums taken by BLAS, whose
    thread count differs (two here, one per worker): their values agree to rounding, verdicts exactly."""
    pytest.importorskip("distributed")
    _reproduce(in_tmp / "a")
    _reproduce(in_tmp / "b", "--scheduler", "local", "--workers", "2")
    here, there = _records(in_tmp / "a" / "store"), _records(in_tmp / "b" / "store")
    assert here.keys() == there.keys()
    for key in here:
        if "checks" in here[key]:
            _close(here[key], there[key])
        else:
            assert here[key] == there[key]


def test_an_interrupted_reproduce_resumes_with_the_remaining_runs(in_tmp, monkeypatch):
    from refimpl.feature_collapse import experiment
    real, calls = experiment.train_and_measure, []

    def interrupted(name, settings):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(name, settings)

    monkeypatch.setattr(experiment, "train_and_measure", interrupted)
    args = ["reproduce", "fig4c", "--quick", "--seeds", "3", "--runs", str(in_tmp / "store"), "--report",
            str(in_tmp / "r.md")]
    assert CliRunner().invoke(main, args).exit_code == 130
    monkeypatch.setattr(experiment, "train_and_measure", real)
    assert len(list(RunStore(in_tmp / "store"))) == 1                    # the first run was stored
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ran"] == 2 and summary["reused"] == 1


def test_verdicts_agree_and_differ_on_planted_numbers():
    row = next(r for r in report.PUBLISHED if r.run == "fig4b")           # test accuracy 45% ± 3 points
    good = report.compare({"fig4b": [{"test_accuracy": 0.46}, {"test_accuracy": 0.44}]})
    bad = report.compare({"fig4b": [{"test_accuracy": 0.30}]})
    assert row.paper == 0.45
    assert [r["verdict"] for r in good] == ["agree"] and [r["verdict"] for r in bad] == ["differ"]
    assert math.isclose(good[0]["ours"]["mean"], 0.45) and good[0]["ours"]["n"] == 2
    rel = next(r for r in report.PUBLISHED if r.relative)                 # σ1 of figure 3 within 5%
    assert report.agrees(rel, rel.paper * 1.049) and not report.agrees(rel, rel.paper * 1.051)


def test_every_committed_json_is_strict():
    """The committed figures' records and seeds table, as a strict parser reads them."""
    root = Path(__file__).resolve().parents[1] / "figures"
    paths = sorted(root.glob("*.json"))
    assert paths, f"no JSON in {root}"
    for path in paths:
        strict_json(path.read_text())


def test_the_report_tabulates_the_prevalence_cells():
    cells = [{"lam": lam, "lr": lr, "d": d, "dnc": dnc, "runs": 16}
             for (lam, lr, d, dnc) in [(1e-4, 0.1, 10, 0), (1e-4, 0.1, 80, 16), (1e-3, 1.0, 10, 2)]]
    text = "\n".join(report.extra_sections({"dufm-prevalence": cells}))
    assert "| λ | lr | d = 10 | d = 80 |" in text
    assert "| 0.0001 | 0.1 | 0 | 16 |" in text and "| 0.001 | 1 | 2 | — |" in text
    assert "of 16 per cell" in text
