"""Where downloaded and generated data live, and how files get there safely."""
import os
import tempfile
from pathlib import Path

from ..errors import DataError

ENV_DATA_DIR = "SYNAPSE_DATA"


def data_dir(cache_dir=None):
    """``cache_dir``, else $SYNAPSE_DATA, else $XDG_CACHE_HOME/synapse (~/.cache/synapse)."""
    if cache_dir is None:
        cache_dir = os.environ.get(ENV_DATA_DIR)
    if not cache_dir:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        cache_dir = os.path.join(base, "synapse")
    return Path(cache_dir).expanduser()


def subdir(cache_dir, name):
    """``<data_dir>/<name>``, created; a folder that cannot be made is a one-line DataError."""
    path = data_dir(cache_dir) / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{path}: cannot create the data folder ({err.strerror or err}); "
                        f"choose another with cache_dir or ${ENV_DATA_DIR}") from err
    return path


def temp_path(dest):
    """A fresh hidden temporary file next to ``dest`` (same filesystem, so rename is atomic)."""
    dest = Path(dest)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    return Path(name)
