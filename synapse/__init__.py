"""synapse: Synaptic Intelligence (Zenke, Poole & Ganguli 2017) in NumPy/CuPy, from scratch.

Start with ``synapse.model.mlp``, ``synapse.optim.Adam``, ``synapse.methods.SI`` and
``synapse.train.train_tasks``; README.md maps each equation of the paper to its code.
"""
try:
    from importlib.metadata import PackageNotFoundError, version
    __version__ = version("synapse-si")
except PackageNotFoundError:  # a source checkout that was not installed
    __version__ = "0+unknown"
