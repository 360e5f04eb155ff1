"""The run store: keys change with exactly what determines a run; entries are written arrays-first,
read as strict JSON and pickle-free NumPy, and an unreadable entry reads as absent, with a reason."""

import hashlib
import json
import os

import numpy as np
import pytest

from refimpl import runstore
from refimpl.errors import InputError, RunError
from refimpl.runstore import RunStore

BASE = dict(kind="fig4c", settings={"K": 5, "lr": 0.1, "sizes": [3, 4]}, seed=0, backend="numba",
            dtype="float32")


def test_key_is_sha256_of_the_canonical_json_of_its_content():
    text = ('{"backend":"numpy","dtype":"float64","kind":"demo","seed":0,"settings":{"a":[1,2],"n":3},'
            '"version":"0.1.0"}')
    want = hashlib.sha256(text.encode()).hexdigest()[:16]
    got = runstore.key("demo", {"n": 3, "a": (1, 2)}, 0, "numpy", np.float64, version="0.1.0")
    assert got == want, f"{got} != {want}"


def test_key_ignores_dict_order_and_numpy_scalar_types():
    a = runstore.key(**BASE)
    settings = {"sizes": np.array([3, 4]), "lr": np.float64(0.1), "K": np.int64(5)}
    b = runstore.key(**{**BASE, "settings": settings, "dtype": np.dtype("float32"), "seed": np.int64(0)})
    assert a == b
    assert len(a) == 16 and set(a) <= set("0123456789abcdef")


@pytest.mark.parametrize("change", [
    {"kind": "fig4d"},
    {"settings": {"K": 5, "lr": 0.2, "sizes": [3, 4]}},
    {"settings": {"K": 5, "lr": 0.1, "sizes": [3, 4], "epochs": 10}},
    {"settings": {"K": 5, "lr": 0.1, "sizes": [4, 3]}},
    {"settings": {"K": 5.0, "lr": 0.1, "sizes": [3, 4]}},          # 1 and 1.0 are different settings
    {"seed": 1},
    {"backend": "numpy"},
    {"dtype": "float64"},
    {"version": "0.2.0"},
], ids=lambda c: next(iter(c)) + "=" + str(next(iter(c.values()))))
def test_key_changes_with_each_thing_that_determines_a_run(change):
    assert runstore.key(**{**BASE, **change}) != runstore.key(**BASE)


def test_key_defaults_to_the_package_version():
    import refimpl
    assert runstore.key(**BASE) == runstore.key(**BASE, version=refimpl.__version__)
    assert runstore.describe(**BASE)["version"] == refimpl.__version__


@pytest.mark.parametrize("change, message", [
    ({"settings": {"lr": float("nan")}}, "settings.lr must be finite"),
    ({"settings": {"grid": [1.0, float("inf")]}}, r"settings.grid\[1\] must be finite"),
    ({"settings": {1: 2}}, "keys must be strings"),
    ({"settings": {"f": object()}}, "must be JSON"),
    ({"settings": [1, 2]}, "must be a dict"),
    ({"seed": -1}, "seed"),
    ({"dtype": "no-such-type"}, "dtype"),
    ({"kind": ""}, "kind"),
])
def test_key_refuses_what_has_no_exact_json_form(change, message):
    with pytest.raises(InputError, match=message):
        runstore.key(**{**BASE, **change})


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABCDEF0123456789", "0123", 7])
def test_a_key_cannot_name_another_path(tmp_path, bad):
    with pytest.raises(InputError, match="16 lowercase hex"):
        RunStore(tmp_path).get(bad)


def _put_one(store, key=None, **extra):
    key = key or runstore.key(**BASE)
    arrays = {"W": np.arange(12, dtype=np.float32).reshape(3, 4), "labels": np.array([2, 0, 1]),
              "empty": np.zeros((0, 3)), "scalar": np.float64(2.5)}
    record = {"loss": 0.25, "undefined": float("nan"), "curve": np.array([1.0, 0.5]), **extra}
    return key, arrays, store.put(key, record, arrays, about=runstore.describe(**BASE))


def test_put_then_get_gives_back_the_record_and_the_arrays(tmp_path):
    store = RunStore(tmp_path / "store")
    key, arrays, put = _put_one(store)
    run = store.get(key)
    assert run.record == put.record == {"loss": 0.25, "undefined": None, "curve": [1.0, 0.5]}
    assert run.about == runstore.describe(**BASE)
    assert sorted(run.arrays) == sorted(arrays)
    for name, a in arrays.items():
        assert run.arrays[name].dtype == a.dtype and run.arrays[name].shape == np.shape(a), name
        np.testing.assert_array_equal(run.arrays[name], a)
    assert store.has(key) and key in store and list(store) == [key]
    assert store.problems == []


def test_records_are_strict_json(tmp_path):
    store = RunStore(tmp_path)
    key, _, _ = _put_one(store)
    text = (tmp_path / f"{key}.json").read_text()
    doc = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}"))
    assert doc["record"]["undefined"] is None and doc["key"] == key and doc["format"] == runstore.FORMAT


def test_a_run_without_arrays_has_no_npz(tmp_path):
    store = RunStore(tmp_path)
    key = runstore.key(**BASE)
    store.put(key, {"x": 1})
    assert store.get(key).arrays == {} and not (tmp_path / f"{key}.npz").exists()


def test_an_empty_or_missing_store_has_no_runs(tmp_path):
    store = RunStore(tmp_path / "nowhere")
    assert list(store) == [] and store.get(runstore.key(**BASE)) is None and store.problems == []


class _Mkdir:
    """An object whose unpickling creates a directory: proof that a pickle was (not) loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_the_store_never_loads_a_pickle(tmp_path):
    store = RunStore(tmp_path)
    key, _, _ = _put_one(store)
    sentinel = tmp_path / "pickle-was-loaded"
    np.savez(tmp_path / f"{key}.npz", W=np.array([_Mkdir(sentinel)], dtype=object), labels=np.zeros(1),
             empty=np.zeros(1), scalar=np.zeros(1))
    assert store.get(key) is None
    assert not sentinel.exists()
    assert len(store.problems) == 1 and "Python objects" in store.problems[0], store.problems
    with np.load(tmp_path / f"{key}.npz", allow_pickle=True) as f:      # the test can fail: the file is armed
        f["W"]
    assert sentinel.is_dir()


def test_put_refuses_object_arrays_and_non_json_records(tmp_path):
    store = RunStore(tmp_path)
    key = runstore.key(**BASE)
    with pytest.raises(InputError, match="Python objects"):
        store.put(key, {}, {"a": np.array([{}], dtype=object)})
    with pytest.raises(InputError, match="not JSON"):
        store.put(key, {"a": {1, 2}})
    with pytest.raises(InputError, match="identifiers"):
        store.put(key, {}, {"../x": np.zeros(1)})
    assert list(store) == []


@pytest.mark.parametrize("damage, reason", [
    (lambda js, npz: js.write_text('{"format": "refimpl-run/1", "key": '), "not strict JSON"),
    (lambda js, npz: js.write_text(js.read_text().replace("0.25", "NaN")), "not strict JSON"),
    (lambda js, npz: js.write_bytes(b"\xff\xfe"), "cannot read"),
    (lambda js, npz: js.write_text("[]"), "not a refimpl-run/1 record"),
    (lambda js, npz: npz.unlink(), "missing"),
    (lambda js, npz: npz.write_bytes(npz.read_bytes()[:100]), "cannot read"),
    (lambda js, npz: js.write_text(js.read_text().replace('"W"', '"V"')), "no array"),
], ids=["truncated-json", "nan-literal", "not-utf8", "not-a-record", "npz-missing", "npz-truncated",
        "array-missing"])
def test_an_unreadable_entry_reads_as_absent_and_is_reported(tmp_path, damage, reason):
    warned = []
    store = RunStore(tmp_path, warn=warned.append)
    key, _, _ = _put_one(store)
    damage(tmp_path / f"{key}.json", tmp_path / f"{key}.npz")
    assert store.get(key) is None and not store.has(key)
    assert len(warned) == 1 and reason in warned[0] and key in warned[0], warned
    assert store.problems == warned and "\n" not in warned[0]
    _put_one(store, key)                                         # put replaces the damaged entry
    assert store.get(key).record["loss"] == 0.25


def test_a_record_filed_under_another_key_is_not_that_run(tmp_path):
    store = RunStore(tmp_path)
    key, _, _ = _put_one(store)
    other = runstore.key(**{**BASE, "seed": 1})
    (tmp_path / f"{other}.json").write_text((tmp_path / f"{key}.json").read_text())
    assert store.get(other) is None and "filed under" in store.problems[0]


def test_a_crash_between_arrays_and_record_leaves_no_run(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    key, _, _ = _put_one(store)                                  # an older entry under the same key

    def crash(path, obj):
        raise OSError("disk full")

    monkeypatch.setattr(runstore.fileio, "write_json", crash)
    with pytest.raises(OSError, match="disk full"):
        _put_one(store, key, loss=0.5)
    assert store.get(key) is None and not store.has(key) and store.problems == []
    assert not (tmp_path / f"{key}.json").exists()


def test_arrays_damaged_after_the_record_was_read_are_one_line_run_error(tmp_path):
    store = RunStore(tmp_path)
    key, _, _ = _put_one(store)
    run = store.get(key)                                         # headers checked, data not yet read
    (tmp_path / f"{key}.npz").unlink()
    with pytest.raises(RunError, match=f"stored run {key}: cannot read .*delete it") as e:
        _ = run.arrays
    assert "\n" not in str(e.value)
