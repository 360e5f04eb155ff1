"""The task runner behind ``reproduce``: independent runs, in this process or on Dask workers, each stored
by the client as it finishes.

    Task(key, fn, args, kwargs, label, about)    one run: ``fn(*args, **kwargs) -> (record, arrays)``
    job(kind, settings, seed, fn, args, …)       a Task keyed by what determines its result
    run_tasks(tasks, store, scheduler=…)         reuse stored runs, run the others, store each; TaskResults
    cluster.local_size(cores, workers, threads_per_task) how a local cluster is sized (see below)
    local_cluster(workers, threads_per_task)     a LocalCluster on 127.0.0.1 (context manager)
    cluster.as_security(security)                        the ``security=`` argument as a distributed Security
    example_task(seed, n, delay)                 a model task function (tests, cluster smoke checks)

**Task functions.** ``fn`` is a top-level function of a module of the installed package (Dask workers
import it by its name; a lambda, a nested function or a function of ``__main__`` or of a test module is
refused for a cluster). It receives everything that determines its result, its seed included, and
returns ``(record, arrays)``: a JSON-able dict and a dict of NumPy arrays (or None). It never writes
files: the client stores what it returns (:mod:`refimpl.runstore`), so a worker lost mid-run loses
nothing and leaves nothing half-written. The runner adds nothing random and nothing about where a task
ran to its record: records are identical in process and on a cluster. Where each run was made (host,
pid) is returned apart, in ``TaskResults.provenance``.

**Schedulers.** ``"none"``: in this process, one task after another, each stored as it finishes (an
interrupted run resumes where it stopped). ``"local"``: a ``LocalCluster`` of worker processes
listening on 127.0.0.1 only, no dashboard. An address ``tcp://host:port``, ``tls://host:port`` or
``inproc://…``: an existing scheduler (``dask scheduler`` / ``dask worker``; size its workers yourself
by the rule below). Tasks are submitted with Dask's ``retries=`` and gathered with ``as_completed``.

**Sizing rule (local).** One task per worker process (``threads_per_worker=1``) and the BLAS / OpenMP /
Numba threads of each worker set to ``threads_per_task`` (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS``, ``NUMBA_NUM_THREADS``, set before the worker starts), with workers × threads =
cores: by default one worker per core and one thread each; ``workers=W`` gives each ``cores // W``
threads; ``threads_per_task=T`` gives ``cores // T`` workers.

**Failures.** A task that raises does not stop the others: they finish and are stored, then one
:class:`RunError` line names the first failed task's label and its exception's first line. A task's own
exception is not retried (it would raise again: every input is an argument); Dask's ``retries`` are for
tasks whose worker was lost. ``KeyboardInterrupt`` stops at once (pending cluster tasks are
cancelled); what finished is stored.
``distributed`` is an optional extra (``pip install -e ".[cluster]"``), imported only for a cluster.
"""

import contextlib
import dataclasses
import importlib
import os
import re
import socket
import time
from collections.abc import Callable, Sequence

import numpy as np

from refimpl import cluster, fileio, progress, validate
from refimpl.errors import InputError, RunError
from refimpl.runstore import Run, RunStore, check_key, describe, digest

_ADDRESS = re.compile(r"(tcp|tls)://[^\s/]+|inproc://\S+")


@dataclasses.dataclass(frozen=True)
class Task:
    """One run: ``fn(*args, **kwargs) -> (record, arrays)``, stored under `key` (:func:`runstore.key`).
    `label` names it in the progress bar and in errors; `about` (the key's content, :func:`runstore.describe`)
    is stored beside the record so that a stored run says what it is."""

    key: str
    fn: Callable
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    label: str = ""
    about: dict | None = None


def job(kind: str, settings: dict, seed: int, fn: Callable, args: tuple = (), *, backend: str | None = None,
        dtype=None, label: str = "") -> Task:
    """A :class:`Task` keyed by what determines its result (:func:`runstore.describe`): the run `kind` (a
    figure name), its `settings`, `seed`, `backend`, `dtype` and the package version."""
    about = describe(kind, settings, seed, backend, dtype)
    return Task(digest(about), fn, tuple(args), {}, label or f"{kind} seed {seed}", about)


@dataclasses.dataclass
class TaskResults:
    """What :func:`run_tasks` did: every run by key, the keys run now and those reused from the store (in
    task order), where the scheduler was (``"in-process"``, its address, or None when nothing ran) and,
    for each run made now, where it ran (``"host pid N"``)."""

    runs: dict[str, Run]
    ran: tuple[str, ...]
    reused: tuple[str, ...]
    scheduler: str | None
    provenance: dict[str, str]

    def summary(self) -> str:
        return f"{len(self.ran)} runs made, {len(self.reused)} reused from the store"


def example_task(seed: int, n: int = 3, delay: float = 0.0):
    """A model task function: a seeded (n, n) Gaussian matrix, its trace and Frobenius norm.

    Top-level in an installed module, every input an argument, nothing written, so any worker gives the
    same result. `delay` (seconds) only makes it slow (tests kill a worker mid-run).

    Returns ``({"seed", "n", "trace", "frobenius"}, {"a": ndarray of shape (n, n)})``.
    """
    n = validate.positive_int("n", n)
    rng = np.random.default_rng(validate.seed(seed))
    a = rng.standard_normal((n, n))                                    # (n, n)
    time.sleep(validate.nonneg_number("delay", delay))
    record = {"seed": seed, "n": n, "trace": float(np.trace(a)), "frobenius": float(np.linalg.norm(a))}
    return record, {"a": a}


def _call(fn, args, kwargs):
    """Run one task where it was sent: (its output or None, the first line of its exception or None,
    where it ran). The task's own exception is returned, not raised: it would fail again (every input is
    an argument), so Dask's retries are kept for lost workers."""
    where = f"{socket.gethostname()} pid {os.getpid()}"
    try:
        return fn(*args, **kwargs), None, where
    except Exception as e:                         # KeyboardInterrupt and SystemExit stop the whole run
        return None, cluster.first_line(e), where


def _check_importable(task: Task) -> None:
    """Workers import ``task.fn`` by module and name: refuse what they could not import."""
    fn = task.fn
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    found = None
    if module and module != "__main__" and "<" not in name:
        try:
            found = importlib.import_module(module)
            for part in name.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            found = None
    if found is not fn:
        raise InputError(f"task {task.label}: {module}.{name} is not a top-level function of an importable "
                         f"module; Dask workers import task functions by name")


def _same(a: Task, b: Task) -> bool:
    try:
        return bool(a.fn is b.fn and a.args == b.args and a.kwargs == b.kwargs)
    except (TypeError, ValueError):                                    # arrays among the arguments
        return False


def _check_tasks(tasks) -> list[Task]:
    """The tasks in order, each key once (a repeated identical task is run once)."""
    out: dict[str, Task] = {}
    for t in tasks:
        if not isinstance(t, Task):
            raise InputError(f"tasks must be Task objects, got {type(t).__name__}")
        check_key(t.key)
        if not callable(t.fn) or not isinstance(t.args, tuple) or not isinstance(t.kwargs, dict):
            raise InputError(f"task {t.label or t.key}: fn must be callable, args a tuple, kwargs a dict")
        if not t.label:
            t = dataclasses.replace(t, label=t.key)
        if t.key in out and not _same(out[t.key], t):
            raise InputError(f"tasks {out[t.key].label!r} and {t.label!r} share the key {t.key} "
                             f"but not their function and arguments")
        out.setdefault(t.key, t)
    return list(out.values())


def _check_scheduler(scheduler, workers, threads_per_task, security) -> str:
    """``"none"``, ``"local"`` or ``"address"``; InputError for any other value or a mismatched option."""
    if scheduler is None or scheduler == "none":
        mode = "none"
    elif scheduler == "local":
        mode = "local"
    elif isinstance(scheduler, str) and _ADDRESS.fullmatch(scheduler):
        mode = "address"
    else:
        raise InputError(f"unknown scheduler {scheduler!r}; use none, local, or a scheduler address "
                         f"tcp://host:port, tls://host:port")
    if mode != "local" and (workers is not None or threads_per_task is not None):
        raise InputError("workers and threads_per_task size a local cluster (scheduler 'local') only")
    tls = mode == "address" and scheduler.startswith("tls://")
    if security is not None and not tls:
        raise InputError(f"security (TLS) needs a tls:// scheduler address, got {scheduler!r}")
    if tls and security is None:
        raise InputError(f"the scheduler {scheduler} uses TLS: give security (certificates)")
    return mode


def _keep(store: RunStore, task: Task, out) -> Run:
    """Store one task's output (client side); RunError if it is not ``(record, arrays)``."""
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], dict)
            and (out[1] is None or isinstance(out[1], dict))):
        raise RunError(f"it returned a {type(out).__name__}, not (record dict, arrays dict or None)")
    record, arrays = out
    try:
        return store.put(task.key, record, arrays, about=task.about)
    except InputError as e:
        raise RunError(str(e)) from None


class _Outcomes:
    """Runs made so far, where, and the failures (label, first line) — filled as tasks finish."""

    def __init__(self, store: RunStore, bar, say):
        self.store, self.bar, self.say = store, bar, say
        self.runs: dict[str, Run] = {}
        self.where: dict[str, str] = {}
        self.failed: list[tuple[str, str]] = []

    def done(self, task: Task, out, error: str | None, where: str | None) -> None:
        """Store a finished task's output, or note its failure (`error`: one line)."""
        if error is None:
            try:
                self.runs[task.key] = _keep(self.store, task, out)
                self.where[task.key] = where
            except RunError as e:
                error = str(e)
        if error is not None:
            self.failed.append((task.label, error))
            self.say(f"task {task.label} failed: {error}")
        self.bar.update(1, task.label)


def _run_here(todo: list[Task], outcomes: _Outcomes) -> None:
    for task in todo:
        outcomes.done(task, *_call(task.fn, task.args, task.kwargs))


def _run_on(client, todo: list[Task], outcomes: _Outcomes, retries: int) -> None:
    from distributed import as_completed

    pending = {client.submit(_call, t.fn, t.args, t.kwargs, retries=retries, pure=False): t for t in todo}
    try:
        for future in as_completed(list(pending), loop=client.loop):
            task = pending.pop(future)
            try:
                result = future.result()
            except Exception as e:                     # lost workers beyond the retries, unpicklable data…
                result = None, cluster.first_line(e), None
            outcomes.done(task, *result)
            future.release()
    finally:
        if pending:                                                    # interrupted: stop the rest
            client.cancel(list(pending))


def run_tasks(tasks: Sequence[Task], store: RunStore, *, scheduler: str = "none", workers: int | None = None,
              threads_per_task: int | None = None, security=None, retries: int = 2, progress: bool = True,
              log: Callable[[str], None] | None = None, connect_timeout: float = 10.0) -> TaskResults:
    """Run every task whose key is not in `store`, storing each run as it finishes; reuse the others.

    Parameters
    ----------
    tasks : sequence of Task
        Independent runs; a key given twice with the same function and arguments runs once.
    store : RunStore
        Read for reuse, and written by this process only (never by a worker).
    scheduler : ``"none"``, ``"local"`` or a scheduler address (``tcp://``, ``tls://``, ``inproc://``)
        Where tasks run (module docstring). A cluster is started or reached only when some task must run.
    workers, threads_per_task : int, optional
        Size of the ``"local"`` cluster (:func:`local_size`).
    security : see :func:`as_security`
        TLS certificates for a ``tls://`` scheduler.
    retries : int
        Dask's retries of a task whose worker was lost (a task's own exception is not retried).
    progress : bool
        A progress bar over the tasks to run, on stderr.
    log : callable(str), optional
        One-line remarks: how many runs are reused, the cluster, each failure (printed by the progress
        bar while it is drawn, so they keep their own lines).
    connect_timeout : float
        Seconds to reach an existing scheduler before a one-line InputError.

    Raises InputError for bad arguments before any work; RunError (one line: the first failed task's label
    and its exception's first line) after the other tasks finished and were stored.
    """
    tasks = _check_tasks(tasks)
    mode = _check_scheduler(scheduler, workers, threads_per_task, security)
    retries = validate.nonneg_int("retries", retries)
    connect_timeout = validate.positive_number("connect_timeout", connect_timeout)
    if not isinstance(store, RunStore):
        raise InputError(f"store must be a RunStore, got {type(store).__name__}")
    if mode != "none":
        cluster.distributed_module()
        cluster.local_size(workers=workers, threads_per_task=threads_per_task)
        security = cluster.as_security(security)
        for task in tasks:
            _check_importable(task)
    fileio.probe_dir(store.root, "run store")
    say = log or (lambda text: None)

    reused = {t.key: run for t in tasks if (run := store.get(t.key)) is not None}
    todo = [t for t in tasks if t.key not in reused]
    say(f"{len(reused)} of {len(tasks)} runs reused from {store.root}; {len(todo)} to run")
    where = "in-process" if todo and mode == "none" else None
    with _bar(len(todo), progress, log) as (bar, say_in_bar):
        outcomes = _Outcomes(store, bar, say_in_bar)
        if todo and mode == "none":
            _run_here(todo, outcomes)
        elif todo:
            connection = cluster.client(scheduler, workers, threads_per_task, security, connect_timeout,
                                        say_in_bar)
            with connection as (client, where):
                _run_on(client, todo, outcomes, retries)
    if outcomes.failed:
        label, line = outcomes.failed[0]
        more = f" ({len(outcomes.failed) - 1} more failed)" if len(outcomes.failed) > 1 else ""
        raise RunError(f"task {label} failed: {line}{more}; "
                       f"the {len(outcomes.runs)} runs that finished are stored")
    runs = {t.key: reused.get(t.key) or outcomes.runs[t.key] for t in tasks}
    return TaskResults(runs, tuple(t.key for t in todo), tuple(reused), where, outcomes.where)


@contextlib.contextmanager
def _bar(length: int, enabled: bool, log):
    """(bar, say): a progress bar over `length` tasks, and a `say` printing `log`'s remarks through the bar
    while it is drawn (so they keep their own lines); `say` is silent without `log`."""
    with progress.bar(length, "runs", enabled) as bar:
        if log is None:
            yield bar, lambda text: None
        else:
            yield bar, bar.log if enabled and length else log
