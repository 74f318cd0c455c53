"""Shared fixtures: every backend test runs on NumPy and, where a GPU is present, on CuPy.

``python -m pytest -m standin`` runs the CUDA path without a GPU: the session imports the strict
CuPy stand-in (tests/standin/cupy) as ``cupy``, and every test on the 'cuda' device, and every
test marked ``standin``, runs on it (tests/standin/README.md says what that proves). Without
``-m standin`` the stand-in is never imported and ``standin`` tests skip.
"""
import os
import sys

import numpy as np
import pytest
from hypothesis import settings

# Test the checkout itself (kernels/ is found by synapse._kernels when not installed).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import synapse._kernels  # noqa: E402,F401  (registers synapse_kernels from kernels/ if not installed)
from synapse.backend import cuda_unavailable_reason  # noqa: E402

CUDA_REASON = cuda_unavailable_reason()
STANDIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "standin")
if CUDA_REASON is None and hasattr(sys.modules.get("cupy"), "_standin"):   # e.g. on PYTHONPATH
    CUDA_REASON = "cupy is the test stand-in (tests/standin), not a GPU"

# In CI the property tests draw the same examples every run (a red CI is then reproducible);
# locally they explore new ones each time. Either way a failure prints its example.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def standin_selected(config):
    """True when ``-m`` selects standin tests specifically: an item marked only ``standin``
    is selected and an unmarked one is not (``-m standin``, ``-m "standin or gpu"``)."""
    from _pytest.mark.expression import Expression
    expr = config.getoption("markexpr")
    if not expr:
        return False
    compiled = Expression.compile(expr)
    return (compiled.evaluate(lambda name, **kw: name == "standin")
            and not compiled.evaluate(lambda name, **kw: False))


def install_standin():
    """Import tests/standin/cupy as ``cupy`` and make synapse's backend use it."""
    import synapse.backend
    if STANDIN_DIR not in sys.path:
        sys.path.insert(0, STANDIN_DIR)
    if not hasattr(sys.modules.get("cupy"), "_standin"):
        sys.modules.pop("cupy", None)             # a real CuPy imported by synapse.backend
    import cupy
    synapse.backend._cupy = cupy
    os.environ["PYTHONPATH"] = os.pathsep.join(   # subprocesses (the CLI) import it too
        [STANDIN_DIR] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return cupy


def pytest_configure(config):
    config.standin = standin_selected(config)
    if config.standin:
        install_standin()


@pytest.hookimpl(tryfirst=True)    # before -m deselects: the 'cuda' cases join the standin run
def pytest_collection_modifyitems(config, items):
    """A ``gpu`` test skips without a GPU (in a standin session, unless marked ``standin``
    too); a ``standin``-only test skips outside a standin session. In a standin session the
    'cuda' cases of the ``device`` and ``engine`` fixtures are ``standin`` tests."""
    for item in items:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        on_cuda = "cuda" in (params.get("device"), params.get("engine"))
        if config.standin and on_cuda:
            item.add_marker(pytest.mark.standin)
        if config.standin:
            reason = None if "standin" in item.keywords else \
                "this session's cupy is the stand-in (-m standin)"
        elif "gpu" in item.keywords:
            reason = CUDA_REASON
        elif "standin" in item.keywords:
            item.add_marker(pytest.mark.skip(
                reason="runs on the CuPy stand-in: python -m pytest -m standin"))
            continue
        else:
            continue
        if reason and "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"no CUDA GPU: {reason}"))


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """'cpu', and 'cuda' where CuPy and a GPU are present (skipped with the reason otherwise)."""
    return request.param


@pytest.fixture
def xp(device):
    from synapse.backend import xp_for
    return xp_for(device)


@pytest.fixture(params=["numpy", "numba", pytest.param("cuda", marks=pytest.mark.gpu)])
def engine(request):
    """Each path the per-parameter updates take: the NumPy twins, the compiled CPU loops
    (skipped without numba) and, where a GPU is present, the CUDA kernels. Yields the device
    to build the model on, with the CPU path forced for the test."""
    from synapse_kernels import cpu
    if request.param == "numba":
        pytest.importorskip("numba", reason="numba is not installed: no compiled CPU loops")
    with cpu.path("auto" if request.param == "cuda" else request.param):
        yield "cuda" if request.param == "cuda" else "cpu"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


class Hung(BaseException):
    """Raised by ``no_hang`` in a body that blocked too long; no ``except Exception`` (nor
    ``except OSError``) in the code under test can swallow it."""


@pytest.fixture
def no_hang():
    """``with no_hang(seconds):`` fails the test instead of hanging the suite when its body
    blocks (SIGALRM interrupts even an open() of a FIFO that no writer will ever open)."""
    import contextlib
    import signal

    @contextlib.contextmanager
    def guard(seconds=10):
        def fail(signum, frame):
            raise Hung(f"still blocked after {seconds} s")
        old = signal.signal(signal.SIGALRM, fail)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    return guard
