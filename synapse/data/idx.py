"""Reader for the IDX files MNIST and Fashion-MNIST ship as.

Layout (big-endian): a 4-byte magic ``0x0000 <type> <ndim>``, then ``ndim``
uint32 sizes, then the data. Images have magic 2051 (ubyte, 3 dims: count,
rows, cols; pixels from byte 16); labels have magic 2049 (ubyte, 1 dim:
count; labels from byte 8). Files may be gzipped or raw.
"""
import gzip
import math
import zlib

import numpy as np

from ..checks import check_memory
from ..errors import DataError
from ..fileio import open_regular
from .dataset import check_labels

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
MAX_IDX_BYTES = 1 << 32   # 4 GiB of data: EMNIST's largest file holds 0.55 GiB, MNIST's 47 MB
_GZIP_SIGNATURE = b"\x1f\x8b"
_CHUNK = 1 << 22


class IDXError(DataError):
    """An IDX file that is not what its header (or its name) promises; the message names it."""


def _read_exactly(stream, n, path):
    """Up to ``n`` bytes of ``stream`` as a uint8 array (shorter only at the end of the data),
    read in chunks so that a gzip stream is inflated no further than asked."""
    out = np.empty(n, np.uint8)
    view, got = memoryview(out), 0
    try:
        while got < n:
            k = stream.readinto(view[got:got + _CHUNK])
            if not k:
                break
            got += k
    except (EOFError, OSError, zlib.error) as err:
        raise IDXError(f"{path}: gzip stream is truncated or corrupt ({err})") from err
    return out[:got]


def _check_declared(path, shape, data_bytes):
    """Refuse a header declaring more data than an IDX file may hold or memory can take."""
    if data_bytes > MAX_IDX_BYTES:
        raise IDXError(f"{path}: header declares {shape[0]:,} items of shape {shape[1:]}, "
                       f"{data_bytes:,} data bytes: more than the {MAX_IDX_BYTES:,} an IDX file "
                       f"read by synapse may hold; not an MNIST-style file")
    check_memory(f"{path}: the {data_bytes:,} data bytes its header declares", data_bytes,
                 error=IDXError)


def read_idx(path, magic):
    """The array stored in IDX file ``path``, whose magic must be ``magic``.

    Only a regular file is read. The header is read first and the data stop where it says:
    a gzip stream is inflated chunk by chunk up to the declared size plus one byte (a gzip
    bomb is never inflated whole), a header declaring more than ``MAX_IDX_BYTES`` or than the
    memory available is refused before anything is allocated, and data shorter or longer
    than declared is an error.
    """
    with open_regular(path, "IDX file", error=IDXError) as raw:
        packed = raw.read(2) == _GZIP_SIGNATURE
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if packed else raw
        ndim = magic & 0xFF
        header = 4 + 4 * ndim
        head = bytes(_read_exactly(stream, header, path))
        if len(head) < 4:
            raise IDXError(f"{path}: truncated: {len(head)} bytes, not even a 4-byte magic number")
        found = int.from_bytes(head[:4], "big")
        if found != magic:
            raise IDXError(f"{path}: wrong magic number {found} (expected {magic}: "
                           f"{'images' if magic == IMAGES_MAGIC else 'labels'} file)")
        if len(head) < header:
            raise IDXError(f"{path}: truncated header: {len(head)} bytes, need {header}")
        shape = tuple(int.from_bytes(head[i:i + 4], "big") for i in range(4, header, 4))
        expected = math.prod(shape)                        # a Python int: never overflows
        _check_declared(path, shape, expected)
        what = f"header says {shape[0]:,} items of shape {shape[1:]} ({expected:,} data bytes)"
        if not packed:
            held = raw.seek(0, 2) - header
            raw.seek(header)
            if held < expected:
                raise IDXError(f"{path}: truncated: {what} but the file holds {held:,}")
            if held > expected:
                raise IDXError(f"{path}: count mismatch: {what} but the file holds {held:,}")
        data = _read_exactly(stream, expected, path)
        if len(data) < expected:
            raise IDXError(f"{path}: truncated: {what} but the file holds {len(data):,}")
        if len(_read_exactly(stream, 1, path)):
            raise IDXError(f"{path}: count mismatch: {what} but the file holds more (not "
                           f"inflated further)")
    return data.reshape(shape)


def read_idx_images(path):
    """uint8 images ``(N, rows, cols)`` from an images file (magic 2051); none may be empty."""
    images = read_idx(path, IMAGES_MAGIC)
    if 0 in images.shape:
        raise IDXError(f"{path}: header says {images.shape[0]:,} images of "
                       f"{images.shape[1]}x{images.shape[2]} pixels: nothing to learn from")
    return images


def read_idx_labels(path):
    """uint8 labels ``(N,)`` from a labels file (magic 2049)."""
    return read_idx(path, LABELS_MAGIC)


def read_idx_pair(images_path, labels_path, n_classes=None):
    """float32 ``(N, rows*cols)`` in [0, 1] and int64 ``(N,)``; counts must agree.

    With ``n_classes``, a label outside ``0..n_classes-1`` is an error naming ``labels_path``.
    """
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise IDXError(f"count mismatch: {images_path} holds {len(images):,} images but "
                       f"{labels_path} holds {len(labels):,} labels")
    if n_classes is not None:
        check_labels(labels, n_classes, labels_path)
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return x, labels.astype(np.int64)


def write_idx(path, array):
    """Write a uint8 array as IDX (gzipped when ``path`` ends in .gz); used by tests and tools."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = (0x08 << 8) | array.ndim
    data = magic.to_bytes(4, "big") + np.asarray(array.shape, ">u4").tobytes() + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)
