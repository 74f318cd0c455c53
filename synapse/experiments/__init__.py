"""The paper's experiments, each one :class:`~.protocol.Protocol` declaration.

The layer, module by module: :mod:`.settings` (typed settings, parsed once), :mod:`.protocol`
(the declaration; ``configure`` -> one frozen, typed Config; ``expand`` -> the runs),
:mod:`.runs` (``Run(seed, method, c)`` and the one map from a run to the engine's method),
:mod:`.runner` (results folder, resume, running, report), :mod:`.common` (what the experiments'
runs share), :mod:`.sweep` (parallel jobs), :mod:`.results` and :mod:`.plotting` (files and
figures), then one module per experiment.

``PROTOCOLS`` names them; :func:`get` imports one on demand (matplotlib, joblib and dask load
only when used). The ``synapse`` command builds its subcommands from these declarations, and the
Python API runs them with the same settings::

    from synapse.experiments import split_mnist
    results = split_mnist.run(seeds=3, c=[0, 1], out="results/mine")
"""
import importlib

PROTOCOLS = {
    "split-mnist": "split_mnist",
    "permuted-mnist": "permuted_mnist",
    "transfer-mnist-bg": "transfer_mnist_bg",
    "transfer-cifar": "transfer_cifar",
    "identity": "identity",
    "scenarios": "scenarios",
}


def get(name):
    """The Protocol of experiment ``name`` (``"split-mnist"``, ...)."""
    if name not in PROTOCOLS:
        raise KeyError(f"unknown experiment {name!r}; choose from {', '.join(PROTOCOLS)}")
    return importlib.import_module(f"{__name__}.{PROTOCOLS[name]}").PROTOCOL


def run(name, **kwargs):
    """Run experiment ``name``; keyword arguments as :func:`synapse.experiments.runner.run`."""
    from .runner import run as run_protocol
    return run_protocol(get(name), **kwargs)
