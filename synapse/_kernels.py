"""Import the fused kernels under their installed name, ``synapse_kernels``.

After ``pip install`` the package ``synapse_kernels`` (source folder ``kernels/``) is on the
path. In a bare source checkout (``python -m pytest`` from the repo root without installing)
it is loaded from ``kernels/`` beside this package, under the same name.
"""
import importlib.util
import pathlib
import sys

from .errors import UserError

try:
    import synapse_kernels as kernels
except ModuleNotFoundError:  # a source checkout that was not installed
    _src = pathlib.Path(__file__).resolve().parent.parent / "kernels" / "__init__.py"
    if not _src.exists():
        raise ModuleNotFoundError(
            "synapse_kernels is not installed and no kernels/ folder was found beside the "
            "synapse package; reinstall synapse (pip install .)") from None
    _spec = importlib.util.spec_from_file_location(
        "synapse_kernels", _src, submodule_search_locations=[str(_src.parent)])
    kernels = importlib.util.module_from_spec(_spec)
    sys.modules["synapse_kernels"] = kernels
    _spec.loader.exec_module(kernels)



def warm_cpu(dtype):
    """Compile (or load from numba's disk cache) the fused CPU loops for ``dtype`` now, so
    that no training step pays for it; a bad ``SYNAPSE_CPU_KERNELS`` is the user's error."""
    try:
        return kernels.warm_cpu(dtype)
    except ValueError as err:
        raise UserError(str(err)) from None


def check_cpu_path():
    """Refuse, before anything runs, a ``$SYNAPSE_CPU_KERNELS`` that names no CPU path, or
    'numba' where numba cannot be imported (as a bad ``$SYNAPSE_DEVICE`` is refused): one
    ConfigError line naming the variable. Reads the variable only; compiles nothing."""
    from .errors import ConfigError
    try:
        if kernels.cpu.mode() == "numba":
            kernels.cpu.compiled()
    except ValueError as err:
        env = kernels.cpu.ENV
        raise ConfigError(f"${env}", str(err).removeprefix(f"{env}=")) from None


__all__ = ["kernels", "warm_cpu", "check_cpu_path"]
