"""Train one model on a sequence of tasks: a thin loop over a :class:`~synapse.learner.Learner`.

``train_tasks(model, tasks, method, optimizer, epochs=...)`` learns ``tasks`` in order and
returns the History with the accuracy matrix R (T x T, GEM's R[i, j] = accuracy on task j
after learning task i, every task evaluated after every task). ``train_joint`` is the upper
bound beside it: the same network trained at once on the pooled data, in the same R terms.
What one task's learning does, the seeding that makes runs exactly resumable, divergence and
the checks at task boundaries are described in synapse/learner.py.
"""
import os

from .backend import get_array_module
from .checks import check_count
from .data.task import Task, as_task
from .errors import CheckpointError, ConfigError
from .fileio import remove_stale_tmp
from .checkpoint import History, checkpoint_path
from .learner import (DivergenceError, Learner, SilentPenaltyWarning, _as_list, evaluate,
                      train_epoch, training_length)

__all__ = ["train_tasks", "train_joint", "DivergenceError", "SilentPenaltyWarning", "History",
           "Learner", "evaluate", "train_epoch"]


def train_tasks(model, tasks, method, optimizer, epochs=None, steps=None, batch_size=64, seed=0,
                reset_optimizer=None, checkpoint_dir=None, resume=False, log=None,
                progress=True, on_task_start=None, on_task_end=None, tag=None):
    """Learn ``tasks`` in order; returns a History with the accuracy matrix R.

    epochs          an int, or one int per task (e.g. a long pretraining, then a short task);
                    default 10.
    steps           instead of epochs: exactly this many minibatches per task (an int, or one
                    per task), the unit of van de Ven et al.'s protocol (iterations per task).
    reset_optimizer True, False, or None: as each task's scenario says (see Learner).
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
    per_task = [dict(zip(("epochs", "steps"), counts))
                for counts in zip(_per_task("epochs", epochs, tasks),
                                  _per_task("steps", steps, tasks))]
    batch_size = check_count("batch_size", batch_size)
    lengths = [training_length(**counts, n=len(t.y_train), batch_size=batch_size)
               for counts, t in zip(per_task, tasks)]     # (epochs, minibatches) of each task
    learner = Learner(model, method, optimizer, batch_size=batch_size, seed=seed,
                      reset_optimizer=reset_optimizer, checkpoint_dir=checkpoint_dir, log=log,
                      progress=progress, tag=tag)
    learner.check_fits(tasks)               # every task checked before hours of training
    first = 0
    if resume and checkpoint_dir:
        if os.path.exists(checkpoint_path(checkpoint_dir)):
            first = learner.restore(checkpoint_dir, tasks)
            done, want = learner.history.task_steps, [s for _, s in lengths[:first]]
            unit = "minibatches"
            if not done:                              # a checkpoint from before steps
                done, want = learner.history.task_epochs, [e for e, _ in lengths[:first]]
                unit = "epochs"
            if done and done != want:
                raise CheckpointError(f"checkpoint {checkpoint_path(checkpoint_dir)} trained "
                                      f"{done} {unit} per task; these epochs/steps make {want}")
        else:
            remove_stale_tmp(checkpoint_path(checkpoint_dir))
    for i in range(first, len(tasks)):
        if on_task_start is not None:
            on_task_start(i, model)
        learner.learn(tasks[i], eval_tasks=tasks, **per_task[i])
        if on_task_end is not None:
            on_task_end(i, learner.history)
    return learner.history


def _per_task(name, value, tasks):
    """One count (or None) per task from an int, None or a list of one per task."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(tasks):
            raise ConfigError(name, f"{len(value)} {name[:-1]} counts for {len(tasks)} tasks")
        return list(value)
    return [value] * len(tasks)


def train_joint(model, tasks, optimizer, epochs=None, steps=None, batch_size=64, seed=0,
                log=None, progress=True):
    """The joint baseline, the upper bound of continual learning, as a History with R.

    Row i is one network trained at once on the pooled training data of tasks 0..i, from the
    model's weights as given and a reset optimizer; ``R[i, j]`` is its test accuracy on task j
    among the units task j's scenario lets compete after tasks 0..i (the sequential learners'
    rule, ``synapse.data.eval_units``). The last row is the network trained once on every
    task's data (its mean is ACC); the rows before it give the curve over the tasks so far.

    Pooled training activates the union of the pooled tasks' units (``Task.classes``): every
    class seen so far (class-incremental), the shared pair (domain-incremental), and for
    task-incremental tasks also every pooled class: one softmax over all of them (a harder
    objective than one head per example), tested with task identity. Length: ``epochs``
    passes over the pooled data, or ``steps`` minibatches per pooled task ((i + 1) * steps
    for row i, the budget a sequential learner has spent after task i). Shuffles are seeded
    by (seed, 0, pass) as a Learner's first task is; the model ends as the last row's network.
    (GMvandeVen/continual-learning's 'joint' differs: one network, one task's iterations on the
    pooled data, and in task-incremental learning one softmax per task in each minibatch.)
    """
    from .methods import make_method
    tasks = [as_task(t, f"tasks[{i}]") for i, t in enumerate(_as_list(tasks, "tasks"))]
    if not tasks:
        raise ConfigError("tasks", "no tasks to learn (an empty list)")
    start = model.state_dict()
    history = History(len(tasks))
    history.tasks = [t.name for t in tasks]
    for i in range(len(tasks)):
        model.load_state_dict(start)
        learner = Learner(model, make_method("finetune"), optimizer, batch_size=batch_size,
                          seed=seed, reset_optimizer=True, log=log, progress=progress)
        learner.check_fits(tasks)
        learner.learn(_pooled(tasks[:i + 1]), epochs=epochs,
                      steps=None if steps is None else (i + 1) * check_count("steps", steps))
        history.R[i] = evaluate(model, tasks, learner.eval_batch_size, tasks[:i + 1])
        history.epochs += [dict(e, task=i) for e in learner.history.epochs]
        for name in ("task_seconds", "task_epochs", "task_steps"):
            getattr(history, name).extend(getattr(learner.history, name))
    return history


def _pooled(tasks):
    """One Task holding the data of ``tasks``, on the union of their units."""
    units = None if any(t.classes is None for t in tasks) else \
        tuple(sorted(set().union(*(t.classes for t in tasks))))
    xp = get_array_module(tasks[0].x_train)                 # NumPy, or CuPy arrays kept there
    pool = lambda name: xp.concatenate([getattr(t, name) for t in tasks])  # noqa: E731
    return Task("joint: " + ", ".join(t.name for t in tasks), pool("x_train"), pool("y_train"),
                pool("x_test"), pool("y_test"), units, scenario=tasks[-1].scenario)
