"""Atomic file writes: a file appears complete or not at all (no half-written outputs on error)."""

import json
import os
import tempfile
from pathlib import Path

import numpy as np


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


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def write_json(path, obj) -> Path:
    """Write `obj` as indented JSON (NumPy scalars and arrays converted) atomically."""
    text = json.dumps(obj, indent=2, default=_jsonable) + "\n"
    return _atomic(path, lambda tmp: Path(tmp).write_text(text))


def save_png(path, fig, dpi: int = 130) -> Path:
    """Save a matplotlib figure as PNG atomically."""
    return _atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight"))


def save_npz(path, **arrays) -> Path:
    """Save arrays as an uncompressed .npz atomically."""
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return _atomic(path, write)
