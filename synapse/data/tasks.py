"""Continual-learning task sequences built from one Dataset."""
import numpy as np

from ..errors import ConfigError, DataError
from .dataset import check_labels
from .scenarios import SCENARIOS
from .task import Task

DIGIT_DATASETS = ("mnist", "mnist-subset", "digits", "mnist-bg")
SPLIT_GROUPS = ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))


def _select(x, y, classes):
    if x is None:
        return None, None
    mask = np.isin(y, classes)
    return x[mask], y[mask]


def split_tasks(dataset, groups=SPLIT_GROUPS, scenario="task"):
    """One task per group of classes (split MNIST: 0/1, 2/3, ...), in one of three scenarios.

    Each task keeps only the examples of its classes. ``scenario`` (recorded as
    ``Task.scenario``; see synapse/data/scenarios.py) sets the labels and the units:

    =========  ===========================  ==================================  =============
    scenario   labels                       units trained (``Task.classes``)    tested among
    =========  ===========================  ==================================  =============
    'task'     the original classes         the group's own (multi-head)        its own units
    'domain'   position in the group (0/1)  0..len(group)-1, shared by all      the same
    'class'    the original classes         every class of groups 0..k          every class
                                                                                learned so far
    =========  ===========================  ==================================  =============

    Classes that are in no group are left out on purpose (the default groups
    cover all 10 digits; ``groups=((0, 1),)`` is a one-task run on 0 and 1).
    A label outside the dataset's classes ``0..n_classes-1`` is never dropped
    quietly: it is a :class:`~synapse.errors.DataError` naming the array.
    """
    if scenario not in SCENARIOS:
        raise ConfigError("scenario", f"must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    word = "digits" if dataset.name in DIGIT_DATASETS else "classes"
    for split in ("train", "test", "val"):
        y = getattr(dataset, f"y_{split}")
        if y is not None:
            check_labels(y, dataset.n_classes, f"{dataset.name}.y_{split}")
    tasks, seen = [], []
    for group in groups:
        classes = tuple(int(c) for c in group)
        outside = [c for c in classes if not 0 <= c < dataset.n_classes]
        if outside:
            raise ConfigError("groups", f"class(es) {outside} of group {classes} are not classes "
                                        f"of {dataset.name} (0..{dataset.n_classes - 1})")
        missing = [c for c in classes if not np.any(dataset.y_train == c)]
        if missing:
            raise DataError(f"{dataset.name}.y_train: no training examples of class(es) {missing}")
        x_tr, y_tr = _select(dataset.x_train, dataset.y_train, classes)
        x_te, y_te = _select(dataset.x_test, dataset.y_test, classes)
        x_val, y_val = _select(dataset.x_val, dataset.y_val, classes)
        name = f"{word} {'/'.join(str(c) for c in classes)}"
        seen += [c for c in classes if c not in seen]
        units = classes
        if scenario == "domain":
            position = np.zeros(dataset.n_classes, dtype=y_tr.dtype)
            position[list(classes)] = np.arange(len(classes))
            y_tr, y_te = position[y_tr], position[y_te]
            y_val = None if y_val is None else position[y_val]
            units = tuple(range(len(classes)))
        elif scenario == "class":
            units = tuple(seen)
        tasks.append(Task(name, x_tr, y_tr, x_te, y_te, units, x_val, y_val, scenario=scenario))
    return tasks


def permutations(n_features, n_tasks, seed=0):
    """``(n_tasks, n_features)`` pixel orders: row 0 is the identity, the rest seeded."""
    rng = np.random.default_rng(seed)
    perms = [np.arange(n_features)]
    perms += [rng.permutation(n_features) for _ in range(n_tasks - 1)]
    return np.stack(perms)


def permuted_tasks(dataset, n_tasks, seed=0):
    """Permuted MNIST: task 0 is the data as is, task t applies permutation t to every split.

    Domain-incremental by construction (``Task.scenario == 'domain'``): every task has the same
    labels on the same units (all of them) and no task identity is needed at test time; what
    changes between tasks is the input distribution only."""
    if n_tasks < 1:
        raise ConfigError("n_tasks", f"must be >= 1, got {n_tasks}")
    tasks = []
    for t, perm in enumerate(permutations(dataset.x_train.shape[1], n_tasks, seed)):
        x_val = None if dataset.x_val is None else dataset.x_val[:, perm]
        tasks.append(Task(f"permutation {t}", dataset.x_train[:, perm], dataset.y_train,
                          dataset.x_test[:, perm], dataset.y_test, None, x_val, dataset.y_val,
                          permutation=perm, scenario="domain"))
    return tasks


def few_shot(x, y, k, seed=0):
    """Exactly ``k`` examples of every class in ``y``, drawn with ``seed``, in shuffled order."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < k:
            raise DataError(f"class {c} has only {len(idx)} examples, fewer than k={k}")
        chosen.append(rng.choice(idx, size=k, replace=False))
    order = rng.permutation(np.concatenate(chosen))
    return x[order], y[order]
