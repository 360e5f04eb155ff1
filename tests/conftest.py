import sys
from pathlib import Path

import numpy as np
import pytest

# Test helpers (gradcheck) and the command line (cli.py) are importable from every test directory.
ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture
def rng():
    """A fresh seeded Generator per test: tests never touch NumPy's legacy global state."""
    return np.random.default_rng(12345)
