"""The fused kernels on a real GPU against their NumPy twins (skipped where there is none)."""
import numpy as np
import pytest

import synapse_kernels as sk
import kernel_harness as h
from synapse.backend import cuda_unavailable_reason

REASON = cuda_unavailable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=str(REASON))]

SHAPES = [(1,), (7,), (1001,), (3, 5), ((1 << 20) + 3,)]


@pytest.fixture(scope="module")
def cp():
    import cupy
    return cupy


@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(h.CASES))
def test_kernel_matches_twin_on_gpu(name, dtype, strided, cp):
    for seed, shape in enumerate(SHAPES):
        h.check_case(h.CASES[name], None, dtype, shape, seed=seed, xp=cp,
                     to_numpy=cp.asnumpy, strided=strided)


def test_kernel_runs_on_cupy_not_on_the_twin(cp, monkeypatch):
    """The GPU branch launches the fused kernel: the twin's NumPy calls would fail on CuPy."""
    calls, launch = [], sk.cuda._launcher

    def recording(spec, *args):
        calls.append(spec.name)
        return launch(spec, *args)
    monkeypatch.setattr(sk.cuda, "_launcher", recording)
    x = cp.ones(8, dtype=cp.float32)
    sk.adam_si_step(x, x.copy(), cp.zeros_like(x), cp.zeros_like(x), cp.zeros_like(x),
                    cp.ones_like(x), cp.zeros_like(x), 0.5, **h.ADAM)
    sk.adam_step(x, x.copy(), cp.zeros_like(x), cp.zeros_like(x), cp.empty_like(x), **h.ADAM)
    assert calls == ["synapse_adam_si_step", "synapse_adam_step"]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_three_hundred_si_steps_match_numpy(optimizer, cp):
    """A trajectory of fused steps on a quadratic stays within float32 tolerance of NumPy."""
    got = si_trajectory(cp, optimizer)
    want = si_trajectory(np, optimizer)
    for name in ("theta", "omega"):
        diff = np.linalg.norm(cp.asnumpy(got[name]) - want[name]) / np.linalg.norm(want[name])
        assert diff < 1e-4, f"{optimizer}: {name} differs by {diff:.2e} (relative norm)"


def si_trajectory(xp, optimizer, n=10_000, steps=300):
    """SI steps on 0.5 sum a theta^2 with a penalty (c = 0.1) towards theta_ref."""
    rng = np.random.default_rng(0)
    a, theta, theta_ref, Omega = (xp.asarray(x.astype(np.float32)) for x in (
        rng.uniform(0.5, 2.0, n), rng.standard_normal(n), rng.standard_normal(n),
        rng.uniform(0, 1, n)))
    state = [xp.zeros(n, np.float32) for _ in range(2)]
    omega = xp.zeros(n, np.float32)
    for t in range(1, steps + 1):
        g = a * theta
        if optimizer == "adam":
            lr_t = 1e-3 * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            sk.adam_si_step(theta, g, *state, omega, Omega, theta_ref, 0.1, lr_t, 0.9, 0.999,
                            1e-8 * np.sqrt(1 - 0.999 ** t))
        else:
            sk.sgd_si_step(theta, g, state[0], omega, Omega, theta_ref, 0.1, 0.01, 0.9)
    return {"theta": theta, "omega": omega}
