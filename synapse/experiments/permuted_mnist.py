"""Permuted MNIST (the paper's Fig. 2): task 1 is MNIST, task t a fixed random pixel permutation.

One shared 10-way readout for every task (no masks). The figure is the mean test accuracy over
the tasks seen so far against the number of tasks, one line per c. Each run seed draws its own
permutations (and initial weights); the data split is fixed by ``data_seed``.

    from synapse.experiments import permuted_mnist
    results = permuted_mnist.run(profile="quick", c=[0, 0.1, 1])
"""
import sys

import numpy as np

from synapse.data import permuted_tasks
from synapse.metrics import mean_sem, mean_seen_accuracy

from . import common

EXPERIMENT = "permuted-mnist"
FIGURE = "permuted_mnist"
METHODS = ("si", "finetune") + common.REGULARISERS
DATASETS = ("auto", "mnist", "mnist-subset", "fashion-mnist", "digits")

# The authors' settings (FACTS.md): 784-2000-2000-10, batch 256, 20 epochs per task, Adam 1e-3
# NOT reset between tasks, xi = 0.1, c in {0, 0.01, 0.1, 1}, 10 tasks, 1 repeat.
PAPER = {"data": "auto", "data_seed": 0, "hidden": [2000, 2000], "optimizer": "adam",
         "lr": 1e-3, "batch_size": 256, "epochs": 20, "reset_optimizer": False, "xi": 0.1,
         "c": [0.0, 0.01, 0.1, 1.0], "methods": ["si"], "seeds": [0], "n_tasks": 10,
         "device": "cpu", "integrator": "first-order"}
PROFILES = {
    "paper": PAPER,
    # A 2-core laptop in a few minutes: 784-256-256-10, 5 tasks, 5 epochs, batch 64, 2 seeds.
    "quick": dict(PAPER, hidden=[256, 256], batch_size=64, epochs=5, n_tasks=5,
                  c=[0.0, 0.1, 1.0], seeds=[0, 1]),
}


def data_info(config):
    if not isinstance(config["n_tasks"], int) or config["n_tasks"] < 1:
        raise common.ConfigError("n_tasks", f"must be an integer >= 1, got {config['n_tasks']!r}")
    return common.announce(common.cached_dataset(config["data"], config["data_seed"])).info()


def job(config, seed, method, c, root=None, resume=False, progress=False, on_task_end=None):
    """ONE run: a fresh network learns ``n_tasks`` permutations in order; returns its record."""
    return common.continual_job(
        config, seed, method, c,
        lambda ds, run_seed: permuted_tasks(ds, config["n_tasks"], seed=run_seed),
        root, resume, progress, on_task_end)


def report(config, runs, data_info):
    """Mean accuracy over seen tasks vs number of tasks, per c; the numbers; a table."""
    from .plotting import plot_mean_seen

    groups = common.group_by_label(runs)
    curves = {label.replace(" (SI)", "").replace(" (fine-tuning)", ""):
              np.stack([np.array(r["R"], dtype=float) for r in group])
              for label, group in groups.items()}
    note = (f"held-out test data: {data_info['name']} ({data_info['n_test']:,} test images); "
            f"{common.seeds_note(config)}")
    figure = plot_mean_seen(curves, title="Permuted MNIST", note=note)
    plot = {"kind": "mean_seen", "note": note, "curves": {}}
    for label, R in curves.items():
        m, s = mean_sem(np.stack([mean_seen_accuracy(r) for r in R]))
        plot["curves"][label] = {"mean_seen_mean": m, "mean_seen_sem": s}
    summary = common.continual_summary(runs)
    rows = [[label, common.pm(s["acc"]), common.pm(s["bwt"]), common.pm(s["forgetting"]),
             s["acc"]["n"]] for label, s in summary.items()]
    text = common.table(rows, ["method", f"ACC ({config['n_tasks']} tasks)", "BWT",
                               "forgetting", "seeds"])
    return {"summary": summary, "plot": plot, "figure": figure, "table": text}


def run(profile="quick", out=None, seeds=None, c=None, methods=None, device=None, data=None,
        epochs=None, xi=None, n_jobs=1, scheduler=None, resume=False, progress=True,
        on_task_end=None, **overrides):
    """Run permuted MNIST for every (seed, method, c); write the results folder; return results.

    Arguments as :func:`synapse.experiments.split_mnist.run`; ``n_tasks=...`` sets the number of
    permutations.
    """
    given = dict(overrides, seeds=seeds, c=c, methods=methods, device=device, data=data,
                 epochs=epochs, xi=xi)
    extra = {} if on_task_end is None else {"on_task_end": on_task_end}
    return common.run_experiment(sys.modules[__name__], EXPERIMENT, given, profile, out, n_jobs,
                                 scheduler, resume, progress, **extra)
