"""The whole SI training loop with every kernel call running the CUDA bodies (compiled with
g++ for the CPU) instead of the NumPy twins: it must follow the twins' trajectory.

This is the training-level check of the fused kernels on a machine without a GPU; on a GPU
``tests/test_gpu_engine.py`` runs the same comparison on CuPy.
"""
import shutil

import numpy as np
import pytest

from synapse.data import load_dataset, split_tasks
from synapse.methods import make_method
from synapse.model import mlp
from synapse.optim import SGD, Adam
from synapse.train import train_tasks
import kernel_harness as harness

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def train(tasks, method, optimizer, launcher=None):
    model = mlp([64, 32, 32, 10], seed=0, dtype=np.float64)
    m = make_method(**method)
    opt = optimizer(model.params)
    if launcher is None:
        h = train_tasks(model, tasks, m, opt, epochs=2, batch_size=32, seed=0, progress=False)
    else:
        with harness.emulate_gpu(launcher):
            h = train_tasks(model, tasks, m, opt, epochs=2, batch_size=32, seed=0,
                            progress=False)
    return model.params.theta, m, h


@pytest.mark.parametrize("method,optimizer", [
    (dict(name="si", c=1.0, xi=1e-3), Adam),
    (dict(name="si", c=0.5, integrator="trapezoid"), Adam),
    (dict(name="si", c=1.0), lambda p: SGD(p, lr=0.05, momentum=0.9)),
    (dict(name="ewc", c=5.0, fisher_samples=20), Adam),
], ids=["si-adam-fused", "si-trapezoid", "si-sgd-momentum-fused", "ewc-penalty"])
def test_kernel_bodies_follow_the_twins_through_training(method, optimizer, tmp_path):
    tasks = split_tasks(load_dataset("digits", log=None))[:3]
    launcher = harness.CpuLauncher(tmp_path)
    theta_k, m_k, h_k = train(tasks, method, optimizer, launcher)
    theta_t, m_t, h_t = train(tasks, method, optimizer)
    assert launcher.seen, "no kernel ran: the GPU branch was not taken"
    np.testing.assert_allclose(theta_k, theta_t, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(m_k.Omega, m_t.Omega, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(h_k.R, h_t.R)
    assert [e["penalty"] for e in h_k.epochs] == pytest.approx([e["penalty"] for e in h_t.epochs],
                                                                rel=1e-9)
