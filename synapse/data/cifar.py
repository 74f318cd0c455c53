"""CIFAR-10 (python version): a checksummed archive, and pickles read only from it.

The archive is ``cifar-10-python.tar.gz`` from the dataset's home page at the University of
Toronto (https://www.cs.toronto.edu/~kriz/cifar.html), md5 ``c58f30108f718f92721af3b95e74349a``,
about 163 MB. It unpacks to ``cifar-10-batches-py/``: ``data_batch_1`` .. ``data_batch_5`` (the
50,000 training images), ``test_batch`` (10,000) and ``batches.meta``; each batch is a pickle of
a dict with ``b'data'`` (10000 x 3072 uint8, the R, G and B planes of a 32x32 image) and
``b'labels'`` (10000 ints 0..9).

It is downloaded, verified and cached by :func:`~synapse.data.download.fetch` into
``<data_dir>/cifar10/``. Pickle runs code, so a batch file is unpickled only when its bytes are
the official ones: ``CIFAR10_BATCH_MD5`` keeps the md5 of each extracted file as published
with the dataset's loaders (torchvision's ``CIFAR10`` lists the same digests), and every
extraction and every load checks each file against it. Extraction writes each file
atomically and then, last, a marker recording which archive it came from; the marker only
says that extraction finished (a marker written by hand skips extraction, nothing more: the
files are still checked against the digests in the code). An md5 match proves the bytes are
the published file (no second preimage of md5 is known), as long as ``CIFAR10_BATCH_MD5`` is
the official table. The unpickler also refuses every class but the few NumPy needs to rebuild
an array. Every problem is one :class:`~synapse.errors.DataError` line naming the file.

``CIFAR10_URLS``, ``CIFAR10_MD5`` and ``CIFAR10_BATCH_MD5`` are read at call time: point them
elsewhere (a mirror, a test archive) by assigning to them.
"""
import hashlib
import io
import json
import pickle
import tarfile

import numpy as np

from ..errors import DataError
from ..fileio import atomic_write_bytes, read_regular
from .cache import data_dir, subdir
from .dataset import Dataset, check_labels
from .download import ChecksumError, fetch, one_line

CIFAR10_URLS = ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
BATCH_FILES = TRAIN_BATCHES + ("test_batch", "batches.meta")
CIFAR10_BATCH_MD5 = {          # the official extracted files (same table as torchvision's)
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
MARKER = BATCH_DIR + ".verified.json"
PIXELS = 3 * 32 * 32
MAX_BATCH_BYTES = 64 << 20     # an official batch is about 31 MB


def cifar10_folder(cache_dir=None):
    """``<data_dir>/cifar10``: where the archive goes (not created here)."""
    return data_dir(cache_dir) / "cifar10"


def cifar10_instructions(cache_dir=None):
    """One line: what to download (URL), its md5, and the folder to put it in."""
    return (f"download {CIFAR10_URLS[0]} (md5 {CIFAR10_MD5}, about 163 MB) and put it in "
            f"{cifar10_folder(cache_dir)} as {CIFAR10_ARCHIVE}")


def cifar10_available(cache_dir=None):
    """True when the archive or a verified extraction of it is in the folder (checked on load)."""
    folder = cifar10_folder(cache_dir)
    return (folder / CIFAR10_ARCHIVE).is_file() or (folder / MARKER).is_file()


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, bytes and NumPy arrays; nothing else."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refers to {module}.{name}: refused (a CIFAR-10 batch "
                                         f"holds only NumPy arrays, lists and dicts)")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]  # NumPy 2 moved core
        return super().find_class(module, name)


def _extract(archive, folder, md5):
    """Copy the batch files out of the verified ``archive``; write the marker last.

    Until the marker is written nothing extracted is ever read; on failure what was written
    is removed again.
    """
    (folder / MARKER).unlink(missing_ok=True)
    (folder / BATCH_DIR).mkdir(exist_ok=True)
    record = {"archive": archive.name, "archive_md5": md5, "batch_md5": {}}
    written = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in BATCH_FILES:
                try:
                    member = tar.getmember(f"{BATCH_DIR}/{name}")
                except KeyError:
                    raise DataError(f"{archive}: holds no {BATCH_DIR}/{name}; not the CIFAR-10 "
                                    f"python archive") from None
                if not member.isfile() or member.size > MAX_BATCH_BYTES:
                    raise DataError(f"{archive}: {member.name} is not a regular file of at most "
                                    f"{MAX_BATCH_BYTES:,} bytes; not the CIFAR-10 archive")
                data = tar.extractfile(member).read()
                _check_official(f"{archive}: {member.name}", name, data)
                written.append(atomic_write_bytes(folder / BATCH_DIR / name, data))
                record["batch_md5"][name] = CIFAR10_BATCH_MD5[name]
    except (tarfile.TarError, EOFError, OSError) as err:  # zlib errors surface as these
        for path in written:
            path.unlink(missing_ok=True)
        raise DataError(f"{archive}: cannot be unpacked ({one_line(err)})") from err
    except DataError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    atomic_write_bytes(folder / MARKER, json.dumps(record, indent=1).encode())


def _check_official(where, name, data):
    """Refuse ``data`` unless its md5 is the official one of batch file ``name``."""
    expected = CIFAR10_BATCH_MD5[name]
    got = hashlib.md5(data).hexdigest()
    if got != expected:
        raise ChecksumError(f"{where}: md5 {got} differs from the official {expected} of "
                            f"CIFAR-10's {name} (kept in synapse); refusing to unpickle it")


def _extracted(marker, md5):
    """True when ``marker`` says the archive with ``md5`` was extracted completely."""
    if not marker.exists():
        return False
    try:
        record = json.loads(read_regular(marker, "extraction record", 1 << 16, DataError))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{marker}: unreadable extraction record ({one_line(err)}); delete it "
                        f"to extract the archive again") from err
    if not isinstance(record, dict) or not isinstance(record.get("archive_md5"), str):
        raise DataError(f"{marker}: incomplete extraction record (it must hold archive_md5); "
                        f"delete it to extract the archive again")
    return record["archive_md5"] == md5      # made from another archive: extract again


def _read_batch(path):
    """``(x uint8 (N, 3072), y int64 (N,))`` of one batch file, unpickled only if it is the
    official file (its md5 is in ``CIFAR10_BATCH_MD5``)."""
    again = f"delete {path.parent.parent / MARKER} to extract the archive again"
    try:
        data = read_regular(path, "CIFAR-10 batch", MAX_BATCH_BYTES, DataError)
    except DataError as err:
        raise DataError(f"{err}; {again}") from None
    try:
        _check_official(path, path.name, data)
    except ChecksumError as err:
        raise ChecksumError(f"{err}. To fix: {again}") from None
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as err:  # noqa: BLE001  any failure to unpickle means a bad file, named
        raise DataError(f"{path}: not a CIFAR-10 batch ({one_line(err)})") from err
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path}: not a CIFAR-10 batch (expected a dict with b'data' and "
                        f"b'labels', got a {type(batch).__name__})")
    x, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != PIXELS:
        what = (f"dtype {x.dtype}, shape {x.shape}" if isinstance(x, np.ndarray)
                else f"a {type(x).__name__}")
        raise DataError(f"{path}: b'data' must be a uint8 array (N, {PIXELS}), got {what}")
    y = np.asarray(labels) if isinstance(labels, (list, np.ndarray)) else np.asarray([None])
    if y.dtype.kind not in "iu" or y.shape != (len(x),):
        raise DataError(f"{path}: b'labels' must be {len(x):,} integers, got "
                        f"{type(labels).__name__} of dtype {y.dtype}, shape {y.shape}")
    check_labels(y, 10, f"{path} b'labels'")
    return x, y.astype(np.int64)


def _load_batches(folder, names):
    xs, ys = zip(*(_read_batch(folder / BATCH_DIR / n) for n in names))
    x = np.concatenate(xs)  # (N, 3072) R, G, B planes = NCHW (3, 32, 32) flattened
    return x.astype(np.float32) / np.float32(255), np.concatenate(ys)


def load_cifar10(cache_dir=None, download=True, timeout=30.0, log=print):
    """CIFAR-10, official split 50,000 / 10,000; x is (N, 3072) = NCHW (3, 32, 32) flattened.

    Downloads the archive into ``<data_dir>/cifar10/`` if needed (``download=True``). Without
    it, raises a one-line :class:`~synapse.errors.DataError` (a ``DataNotFoundError``,
    ``DownloadError`` or ``ChecksumError``) giving the URL, the md5 and the folder.
    """
    urls, md5 = tuple(CIFAR10_URLS), CIFAR10_MD5
    folder = subdir(cache_dir, "cifar10")
    if not _extracted(folder / MARKER, md5):
        archive = fetch(urls, CIFAR10_ARCHIVE, md5=md5, cache_dir=cache_dir, subfolder="cifar10",
                        download=download, timeout=timeout, log=log)
        log(f"[synapse.data] extracting {archive} (md5 verified) into {folder / BATCH_DIR}")
        _extract(archive, folder, md5)
    x_train, y_train = _load_batches(folder, TRAIN_BATCHES)
    x_test, y_test = _load_batches(folder, ("test_batch",))
    source = (f"CIFAR-10 python batches from {CIFAR10_ARCHIVE} (md5 {md5}), each batch's md5 "
              f"the official one, in {folder}: "
              f"official split {len(y_train):,} train / {len(y_test):,} test")
    return Dataset("cifar10", source, x_train, y_train, x_test, y_test, (3, 32, 32), 10)
