"""Forward outputs and every gradient against PyTorch's autograd on the same weights and data.

torch is an optional test extra (pip install 'synapse-si[torch]'); without it these skip.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (optional cross-check extra)")

from synapse.backend import asnumpy  # noqa: E402
from synapse.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU  # noqa: E402
from synapse.model import Sequential, mlp  # noqa: E402
from synapse.optim import SGD, Adam  # noqa: E402

torch.set_default_dtype(torch.float64)


def torch_copy(model):
    """The same network in torch, with our weights (Dense W is (in, out); torch's is (out, in))."""
    mods = []
    for layer in model.layers:
        if isinstance(layer, Dense):
            m = torch.nn.Linear(layer.in_features, layer.out_features)
            m.weight.data = torch.tensor(asnumpy(layer.W).T.copy())
            m.bias.data = torch.tensor(asnumpy(layer.b).copy())
        elif isinstance(layer, Conv2D):
            m = torch.nn.Conv2d(layer.in_channels, layer.out_channels, (layer.kh, layer.kw),
                                stride=layer.stride, padding=layer.pad)
            m.weight.data = torch.tensor(asnumpy(layer.W).copy())
            m.bias.data = torch.tensor(asnumpy(layer.b).copy())
        elif isinstance(layer, ReLU):
            m = torch.nn.ReLU()
        elif isinstance(layer, MaxPool2D):
            m = torch.nn.MaxPool2d(layer.k, layer.stride)
        elif isinstance(layer, Flatten):
            m = torch.nn.Flatten()
        elif isinstance(layer, Dropout):
            m = torch.nn.Identity()       # compared in eval mode
        mods.append(m)
    return torch.nn.Sequential(*mods)


def torch_grads(tmodel, model):
    """Torch's gradients in our layout, concatenated like model.params.grad."""
    out = []
    tparams = [m for m in tmodel if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    for m in tparams:
        w = m.weight.grad.numpy()
        out += [w.T.reshape(-1) if isinstance(m, torch.nn.Linear) else w.reshape(-1),
                m.bias.grad.numpy().reshape(-1)]
    return np.concatenate(out)


def compare(model, x, y, input_shape=None):
    model.eval()
    tmodel = torch_copy(model)
    tx = torch.tensor(x.reshape(-1, *input_shape) if input_shape else x)
    tlogits = tmodel(tx)
    tloss = torch.nn.functional.cross_entropy(tlogits, torch.tensor(y))
    tloss.backward()
    loss = model.loss_and_grad(x, y)
    np.testing.assert_allclose(asnumpy(model.forward(x)), tlogits.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(float(asnumpy(loss)), tloss.item(), rtol=1e-10)
    np.testing.assert_allclose(asnumpy(model.params.grad), torch_grads(tmodel, model),
                               rtol=1e-8, atol=1e-12)


def test_mlp_matches_torch(device, rng):
    model = mlp([20, 16, 12, 5], seed=0, device=device, dtype=np.float64, zero_readout=False)
    x, y = rng.standard_normal((8, 20)), rng.integers(0, 5, 8)
    compare(model, x, y)


def test_cnn_matches_torch(device, rng):
    model = Sequential([Conv2D(3, 4, 3, padding=1), ReLU(), Conv2D(4, 5, 3, stride=2), ReLU(),
                        MaxPool2D(2), Dropout(0.5), Flatten(), Dense(20, 4)],
                       seed=2, device=device, dtype=np.float64, input_shape=(3, 9, 9))
    x, y = rng.standard_normal((4, 3 * 81)), rng.integers(0, 4, 4)
    compare(model, x, y, input_shape=(3, 9, 9))


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_optimizer_trajectory_matches_torch(name, rng):
    """Ten steps of Adam / SGD with momentum give the same weights as torch.optim."""
    model = mlp([6, 5, 3], seed=0, dtype=np.float64, zero_readout=False)
    tmodel = torch_copy(model)
    if name == "adam":
        opt, topt = Adam(model.params, lr=0.01), torch.optim.Adam(tmodel.parameters(), lr=0.01)
    else:
        opt = SGD(model.params, lr=0.1, momentum=0.9)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    x, y = rng.standard_normal((10, 6)), rng.integers(0, 3, 10)
    for _ in range(10):
        model.loss_and_grad(x, y)
        opt.step(model.params.grad)
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(torch.tensor(x)), torch.tensor(y)).backward()
        topt.step()
    ours = model.params.theta
    theirs = np.concatenate([p.detach().numpy().T.reshape(-1) for p in tmodel.parameters()])
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
