"""The whole SI training step on CuPy against NumPy (skipped with the reason where no GPU; also
run on the CuPy stand-in by ``python -m pytest -m standin``)."""
import numpy as np
import pytest

from synapse.backend import asnumpy
from synapse.data import load_dataset, split_tasks
from synapse.methods import make_method
from synapse.model import mlp
from synapse.optim import Adam
from synapse.train import train_tasks

pytestmark = [pytest.mark.gpu, pytest.mark.standin]


@pytest.mark.parametrize("method", [dict(name="si", c=1.0, xi=1e-3),
                                    dict(name="si", c=1.0, integrator="trapezoid"),
                                    dict(name="ewc", c=10.0, fisher_samples=50)])
def test_training_on_cupy_matches_numpy(method):
    """Two tasks of split digits (~230 steps) from the same seed on both backends: weights,
    SI state and accuracies agree to float32 tolerance."""
    tasks = split_tasks(load_dataset("digits", log=None))[:2]
    out = {}
    for device in ("cpu", "cuda"):
        model = mlp([64, 64, 64, 10], seed=0, device=device)
        kw = dict(method)
        m = make_method(kw.pop("name"), **kw)
        h = train_tasks(model, tasks, m, Adam(model.params), epochs=5, batch_size=32,
                        seed=0, progress=False)
        out[device] = (asnumpy(model.params.theta), asnumpy(m.Omega), h.R)
    (t0, O0, R0), (t1, O1, R1) = out["cpu"], out["cuda"]
    scale = np.abs(t0).max()
    assert np.abs(t1 - t0).max() <= 1e-3 * scale
    np.testing.assert_allclose(O1, O0, rtol=1e-2, atol=1e-3 * np.abs(O0).max())
    assert np.abs(R1 - R0).max() <= 0.02
