"""Split MNIST (Fig. 1 of the paper): five binary tasks 0/1, 2/3, 4/5, 6/7, 8/9.

One network, one 10-unit readout; during a task only its two output units are active, and a task
is evaluated with its own two units (multi-head). c = 0 is fine-tuning, c = 1 is SI; EWC and the
other baselines join the same figure through ``methods``. Numbers are test accuracies on the
held-out test split (the authors' notebook evaluated on the training set).

    from synapse.experiments import split_mnist
    results = split_mnist.run(profile="quick", seeds=3, c=[0, 1])
"""
import functools

import numpy as np

from synapse.data import split_tasks
from synapse.metrics import mean_sem, mean_seen_over_seeds

from . import common, protocol, runner
from .settings import common_settings

METHODS = ("si", "finetune") + common.REGULARISERS

# The authors' settings (ganguli-lab/pathint, the split-MNIST notebook): 784-256-256-10 ReLU,
# zero readout, Adam 1e-3 reset per task, batch 64, 10 epochs per task, xi = 1e-3, c in {0, 1},
# 10 repeats.
PAPER = {"data": "auto", "data_seed": 0, "hidden": [256, 256], "optimizer": "adam", "lr": 1e-3,
         "batch_size": 64, "epochs": 10, "reset_optimizer": True, "xi": 1e-3, "c": [0.0, 1.0],
         "methods": ["si"], "seeds": list(range(10)), "device": None,
         "integrator": "first-order"}


def describe_data(config):
    return common.cached_dataset(config.data, config.data_seed).info()


def memory(config, data):
    """What one run holds besides the loaded dataset: its network and its five tasks (one
    copy of the data between them)."""
    return [common.network_memory(config, data["n_features"], data["n_classes"],
                                  evaluated=data["n_test"]),
            common.tasks_memory(data, 1, data["n_classes"] // 2, "data")]


def run_one(config, run, run_dir, log, on_task_end, tag):
    """ONE run: a fresh network learns the five tasks in order."""
    ds = common.cached_dataset(config.data, config.data_seed)
    return common.continual_run(config, run, run_dir, log, on_task_end, tag, ds, split_tasks(ds))


def report(config, runs, data):
    """Fig. 1 (per-task panels + mean over seen tasks), the numbers behind it, a table."""
    from .plotting import plot_split_tasks

    curves = {label: np.stack([np.array(r["R"], dtype=float) for r in group])
              for label, group in common.group_by_label(runs).items()}
    task_names = [name.split(" ", 1)[-1] for name in runs[0]["tasks"]]
    note = (f"held-out test data: {data['name']} ({data['n_test']:,} test images); "
            f"{common.seeds_note(config)}")
    figure = plot_split_tasks(curves, title=common.data_title(data, "Split"), note=note,
                              task_names=task_names)
    plot = {"kind": "split_tasks", "note": note, "task_names": task_names, "curves": {}}
    for label, R in curves.items():
        m, s = mean_sem(R)
        seen_m, seen_s = mean_seen_over_seeds(R)
        plot["curves"][label] = {"R_mean": m, "R_sem": s, "mean_seen_mean": seen_m,
                                 "mean_seen_sem": seen_s}
    summary = common.continual_summary(runs)
    return {"summary": summary, "plot": plot, "figure": figure,
            "table": common.continual_table(summary)}


PROTOCOL = protocol.Protocol(
    name="split-mnist",
    summary="Fig. 1: five binary tasks (0/1 ... 8/9), multi-head, c=0 vs c=1",
    doc=__doc__,
    settings=common_settings(METHODS, common.DIGIT_DATA),
    profiles={"paper": PAPER,
              # the same network and optimizer, half the epochs and 3 seeds: ~10-40 s on 2 cores
              "quick": dict(PAPER, epochs=5, seeds=[0, 1, 2])},
    figure="split_mnist",
    describe_data=describe_data, run_one=run_one, report=report, memory=memory)

run = functools.partial(runner.run, PROTOCOL)
run.__doc__ = """Run split MNIST; keyword arguments as :func:`synapse.experiments.runner.run`
(``seeds=3``, ``c=[0, 1]``, ``methods=["si", "ewc=1000"]``, ``epochs=5``, ``out=...``)."""
