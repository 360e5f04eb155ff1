"""refimpl.blas: both BLAS (MKL when installed, OpenBLAS always) against NumPy's @ and against each other, for
every transpose and memory layout, alpha/beta, odd and degenerate shapes; the choice of BLAS by
REFIMPL_BLAS; bad calls refused before BLAS sees them.

Tolerances, relative to the largest |entry| of the float64 result |α|·|op(a)|·|op(b)| + |β|·|c| (so that
cancellation in one entry is judged at the scale of the sums): float64 1e-12. float32 5e-6: a dot
product of k terms rounded in float32 is off by at most ~k·2⁻²⁴ ≈ k·6e-8 relative to that scale in the worst
case, ~√k·6e-8 for random signs; with k ≤ 67 here that is ≤ 4e-6 in the worst case, and BLAS's blocked
sums (and FMAs) are no worse than the naive order.
"""

import itertools

import numpy as np
import pytest

from refimpl import blas
from refimpl.errors import InputError

TOL = {np.float64: 1e-12, np.float32: 5e-6}
NAMES = [pytest.param("openblas"),
         pytest.param("mkl", marks=pytest.mark.skipif(
             "mkl" not in blas.available(),
             reason="MKL is not installed (pip install -e '.[mkl]'; the test extra includes it)"))]
# (m, n, k): odd sizes, a GEMV-like and an outer-product-like case, one-element and empty ones.
SHAPES = [(7, 5, 3), (13, 1, 67), (1, 9, 1), (1, 1, 1), (33, 17, 65), (4, 3, 0), (0, 3, 2), (3, 0, 2)]
LAYOUTS = list(itertools.product("CF", repeat=3))


def _operands(rng, dtype, m, n, k, trans_a, trans_b, layouts):
    oa, ob, oc = layouts
    a = np.array(rng.standard_normal((k, m) if trans_a else (m, k)), dtype, order=oa)
    b = np.array(rng.standard_normal((n, k) if trans_b else (k, n)), dtype, order=ob)
    c = np.array(rng.standard_normal((m, n)), dtype, order=oc)
    return a, b, c


def _want(alpha, a, b, beta, c, trans_a, trans_b):
    """(α·op(a)·op(b) + β·c, its scale) in float64 with NumPy's @."""
    opa = (a.T if trans_a else a).astype(np.float64)
    opb = (b.T if trans_b else b).astype(np.float64)
    want = alpha * (opa @ opb) + beta * c.astype(np.float64)
    scale = abs(alpha) * (np.abs(opa) @ np.abs(opb)) + abs(beta) * np.abs(c.astype(np.float64))
    return want, max(float(np.max(scale, initial=0.0)), 1e-300)


def _check(got, want, scale, tol, what):
    err = float(np.max(np.abs(got.astype(np.float64) - want), initial=0.0)) / scale
    assert err <= tol, f"{what}: max |got − want| / scale = {err:.2e} > {tol:.0e}"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans_a, trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in SHAPES])
@pytest.mark.parametrize("alpha, beta", [(1.0, 0.0), (-0.7, 1.0), (2.5, -1.3)])
def test_gemm_matches_numpy_in_place_for_every_layout(name, dtype, trans_a, trans_b, shape, alpha, beta, rng):
    gemm = blas.load(name).gemm
    for layouts in LAYOUTS:
        a, b, c = _operands(rng, dtype, *shape, trans_a, trans_b, layouts)
        want, scale = _want(alpha, a, b, beta, c, trans_a, trans_b)
        if beta == 0.0:
            c[...] = np.nan                                    # beta = 0: c's old content is never read
        pointer = c.ctypes.data
        out = gemm(alpha, a, b, beta, c, trans_a, trans_b)
        assert out is c and c.ctypes.data == pointer and c.dtype == dtype
        _check(c, want, scale, TOL[dtype], f"{name} {np.dtype(dtype)} layouts {''.join(layouts)}")


@pytest.mark.skipif("mkl" not in blas.available(), reason="MKL is not installed: nothing to compare")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("trans_a, trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("shape", SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in SHAPES])
def test_mkl_and_openblas_agree(dtype, trans_a, trans_b, shape, rng):
    """Same operands on both: each is within TOL of the exact result, so they are within 2·TOL of each
    other (at the scale of the sums)."""
    for layouts in LAYOUTS:
        a, b, c = _operands(rng, dtype, *shape, trans_a, trans_b, layouts)
        _, scale = _want(-0.7, a, b, 1.0, c, trans_a, trans_b)
        got = {name: blas.load(name).gemm(-0.7, a, b, 1.0, c.copy(order="K"), trans_a, trans_b)
               for name in ("mkl", "openblas")}
        _check(got["mkl"], got["openblas"].astype(np.float64), scale, 2 * TOL[dtype],
               f"mkl vs openblas, {np.dtype(dtype)} layouts {''.join(layouts)}")


def test_active_follows_the_environment(monkeypatch):
    monkeypatch.setattr(blas, "_ACTIVE", [])
    monkeypatch.setenv(blas.ENV, "openblas")
    assert blas.active().name == "openblas" and blas.active() is blas.load("openblas")
    assert "openblas" in blas.active().describe()
    monkeypatch.setattr(blas, "_ACTIVE", [])
    monkeypatch.delenv(blas.ENV)
    assert blas.active().name == ("mkl" if "mkl" in blas.available() else "openblas")
    monkeypatch.setattr(blas, "_ACTIVE", [])
    monkeypatch.setenv(blas.ENV, "atlas")
    with pytest.raises(InputError, match="REFIMPL_BLAS='atlas'"):
        blas.active()


def test_asking_for_mkl_without_it_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(blas, "_LOADED", {})
    monkeypatch.setattr(blas, "_mkl_library", lambda: None)
    with pytest.raises(InputError, match="MKL is not installed"):
        blas.load("mkl")
    assert blas.available() == ("openblas",)


@pytest.mark.parametrize("name", NAMES)
def test_bad_calls_are_refused_before_blas_sees_them(name):
    gemm = blas.load(name).gemm
    a, b = np.ones((3, 4)), np.ones((4, 2))
    with pytest.raises(ValueError, match="shapes disagree"):
        gemm(1.0, a, b, 0.0, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="one dtype"):
        gemm(1.0, a, b.astype(np.float32), 0.0, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="one dtype"):
        gemm(1.0, a.astype(int), b.astype(int), 0, np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="contiguous"):
        gemm(1.0, np.ones((3, 8))[:, ::2], b, 0.0, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="contiguous"):
        gemm(1.0, a, b, 0.0, np.zeros((3, 4))[:, ::2])
    with pytest.raises(ValueError, match="overlap"):
        c = np.zeros((4, 4))
        gemm(1.0, c, c, 0.0, c)
    readonly = np.zeros((3, 2))
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        gemm(1.0, a, b, 0.0, readonly)


@pytest.mark.parametrize("layouts", LAYOUTS, ids=["".join(lay) for lay in LAYOUTS])
def test_openblas_is_handed_fortran_ordered_operands_only(layouts, monkeypatch, rng):
    """SciPy's wrapper copies any operand that is not Fortran-ordered (and returns a new c): the seam must
    hand it transposed views instead, whatever the layouts."""
    seen, real = [], blas._SCIPY_GEMM[np.dtype(np.float64)]

    def spy(alpha, a, b, beta=0.0, c=None, overwrite_c=0, trans_a=0, trans_b=0):
        seen.append((a.flags.f_contiguous, b.flags.f_contiguous, c.flags.f_contiguous, overwrite_c))
        return real(alpha, a, b, beta=beta, c=c, overwrite_c=overwrite_c, trans_a=trans_a, trans_b=trans_b)

    monkeypatch.setitem(blas._SCIPY_GEMM, np.dtype(np.float64), spy)
    a, b, c = _operands(rng, np.float64, 6, 5, 4, False, True, layouts)
    want, scale = _want(1.5, a, b, 0.5, c, False, True)
    blas.load("openblas").gemm(1.5, a, b, 0.5, c, False, True)
    assert seen == [(True, True, True, 1)]
    _check(c, want, scale, TOL[np.float64], "through the spy")
