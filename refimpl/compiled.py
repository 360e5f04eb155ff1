"""Process-wide Numba settings, made once before any compiled twin (``*_numba.py``) compiles.

Every ``*_numba`` module imports this module first. Two settings are made here, each only when the user
has not chosen it through the environment:

* Threading layer. The kernels alternate with multi-threaded BLAS calls. Numba's default OpenMP layer
  keeps its threads spinning after each parallel loop, starving the BLAS threads that follow (measured:
  an SGD step 4–7× slower). We use Numba's 'workqueue' layer, whose idle threads sleep.
* Vector width. On CPUs with AVX-512, LLVM's cost model for Intel server cores prefers 256-bit vectors
  ("prefer-256-bit"); the small register-blocked products of the DUFM kernel run ~15% faster with 512-bit
  vectors (`python cli.py bench dufm`, 2 cores: 4.4 → 3.7 µs per run·step). We drop that preference
  (NUMBA_CPU_FEATURES = the host's features + "-prefer-256-bit"); the instruction set is the host's
  either way, and the cache is keyed by the feature string, so nothing stale is reused.
"""

import os

import llvmlite.binding as llvm
import numba

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

if "NUMBA_CPU_FEATURES" not in os.environ and "NUMBA_CPU_NAME" not in os.environ:
    _host = llvm.get_host_cpu_features()
    if _host.get("avx512f"):
        numba.config.CPU_FEATURES = _host.flatten() + ",-prefer-256-bit"
