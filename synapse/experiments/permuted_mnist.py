"""Permuted MNIST (the paper's Fig. 2): task 1 is MNIST, task t a fixed random pixel permutation.

One shared 10-way readout for every task (no masks). The figure is the mean test accuracy over
the tasks seen so far against the number of tasks, one line per c, and beside it the "c scan":
the final mean accuracy against c (log axis), which shows where protection starts. Each run seed
draws its own permutations (and initial weights); the data split is fixed by ``data_seed``.

    from synapse.experiments import permuted_mnist
    results = permuted_mnist.run(profile="quick", c=[0, 0.1, 1])
"""
import functools

import numpy as np

from synapse.data import permuted_tasks
from synapse.metrics import mean_seen_over_seeds

from . import common, protocol, runner
from .settings import Integer, Setting, common_settings

METHODS = ("si", "finetune") + common.REGULARISERS

# The authors' settings (ganguli-lab/pathint, the permuted-MNIST script): 784-2000-2000-10,
# batch 256, 20 epochs per task, Adam 1e-3 NOT reset between tasks, xi = 0.1,
# c in {0, 0.01, 0.1, 1}, 10 tasks, 1 repeat.
PAPER = {"data": "auto", "data_seed": 0, "hidden": [2000, 2000], "optimizer": "adam",
         "lr": 1e-3, "batch_size": 256, "epochs": 20, "reset_optimizer": False, "xi": 0.1,
         "c": [0.0, 0.01, 0.1, 1.0], "methods": ["si"], "seeds": [0], "n_tasks": 10,
         "device": None, "integrator": "first-order", "train_examples": None}


def dataset(config):
    return common.cached_dataset(config.data, config.data_seed,
                                 train_examples=config.train_examples)


def describe_data(config):
    return dataset(config).info()


def memory(config, data):
    """What one run holds besides the loaded dataset: its network, and its ``n_tasks``
    permuted copies of the data, all built before the first task (with the accuracy matrix,
    n_tasks^2)."""
    return [common.network_memory(config, data["n_features"], data["n_classes"],
                                  evaluated=data["n_test"]),
            common.tasks_memory(data, config.n_tasks, config.n_tasks, "n_tasks")]


def run_one(config, run, run_dir, log, on_task_end, tag):
    """ONE run: a fresh network learns ``n_tasks`` permutations (drawn by the run's seed)."""
    ds = dataset(config)
    return common.continual_run(config, run, run_dir, log, on_task_end, tag, ds,
                                permuted_tasks(ds, config.n_tasks, seed=run.seed))


def report(config, runs, data):
    """Mean accuracy over seen tasks vs number of tasks, per c; the c scan; a table."""
    from .plotting import plot_mean_seen

    groups = common.group_by_label(runs)
    curves = {label.replace(" (SI)", "").replace(" (fine-tuning)", ""):
              np.stack([np.array(r["R"], dtype=float) for r in group])
              for label, group in groups.items()}
    note = (f"held-out test data: {data['name']} ({data['n_train']:,} training, "
            f"{data['n_test']:,} test images); {common.seeds_note(config)}")
    scan = c_scan(runs)
    figure = plot_mean_seen(curves, title=common.data_title(data, "Permuted"), note=note,
                            c_scan=scan)
    plot = {"kind": "mean_seen", "note": note, "curves": {}, "c_scan": scan}
    for label, R in curves.items():
        m, s = mean_seen_over_seeds(R)
        plot["curves"][label] = {"mean_seen_mean": m, "mean_seen_sem": s}
    summary = common.continual_summary(runs)
    return {"summary": summary, "plot": plot, "figure": figure,
            "table": common.continual_table(summary, f"ACC ({config.n_tasks} tasks)")}


def c_scan(runs):
    """SI's final mean accuracy (ACC) against c: ``{"c": [...], "acc_mean": [...], ...}``."""
    by_c = {}
    for r in runs:
        if r["method"] == "si":
            by_c.setdefault(r["c"], []).append(r["metrics"]["acc"])
    cs = sorted(by_c)
    stats = [common.stats(by_c[c]) for c in cs]
    return {"c": cs, "acc_mean": [s["mean"] for s in stats],
            "acc_sem": [s["sem"] for s in stats], "n": [s["n"] for s in stats]}


PROTOCOL = protocol.Protocol(
    name="permuted-mnist",
    summary="Fig. 2: permuted-pixel tasks, one shared head, several c",
    doc=__doc__,
    settings=common_settings(METHODS, common.DIGIT_DATA) + (
        Setting("n_tasks", Integer(), "number of tasks (task 1 unpermuted)"),
        Setting("train_examples", Integer(none_ok=True),
                "training examples kept (stratified; none: all): the step count per epoch")),
    profiles={"paper": PAPER,
              # a 2-core laptop in a minute or two: 784-256-256-10, 5 tasks, 5 epochs, batch 64
              "quick": dict(PAPER, hidden=[256, 256], batch_size=64, epochs=5, n_tasks=5,
                            c=[0.0, 0.1, 1.0], seeds=[0, 1])},
    figure="permuted_mnist",
    describe_data=describe_data, run_one=run_one, report=report, memory=memory)

run = functools.partial(runner.run, PROTOCOL)
run.__doc__ = """Run permuted MNIST; keyword arguments as :func:`synapse.experiments.runner.run`
(``n_tasks=10``, ``c=[0, 0.01, 0.1, 1]``, ...)."""
