"""Train one model on a sequence of tasks: a thin loop over a :class:`~synapse.learner.Learner`.

``train_tasks(model, tasks, method, optimizer, epochs=...)`` learns ``tasks`` in order and
returns the History with the accuracy matrix R (T x T, GEM's R[i, j] = accuracy on task j
after learning task i, every task evaluated after every task). What one task's learning does,
the seeding that makes runs exactly resumable, divergence and the checks at task boundaries are
described in synapse/learner.py.
"""
import os

from .checks import check_count
from .data.task import as_task
from .errors import CheckpointError, ConfigError
from .fileio import remove_stale_tmp
from .checkpoint import History, checkpoint_path
from .learner import DivergenceError, Learner, SilentPenaltyWarning, _as_list, evaluate, train_epoch

__all__ = ["train_tasks", "DivergenceError", "SilentPenaltyWarning", "History", "Learner",
           "evaluate", "train_epoch"]


def train_tasks(model, tasks, method, optimizer, epochs=10, batch_size=64, seed=0,
                reset_optimizer=True, checkpoint_dir=None, resume=False, log=None,
                progress=True, on_task_start=None, on_task_end=None, tag=None):
    """Learn ``tasks`` in order; returns a History with the accuracy matrix R.

    epochs          an int, or one int per task (e.g. a long pretraining, then a short task).
    on_task_start   ``f(i, model)`` before task i's first epoch (e.g. freeze layers for
                    feature extraction); called again for that task when a run resumes.
    on_task_end     ``f(i, history)`` after task i is evaluated and checkpointed (a test can
                    raise here to simulate a run killed after task i).

    checkpoint_dir  after every task, model, optimizer and method state and the history so far
                    are written there atomically; with ``resume=True`` a run continues after
                    the last completed task (also with more tasks than the checkpoint's run).
    tag             a JSON-able record stored in each checkpoint; resuming refuses a checkpoint
                    whose tag differs (and, always, one whose tasks hold other data).
    The method keeps its state across calls on the same model: calling this once per task
    continues the sequence exactly as one call over all tasks would.
    A NaN/Inf or exploding loss raises DivergenceError naming the task and epoch.
    """
    tasks = [as_task(t, f"tasks[{i}]") for i, t in enumerate(_as_list(tasks, "tasks"))]
    if not tasks:
        raise ConfigError("tasks", "no tasks to learn (an empty list)")
    if isinstance(epochs, (list, tuple)):
        if len(epochs) != len(tasks):
            raise ConfigError("epochs", f"{len(epochs)} epoch counts for {len(tasks)} tasks")
        per_task = [check_count("epochs", e) for e in epochs]
    else:
        per_task = [check_count("epochs", epochs)] * len(tasks)
    learner = Learner(model, method, optimizer, batch_size=batch_size, seed=seed,
                      reset_optimizer=reset_optimizer, checkpoint_dir=checkpoint_dir, log=log,
                      progress=progress, tag=tag)
    learner.check_fits(tasks)               # every task checked before hours of training
    first = 0
    if resume and checkpoint_dir:
        if os.path.exists(checkpoint_path(checkpoint_dir)):
            first = learner.restore(checkpoint_dir, tasks)
            done_epochs = learner.history.task_epochs
            if done_epochs and done_epochs != per_task[:first]:
                raise CheckpointError(f"checkpoint {checkpoint_path(checkpoint_dir)} trained "
                                      f"epochs {done_epochs}, not {per_task[:first]}")
        else:
            remove_stale_tmp(checkpoint_path(checkpoint_dir))
    for i in range(first, len(tasks)):
        if on_task_start is not None:
            on_task_start(i, model)
        learner.learn(tasks[i], per_task[i], eval_tasks=tasks)
        if on_task_end is not None:
            on_task_end(i, learner.history)
    return learner.history
