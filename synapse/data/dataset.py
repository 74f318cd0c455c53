"""The container every loader returns: one dataset, already split."""
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class Dataset:
    """One dataset, already split, flattened and scaled.

    ``x_*`` are float32 ``(N, D)`` in [0, 1]; ``y_*`` are int64 ``(N,)``.
    ``x.reshape(-1, *image_shape)`` gives NCHW images. ``source`` says where
    the numbers came from (and how many), so a result can never be reported
    against the wrong data: it goes into every results file via :meth:`info`.
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

    def info(self):
        """Name, provenance and split sizes, JSON-ready."""
        return {
            "name": self.name,
            "source": self.source,
            "n_train": int(len(self.y_train)),
            "n_val": 0 if self.y_val is None else int(len(self.y_val)),
            "n_test": int(len(self.y_test)),
            "n_features": int(self.x_train.shape[1]),
            "image_shape": [int(s) for s in self.image_shape],
            "n_classes": int(self.n_classes),
        }
