import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh seeded Generator per test: tests never touch NumPy's legacy global state."""
    return np.random.default_rng(12345)
