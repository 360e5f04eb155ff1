"""Dask for the task runner (:mod:`refimpl.tasks`): a local cluster sized to the cores, TLS, a client.

**Sizing rule (local).** One task per worker process (``threads_per_worker=1``) and the BLAS / OpenMP /
Numba threads of each worker set to ``threads_per_task`` (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS``, ``NUMBA_NUM_THREADS``, set before the worker starts), with workers × threads =
cores: by default one worker per core and one thread each; ``workers=W`` gives each ``cores // W``
threads; ``threads_per_task=T`` gives ``cores // T`` workers. The scheduler and workers listen on
127.0.0.1 only, without a dashboard. ``distributed`` is an optional extra (``pip install -e ".[cluster]"``),
imported only here.
"""

import contextlib
import logging
import os
from pathlib import Path

from refimpl import validate
from refimpl.errors import InputError, RunError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
TLS_FIELDS = ("tls_ca_file", "tls_client_cert", "tls_client_key")
TLS_FILES = {"tls_ca_file": "ca.pem", "tls_client_cert": "client.pem", "tls_client_key": "client.key"}


def first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(e, (InputError, RunError)) and text:
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def distributed_module():
    try:
        import distributed
    except ImportError:
        raise InputError("a Dask cluster needs the optional package distributed: "
                         'pip install -e ".[cluster]"') from None
    return distributed


def cores_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                             # not on Linux
        return os.cpu_count() or 1


def local_size(cores: int | None = None, workers=None, threads_per_task=None) -> tuple[int, int]:
    """(worker processes, BLAS/Numba threads per task) of a local cluster on `cores` cores (default: the
    cores this process may use); see the sizing rule in the module docstring."""
    cores = cores_available() if cores is None else validate.positive_int("cores", cores)
    w = None if workers is None else validate.positive_int("workers", workers)
    t = None if threads_per_task is None else validate.positive_int("threads_per_task", threads_per_task)
    if w is None:
        t = t or 1
        return max(1, cores // t), t
    return w, t or max(1, cores // w)


@contextlib.contextmanager
def local_cluster(workers=None, threads_per_task=None):
    """A ``distributed.LocalCluster`` sized by :func:`local_size`, its scheduler and workers listening on
    127.0.0.1 only, no dashboard; closed on exit. The thread variables are set in the workers' environment
    before they start (Dask's nanny sets them in this process too: they are restored on exit)."""
    distributed = distributed_module()
    import dask

    n, threads = local_size(workers=workers, threads_per_task=threads_per_task)
    env = {name: str(threads) for name in THREAD_VARIABLES}
    pre_spawn = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **env}
    saved = {name: os.environ.get(name) for name in [*pre_spawn, "PYTHONHASHSEED"]}
    try:
        os.environ.update(env)             # Dask lets this process's environment override its config
        try:
            with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}):
                cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                   host="127.0.0.1", dashboard_address=None,
                                                   silence_logs=logging.ERROR, env=env)
        except Exception as e:     # most often: a script without `if __name__ == "__main__":` (spawn)
            raise RunError(f"could not start a local Dask cluster: {first_line(e)}") from None
        try:
            yield cluster
        finally:
            cluster.close()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def as_security(security):
    """The ``security=`` of :func:`run_tasks` as a ``distributed.security.Security`` (None: no TLS).

    Accepted: a ``Security`` (as is); a dict with ``tls_ca_file``, ``tls_client_cert`` and optionally
    ``tls_client_key`` (paths to PEM files; the key may sit in the certificate's file); or a directory
    holding ``ca.pem``, ``client.pem`` and optionally ``client.key``. Encryption is then required.
    """
    if security is None:
        return None
    distributed = distributed_module()
    if isinstance(security, distributed.security.Security):
        return security
    if isinstance(security, (str, Path)):
        folder = Path(security)
        if not folder.is_dir():
            raise InputError(f"security: {folder} is not a directory holding ca.pem and client.pem")
        security = {field: folder / name for field, name in TLS_FILES.items()
                    if field != "tls_client_key" or (folder / name).exists()}
    if not isinstance(security, dict):
        raise InputError(f"security must be a Security, a dict of {', '.join(TLS_FIELDS)} or a directory, "
                         f"got {type(security).__name__}")
    unknown = sorted(set(security) - set(TLS_FIELDS))
    if unknown:
        raise InputError(f"security: unknown field {unknown[0]!r}; use {', '.join(TLS_FIELDS)}")
    for field in TLS_FIELDS:
        if field != "tls_client_key" and field not in security:
            raise InputError(f"security: {field} is missing")
        if field in security and not Path(security[field]).is_file():
            raise InputError(f"security: {field} {security[field]} is not a file")
    return distributed.security.Security(require_encryption=True,
                                         **{field: str(path) for field, path in security.items()})


@contextlib.contextmanager
def client(scheduler: str, workers, threads_per_task, security, connect_timeout: float, say):
    """A ``distributed.Client`` of a new local cluster or of the scheduler at `scheduler`; closed on exit."""
    distributed = distributed_module()
    if scheduler == "local":
        with local_cluster(workers, threads_per_task) as cluster:
            n, threads = local_size(workers=workers, threads_per_task=threads_per_task)
            say(f"local cluster {cluster.scheduler_address}: {n} workers, {threads} BLAS/Numba thread(s) each"
                + (f" (more than the {cores_available()} cores)" if n * threads > cores_available() else ""))
            client = distributed.Client(cluster, set_as_default=False)
            try:
                yield client, cluster.scheduler_address
            finally:
                client.close()
        return
    try:
        client = distributed.Client(scheduler, security=security, timeout=connect_timeout,
                                    set_as_default=False)
    except Exception as e:                          # refused, timed out, TLS handshake failed, …
        raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {first_line(e)}") from None
    try:
        n = len(client.scheduler_info().get("workers", {}))
        say(f"scheduler {scheduler}: {n} workers" + ("; tasks wait for workers to join" if n == 0 else ""))
        yield client, scheduler
    finally:
        client.close()


