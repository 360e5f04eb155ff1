"""refimpl: reference implementation of *Feature collapse* (Laurent, von Brecht, Bresson) and of
*The persistence of neural collapse despite low-rank bias* (Garrod, Keating).

Readable NumPy reference passes next to Numba kernels that mirror them; see docs/ for the map from
each equation to the function that implements it.
"""

from refimpl.errors import InputError, RunError

__version__ = "0.1.0"
__all__ = ["InputError", "RunError", "__version__"]
