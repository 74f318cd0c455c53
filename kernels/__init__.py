"""synapse_kernels: the per-element math of SI and the optimizers, one fused pass each.

Installed under the import name ``synapse_kernels`` (the source folder is ``kernels/``).
Start reading at ``equations.py``: every equation once as a CUDA device function and once in
Python. Every public function takes NumPy or CuPy arrays. On CuPy it launches one fused
``ElementwiseKernel`` whose body calls the device functions; on NumPy it runs a fused loop
compiled by numba that calls the Python equations element by element, or the *NumPy twin*,
the same equations on whole arrays (``SYNAPSE_CPU_KERNELS`` chooses; ``cpu_path()`` says which
runs).
"""
from .si import (omega_accumulate, omega_accumulate_trapezoid, penalty_grad, penalty_value,
                 consolidate)
from .optim import adam_step, sgd_step, adam_si_step, sgd_si_step
from .cpu import cpu_path, set_mode as set_cpu_path
from .warm import warm as warm_cpu

__all__ = ["omega_accumulate", "omega_accumulate_trapezoid", "penalty_grad", "penalty_value",
           "consolidate", "adam_step", "sgd_step", "adam_si_step", "sgd_si_step", "cpu_path",
           "set_cpu_path", "warm_cpu"]
