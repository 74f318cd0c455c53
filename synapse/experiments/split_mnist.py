"""Split MNIST (Fig. 1 of the paper): five binary tasks 0/1, 2/3, 4/5, 6/7, 8/9.

One network, one 10-unit readout; during a task only its two output units are active, and a task
is evaluated with its own two units (multi-head). c = 0 is fine-tuning, c = 1 is SI; EWC and the
other baselines join the same figure through ``methods``. Numbers are test accuracies on the
held-out test split (the authors' notebook evaluated on the training set).

    from synapse.experiments import split_mnist
    results = split_mnist.run(profile="quick", seeds=3, c=[0, 1])
"""
import sys

import numpy as np

from synapse.data import split_tasks
from synapse.metrics import mean_sem, mean_seen_accuracy

from . import common

EXPERIMENT = "split-mnist"
FIGURE = "split_mnist"
METHODS = ("si", "finetune") + common.REGULARISERS
DATASETS = ("auto", "mnist", "mnist-subset", "fashion-mnist", "digits")

# The authors' settings (FACTS.md, ganguli-lab/pathint): 784-256-256-10 ReLU, Adam 1e-3 reset
# per task, batch 64, 10 epochs per task, xi = 1e-3, c in {0, 1}, 10 repeats.
PAPER = {"data": "auto", "data_seed": 0, "hidden": [256, 256], "optimizer": "adam", "lr": 1e-3,
         "batch_size": 64, "epochs": 10, "reset_optimizer": True, "xi": 1e-3, "c": [0.0, 1.0],
         "methods": ["si"], "seeds": list(range(10)), "device": "cpu",
         "integrator": "first-order"}
PROFILES = {
    "paper": PAPER,
    # The same network and optimizer, half the epochs and 3 seeds: about a minute on 2 cores.
    "quick": dict(PAPER, epochs=5, seeds=[0, 1, 2]),
}


def data_info(config):
    return common.announce(common.cached_dataset(config["data"], config["data_seed"])).info()


def job(config, seed, method, c, root=None, resume=False, progress=False, on_task_end=None):
    """ONE run: a fresh network learns the five tasks in order; returns its record (R, ...)."""
    return common.continual_job(config, seed, method, c, lambda ds, _seed: split_tasks(ds),
                                root, resume, progress, on_task_end)


def report(config, runs, data_info):
    """Fig. 1 (per-task panels + mean over seen tasks), the numbers behind it, a table."""
    from .plotting import plot_split_tasks

    curves = {label: np.stack([np.array(r["R"], dtype=float) for r in group])
              for label, group in common.group_by_label(runs).items()}
    task_names = [name.split(" ", 1)[-1] for name in runs[0]["tasks"]]
    note = (f"held-out test data: {data_info['name']} ({data_info['n_test']:,} test images); "
            f"{common.seeds_note(config)}")
    figure = plot_split_tasks(curves, title="Split MNIST", note=note, task_names=task_names)
    plot = {"kind": "split_tasks", "note": note, "task_names": task_names, "curves": {}}
    for label, R in curves.items():
        m, s = mean_sem(R)
        seen_m, seen_s = mean_sem(np.stack([mean_seen_accuracy(r) for r in R]))
        plot["curves"][label] = {"R_mean": m, "R_sem": s, "mean_seen_mean": seen_m,
                                 "mean_seen_sem": seen_s}
    summary = common.continual_summary(runs)
    rows = [[label, common.pm(s["acc"]), common.pm(s["bwt"]), common.pm(s["forgetting"]),
             s["acc"]["n"]] for label, s in summary.items()]
    text = common.table(rows, ["method", "ACC", "BWT", "forgetting", "seeds"])
    return {"summary": summary, "plot": plot, "figure": figure, "table": text}


def run(profile="quick", out=None, seeds=None, c=None, methods=None, device=None, data=None,
        epochs=None, xi=None, n_jobs=1, scheduler=None, resume=False, progress=True,
        on_task_end=None, **overrides):
    """Run split MNIST for every (seed, method, c); write the results folder; return results.

    ``seeds`` is a count (n -> seeds 0..n-1) or a list; ``c`` a value or a list (SI);
    ``methods`` names from ``METHODS`` (``'ewc=1000'`` sets a baseline's strength);
    ``overrides`` set any other profile key (``lr``, ``batch_size``, ``hidden``, ...).
    """
    given = dict(overrides, seeds=seeds, c=c, methods=methods, device=device, data=data,
                 epochs=epochs, xi=xi)
    extra = {} if on_task_end is None else {"on_task_end": on_task_end}
    return common.run_experiment(sys.modules[__name__], EXPERIMENT, given, profile, out, n_jobs,
                                 scheduler, resume, progress, **extra)
