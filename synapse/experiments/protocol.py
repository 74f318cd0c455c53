"""An experiment is one :class:`Protocol` declaration; :func:`configure` turns settings into
its typed :class:`Config`, and :func:`expand` a config into its :class:`~.runs.Run` s.

A protocol says what is particular to one experiment: its settings (typed, see
:mod:`.settings`), its profiles (a value for every setting), how to describe its data, how to
run ONE run and how to report the finished runs. The ``synapse`` command and the Python API both
go through :func:`configure`, so a setting given as a flag, as ``--set`` or as a keyword
argument is parsed, checked and recorded the same way; :mod:`.runner` does everything around
the runs (results folder, resume, report). Adding an experiment means writing one declaration
and naming it in ``synapse.experiments.PROTOCOLS``::

    PROTOCOL = Protocol(name="split-mnist", summary="...", settings=common_settings(...),
                        profiles={"quick": {...}, "paper": {...}}, figure="split_mnist",
                        describe_data=describe_data, run_one=run_one, report=report)
    config = configure(PROTOCOL, "quick", {"c": [0, 1]})     # a frozen SplitMnistConfig
    config.c, config.xi                                       # (0.0, 1.0), 0.001
    expand(config)                                            # (Run(0, 'si', 0.0), ...)
"""
import dataclasses
import functools
from typing import Callable, Optional

import numpy as np

from synapse.backend import resolve_device
from synapse.checks import check_representable
from synapse.errors import ConfigError

from .runs import Run, default_strength
from .settings import did_you_mean, show_number, split_method


@dataclasses.dataclass(frozen=True)
class Config:
    """The settings of one experiment, typed and checked; built only by :func:`configure`.

    Each experiment's config class (``protocol.config_class``) adds one attribute per declared
    setting (``config.c``, ``config.xi``, ...); lists are tuples, the device is resolved.
    """

    experiment: str
    profile: str

    def values(self):
        """The settings alone, by name (what config.json stores besides experiment/profile)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)[2:]}

    def to_json(self):
        return {"experiment": self.experiment, "profile": self.profile,
                **{k: list(v) if isinstance(v, tuple) else v for k, v in self.values().items()}}

    def __reduce__(self):         # pickled by experiment name: worker processes rebuild it
        return _rebuild, (self.experiment, self.profile, self.values())


def _rebuild(experiment, profile, values):
    from synapse.experiments import get
    return get(experiment).config_class(experiment, profile, **values)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One experiment, declared.

    name          the command, e.g. ``split-mnist``
    summary       one line for ``--help``
    settings      its :class:`~.settings.Setting` s
    profiles      ``{"quick": {...}, "paper": {...}}``: a value for every setting
    figure        file name (without extension) of its figure
    describe_data ``f(config) -> dict``: which data, from where, how much (loads it once)
    run_one       ``f(config, run, run_dir, log, on_task_end, tag) -> record`` for ONE
                  :class:`~.runs.Run`, resuming from its checkpoints in ``run_dir`` (``tag``:
                  the run's record, stored in each checkpoint); ``log`` is
                  None (progress bars), False (silent) or ``f(message)`` (log lines)
    report        ``f(config, runs, data) -> {"summary", "plot", "figure", "table"}``
    check         ``f(config, given)``: its rules across settings (``given``: the names the
                  user set)
    expand        ``f(config) -> runs``, if not one per (seed, method, c)
    grid          the settings the runs spread over (the rest is every run's own record)
    dtype         the training dtype: recorded in results.json, and the one the settings must
                  be representable in
    memory        ``f(config, data) -> [(setting, what, bytes), ...]``: what ONE run holds
                  besides the loaded data (its network with optimizer and method state, its
                  tasks); :func:`~.runner.check_resources` refuses, before any folder, runs
                  that together need more than the machine has
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
    check: Optional[Callable] = None
    expand: Optional[Callable] = None
    grid: tuple = ("seeds", "methods", "c")
    dtype: str = "float32"
    memory: Optional[Callable] = None

    def setting(self, name):
        for s in self.settings:
            if s.name == name:
                return s
        names = [s.name for s in self.settings]
        raise ConfigError(name, f"unknown setting of {self.name}{did_you_mean(name, names)}; "
                                f"its settings: {', '.join(names)}")

    @functools.cached_property
    def config_class(self):
        """The frozen :class:`Config` subclass with one typed attribute per setting."""
        title = "".join(part.title() for part in self.name.split("-")) + "Config"
        return dataclasses.make_dataclass(title, [(s.name, s.kind.type) for s in self.settings],
                                          bases=(Config,), frozen=True)


def typed(protocol, values):
    """``values`` (Python values by setting name) typed by their settings' kinds."""
    return {name: protocol.setting(name).coerce(value) for name, value in values.items()}


def configure(protocol, profile="quick", values=None, base=None):
    """The typed, checked :class:`Config`: the profile's settings with ``values`` (the user's,
    as Python values; the CLI parses its text first with the same kinds) laid over them.

    ``base``: every setting's value from elsewhere instead of the profile's (a stored
    config.json being resumed); the same checks run on it.
    """
    if profile not in protocol.profiles:
        raise ConfigError("profile", f"unknown profile {profile!r}; choose from "
                                     f"{', '.join(protocol.profiles)}")
    given = typed(protocol, values or {})
    start = protocol.profiles[profile] if base is None else base
    settings = {s.name: s.coerce(start[s.name], None if base else f"profile {profile}: {s.name}")
                for s in protocol.settings}
    settings.update(given)
    if "device" in settings:
        settings["device"] = resolve_device(settings["device"])
    config = protocol.config_class(protocol.name, profile, **settings)
    check_config(protocol, config, given)
    return config


def check_config(protocol, config, given):
    """Every rule across settings, on a fresh run and on a resumed one; each names the setting
    to change."""
    if protocol.check is not None:
        protocol.check(config, given)
    if getattr(config, "device", "cpu") == "cpu":
        from synapse._kernels import check_cpu_path
        check_cpu_path()
    if not hasattr(config, "methods"):
        return
    owner, dtype = "the training dtype", protocol.dtype
    check_representable(owner, dtype, xi=config.xi, lr=config.lr)
    for c in getattr(config, "c", ()):
        check_representable(owner, dtype, c=c)
    methods = [split_method(m) for m in config.methods]
    for name, strength in methods:
        if strength is not None:
            check_representable(owner, dtype, methods=strength)
    plain_si = any(name == "si" and strength is None for name, strength in methods)
    if "c" in given and not plain_si:
        raise ConfigError("c", f"c={list(config.c)} was given but no plain 'si' method runs it "
                               f"(methods: {', '.join(config.methods)}); add 'si' or drop c")
    if hasattr(config, "c"):           # (an experiment whose runs are not per c checks its own)
        check_distinct(expand(config), dtype)


def check_distinct(runs, dtype):
    """Two runs of one seed (and scenario) that are one run (the same method and c, or c equal
    once cast to the training dtype) are refused: they would share a folder and a label."""
    seen = {}
    for run in runs:
        c = None if run.c is None else float(np.dtype(dtype).type(run.c))
        key = (run.seed, run.scenario, run.method, c)
        if key in seen:
            other = seen[key]
            if other.c == run.c:
                raise ConfigError("methods", f"{run.method} with c={show_number(run.c)} is asked "
                                             f"for twice")
            raise ConfigError("c", f"c={show_number(other.c)} and c={show_number(run.c)} are "
                                   f"the same number in {dtype}: one run, asked for twice")
        seen[key] = run


def expand(config):
    """The runs: SI once per c (or exactly 'si=C'), every other method once, per seed (a
    transfer job runs one seed's)."""
    runs = []
    for seed in config.seeds:
        for spec in config.methods:
            name, strength = split_method(spec)
            if name == "si" and strength is None:
                runs += [Run(seed, "si", c) for c in config.c]
            else:
                runs.append(Run(seed, name, default_strength(name) if strength is None
                                else strength))
    return tuple(runs)


def runs_of(protocol, config):
    """The runs of ``config``: the protocol's own expansion, or one per (seed, method, c)."""
    return tuple((protocol.expand or expand)(config))


def record_of(protocol, config, run):
    """What determines a run's numbers besides its data: the run and every setting that the
    runs do not spread over (data settings included). Stored in each run.json and checkpoint;
    ``--resume`` refuses a stored run whose record differs."""
    settings = {k: v for k, v in config.to_json().items()
                if k not in protocol.grid and k not in ("experiment", "profile")}
    return {"experiment": protocol.name, "run": run.to_json(), "settings": settings}
