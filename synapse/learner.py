"""Learn tasks one at a time: a Learner holds a model, a method and an optimizer.

    learner = Learner(model, SI(c=1.0), Adam(model.params), batch_size=64, seed=0)
    for task in tasks:                       # Tasks arrive one by one (a stream)
        learner.learn(task, epochs=10)       # -> accuracies on learner.tasks after this task
    learner.R                                # accuracy matrix, one row per learned task
    learner.evaluate(tasks)                  # accuracies, any time

``learn(task, epochs=E)`` or ``learn(task, steps=N)`` for the k-th task the method has learned
(k counts from 0): reset the optimizer (if ``reset_optimizer``, by default as the task's
scenario says); ``model.reseed(seed, k)``; ``method.begin_task(k, task)``; per pass e over the
data, a shuffle seeded by (seed, k, e) and per minibatch g = dL/dtheta of the task loss,
``method.step(optimizer, g)``, for E passes or until exactly N minibatches (the last pass cut
short; N = E * ceil(n / batch_size) trains exactly as E epochs do); for the trapezoid integrator
``method.close_path`` with g at the final weights; ``method.end_task(k, task)`` (for SI the
consolidation of Eq. 4); check that the state is finite and the penalty is not silently inert;
evaluate; write the checkpoint. Every random draw is seeded by (seed, k[, e]), not by a running
stream, so learning task by task, in one call over the sequence, or resumed from a checkpoint
gives bit for bit the same numbers.

The accuracy matrix (GEM, Lopez-Paz & Ranzato 2017; see synapse/metrics.py): R[i, j] is the
test accuracy on column task j after learning the learner's i-th task, among the output units
the task's scenario lets compete then (``synapse.data.eval_units``: its own units with task
identity; without, the units of every task learned through row i). The columns,
``learner.tasks``, are the learned tasks in the order learned, then any tasks declared with
``learn(task, eval_tasks=...)`` and not learned yet (e.g. the whole known sequence, for R above
the diagonal); so R[i, i] is always the task just learned. R is square, (n, n) with n columns;
rows not learned yet and entries never evaluated are NaN.

A run stops with :class:`DivergenceError` when an epoch's loss or penalty is NaN/Inf, or when
its mean task loss exceeds ``EXPLOSION`` (1000) times the larger of chance level, log(number of
active classes), and the loss of the task's first minibatch: cross-entropy that far above both
means logits of hundreds in the wrong direction, which no healthy run reaches (measured on
the five split-digits tasks with Adam at lr 1e-3 and 1e-2 and SGD with momentum, for
fine-tuning, EWC and SI: no epoch's mean loss exceeded its task's first minibatch loss, while
Adam at lr 1e6 reaches 7e20 in the first epoch).
"""
import math
import time
import warnings

import numpy as np

from . import checkpoint
from ._kernels import kernels
from .backend import to_device, to_float
from .checkpoint import History
from .checks import check_count, check_representable, check_task_fits
from .data.scenarios import eval_units, resets_optimizer
from .data.task import as_task
from .errors import ConfigError, DataError, UserError
from .fileio import find_nonfinite
from .progress import Progress

EXPLOSION = 1e3


class DivergenceError(RuntimeError):
    """Training diverged (NaN/Inf or an exploding loss): a run outcome, not a user mistake."""


class SilentPenaltyWarning(UserWarning):
    """A regulariser with c > 0 had no effect on a task: its importance is all zero, or its
    penalty never changed an update (no weight it protects moved: too few steps, no shared
    weight trained, or its state lost or reset), so that task was plain fine-tuning."""


def evaluate(model, tasks, batch_size=2048, learned=None):
    """Test accuracy on each task after learning ``learned`` (default: ``tasks`` themselves),
    among the units its scenario lets compete (``synapse.data.eval_units``)."""
    learned = tasks if learned is None else learned
    return [model.accuracy(t.x_test, t.y_test, eval_units(t, learned), batch_size)
            for t in tasks]


def train_epoch(model, method, optimizer, x, y, classes, batch_size, rng, batches=None):
    """One pass over a task's training set (x, y already on the model's device), or its first
    ``batches`` minibatches; returns (mean loss, penalty at the end, loss of the first
    minibatch) as floats: the only host syncs of the epoch."""
    xp = model.xp
    n = len(x)
    order = xp.asarray(rng.permutation(n))
    loss_sum = xp.zeros((), dtype=model.dtype)
    first = None
    model.train()
    starts = range(0, n, batch_size)[:batches]
    for start in starts:
        idx = order[start:start + batch_size]
        loss = model.loss_and_grad(x[idx], y[idx], classes, check=False)
        loss_sum += loss
        if first is None:
            first = loss            # a fresh value each batch; nothing mutates it
        method.step(optimizer, model.params.grad)       # g: the task gradient, no penalty
    return to_float(loss_sum) / len(starts), to_float(method.penalty()), to_float(first)


class Learner:
    """Model, method and optimizer, driven one task at a time (see the module docstring).

    batch_size, seed     minibatch size; the seed of every shuffle and dropout mask.
    reset_optimizer      forget the optimizer state at the start of each task: True, False,
                         or None (default): as the task's scenario says
                         (``synapse.data.SCENARIOS``, each with its reason: the authors'
                         split-MNIST protocol resets Adam; permuted and class-incremental
                         tasks keep it), True for a task that declares no scenario.
    checkpoint_dir       after every task, model, optimizer, method and history are written
                         there atomically (``checkpoint.npz``); ``Learner.restore`` reads it.
    tag                  a JSON-able record stored in every checkpoint; ``restore`` refuses a
                         checkpoint whose tag differs (the experiments store their run's
                         settings there).
    log, progress        ``log(message)`` gets one line per task; ``progress`` shows a bar.

    The method is attached to the model here; a method already attached to this model keeps
    its state and its count of learned tasks, so a new Learner (or ``train_tasks`` called once
    per task) continues where the last one stopped.
    """

    def __init__(self, model, method, optimizer, batch_size=64, seed=0, reset_optimizer=None,
                 checkpoint_dir=None, log=None, progress=True, eval_batch_size=2048, tag=None):
        if getattr(optimizer, "params", None) is not model.params:
            raise UserError("Learner: the optimizer was built for another model's parameters; "
                            "build it with optimizer(model.params)")
        self.batch_size = check_count("batch_size", batch_size)
        self.seed = check_count("seed", seed, minimum=0)
        self.eval_batch_size = check_count("eval_batch_size", eval_batch_size)
        if reset_optimizer is not None and not isinstance(reset_optimizer, (bool, np.bool_)):
            raise UserError(f"reset_optimizer: must be True or False, or None (as the task's "
                            f"scenario says), got {reset_optimizer!r}")
        check_representable(type(optimizer).__name__, model.dtype, **optimizer.float_settings())
        self.model, self.method, self.optimizer = model, method.attach(model), optimizer
        self.reset_optimizer = None if reset_optimizer is None else bool(reset_optimizer)
        self.checkpoint_dir, self.log, self.progress = checkpoint_dir, log, progress
        self.tag = tag
        self.first_index = method.tasks_learned       # k of this learner's first task
        self.learned, self.columns, self.rows = [], [], []   # rows: {column: accuracy}
        self.digests = []                             # of learned tasks' data, as checkpointed
        self.history = History()
        self.saved_after = None                       # tasks done in the last checkpoint
        self.declared = False                         # eval_tasks given: the total is known
        self._checked = {}                            # id -> task checked against the model

    # -- what has been learned -----------------------------------------------------------
    @property
    def tasks_done(self):
        return len(self.learned)

    @property
    def tasks(self):
        """The columns of R: learned tasks in order, then declared ones not learned yet."""
        return self.learned + [t for t in self.columns if not _contains(self.learned, t)]

    @property
    def R(self):
        cols = self.tasks
        R = np.full((len(cols), len(cols)), np.nan)
        for i, row in enumerate(self.rows):
            for j, task in enumerate(cols):
                R[i, j] = row.get(id(task), np.nan)
        return R

    def evaluate(self, tasks):
        """Test accuracy on each of ``tasks`` now, among the units its scenario lets compete
        after the tasks learned so far."""
        tasks = [as_task(t, "evaluate") for t in _as_list(tasks, "evaluate")]
        return evaluate(self.model, tasks, self.eval_batch_size, self.learned)

    # -- one task ------------------------------------------------------------------------
    def learn(self, task, epochs=None, eval_tasks=(), steps=None):
        """Train on ``task`` for ``epochs`` (default 10) or exactly ``steps`` minibatches; then
        evaluate every column of R (the tasks learned so far plus ``eval_tasks``); returns that
        row of accuracies (NumPy, over ``self.tasks``)."""
        task = as_task(task, "learn")
        epochs, steps = training_length(epochs, steps, len(task.y_train), self.batch_size)
        eval_tasks = [as_task(t, "eval_tasks") for t in _as_list(eval_tasks, "eval_tasks")]
        self._add_columns(task, eval_tasks)
        self.declared = self.declared or bool(eval_tasks)
        i, k = self.tasks_done, self.first_index + self.tasks_done
        started = time.perf_counter()
        if resets_optimizer(task, self.reset_optimizer):
            self.optimizer.reset()
        self.model.reseed(self.seed, k)
        self.method.begin_task(k, task)
        records, moved = self._epochs(task, epochs, steps, i, k)
        idle = self._idle_penalty(k, moved)                # before end_task moves theta_ref
        if self.method.closes_path:                         # trapezoid: g at the final weights
            self.model.train()
            m = min(len(task.x_train), self.batch_size)
            self.model.loss_and_grad(task.x_train[:m], task.y_train[:m], task.classes)
            self.method.close_path(self.model.params.grad)
        self.method.end_task(k, task)
        self._check_finite_state(i, task)
        self.method.tasks_learned = k + 1
        self.learned.append(task)
        self.history.epochs.extend(records)
        self._check_not_silent(k, task, idle, steps)
        cols = self.tasks
        row = evaluate(self.model, cols, self.eval_batch_size, self.learned)
        self.rows.append({id(t): a for t, a in zip(cols, row)})
        seconds = time.perf_counter() - started
        self._record(seconds, epochs, steps)
        _log(self.log, f"{self._label(i, task)}: mean accuracy over seen tasks "
                       f"{np.mean(row[:i + 1]):.4f} ({seconds:.1f} s)")
        if self.checkpoint_dir:
            self.save()
        return np.asarray(row)

    def _add_columns(self, task, eval_tasks):
        """Check the task and every new column against the model; add them to R's columns."""
        if _contains(self.learned, task):
            raise UserError(f"learn: task {task.name!r} was already learned by this learner; "
                            f"build a new Task object to learn the same data again")
        self.check_fits([t for t in [task] + eval_tasks
                          if t is task or not _contains(self.columns, t)])
        for t in [task] + eval_tasks:
            if not _contains(self.columns, t):
                self.columns.append(t)

    def check_fits(self, tasks):
        """``check_task_fits`` on each of ``tasks`` in order, once per task object per learner
        (the checked tasks are kept, so an id is never reused by another task)."""
        for t in tasks:
            if id(t) not in self._checked:
                check_task_fits(t, self.model)
                self._checked[id(t)] = t

    def _epochs(self, task, epochs, steps, i, k):
        """The epochs of task k (row i), ``steps`` minibatches in all; returns the per-epoch
        records and, from the second task on, the anchored penalty at each epoch end (for
        ``_check_not_silent``)."""
        model, method = self.model, self.method
        x = to_device(task.x_train, model.device, model.dtype)   # on the device for the task
        y = to_device(task.y_train, model.device)
        n_active = len(task.classes) if task.classes is not None else model.n_outputs or 2
        reference, records, moved = math.log(max(n_active, 2)), [], []
        per_epoch = batches_per_epoch(len(x), self.batch_size)
        with Progress(total=epochs, desc=self._label(i, task), enabled=self.progress,
                      final_line=self.log is None) as bar:      # else the task's log line
            for epoch in range(epochs):
                rng = np.random.default_rng([self.seed, k, epoch])
                loss, pen, first = train_epoch(model, method, self.optimizer, x, y,
                                               task.classes, self.batch_size, rng,
                                               min(per_epoch, steps - epoch * per_epoch))
                if epoch == 0 and math.isfinite(first):
                    reference = max(reference, first)
                if not (math.isfinite(loss) and math.isfinite(pen)):
                    self._diverged(i, task, epoch, f"loss={loss}, penalty={pen}")
                if loss > EXPLOSION * reference:
                    self._diverged(i, task, epoch, f"mean loss {loss:.3g} is over {EXPLOSION:g} "
                                   f"times its starting value {reference:.3g}")
                records.append(dict({"task": i, "epoch": epoch, "loss": loss, "penalty": pen},
                                    **method.summary()))
                moved.append(self._anchored_penalty() if k else None)
                bar.update(1, loss=loss)
        return records, moved

    def _label(self, i, task):
        """'task 2/5 digits 2/3' where the sequence is declared (eval_tasks), else 'task 2 ...'."""
        total = f"/{len(self.tasks)}" if self.declared else ""
        return f"task {i + 1}{total} {task.name}"

    def _record(self, seconds, epochs, steps):
        h = self.history
        h.R, h.tasks = self.R, [t.name for t in self.tasks]
        h.task_seconds.append(seconds)
        h.task_epochs.append(epochs)
        h.task_steps.append(steps)

    def _anchored_penalty(self):
        """sum_k Omega_k (theta_k - theta_ref_k)^2, or None: zero exactly when the penalty's
        gradient 2 c Omega (theta - theta_ref) is zero everywhere."""
        reg = self.method.regulariser()
        if reg is None or not reg[0]:
            return None
        _, Omega, theta_ref = reg
        return to_float(kernels.penalty_value(Omega, self.model.params.theta, theta_ref, 1.0))

    # -- checks at the task boundary -----------------------------------------------------
    def _check_finite_state(self, i, task):
        arrays = {"the weights": self.model.params.theta}
        arrays.update({f"{self.method.name}'s {name}": getattr(self.method, name)
                       for name in self.method.state_names})
        arrays.update({f"the optimizer's {name}": getattr(self.optimizer, name)
                       for name in self.optimizer.state_names})
        bad = find_nonfinite(arrays)
        if bad:
            self._diverged(i, task, None, f"at the end of the task {bad[0]} holds {bad[1]} "
                                          f"NaN/Inf values")

    def _idle_penalty(self, k, moved):
        """Where the penalty was 0 at every epoch end of task k > 0: (weights important to
        earlier tasks, weights this task moved, weights both), else None."""
        if not k or not moved or any(m != 0 for m in moved):
            return None
        _, Omega, theta_ref = self.method.regulariser()
        important, changed = Omega != 0, self.model.params.theta != theta_ref
        return tuple(int(a.sum()) for a in (important, changed, important & changed))

    def _check_not_silent(self, k, task, idle, steps):
        reg = self.method.regulariser()
        if reg is None or not reg[0]:
            return
        c, Omega, _ = reg
        name = f"{self.method.name} (c={c:g})"
        if not bool((Omega != 0).any()):
            self._warn(f"after task {k + 1} ({task.name!r}) {name} has an all-zero importance "
                       f"Omega: its penalty protects nothing and the next task is fine-tuning")
        elif idle is not None:
            important, changed, both = idle
            if not important:
                why = ("no weight carried importance from earlier tasks (Omega was 0 "
                       "everywhere): their state was lost or reset")
            elif both:
                why = (f"{both:,} weights both important and moved gave a penalty that "
                       f"underflowed to 0 in {self.model.dtype}")
            else:
                why = (f"none of the {changed:,} weights its {steps:,} step(s) moved is among "
                       f"the {important:,} that earlier tasks made important (likely: too few "
                       f"steps for shared layers to move, as a zero readout passes them no "
                       f"gradient on a task's first step; no shared weight trained; or the "
                       f"earlier tasks' state lost or reset)")
            self._warn(f"during task {k + 1} ({task.name!r}) {name} never changed an update "
                       f"(Omega (theta - theta_ref)^2 was 0 at every epoch end): {why}; so "
                       f"this task was fine-tuning")

    def _warn(self, message):
        self.history.warnings.append(message)
        warnings.warn(message, SilentPenaltyWarning, stacklevel=4)
        _log(self.log, "WARNING: " + message)

    def _diverged(self, i, task, epoch, what):
        where = f"task {i + 1} ({task.name!r})" + ("" if epoch is None else f", epoch {epoch + 1}")
        if not self.checkpoint_dir:
            kept = "no checkpoint kept (no checkpoint_dir given)"
        elif self.saved_after is None:
            kept = f"no checkpoint was written yet to {self.checkpoint_dir}"
        else:
            kept = (f"the last checkpoint (after task {self.saved_after}, all finite) is "
                    f"unchanged in {self.checkpoint_dir}")
        raise DivergenceError(f"training diverged on {where}: {what}; {kept}")

    # -- checkpoints (synapse/checkpoint.py) -------------------------------------------
    def save(self, folder=None):
        """Write model, optimizer and method state and the history to ``folder/checkpoint.npz``
        (default: ``checkpoint_dir``) atomically; never a non-finite array."""
        if not (folder or self.checkpoint_dir):
            raise UserError("save: no folder: call learner.save(folder), or build the Learner "
                            "with checkpoint_dir=folder")
        folder = folder or self.checkpoint_dir
        checkpoint.save(self, folder, DivergenceError)
        if folder == self.checkpoint_dir:
            self.saved_after = self.tasks_done

    def restore(self, folder, tasks):
        """Continue from ``folder/checkpoint.npz``: ``tasks`` are Tasks whose first ones are
        the tasks the checkpoint learned, in order (checked by name and data); any after them,
        and the checkpoint's evaluated columns, become columns of R. Returns the tasks done."""
        tasks = [as_task(t, "restore") for t in _as_list(tasks, "restore")]
        done, meta = checkpoint.restore(self, folder, tasks)
        history = History.from_dict(meta["history"])
        self.first_index = int(meta.get("first_index", 0))
        self.method.tasks_learned = self.first_index + done
        self.learned = list(tasks[:done])
        by_name = {}
        for t in reversed(tasks[done:]):                    # declared, not learned yet
            by_name[t.name] = t
        cols = [self.learned[j] if j < done else by_name.get(name)
                for j, name in enumerate(history.tasks)]
        self.columns = [t for t in cols if t is not None] + \
            [t for t in tasks if not _contains(cols, t)]
        self.rows = [{id(t): history.R[i, j] for j, t in enumerate(cols)
                      if t is not None and not np.isnan(history.R[i, j])} for i in range(done)]
        self.history = history
        self.history.R, self.history.tasks = self.R, [t.name for t in self.tasks]
        self.saved_after = done if folder == self.checkpoint_dir else None
        _log(self.log, f"resumed from {folder}: {done} task(s) done")
        return done


def training_length(epochs, steps, n, batch_size):
    """``(epochs, steps)`` of one task of ``n`` examples: passes begun and minibatches run,
    from either count (epochs default 10); both given is an error."""
    per_epoch = batches_per_epoch(n, batch_size)
    if steps is None:
        epochs = check_count("epochs", 10 if epochs is None else epochs)
        return epochs, epochs * per_epoch
    if epochs is not None:
        raise ConfigError("steps", "give epochs or steps, not both")
    steps = check_count("steps", steps)
    return -(-steps // per_epoch), steps


def batches_per_epoch(n, batch_size):
    """Minibatches in one pass over ``n`` examples: ``ceil(n / batch_size)``."""
    return -(-n // batch_size)


def _contains(tasks, task):
    return any(t is task for t in tasks)


def _as_list(tasks, where):
    if isinstance(tasks, (list, tuple)):
        return list(tasks)
    raise DataError(f"{where}: expected a list of Tasks, got a {type(tasks).__name__}")


def _log(log, message):
    if log is not None:
        log(message)
