"""An experiment is one :class:`Protocol` declaration; :func:`run` does everything around it.

A protocol says what is particular to one experiment: its settings (typed, see
:mod:`.settings`), its profiles (a value for every setting), how to describe its data, how to
run ONE (seed, method, c) and how to report the finished runs. The ``synapse`` command and the
Python API both go through :func:`configure` and :func:`run`, so a setting given as a flag, as
``--set`` or as a keyword argument is parsed, checked and recorded the same way. Adding an
experiment means writing one declaration and naming it in ``synapse.experiments.PROTOCOLS``.

A results folder::

    out/
      config.json          the exact settings used (written first: ``--resume`` reads it back)
      results.json         every number plotted, R matrices per run, data, backend, versions
      <figure>.png/.svg    the paper's figure
      summary.txt          the table printed at the end
      runs/<run>/          per run: checkpoint.npz after every task (removed when the run
                           finishes unless keep_checkpoints), run.json when finished
"""
import dataclasses
import functools
import pathlib
import sys
import time
from typing import Callable, Optional

from synapse.backend import resolve_device
from synapse.checks import check_representable
from synapse.errors import CheckpointError, ConfigError
from synapse.methods import make_method

from .results import (atomic_write_json, claim_folder, folder_size, human_bytes, lock_folder,
                      read_json, run_metadata)
from .settings import split_method


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One experiment, declared.

    name          the command, e.g. ``split-mnist``
    summary       one line for ``--help``
    settings      its :class:`~.settings.Setting` s
    profiles      ``{"quick": {...}, "paper": {...}}``: a value for every setting
    figure        file name (without extension) of its figure
    describe_data ``f(config) -> dict``: which data, from where, how much (loads it once)
    run_one       ``f(config, run, run_dir, log, on_task_end) -> record`` for ONE run
                  (``run`` = ``{"seed", "method", "c"}``), resuming from its checkpoints in
                  ``run_dir``; ``log`` is None (progress bars), False (silent) or
                  ``f(message)`` (log lines)
    report        ``f(config, runs, data) -> {"summary", "plot", "figure", "table"}``
    dtype         the training dtype: recorded in results.json, and the one the settings must
                  be representable in
    """

    name: str
    summary: str
    settings: tuple
    profiles: dict
    figure: str
    describe_data: Callable
    run_one: Callable
    report: Callable
    doc: str = ""
    check: Optional[Callable] = None     # f(config, given): cross-setting rules
    expand: Optional[Callable] = None    # f(config) -> jobs, if not one per (seed, method, c)
    dtype: str = "float32"

    def setting(self, name):
        for s in self.settings:
            if s.name == name:
                return s
        raise ConfigError(name, f"unknown setting of {self.name}; its settings: "
                                f"{', '.join(s.name for s in self.settings)}")


# -- settings ---------------------------------------------------------------------------
def configure(protocol, profile="quick", values=None):
    """(config, given): the profile's settings with the user's laid over them, typed and checked.

    ``values`` are the user's settings as Python values (the CLI parses its text first with the
    same kinds); ``given`` holds them typed, nothing else.
    """
    if profile not in protocol.profiles:
        raise ConfigError("profile", f"unknown profile {profile!r}; choose from "
                                     f"{', '.join(protocol.profiles)}")
    given = {name: protocol.setting(name).coerce(value) for name, value in (values or {}).items()}
    config = {s.name: s.coerce(protocol.profiles[profile][s.name], f"profile {profile}: "
                                                                       f"{s.name}")
              for s in protocol.settings}
    config.update(given)
    if "device" in config:
        config["device"] = resolve_device(config["device"])
    check_config(protocol, config, given)
    return {"experiment": protocol.name, "profile": profile, **config}, given


def check_config(protocol, config, given):
    """Rules across settings; each names the setting to change."""
    if protocol.check is not None:
        protocol.check(config, given)
    if "methods" not in config:
        return
    owner, dtype = "the training dtype", protocol.dtype
    check_representable(owner, dtype, xi=config["xi"], lr=config["lr"])
    for c in config["c"]:
        check_representable(owner, dtype, c=c)
    methods = [split_method(m) for m in config["methods"]]
    for name, strength in methods:
        if strength is not None:
            check_representable(owner, dtype, methods=strength)
    plain_si = any(name == "si" and strength is None for name, strength in methods)
    if "c" in given and not plain_si:
        raise ConfigError("c", f"c={config['c']} was given but no plain 'si' method runs it "
                               f"(methods: {', '.join(config['methods'])}); add 'si' or drop c")
    runs = expand(config)
    keys = [(r["method"], r["c"]) for r in runs if r["seed"] == config["seeds"][0]]
    twice = sorted({k for k in keys if keys.count(k) > 1}, key=str)
    if twice:
        raise ConfigError("methods", f"{twice[0][0]} with c={twice[0][1]:g} is asked for twice")


def default_strength(method):
    """The strength a baseline runs with when none is given (recorded, never implicit)."""
    if method in ("si", "finetune", "feature-extraction", "scratch"):
        return None
    return make_method(method).c


def expand(config):
    """The runs: SI once per c (or exactly 'si=C'), every other method once, per seed."""
    runs = []
    for seed in config["seeds"]:
        for spec in config["methods"]:
            name, strength = split_method(spec)
            if name == "si" and strength is None:
                runs += [{"seed": seed, "method": "si", "c": c} for c in config["c"]]
            else:
                runs.append({"seed": seed, "method": name,
                             "c": default_strength(name) if strength is None else strength})
    return runs


def label_of(method, c):
    """Legend label of a run: the paper's ``c = 0`` / ``c = 1`` for SI; baselines with their
    strength."""
    if method == "si":
        return f"c={c:g} (fine-tuning)" if c == 0 else f"c={c:g} (SI)"
    names = {"finetune": "fine-tuning", "ewc": "EWC", "online-ewc": "online EWC", "l2": "L2",
             "mas": "MAS", "feature-extraction": "feature extraction", "scratch": "from scratch"}
    name = names.get(method, method)
    return name if c is None else f"{name} (c={c:g})"


def run_name(seed, method, c):
    return f"{method}" + ("" if c is None else f"-c{c:g}") + f"-seed{seed}"


# -- resuming a results folder --------------------------------------------------------
def reopen_folder(out, protocol, given):
    """(folder, config) of a run to resume; the settings given now must match the stored ones."""
    if out is None:
        raise ConfigError("resume", "give the results folder of the run to resume")
    path = pathlib.Path(out)
    if not path.is_dir():
        raise ConfigError("resume", f"{path} is not a folder")
    stored = read_json(path / "config.json",
                       "not a synapse results folder (or the run never started)")
    if not isinstance(stored, dict) or stored.get("experiment") != protocol.name:
        found = stored.get("experiment") if isinstance(stored, dict) else None
        raise CheckpointError(f"{path} holds a {found or 'different'} run, not {protocol.name}; "
                              f"resume it with `synapse {found} --resume {path}`"
                              if found else f"{path / 'config.json'} is not a {protocol.name} "
                                            f"config")
    profile = stored.get("profile")
    config = {"experiment": protocol.name, "profile": profile}
    for s in protocol.settings:
        if s.name not in stored:
            raise CheckpointError(f"{path / 'config.json'} lacks the setting {s.name!r}")
        try:
            config[s.name] = s.coerce(stored[s.name])
        except ConfigError as err:
            raise CheckpointError(f"{path / 'config.json'}: {err}") from None
    for name, value in given.items():
        if config[name] != value:
            raise ConfigError(name, f"the run being resumed used {name}="
                                    f"{protocol.setting(name).kind.show(config[name])}, not "
                                    f"{protocol.setting(name).kind.show(value)}; start a new "
                                    f"run instead")
    if "device" in config:
        config["device"] = resolve_device(config["device"])
    return lock_folder(path), config


# -- one run, as a sweep job -------------------------------------------------------------
def run_job(protocol, config, root, keep_checkpoints, log, on_task_end, seed, method, c):
    """ONE run in its own folder: read back if finished, else run (resuming if cut)."""
    run_dir = pathlib.Path(root) / run_name(seed, method, c)
    done = run_dir / "run.json"
    if done.exists():
        return read_json(done, "")
    started = time.perf_counter()
    run = {"seed": seed, "method": method, "c": c}
    say = functools.partial(log, run_name(seed, method, c)) if callable(log) else log
    record = protocol.run_one(config, run, str(run_dir), say, on_task_end)
    record.update(seed=seed, method=method, c=c, label=label_of(method, c),
                  wall_s=time.perf_counter() - started)
    atomic_write_json(done, record)
    if not keep_checkpoints:
        for ckpt in run_dir.rglob("checkpoint*.npz"):
            ckpt.unlink()
    return record


def stderr_log(run, message):
    print(f"[synapse] {run}: {message}", file=sys.stderr, flush=True)


# -- the whole experiment ----------------------------------------------------------------
def run(protocol, profile=None, out=None, resume=False, n_jobs=1, scheduler=None,
        progress=True, keep_checkpoints=False, on_task_end=None, **settings):
    """Run every (seed, method, c) of ``protocol``; write the results folder; return results.

    ``settings`` are the protocol's settings as keyword arguments (``seeds=3``, ``c=[0, 1]``,
    ``methods=["si", "ewc=1000"]``, ``batch_size=64``, ...); anything else is an error naming
    it. With ``resume=True``, ``out`` is the folder of an earlier run: its stored settings are
    used and finished runs are read back.
    """
    from .sweep import check_n_jobs, connect, merge_results, run_grid

    started = time.perf_counter()
    n_jobs = check_n_jobs(n_jobs)
    if resume:
        given = configure(protocol, profile or "quick", settings)[1]
        folder, config = reopen_folder(out, protocol, given)
        if profile is not None and profile != config["profile"]:
            folder.release()
            raise ConfigError("profile", f"the run being resumed used profile "
                                         f"{config['profile']}, not {profile}")
    else:
        config, _ = configure(protocol, profile or "quick", settings)
    client, owned = None, False
    try:
        data = protocol.describe_data(config)
        if scheduler is not None:                  # before any folder: an address can be wrong
            client, owned = connect(scheduler)
        if not resume:
            folder = claim_folder(out, protocol.name)
            atomic_write_json(folder.path / "config.json", config)
    except BaseException:
        if resume:
            folder.release()
        if owned:
            client.close()
        raise
    out = folder.path
    try:
        print(f"[synapse] {protocol.name}: {'resuming' if resume else 'results go to'} {out}",
              file=sys.stderr, flush=True)
        print(f"[synapse] data {data['name']!r}: {data['source']}", file=sys.stderr, flush=True)
        if data.get("fallback"):
            print(f"[synapse] {data['fallback']}", file=sys.stderr, flush=True)
        grid = (protocol.expand or expand)(config)
        # On a terminal, one process: progress bars; otherwise (a log file, parallel jobs): a
        # line per task and per epoch; progress=False: silent.
        bars = sys.stderr.isatty() and n_jobs == 1 and scheduler is None
        log = (None if bars else stderr_log) if progress else False
        job = functools.partial(run_job, protocol, config, str(out / "runs"), keep_checkpoints,
                                log, on_task_end)
        results = run_grid(job, grid, n_jobs=n_jobs, scheduler=client, progress=progress,
                           desc=f"{protocol.name}: runs")
        record = merge_results(results, grid)
        for r in record["runs"]:                   # e.g. a penalty that never acted: say so
            for w in r.get("warnings", []) + [w for m in r.get("methods", [])
                                              for w in m.get("warnings", [])]:
                print(f"[synapse] WARNING {run_name(r['seed'], r['method'], r['c'])}: {w}",
                      file=sys.stderr, flush=True)
        report = protocol.report(config, record["runs"], data)
        results_doc = {
            "experiment": protocol.name, "config": config, "data": data,
            "backend": backend_info(config.get("device", "cpu"), protocol.dtype),
            "seeds": config["seeds"], "versions": run_metadata(),
            "wall_s": time.perf_counter() - started,
            "n_jobs": n_jobs, "scheduler": None if scheduler is None else str(scheduler),
            "summary": report["summary"], "plot": report["plot"], "runs": record["runs"],
        }
        atomic_write_json(out / "results.json", results_doc)
        from .results import save_figure
        results_doc["figures"] = [str(p) for p in save_figure(report["figure"],
                                                               out / protocol.figure)]
        text = summary_text(protocol.name, config, data, report, results_doc["wall_s"], out)
        (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
        print(text + f" ({human_bytes(folder_size(out))} on disk)")
        results_doc["out"] = str(out)
        return results_doc
    except BaseException as err:
        err.synapse_out = str(out)            # the CLI names the folder to resume
        raise
    finally:
        folder.release()
        if owned:
            client.close()


def backend_info(device, dtype):
    import numpy as np
    info = {"device": device, "dtype": dtype}
    if device == "cuda":
        import cupy
        info["cupy"] = cupy.__version__
        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    else:
        info["numpy"] = np.__version__
    return info


def summary_text(experiment, config, data, report, wall, out):
    lines = [f"{experiment} ({config['profile']} profile) on {data['name']}: {data['source']}",
             f"device {config.get('device', 'cpu')}, seeds {config['seeds']}, "
             f"wall time {wall:.1f} s",
             "", report["table"], "", f"results: {out}"]
    return "\n".join(lines)
