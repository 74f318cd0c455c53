"""Writing files so that a reader sees the old file or the whole new one, never a torn one.

Every file synapse writes that a user could lose (checkpoints, models, results, cached data)
goes through ``atomic_write_bytes``: a temporary file in the same folder, fsync, rename.
"""
import io
import os
import pathlib
import tempfile

import numpy as np


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


def save_npz_atomic(path, arrays):
    """``np.savez`` (no pickle needed to read it back) written atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())
