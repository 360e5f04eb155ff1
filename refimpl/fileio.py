"""Files: atomic writes (a file appears complete or not at all), strict JSON, and probes of output
locations made before any work starts.

JSON is strict: NaN and ±inf are written as ``null`` (an undefined cell), never as the non-standard
``NaN`` that strict parsers reject.
"""

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from refimpl.errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _strict(x, digits: int | None = None):
    """`x` with NumPy values converted, every non-finite float replaced by None (JSON null) and, with
    `digits`, every float rounded to that many significant digits."""
    if isinstance(x, dict):
        return {str(k): _strict(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v, digits) for v in x]
    if isinstance(x, np.ndarray):
        return _strict(x.tolist(), digits)
    if isinstance(x, np.generic):
        return _strict(x.item(), digits)
    if isinstance(x, float):
        if not math.isfinite(x):
            return None
        return float(f"{x:.{digits}g}") if digits else x
    if isinstance(x, Path):
        return str(x)
    return x


def dumps(obj, indent: int | None = 2, digits: int | None = None) -> str:
    """Strict JSON text of `obj` (NumPy values converted, NaN and ±inf as null; floats to `digits`
    significant digits when given)."""
    return json.dumps(_strict(obj, digits), indent=indent, allow_nan=False)


def write_json(path, obj, digits: int | None = None) -> Path:
    """Write `obj` as indented strict JSON atomically (floats to `digits` significant digits when given)."""
    text = dumps(obj, digits=digits) + "\n"
    return _atomic(path, lambda tmp: Path(tmp).write_text(text))


def write_text(path, text: str) -> Path:
    """Write `text` atomically."""
    return _atomic(path, lambda tmp: Path(tmp).write_text(text))


def write_bytes(path, data: bytes) -> Path:
    """Write `data` atomically."""
    return _atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def save_png(path, fig, dpi: int = 130) -> Path:
    """Save a matplotlib figure as PNG atomically."""
    return _atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight",
                                                 metadata={"Software": None}))


def save_npz(path, **arrays) -> Path:
    """Save arrays as an uncompressed .npz atomically."""
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return _atomic(path, write)


def probe_dir(path, what: str = "output directory") -> Path:
    """Create `path` if needed and check that a file can be written in it (a probe file is written and
    removed). One-line InputError naming the path and the reason otherwise."""
    path = Path(path)
    created = [p for p in [path, *path.parents] if not p.exists()]       # made by the probe, deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"cannot write to the {what} {path}: {e.strerror or e}") from None
    finally:
        for p in created:                                                 # leave the tree as it was
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
    return path


def probe_file(path, what: str = "file") -> Path:
    """Check that `path` can be written (its directory is probed; an existing directory there is an error)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"the {what} {path} is a directory")
    probe_dir(path.parent if str(path.parent) else Path("."), f"directory of the {what}")
    return path
