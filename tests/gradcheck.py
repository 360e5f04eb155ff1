"""Central-difference gradient checks along random directions (HIPS/autograd's test_util style)."""

import numpy as np


def directional_check(f, params, grads, rng, *, h=1e-6, n_dirs=3, rtol=1e-6, atol=1e-9):
    """Compare (f(θ+hv) − f(θ−hv)) / 2h with ⟨∇f(θ), v⟩ for random unit directions v.

    f takes a list of arrays; params and grads are lists of arrays of the same shapes.
    Returns the list of (numerical, analytic) pairs; raises AssertionError with both values on mismatch.
    """
    pairs = []
    for _ in range(n_dirs):
        dirs = [rng.standard_normal(p.shape) for p in params]
        norm = np.sqrt(sum(float(np.vdot(v, v)) for v in dirs))
        dirs = [v / norm for v in dirs]
        plus = f([p + h * v for p, v in zip(params, dirs, strict=True)])
        minus = f([p - h * v for p, v in zip(params, dirs, strict=True)])
        numerical = (plus - minus) / (2 * h)
        analytic = sum(float(np.vdot(g, v)) for g, v in zip(grads, dirs, strict=True))
        assert abs(numerical - analytic) <= atol + rtol * abs(numerical), \
            f"directional derivative: finite differences {numerical!r} vs gradient {analytic!r}"
        pairs.append((numerical, analytic))
    return pairs
