"""The task runner: stored runs are reused, an interrupted run resumes, failures are one line naming the
task, and a 2-worker LocalCluster (one worker killed mid-run included) stores the records of the in-process
run, bit for bit. Cluster tasks use :func:`refimpl.tasks.example_task` (workers import it by name; this
test module is not importable by them)."""

import importlib.util
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

from refimpl import cluster as dask_cluster
from refimpl import runstore
from refimpl.errors import InputError, RunError
from refimpl.runstore import RunStore
from refimpl.tasks import Task, example_task, run_tasks

needs_distributed = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                       reason="needs the optional package distributed")


def demo_tasks(n_tasks=6, delay=0.0, fns=None, n=4):
    """Tasks of example_task for seeds 0..n_tasks-1; `fns` replaces the function of some (index → fn)."""
    fns = fns or {}
    out = []
    for seed in range(n_tasks):
        about = runstore.describe("demo", {"n": n}, seed, None, "float64")    # `delay` changes no result
        out.append(Task(runstore.digest(about), fns.get(seed, example_task), (seed,),
                        {"n": n, "delay": delay}, f"demo seed {seed}", about))
    return out


def snapshot(result):
    """Every run's record and arrays (dtype, shape, bytes): equal snapshots are bit-identical results."""
    return {k: (run.record, {name: (a.dtype.str, a.shape, a.tobytes()) for name, a in run.arrays.items()})
            for k, run in result.runs.items()}


def must_not_run(*args, **kwargs):
    raise AssertionError("a stored run was run again")


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def fails(*args, **kwargs):
    raise ValueError("bad value\nsecond line of the message")


def returns_a_list(*args, **kwargs):
    return [1, 2]


def nested_function():
    def nested(*args, **kwargs):
        return {}, None
    return nested


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    """The in-process results of demo_tasks(): the reference every other placement must match."""
    return snapshot(run_tasks(demo_tasks(), RunStore(tmp_path_factory.mktemp("reference")), progress=False))


def test_in_process_runs_and_stores_every_task_then_a_rerun_reuses_every_run(tmp_path, expected):
    store, said = RunStore(tmp_path), []
    first = run_tasks(demo_tasks(), store, progress=False)
    keys = tuple(t.key for t in demo_tasks())
    assert first.ran == keys and first.reused == () and first.scheduler == "in-process"
    assert snapshot(first) == expected and sorted(store) == sorted(keys)
    again = run_tasks(demo_tasks(fns=dict.fromkeys(range(6), must_not_run)), store, progress=False,
                      log=said.append)
    assert again.reused == keys and again.ran == () and again.scheduler is None
    assert snapshot(again) == expected and said == [f"6 of 6 runs reused from {tmp_path}; 0 to run"]


def test_an_interrupted_in_process_run_resumes_with_exactly_the_remaining_tasks(tmp_path, expected):
    store = RunStore(tmp_path)
    keys = tuple(t.key for t in demo_tasks())
    with pytest.raises(KeyboardInterrupt):
        run_tasks(demo_tasks(fns={3: interrupt}), store, progress=False)
    assert sorted(store) == sorted(keys[:3])
    resumed = run_tasks(demo_tasks(fns=dict.fromkeys(range(3), must_not_run)), store, progress=False)
    assert resumed.reused == keys[:3] and resumed.ran == keys[3:]
    assert snapshot(resumed) == expected


def test_a_failing_task_is_one_line_naming_it_after_the_others_are_stored(tmp_path):
    store, said = RunStore(tmp_path), []
    with pytest.raises(RunError) as e:
        run_tasks(demo_tasks(fns={2: fails, 4: returns_a_list}), store, progress=False, log=said.append)
    message = str(e.value)
    assert message.startswith("task demo seed 2 failed: ValueError: bad value (1 more failed)"), message
    assert "\n" not in message and "second line" not in message
    assert len(list(store)) == 4 and "task demo seed 4 failed: it returned a list" in said[-1], said


def test_a_key_given_twice_runs_once_unless_the_tasks_differ(tmp_path):
    t = demo_tasks(1)[0]
    result = run_tasks([t, t], RunStore(tmp_path), progress=False)
    assert result.ran == (t.key,)
    with pytest.raises(InputError, match="share the key"):
        run_tasks([t, Task(t.key, example_task, (1,), label="other")], RunStore(tmp_path), progress=False)


@pytest.mark.parametrize("scheduler", ["dask", "http://127.0.0.1:8786", "tcp://", "tcp://a b:1", 3])
def test_an_unknown_scheduler_is_refused_before_any_work(tmp_path, scheduler):
    with pytest.raises(InputError, match="unknown scheduler"):
        run_tasks(demo_tasks(fns=dict.fromkeys(range(6), must_not_run)), RunStore(tmp_path),
                  scheduler=scheduler, progress=False)
    assert not tmp_path.exists() or list(RunStore(tmp_path)) == []


@pytest.mark.parametrize("options, message", [
    ({"scheduler": "none", "workers": 2}, "local cluster"),
    ({"scheduler": "tcp://127.0.0.1:8786", "threads_per_task": 2}, "local cluster"),
    ({"scheduler": "tcp://127.0.0.1:8786", "security": {}}, "needs a tls://"),
    ({"scheduler": "tls://127.0.0.1:8786"}, "uses TLS"),
    ({"scheduler": "local", "workers": 0}, "workers must be a positive integer"),
    ({"retries": -1}, "retries"),
    ({"scheduler": "local", "fns": {0: lambda seed, **kw: ({}, None)}}, "not a top-level function"),
    ({"scheduler": "local", "fns": {0: nested_function()}}, "not a top-level function"),
])
def test_bad_options_are_refused_before_any_work(tmp_path, options, message):
    options = dict(options)
    todo = demo_tasks(fns=options.pop("fns", None))
    with pytest.raises(InputError, match=message):
        run_tasks(todo, RunStore(tmp_path), progress=False, **options)


def test_a_cluster_without_distributed_installed_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)                 # import distributed fails
    with pytest.raises(InputError, match=r'pip install -e "\.\[cluster\]"'):
        run_tasks(demo_tasks(), RunStore(tmp_path), scheduler="local", progress=False)
    assert run_tasks(demo_tasks(1), RunStore(tmp_path), progress=False).ran    # in process: not needed


@pytest.mark.parametrize("cores, workers, threads, want", [
    (2, None, None, (2, 1)), (8, None, None, (8, 1)), (8, 2, None, (2, 4)), (8, 3, None, (3, 2)),
    (8, None, 4, (2, 4)), (2, None, 4, (1, 4)), (8, 4, 4, (4, 4)), (1, 2, None, (2, 1)),
])
def test_local_size_keeps_workers_times_threads_at_the_cores(cores, workers, threads, want):
    assert dask_cluster.local_size(cores, workers, threads) == want


@needs_distributed
def test_security_accepts_a_security_a_dict_of_pem_files_or_a_directory(tmp_path):
    from distributed.security import Security

    for name in ("ca.pem", "client.pem"):
        (tmp_path / name).write_text("PEM")
    given = Security()
    assert dask_cluster.as_security(given) is given and dask_cluster.as_security(None) is None
    files = {"tls_ca_file": tmp_path / "ca.pem", "tls_client_cert": tmp_path / "client.pem"}
    s = dask_cluster.as_security(files)
    assert (s.tls_ca_file, s.tls_client_cert, s.require_encryption) == (
        str(tmp_path / "ca.pem"), str(tmp_path / "client.pem"), True)
    assert dask_cluster.as_security(tmp_path).tls_ca_file == str(tmp_path / "ca.pem")
    for bad, message in [({"tls_ca_file": tmp_path / "ca.pem", "password": 1}, "unknown field 'password'"),
                         ({"tls_ca_file": tmp_path / "ca.pem"}, "tls_client_cert is missing"),
                         ({"tls_ca_file": tmp_path / "no.pem", "tls_client_cert": tmp_path / "client.pem"},
                          "not a file"),
                         (tmp_path / "ca.pem", "not a directory"), (42, "got int")]:
        with pytest.raises(InputError, match=message):
            dask_cluster.as_security(bad)


@needs_distributed
def test_an_unreachable_scheduler_is_one_line_within_the_timeout(tmp_path):
    start = time.perf_counter()
    with pytest.raises(InputError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9") as e:
        run_tasks(demo_tasks(), RunStore(tmp_path), scheduler="tcp://127.0.0.1:9", connect_timeout=1,
                  progress=False)
    assert "\n" not in str(e.value) and time.perf_counter() - start < 20


@needs_distributed
def test_a_local_cluster_on_loopback_stores_the_in_process_records(tmp_path, expected):
    store, said = RunStore(tmp_path), []
    names = [*dask_cluster.THREAD_VARIABLES, "PYTHONHASHSEED", "MALLOC_TRIM_THRESHOLD_"]
    environment = {name: os.environ.get(name) for name in names}
    result = run_tasks(demo_tasks(), store, scheduler="local", workers=2, progress=False, log=said.append)
    assert {name: os.environ.get(name) for name in names} == environment        # restored after the cluster
    assert result.scheduler.startswith("tcp://127.0.0.1:"), result.scheduler
    assert snapshot(result) == expected and len(result.ran) == 6
    assert "2 workers, 1 BLAS/Numba thread(s) each" in said[1], said
    again = run_tasks(demo_tasks(), store, scheduler="local", progress=False)          # starts no cluster
    assert len(again.reused) == 6 and again.ran == () and again.scheduler is None


@pytest.fixture(scope="module")
def cluster():
    """A 2-worker local cluster and a client of the test's own (to inspect and kill workers)."""
    distributed = pytest.importorskip("distributed")
    with dask_cluster.local_cluster(workers=2) as c:
        client = distributed.Client(c, set_as_default=False)
        yield c, client
        client.close()


def test_the_local_cluster_listens_on_loopback_and_pins_worker_threads(cluster):
    c, client = cluster
    assert c.scheduler_address.startswith("tcp://127.0.0.1:"), c.scheduler_address
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2 and all(a.startswith("tcp://127.0.0.1:") for a in workers), list(workers)
    for name in dask_cluster.THREAD_VARIABLES:
        assert set(client.run(os.getenv, name).values()) == {"1"}, name


def test_a_worker_killed_mid_run_loses_nothing(tmp_path, cluster, expected):
    c, client = cluster
    store = RunStore(tmp_path)
    pids = list(client.run(os.getpid).values())
    stored_at_kill = []

    def kill_one_worker_after_the_first_run():
        deadline = time.monotonic() + 60
        while not list(store) and time.monotonic() < deadline:
            time.sleep(0.02)
        stored_at_kill.append(len(list(store)))
        os.kill(pids[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_one_worker_after_the_first_run, daemon=True)
    killer.start()
    result = run_tasks(demo_tasks(delay=0.4), store, scheduler=c.scheduler_address, progress=False)
    killer.join()
    assert stored_at_kill and stored_at_kill[0] < 6, stored_at_kill              # killed while running
    assert len(result.ran) == 6 and snapshot(result) == expected
    assert pids[0] not in client.run(os.getpid).values()


def test_a_task_failing_on_a_cluster_is_one_line_naming_it(tmp_path, cluster):
    c, _ = cluster
    todo = demo_tasks(4)
    todo[1] = Task(todo[1].key, example_task, (1,), {"n": -1}, "bad run")
    store = RunStore(tmp_path)
    with pytest.raises(RunError, match="^task bad run failed: n must be a positive integer, got -1; "
                                       "the 3 runs that finished are stored$"):
        run_tasks(todo, store, scheduler=c.scheduler_address, retries=0, progress=False)
    assert len(list(store)) == 3


def test_example_task_is_deterministic_in_its_seed():
    (r1, a1), (r2, a2) = example_task(7, 3), example_task(7, 3)
    assert r1 == r2 and np.array_equal(a1["a"], a2["a"]) and a1["a"].shape == (3, 3)
    assert example_task(8, 3)[0] != r1
