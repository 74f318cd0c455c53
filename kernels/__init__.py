"""synapse_kernels: the per-element math of SI and the optimizers, one fused pass each.

Installed under the import name ``synapse_kernels`` (the source folder is ``kernels/``).
Every public function takes NumPy or CuPy arrays. On CuPy it launches one fused
``ElementwiseKernel``; on NumPy it runs the same body as a fused loop compiled by numba, or
the *NumPy twin*, the same math written as in-place array passes (``SYNAPSE_CPU_KERNELS``
chooses; ``cpu_path()`` says which runs). All three sit side by side in the modules below.
"""
from .si import (omega_accumulate, omega_accumulate_trapezoid, penalty_grad, penalty_value,
                 consolidate)
from .optim import adam_step, sgd_step, adam_si_step, sgd_si_step
from .cpu import cpu_path, set_mode as set_cpu_path, warm as warm_cpu

__all__ = ["omega_accumulate", "omega_accumulate_trapezoid", "penalty_grad", "penalty_value",
           "consolidate", "adam_step", "sgd_step", "adam_si_step", "sgd_si_step", "cpu_path",
           "set_cpu_path", "warm_cpu"]
