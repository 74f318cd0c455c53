"""Persistence, in one place: parameter-shaped state, the checkpoint file, and what a checkpoint
must match to be continued.

State: model, optimizer and method each hold named arrays (the model its parameters; the
optimizer its moments and step count; SI its omega, Omega and theta_ref). :func:`export_state`
and :func:`import_state` are their ``state_dict`` / ``load_state_dict``, written once.

A checkpoint (``checkpoint.npz``, written atomically, never holding NaN/Inf) is the learner's
state plus ``meta``: the tasks learned (names and a digest of their arrays), the History so far,
the learner's settings and the caller's ``tag`` (the experiments store their run's record
there). :func:`restore` refuses a checkpoint whose tasks, settings or tag differ, with one line
naming the file and what differs.
"""
import hashlib
import json
import os

import numpy as np

from .backend import asnumpy
from .errors import CheckpointError
from .fileio import find_nonfinite, load_npz, remove_stale_tmp, save_npz_atomic

CHECKPOINT = "checkpoint.npz"
FORMAT = 3


# -- parameter-shaped state -------------------------------------------------------------
def export_state(arrays):
    """``{name: array}`` (any backend) as host NumPy copies."""
    return {name: asnumpy(value).copy() for name, value in arrays.items()}


def import_state(owner, state, shapes, xp, dtype):
    """``state`` checked against ``shapes`` ({name: shape}: every name, no other) and converted
    to ``xp`` arrays of ``dtype``; a mismatch is a KeyError/ValueError naming ``owner``."""
    missing, extra = set(shapes) - set(state), set(state) - set(shapes)
    if missing or extra:
        raise KeyError(f"{owner}: state does not match: missing {sorted(missing)}, unexpected "
                       f"{sorted(extra)}")
    out = {}
    for name, shape in shapes.items():
        value = asnumpy(state[name])         # CuPy refuses np.asarray of a device array
        if value.shape != tuple(shape):
            raise ValueError(f"{owner}: state {name!r} has shape {value.shape}, expected "
                             f"{tuple(shape)}")
        out[name] = xp.asarray(value, dtype=dtype)
    return out


# -- files --------------------------------------------------------------------------------
def write_arrays(path, arrays, error, meta=None, refusal=None):
    """Write ``arrays`` (and ``meta``, JSON) to the .npz ``path`` atomically; a NaN/Inf array
    raises ``error`` (``refusal``: its opening words) and leaves any earlier file as it was."""
    bad = find_nonfinite(arrays, kinds="f")
    if bad:
        raise error(f"{refusal or f'not writing {path}'}: {bad[0]} holds NaN/Inf values")
    if meta is not None:
        arrays = dict(arrays, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    save_npz_atomic(path, arrays)


def checkpoint_path(folder):
    return os.path.join(folder, CHECKPOINT)


def read(path):
    """(arrays, meta) of the checkpoint ``path``."""
    arrays = load_npz(path, "checkpoint")
    try:
        meta = json.loads(bytes(arrays.pop("meta")).decode())
        if not isinstance(meta, dict):
            raise TypeError("meta is not a JSON object")
    except Exception as err:   # KeyError, JSON, Unicode: not a checkpoint of this format
        raise CheckpointError(f"checkpoint {path} has no readable record of its run "
                              f"({type(err).__name__}: {err})") from None
    return arrays, meta


def read_meta(path):
    """The checkpoint's record alone (reading changes nothing on disk)."""
    return read(path)[1]


def task_digest(task):
    """A digest of one task's arrays (train and test, inputs and labels) and active classes:
    equal digests, equal data."""
    h = hashlib.blake2b(digest_size=16)
    for a in (task.x_train, task.y_train, task.x_test, task.y_test):
        a = np.ascontiguousarray(asnumpy(a))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    h.update(repr(None if task.classes is None else [int(c) for c in task.classes]).encode())
    return h.hexdigest()


def tasks_digest(tasks, digests=None):
    """One digest of a task sequence (from the tasks, or from their ``digests``)."""
    digests = [task_digest(t) for t in tasks] if digests is None else digests
    return hashlib.blake2b("".join(digests).encode(), digest_size=16).hexdigest()


# -- what a learner records -------------------------------------------------------------
class History:
    """What a learner records: R (square, NaN where not evaluated), its column names, per-epoch
    logs (task, epoch, loss, penalty, the method's summary), seconds, epochs (passes begun) and
    steps (minibatches) per task, and warnings."""

    def __init__(self, n_tasks=0):
        self.R = np.full((n_tasks, n_tasks), np.nan)
        self.tasks = []
        self.epochs = []
        self.task_seconds = []
        self.task_epochs = []
        self.task_steps = []
        self.warnings = []

    def to_dict(self):
        return {"R": self.R.tolist(), "tasks": self.tasks, "epochs": self.epochs,
                "task_seconds": self.task_seconds, "task_epochs": self.task_epochs,
                "task_steps": self.task_steps, "warnings": self.warnings}

    @classmethod
    def from_dict(cls, d):
        h = cls(len(d["R"]))
        h.R = np.array(d["R"], dtype=float).reshape(h.R.shape)
        h.epochs, h.task_seconds = list(d["epochs"]), list(d["task_seconds"])
        h.tasks = list(d.get("tasks", []))
        h.task_epochs = list(d.get("task_epochs", []))
        h.task_steps = list(d.get("task_steps", []))
        h.warnings = list(d.get("warnings", []))
        return h


def settings_of(learner):
    """What a checkpoint must agree on to be continued by ``learner``."""
    opt = learner.optimizer
    return {"method": learner.method.config(), "optimizer": type(opt).__name__,
            **opt.float_settings(), "batch_size": learner.batch_size, "seed": learner.seed,
            "reset_optimizer": learner.reset_optimizer, "dtype": learner.model.dtype.name}


def save(learner, folder, error):
    """Write the learner's model, optimizer and method state, tasks and history to
    ``folder/checkpoint.npz``; ``error`` is raised instead of writing NaN/Inf."""
    learner.digests += [task_digest(t) for t in learner.learned[len(learner.digests):]]
    arrays = {f"param/{k}": v for k, v in learner.model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in learner.optimizer.state_dict().items()})
    arrays.update({f"method/{k}": v for k, v in learner.method.state_dict().items()})
    meta = {"format": FORMAT, "tasks_done": learner.tasks_done,
            "first_index": learner.first_index, "learned": [t.name for t in learner.learned],
            "digest": tasks_digest(None, learner.digests),
            "history": learner.history.to_dict(),
            "settings": settings_of(learner), "tag": learner.tag}
    write_arrays(checkpoint_path(folder), arrays, error, meta,
                 refusal=f"not writing a checkpoint to {folder}")


def _first_difference(saved, now):
    changed = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
    return "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in changed.items())


def restore(learner, folder, tasks):
    """Load ``folder/checkpoint.npz`` into the fresh ``learner``: ``tasks`` begin with the
    tasks it learned (checked by name and by the digest of their arrays). Returns
    ``(tasks done, meta)``."""
    path = checkpoint_path(folder)
    remove_stale_tmp(path)                   # a temporary file left by a killed writer
    arrays, meta = read(path)
    try:
        done, learned = int(meta["tasks_done"]), list(meta["learned"])
        saved = meta["settings"]
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} has no readable record of its run "
                              f"({type(err).__name__}: {err})") from None
    if learner.tasks_done:
        raise CheckpointError(f"restore: this learner already learned {learner.tasks_done} "
                              f"task(s); restore {path} into a fresh Learner")
    if done != len(learned) or done > len(tasks):
        raise CheckpointError(f"checkpoint {path} has {done} task(s) done, but only "
                              f"{len(tasks)} task(s) were given to continue them")
    names = [t.name for t in tasks[:done]]
    if names != learned:
        raise CheckpointError(f"checkpoint {path} learned {learned}, not {names}")
    what = _first_difference(saved, json.loads(json.dumps(settings_of(learner))))
    if what:
        raise CheckpointError(f"checkpoint {path} was written by another run ({what})")
    if meta.get("tag") != json.loads(json.dumps(learner.tag)):
        raise CheckpointError(f"checkpoint {path} was written by another run (its record "
                              f"{json.dumps(meta.get('tag'))}, now {json.dumps(learner.tag)})")
    if "digest" not in meta:
        raise CheckpointError(f"checkpoint {path} was written by an older synapse (format "
                              f"{meta.get('format')}), which kept no digest of its tasks' data; "
                              f"start the run again")
    digests = [task_digest(t) for t in tasks[:done]]
    if meta["digest"] != tasks_digest(None, digests):
        raise CheckpointError(f"checkpoint {path} learned tasks named {learned} but holding "
                              f"other data than the tasks given now (their arrays differ)")
    parts = {p: {k[len(p) + 1:]: v for k, v in arrays.items() if k.startswith(p + "/")}
             for p in ("param", "optim", "method")}
    try:
        learner.model.load_state_dict(parts["param"])
        learner.optimizer.load_state_dict(parts["optim"])
        learner.method.load_state_dict(parts["method"])
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} does not fit this model: "
                              f"{str(err).splitlines()[0]}") from None
    learner.digests = digests
    return done, meta
