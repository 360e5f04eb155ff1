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


def _strict(x):
    """`x` with NumPy values converted and every non-finite float replaced by None (JSON null)."""
    if isinstance(x, dict):
        return {str(k): _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    if isinstance(x, np.ndarray):
        return _strict(x.tolist())
    if isinstance(x, np.generic):
        return _strict(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    return x


def dumps(obj, indent: int | None = 2) -> str:
    """Strict JSON text of `obj` (NumPy values converted, NaN and ±inf as null)."""
    return json.dumps(_strict(obj), indent=indent, allow_nan=False)


def write_json(path, obj) -> Path:
    """Write `obj` as indented strict JSON atomically."""
    text = dumps(obj) + "\n"
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
