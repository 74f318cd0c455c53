"""Build and launch the CuPy kernels whose bodies sit beside their NumPy twins.

A kernel is declared once, at module level in ``si.py`` / ``optim.py``, as plain data
(``Elementwise`` or ``Reduction``): importing it needs no CuPy. Calling the spec launches
it; the ``cupy.ElementwiseKernel`` / ``cupy.ReductionKernel`` is built on first use and
cached (CuPy then compiles once per dtype and caches the binary).

CuPy's conventions, which every body below relies on:

- arguments are passed inputs first, then outputs; an output is bound by reference, so an
  array listed as an output is read-modify-write (``omega -= g * delta`` updates omega);
- ``T`` is bound from the array arguments (float32 or float64, all alike); a host scalar
  declared ``T`` (a Python float such as ``lr_t``) is cast to that ``T`` by CuPy;
- the ``preamble`` is pasted after CuPy's ``typedef ... T;`` and ahead of the kernel, so the
  device functions in it (``equations.PREAMBLE``) are written with ``T``.
"""
import dataclasses
import functools


@dataclasses.dataclass(frozen=True)
class Elementwise:
    """An ``ElementwiseKernel``: ``operation`` runs once per element."""
    name: str
    in_params: str
    out_params: str
    operation: str
    preamble: str = ""    # code pasted ahead of the kernel: the device functions it calls

    def __call__(self, *args):
        return _launcher(self, *args)

    def build(self):
        import cupy
        return cupy.ElementwiseKernel(self.in_params, self.out_params, self.operation,
                                      self.name, preamble=self.preamble)


@dataclasses.dataclass(frozen=True)
class Reduction:
    """A ``ReductionKernel`` over all elements: ``map_expr`` per element, folded with
    ``reduce_expr`` (on ``a``, ``b``) from ``identity``, then ``post_map_expr`` (on ``a``)."""
    name: str
    in_params: str
    out_params: str
    map_expr: str
    reduce_expr: str
    post_map_expr: str
    identity: str
    preamble: str = ""

    def __call__(self, *args):
        return _launcher(self, *args)

    def build(self):
        import cupy
        return cupy.ReductionKernel(self.in_params, self.out_params, self.map_expr,
                                    self.reduce_expr, self.post_map_expr, self.identity,
                                    self.name, preamble=self.preamble)


@functools.lru_cache(maxsize=None)
def compiled(spec):
    """The CuPy kernel of a spec, built once per process."""
    return spec.build()


def launch_on_cupy(spec, *args):
    return compiled(spec)(*args)


# Who runs a spec. The CPU harness (``tests/kernel_harness.py``, ``emulate_gpu``) swaps in a launcher that
# runs the very same bodies compiled with g++, so the GPU branch is exercised without a GPU.
_launcher = launch_on_cupy
