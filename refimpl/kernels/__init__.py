"""Numba mirrors of the NumPy reference passes, one module per reference module.

Each kernel module keeps the reference's function names and signatures and is tested against it
(tests/test_kernels_*.py). Matrix products go to BLAS in both (NumPy's ``@`` in the reference,
``scipy.linalg.blas`` here, where the fused alpha/beta forms save passes over memory); the loops around
them — gathers, LayerNorm, softmax, scatter-adds — are compiled, parallel where rows are independent.

Threading: the kernels alternate with multi-threaded BLAS calls. Numba's default OpenMP layer keeps its
threads spinning after each parallel loop, starving the BLAS threads that follow (measured: an SGD step
4–7× slower). Unless the user chose a layer (NUMBA_THREADING_LAYER), we use Numba's 'workqueue' layer,
whose idle threads sleep.
"""

import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"
