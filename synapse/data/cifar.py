"""CIFAR-10 (python version): a checksummed archive, and pickles read only from it.

Pickle runs code, so a batch file is unpickled only when its bytes are known
to come from an archive whose md5 matched: extraction writes a marker file
recording the archive digest and the SHA-256 of every extracted file, and each
load re-hashes a file against that record before reading it. The unpickler
also refuses every class but the few NumPy needs to rebuild an array.
"""
import hashlib
import io
import json
import pickle
import tarfile

import numpy as np

from ..fileio import atomic_write_bytes
from .cache import subdir
from .dataset import Dataset
from .download import ChecksumError, DownloadError, fetch

CIFAR10_URLS = ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
BATCH_FILES = TRAIN_BATCHES + ("test_batch", "batches.meta")
MARKER = BATCH_DIR + ".verified.json"


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, bytes and NumPy arrays; nothing else."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR-10 batch refers to {module}.{name}: refused")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]  # NumPy 2 moved core
        return super().find_class(module, name)


def _extract(archive, folder, md5):
    """Copy the batch files out of the verified ``archive``; write the marker last."""
    (folder / BATCH_DIR).mkdir(exist_ok=True)
    record = {"archive": archive.name, "archive_md5": md5, "sha256": {}}
    with tarfile.open(archive, "r:gz") as tar:
        for name in BATCH_FILES:
            member = tar.getmember(f"{BATCH_DIR}/{name}")
            if not member.isfile():
                raise ChecksumError(f"{archive}: {member.name} is not a regular file")
            data = tar.extractfile(member).read()
            atomic_write_bytes(folder / BATCH_DIR / name, data)
            record["sha256"][name] = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(folder / MARKER, json.dumps(record, indent=1).encode())


def _read_verified(path, sha256):
    data = path.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ChecksumError(f"{path}: sha256 {got} differs from {sha256} recorded when it was "
                            f"extracted from the verified archive; refusing to unpickle it. "
                            f"Delete {path.parent} to extract again.")
    return _ArrayOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()


def _batch_arrays(batches):
    x = np.concatenate([np.asarray(b[b"data"], np.uint8) for b in batches])  # (N, 3072) R,G,B planes
    y = np.concatenate([np.asarray(b[b"labels"], np.int64) for b in batches])
    return x.astype(np.float32) / np.float32(255), y


def load_cifar10(cache_dir=None, download=True, md5=CIFAR10_MD5, urls=CIFAR10_URLS,
                 timeout=30.0, log=print):
    """CIFAR-10, official split 50,000 / 10,000; x is (N, 3072) = NCHW (3, 32, 32) flattened."""
    folder = subdir(cache_dir, "cifar10")
    marker = folder / MARKER
    record = json.loads(marker.read_text()) if marker.exists() else None
    if record is None or record.get("archive_md5") != md5:
        try:
            archive = fetch(urls, CIFAR10_ARCHIVE, md5=md5, cache_dir=cache_dir, subfolder="cifar10",
                            download=download, timeout=timeout, log=log)
        except (FileNotFoundError, DownloadError) as err:
            raise FileNotFoundError(
                f"CIFAR-10 needs {CIFAR10_ARCHIVE} (md5 {md5}) in {folder}: download it from "
                f"{urls[0]} and put it there by hand. For an offline stand-in of real data, "
                f"load_dataset('fashion-mnist') works (it is not CIFAR-10). ({err})") from err
        log(f"[synapse.data] extracting {archive} (md5 verified) into {folder / BATCH_DIR}")
        _extract(archive, folder, md5)
        record = json.loads(marker.read_text())
    read = {name: _read_verified(folder / BATCH_DIR / name, record["sha256"][name])
            for name in TRAIN_BATCHES + ("test_batch",)}
    x_train, y_train = _batch_arrays([read[n] for n in TRAIN_BATCHES])
    x_test, y_test = _batch_arrays([read["test_batch"]])
    source = (f"CIFAR-10 python batches from {CIFAR10_ARCHIVE} (md5 {md5} verified) in {folder}: "
              f"official split {len(y_train):,} train / {len(y_test):,} test")
    return Dataset("cifar10", source, x_train, y_train, x_test, y_test, (3, 32, 32), 10)
