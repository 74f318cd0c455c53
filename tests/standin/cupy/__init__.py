"""A strict stand-in for the part of CuPy that synapse uses, backed by NumPy (tests only).

``python -m pytest -m standin`` imports this package as ``cupy`` (``tests/standin`` goes
first on ``sys.path``; subprocesses get it through ``PYTHONPATH``), so the engine runs with
``device="cuda"`` on a machine without a GPU. It never ships.

**The names below are the CuPy features synapse relies on, written down.** ``FUNCTIONS``,
``UFUNCS``, ``NDARRAY_METHODS``, ``DTYPES`` and the classes and submodules defined here are all
this module offers; anything else (``cupy.foo``, ``array.foo``) raises AttributeError naming
the CuPy feature, so a new dependency on CuPy shows up here first.

Strict where CuPy is strict (each rule mirrors CuPy's own code, cupy/_core/core.pyx and
_kernel.pyx):

- ``ndarray`` is not a ``numpy.ndarray``; ``__array__`` raises TypeError, so ``np.asarray(x)``,
  matplotlib or ``json`` given a device array fail as they do on CuPy;
- NumPy functions and ufuncs called on device arrays dispatch through ``__array_function__``
  and ``__array_ufunc__`` to this module's function of the same name and return device arrays
  (reductions return 0-d arrays, never Python or NumPy scalars); a function this module lacks
  makes NumPy raise TypeError, as CuPy's ``NotImplemented`` does;
- a ``numpy.ndarray`` mixed with device arrays in a ufunc, a function or a kernel launch raises
  ``TypeError: Unsupported type <class 'numpy.ndarray'>`` (CuPy's ``_preprocess_args``); NumPy
  *scalars* and Python numbers are fine; comparisons take a 0-d NumPy array (CuPy calls
  ``.item()`` on it); ``x[...] = numpy_array`` raises ValueError (CuPy's ``fill``);
- ``ElementwiseKernel`` and ``ReductionKernel`` run the exact CUDA body (and ``preamble``)
  compiled with g++ by ``tests/kernel_harness.py``.

Host synchronisations (``.get()``, ``asnumpy``, ``float()``, ``int()``, ``bool()``, ``.item()``,
``.tolist()``, ``format``/``repr``, boolean-mask indexing) are allowed and recorded in
``cupy._standin.syncs`` (what, where); host-to-device copies in ``cupy._standin.uploads``.
"""
import builtins as _builtins
import contextlib
import os
import sys
import types

import numpy as _np

_HERE = os.path.dirname(os.path.abspath(__file__))
_TESTS = os.path.dirname(os.path.dirname(_HERE))

__version__ = "13.0.0+standin"

# --- what is recorded ------------------------------------------------------------------


class _Record:
    """Host synchronisations and uploads, each as (what, 'file:line' of the caller)."""

    def __init__(self):
        self.syncs, self.uploads = [], []

    def clear(self):
        self.syncs.clear()
        self.uploads.clear()

    @contextlib.contextmanager
    def counting(self):
        """Record afresh inside the block: ``with cupy._standin.counting() as rec:``."""
        self.clear()
        yield self


_standin = _Record()


def _caller():
    f = sys._getframe(2)
    while f is not None and os.path.dirname(os.path.abspath(f.f_code.co_filename)) == _HERE:
        f = f.f_back
    if f is None:
        return "?"
    return f"{os.path.relpath(f.f_code.co_filename)}:{f.f_lineno}"


def _sync(what):
    _standin.syncs.append((what, _caller()))


def _synced(convert, what):
    """An array method that brings the value to the host with ``convert``: one sync."""
    def method(self):
        _sync(what)
        return convert(self._a)
    return method


def _upload(what):
    _standin.uploads.append((what, _caller()))


def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


# --- the array ---------------------------------------------------------------------------

NDARRAY_METHODS = ("astype", "copy", "reshape", "ravel", "flatten", "transpose", "squeeze",
                   "sum", "mean", "max", "min", "argmax", "argmin", "all", "any", "clip",
                   "fill", "view", "dot", "cumsum", "var", "std", "swapaxes", "take",
                   "repeat")


class ndarray:
    """A device array: a NumPy array that refuses to leave the 'device' implicitly."""

    __slots__ = ("_a", "__weakref__")
    __hash__ = None

    def __init__(self, a):
        if not isinstance(a, _np.ndarray):
            raise TypeError("the stand-in wraps numpy arrays only")
        self._a = a

    # -- attributes ------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    def __getattr__(self, name):
        if name in NDARRAY_METHODS:
            method = getattr(self._a, name)

            def call(*args, **kwargs):
                a, kw = _device_args((args, kwargs), f"ndarray.{name}")
                return _wrap(method(*a, **kw), kwargs.get("out"))
            return call
        raise AttributeError(f"cupy.ndarray.{name}: not provided by the CuPy stand-in "
                             f"(synapse relies only on tests/standin/cupy's NDARRAY_METHODS)")

    # -- leaving the device: allowed explicitly, each one a host synchronisation -------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self, stream=None, order="C", out=None):
        _sync("get")
        if out is not None:
            out[...] = self._a
            return out
        return _np.array(self._a, order=order)

    def item(self, *args):
        _sync("item")
        return self._a.item(*args)

    # each conversion to a host value is a sync, as on a GPU
    tolist = _synced(_np.ndarray.tolist, "tolist")
    __float__ = _synced(float, "float")
    __int__ = _synced(int, "int")
    __complex__ = _synced(complex, "complex")
    __bool__ = _synced(bool, "bool")
    __repr__ = _synced(repr, "repr")
    __str__ = _synced(str, "str")

    def __format__(self, spec):
        _sync("format")
        return format(self._a if self._a.ndim else self._a[()], spec)

    # -- sequence protocol (no sync: items are 0-d or n-d device views) ----------------
    def __len__(self):
        if not self._a.ndim:
            raise TypeError("len() of unsized object")
        return self._a.shape[0]

    def __iter__(self):
        if not self._a.ndim:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._a.shape[0]))

    # -- indexing -----------------------------------------------------------------------
    def __getitem__(self, key):
        key = _index(key)
        out = self._a[_keep_view(key)]
        return ndarray(out if isinstance(out, _np.ndarray) else _np.asarray(out))

    def __setitem__(self, key, value):
        if isinstance(value, _np.ndarray) and value.ndim:
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        if isinstance(value, ndarray):
            value = value._a
        self._a[_index(key)] = value

    # -- NumPy's protocols: what CuPy does with them ------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or ufunc.__name__ not in UFUNCS:
            return NotImplemented
        for x in inputs + tuple(kwargs.get("out", ())):
            if not isinstance(x, (ndarray, _np.ndarray, _np.generic, bool, int, float,
                                  complex)):
                return NotImplemented
        return getattr(_this, ufunc.__name__)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        name = ".".join(func.__module__.split(".")[1:] + [func.__name__])
        ours = _FUNCTION_TABLE.get(name)
        if ours is None or _builtins.any(t not in (ndarray, _np.ndarray) for t in types):
            return NotImplemented
        return ours(*args, **kwargs)

    # -- operators: through the ufuncs, as CuPy's are -----------------------------------
    def __matmul__(self, o):
        return matmul(self, o)

    def __rmatmul__(self, o):
        return matmul(o, self)

    def __neg__(self):
        return negative(self)

    def __pos__(self):
        return self.copy()

    def __abs__(self):
        return absolute(self)

    def __invert__(self):
        return invert(self)


ndarray.__module__ = "cupy"

_BINARY = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
           "floordiv": "floor_divide", "mod": "remainder", "pow": "power", "and": "bitwise_and",
           "or": "bitwise_or", "xor": "bitwise_xor"}
_COMPARISONS = {"less": "lt", "less_equal": "le", "greater": "gt", "greater_equal": "ge",
                "equal": "eq", "not_equal": "ne"}


def _binary(ufunc_name):
    def op(self, o):
        return getattr(_this, ufunc_name)(self, o)

    def rop(self, o):
        return getattr(_this, ufunc_name)(o, self)

    def iop(self, o):
        return getattr(_this, ufunc_name)(self, o, out=(self,))
    return op, rop, iop


for _dunder, _name in _BINARY.items():
    _op, _rop, _iop = _binary(_name)
    setattr(ndarray, f"__{_dunder}__", _op)
    setattr(ndarray, f"__r{_dunder}__", _rop)
    setattr(ndarray, f"__i{_dunder}__", _iop)
for _name, _dunder in _COMPARISONS.items():
    setattr(ndarray, f"__{_dunder}__", _binary(_name)[0])


def _index(key):
    """An index on the 'device': device arrays unwrapped (a boolean mask needs its count on the
    host: a sync, as CuPy's nonzero is); host index arrays and lists are uploaded, as CuPy
    does."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    if isinstance(key, ndarray):
        if key.dtype == bool:
            _sync("boolean mask index")
        return key._a
    if isinstance(key, (_np.ndarray, list)):
        _upload("index array")
    return key


def _keep_view(key):
    """NumPy returns a scalar copy for a full integer index; CuPy a 0-d view."""
    parts = key if isinstance(key, tuple) else (key,)
    if _builtins.all(isinstance(k, (int, _np.integer)) for k in parts):
        return parts + (Ellipsis,)
    return key


def _wrap(x, out=None):
    """NumPy results as device arrays (scalars as 0-d arrays, as CuPy returns them)."""
    if out is not None:
        return out
    if isinstance(x, _np.ndarray):
        return ndarray(x)
    if isinstance(x, _np.generic):
        return ndarray(_np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


def _device_args(obj, where, host_ok=False):
    """Unwrap device arrays (in lists, tuples and dicts); a NumPy array is refused unless this
    is a host-to-device function (``host_ok``), where it is an upload."""
    if isinstance(obj, ndarray):
        return obj._a
    if isinstance(obj, _np.ndarray):
        if not host_ok:
            raise _unsupported(obj)
        _upload(where)
        return obj
    if isinstance(obj, tuple):
        return tuple(_device_args(v, where, host_ok) for v in obj)
    if isinstance(obj, list):
        return [_device_args(v, where, host_ok) for v in obj]
    if isinstance(obj, dict):
        return {k: _device_args(v, where, host_ok) for k, v in obj.items()}
    return obj


def _function(name, np_func, host_ok=False):
    def f(*args, **kwargs):
        out = kwargs.get("out")
        if isinstance(out, tuple):            # ufuncs: out=(x,)
            out = out[0]
            kwargs["out"] = out
        if name.endswith("_like") and args and isinstance(args[0], _np.ndarray):
            args = (ndarray(args[0]),) + args[1:]   # CuPy reads a host prototype's shape
        if name in _COMPARISONS:      # CuPy takes a 0-d NumPy array here (its .item())
            args = tuple(x.item() if isinstance(x, _np.ndarray) and x.ndim == 0 else x
                         for x in args)
        a, kw = _device_args((args, kwargs), f"cupy.{name}", host_ok)
        return _wrap(np_func(*a, **kw), out)
    f.__name__ = f.__qualname__ = name.rsplit(".", 1)[-1]
    f.__module__ = "cupy"
    return f


# --- the module's functions ------------------------------------------------------------

UFUNCS = ("add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "remainder",
          "power", "negative", "absolute", "abs", "sqrt", "square", "exp", "log", "log1p",
          "tanh", "maximum", "minimum", "sign", "isfinite", "isnan", "isinf", "less",
          "less_equal", "greater", "greater_equal", "equal", "not_equal", "logical_and",
          "logical_or", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "invert")

FUNCTIONS = ("zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like",
             "full_like", "arange", "matmul", "dot", "where", "copyto", "pad", "concatenate",
             "stack", "sum", "mean", "median", "percentile", "max", "min", "amax", "amin",
             "argmax", "all", "any", "clip", "reshape", "transpose", "expand_dims",
             "lib.stride_tricks.as_strided")

DTYPES = ("float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8",
          "uint16", "uint32", "uint64", "bool_", "intp", "dtype")

_this = sys.modules[__name__]
_FUNCTION_TABLE = {}
for _name in UFUNCS + FUNCTIONS:
    _np_func = _np
    for _part in _name.split("."):
        _np_func = getattr(_np_func, _part)
    _FUNCTION_TABLE[_name] = _function(_name, _np_func)
for _name in DTYPES:
    globals()[_name] = getattr(_np, _name)
nan, inf, newaxis, pi = _np.nan, _np.inf, _np.newaxis, _np.pi

globals().update({k: v for k, v in _FUNCTION_TABLE.items() if "." not in k})
lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(
    as_strided=_FUNCTION_TABLE["lib.stride_tricks.as_strided"]))


def asarray(a, dtype=None, order=None):
    """A device array; a host array (or list, or scalar) is uploaded."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    if not isinstance(a, _np.ndarray):
        _upload("asarray")
    return ndarray(_np.array(_device_args(a, "asarray", host_ok=True), dtype=dtype,
                             order=order or "K"))


def array(a, dtype=None, copy=True, order="K"):
    if isinstance(a, ndarray):
        return ndarray(_np.array(a._a, dtype=dtype, copy=copy, order=order))
    if not isinstance(a, _np.ndarray):
        _upload("array")
    return ndarray(_np.array(_device_args(a, "array", host_ok=True), dtype=dtype,
                             order=order))


def ascontiguousarray(a, dtype=None):
    if isinstance(a, ndarray):
        return ndarray(_np.ascontiguousarray(a._a, dtype=dtype))
    return asarray(_np.ascontiguousarray(a, dtype=dtype))


def asnumpy(a, stream=None, order="C", out=None):
    """A host copy of a device array (a sync); a host array is passed through, as in CuPy."""
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    return _this if _builtins.any(isinstance(a, ndarray) for a in args) else _np


_FUNCTION_TABLE.update(asarray=asarray, array=array, ascontiguousarray=ascontiguousarray)


# --- random ----------------------------------------------------------------------------

class _Generator:
    """cupy.random.Generator: a stream of its own (Philox here, XORWOW on CuPy), never the
    host's PCG64 stream, so a test cannot rely on device and host draws agreeing."""

    def __init__(self, seed):
        self._g = _np.random.Generator(_np.random.Philox(seed))

    def random(self, size=None, dtype=_np.float64, out=None):
        return ndarray(_np.asarray(self._g.random(size, dtype=dtype)))

    def standard_normal(self, size=None, dtype=_np.float64, out=None):
        return ndarray(_np.asarray(self._g.standard_normal(size, dtype=dtype)))

    def __getattr__(self, name):
        raise AttributeError(f"cupy.random.Generator.{name}: not provided by the CuPy stand-in")


random = types.ModuleType("cupy.random")
random.default_rng = _Generator
random.Generator = _Generator


# --- kernels: the exact CUDA bodies, through tests/kernel_harness.py ---------------------

def _harness():
    if _TESTS not in sys.path:
        sys.path.insert(0, _TESTS)
    import kernel_harness
    return kernel_harness


_launcher = None


def _launch(spec, args, size=None):
    global _launcher
    h = _harness()
    if _launcher is None:
        import tempfile
        _launcher = h.CpuLauncher(os.environ.get("SYNAPSE_STANDIN_BUILD") or os.path.join(
            tempfile.gettempdir(), f"synapse-standin-{os.getuid()}"))
    if size is not None:
        raise TypeError(f"{spec.name}: the stand-in does not take size=")
    host = []
    for a in args:
        if isinstance(a, _np.ndarray):
            raise _unsupported(a)              # CuPy's _preprocess_args
        host.append(a._a if isinstance(a, ndarray) else a)
    result = _launcher(spec, *host)
    by_id = {id(h_): d for h_, d in zip(host, args) if isinstance(d, ndarray)}
    back = lambda r: by_id[id(r)] if id(r) in by_id else ndarray(r)  # noqa: E731
    return tuple(map(back, result)) if isinstance(result, tuple) else back(result)


class ElementwiseKernel:
    """cupy.ElementwiseKernel(in_params, out_params, operation, name, preamble=...)."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True,
                 preamble="", **kwargs):
        if kwargs:
            raise TypeError(f"ElementwiseKernel: the stand-in does not take {sorted(kwargs)}")
        from synapse_kernels.cuda import Elementwise
        self.spec = Elementwise(name, in_params, out_params, operation, preamble=preamble)

    def __call__(self, *args, size=None, block_size=None):
        return _launch(self.spec, args, size)


class ReductionKernel:
    """cupy.ReductionKernel over all elements (axis=None), as synapse launches it."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity,
                 name="reduce_kernel", reduce_type=None, reduce_dims=True, preamble="",
                 **kwargs):
        if kwargs or reduce_type is not None:
            raise TypeError("ReductionKernel: the stand-in takes no reduce_type or options")
        from synapse_kernels.cuda import Reduction
        self.spec = Reduction(name, in_params, out_params, map_expr, reduce_expr, post_map_expr,
                              identity, preamble=preamble)

    def __call__(self, *args, axis=None, keepdims=False):
        if axis is not None or keepdims:
            raise TypeError("ReductionKernel: the stand-in reduces over all elements only")
        return _launch(self.spec, args)


# --- the device --------------------------------------------------------------------------

class _Runtime:
    @staticmethod
    def getDeviceCount():
        return 1

    @staticmethod
    def getDeviceProperties(device):
        if device != 0:
            raise RuntimeError(f"cudaErrorInvalidDevice: device {device} (the stand-in has 0)")
        return {"name": b"CuPy stand-in (NumPy on the host)", "totalGlobalMem": _host_bytes()[1]}

    @staticmethod
    def memGetInfo():
        """(free, total) bytes: the stand-in's device memory is the host's."""
        return _host_bytes()


def _host_bytes():
    page = os.sysconf("SC_PAGE_SIZE")
    return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page


cuda = types.ModuleType("cupy.cuda")
cuda.runtime = _Runtime()


def __getattr__(name):
    raise AttributeError(f"cupy.{name}: not provided by the CuPy stand-in; synapse relies only "
                         f"on the names listed in tests/standin/cupy/__init__.py")
