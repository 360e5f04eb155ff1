"""The command line: a tiny figure end to end, where outputs go, and every kind of bad input — one line
``Error: …`` on stderr, the documented exit status, no traceback, nothing written."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from refimpl import registry
from refimpl.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--nw", "30", "--K", "20", "--L", "4", "--d", "8", "--epochs", "3", "--test-every", "1"]


def strict_json(text: str):
    """json.loads that refuses NaN / Infinity (what a strict parser does)."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def test_tiny_figure_end_to_end_in_a_subprocess(tmp_path):
    out = tmp_path / "figs"
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "figure", "fig4c", *TINY, "--out", str(out),
                           "--quiet"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""                                              # --quiet: the result only
    assert (out / "fig4c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = strict_json((out / "fig4c.json").read_text())
    assert summary["config"]["nw"] == 30 and summary["config"]["layernorm"] is True
    assert summary["epochs"] == 3 and summary["seed"] == 0 and summary["backend"] == "numba"
    for key in ("train_accuracy", "test_accuracy"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["test_accuracy"] == summary["history"][-1]["test_accuracy"]
    assert len(summary["sigma_words"]) == 3 and summary["sigma_words"][0] >= summary["sigma_words"][2]
    assert "wall_seconds" not in summary and "timing" not in summary  # machine-dependent: kept apart
    assert strict_json((out / "fig4c.timing.json").read_text())["wall_seconds"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["fig4c.json", "fig4c.png", "fig4c.timing.json"]


def test_a_rerun_with_the_same_seed_writes_identical_files(tmp_path):
    runs = []
    for name in ("a", "b"):
        args = ["figure", "fig4c", *TINY, "--out", str(tmp_path / name), "--quiet"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        runs.append({f: (tmp_path / name / f).read_bytes() for f in ("fig4c.json", "fig4c.png")})
    assert runs[0] == runs[1]


def test_changed_settings_go_to_runs_and_the_paper_settings_to_figures():
    specs = registry.figures()
    for name, spec in specs.items():
        assert registry.default_out_dir(spec, spec.defaults()) == Path("figures"), name
    fig4c = specs["fig4c"]
    changed = fig4c.defaults().__class__(**{**registry.result_settings(fig4c.defaults()), "epochs": 5})
    assert registry.default_out_dir(fig4c, changed) == Path("runs/fig4c")
    ckpt = fig4c.defaults().__class__(**{**registry.result_settings(fig4c.defaults()), "checkpoint": "c.npz"})
    assert registry.default_out_dir(fig4c, ckpt) == Path("figures")      # a checkpoint changes no result


def test_the_default_output_of_changed_settings_is_runs_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["figure", "fig4c", *TINY, "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "runs" / "fig4c").iterdir()) == [
        "fig4c.json", "fig4c.png", "fig4c.timing.json"]
    assert not (tmp_path / "figures").exists()


def _afile(tmp: Path) -> str:
    (tmp / "afile").write_text("x")
    return str(tmp / "afile" / "sub")


def _text_checkpoint(tmp: Path) -> str:
    (tmp / "notes.txt").write_text("not a checkpoint")
    return str(tmp / "notes.txt")


# (arguments, exit status, the start of the one error line); "{tmp}" is the test's directory, callables get it
BAD = [
    ([], 2, "missing command; choose from: bench, figure, predict, reproduce, verify"),
    (["frobnicate"], 2, "No such command 'frobnicate'"),
    (["figure"], 2, "missing figure name; choose from: fig1, fig3"),
    (["figure", "fig9"], 2, "unknown figure 'fig9'; choose from: fig1, fig3"),
    (["figure", "fig4c", "--nw", "31"], 2, "nw = 31 is not divisible by nc = 3"),
    (["figure", "fig3", "--K", "0"], 2, "K must be a positive integer, got 0"),
    (["figure", "fig3", "--d", "-4"], 2, "d must be a positive integer, got -4"),
    (["figure", "fig4b", "--L", "2", "--K", "10"], 2, "K = 10 exceeds nc^L = 9"),
    (["figure", "fig4c", "--epochs", "-1"], 2, "epochs must be an integer >= 0, got -1"),
    (["figure", "fig4c", "--epochs", "abc"], 2, "Invalid value for '--epochs'"),
    (["figure", "fig4c", "--lr", "nan"], 2, "lr must be a finite number"),
    (["figure", "fig4c", "--lam", "-1"], 2, "lam must be a finite number >= 0, got -1"),
    (["figure", "fig4c", "--dtype", "float16"], 2, "Invalid value for '--dtype'"),
    (["figure", "fig4c", "--backend", "cuda"], 2, "Invalid value for '--backend'"),
    (["figure", "fig4c", "--bogus", "3"], 2, "No such option '--bogus'"),
    (["figure", "fig4c", "--resume"], 2, "--resume needs --checkpoint PATH"),
    (["figure", "fig4c", "--resume", "--checkpoint", "{tmp}/none.npz"], 2, "--resume: the checkpoint"),
    (["figure", "fig4c", "--checkpoint", "{tmp}"], 2, "the checkpoint file"),
    (["figure", "fig4c", "--checkpoint-every", "-2"], 2, "checkpoint_every must be an integer >= 0"),
    (["figure", "fig4c", "--out", "/proc/nope"], 2, "cannot write to the output directory (--out) /proc/"),
    (["figure", "fig4c", "--out", _afile], 2, "cannot write to the output directory (--out)"),
    (["figure", "fig4c", "--resume", "--checkpoint", _text_checkpoint], 1, "checkpoint"),
    (["figure", "theorem2-norms", "--epochs", "-1"], 2, "epochs must be >= 0, got -1"),
    (["figure", "dufm-rank", "--d", "5"], 2, "width d = 5 is smaller than the number of classes K = 10"),
    (["figure", "dufm-prevalence", "--lams", "0"], 2, "lams"),
    (["figure", "dufm-prevalence", "--ds", ""], 2, "Invalid value for '--ds'"),
    (["figure", "dufm-relu", "--Ls", "1"], 2, "Ls must be >= 2"),
    (["figure", "dufm-thresholds", "--K-max", "2"], 2, "K_max must be >= 3"),
    (["figure", "dufm-hessian", "--lam-min", "0"], 2, "lam_min"),
    (["verify"], 2, "missing check name; choose from: theorem1"),
    (["verify", "theorem1", "--freq", "zipf"], 2, "Theorem 1 assumes uniform word frequencies"),
    (["verify", "theorem2", "--lam", "-1"], 2, "lam must be"),
    (["verify", "theorem3", "--seed", "-1"], 2, "seed must be an integer >= 0, got -1"),
    (["verify", "all", "--seed", "x"], 2, "Invalid value for '--seed'"),
    (["predict", "--epochs", "-1"], 2, "epochs must be"),
    (["predict", "--settings", "k7"], 2, "Invalid value for '--settings'"),
    (["bench", "frob"], 2, "unknown benchmark 'frob'"),
    (["bench", "sgd", "--steps", "0"], 2, "steps must be a positive integer, got 0"),
    (["bench", "sgd", "--steps", "-1"], 2, "steps must be a positive integer, got -1"),
    (["bench", "sgd", "--dtypes", "float16"], 2, "Invalid value for '--dtypes'"),
    (["bench", "sgd", "--backends", ""], 2, "Invalid value for '--backends'"),
    (["bench", "exact", "--repeats", "0"], 2, "repeats must be a positive integer, got 0"),
    (["bench", "dufm", "--runs", "0"], 2, "runs must be a positive integer, got 0"),
    (["bench", "dufm", "--d", "5"], 2, "width d = 5 is smaller than the number of classes K = 10"),
]


@pytest.mark.parametrize("args, status, message", BAD,
                         ids=[" ".join(map(str, a[0]))[:60] or "none" for a in BAD])
def test_bad_input_is_one_line_with_its_exit_status_and_nothing_written(args, status, message, tmp_path,
                                                                        monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    args = [a(tmp_path) if callable(a) else a.replace("{tmp}", str(tmp_path)) for a in args]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.chdir(work)                                               # default outputs would land here
    result = CliRunner().invoke(main, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == status, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before   # nothing written


def _long_run(out: Path):
    big = ["--nw", "300", "--K", "300", "--L", "8", "--d", "32", "--epochs", "100000"]
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "figure", "fig4c", *big, "--out", str(out),
                             "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig, status, line", [(signal.SIGINT, 130, "Error: interrupted"),
                                               (signal.SIGTERM, 143, "Error: terminated")])
def test_a_signal_ends_a_run_with_its_status_and_leaves_no_file(sig, status, line, tmp_path):
    proc = _long_run(tmp_path / "out")
    time.sleep(4)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert err.strip().splitlines() == [line]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
