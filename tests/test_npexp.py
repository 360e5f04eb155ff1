"""refimpl.npexp: NumPy's float32 exponential, compiled — the same bits as np.exp where NumPy runs its own
SIMD algorithm (x86-64 with AVX2 and FMA3), within its stated 2.52 ulp of the exact value everywhere."""

import platform

import numba
import numpy as np
import pytest

from refimpl import npexp

try:
    from numpy._core._multiarray_umath import __cpu_features__ as CPU
except ImportError:                                                       # NumPy < 2
    from numpy.core._multiarray_umath import __cpu_features__ as CPU

NUMPY_SIMD_EXP = platform.machine().lower() in ("x86_64", "amd64") and CPU.get("AVX2") and CPU.get("FMA3")

# Every 61st float32 in [−104, 0] (18 million values), and the ties of x·log2 e (x·log2 e rounds to k + ½
# in float32 but is not k + ½ exactly) where a fused multiply-add would round q the other way.
TIES = [-1.0397208, -2.4260151, -3.8123095, -17.675253, -18.3684, -20.447842, -36.39023, -37.083374,
        -41.935406]
EDGES = [0.0, -0.0, -1e-45, -1e-30, -0.5, -87.33, -87.34, -100.0, -103.97208, -103.972084, -103.97209,
         -104.0, -np.inf, np.nan]


def _grid() -> np.ndarray:
    bits = np.arange(0x80000000, 0xC2D00001, 61, dtype=np.uint32)        # −0 … −104, increasing magnitude
    return np.concatenate([bits.view(np.float32), np.array(TIES + EDGES, np.float32)])


def _ours(x: np.ndarray, shift=0.0) -> np.ndarray:
    out = x.copy()
    npexp.exp32_shifted(out, np.float32(shift), np.empty(len(x), np.int32))
    return out


@pytest.mark.skipif(not NUMPY_SIMD_EXP, reason="NumPy runs its own float32 exp only on x86-64 with AVX2+FMA3")
def test_the_bits_are_numpys_on_a_grid_of_the_whole_range_and_at_the_ties():
    x = _grid()
    want, got = np.exp(x), _ours(x)
    bad = np.flatnonzero(want.view(np.uint32) != got.view(np.uint32))
    first = bad[:3]
    assert bad.size == 0, f"{bad.size} differ, e.g. x = {x[first]}: np.exp {want[first]}, ours {got[first]}"


@pytest.mark.skipif(not NUMPY_SIMD_EXP, reason="NumPy runs its own float32 exp only on x86-64 with AVX2+FMA3")
def test_a_shifted_row_is_numpys_exp_of_the_difference(rng):
    row = (40 * rng.standard_normal(4099)).astype(np.float32)            # (4099,) not a multiple of 8
    top = row.max()
    assert np.array_equal(_ours(row, top).view(np.uint32), np.exp(row - top).view(np.uint32))


def test_within_numpys_stated_accuracy_of_the_exact_value():
    """2.52 ulp is NumPy's measured bound for this algorithm; results below the smallest normal are
    compared in absolute terms (their ulp is fixed), NaN stays NaN, −inf and x ≤ −103.972084 give 0."""
    x = _grid()
    got = _ours(x).astype(np.float64)
    exact = np.exp(x.astype(np.float64))
    normal = exact >= np.finfo(np.float32).tiny
    ulp = np.spacing(exact[normal].astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got[normal] - exact[normal]) / ulp) <= 2.52
    assert np.max(np.abs(got[~normal & ~np.isnan(x)] - exact[~normal & ~np.isnan(x)])) <= 2 * 2.0**-149
    assert np.isnan(got[np.isnan(x)]).all()
    assert got[x == -np.inf][0] == 0.0 and got[x == np.float32(-104.0)][0] == 0.0


def test_the_compiled_entry_takes_both_dtypes():
    """exp_shifted (for compiled callers) is exp32_shifted on float32 rows and libm's exp on float64."""

    @numba.njit
    def call(row, shift, scale):
        npexp.exp_shifted(row, shift, scale)

    x32 = np.array([-3.0, -1.0397208, 0.0], np.float32)
    got32, got64 = x32.copy(), x32.astype(np.float64)
    call(got32, np.float32(0.5), np.empty(3, np.int32))
    call(got64, 0.5, np.empty(3, np.int32))
    assert np.array_equal(got32, _ours(x32, 0.5))
    np.testing.assert_allclose(got64, np.exp(x32.astype(np.float64) - 0.5), rtol=1e-15)
