"""synapse: Synaptic Intelligence (Zenke, Poole & Ganguli 2017) in NumPy/CuPy, from scratch.

Start with ``synapse.model.mlp``, ``synapse.optim.Adam``, ``synapse.methods.SI``, a
``synapse.data.Task`` of your arrays and ``synapse.learner.Learner`` (one task at a time) or
``synapse.train.train_tasks`` (a whole sequence); README.md maps each equation of the paper to
its code.
"""
try:
    from importlib.metadata import PackageNotFoundError, version
    __version__ = version("synapse-si")
except PackageNotFoundError:  # a source checkout that was not installed
    __version__ = "0+unknown"
