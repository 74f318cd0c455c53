"""Train one model on a sequence of tasks with a continual-learning method.

For task i: reset the optimizer if asked, ``method.begin_task``; for each epoch, shuffle
(seeded by (seed, task, epoch)), and per minibatch: g = dL/dtheta of the task loss,
``method.step(optimizer, g)``; at the end ``method.end_task``; then evaluate every task on
its test set: R[i, j] = accuracy on task j after training task i (GEM's accuracy matrix).

Every random draw is seeded by (seed, task index[, epoch]) rather than by a running stream,
so a run resumed from the checkpoint after task i continues exactly as if uninterrupted.
"""
import json
import os
import time

import numpy as np

from .backend import asnumpy, to_float
from .fileio import save_npz_atomic
from .checks import check_finite
from .progress import Progress


class DivergenceError(RuntimeError):
    """The loss became NaN or Inf."""


def validate_task(task, n_outputs):
    """Check a task's arrays once, before training on it (not every step)."""
    for split in ("train", "test"):
        x, y = getattr(task, "x_" + split), getattr(task, "y_" + split)
        if x is None or y is None:
            raise ValueError(f"task {task.name!r}: missing {split} data")
        if len(x) != len(y):
            raise ValueError(f"task {task.name!r}: {len(x)} {split} inputs but {len(y)} labels")
        if len(x) == 0:
            raise ValueError(f"task {task.name!r}: no {split} examples")
        check_finite(x, f"task {task.name!r} {split} inputs")
        y = asnumpy(y)
        if y.dtype.kind not in "iu":
            raise TypeError(f"task {task.name!r}: {split} labels must be integers, got {y.dtype}")
        allowed = set(range(n_outputs)) if task.classes is None else set(task.classes)
        bad = sorted(set(np.unique(y).tolist()) - allowed)
        if bad:
            raise ValueError(f"task {task.name!r}: {split} labels {bad} are outside the task's "
                             f"output units {sorted(allowed)}")


def evaluate(model, tasks, batch_size=2048):
    """Test accuracy on each task, with that task's active output units."""
    return [model.accuracy(t.x_test, t.y_test, t.classes, batch_size) for t in tasks]


def train_epoch(model, method, optimizer, x, y, classes, batch_size, rng):
    """One pass over a task's training set (x, y already on the model's device); returns
    (mean loss, penalty at the end) as floats: the only host syncs of the epoch."""
    xp = model.xp
    n = len(x)
    order = xp.asarray(rng.permutation(n))
    loss_sum = xp.zeros((), dtype=model.dtype)
    model.train()
    batches = 0
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        loss_sum += model.loss_and_grad(x[idx], y[idx], classes, check=False)
        method.step(optimizer, model.params.grad)       # g: the task gradient, no penalty
        batches += 1
    return to_float(loss_sum) / batches, to_float(method.penalty())


class History:
    """What a run records: R (T x T), per-epoch logs, timings."""

    def __init__(self, n_tasks):
        self.R = np.full((n_tasks, n_tasks), np.nan)
        self.epochs = []           # dicts: task, epoch, loss, penalty, sum_omega, ...
        self.task_seconds = []

    def to_dict(self):
        return {"R": self.R.tolist(), "epochs": self.epochs, "task_seconds": self.task_seconds}

    @classmethod
    def from_dict(cls, d):
        h = cls(len(d["R"]))
        h.R = np.array(d["R"], dtype=float)
        h.epochs, h.task_seconds = list(d["epochs"]), list(d["task_seconds"])
        return h


def train_tasks(model, tasks, method, optimizer, epochs=10, batch_size=64, seed=0,
                reset_optimizer=True, checkpoint_dir=None, resume=False, log=None,
                progress=True, on_task_start=None, on_task_end=None):
    """Learn ``tasks`` in order; returns a History with the accuracy matrix R.

    epochs          an int, or one int per task (e.g. a long pretraining, then a short task).
    on_task_start   ``f(i, model)`` before task i's first epoch (e.g. freeze layers for
                    feature extraction); called again for that task when a run resumes.
    on_task_end     ``f(i, history)`` after task i is evaluated and checkpointed (a test can
                    raise here to simulate a run killed after task i).

    checkpoint_dir  after every task, model, optimizer and method state and the history so far
                    are written there atomically; with ``resume=True`` a run continues after
                    the last completed task.
    A NaN/Inf loss raises DivergenceError naming the task and epoch; the last checkpoint (from
    the previous task boundary) is left untouched.
    """
    per_task = list(epochs) if isinstance(epochs, (list, tuple)) else [epochs] * len(tasks)
    if len(per_task) != len(tasks):
        raise ValueError(f"{len(per_task)} epoch counts for {len(tasks)} tasks")
    if min(int(e) for e in per_task) < 1 or int(batch_size) < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    n_out = model.layers[-1].out_features if hasattr(model.layers[-1], "out_features") else None
    for task in tasks:
        validate_task(task, n_out or int(max(asnumpy(task.y_train).max(), 0)) + 1)
    method.attach(model)
    history, first = History(len(tasks)), 0
    if resume and checkpoint_dir and os.path.exists(_ckpt_path(checkpoint_dir)):
        first, history = load_checkpoint(checkpoint_dir, model, method, optimizer)
        _log(log, f"resumed from {checkpoint_dir}: {first} of {len(tasks)} tasks done")
    for i in range(first, len(tasks)):
        task, started, epochs = tasks[i], time.perf_counter(), int(per_task[i])
        if on_task_start is not None:
            on_task_start(i, model)
        if reset_optimizer:
            optimizer.reset()
        model.reseed(seed, i)
        method.begin_task(i, task)
        x = model.xp.asarray(task.x_train, dtype=model.dtype)   # on the device for the task
        y = model.xp.asarray(task.y_train)
        with Progress(total=epochs, desc=f"task {i + 1}/{len(tasks)} {task.name}",
                      enabled=progress) as bar:
            for epoch in range(epochs):
                rng = np.random.default_rng([seed, i, epoch])
                loss, pen = train_epoch(model, method, optimizer, x, y, task.classes,
                                        batch_size, rng)
                if not (np.isfinite(loss) and np.isfinite(pen)):
                    raise DivergenceError(
                        f"training diverged on task {i + 1} ({task.name!r}), epoch {epoch + 1}: "
                        f"loss={loss}, penalty={pen}; " + _last_good(checkpoint_dir, i))
                record = {"task": i, "epoch": epoch, "loss": loss, "penalty": pen}
                record.update(method.summary())
                history.epochs.append(record)
                bar.update(1, loss=loss)
        if method.closes_path:                              # trapezoid: g at the final weights
            model.train()
            n = min(len(task.x_train), batch_size)
            model.loss_and_grad(task.x_train[:n], task.y_train[:n], task.classes)
            method.close_path(model.params.grad)
        method.end_task(i, task)
        history.R[i] = evaluate(model, tasks)
        history.task_seconds.append(time.perf_counter() - started)
        seen = history.R[i, :i + 1]
        _log(log, f"task {i + 1}/{len(tasks)} {task.name}: mean accuracy over seen tasks "
                  f"{seen.mean():.4f} ({history.task_seconds[-1]:.1f} s)")
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, i + 1, history, model, method, optimizer)
        if on_task_end is not None:
            on_task_end(i, history)
    return history


def _last_good(checkpoint_dir, task_index):
    if not checkpoint_dir:
        return "no checkpoint kept (no checkpoint_dir given)"
    if task_index == 0:
        return f"nothing to keep yet (no task finished); checkpoints go to {checkpoint_dir}"
    return (f"the last good checkpoint (after task {task_index}) is untouched in "
            f"{checkpoint_dir}")


def _log(log, message):
    if log is not None:
        log(message)


def _ckpt_path(folder):
    return os.path.join(folder, "checkpoint.npz")


def save_checkpoint(folder, tasks_done, history, model, method, optimizer):
    """One .npz, written atomically: parameters, optimizer and method state, history."""
    arrays = {f"param/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    arrays.update({f"method/{k}": v for k, v in method.state_dict().items()})
    meta = {"tasks_done": tasks_done, "history": history.to_dict(), "method": method.config()}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    save_npz_atomic(_ckpt_path(folder), arrays)


def load_checkpoint(folder, model, method, optimizer):
    """Restore state saved by ``save_checkpoint``; returns (tasks_done, History)."""
    with np.load(_ckpt_path(folder), allow_pickle=False) as f:
        part = lambda p: {k[len(p):]: f[k] for k in f.files if k.startswith(p)}  # noqa: E731
        model.load_state_dict(part("param/"))
        optimizer.load_state_dict(part("optim/"))
        method.load_state_dict(part("method/"))
        meta = json.loads(bytes(f["meta"]).decode())
    if meta["method"] != method.config():
        raise ValueError(f"checkpoint in {folder} was written by {meta['method']}, "
                         f"not {method.config()}")
    return meta["tasks_done"], History.from_dict(meta["history"])
