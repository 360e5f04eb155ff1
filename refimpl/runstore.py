"""The run store: every training or sweep run, saved once under a key naming what determines its result.

    describe(kind, settings, seed, backend, dtype)   the key's content: a canonical, strict-JSON dict
    key(kind, settings, seed, backend, dtype)        sha256 of that content, 16 hex digits
    RunStore(root).get(key) / put(key, record, arrays) / has(key) / iter(store)

**What the key holds.** A run's result is fixed by the figure or sweep it belongs to (``kind``), its
settings (a JSON-able dict: sizes, learning rate, epochs, …), its seed, the backend (``"numba"`` or
``"numpy"``), the floating-point dtype and the package version (``refimpl.__version__``: a new version may
compute differently, so its runs are new runs). Nothing else enters: not the machine, not where the run
ran (results must not depend on it). Canonical JSON: sorted keys, no spaces, NumPy scalars and arrays as
plain numbers and lists, tuples as lists; NaN or ±inf in the settings is an error (it has no JSON form
and would make two different settings collide). ``1`` and ``1.0`` are different settings: pass settings
in their validated canonical types (:mod:`refimpl.validate`).

**What an entry holds.** Two files under ``root``: ``<key>.npz`` (the run's arrays, e.g. the trained
``W`` of shape (d, n_w), uncompressed) and ``<key>.json``::

    {"format": "refimpl-run/1", "key": …, "about": {the key's content, or null},
     "arrays": [names in the .npz], "record": {the run's scalars and lists}}

The arrays are written first and the record last, each atomically (:mod:`refimpl.fileio`), so the
presence of ``<key>.json`` means the run is complete; a crash in between leaves no record, and the run is
simply absent. Records are strict JSON (NaN written as ``null``).

**Reading is safe.** The record is parsed as strict JSON and the arrays with ``allow_pickle=False``, so a
tampered file cannot run code. An entry that cannot be read (corrupt JSON, a missing or unreadable
``.npz``, an object array, a record filed under another key) is treated as absent and reported, one line
each, in :attr:`RunStore.problems` and to the ``warn`` callback; never a traceback. Only the client
process writes the store (:mod:`refimpl.tasks`: workers return results, the client stores them).
"""

import dataclasses
import functools
import hashlib
import json
import math
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

import refimpl
from refimpl import fileio, validate
from refimpl.errors import InputError, RunError

FORMAT = "refimpl-run/1"
KEY_LENGTH = 16
DEFAULT_ROOT = Path("runs/store")
_KEY = re.compile(rf"[0-9a-f]{{{KEY_LENGTH}}}")
_ARRAY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _canonical(x, where: str):
    """`x` as plain JSON values; InputError naming `where` for what has no exact JSON form."""
    if isinstance(x, dict):
        bad = [k for k in x if not isinstance(k, str)]
        if bad:
            raise InputError(f"{where}: keys must be strings, got {bad[0]!r}")
        return {k: _canonical(v, f"{where}.{k}") for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if isinstance(x, (np.ndarray, np.generic)):
        return _canonical(x.tolist(), where)
    if isinstance(x, float) and not math.isfinite(x):
        raise InputError(f"{where} must be finite to enter a run key, got {x}")
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise InputError(f"{where} must be JSON (numbers, strings, lists, dicts), got {type(x).__name__}")


def describe(kind: str, settings: dict, seed, backend: str | None, dtype, version: str | None = None) -> dict:
    """The content of a run's key: ``{"kind", "settings", "seed", "backend", "dtype", "version"}``.

    `dtype` is anything ``numpy.dtype`` accepts (stored by name, ``"float32"``); `backend` and `dtype` may
    be None for runs that have no such choice. `version` defaults to ``refimpl.__version__``.
    """
    if not isinstance(kind, str) or not kind:
        raise InputError(f"run kind must be a non-empty string, got {kind!r}")
    if not isinstance(settings, dict):
        raise InputError(f"run settings must be a dict, got {type(settings).__name__}")
    if backend is not None and (not isinstance(backend, str) or not backend):
        raise InputError(f"backend must be a non-empty string or None, got {backend!r}")
    if dtype is not None:
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            raise InputError(f"dtype must be a NumPy dtype or None, got {dtype!r}") from None
    version = refimpl.__version__ if version is None else version
    return {"kind": kind, "settings": _canonical(settings, "settings"), "seed": validate.seed(seed),
            "backend": backend, "dtype": dtype, "version": version}


def digest(about: dict) -> str:
    """The key of a :func:`describe` dict: sha256 of its canonical JSON, first 16 hex digits (64 bits)."""
    text = json.dumps(_canonical(about, "key"), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def key(kind: str, settings: dict, seed, backend: str | None, dtype, version: str | None = None) -> str:
    """The store key of a run: ``digest(describe(kind, settings, seed, backend, dtype, version))``."""
    return digest(describe(kind, settings, seed, backend, dtype, version))


def check_key(value) -> str:
    """`value` if it is a store key (16 lowercase hex digits; nothing that could name another path)."""
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise InputError(f"a run key is {KEY_LENGTH} lowercase hex digits, got {value!r}")
    return value


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def loads_strict(text: str):
    """Parse strict JSON (``NaN``, ``Infinity`` rejected: ValueError)."""
    return json.loads(text, parse_constant=_reject_constant)


@dataclasses.dataclass(eq=False)
class Run:
    """One stored run: its key, its record (strict JSON, as stored), the key's content (`about`, or None)
    and the names of its arrays, loaded from ``<key>.npz`` on first access of :attr:`arrays`."""

    key: str
    record: dict
    about: dict | None
    array_names: tuple[str, ...]
    npz_path: Path

    @functools.cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        """The run's arrays by name (``{}`` when it stored none); pickles are never loaded."""
        if not self.array_names:
            return {}
        try:
            with np.load(self.npz_path, allow_pickle=False) as f:
                return {name: f[name] for name in self.array_names}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise RunError(f"stored run {self.key}: cannot read {self.npz_path}: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__}; "
                           f"delete it to run again") from None


class RunStore:
    """Runs saved under ``root`` (default ``runs/store``), one ``<key>.json`` + ``<key>.npz`` each.

    ``warn(text)``, if given, is called once for each unreadable entry met (also listed in
    :attr:`problems`); such an entry reads as absent, and :meth:`put` replaces it.
    """

    def __init__(self, root=DEFAULT_ROOT, warn: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.warn = warn
        self.problems: list[str] = []

    def _paths(self, key: str) -> tuple[Path, Path]:
        check_key(key)
        return self.root / f"{key}.json", self.root / f"{key}.npz"

    def _problem(self, key: str, what: str) -> None:
        text = f"stored run {key} ignored: {what}"
        if text not in self.problems:
            self.problems.append(text)
            if self.warn is not None:
                self.warn(text)

    def get(self, key: str) -> Run | None:
        """The stored run `key`, or None when absent or unreadable (then reported in :attr:`problems`)."""
        json_path, npz_path = self._paths(key)
        try:
            text = json_path.read_text()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            self._problem(key, f"cannot read {json_path}: {e}")
            return None
        try:
            doc = loads_strict(text)
        except ValueError as e:
            self._problem(key, f"{json_path} is not strict JSON ({str(e).splitlines()[0]})")
            return None
        why = self._check_doc(key, doc)
        if why is None:
            why = self._check_npz(npz_path, doc["arrays"])
        if why is not None:
            self._problem(key, why)
            return None
        return Run(key, doc["record"], doc["about"], tuple(doc["arrays"]), npz_path)

    @staticmethod
    def _check_doc(key: str, doc) -> str | None:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            return f"not a {FORMAT} record"
        if doc.get("key") != key:
            return f"the record is of run {doc.get('key')!r}, filed under {key}"
        if not isinstance(doc.get("record"), dict):
            return "the file has no 'record' dict"
        if not (doc.get("about") is None or isinstance(doc["about"], dict)):
            return "the file's 'about' is not a dict"
        names = doc.get("arrays")
        if not isinstance(names, list) or not all(isinstance(n, str) and _ARRAY_NAME.fullmatch(n)
                                                  for n in names):
            return "the record's 'arrays' is not a list of array names"
        return None

    @staticmethod
    def _check_npz(path: Path, names: list[str]) -> str | None:
        """Why the .npz cannot serve `names` (missing, not a zip, an object array…), or None. Reads only
        the headers; the data is read on first access of ``Run.arrays``."""
        if not names:
            return None
        try:
            with zipfile.ZipFile(path) as z:
                members = set(z.namelist())
                for name in names:
                    if f"{name}.npy" not in members:
                        return f"{path} has no array {name!r}"
                    with z.open(f"{name}.npy") as f:
                        version = np.lib.format.read_magic(f)
                        header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                  else np.lib.format.read_array_header_2_0)(f)
                    if header[2].hasobject:
                        return f"{path}: array {name!r} holds Python objects (pickles are never loaded)"
        except FileNotFoundError:
            return f"its arrays {path} are missing"
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            return f"cannot read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        return None

    def has(self, key: str) -> bool:
        """Whether a readable run `key` is stored."""
        return self.get(key) is not None

    __contains__ = has

    def __iter__(self) -> Iterator[str]:
        """The keys with a record file, sorted (unreadable ones included; :meth:`get` tells)."""
        if not self.root.is_dir():
            return iter(())
        return iter(sorted(p.stem for p in self.root.glob("*.json") if _KEY.fullmatch(p.stem)))

    def put(self, key: str, record: dict, arrays: dict | None = None, about: dict | None = None) -> Run:
        """Store a run: `arrays` (name → ndarray, numbers only) as ``<key>.npz``, then `record` (and `about`,
        the key's content) as ``<key>.json``; returns the run as stored (NaN in the record read back as None).

        An existing entry is removed first, so that a crash leaves either the new run or none.
        """
        json_path, npz_path = self._paths(key)
        arrays = self._check_arrays(key, arrays or {})
        if not isinstance(record, dict):
            raise InputError(f"run {key}: the record must be a dict, got {type(record).__name__}")
        if about is not None and not isinstance(about, dict):
            raise InputError(f"run {key}: 'about' must be a dict or None, got {type(about).__name__}")
        doc = {"format": FORMAT, "key": key, "about": about, "arrays": sorted(arrays), "record": record}
        try:
            stored = loads_strict(fileio.dumps(doc))
        except (TypeError, ValueError) as e:
            raise InputError(f"run {key}: the record is not JSON: {str(e).splitlines()[0]}") from None
        json_path.unlink(missing_ok=True)                      # from here, no record until the new one
        npz_path.unlink(missing_ok=True)
        if arrays:
            fileio.save_npz(npz_path, **arrays)
        fileio.write_json(json_path, stored)
        return Run(key, stored["record"], stored["about"], tuple(stored["arrays"]), npz_path)

    @staticmethod
    def _check_arrays(key: str, arrays) -> dict[str, np.ndarray]:
        if not isinstance(arrays, dict):
            raise InputError(f"run {key}: arrays must be a dict of name to array, "
                             f"got {type(arrays).__name__}")
        out = {}
        for name, value in arrays.items():
            if not isinstance(name, str) or not _ARRAY_NAME.fullmatch(name):
                raise InputError(f"run {key}: array names are identifiers, got {name!r}")
            value = np.asarray(value)
            if value.dtype.hasobject:
                raise InputError(f"run {key}: array {name!r} holds Python objects; store numbers only")
            out[name] = value
        return out
