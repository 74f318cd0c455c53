"""Compile the fused CPU loops that sit beside each CUDA body and its NumPy twin.

A loop is a plain Python function over flat arrays, ``for i in range(n): ...``, laid out
like the CUDA body above it and calling the same equations (``equations.py``) on one element
at a time that the NumPy twin calls on whole arrays (so the two CPU paths give the same bits).
``@loop`` hands it to numba, which compiles it on first use (one pass over the arrays instead
of one NumPy pass per operation) together with the ``@equation`` functions it calls, and keeps
the machine code in its on-disk cache: under ``$NUMBA_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/synapse/numba`` (``~/.cache/synapse/numba``), in a folder named after the
kernels' source (numba checks only the file of the function it caches, so an edited equation
in another file would otherwise run stale), never beside the installed package (files written
there outlive ``pip uninstall`` and would turn the package folder into a namespace package
that shadows a later editable install); where that folder cannot be written, the loops are
compiled in memory for the process.

Which CPU path runs is chosen by the environment variable ``SYNAPSE_CPU_KERNELS``:

- ``auto`` (default): the compiled loops where numba imports and compiles, else the NumPy twins;
- ``numba``: the compiled loops, and an error if numba cannot provide them;
- ``numpy``: the NumPy twins (the readable reference), e.g. to compare the two.

``cpu_path()`` says in one line which path is active. The loops run on one thread. They are
memory-bound at the paper's sizes; on a shared two-core machine numba's ``prange`` made the
fused adam_si update up to 1.4x faster while the other core was idle, and 20x slower (8 ms
for 269k parameters) whenever another process held it, for at most a few percent of a step
(``demos/bench_kernels.py --cpu`` measures both).
"""
import contextlib
import functools
import hashlib
import os
import pathlib
import tempfile

import numpy as np

MODES = ("auto", "numba", "numpy")
ENV = "SYNAPSE_CPU_KERNELS"

_state = {"mode": None, "numba": None, "reason": None, "registered": False}
_loops = []
_equations = []


def mode():
    """The CPU path asked for: ``set_mode``'s choice, else ``$SYNAPSE_CPU_KERNELS``, else auto."""
    chosen = _state["mode"] or os.environ.get(ENV, "").strip().lower() or "auto"
    if chosen not in MODES:
        raise ValueError(f"{ENV}={chosen!r}: expected one of {', '.join(MODES)}")
    return chosen


def set_mode(chosen=None):
    """Choose the CPU path for this process ('auto', 'numba', 'numpy'); None: back to the
    environment variable. Returns the previous choice."""
    if chosen is not None and chosen not in MODES:
        raise ValueError(f"CPU kernels: expected one of {', '.join(MODES)}, got {chosen!r}")
    previous, _state["mode"] = _state["mode"], chosen
    return previous


@contextlib.contextmanager
def path(chosen):
    """Run the block on the CPU path ``chosen`` ('auto', 'numba' or 'numpy'), then restore."""
    previous = set_mode(chosen)
    try:
        yield
    finally:
        set_mode(previous)


def _numba():
    """The numba module, or None with the reason kept (imported once, on first use)."""
    if _state["numba"] is None and _state["reason"] is None:
        try:
            import numba
            _state["numba"] = numba
        except Exception as err:  # absent, or broken against this NumPy
            _state["reason"] = f"numba cannot be imported: {type(err).__name__}: {err}"
    return _state["numba"]


def compiled():
    """True where the compiled loops run; raises where ``numba`` was demanded but is missing."""
    chosen = mode()
    if chosen == "numpy":
        return False
    available = _numba() is not None and _state["reason"] is None
    if chosen == "numba" and not available:
        raise ValueError(f"{ENV}=numba, but {_state['reason']}")
    return available


def cpu_path():
    """One line saying which CPU path runs the per-parameter updates, and why."""
    try:
        on = compiled()
    except ValueError as err:
        return f"error: {err}"
    if on:
        return f"numba {_state['numba'].__version__} fused loops (one pass per update, 1 thread)"
    if mode() == "numpy":
        return f"NumPy twins ({ENV}=numpy)"
    return f"NumPy twins ({_state['reason']})"


def cache_folder():
    """Where synapse's compiled loops are cached unless ``$NUMBA_CACHE_DIR`` says otherwise."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "synapse", "numba")


@functools.lru_cache(maxsize=None)
def source_key():
    """A short hash of the kernels' source: each edit of any module compiles afresh."""
    digest = hashlib.sha1()
    for path in sorted(pathlib.Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return "kernels-" + digest.hexdigest()[:12]


def writable(folder):
    """True where ``folder`` exists or can be made, and a file can be written in it."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def equation(fn):
    """Declare ``fn`` an equation: plain Python on whole arrays (the NumPy twin), and compiled
    into every loop that calls it (numba's ``register_jitable``, done on first compile)."""
    _equations.append(fn)
    return fn


def _register_equations():
    if not _state["registered"]:
        from numba.extending import register_jitable
        for fn in _equations:
            register_jitable(fn)
        _state["registered"] = True


class Loop:
    """A fused CPU loop; compiled by numba on first use, cached on disk."""

    def __init__(self, fn):
        self.fn = fn                 # the Python loop itself, readable and runnable as is
        self.name = fn.__name__
        self._jit = None
        _loops.append(self)

    def jit(self):
        if self._jit is None:
            numba = _numba()
            _register_equations()
            options = dict(nogil=True, error_model="numpy")   # IEEE division, as NumPy
            users = numba.config.CACHE_DIR             # the user's NUMBA_CACHE_DIR wins
            folder = os.path.join(users or cache_folder(), source_key())
            numba.config.CACHE_DIR = folder            # the locator is chosen right here
            try:
                if not writable(folder):               # numba would fall back to the
                    raise RuntimeError("cannot cache: " + folder)   # package's __pycache__
                self._jit = numba.njit(cache=True, **options)(self.fn)
            except RuntimeError as err:     # no writable cache folder anywhere
                if "cannot cache" not in str(err):
                    raise
                self._jit = numba.njit(**options)(self.fn)
            finally:
                numba.config.CACHE_DIR = users
        return self._jit

    def __call__(self, *args):
        try:
            return self.jit()(*args)
        except Exception as err:
            if mode() == "numba" or _state["reason"] is not None:
                raise
            _state["reason"] = f"numba could not compile {self.name}: {type(err).__name__}: {err}"
            raise _Fallback from err


class _Fallback(Exception):
    """Raised once when a loop fails to compile under 'auto': the NumPy twin takes over."""


def loop(fn):
    """Decorator: declare ``fn`` a fused CPU loop (compiled lazily)."""
    return Loop(fn)


def flat_arrays(arrays):
    """1-d views of NumPy arrays of one float dtype and one shape, or None where the loop
    cannot take them as they are (another backend, mixed dtypes or shapes, a read-only array,
    a non-contiguous view of more than one dimension); the NumPy twin then runs (and raises
    NumPy's own error where the call is wrong)."""
    first = arrays[0]
    if type(first) is not np.ndarray or first.dtype not in (np.float32, np.float64):
        return None
    out = []
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != first.dtype or a.shape != first.shape \
                or not a.flags.writeable:
            return None
        if a.ndim != 1:
            if not a.flags.c_contiguous:
                return None
            a = a.reshape(-1)
        out.append(a)
    return out


def run(fused_loop, arrays, scalars=(), extra=()):
    """Run a loop on ``arrays`` (flattened), ``scalars`` (cast to the arrays' dtype, as CuPy
    casts a ``T`` scalar) and ``extra`` (passed as they are); return False where the NumPy
    twin must run instead."""
    if not compiled():
        return False
    flat = flat_arrays(arrays)
    if flat is None:
        return False
    t = flat[0].dtype.type
    try:
        fused_loop(*flat, *(t(s) for s in scalars), *extra)
    except _Fallback:
        return False
    return True
