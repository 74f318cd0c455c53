"""Transfer with little data (the paper's Fig. 3): pretrain, then learn a small task.

Two experiments share this protocol (``transfer_mnist_bg.py``, ``transfer_cifar.py`` declare
them): pretrain a network on a large task, then learn a small one from a few labelled examples
per class. Methods on the small task, all from the SAME pretrained network (pretrained once per
seed) and the same few examples:

  si                  Omega consolidated at the end of pretraining (Eq. 4), then the small task
                      is learned on the surrogate loss (Eq. 1), once per c of the grid;
  feature-extraction  every weight frozen but the readout;
  finetune            every weight trainable, no penalty;
  scratch             a fresh network trained on the small task only.

The paper does not give the SI strength for transfer, so c is CHOSEN: the small task's held-out
data is split (stratified, fixed by ``data_seed``) into a *selection* half and a *report* half.
c is the grid value with the best mean selection accuracy over seeds; every number reported is on
the report half, which the choice never reads (:func:`choose_c`). For each seed the methods are
paired: SI at the chosen c minus each other method, with the mean paired difference and its 95%
t-interval. SI "beats" a method when that interval lies above 0.
"""
import functools

import numpy as np

from synapse.checkpoint import tasks_digest
from synapse.data import Task, few_shot, train_val_split
from synapse.errors import ConfigError

from . import common
from .common import paired_difference, verdict
from .protocol import expand as default_expand
from .runs import Run, make_si, method_for, recipe
from .settings import Integer, Setting, show_number

METHODS = ("si", "feature-extraction", "finetune", "scratch")
PRETRAIN_VAL_FRACTION = 0.1
# a transfer run also keeps the pretrained network and SI's state (Omega, theta_ref, omega)
RUN_COPIES = common.RUN_COPIES + 4
SELECTION_FRACTION = 0.5

# The settings both transfer experiments add to the common ones.
SETTINGS = (
    Setting("pretrain_epochs", Integer(), "epochs of pretraining"),
    Setting("pretrain_examples", Integer(none_ok=True), "pretraining examples (none: all)"),
    Setting("shots", Integer(), "labelled examples per class of the small task"),
)


class TransferData:
    """What a transfer run needs: the pretraining task, the small task's pool of labelled
    examples, and its held-out data cut into disjoint selection and report halves."""

    def __init__(self, name, pretrain, pool_x, pool_y, selection, report, classes, note,
                 image_shape, chance):
        self.name, self.pretrain, self.pool_x, self.pool_y = name, pretrain, pool_x, pool_y
        self.selection, self.report = selection, report       # (x, y) each
        self.classes, self.note, self.image_shape, self.chance = (classes, note, image_shape,
                                                                   chance)

    def small_task(self, name, shots, seed):
        """``shots`` labelled examples per class, drawn by ``seed``; evaluated on the report half."""
        x, y = few_shot(self.pool_x, self.pool_y, shots, seed)
        return Task(f"{name}, {shots}/class", x, y, *self.report, self.classes)


def held_out_halves(x, y, data_seed):
    """(selection, report): a stratified, seeded split of the small task's held-out data."""
    x_rep, y_rep, x_sel, y_sel = train_val_split(x, y, SELECTION_FRACTION, data_seed)
    return (x_sel, y_sel), (x_rep, y_rep)


def pretrain_task(name, x, y, classes, data_seed, pretrain_examples):
    """The pretraining Task; its evaluation split is carved from its own training data.
    ``pretrain_examples`` beyond the ``len(y)`` there are is refused, never silently capped."""
    if pretrain_examples is not None and pretrain_examples > len(y):
        raise ConfigError("pretrain_examples", f"{pretrain_examples:,} asked, but {name} has "
                                               f"{len(y):,} pretraining examples here")
    if pretrain_examples is not None and pretrain_examples < len(y):
        keep = np.sort(np.random.default_rng(data_seed).permutation(len(y))[:pretrain_examples])
        x, y = x[keep], y[keep]
    x, y, x_val, y_val = train_val_split(x, y, PRETRAIN_VAL_FRACTION, data_seed)
    return Task(name, x, y, x_val, y_val, classes)


def expand(config):
    """One job per seed: it pretrains once and runs every method from that network."""
    return [Run(seed, "transfer") for seed in config.seeds]


def method_runs(config, seed):
    """The (method, c) runs of one transfer job: SI once per c (or exactly 'si=C'), the
    others once (checked by :func:`~.protocol.check_config` as any experiment's runs)."""
    return [r for r in default_expand(config) if r.seed == seed]


def describe_data(load, config):
    """A protocol's ``describe_data`` given its ``load(config) -> TransferData``."""
    return describe(load(config), config)


def describe(data, config):
    """What the results record of the data; refuses, before any run, more shots per class
    than the small task's pool holds."""
    counts = np.unique(data.pool_y, return_counts=True)[1]
    if config.shots > counts.min():
        raise ConfigError("shots", f"{config.shots:,} labelled examples per class asked, but "
                                   f"the small task's pool ({data.name}) holds "
                                   f"{counts.min():,} of its rarest class")
    return {"name": data.name, "source": data.note,
            "pretrain": {"task": data.pretrain.name, "n_train": len(data.pretrain.y_train),
                         "n_val": len(data.pretrain.y_test)},
            "small_task": {"n_pool": len(data.pool_y), "n_selection": len(data.selection[1]),
                           "n_report": len(data.report[1]), "shots_per_class": config.shots},
            "chance": data.chance}


def run_one(load, make_model, small_name, config, run, run_dir, log, on_task_end, tag):
    """ONE seed: pretrain once (with SI's bookkeeping), then every method on the same few
    examples from that same network (:func:`~.runs.recipe` says which start and which weights
    train). Returns one result per method (and per c for SI)."""
    data = load(config)
    small = data.small_task(small_name, config.shots, run.seed)
    fit = functools.partial(common.fit, config, run=run, log=log, tag=tag,
                            reset_optimizer=True, on_task_end=on_task_end)
    runs = method_runs(config, run.seed)
    results, pretrained = [], None
    if any(recipe(r.method).pretrained for r in runs):
        model = make_model(config, data.image_shape, run.seed)
        si = make_si(config, 0.0)                                   # c acts from task 2
        history = fit(model, [data.pretrain], si, run_dir=f"{run_dir}/pretrain",
                      epochs=config.pretrain_epochs)
        pretrained = (model.state_dict(), si.state_dict(), float(history.R[0, 0]))
    for one in runs:
        how = recipe(one.method)
        model = make_model(config, data.image_shape, run.seed)
        method = method_for(config, one)
        hooks = {}
        if how.pretrained:
            model.load_state_dict(pretrained[0])
        if how.engine == "si":
            method.attach(model).load_state_dict(pretrained[1])    # Omega, theta_ref
        if how.readout_only:
            hooks["on_task_start"] = lambda i, m: m.freeze(except_names=m.readout_names())
        history = fit(model, [small], method, run_dir=f"{run_dir}/{one.tag}", **hooks)
        results.append({
            "method": one.method, "c": one.c, "label": one.label,
            "report_accuracy": float(history.R[0, 0]),
            "selection_accuracy": float(model.accuracy(*data.selection, data.classes)),
            "pretrain_val_accuracy": pretrained[2] if how.pretrained else None,
            "epochs": history.epochs, "warnings": list(getattr(history, "warnings", []))})
    return {"methods": results, "tasks": [data.pretrain.name, small.name],
            "tasks_digest": tasks_digest([data.pretrain, small])}


# -- choosing c and reporting -------------------------------------------------------------
def choose_c(runs):
    """The SI strength with the best mean SELECTION accuracy over seeds (ties: the smaller c).

    Reads ``selection_accuracy`` only: the reported (report-half) accuracy never enters.
    """
    by_c = {}
    for run in runs:
        for r in run["methods"]:
            if r["method"] == "si":
                by_c.setdefault(r["c"], []).append(r["selection_accuracy"])
    if not by_c:
        return None, {}
    means = {c: float(np.mean(v)) for c, v in sorted(by_c.items())}
    best = max(means.values())
    return min(c for c, m in means.items() if m == best), means


def report(title, config, runs, data):
    """Bars of report-half accuracy per method (SI at the chosen c), the paired differences,
    the selection table for c, and the numbers behind all of it."""
    from .plotting import plot_transfer

    runs = sorted(runs, key=lambda r: r["seed"])
    c_star, selection_means = choose_c(runs)
    per_method = {}                                          # label -> per-seed accuracies
    for run in runs:
        for r in run["methods"]:
            if r["method"] == "si" and r["c"] != c_star:
                continue
            label = r["label"] + (" [chosen c]" if r["method"] == "si" else "")
            per_method.setdefault(label, []).append(r["report_accuracy"])
    si_label = next((k for k in per_method if k.endswith("[chosen c]")), None)
    diffs = {} if si_label is None else {
        label: paired_difference(per_method[si_label], v)
        for label, v in per_method.items() if label != si_label}
    note = (f"report half of the held-out data ({data['small_task']['n_report']:,} images; "
            f"{config.shots} labelled examples per class for training); "
            + (f"c={show_number(c_star)} chosen on the disjoint selection half; "
               if c_star is not None
               else "") + common.seeds_note(config))
    figure = plot_transfer(per_method, chance=data["chance"], title=title, note=note)
    summary = {"chosen_c": c_star, "selection_accuracy_by_c": selection_means,
               "report_accuracy": {k: common.stats(v) for k, v in per_method.items()},
               "si_minus": {k: dict(d, verdict=verdict(d)) for k, d in diffs.items()}}
    plot = {"kind": "transfer", "note": note, "chance": data["chance"], "scores": per_method,
            "mean": {k: s["mean"] for k, s in summary["report_accuracy"].items()},
            "sem": {k: s["sem"] for k, s in summary["report_accuracy"].items()}}
    rows = [[k, common.pm(s), s["n"]] for k, s in summary["report_accuracy"].items()]
    text = common.table(rows, ["method", "accuracy (report half)", "seeds"])
    if diffs:
        drows = [[f"SI - {k}", f"{d['mean']:+.4f}",
                  "n/a" if d["low"] is None else f"[{d['low']:+.4f}, {d['high']:+.4f}]",
                  verdict(d)] for k, d in diffs.items()]
        text += "\n\n" + common.table(drows, ["paired difference", "mean", "95% interval",
                                              "verdict"])
    if selection_means:
        text += "\n\nc chosen on the selection half: " + ", ".join(
            f"c={show_number(c)}: {m:.4f}" for c, m in selection_means.items())
        text += f" -> c={show_number(c_star)}"
    return {"summary": summary, "plot": plot, "figure": figure, "table": text}
