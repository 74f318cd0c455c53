"""One task of a continual-learning sequence: what the trainer learns and evaluates."""
from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class Task:
    """One task of a continual-learning sequence.

    ``classes`` are the output units this task may use (multi-head training);
    labels keep their original values. ``None`` means every unit is active.
    ``permutation`` is the pixel permutation of a permuted task (None if none).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: Optional[tuple] = None
    x_val: Optional[np.ndarray] = None
    y_val: Optional[np.ndarray] = None
    permutation: Optional[np.ndarray] = field(default=None, repr=False)
