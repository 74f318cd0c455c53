"""Results folders: every number a run plots, its configuration and provenance, written safely.

A results folder belongs to one process at a time: :func:`claim_folder` creates it (or takes an
empty one) and holds an exclusive lock on ``.lock`` inside it until the run ends, so two runs
started at once can never write into one folder; a folder holding anything is never reused.

Each write goes to a temporary file in the destination folder, is flushed and fsync'ed, and only
then renamed over the destination with ``os.replace`` (atomic on POSIX and Windows). A crash or a
serialization error midway leaves the previous file exactly as it was: nothing is truncated in
place.

JSON holds no NaN or infinity, so non-finite floats are written as ``null``. Reading a matrix
back with ``np.array(rows, dtype=float)`` turns those ``null`` into NaN again.
"""
import dataclasses
import datetime
import fcntl
import io
import json
import math
import os
import pathlib
import platform
import time

import numpy as np

from ..errors import CheckpointError, ConfigError
from ..fileio import atomic_write_bytes, read_regular

__all__ = [
    "RESULTS_NAME",
    "JSONEncoder",
    "to_jsonable",
    "atomic_write_bytes",
    "atomic_write_json",
    "claim_folder",
    "lock_folder",
    "read_json",
    "run_metadata",
    "save_figure",
    "load_results",
]

RESULTS_NAME = "results.json"


def to_jsonable(obj):
    """A copy of ``obj`` built from dict/list/str/int/float/bool/None only.

    NumPy scalars and arrays become Python numbers and nested lists, CuPy arrays are copied to
    the host first, tuples become lists, paths become strings, dataclasses become dicts, and NaN
    or +-inf become None.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v) for v in items]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, (str, type(None))):
        return obj
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if hasattr(obj, "__cuda_array_interface__") and hasattr(obj, "get"):  # a CuPy array
        return to_jsonable(obj.get().tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    raise TypeError(f"cannot write an object of type {type(obj).__name__} to JSON: {obj!r:.80}")


class JSONEncoder(json.JSONEncoder):
    """``json.JSONEncoder`` that understands NumPy and writes NaN/inf as ``null``.

    ``json.dumps(obj, cls=JSONEncoder)``. (The stock encoder never calls ``default`` for floats,
    so NaN handling needs the whole object converted first, by :func:`to_jsonable`.)
    """

    def iterencode(self, o, _one_shot=False):
        return super().iterencode(to_jsonable(o), _one_shot)

    def default(self, o):
        return to_jsonable(o)


def atomic_write_json(path, obj, indent=2):
    """Serialize ``obj`` to JSON (see :class:`JSONEncoder`) and write it atomically to ``path``.

    The whole document is built in memory before any file is touched, so an object that cannot
    be serialized raises ``TypeError`` and leaves an existing ``path`` unchanged.
    """
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, sort_keys=False)
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))


class Folder:
    """A results folder claimed by this process: an exclusive lock on ``out/.lock`` is held
    until :meth:`release`, so two runs can never write into one folder."""

    def __init__(self, path, lock):
        self.path, self._lock = path, lock

    def release(self):
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def lock_folder(path, option="out"):
    """Lock ``path/.lock`` for this process (a :class:`Folder`), or one line saying who holds
    it; ``option`` names where the folder was given (``out``, or ``resume``)."""
    try:
        fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise ConfigError(option, f"cannot write in {path}: {err.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(option, f"{path} is in use by another synapse run; wait for it "
                                  f"to finish" + ("" if option == "resume" else
                                                  " or choose another folder")) from None
    return Folder(path, fd)


def claim_folder(out, experiment):
    """A new results folder, created and locked atomically by this process.

    ``out=None``: ``./results/<experiment>-<time>`` (``-2``, ``-3``, ... if taken). A given
    ``out`` must not exist yet or be empty; a folder holding anything is refused, never reused.
    """
    if out is None:
        root, name = pathlib.Path("results"), f"{experiment}-{time.strftime('%Y%m%d-%H%M%S')}"
        k = 1
        while True:
            path = root / (name if k == 1 else f"{name}-{k}")
            try:
                root.mkdir(parents=True, exist_ok=True)
                path.mkdir()
                break
            except FileExistsError:
                k += 1
            except OSError as err:
                raise ConfigError("out", f"cannot create {path}: {err.strerror}") from None
    else:
        path = pathlib.Path(out)
        if path.exists() and not path.is_dir():
            raise ConfigError("out", f"{path} is a file, not a folder")
        holder = results_folder_above(path)
        if holder is not None:
            raise ConfigError("out", f"{path} is inside {holder}, the results folder of another "
                                     f"synapse run (which writes and deletes files there); "
                                     f"choose a folder outside it")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError("out", f"cannot create {path}: {err.strerror}") from None
    folder = lock_folder(path)
    leftovers = [p.name for p in path.iterdir() if p.name != ".lock"]
    if leftovers:
        folder.release()
        raise ConfigError("out", f"{path} already holds {', '.join(sorted(leftovers)[:3])}"
                                 f"{', ...' if len(leftovers) > 3 else ''}: give a new folder, "
                                 f"or --resume {path} to continue the run in it")
    return folder


def results_folder_above(path):
    """The synapse results folder (``config.json`` and ``.lock``) holding ``path``, or None."""
    for folder in pathlib.Path(os.path.abspath(path)).parents:
        if (folder / "config.json").is_file() and (folder / ".lock").exists():
            return folder
    return None


MAX_JSON_BYTES = 256 * 2**20     # a run.json of 2,000 permuted tasks holds ~80 MB of R


def read_json(path, what):
    """The JSON document in the regular file ``path`` (at most ``MAX_JSON_BYTES``); a missing
    file says ``what`` it means; a FIFO, a device, a folder or a damaged file is one line."""
    if not os.path.lexists(path):
        raise CheckpointError(f"{path} is missing: {what}")
    data = read_regular(path, "file", MAX_JSON_BYTES, CheckpointError)
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); the file is damaged") from None


def folder_size(path):
    return sum(p.stat().st_size for p in pathlib.Path(path).rglob("*") if p.is_file())


def human_bytes(n):
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


def _version(dist):
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _synapse_version():
    v = _version("synapse-si")
    if v is not None:
        return v
    import synapse  # not installed (run from a checkout): the package may still say
    return getattr(synapse, "__version__", "unknown (not installed)")


def run_metadata():
    """Provenance of a run: versions, platform, CPU count and a UTC time stamp.

    No host name, user name or path is recorded, so results folders can be shared as they are.
    """
    try:
        cpus_usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus_usable = os.cpu_count()
    optional = {d: _version(d) for d in ("matplotlib", "joblib", "distributed", "cupy-cuda12x",
                                         "cupy-cuda13x", "cupy", "mlxtend", "scikit-learn")}
    return {
        "synapse": _synapse_version(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "packages": {k: v for k, v in optional.items() if v is not None},
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_count_usable": cpus_usable,
        "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def save_figure(fig, path_without_ext, formats=("png", "svg"), dpi=150):
    """Save a matplotlib figure once per format, each file written atomically.

    ``save_figure(fig, out / "split_mnist")`` writes ``split_mnist.png`` and ``split_mnist.svg``.
    Returns the list of written paths.
    """
    base = pathlib.Path(path_without_ext)
    engine = fig.get_layout_engine() if hasattr(fig, "get_layout_engine") else None
    if engine is not None:         # lay the figure out once for every format (a third of the
        engine.execute(fig)        # time of saving both); constrained layout keeps everything
        fig.set_layout_engine("none")          # on the page, so no "tight" crop is needed
    written = []
    for fmt in formats:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches=None if engine else "tight")
        written.append(atomic_write_bytes(base.with_name(f"{base.name}.{fmt}"), buf.getvalue()))
    return written


def load_results(path):
    """Read a results JSON; ``path`` is the file or a run folder holding ``results.json``."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / RESULTS_NAME
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)
