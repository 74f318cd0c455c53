"""Everything around an experiment's runs: the results folder, resume, running, the report.

A results folder::

    out/
      config.json          the exact settings used (written first: ``--resume`` reads it back)
      results.json         every number plotted, R matrices per run, data, backend, versions
      <figure>.png/.svg    the paper's figure
      summary.txt          the table printed at the end
      runs/<run>/          per run: checkpoint.npz after every task (removed when the run
                           finishes unless keep_checkpoints), run.json when finished

Every run.json and checkpoint records what determines its numbers (:func:`.protocol.record_of`);
``--resume`` configures the stored settings with every check of a fresh run, then checks each
stored run against them, and refuses a mismatch naming the file and the setting before
anything is written.
"""
import functools
import json
import pathlib
import sys
import time
import warnings

from synapse.checkpoint import CHECKPOINT, read_meta
from synapse.checks import check_memory, format_bytes
from synapse.errors import CheckpointError, ConfigError
from synapse.learner import SilentPenaltyWarning

from .protocol import configure, record_of, runs_of, typed
from .results import (atomic_write_json, claim_folder, folder_size, human_bytes, lock_folder,
                      read_json, run_metadata)


# -- resuming a results folder --------------------------------------------------------
def reopen(protocol, out, profile=None, values=None):
    """(folder, config) of a run to resume: the stored settings, configured and checked as a
    fresh run's are; the settings given now must match them; so must every stored run."""
    if out is None:
        raise ConfigError("resume", "give the results folder of the run to resume")
    path = pathlib.Path(out)
    if not path.is_dir():
        raise ConfigError("resume", f"{path} is not a folder")
    file = path / "config.json"
    stored = read_json(file, "not a synapse results folder (or the run never started)")
    found = stored.get("experiment") if isinstance(stored, dict) else None
    if found != protocol.name:
        raise CheckpointError(f"{path} holds a {found} run, not {protocol.name}; resume it with "
                              f"`synapse {found} --resume {path}`" if isinstance(found, str)
                              else f"{file} is not a {protocol.name} config")
    missing = [s.name for s in protocol.settings if s.name not in stored]
    unknown = sorted(set(stored) - {s.name for s in protocol.settings} - {"experiment",
                                                                             "profile"})
    if missing or unknown:
        raise CheckpointError(f"{file} " + (f"lacks the setting {missing[0]!r}" if missing
                                            else f"has an unknown setting {unknown[0]!r}"))
    try:
        config = configure(protocol, stored.get("profile"), base=stored)
    except ConfigError as err:
        raise CheckpointError(f"{file}: {err}") from None
    for name, value in typed(protocol, values or {}).items():
        if getattr(config, name) != value:
            kind = protocol.setting(name).kind
            raise ConfigError(name, f"the run being resumed used {name}="
                                    f"{kind.show(getattr(config, name))}, not {kind.show(value)};"
                                    f" start a new run instead")
    if profile is not None and profile != config.profile:
        raise ConfigError("profile", f"the run being resumed used profile {config.profile}, "
                                     f"not {profile}")
    folder = lock_folder(path, "resume")
    try:
        check_stored_runs(protocol, config, path / "runs")
    except BaseException:
        folder.release()
        raise
    return folder, config


def check_stored_runs(protocol, config, root):
    """Every run.json and checkpoint under ``root`` belongs to a run of ``config`` and records
    the same settings; else one line naming the file and the first setting that differs."""
    expected = {run.name: _plain(record_of(protocol, config, run))
                for run in runs_of(protocol, config)}
    if not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name not in expected:
            names = list(expected)
            raise CheckpointError(f"{folder} is not a run of {root.parent / 'config.json'} "
                                  f"(its runs: {', '.join(names[:4])}"
                                  f"{', ...' if len(names) > 4 else ''})")
        files = [folder / "run.json"] if (folder / "run.json").exists() else []
        files += sorted(folder.rglob(CHECKPOINT))
        for file in files:
            stored = read_json(file, "") if file.suffix == ".json" else read_meta(file)
            record = stored.get("record" if file.suffix == ".json" else "tag") \
                if isinstance(stored, dict) else None
            why = _difference(record, expected[folder.name])
            if why:
                raise CheckpointError(f"{file} {why}; start a new run, or move the file out")


def _plain(obj):
    return json.loads(json.dumps(obj))


def _difference(stored, expected):
    """'' where ``stored`` equals ``expected``, else which setting differs and how."""
    if not isinstance(stored, dict):
        return ("holds no record of the settings it was made with (an older synapse, or not "
                "a run's file)")
    for group in ("experiment", "run", "settings"):
        a, b = stored.get(group), expected[group]
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            key = next(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
            return (f"was made with {key}={json.dumps(a.get(key))}, not "
                    f"{json.dumps(b.get(key))} as config.json says")
        return f"was made with {group}={json.dumps(a)}, not {json.dumps(b)}"
    return ""


# -- one run, as a sweep job -------------------------------------------------------------
def run_job(protocol, config, root, keep_checkpoints, log, on_task_end, run):
    """ONE run in its own folder: read back if finished, else run (resuming if cut)."""
    run_dir = pathlib.Path(root) / run.name
    done = run_dir / "run.json"
    if done.exists():
        return read_json(done, "")
    started = time.perf_counter()
    say = functools.partial(log, run.name) if callable(log) else log
    tag = record_of(protocol, config, run)
    with warnings.catch_warnings():      # kept in the record; said once, by the log or at the end
        warnings.simplefilter("ignore", SilentPenaltyWarning)
        record = protocol.run_one(config, run, str(run_dir), say, on_task_end, tag)
    record.update(run.to_json(), label=run.label, record=tag,
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
    """Run every run of ``protocol``; write the results folder; return the results document.

    ``settings`` are the protocol's settings as keyword arguments (``seeds=3``, ``c=[0, 1]``,
    ``methods=["si", "ewc=1000"]``, ``batch_size=64``, ...); anything else is an error naming
    it. With ``resume=True``, ``out`` is the folder of an earlier run: its stored settings are
    used (the given ones must match them) and finished runs are read back.
    """
    if resume:
        folder, config = reopen(protocol, out, profile, settings)
    else:
        config, folder = configure(protocol, profile or "quick", settings), None
    return run_config(protocol, config, out, folder, n_jobs, scheduler, progress,
                      keep_checkpoints, on_task_end)


def run_config(protocol, config, out=None, folder=None, n_jobs=1, scheduler=None,
               progress=True, keep_checkpoints=False, on_task_end=None):
    """Run ``config`` into a new folder ``out`` (``folder``: the locked folder being resumed)."""
    from .sweep import connect, local_workers, map_jobs, merge_results

    started = time.perf_counter()
    resume = folder is not None
    client, owned = None, False
    try:
        runs = runs_of(protocol, config)
        n_jobs, jobs_note = local_workers(n_jobs, len(runs))
        data = protocol.describe_data(config)
        if scheduler is None:                      # the runs use this machine's memory
            check_resources(protocol, config, data, n_jobs,
                            folder.path / "config.json" if resume else None)
        else:                                      # before any folder: an address can be wrong
            client, owned = connect(scheduler)
        if not resume:
            folder = claim_folder(out, protocol.name)
            atomic_write_json(folder.path / "config.json", config.to_json())
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
        if jobs_note and scheduler is None:
            print(f"[synapse] {jobs_note}", file=sys.stderr, flush=True)
        # On a terminal, one process: progress bars; otherwise (a log file, parallel jobs): a
        # line per task and per epoch; progress=False: silent.
        bars = sys.stderr.isatty() and n_jobs == 1 and scheduler is None
        log = (None if bars else stderr_log) if progress else False
        job = functools.partial(run_job, protocol, config, str(out / "runs"), keep_checkpoints,
                                log, on_task_end)
        results = map_jobs(job, runs, n_jobs=n_jobs, scheduler=client, progress=progress,
                           desc=f"{protocol.name}: runs")
        record = merge_results(results, [r.to_json() for r in runs])
        for r, run in zip(record["runs"] if not callable(log) else [], runs):
            for w in r.get("warnings", []) + [w for m in r.get("methods", [])
                                              for w in m.get("warnings", [])]:
                # e.g. a penalty that never acted: said here once, where no log line said it
                print(f"[synapse] WARNING {run.name}: {w}", file=sys.stderr, flush=True)
        report = protocol.report(config, record["runs"], data)
        device = getattr(config, "device", "cpu")
        results_doc = {
            "experiment": protocol.name, "config": config.to_json(), "data": data,
            "backend": backend_info(device, protocol.dtype),
            "seeds": list(config.seeds), "versions": run_metadata(),
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


def check_resources(protocol, config, data, workers, stored=None):
    """Refuse, before any folder is made, runs that need more memory than this machine has
    available: ONE run as the protocol estimates it (its network with optimizer and method
    state, its tasks), then ``workers`` runs at once. One line names the setting to change,
    or ``stored`` (the config.json being resumed) whose setting it is."""
    if protocol.memory is None:
        return
    parts = protocol.memory(config, data)
    one = sum(nbytes for _, _, nbytes in parts)
    setting = max(parts, key=lambda part: part[2])[0]
    detail = "; ".join(f"{what}: {format_bytes(nbytes)}" for _, what, nbytes in parts)
    device = getattr(config, "device", "cpu")
    try:
        check_memory(f"one run ({detail})", one, "cpu", functools.partial(ConfigError, setting))
        if device == "cuda":
            check_memory(f"one run ({detail})", one, device,
                         functools.partial(ConfigError, setting))
        if workers > 1:
            check_memory(f"{workers} runs at once ({format_bytes(one)} each)", one * workers,
                         "cpu", functools.partial(ConfigError, "jobs"))
    except ConfigError as err:
        if stored is None or err.option == "jobs":
            raise
        raise CheckpointError(f"{stored}: {err}") from None


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
    lines = [f"{experiment} ({config.profile} profile) on {data['name']}: {data['source']}",
             f"device {getattr(config, 'device', 'cpu')}, seeds {list(config.seeds)}, "
             f"wall time {wall:.1f} s",
             "", report["table"], "", f"results: {out}"]
    return "\n".join(lines)
