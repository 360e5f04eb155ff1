"""The one seam for matrix products: c ← α·op(a)·op(b) + β·c in place, on Intel MKL or on OpenBLAS.

    gemm(alpha, a, b, beta, c, trans_a=False, trans_b=False)      sgemm / dgemm, nothing copied
    active()                                                      which BLAS runs: name, version, library

Two implementations of the same call:

* **mkl** — MKL's CBLAS (``cblas_sgemm`` / ``cblas_dgemm`` of ``libmkl_rt``) through ctypes, when the
  optional extra is installed (``pip install -e ".[mkl]"``; the ``test`` extra includes it). The library
  is found among the files of the installed ``mkl`` distribution, else in ``sys.prefix/lib``.
* **openblas** — ``scipy.linalg.blas`` (the OpenBLAS that SciPy's wheels ship); always there.

Which one runs is decided once per process: ``REFIMPL_BLAS=openblas`` or ``REFIMPL_BLAS=mkl`` chooses,
otherwise MKL when it is installed and OpenBLAS when it is not. :func:`load` gives either one by name
(the tests use both in one process; time each in its own process: MKL's OpenMP threads spin for a while
after each call and would slow OpenBLAS's down).

Layouts: every operand is a contiguous matrix, Fortran- or C-ordered. A C-ordered operand is handed to
BLAS as the column-major matrix of its transpose with the transpose flag flipped, and a C-ordered c is
computed as cᵀ = op(b)ᵀ op(a)ᵀ, so neither implementation ever copies (SciPy's wrapper would copy a
C-ordered operand, and return a new c instead of writing into a C-ordered one).

Threads: each library keeps its own (MKL: Intel OpenMP, ``MKL_NUM_THREADS``; OpenBLAS:
``OPENBLAS_NUM_THREADS``), left at their defaults, one per core. On AMD processors MKL 2026.2 runs its
generic ``libmkl_def`` kernels (``MKL_ENABLE_INSTRUCTIONS=AVX2`` does not change that: it only caps the
instruction set); on the 2-core AMD EPYC it was still as fast as OpenBLAS on a quiet machine, and far
less slowed down when another process held a core (docs/sgd-step.md).
"""

import ctypes
import dataclasses
import importlib.metadata
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.linalg import blas as scipy_blas

from refimpl.errors import InputError

ENV = "REFIMPL_BLAS"
NAMES = ("mkl", "openblas")
_CBLAS_COL_MAJOR, _CBLAS_NO_TRANS, _CBLAS_TRANS = 102, 111, 112


@dataclasses.dataclass(frozen=True)
class Blas:
    """One BLAS: its name ('mkl' or 'openblas'), version text, shared library, and its gemm."""

    name: str
    version: str
    library: str
    gemm: Callable = dataclasses.field(repr=False)

    def describe(self) -> str:
        return f"{self.name} ({self.version})"


def _column_major(x: np.ndarray):
    """(transposed, ld): x as BLAS sees it. transposed = x is C-ordered, i.e. stored as the column-major
    matrix xᵀ with leading dimension ld; else x itself is column-major with leading dimension ld."""
    rows, cols = x.shape
    if x.flags.f_contiguous:
        return False, max(rows, 1)
    if x.flags.c_contiguous:
        return True, max(cols, 1)
    raise ValueError(f"gemm needs contiguous operands (C- or Fortran-ordered), got strides {x.strides}")


def _check(alpha, a, b, beta, c, trans_a, trans_b):
    """Shapes, dtypes and layouts of a gemm call; returns (m, n, k) of c (m, n) = op(a) (m, k) op(b)."""
    if not (a.ndim == b.ndim == c.ndim == 2):
        raise ValueError(f"gemm needs matrices, got shapes {a.shape}, {b.shape}, {c.shape}")
    if not (a.dtype == b.dtype == c.dtype) or c.dtype not in (np.float32, np.float64):
        raise ValueError(f"gemm needs one dtype, float32 or float64, got {a.dtype}, {b.dtype}, {c.dtype}")
    m, k = a.shape[::-1] if trans_a else a.shape
    k_b, n = b.shape[::-1] if trans_b else b.shape
    if k != k_b or c.shape != (m, n):
        raise ValueError(f"gemm shapes disagree: op(a) {(m, k)}, op(b) {(k_b, n)}, c {c.shape}")
    if not c.flags.writeable:
        raise ValueError("gemm writes into c: c must be writeable")
    if np.may_share_memory(c, a) or np.may_share_memory(c, b):
        raise ValueError("gemm's c must not overlap a or b (BLAS does not allow it)")
    return m, n, k


def _flip_c(a, b, c, trans_a, trans_b):
    """A C-ordered c is computed as cᵀ = op(b)ᵀ op(a)ᵀ: returns the operands of that product."""
    if c.flags.f_contiguous:
        return a, b, c, trans_a, trans_b
    if not c.flags.c_contiguous:
        raise ValueError(f"gemm needs a contiguous c, got strides {c.strides}")
    return b, a, c.T, not trans_b, not trans_a


# ---- OpenBLAS through SciPy -------------------------------------------------------------------------------

_SCIPY_GEMM = {np.dtype(np.float32): scipy_blas.sgemm, np.dtype(np.float64): scipy_blas.dgemm}


def _openblas_gemm(alpha, a, b, beta, c, trans_a=False, trans_b=False):
    """c ← alpha·op(a)·op(b) + beta·c in place with scipy.linalg.blas; returns c."""
    _check(alpha, a, b, beta, c, trans_a, trans_b)
    if c.size == 0:
        return c
    a, b, cf, trans_a, trans_b = _flip_c(a, b, c, trans_a, trans_b)
    # SciPy wants Fortran-ordered operands: a C-ordered one goes in as its transpose, flag flipped.
    a, trans_a = (a.T, not trans_a) if _column_major(a)[0] else (a, trans_a)
    b, trans_b = (b.T, not trans_b) if _column_major(b)[0] else (b, trans_b)
    _SCIPY_GEMM[c.dtype](alpha, a, b, beta=beta, c=cf, overwrite_c=1, trans_a=int(trans_a),
                         trans_b=int(trans_b))
    return c


def _openblas() -> Blas:
    info = getattr(__import__("scipy").__config__, "CONFIG", {}).get("Build Dependencies", {}).get("blas", {})
    return Blas("openblas", f"{info.get('name', 'scipy')} {info.get('version', '?')}",
                info.get("lib directory", "scipy.linalg.blas"), _openblas_gemm)


# ---- MKL through its CBLAS interface ----------------------------------------------------------------------

def _mkl_library() -> Path | None:
    """libmkl_rt of the installed `mkl` distribution (else of sys.prefix/lib), or None."""
    candidates = []
    try:
        dist = importlib.metadata.distribution("mkl")
        files = [f for f in dist.files or [] if Path(f).name.startswith("libmkl_rt.")]
        candidates += [Path(dist.locate_file(f)) for f in files]
    except importlib.metadata.PackageNotFoundError:
        pass
    candidates += sorted(Path(sys.prefix, "lib").glob("libmkl_rt.so*"))
    return next((p.resolve() for p in candidates if p.is_file()), None)


def _mkl_gemm_of(lib: ctypes.CDLL) -> Callable:
    ptr, i = ctypes.c_void_p, ctypes.c_int
    funcs = {}
    for dtype, name, scalar in ((np.float32, "cblas_sgemm", ctypes.c_float),
                                (np.float64, "cblas_dgemm", ctypes.c_double)):
        f = getattr(lib, name)
        f.restype = None
        f.argtypes = [i, i, i, i, i, i, scalar, ptr, i, ptr, i, scalar, ptr, i]
        funcs[np.dtype(dtype)] = f

    def gemm(alpha, a, b, beta, c, trans_a=False, trans_b=False):
        """c ← alpha·op(a)·op(b) + beta·c in place with MKL's cblas_?gemm (column-major); returns c."""
        m, n, k = _check(alpha, a, b, beta, c, trans_a, trans_b)
        if c.size == 0:
            return c
        a, b, cf, trans_a, trans_b = _flip_c(a, b, c, trans_a, trans_b)
        m, n = cf.shape
        flip_a, lda = _column_major(a)
        flip_b, ldb = _column_major(b)
        ta = _CBLAS_TRANS if trans_a != flip_a else _CBLAS_NO_TRANS
        tb = _CBLAS_TRANS if trans_b != flip_b else _CBLAS_NO_TRANS
        funcs[c.dtype](_CBLAS_COL_MAJOR, ta, tb, m, n, k, alpha, a.ctypes.data, lda, b.ctypes.data, ldb,
                       beta, cf.ctypes.data, max(m, 1))
        return c

    return gemm


def _mkl() -> Blas:
    path = _mkl_library()
    if path is None:
        raise InputError(f"{ENV}=mkl but MKL is not installed: pip install -e '.[mkl]'")
    lib = ctypes.CDLL(str(path))
    text = ctypes.create_string_buffer(256)
    lib.MKL_Get_Version_String(text, len(text))
    version = text.value.decode(errors="replace").split(" for ")[0]     # "Intel(R) oneAPI … Version 2026.2-…"
    return Blas("mkl", version.split("Version ")[-1], str(path), _mkl_gemm_of(lib))


# ---- selection --------------------------------------------------------------------------------------------

_LOADED: dict[str, Blas] = {}
_ACTIVE: list[Blas] = []


def available() -> tuple[str, ...]:
    """The BLAS names that can be loaded here ('openblas' always; 'mkl' when installed)."""
    return tuple(n for n in NAMES if n == "openblas" or _mkl_library() is not None)


def load(name: str) -> Blas:
    """The BLAS called `name` ('mkl' or 'openblas'), loaded once; InputError when it is not installed."""
    if name not in NAMES:
        raise InputError(f"unknown BLAS {name!r}: expected one of {', '.join(NAMES)}")
    if name not in _LOADED:
        _LOADED[name] = _mkl() if name == "mkl" else _openblas()
    return _LOADED[name]


def active() -> Blas:
    """The BLAS of this process: ``$REFIMPL_BLAS`` when set, else MKL when installed, else OpenBLAS."""
    if not _ACTIVE:
        name = os.environ.get(ENV, "").strip().lower()
        if name and name not in NAMES:
            raise InputError(f"{ENV}={name!r}: expected one of {', '.join(NAMES)}")
        _ACTIVE.append(load(name or ("mkl" if _mkl_library() is not None else "openblas")))
    return _ACTIVE[0]


def gemm(alpha, a, b, beta, c, trans_a=False, trans_b=False):
    """c ← alpha·op(a)·op(b) + beta·c in place on the active BLAS (op = transpose where asked); returns c.

    Parameters
    ----------
    alpha, beta : float
    a : ndarray of shape (m, k), or (k, m) with trans_a; b : ndarray of shape (k, n), or (n, k) with trans_b.
    c : ndarray of shape (m, n), written in place (beta = 0: its old content is not read).
    All three contiguous (C- or Fortran-ordered), of one dtype, float32 or float64; c overlaps neither.
    """
    return (_ACTIVE[0] if _ACTIVE else active()).gemm(alpha, a, b, beta, c, trans_a, trans_b)
