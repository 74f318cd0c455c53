"""Writing files so that a reader sees the old file or the whole new one, never a torn one.

Every file synapse writes that a user could lose (checkpoints, models, results, cached data)
goes through ``atomic_write_bytes``: a temporary file in the same folder, fsync, rename.
Every file synapse reads that a user could have replaced (data, configs, records) is opened by
``open_regular``: a regular file of bounded size, or a one-line error naming it.
"""
import io
import os
import pathlib
import stat
import tempfile

import numpy as np

from .backend import get_array_module
from .errors import CheckpointError, UserError


def _fsync_dir(folder):
    """Make the rename itself durable; not possible (nor needed) on every platform."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically; the old file stays intact on any failure.

    Creates missing parent folders. Keeps the permission bits of a file it replaces (0o644 for a
    new one). Returns the path as a ``pathlib.Path``.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def open_regular(path, what="file", max_bytes=None, error=UserError):
    """``path`` opened for binary reading, if it is a regular file of at most ``max_bytes``.

    Anything else is refused with one ``error`` line naming ``what`` and ``path``: a missing
    or unreadable path, a folder, a FIFO (opened without blocking, so it can never hang), a
    device (e.g. a symlink to /dev/zero, which would never end), a socket, or a file larger
    than ``max_bytes``. The checks are made on the opened descriptor (``fstat``), so a path
    swapped between check and read cannot slip through. Symlinks to regular files are fine.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as err:
        raise error(f"{what} {path} cannot be read ({err.strerror or err})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a file")
            raise error(f"{what} {path} is {kind}, not a regular file; synapse reads only "
                        f"regular files")
        if max_bytes is not None and info.st_size > max_bytes:
            raise error(f"{what} {path} holds {info.st_size:,} bytes, more than the "
                        f"{max_bytes:,} such a file may hold")
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path, what="file", max_bytes=None, error=UserError):
    """The bytes of ``path``, read through ``open_regular`` (same refusals); at most
    ``max_bytes`` even if the file grows while it is read."""
    with open_regular(path, what, max_bytes, error) as f:
        data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise error(f"{what} {path} grew past {max_bytes:,} bytes while it was read")
    return data


def save_npz_atomic(path, arrays):
    """``np.savez`` (no pickle needed to read it back) written atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def remove_stale_tmp(path):
    """Delete temporary files a killed ``atomic_write_bytes(path, ...)`` left behind
    (``.<name>.*.tmp`` beside ``path``); returns the paths removed. Only for a path that no
    other live process is writing (e.g. a checkpoint being resumed)."""
    path = pathlib.Path(path)
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def load_npz(path, what="file"):
    """Every array of an .npz written by ``save_npz_atomic``, read eagerly, no pickle.

    A missing, empty, truncated or foreign file, or one holding NaN/Inf in a float array,
    raises ``CheckpointError`` with one line naming the file (never NumPy's advice to allow
    pickles).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} {path} is empty (a write was cut short?)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as err:  # BadZipFile, EOFError, zlib.error, ValueError (pickle), OSError
        raise CheckpointError(f"{what} {path} is not a readable .npz archive: truncated, "
                              f"corrupt or not written by synapse ({type(err).__name__})") from None
    bad = find_nonfinite(arrays)
    if bad:
        key, count = bad
        raise CheckpointError(f"{what} {path} holds {count} NaN/Inf values in {key!r}; "
                              f"refusing to load it")
    return arrays


def find_nonfinite(arrays, kinds="fc"):
    """``(key, number of NaN/Inf values)`` of the first array in ``arrays`` (a dict of NumPy
    or CuPy arrays) whose dtype kind is in ``kinds`` and that holds NaN/Inf; None when all are
    finite."""
    for key, a in arrays.items():
        if a.dtype.kind in kinds:
            finite = get_array_module(a).isfinite(a)
            if not finite.all():
                return key, int(a.size - finite.sum())
    return None
