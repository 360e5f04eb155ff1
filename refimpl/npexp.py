"""NumPy's float32 exponential, compiled: the same bits as ``np.exp`` on a float32 array, in a loop that
LLVM vectorizes, so that a compiled pass can take exponentials without a NumPy call and without changing
a single result.

    exp32_shifted(row, shift, scale)   row[k] ← exp(row[k] − shift), float32, for row[k] ≤ shift (a softmax's)
    exp_shifted(row, shift, scale)     the same for compiled callers, float32 or float64 (float64: libm's
                                       exp, which is also what np.exp runs on float64 on x86 hosts without
                                       AVX-512, where NumPy has no SIMD float64 exp)

A compiled loop that calls ``np.exp`` on float32 calls libm's ``expf`` once per element, whose results
differ from NumPy's in ~40% of the elements (NumPy's is within 2.52 ulp, libm's correctly rounded but
for rare cases); a trainer that switched from one to the other would train a different model, bit-wise.
So this module repeats NumPy's own algorithm (``simd_exp_FLOAT`` of
numpy/_core/src/umath/loops_exponent_log.dispatch.c.src, its AVX2/FMA3 path), operation for operation:

* x ≤ −103.972084 (below which exp underflows to 0 in float32) gives 0, NaN gives NaN; x ≥ 88.72 never
  occurs here (x ≤ 0);
* q = rint(x·log2 e), x·log2 e rounded to float32 first (NumPy adds and subtracts 1.5·2^23, the same
  rounding to nearest even); written as rint of the product, because LLVM's backend may fuse a multiply
  with the add that follows it, and at the ties the fused rounding differs: −1.0397208·log2 e is
  −1.49999998, −1.5 once rounded, so q = −2 where a fused multiply-add gives −1 (and another last bit);
* y = fma(q, C1, x), y = fma(q, C2, y) (Cody and Waite's two-part −ln 2);
* e^y ≈ P(y)/Q(y), P of degree 5 and Q of degree 2 (NumPy's minimax coefficients), each by Horner's rule
  with fused multiply-adds, then one IEEE division;
* times 2^q by adding q to the exponent bits; for q ≤ −125 (a subnormal result) the bits get −125 and
  the value is then divided by 2^(−125 − q), as NumPy does.

The fused multiply-adds are LLVM's ``llvm.fma`` intrinsic (:func:`fma32`); nothing else is contracted or
reassociated (no fastmath flags), so every operation rounds as NumPy's does. Every float32 in [−104, 0]
(1,120,927,745 values) was compared with ``np.exp`` once, bit for bit (8 s); tests/test_npexp.py compares
every 61st of them, the ties and the edges. float64 needs none of this (``np.exp`` on float64 arrays and a
compiled ``np.exp`` both call libm's ``exp`` on x86 hosts without AVX-512).
"""

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from refimpl import compiled  # noqa: F401  (Numba settings first)

F = np.float32
XMIN = F(-103.97208404541015625)         # exp(x) rounds to 0 at and below this
LOG2E = F(1.442695040888963407359924681001892137)
C1, C2 = F(-6.93145752e-1), F(-1.42860677e-6)   # −ln 2 = C1 + C2 (Cody–Waite)
P0, P1, P2 = F(9.999999999980870924916e-01), F(7.257664613233124478488e-01), F(2.473615434895520810817e-01)
P3, P4, P5 = F(5.114512081637298353406e-02), F(6.757896990527504603057e-03), F(5.082762527590693718096e-04)
Q0, Q1, Q2 = F(1.0), F(-2.742335390411667452936e-01), F(2.159509375685829852307e-02)
NAN = F(np.nan)
MIN_Q = -125                             # smallest q added to the exponent bits directly


@intrinsic
def fma32(typingctx, a, b, c):
    """a·b + c rounded once (float32), LLVM's llvm.fma.f32."""
    if not all(t == types.float32 for t in (a, b, c)):
        return None

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f32, [f32, f32, f32]),
                                            "llvm.fma.f32")
        return builder.call(fn, args)

    return types.float32(types.float32, types.float32, types.float32), codegen


@numba.njit(cache=True, error_model="numpy")
def exp32_shifted(row, shift, scale):
    """row[k] ← exp(row[k] − shift) in place, bit for bit as ``np.exp(row − shift)`` (float32). row (K,)
    float32, row[k] ≤ shift or NaN; shift float32; scale (K,) int32 scratch (2^q's exponent)."""
    bits = row.view(np.int32)                                   # (K,) row's bits
    least = np.int32(0)                                         # the smallest q (< MIN_Q: subnormal results)
    for k in range(row.shape[0]):
        x = row[k] - shift
        nan = x != x
        special = nan | (x <= XMIN)                             # NaN or 0; NumPy computes x = 0 there
        x = F(0) if special else x
        q = np.rint(x * LOG2E)                                  # = (x·log2 e + 1.5·2^23) − 1.5·2^23
        y = fma32(q, C1, x)
        y = fma32(q, C2, y)                                     # x − q·ln 2
        num = fma32(fma32(fma32(fma32(fma32(P5, y, P4), y, P3), y, P2), y, P1), y, P0)
        den = fma32(fma32(Q2, y, Q1), y, Q0)
        p = num / den                                           # e^y
        row[k] = (NAN if nan else F(0)) if special else p
        scale[k] = np.int32(0) if special else np.int32(q)
    for k in range(row.shape[0]):                               # × 2^q in the exponent bits
        bits[k] += np.int32(max(scale[k], np.int32(MIN_Q)) << np.int32(23))
        least = min(least, scale[k])
    if least < MIN_Q:                                           # subnormal results: then divide, as NumPy
        for k in range(row.shape[0]):
            if scale[k] < MIN_Q:
                row[k] = row[k] / F(np.int32(1) << np.int32(MIN_Q - scale[k]))


@numba.njit(cache=True, error_model="numpy")
def _exp64_shifted(row, shift, scale):
    """row[k] ← exp(row[k] − shift) in place, float64, by libm's exp (`scale` unused)."""
    for k in range(row.shape[0]):
        row[k] = np.exp(row[k] - shift)


def exp_shifted(row, shift, scale):
    """:func:`exp32_shifted` for float32 rows, libm's exp for float64 ones; for compiled callers."""
    raise TypeError("exp_shifted is for compiled code; call exp32_shifted")


@overload(exp_shifted, jit_options={"cache": True})
def _exp_shifted_typed(row, shift, scale):
    if isinstance(row, types.Array) and row.dtype == types.float32:
        return lambda row, shift, scale: exp32_shifted(row, shift, scale)
    if isinstance(row, types.Array) and row.dtype == types.float64:
        return lambda row, shift, scale: _exp64_shifted(row, shift, scale)
    return None
