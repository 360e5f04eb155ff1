"""The command line: a tiny figure end to end, and bad input as a one-line error with nothing written."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

TINY = ["--nw", "30", "--K", "20", "--L", "4", "--d", "8", "--epochs", "3", "--test-every", "1"]


def test_tiny_figure_end_to_end_in_a_subprocess(tmp_path):
    out = tmp_path / "figs"
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "figure", "fig4c", *TINY, "--out", str(out),
                           "--quiet"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "fig4c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "fig4c.json").read_text())
    assert summary["config"]["nw"] == 30 and summary["config"]["layernorm"] is True
    assert summary["epochs"] == 3 and summary["seed"] == 0 and summary["backend"] == "numba"
    for key in ("train_accuracy", "test_accuracy"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["test_accuracy"] == summary["history"][-1]["test_accuracy"]
    assert len(summary["sigma_words"]) == 3 and summary["sigma_words"][0] >= summary["sigma_words"][2]
    assert summary["wall_seconds"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["fig4c.json", "fig4c.png"]


def _invoke(args, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.main, [*args[:2], *args[2:], "--out", str(out)] if args[0] == "figure"
                                else args)
    return result, out


@pytest.mark.parametrize("args, message", [
    (["figure", "fig4c", "--nw", "31"], "nw = 31 is not divisible by nc = 3"),
    (["figure", "fig3", "--K", "0"], "K must be a positive integer, got 0"),
    (["figure", "fig3", "--d", "-4"], "d must be a positive integer, got -4"),
    (["figure", "fig4b", "--L", "2", "--K", "10"], "K = 10 exceeds nc^L = 9"),
    (["figure", "fig4c", "--resume", "--checkpoint", "/nonexistent/ckpt.npz"], "cannot read checkpoint"),
])
def test_bad_input_is_one_line_nonzero_exit_nothing_written(args, message, tmp_path):
    result, out = _invoke([*args, *TINY[-4:]], tmp_path)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert lines == [f"Error: {lines[0][len('Error: '):]}"] and message in lines[0], result.output
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_unknown_figure_name(tmp_path):
    result = CliRunner().invoke(cli.main, ["figure", "fig9"])
    assert result.exit_code != 0
    assert result.output.strip() == "Error: unknown figure 'fig9'; choose from: " + ", ".join(
        cli.registry.figures())


def test_unreadable_checkpoint_in_a_subprocess_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("garbage")
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "figure", "fig4c", *TINY, "--out",
                           str(tmp_path / "out"), "--checkpoint", str(bad), "--resume"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"Error: cannot read checkpoint {bad}")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
