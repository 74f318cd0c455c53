"""Sweeps of seeds x hyper-parameters as independent jobs, on this machine or on a Dask cluster.

::

    grid = grid_product(seed=[0, 1, 2], c=[0.0, 1.0])       # 6 keyword dicts, seed slowest
    results = run_grid(run_split_mnist, grid, n_jobs=4)    # local processes (joblib/loky)
    results = run_grid(run_split_mnist, grid, scheduler="tcp://10.0.0.5:8786")   # a cluster
    record = merge_results(results, grid)

The same call goes to a Dask cluster by naming its scheduler: joblib's ``dask`` backend sends each
job to the cluster's workers (``joblib.parallel_config(backend="dask")`` inside a
``distributed.Client(address)``, as joblib's documentation describes). The job function must be importable on the workers (a module-level
function of an installed package, not a lambda), and every job must depend only on its keyword
arguments, so that a result does not depend on where or in which order it ran.
"""
import functools
import itertools
import logging
import os
import re
import socket
import threading

import numpy as np

from synapse.errors import ConfigError
from synapse.progress import Progress

__all__ = ["BACKENDS", "grid_product", "run_grid", "merge_results", "group_runs", "connect",
           "check_n_jobs", "local_workers", "map_jobs"]

BACKENDS = ("loky", "multiprocessing", "threading", "sequential", "dask")
DASK_HINT = "pip install 'synapse-si[dask]'"
CONNECT_TIMEOUT_S = 10
ADDRESS = re.compile(r"^(?:(tcp|tls|ws|wss|ucx)://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def check_n_jobs(n_jobs):
    """``n_jobs`` as joblib takes it: an int >= 1, or -1 for one per CPU."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or \
            (n_jobs < 1 and n_jobs != -1):
        raise ConfigError("jobs", f"must be an integer >= 1 (or -1: one per CPU), got {n_jobs!r}")
    return int(n_jobs)


def cpu_cores():
    """The CPU cores this process may run on (its affinity mask, where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                       # macOS, Windows
        return os.cpu_count() or 1


def local_workers(n_jobs, n_items):
    """``(workers, note)``: the local processes to start for ``n_items`` jobs. ``n_jobs`` (-1:
    one per core), but never more than the jobs, nor than the machine's cores: a worker beyond
    them only competes for a core (and holds its own copy of the data). ``note`` is one line
    when the cores cut down an explicit request, else None."""
    n_jobs = check_n_jobs(n_jobs)
    cores = cpu_cores()
    asked = cores if n_jobs == -1 else n_jobs
    workers = max(1, min(asked, cores, n_items))
    note = None
    if asked > cores and n_items > cores:
        note = (f"jobs: {n_jobs} asked, but this machine has {cores} CPU core"
                f"{'s' * (cores > 1)}: {workers} runs at once")
    return workers, note


def connect(scheduler, timeout=None):
    """(client, owned) for a Dask scheduler address, connected within ``timeout`` seconds.

    A malformed address, a missing ``distributed`` or an unreachable scheduler is ONE
    :class:`~synapse.errors.ConfigError` naming the address; ``distributed``'s own retry log is
    kept quiet meanwhile.
    """
    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    if not isinstance(scheduler, str):
        return _dask_client(scheduler)
    if not ADDRESS.match(scheduler.strip()):
        raise ConfigError("scheduler", f"{scheduler!r} is not a scheduler address; expected "
                                       f"tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786")
    try:
        import distributed
    except ImportError:
        raise ConfigError("scheduler", f"sending runs to a Dask cluster needs dask.distributed, "
                                       f"which is not installed: {DASK_HINT}") from None
    quiet = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    address = scheduler.strip()
    host, port = ADDRESS.match(address).group(2, 3)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise ConfigError("scheduler", f"cannot reach a Dask scheduler at {address} "
                                       f"({type(err).__name__})") from None
    try:
        failure = _handshake(distributed, address, timeout)
        if failure is None:
            return distributed.Client(address, timeout=f"{timeout}s", set_as_default=False), True
    except (OSError, TimeoutError) as err:
        failure = type(err)
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
    if issubclass(failure, TimeoutError):
        why = f"the server at {address} accepted the connection but did not answer in {timeout} s"
    elif issubclass(failure, OSError):
        why = f"cannot reach a Dask scheduler at {address} within {timeout} s ({failure.__name__})"
    else:
        why = f"the server at {address} answered, but not as a Dask scheduler ({failure.__name__})"
    raise ConfigError("scheduler", why)


def _handshake(distributed, address, timeout):
    """None if a Dask scheduler at ``address`` completes Dask's handshake within ``timeout``
    seconds, else the type of the failure (TimeoutError: no answer).

    Made before ``distributed.Client`` is, because the client's own timeout does not bound every
    wait: a server that accepts the connection and never answers holds it forever, and one that
    answers other bytes raises whatever they lead to (a 3 EiB allocation), then blocks 20 s in
    closing. The handshake runs in its own thread and event loop (a caller's loop, as in a
    notebook, may already be running), abandoned if it outlives the deadline."""
    import asyncio

    async def shake():
        # distributed's own limit later than ours: our TimeoutError alone means "no answer"
        comm = await asyncio.wait_for(distributed.comm.connect(address, timeout=timeout + 5),
                                      timeout)
        await comm.close()

    box = {"failure": TimeoutError}

    def attempt():
        try:
            asyncio.run(shake())
            box["failure"] = None
        except asyncio.CancelledError:
            pass
        except Exception as err:                     # any failure is the address's
            box["failure"] = type(err)

    thread = threading.Thread(target=attempt, name="synapse-dask-handshake", daemon=True)
    thread.start()
    thread.join(timeout + 1)
    return TimeoutError if thread.is_alive() else box["failure"]


def grid_product(**axes):
    """All combinations of the given values, as a list of keyword dicts.

    ``grid_product(seed=[0, 1], c=[0, 1])`` ->
    ``[{'seed': 0, 'c': 0}, {'seed': 0, 'c': 1}, {'seed': 1, 'c': 0}, {'seed': 1, 'c': 1}]``:
    the first axis varies slowest (``itertools.product`` order). A single non-list value is one
    point on its axis. The keys are the job function's keyword names.
    """
    names, values = [], []
    for name, v in axes.items():
        v = list(v) if isinstance(v, (list, tuple, range, np.ndarray)) else [v]
        if not v:
            raise ValueError(f"grid axis {name!r} has no values")
        names.append(name)
        values.append(v)
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def _call(fn, kw):
    """Run one job; a failure names the grid point it came from."""
    try:
        return fn(**kw)
    except Exception as err:
        if hasattr(err, "add_note"):  # Python >= 3.11
            err.add_note(f"in sweep job {getattr(fn, '__name__', fn)}(**{kw!r})")
        raise


def _dask_client(scheduler):
    """(client, owned): a ``distributed.Client`` for ``scheduler``; ``owned`` means close it after.

    ``scheduler`` is an address (``"tcp://host:8786"``), a ``distributed.Client``, a cluster object
    (``LocalCluster``, ...), or None for the client already active in this process.
    """
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            f"the dask backend needs dask.distributed, which is not installed: {DASK_HINT}"
        ) from err
    if scheduler is None:
        try:
            return distributed.get_client(), False
        except ValueError:
            raise ValueError(
                "backend='dask' needs a cluster: pass scheduler='tcp://HOST:8786' (the address "
                "printed by `dask scheduler`) or create a distributed.Client first"
            ) from None
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    return distributed.Client(scheduler, set_as_default=False), True


def run_grid(fn, grid, n_jobs=1, backend="loky", scheduler=None, progress=True, desc="sweep"):
    """Run ``fn(**kw)`` for every ``kw`` in ``grid`` as independent jobs; results in grid order.

    Locally through joblib: ``backend`` is ``"loky"`` (processes, the default),
    ``"multiprocessing"``, ``"threading"`` or ``"sequential"``, with ``n_jobs`` workers (-1: one per CPU; 1 runs the jobs
    one after another in this process). On Dask: give ``scheduler`` (an address such as
    ``"tcp://10.0.0.5:8786"``, a ``distributed.Client`` or a cluster object), or
    ``backend="dask"`` to use the client already active in this process. On Dask, ``n_jobs`` is
    ignored: every worker thread of the cluster takes jobs. A client opened here is closed at the
    end. ``progress`` shows a counter of finished jobs on stderr.
    """
    grid = list(grid)
    for k, kw in enumerate(grid):
        if not isinstance(kw, dict):
            raise TypeError(
                f"grid[{k}] must be a dict of keyword arguments, got {type(kw).__name__}")
    return map_jobs(functools.partial(_call, fn), grid, n_jobs, backend, scheduler, progress,
                    desc)


def map_jobs(fn, items, n_jobs=1, backend="loky", scheduler=None, progress=True, desc="jobs"):
    """``[fn(item) for item in items]`` as independent jobs, as :func:`run_grid` runs them
    (the experiments' runner passes each job its typed run)."""
    items = list(items)
    if scheduler is not None:
        backend = "dask"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if not items:
        return []
    if n_jobs == 1 and backend != "dask":       # one after another here: no joblib (0.1 s)
        return _collect(lambda jobs: map(fn, jobs), items, progress, desc)
    import joblib

    jobs = [joblib.delayed(fn)(item) for item in items]
    if backend != "dask":
        if isinstance(n_jobs, (int, np.integer)) and (n_jobs == -1 or n_jobs > len(items)):
            n_jobs = min(cpu_cores() if n_jobs == -1 else int(n_jobs), len(items))  # none idle
        with joblib.parallel_config(backend=backend, n_jobs=n_jobs):
            return _collect(joblib.Parallel(return_as="generator"), jobs, progress, desc)
    client, owned = _dask_client(scheduler)
    try:
        with joblib.parallel_config(backend="dask", client=client):
            return _collect(joblib.Parallel(return_as="generator"), jobs, progress, desc)
    finally:
        if owned:
            client.close()


def _collect(parallel, jobs, progress, desc):
    results = []
    with Progress(total=len(jobs), desc=desc, enabled=progress) as bar:
        for r in parallel(jobs):
            results.append(r)
            bar.update(1)
    return results


def merge_results(results, grid=None):
    """One record from the per-job result dicts of a sweep.

    Returns ``{"n_runs": N, "params": {name: [distinct values, first-seen order]}, "runs": [...]}``
    where each run is a copy of its result dict; with ``grid`` (the list given to
    :func:`run_grid`), each run also gets ``"params"``: that job's keyword arguments.
    """
    results = list(results)
    if grid is not None and len(grid) != len(results):
        raise ValueError(f"{len(results)} results for a grid of {len(grid)} points")
    runs = []
    for k, r in enumerate(results):
        if not isinstance(r, dict):
            raise TypeError(f"result {k} is a {type(r).__name__}; sweep jobs must return dicts")
        run = dict(r)
        if grid is not None:
            run["params"] = {**r.get("params", {}), **grid[k]}
        runs.append(run)
    params = {}
    for run in runs:
        for name, v in run.get("params", {}).items():
            seen = params.setdefault(name, [])
            if v not in seen:
                seen.append(v)
    return {"n_runs": len(runs), "params": params, "runs": runs}


def group_runs(record, by, field):
    """``{value of params[by]: np.stack of run[field] over the runs with that value}``.

    ``group_runs(record, "c", "R")`` gives ``{0: (n_seeds, T, T), 1: (n_seeds, T, T)}``, what
    :mod:`synapse.experiments.plotting` takes. ``by`` may be a tuple of names (keys are tuples).
    Groups keep first-seen order; runs inside a group keep grid order.
    """
    runs = record["runs"] if isinstance(record, dict) else record
    groups = {}
    for run in runs:
        p = run.get("params", {})
        key = tuple(p[b] for b in by) if isinstance(by, tuple) else p[by]
        groups.setdefault(key, []).append(np.asarray(run[field], dtype=np.float64))
    return {key: np.stack(v) for key, v in groups.items()}
