"""Reader for the IDX files MNIST and Fashion-MNIST ship as.

Layout (big-endian): a 4-byte magic ``0x0000 <type> <ndim>``, then ``ndim``
uint32 sizes, then the data. Images have magic 2051 (ubyte, 3 dims: count,
rows, cols; pixels from byte 16); labels have magic 2049 (ubyte, 1 dim:
count; labels from byte 8). Files may be gzipped or raw.
"""
import gzip
import zlib

import numpy as np

from ..errors import DataError
from .dataset import check_labels

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_GZIP_SIGNATURE = b"\x1f\x8b"


class IDXError(DataError):
    """An IDX file that is not what its header (or its name) promises; the message names it."""


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise IDXError(f"{path}: cannot be read ({err.strerror or err})") from err
    if not raw.startswith(_GZIP_SIGNATURE):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise IDXError(f"{path}: gzip stream is truncated or corrupt ({err})") from err


def read_idx(path, magic):
    """The array stored in IDX file ``path``, whose magic must be ``magic``.

    Checks the magic, that the header is complete, and that the data holds
    exactly as many bytes as the header's sizes say.
    """
    buf = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(buf) < 4:
        raise IDXError(f"{path}: truncated: {len(buf)} bytes, not even a 4-byte magic number")
    found = int.from_bytes(buf[:4], "big")
    if found != magic:
        raise IDXError(f"{path}: wrong magic number {found} (expected {magic}: "
                       f"{'images' if magic == IMAGES_MAGIC else 'labels'} file)")
    if len(buf) < header:
        raise IDXError(f"{path}: truncated header: {len(buf)} bytes, need {header}")
    shape = tuple(int(s) for s in np.frombuffer(buf, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    held = len(buf) - header
    if held < expected:
        raise IDXError(f"{path}: truncated: header says {shape[0]:,} items of shape {shape[1:]} "
                       f"({expected:,} data bytes) but the file holds {held:,}")
    if held > expected:
        raise IDXError(f"{path}: count mismatch: header says {shape[0]:,} items of shape {shape[1:]} "
                       f"({expected:,} data bytes) but the file holds {held:,}")
    return np.frombuffer(buf, np.uint8, count=expected, offset=header).reshape(shape)


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
