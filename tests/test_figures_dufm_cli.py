"""Bad input to the DUFM figures on the command line: one ``Error:`` line on stderr, a non-zero exit,
no traceback, nothing written, and no training started (the configs validate before any run)."""

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from refimpl.dufm import train

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

BAD = [
    (["dufm-rank", "--d", "3"], "width d = 3 is smaller than the number of classes K = 10"),
    (["dufm-rank", "--Ls", "0"], "Ls must be a positive integer, got 0"),     # dufm-rank's depths are --Ls
    (["dufm-rank", "--Ls", "1,2,0"], "Ls must be a positive integer, got 0"),
    (["dufm-rank", "--lam", "-1"], "lam must be a finite number > 0, got -1"),
    (["dufm-rank", "--lam", "0"], "lam must be a finite number > 0"),
    (["dufm-rank", "--K", "2", "--d", "4"], "K must be >= 3 (the circle optimum needs K >= 3), got 2"),
    (["dufm-prevalence", "--L", "0"], "L must be a positive integer, got 0"),
    (["dufm-prevalence", "--K", "2", "--ds", "4"], "K must be >= 3 (the circle optimum needs K >= 3), got 2"),
    (["dufm-prevalence", "--ds", "20,5"], "width d = 5 is smaller than the number of classes K = 10"),
    (["dufm-prevalence", "--lams", "1e-3,-1e-4"], "lams must be a finite number > 0"),
    (["dufm-relu", "--Ls", "1,2"], "Ls must be >= 2 (no ReLU layer when L = 1), got 1"),
    (["dufm-relu", "--lr", "-1"], "lr must be a finite number > 0, got -1"),
    (["dufm-relu", "--Ls", "2,2"], "Ls has repeated values: (2, 2)"),
    (["dufm-rank", "--steps", "-5"], "steps must be an integer >= 0, got -5"),
]


@pytest.mark.parametrize("args, message", BAD)
def test_bad_dufm_figure_input_is_one_error_line_before_training(args, message, tmp_path, monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("training started before the input was validated")

    monkeypatch.setattr(train, "train_seeds", no_training)
    monkeypatch.setattr(train, "gradient_descent", no_training)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.main, ["figure", *args, "--out", str(out), "--quiet"])
    assert result.exit_code == 2, (result.output, result.exception)   # a bad argument: usage error
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert not out.exists() or not any(out.iterdir())


def test_bad_dufm_figure_input_in_a_subprocess(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "figure", "dufm-prevalence", "--L", "0",
                           "--out", str(out)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "Error: L must be a positive integer, got 0" and proc.stdout == ""
    assert not out.exists()
