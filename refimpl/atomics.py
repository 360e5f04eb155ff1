"""Atomic operations on int64 array slots, for compiled code that shares a counter between threads.

    fetch_add(a, i, v)   a[i] += v as one indivisible step (sequentially consistent); returns the old a[i]
    load(a, i)           a[i], read with acquire order: never hoisted out of a loop, and every write the
                         writer made before its fetch_add is visible once its new value is

Numba has no atomics for the CPU; these are its ``intrinsic``s over LLVM's ``atomicrmw`` and atomic
``load``. A plain ``a[i] += 1`` from two GIL-free threads loses updates (tests/test_atomics.py), and a
plain read in a polling loop may be read once and never again. `a` must be a 1-D int64 array and `i` an
index into it (not checked: compiled code has no bounds check).

The code of both goes into their callers; Numba's on-disk cache of a caller is keyed by the caller's own
file only, so after a change here delete the callers' cache files (``__pycache__/*.nbi``, ``*.nbc``).
"""

from numba.core import cgutils, types
from numba.extending import intrinsic

from refimpl import compiled  # noqa: F401  (Numba settings first)


def _is_slot(a, i) -> bool:
    int64_vector = isinstance(a, types.Array) and a.dtype == types.int64 and a.ndim == 1
    return int64_vector and isinstance(i, types.Integer)


def _pointer(context, builder, sig, args):
    """The address of a[i] from an intrinsic's (a, i, …) arguments."""
    a = context.make_array(sig.args[0])(context, builder, args[0])
    i = context.cast(builder, args[1], sig.args[1], types.intp)
    return cgutils.get_item_pointer(context, builder, sig.args[0], a, [i])


@intrinsic
def fetch_add(typingctx, a, i, v):
    """a[i] += v atomically (seq_cst); returns a[i] before the addition."""
    if not (_is_slot(a, i) and isinstance(v, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        v = context.cast(builder, args[2], sig.args[2], types.int64)
        return builder.atomic_rmw("add", _pointer(context, builder, sig, args), v, "seq_cst")

    return types.int64(a, i, v), codegen


@intrinsic
def load(typingctx, a, i):
    """a[i], an atomic load with acquire order."""
    if not _is_slot(a, i):
        return None

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_pointer(context, builder, sig, args), "acquire", 8)

    return types.int64(a, i), codegen
