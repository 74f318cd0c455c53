"""What the experiments' runs share: the dataset a worker loads once, training with the config's
optimizer, and the summary tables.

Seeds: a run's ``seed`` fixes its initial weights, its minibatch order and (permuted MNIST) its
permutations; the data split is fixed by ``data_seed`` so every run sees the same test set.
"""
import contextlib
import functools
import sys

import numpy as np

from synapse.checkpoint import tasks_digest
from synapse.metrics import mean_sem, summarize
from synapse.methods import METHODS
from synapse.model import mlp, mlp_memory
from synapse.optim import make_optimizer
from synapse.train import train_tasks

from .runs import method_for

REGULARISERS = tuple(m for m in METHODS if m not in ("si", "finetune"))
DIGIT_DATA = ("auto", "mnist", "mnist-subset", "fashion-mnist", "digits")
RUN_COPIES = 12      # parameter-sized vectors of a run: 9 (theta, gradient, Adam's 3, SI's 4)
                     # and 3 over (see synapse.model.mlp_memory)
EVAL_BATCH = 2048    # examples at once in Sequential.predict


@functools.lru_cache(maxsize=4)
def cached_dataset(name, data_seed, val_fraction=0.0, train_examples=None):
    """Each worker process loads a dataset once, silently (the parent says which).

    ``train_examples``: keep only that many training examples, stratified and seeded by
    ``data_seed`` (the test split is untouched), e.g. to compare 4,000 with 60,000 images."""
    import dataclasses
    from synapse.data import load_dataset
    from synapse.data.splits import stratified_subset
    from synapse.errors import ConfigError

    ds = load_dataset(name, seed=data_seed, log=None, val_fraction=val_fraction)
    n = len(ds.y_train)
    if train_examples is None or train_examples == n:
        return ds
    if train_examples < ds.n_classes:
        raise ConfigError("train_examples", f"{train_examples} is fewer than the {ds.n_classes} "
                                            f"classes of {ds.name}: some class would have no "
                                            f"example")
    if train_examples > n:
        raise ConfigError("train_examples", f"{ds.name} has {n:,} training examples, fewer "
                                            f"than {train_examples:,}")
    x, y = stratified_subset(ds.x_train, ds.y_train, train_examples, data_seed)
    return dataclasses.replace(ds, x_train=x, y_train=y, source=(
        f"{ds.source}; a stratified subset of {len(y):,} training examples (data_seed "
        f"{data_seed})"))


def blas_threads(n):
    """Limit BLAS to ``n`` threads. Minibatch matrices are small: one thread is fastest, and a
    second BLAS thread competing with another process for a core slows a step down ~50x."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                                   # pragma: no cover - sklearn brings it
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def fit(config, model, tasks, method, run, run_dir, log, tag, reset_optimizer, epochs=None,
        steps=None, **hooks):
    """Train ``model`` on ``tasks`` with the config's optimizer; returns the History.

    ``reset_optimizer``: always given (the continual config's setting; a transfer run learns
    one task per optimizer and passes True, which there changes nothing). ``tag``: the run's
    record, stored in each checkpoint. ``log``: None shows progress bars; False nothing; a
    function gets a line per task, and off a terminal the progress meter adds a line with the
    loss every 30 s. ``steps``: minibatches per task instead of epochs (``config.epochs``
    when neither is given)."""
    optimizer = make_optimizer(config.optimizer, model.params, lr=config.lr)
    if epochs is None and steps is None:
        epochs = config.epochs
    with blas_threads(1):
        return train_tasks(model, tasks, method, optimizer, epochs=epochs, steps=steps,
                           batch_size=config.batch_size, seed=run.seed,
                           reset_optimizer=reset_optimizer, checkpoint_dir=run_dir,
                           resume=True, log=log or None, tag=tag,
                           progress=log is None or (callable(log) and not sys.stderr.isatty()),
                           **hooks)


def continual_run(config, run, run_dir, log, on_task_end, tag, ds, tasks):
    """ONE continual-learning run: a fresh MLP learns ``tasks`` (of dataset ``ds``) in order."""
    model = mlp([ds.x_train.shape[1], *config.hidden, ds.n_classes], seed=run.seed,
                device=config.device)
    history = fit(config, model, tasks, method_for(config, run), run, run_dir, log, tag,
                  config.reset_optimizer, on_task_end=on_task_end)
    return history_record(history, {"tasks": [t.name for t in tasks],
                                    "tasks_digest": tasks_digest(tasks)})


def network_memory(config, n_inputs, n_outputs, copies=RUN_COPIES, dtype=np.float32, hidden=None,
                   setting="hidden", batch=None, evaluated=EVAL_BATCH):
    """``(setting, what, bytes)``: a run's MLP with its optimizer's and method's state and the
    activations of its largest batch (:func:`synapse.model.mlp_memory`): a minibatch, or
    ``batch``, or the ``evaluated`` test examples of a task (by EVAL_BATCH at most)."""
    sizes = [n_inputs, *(config.hidden if hidden is None else hidden), n_outputs]
    if batch is None:
        batch = max(config.batch_size, min(EVAL_BATCH, evaluated))
    return (setting, f"the {'-'.join(map(str, sizes))} network with its optimizer and method "
                     f"state", mlp_memory(sizes, dtype, copies, batch))


def tasks_memory(data, copies, n_tasks, setting):
    """``(setting, what, bytes)``: ``copies`` of the dataset described by ``data`` (float32
    inputs, int64 labels, one permutation each) and the run's n_tasks x n_tasks accuracy
    matrix."""
    n = data["n_train"] + data["n_val"] + data["n_test"]
    one = n * (4 * data["n_features"] + 8) + 8 * data["n_features"]
    return (setting, f"{n_tasks:,} tasks' data and accuracies", copies * one + 8 * n_tasks ** 2)


def history_record(history, extra=None):
    """What a run's History contributes to its record (and run.json)."""
    record = {"R": history.R.tolist(), "metrics": summarize(history.R),
              "epochs": history.epochs, "task_seconds": history.task_seconds,
              "warnings": list(getattr(history, "warnings", []))}
    record.update(extra or {})
    return record


DATA_TITLES = {"mnist": "MNIST", "mnist-subset": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def data_title(data, what):
    """'Split MNIST' on MNIST, 'Permuted Fashion-MNIST' on Fashion-MNIST (etc.): the title says
    which data the figure is about."""
    return f"{what} {DATA_TITLES.get(data['name'], data['name'])}"


# -- summaries --------------------------------------------------------------------------
def stats(values):
    m, s = mean_sem(np.asarray(values, dtype=float))
    return {"mean": float(m), "sem": float(s) if len(values) > 1 else None,
            "n": int(len(values)), "values": list(values)}


def paired_difference(a, b):
    """Mean of a - b over paired seeds with its 95% t-interval (``None`` bounds for one seed)."""
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n}
    half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def verdict(diff):
    """What a paired interval of SI minus another method says: better, worse, or no clear
    difference."""
    if diff["low"] is None:
        return "n/a (one seed)"
    if diff["low"] > 0:
        return "SI better"
    if diff["high"] < 0:
        return "SI worse"
    return "no clear difference"


def group_by_label(runs):
    groups = {}
    for run in runs:
        groups.setdefault(run["label"], []).append(run)
    return groups


def continual_summary(runs):
    """Per label: ACC, BWT, mean forgetting (mean and SEM over seeds)."""
    out = {}
    for label, group in group_by_label(runs).items():
        out[label] = {key: stats([r["metrics"][src] for r in group])
                      for key, src in (("acc", "acc"), ("bwt", "bwt"),
                                       ("forgetting", "mean_forgetting"))}
    return out


def continual_table(summary, acc_header="ACC"):
    rows = [[label, pm(s["acc"]), pm(s["bwt"]), pm(s["forgetting"]), s["acc"]["n"]]
            for label, s in summary.items()]
    return table(rows, ["method", acc_header, "BWT", "forgetting", "seeds"])


def table(rows, header):
    widths = [max(len(str(r[k])) for r in rows + [header]) for k in range(len(header))]
    fmt = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths))  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def pm(s):
    """'0.9498 ± 0.0064'; one seed has no SEM: '0.9498 ± n/a'."""
    sem = "n/a" if s["sem"] is None or not np.isfinite(s["sem"]) else f"{s['sem']:.4f}"
    return f"{s['mean']:.4f} ± {sem}"


def seeds_note(config):
    n = len(config.seeds)
    return f"n={n} seeds, mean ± SEM" if n > 1 else "1 seed (no error bars)"
