"""The paper's experiments, each one :class:`~.protocol.Protocol` declaration.

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
}


def get(name):
    """The Protocol of experiment ``name`` (``"split-mnist"``, ...)."""
    if name not in PROTOCOLS:
        raise KeyError(f"unknown experiment {name!r}; choose from {', '.join(PROTOCOLS)}")
    return importlib.import_module(f"{__name__}.{PROTOCOLS[name]}").PROTOCOL


def run(name, **kwargs):
    """Run experiment ``name``; keyword arguments as :func:`synapse.experiments.protocol.run`."""
    from .protocol import run as run_protocol
    return run_protocol(get(name), **kwargs)
