"""The container every loader returns: one dataset, already split, checked on construction."""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import DataError


def check_labels(y, n_classes, where):
    """Raise :class:`DataError` naming ``where`` (a file or an array) unless 0 <= y < n_classes.

    A label outside the classes would be dropped by every task builder, silently; it is refused.
    """
    y = np.asarray(y)
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        values = np.unique(y[bad])
        shown = ", ".join(str(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        raise DataError(f"{where}: {int(bad.sum()):,} of {len(y):,} labels are outside the "
                        f"{n_classes} classes 0..{n_classes - 1} (values {shown})")


def _pixels(x, where):
    """float32 ``(N, D)`` in [0, 1]; uint8 0..255 is scaled by 1/255 (returned note says so)."""
    x = np.asarray(x)
    note = None
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255)
        note = f"{where.split('.')[-1]} given as uint8 0..255, scaled to float32 [0, 1] by 1/255"
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32, copy=False)
    else:
        raise DataError(f"{where}: pixels have dtype {x.dtype}; give floats in [0, 1] or "
                        f"uint8 0..255")
    if x.ndim != 2:
        raise DataError(f"{where}: shape {x.shape}, expected (examples, features): flatten the "
                        f"images (image_shape says how to unflatten them)")
    if len(x) == 0 or x.shape[1] == 0:
        raise DataError(f"{where}: shape {x.shape} holds no {'examples' if len(x) == 0 else 'pixels'}")
    lo, hi = float(x.min()), float(x.max())  # NaN propagates through min and max
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise DataError(f"{where}: holds NaN or infinite pixel values")
    if lo < 0 or hi > 1:
        raise DataError(f"{where}: pixel values span [{lo:g}, {hi:g}], outside [0, 1]; scale them "
                        f"(uint8 0..255 is scaled automatically)")
    return x, note


def _labels(y, where, n, n_classes):
    y = np.asarray(y)
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels have dtype {y.dtype}; give integers 0..{n_classes - 1}")
    if y.shape != (n,):
        raise DataError(f"{where}: shape {y.shape}, expected ({n},): one label per example")
    check_labels(y, n_classes, where)
    return y.astype(np.int64, copy=False)


@dataclass
class Dataset:
    """One dataset, already split, flattened and scaled.

    ``x_*`` are float32 ``(N, D)`` in [0, 1] with ``D = prod(image_shape)``; ``y_*`` are int64
    ``(N,)`` in ``0..n_classes-1``. ``x.reshape(-1, *image_shape)`` gives NCHW images. Construction
    checks all of it and refuses, with one :class:`~synapse.errors.DataError` line naming the
    array, anything else (wrong sizes, empty splits, NaN, values outside [0, 1], labels outside
    the classes). uint8 pixels 0..255 are the one thing converted: scaled by 1/255, and
    ``source`` says so. ``source`` says where the numbers came from (and how many), so a result
    can never be reported against the wrong data: it goes into every results file via
    :meth:`info`. ``fallback``, when set, says why this is not the dataset that was asked for
    (``auto`` without full MNIST).
    """

    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple
    n_classes: int
    x_val: Optional[np.ndarray] = None
    y_val: Optional[np.ndarray] = None
    fallback: Optional[str] = None

    def __post_init__(self):
        shape = tuple(int(s) for s in self.image_shape)
        if not shape or min(shape) < 1:
            raise DataError(f"{self.name}: image_shape {shape} holds no pixels")
        if isinstance(self.n_classes, bool) or int(self.n_classes) != self.n_classes \
                or self.n_classes < 1:
            raise DataError(f"{self.name}: n_classes must be a positive integer, got {self.n_classes!r}")
        if (self.x_val is None) != (self.y_val is None):
            raise DataError(f"{self.name}: x_val and y_val come together (one of them is None)")
        self.image_shape, self.n_classes = shape, int(self.n_classes)
        n_features = int(np.prod(shape))
        notes = []
        for split in ("train", "test", "val"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x is None:
                continue
            where = f"{self.name}.x_{split}"
            x, note = _pixels(x, where)
            if x.shape[1] != n_features:
                have = "" if split == "train" else f"{self.name}.x_train and "
                raise DataError(f"{where}: {x.shape[1]:,} pixels per image, but {have}"
                                f"image_shape {shape} have {n_features:,}")
            y = _labels(y, f"{self.name}.y_{split}", len(x), self.n_classes)
            setattr(self, f"x_{split}", x)
            setattr(self, f"y_{split}", y)
            notes += [note] if note else []
        if notes:
            self.source += "; " + "; ".join(notes)

    def info(self):
        """Name, provenance and split sizes, JSON-ready (``fallback`` only when there was one)."""
        info = {
            "name": self.name,
            "source": self.source,
            "n_train": int(len(self.y_train)),
            "n_val": 0 if self.y_val is None else int(len(self.y_val)),
            "n_test": int(len(self.y_test)),
            "n_features": int(self.x_train.shape[1]),
            "image_shape": [int(s) for s in self.image_shape],
            "n_classes": int(self.n_classes),
        }
        if self.fallback:
            info["fallback"] = self.fallback
        return info
