"""One task of a continual-learning sequence: what the trainer learns and evaluates.

Your own data is a Task in one line::

    task = Task("my task", x_train, y_train, x_test, y_test, classes=(0, 1))

``x_*`` are float arrays (N, features...) (images scaled to [0, 1]); ``y_*`` integer labels
that keep their values; ``classes`` the output units the task trains (its head); ``scenario``
how it is tested (synapse/data/scenarios.py: with its own units, or among every class learned).
Everything is checked here, once, with one line naming the field that is wrong.

What a Task promises about its inputs: every split (x_train, x_test and x_val alike) holds
finite floats; NaN or Inf is refused. It does not require [0, 1]: a Task also carries features
that are not pixels, and standardised features (mean 0, standard deviation 1, so values beyond
+-1) are what researchers commonly feed a network. But inputs far from that unit scale train
badly without a word (the initialisation and the learning rates assume it), so a split whose
mean lies outside +-``MAX_MEAN`` or whose root mean square exceeds ``MAX_RMS`` gets ONE
:class:`InputScaleWarning` line: pixels left in 0..255 (rms ~100) or images shifted by -5
(mean ~ -4.9) are flagged, while [0, 1] or [-1, 1] images and standardised features pass
silently. Loaded datasets are stricter: a ``Dataset`` holds images and refuses values outside
[0, 1].
"""
import math
import warnings

import numpy as np

from ..backend import asnumpy
from ..checks import check_finite
from ..errors import DataError
from .scenarios import SCENARIOS

MAX_MEAN = 3.0
MAX_RMS = 10.0
FIELDS = ("name", "x_train", "y_train", "x_test", "y_test", "classes", "x_val", "y_val",
          "permutation", "scenario")


class Task:
    """One task of a continual-learning sequence.

    ``classes`` are the output units active while this task is trained (multi-head training);
    labels keep their values. ``None`` means every unit is active. ``scenario`` is 'task',
    'domain', 'class' or None (not declared: tested like 'task', with its own ``classes``); see
    ``synapse.data.scenarios``. ``x_val``/``y_val`` are an optional validation split;
    ``permutation`` the pixel order of a permuted task.
    """

    def __init__(self, name=None, x_train=None, y_train=None, x_test=None, y_test=None,
                 classes=None, x_val=None, y_val=None, permutation=None, scenario=None,
                 **unknown):
        if unknown:
            raise DataError(f"Task: unknown field(s) {sorted(unknown)}; a Task has "
                            f"{', '.join(FIELDS)}")
        if not isinstance(name, str) or not name:
            raise DataError(f"Task: name must be a non-empty string, got {name!r}")
        where = f"task {name!r}"
        self.name = name
        self.classes = _classes(classes, where)
        self.x_train, self.y_train = _pair(x_train, y_train, "train", where, required=True)
        self.x_test, self.y_test = _pair(x_test, y_test, "test", where, required=True)
        self.x_val, self.y_val = _pair(x_val, y_val, "val", where, required=False)
        self.permutation = permutation
        if scenario is not None and scenario not in SCENARIOS:
            raise DataError(f"{where}: scenario must be one of {', '.join(SCENARIOS)} or None, "
                            f"got {scenario!r}")
        self.scenario = scenario
        _check_inputs(self, where)
        shapes = {s: tuple(getattr(self, "x_" + s).shape[1:]) for s in ("train", "test", "val")
                  if getattr(self, "x_" + s) is not None}
        if len(set(shapes.values())) > 1:
            raise DataError(f"{where}: examples differ in shape between splits: {shapes}")
        if self.classes is not None:
            for split in shapes:
                y = getattr(self, "y_" + split)
                bad = sorted(set(np.unique(asnumpy(y)).tolist()) - set(self.classes))
                if bad:
                    raise DataError(f"{where}: y_{split} labels {bad} are outside the task's "
                                    f"classes {list(self.classes)}")

    def __repr__(self):
        return (f"Task({self.name!r}, {len(self.y_train)} train / {len(self.y_test)} test, "
                f"classes={self.classes}" +
                ("" if self.scenario is None else f", scenario={self.scenario!r}") + ")")


class InputScaleWarning(UserWarning):
    """A Task's inputs are far from the unit scale (e.g. pixels left in 0..255)."""


def _check_inputs(task, where):
    """Refuse NaN/Inf in any split; one InputScaleWarning for the first split whose mean or
    rms is far from unit scale. Two passes per split (a sum and a dot product): NaN or Inf
    makes one of them non-finite, and only then are the values themselves examined."""
    warned = False
    for split in ("train", "val", "test"):
        x = getattr(task, "x_" + split)
        if x is None:
            continue
        flat = x.reshape(-1) if x.dtype.itemsize >= 4 else x.reshape(-1).astype(np.float32)
        total, squares = float(flat.sum()), float(flat @ flat)
        if not (math.isfinite(total) and math.isfinite(squares)):
            check_finite(x, f"{where}: x_{split}")   # else only huge values overflowed the sums
        mean, rms = total / flat.size, math.sqrt(squares / flat.size)
        if not warned and (abs(mean) > MAX_MEAN or rms > MAX_RMS):
            warnings.warn(f"{where}: x_{split} spans [{float(x.min()):g}, {float(x.max()):g}] "
                          f"(mean {mean:.3g}, rms {rms:.3g}), far from the unit scale the model "
                          f"is built for: scale images to [0, 1] (x / 255 for 0..255 pixels) "
                          f"or standardise features", InputScaleWarning, stacklevel=3)
            warned = True


def as_task(obj, where="learn"):
    """``obj`` if it is a Task; otherwise a one-line error saying how to build one."""
    if isinstance(obj, Task):
        return obj
    raise DataError(f"{where}: expected a Task, got a {type(obj).__name__}; build one with "
                    f"Task(name, x_train, y_train, x_test, y_test, classes=...)")


def _classes(classes, where):
    if classes is None:
        return None
    try:
        values = list(classes)
    except TypeError:
        raise DataError(f"{where}: classes must be a sequence of output units, "
                        f"got {classes!r}") from None
    ok = all(isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_))
             for c in values)
    if not values or not ok or min(values) < 0 or len(set(values)) != len(values):
        raise DataError(f"{where}: classes must be distinct integers >= 0, got {classes!r}")
    return tuple(int(c) for c in values)


def _pair(x, y, split, where, required):
    """Check one split's (x, y): float inputs (N, ...), N integer labels >= 0."""
    if x is None and y is None and not required:
        return None, None
    if x is None or y is None:
        missing = "x_" + split if x is None else "y_" + split
        raise DataError(f"{where}: {missing} is missing")
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    if not hasattr(y, "dtype"):
        y = np.asarray(y)
    if x.dtype == np.uint8:
        raise DataError(f"{where}: x_{split} holds uint8 values; scale images to float in "
                        f"[0, 1] first, e.g. x_{split}.astype(np.float32) / 255")
    if x.dtype.kind != "f":
        raise DataError(f"{where}: x_{split} must be a float array, got dtype {x.dtype}")
    if x.ndim < 2 or 0 in x.shape[1:]:
        raise DataError(f"{where}: x_{split} must be (examples, features...), "
                        f"got shape {tuple(x.shape)}")
    if y.ndim != 1:
        raise DataError(f"{where}: y_{split} must be one label per example, "
                        f"got shape {tuple(y.shape)}")
    if y.dtype.kind not in "iu":
        raise DataError(f"{where}: y_{split} labels must be integers, got dtype {y.dtype}")
    if len(x) != len(y):
        raise DataError(f"{where}: {len(x)} x_{split} examples but {len(y)} y_{split} labels")
    if len(y) == 0:
        raise DataError(f"{where}: no {split} examples")
    if int(asnumpy(y).min()) < 0:
        raise DataError(f"{where}: y_{split} holds negative labels")
    return x, y
