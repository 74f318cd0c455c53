"""Check the CUDA kernel bodies on a machine without a GPU (test-only; not installed).

Two independent checks of the exact strings declared in ``kernels/si.py`` and
``kernels/optim.py`` (each spec's body and its ``preamble``, the device functions of
``kernels/equations.py``):

1. ``cuda_source`` writes the translation unit CuPy would hand to its compiler (typedef of
   ``T``, the preamble, a ``__global__`` loop per kernel and dtype, each element bound by
   reference as CuPy binds it) and ``compile_ptx`` compiles it with ``nvcc -arch=sm_90 --ptx``.
2. ``CpuLauncher`` pastes the same preambles and bodies into C++ (``__device__`` defined
   away), builds them with g++ and runs them on NumPy arrays. Under ``emulate_gpu`` the
   public functions take their GPU branch and launch through it, so argument order and
   host-side scalars are checked too.

A spec is anything with ``name``, ``in_params``, ``out_params`` and ``operation`` (or a
reduction's ``map_expr``, ``reduce_expr``, ``post_map_expr``, ``identity``); ``preamble`` is
optional (``preamble_of``).

``CASES`` describe one call of each public function; ``check_case`` runs it through the
kernel and through the NumPy twin and compares every array afterwards. ``cpu_path`` forces
the CPU path ('numpy' for the twins, 'numba' for the compiled loops) for a block.
"""
import contextlib
import ctypes
import dataclasses
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from synapse_kernels import cpu, cuda, optim, si
from synapse_kernels.cuda import Reduction

CTYPES = {"float32": "float", "float64": "double", "int32": "int", "int64": "long long"}
SCALAR_CTYPES = {"float": ctypes.c_float, "double": ctypes.c_double, "int": ctypes.c_int,
                 "long long": ctypes.c_longlong}
TOLERANCE = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


class CompileError(RuntimeError):
    pass


# --- what a launch looks like ------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Param:
    type: str        # 'T' or a dtype name
    name: str
    raw: bool
    is_output: bool


def params(spec):
    """The parameters of a spec, parsed the way CuPy parses them."""
    def parse(text, is_output):
        out = []
        for item in filter(None, (s.strip() for s in text.split(","))):
            *mods, typ, name = item.split()
            out.append(Param(typ, name, "raw" in mods, is_output))
        return out
    return parse(spec.in_params, False) + parse(spec.out_params, True)


@dataclasses.dataclass(frozen=True)
class Signature:
    """One compiled instance of a spec: the C type of ``T`` and which inputs are scalars."""
    spec: object
    ctype: str
    scalars: tuple

    @property
    def symbol(self):
        return f"{self.spec.name}__{self.ctype.replace(' ', '_')}"


def signature(spec, args):
    """Bind ``T`` from the array arguments and note the scalars, as CuPy does."""
    ps = params(spec)
    if isinstance(spec, Reduction):
        ps = [p for p in ps if not p.is_output]  # CuPy allocates the reduction's output
    if len(args) != len(ps):
        raise TypeError(f"{spec.name} takes {len(ps)} arguments, got {len(args)}")
    dtypes = {a.dtype for p, a in zip(ps, args)
              if p.type == "T" and isinstance(a, np.ndarray)}
    if len(dtypes) != 1:
        raise TypeError(f"{spec.name}: T is bound to {sorted(map(str, dtypes))}")
    for p, a in zip(ps, args):
        if p.is_output and not isinstance(a, np.ndarray):
            raise TypeError(f"{spec.name}: output {p.name} must be an array")
    scalars = tuple(p.name for p, a in zip(ps, args) if not isinstance(a, np.ndarray))
    return Signature(spec, CTYPES[dtypes.pop().name], scalars)


# --- source generation -------------------------------------------------------------------

def _c_type(p, sig):
    return sig.ctype if p.type == "T" else CTYPES[p.type]


def _param_list(sig):
    """C parameters: arrays as ``_raw_<name>`` pointers, scalars by value, then the size."""
    out = []
    for p in params(sig.spec):
        t = _c_type(p, sig)
        if p.name in sig.scalars:
            out.append(f"const {t} {p.name}")
        elif p.raw:
            out.append(f"{'' if p.is_output else 'const '}{t}* {p.name}")
        else:
            out.append(f"{'' if p.is_output else 'const '}{t}* _raw_{p.name}")
    return ", ".join(out + ["long long _n"])


def _bindings(sig, index, outputs=None):
    """Bind each non-raw array element to its parameter name, by reference (CuPy's way).

    ``outputs`` True or False binds only outputs or only inputs (a reduction's two places).
    """
    lines = []
    for p in params(sig.spec):
        if p.name in sig.scalars or p.raw or outputs not in (None, p.is_output):
            continue
        const = "" if p.is_output else "const "
        lines.append(f"{const}{p.type if p.type == 'T' else CTYPES[p.type]} &{p.name}"
                     f" = _raw_{p.name}[{index}];")
    return "\n      ".join(lines)


def preamble_of(spec):
    """The code a spec pastes ahead of its kernel (CuPy's ``preamble=``), '' where none."""
    return getattr(spec, "preamble", "") or ""


def _reduction_macros(spec):
    return (f"#define REDUCE(a, b) ({spec.reduce_expr})\n"
            f"#define POST_MAP(a) ({spec.post_map_expr})\n")


def _undef():
    return "#undef REDUCE\n#undef POST_MAP\n"


def _cuda_kernel(sig):
    spec = sig.spec
    head = f'extern "C" __global__ void {sig.symbol}({_param_list(sig)})'
    loop = ("for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < _n;"
            " i += (long long)blockDim.x * gridDim.x)")
    if not isinstance(spec, Reduction):
        return f"""{head} {{
  {loop} {{
      {_bindings(sig, "i")}
      {spec.operation};
  }}
}}
"""
    return f"""{_reduction_macros(spec)}{head} {{
  typedef T _type_reduce;
  __shared__ _type_reduce _sdata[256];
  unsigned int _tid = threadIdx.x;
  _type_reduce _s = _type_reduce({spec.identity});
  for (long long i = _tid; i < _n; i += blockDim.x) {{
      {_bindings(sig, "i", outputs=False)}
      _type_reduce _a = static_cast<_type_reduce>({spec.map_expr});
      _s = REDUCE(_s, _a);
  }}
  _sdata[_tid] = _s;
  __syncthreads();
  for (unsigned int _b = 128; _b > 0; _b >>= 1) {{
      if (_tid < _b) {{
          _type_reduce _x = _sdata[_tid], _y = _sdata[_tid + _b];
          _sdata[_tid] = REDUCE(_x, _y);
      }}
      __syncthreads();
  }}
  if (_tid == 0) {{
      _s = _sdata[0];
      {_bindings(sig, "0", outputs=True)}
      POST_MAP(_s);
  }}
}}
{_undef()}"""


def _cpu_function(sig):
    spec = sig.spec
    head = f'extern "C" void {sig.symbol}({_param_list(sig)})'
    if not isinstance(spec, Reduction):
        return f"""{head} {{
  for (long long i = 0; i < _n; ++i) {{
      {_bindings(sig, "i")}
      {spec.operation};
  }}
}}
"""
    return f"""{_reduction_macros(spec)}{head} {{
  typedef T _type_reduce;
  _type_reduce _s = _type_reduce({spec.identity});
  for (long long i = 0; i < _n; ++i) {{
      {_bindings(sig, "i", outputs=False)}
      _type_reduce _a = static_cast<_type_reduce>({spec.map_expr});
      _s = REDUCE(_s, _a);
  }}
  {_bindings(sig, "0", outputs=True)}
  POST_MAP(_s);
}}
{_undef()}"""


def _by_type(signatures, render):
    """One namespace per C type holding ``typedef ... T`` (CuPy puts it at file scope, ahead
    of the preamble), then each distinct preamble once, then the kernels."""
    parts = []
    for ctype in sorted({s.ctype for s in signatures}):
        mine = [s for s in signatures if s.ctype == ctype]
        preambles = "".join(dict.fromkeys(preamble_of(s.spec) for s in mine))
        body = "\n".join(render(s) for s in mine)
        parts.append(f"namespace synapse_{ctype.replace(' ', '_')} {{\ntypedef {ctype} T;\n"
                     f"{preambles}\n{body}}}\n")
    return "\n".join(parts)


def cuda_source(signatures):
    """A complete .cu translation unit with one ``__global__`` kernel per signature."""
    return "#include <cuda_runtime.h>\n\n" + _by_type(signatures, _cuda_kernel)


def cupy_source(signatures):
    """The code CuPy itself generates for the elementwise signatures of one C type.

    Uses CuPy's private code generator (``import cupy`` works without a GPU); compile it
    with ``compile_ptx(src, workdir, include=cupy_include_dir())``.
    """
    import cupy
    from cupy._core import _carray, _kernel, _scalar
    ndarray_kind, indexer_kind, scalar_kind = 1, 2, 3  # CuPy's _ArgKind enum
    parts = ["#include <cupy/carray.cuh>"]
    pasted = set()          # one translation unit here: each preamble once, ahead of its users
    for sig in signatures:
        if isinstance(sig.spec, Reduction):
            continue
        kern = sig.spec.build()
        dtype = np.dtype({v: k for k, v in CTYPES.items()}[sig.ctype])
        infos = [_kernel._ArgInfo(scalar_kind, _scalar.CScalar, dtype, 0, True, True)
                 if p.name in sig.scalars else
                 _kernel._ArgInfo(ndarray_kind, cupy.ndarray, dtype, 1, True, True)
                 for p in kern.params[:-1]]
        infos.append(_kernel._ArgInfo(indexer_kind, _carray.Indexer, None, 1, True, True))
        preamble = preamble_of(sig.spec)
        parts.append(_kernel._get_elementwise_kernel_code(
            tuple(infos), _kernel._TypeMap((("T", dtype),)), kern.params, kern.operation,
            kern.name, "" if preamble in pasted else preamble))
        pasted.add(preamble)
    return "\n".join(parts)


def cupy_include_dir():
    import cupy
    return str(Path(cupy.__file__).parent / "_core" / "include")


CPU_PRELUDE = """#include <cmath>
// Device functions are plain functions here.
#define __device__
#define __host__
#define __forceinline__ inline
// What the bodies may call, with CUDA's float and double overloads.
using std::sqrt; using std::fabs; using std::exp; using std::log; using std::pow;
inline float max(float a, float b) { return std::fmax(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
inline float min(float a, float b) { return std::fmin(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline float rsqrt(float a) { return 1.0f / std::sqrt(a); }
inline double rsqrt(double a) { return 1.0 / std::sqrt(a); }

"""


def cpu_source(signatures):
    return CPU_PRELUDE + _by_type(signatures, _cpu_function)


# --- compilers ---------------------------------------------------------------------------

def nvcc_unavailable_reason():
    if shutil.which("nvcc") is None:
        return "nvcc (the CUDA toolkit) is not on PATH"
    return None


def _compile(cmd, src, suffix, workdir):
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1((" ".join(cmd) + src).encode()).hexdigest()[:16]
    target = workdir / f"{key}{suffix}"
    if target.exists():
        return target
    source = workdir / f"{key}{'.cu' if suffix == '.ptx' else '.cpp'}"
    source.write_text(src)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    proc = subprocess.run(cmd + [str(source), "-o", str(tmp)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompileError(f"{cmd[0]} failed on {source}:\n{proc.stderr[-4000:]}")
    tmp.replace(target)
    return target


def compile_ptx(src, workdir, arch="sm_90", include=None):
    """Compile a .cu source to PTX with nvcc; raises CompileError with the log."""
    cmd = ["nvcc", f"-arch={arch}", "--ptx", "-std=c++17"]
    return _compile(cmd + (["-I", include] if include else []), src, ".ptx", workdir)


def build_cpu(src, workdir):
    """Build a C++ source into a shared library with g++ and load it."""
    cmd = [os.environ.get("CXX", "g++"), "-O1", "-fPIC", "-shared", "-ffp-contract=off"]
    return ctypes.CDLL(str(_compile(cmd, src, ".so", workdir)))


# --- running the bodies on the CPU -------------------------------------------------------

class CpuLauncher:
    """Runs specs on NumPy arrays through their bodies compiled with g++."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.seen = []
        self._functions = {}

    def function(self, sig):
        if sig not in self._functions:
            lib = build_cpu(cpu_source([sig]), self.workdir)
            self._functions[sig] = getattr(lib, sig.symbol)
        return self._functions[sig]

    def __call__(self, spec, *args):
        sig = signature(spec, args)
        self.seen.append(sig)
        ps = params(spec)
        is_reduction = isinstance(spec, Reduction)
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        shape = arrays[0].shape
        if any(a.shape != shape for a in arrays):
            raise ValueError(f"{spec.name}: shapes differ; the harness does not broadcast")
        if is_reduction:
            args = list(args) + [np.empty((), dtype=arrays[0].dtype)]
        c_args, buffers = [], []  # buffers keeps contiguous copies alive during the call
        for p, a in zip(ps, args):
            if p.name in sig.scalars:
                c_args.append(SCALAR_CTYPES[_c_type(p, sig)](a))
                continue
            buffers.append((p, a, np.ascontiguousarray(a)))
            c_args.append(ctypes.c_void_p(buffers[-1][2].ctypes.data))
        self.function(sig)(*c_args, ctypes.c_longlong(int(np.prod(shape))))
        for p, a, buf in buffers:
            if p.is_output and buf is not a:
                a[...] = buf
        outs = [a for p, a in zip(ps, args) if p.is_output]
        return outs[0] if len(outs) == 1 else tuple(outs)


class Recorder:
    """A launcher that only records signatures (to list what CuPy would compile)."""

    def __init__(self):
        self.seen = []

    def __call__(self, spec, *args):
        self.seen.append(signature(spec, args))
        if isinstance(spec, Reduction):
            return np.zeros((), dtype=next(a.dtype for a in args if isinstance(a, np.ndarray)))


cpu_path = cpu.path     # run a block with the CPU path forced to 'numpy', 'numba' or 'auto'


@contextlib.contextmanager
def emulate_gpu(launcher):
    """Make the public functions take their GPU branch, launching through ``launcher``."""
    saved = si.on_gpu, optim.on_gpu, cuda._launcher
    si.on_gpu = optim.on_gpu = lambda x: True
    cuda._launcher = launcher
    try:
        yield launcher
    finally:
        si.on_gpu, optim.on_gpu, cuda._launcher = saved


# --- the calls to check ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Case:
    """One call of a public function: its arrays by kind, its scalars, and which arrays
    are write-only (poisoned with NaN before the call so an unwritten element fails)."""
    function: str
    arrays: dict           # name -> 'normal' | 'positive' | 'fresh' | 'none' (passed as None)
    scalars: dict

    def inputs(self, xp, rng, shape, dtype):
        out = {}
        for name, kind in self.arrays.items():
            if kind == "none":
                out[name] = None
                continue
            if kind == "fresh":
                x = np.full(shape, np.nan)
            elif kind == "positive":
                x = rng.uniform(0.0, 1.0, shape)
            else:
                x = rng.standard_normal(shape)
            out[name] = xp.asarray(x.astype(dtype))
        return {**out, **self.scalars}

    def call(self, args):
        import synapse_kernels
        return getattr(synapse_kernels, self.function)(**args)


# lr_t as a NumPy scalar, as the engine computes it on the host.
ADAM = dict(lr_t=np.float64(1e-2), beta1=0.9, beta2=0.999, eps_t=1e-6)
SI_ARRAYS = dict(omega="normal", Omega="positive", theta_ref="normal")

CASES = {
    "omega_accumulate": Case("omega_accumulate", dict(omega="normal", g="normal",
                                                      delta="normal"), {}),
    "omega_accumulate_trapezoid": Case(
        "omega_accumulate_trapezoid",
        dict(omega="normal", g="normal", delta_prev="normal", delta="normal"), {}),
    "penalty_grad": Case("penalty_grad", dict(g="normal", Omega="positive", theta="normal",
                                              theta_ref="normal", out="fresh"), dict(c=0.7)),
    "penalty_value": Case("penalty_value", dict(Omega="positive", theta="normal",
                                                theta_ref="normal"), dict(c=0.7)),
    "consolidate": Case("consolidate", dict(Omega="normal", omega="normal", theta="normal",
                                            theta_ref="normal"), dict(xi=0.1)),
    "adam_step": Case("adam_step", dict(theta="normal", g="normal", m="normal", v="positive",
                                        delta="fresh"), ADAM),
    "sgd_step": Case("sgd_step", dict(theta="normal", g="normal", buf="normal",
                                      delta="fresh"), dict(lr=0.1, momentum=0.9)),
    "sgd_step/no_momentum": Case("sgd_step", dict(theta="normal", g="normal", buf="normal",
                                                  delta="fresh"), dict(lr=0.1, momentum=0.0)),
    "adam_si_step": Case("adam_si_step", dict(theta="normal", g="normal", m="normal",
                                              v="positive", **SI_ARRAYS),
                         dict(c=0.5, **ADAM)),
    "adam_si_step/first_task": Case(
        "adam_si_step", dict(theta="normal", g="normal", m="normal", v="positive",
                             omega="normal", Omega="normal", theta_ref="normal"),
        dict(c=0.0, **ADAM)),
    "sgd_si_step": Case("sgd_si_step", dict(theta="normal", g="normal", buf="normal",
                                            **SI_ARRAYS),
                        dict(c=0.5, lr=0.1, momentum=0.9)),
    "sgd_si_step/no_momentum": Case("sgd_si_step", dict(theta="normal", g="normal",
                                                        buf="normal", **SI_ARRAYS),
                                    dict(c=0.5, lr=0.1, momentum=0.0)),
}


def compare(got, want, dtype, what=""):
    """Raise AssertionError unless ``got`` matches ``want`` within the dtype's tolerance."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    tol = TOLERANCE[np.dtype(dtype)]
    scale = max(1.0, float(np.nanmax(np.abs(want), initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def check_case(case, launcher, dtype, shape, seed=0, xp=np, to_numpy=np.asarray,
               strided=False):
    """Run ``case`` through the kernel and through the NumPy twin; compare all arrays.

    On NumPy arrays the kernel runs under ``emulate_gpu(launcher)``; with ``xp=cupy`` it
    runs on the GPU (``launcher`` is then ignored).
    """
    base = case.inputs(np, np.random.default_rng(seed), shape, dtype)
    want = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in base.items()}
    with cpu_path("numpy"):
        want_ret = case.call(want)
    got = {k: (xp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in base.items()}
    if strided:
        got = {k: _strided_copy(xp, v) for k, v in got.items()}
    if xp is np:
        with emulate_gpu(launcher):
            got_ret = case.call(got)
    else:
        got_ret = case.call(got)
    for name, w in want.items():
        if isinstance(w, np.ndarray):
            compare(to_numpy(got[name]), w, dtype, f"{case.function}: array {name}")
    if want_ret is None:                 # a fused SI update returns nothing
        assert got_ret is None, f"{case.function}: returned {type(got_ret)}, expected None"
    else:
        compare(to_numpy(got_ret), want_ret, dtype, f"{case.function}: return value")


def _strided_copy(xp, x):
    """The same values in a non-contiguous view (every other element of a wider array)."""
    if x is None or isinstance(x, (int, float, np.generic)):
        return x
    wide = xp.full(x.shape + (2,), np.nan, dtype=x.dtype)
    wide[..., 0] = x
    return wide[..., 0]


def launch_signatures(dtypes=(np.float32, np.float64)):
    """Every (kernel, dtype, scalars) the public functions launch, found by running CASES."""
    recorder = Recorder()
    with emulate_gpu(recorder):
        for case in CASES.values():
            for dtype in dtypes:
                case.call(case.inputs(np, np.random.default_rng(0), (3,), dtype))
    return list(dict.fromkeys(recorder.seen))
