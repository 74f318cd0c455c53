"""Shared fixtures: every backend test runs on NumPy and, where a GPU is present, on CuPy."""
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

# In CI the property tests draw the same examples every run (a red CI is then reproducible);
# locally they explore new ones each time. Either way a failure prints its example.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "gpu" in item.keywords and CUDA_REASON:
            item.add_marker(pytest.mark.skip(reason=f"no CUDA GPU: {CUDA_REASON}"))


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
