"""What the three protocols share: profiles and their validation, one training run as a job,
the sweep over (method, c, seed), and the results folder.

A protocol module (``split_mnist``, ``permuted_mnist``, ``transfer``) supplies
``PROFILES``, a ``job(config, seed, method, c, ...)`` for ONE run, and a ``report`` that turns
the finished runs into a figure and a summary. :func:`run_experiment` does the rest:

    out/
      config.json          the exact configuration (written first: ``--resume`` reads it back)
      results.json         every number plotted, R matrices per run, data, backend, versions
      <figure>.png/.svg    the paper's figure
      summary.txt          the table printed at the end
      runs/<run>/          per run: checkpoint.npz after every task, run.json when finished

Seeds: run ``seed`` fixes the initial weights, the minibatch order and (permuted MNIST) the
permutations; the data split is fixed by ``data_seed`` so every run sees the same test set.
"""
import contextlib
import functools
import json
import math
import pathlib
import sys
import time

import numpy as np

from synapse.backend import DEVICES, cuda_unavailable_reason
from synapse.errors import ConfigError
from synapse.metrics import mean_sem, summarize
from synapse.methods import METHODS, make_method
from synapse.model import mlp
from synapse.optim import make_optimizer
from synapse.train import train_tasks

from .results import atomic_write_json, create_run_dir, run_metadata

REGULARISERS = tuple(m for m in METHODS if m not in ("si", "finetune"))




# -- configuration ----------------------------------------------------------------------
def parse_method(spec):
    """``'ewc'`` -> ``('ewc', None)``, ``'ewc=1000'`` -> ``('ewc', 1000.0)``."""
    name, _, strength = str(spec).partition("=")
    if not strength:
        return name, None
    try:
        value = float(strength)
    except ValueError:
        raise ConfigError("method", f"strength in {spec!r} is not a number") from None
    return name, value


def check_config(config, allowed_methods, datasets):
    """Raise ConfigError naming the first impossible setting."""
    def positive_int(key):
        v = config[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(key, f"must be an integer >= 1, got {v!r}")

    def positive(key, strict=True):
        v = config[key]
        try:
            ok = math.isfinite(float(v)) and (float(v) > 0 if strict else float(v) >= 0)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(key, f"must be a finite number {'>' if strict else '>='} 0, "
                                   f"got {v!r}")

    for key in config:
        if key.endswith("epochs") or key in ("batch_size", "shots", "n_tasks", "blas_threads"):
            positive_int(key)
    positive("lr")
    positive("xi")
    if not config["c"]:
        raise ConfigError("c", "give at least one value")
    for c in config["c"]:
        try:
            ok = math.isfinite(float(c)) and float(c) >= 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError("c", f"must be finite numbers >= 0, got {c!r}")
    seeds = config["seeds"]
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0
                        for s in seeds):
        raise ConfigError("seeds", f"must be a non-empty list of integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("seeds", f"repeated seeds in {seeds}")
    if not config["methods"]:
        raise ConfigError("method", "give at least one method")
    for spec in config["methods"]:
        name, strength = parse_method(spec)
        if name not in allowed_methods:
            raise ConfigError("method", f"unknown method {name!r}; choose from "
                                        f"{', '.join(allowed_methods)}")
        if strength is not None and (not math.isfinite(strength) or strength < 0):
            raise ConfigError("method", f"strength in {spec!r} must be >= 0")
    if config["data"] not in datasets:
        raise ConfigError("data", f"unknown data {config['data']!r}; choose from "
                                  f"{', '.join(datasets)}")
    if config["device"] not in DEVICES:
        raise ConfigError("device", f"unknown device {config['device']!r}; choose from "
                                    f"{', '.join(DEVICES)}")
    if config["device"] == "cuda":
        reason = cuda_unavailable_reason()
        if reason:
            raise ConfigError("device", f"cuda was requested but cannot be used: {reason}")


def build_config(profiles, profile, given):
    """The profile's settings with the non-None entries of ``given`` laid over them."""
    if profile not in profiles:
        raise ConfigError("profile", f"unknown profile {profile!r}; choose from "
                                     f"{', '.join(profiles)}")
    config = json.loads(json.dumps(profiles[profile]))          # a deep copy
    config["profile"] = profile
    for key, value in given.items():
        if value is None:
            continue
        if key not in config:
            raise ConfigError(key, f"unknown setting; settings of this experiment: "
                                   f"{', '.join(sorted(config))}")
        if key == "seeds" and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            value = list(range(int(value)))                     # a count: seeds 0..n-1
        if key in ("c", "seeds", "methods", "hidden") and not isinstance(value, (list, tuple)):
            value = [value]
        config[key] = list(value) if isinstance(value, tuple) else value
    return config


def runs_of(config):
    """The sweep's jobs: SI once per c, every other method once (its own strength)."""
    grid = []
    for seed in config["seeds"]:
        for spec in config["methods"]:
            name, strength = parse_method(spec)
            if name == "si":
                grid += [{"seed": int(seed), "method": "si", "c": float(c)} for c in config["c"]]
            else:
                grid.append({"seed": int(seed), "method": name,
                             "c": None if strength is None else float(strength)})
    return grid


def label_of(method, c):
    """Legend label of a run: the paper's ``c = 0`` / ``c = 1`` for SI."""
    if method == "si":
        return f"c={c:g} (fine-tuning)" if c == 0 else f"c={c:g} (SI)"
    names = {"finetune": "fine-tuning", "ewc": "EWC", "online-ewc": "online EWC", "l2": "L2",
             "mas": "MAS", "feature-extraction": "feature extraction", "scratch": "from scratch"}
    name = names.get(method, method)
    return name if c is None else f"{name} (c={c:g})"


def run_name(seed, method, c):
    return f"{method}" + ("" if c is None else f"-c{c:g}") + f"-seed{seed}"


# -- one run ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def cached_dataset(name, data_seed, val_fraction=0.0):
    """Each worker process loads a dataset once, silently (the parent logs it)."""
    from synapse.data import load_dataset
    return load_dataset(name, seed=data_seed, log=None, val_fraction=val_fraction)


def announce(ds):
    """Say once, in the parent process, which data the numbers will come from."""
    print(f"[synapse] data {ds.name!r}: {ds.source}", file=sys.stderr)
    return ds


def make_run_method(config, method, c, include=None, exclude=None):
    """The engine's Method for one run: SI(c, xi), fine-tuning, or a baseline."""
    if method == "si":
        return make_method("si", c=c, xi=config["xi"], integrator=config.get("integrator",
                                                                             "first-order"))
    if method in ("finetune", "feature-extraction", "scratch"):
        return make_method("finetune")
    return make_method(method) if c is None else make_method(method, c=c)


def blas_threads(n):
    """Limit BLAS to ``n`` threads. Minibatch matrices are small: one thread is fastest, and a
    second BLAS thread competing with another process for a core slows a step down ~50x."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                                   # pragma: no cover - sklearn brings it
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def fit(config, model, tasks, method, seed, run_dir=None, resume=False, progress=False,
        epochs=None, **hooks):
    """Train ``model`` on ``tasks`` with the config's optimizer; returns the History."""
    optimizer = make_optimizer(config["optimizer"], model.params, lr=config["lr"])
    with blas_threads(config.get("blas_threads", 1)):
        return train_tasks(model, tasks, method, optimizer,
                           epochs=config["epochs"] if epochs is None else epochs,
                           batch_size=config["batch_size"], seed=seed,
                           reset_optimizer=config["reset_optimizer"], checkpoint_dir=run_dir,
                           resume=resume, progress=progress, **hooks)


def run_folder(root, seed, method, c, resume):
    """(folder of one run or None, its saved record if it already finished and we resume)."""
    run_dir = None if root is None else str(pathlib.Path(root) / run_name(seed, method, c))
    return run_dir, (finished_run(run_dir) if resume else None)


def continual_job(config, seed, method, c, build_tasks, root=None, resume=False,
                  progress=False, on_task_end=None):
    """ONE continual-learning run: a fresh MLP learns ``build_tasks(dataset, seed)`` in order."""
    run_dir, done = run_folder(root, seed, method, c, resume)
    if done is not None:
        return done
    started = time.perf_counter()
    ds = cached_dataset(config["data"], config["data_seed"])
    tasks = build_tasks(ds, seed)
    model = mlp([ds.x_train.shape[1], *config["hidden"], ds.n_classes], seed=seed,
                device=config["device"])
    history = fit(config, model, tasks, make_run_method(config, method, c), seed, run_dir,
                  resume, progress, on_task_end=on_task_end)
    record = run_record(seed, method, c, history, started, {"tasks": [t.name for t in tasks]})
    return save_run(run_dir, record)


def finished_run(run_dir):
    """The saved record of a finished run, or None."""
    path = None if run_dir is None else pathlib.Path(run_dir) / "run.json"
    if path is None or not path.exists():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_record(seed, method, c, history, started, extra=None):
    """What one run returns (and saves as run.json): R, metrics, logs, timing."""
    record = {"seed": seed, "method": method, "c": c, "label": label_of(method, c),
              "R": history.R.tolist(), "metrics": summarize(history.R),
              "epochs": history.epochs, "task_seconds": history.task_seconds,
              "wall_s": time.perf_counter() - started}
    record.update(extra or {})
    return record


def save_run(run_dir, record):
    if run_dir is not None:
        atomic_write_json(pathlib.Path(run_dir) / "run.json", record)
    return record


# -- the sweep and the results folder ---------------------------------------------------
def prepare_out(out, experiment, config, resume):
    """The results folder; on resume, the stored config must agree with the one asked for."""
    if resume:
        if out is None:
            raise ConfigError("resume", "give the results folder of the run to resume")
        out = pathlib.Path(out)
        stored = out / "config.json"
        if not stored.exists():
            raise ConfigError("resume", f"{out} holds no config.json: not a synapse results "
                                        f"folder (or the run never started)")
        with open(stored, encoding="utf-8") as f:
            old = json.load(f)
        return out, old
    if out is None:
        out = create_run_dir("results", f"{experiment}-{time.strftime('%Y%m%d-%H%M%S')}")
    else:
        out = pathlib.Path(out)
        if out.exists() and any(out.iterdir()):
            out = create_run_dir(out.parent, out.name)          # never overwrite: out-2, ...
        out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", config)
    return out, config


def merge_resume_config(stored, config, given):
    """Resume with the stored config; a setting given now must not contradict it."""
    for key, value in given.items():
        if value is None or key not in stored:
            continue
        if key == "seeds" and isinstance(value, int):
            value = list(range(value))
        if key in ("c", "seeds", "methods") and not isinstance(value, (list, tuple)):
            value = [value]
        if json.loads(json.dumps(value)) != stored[key]:
            raise ConfigError(key, f"the run being resumed used {key}={stored[key]!r}, "
                                   f"not {value!r}; start a new run instead")
    return stored


def backend_info(device):
    info = {"device": device, "dtype": "float32"}
    if device == "cuda":
        import cupy
        info["cupy"] = cupy.__version__
        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    else:
        info["numpy"] = np.__version__
    return info


def run_experiment(module, experiment, given, profile="quick", out=None, n_jobs=1,
                   scheduler=None, resume=False, progress=True, **job_kwargs):
    """Run one protocol's sweep and write its results folder; returns the results dict."""
    from .sweep import merge_results, run_grid

    started = time.perf_counter()
    config = build_config(module.PROFILES, profile, given)
    check_config(config, module.METHODS, module.DATASETS)
    out, stored = prepare_out(out, experiment, config, resume)
    if resume:
        config = merge_resume_config(stored, config, given)
        check_config(config, module.METHODS, module.DATASETS)
    data_info = module.data_info(config)
    grid = runs_of(config)
    job = functools.partial(module.job, config, root=str(out / "runs"), resume=True,
                            progress=progress and n_jobs == 1 and scheduler is None
                            and sys.stderr.isatty(), **job_kwargs)
    results = run_grid(job, grid, n_jobs=n_jobs, scheduler=scheduler, progress=progress,
                       desc=f"{experiment}: runs")
    record = merge_results(results, grid)
    wall = time.perf_counter() - started
    report = module.report(config, record["runs"], data_info)
    results_doc = {
        "experiment": experiment,
        "config": config,
        "data": data_info,
        "backend": backend_info(config["device"]),
        "seeds": config["seeds"],
        "versions": run_metadata(),
        "wall_s": wall,
        "n_jobs": n_jobs,
        "scheduler": None if scheduler is None else str(scheduler),
        "summary": report["summary"],
        "plot": report["plot"],
        "runs": record["runs"],
    }
    atomic_write_json(out / "results.json", results_doc)
    from .results import save_figure
    results_doc["figures"] = [str(p) for p in save_figure(report["figure"], out / module.FIGURE)]
    text = summary_text(experiment, config, data_info, report, wall, out)
    (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    print(text)
    results_doc["out"] = str(out)
    return results_doc


# -- summaries --------------------------------------------------------------------------
def stats(values):
    m, s = mean_sem(np.asarray(values, dtype=float))
    return {"mean": float(m), "sem": float(s), "n": int(len(values)), "values": list(values)}


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


def summary_text(experiment, config, data_info, report, wall, out):
    lines = [f"{experiment} ({config['profile']} profile) on {data_info['name']}: "
             f"{data_info['source']}",
             f"device {config['device']}, seeds {config['seeds']}, wall time {wall:.1f} s",
             "", report["table"], "", f"results: {out}"]
    return "\n".join(lines)


def table(rows, header):
    widths = [max(len(str(r[k])) for r in rows + [header]) for k in range(len(header))]
    fmt = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths))  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def pm(s):
    return f"{s['mean']:.4f} ± {s['sem']:.4f}"


def seeds_note(config):
    return f"n={len(config['seeds'])} seeds, mean ± SEM"
