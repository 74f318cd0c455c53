"""The model container: persistence, backends, freezing, determinism and clear errors."""
import os

import numpy as np
import pytest

from synapse.backend import resolve_device
from synapse.errors import ConfigError
from synapse.layers import Conv2D, Dense
from synapse.losses import softmax_cross_entropy
from synapse.methods import SI, make_method
from synapse.model import Sequential, cnn, mlp
from synapse.optim import SGD, Adam, make_optimizer


def test_parameters_are_views_into_one_flat_vector():
    model = mlp([5, 4, 3])
    assert model.params.names == ["dense0.W", "dense0.b", "dense1.W", "dense1.b"]
    assert model.params.theta.size == 5 * 4 + 4 + 4 * 3 + 3
    model.params.theta[:] = 7
    assert (model.layers[0].W == 7).all() and (model.layers[2].b == 7).all()
    assert (model.layers[2].W == model.params["dense1.W"]).all()


def test_zero_readout_and_seeded_init():
    a, b = mlp([6, 5, 3], seed=4), mlp([6, 5, 3], seed=4)
    np.testing.assert_array_equal(a.params.theta, b.params.theta)
    assert not a.params["dense1.W"].any()                     # readout starts at zero
    assert a.params["dense0.W"].std() > 0
    assert not np.array_equal(mlp([6, 5, 3], seed=5).params.theta, a.params.theta)


@pytest.mark.parametrize("build", [lambda: mlp([12, 7, 5, 3], seed=1),
                                   lambda: cnn((1, 10, 10), 3, seed=1, widths=(2, 2, 3, 3),
                                               hidden=6, dropout=(0.0, 0.0))])
def test_backward_writes_the_gradient_whatever_was_there(build, rng):
    """Each layer's backward writes (not adds) its parameters' gradients, so a step needs no
    zeroing pass: stale NaN in the gradient vector must not leak into the next gradient."""
    model = build().train()
    model.params.theta[:] = 0.3 * rng.standard_normal(model.params.size)
    x = rng.random((4, model.n_inputs)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    model.loss_and_grad(x, y)
    fresh = model.params.grad.copy()
    assert np.count_nonzero(fresh) > fresh.size // 2
    _, g = softmax_cross_entropy(model.forward(x), y)
    model.params.grad[:] = np.nan
    model.backward(g)
    np.testing.assert_array_equal(model.params.grad, fresh)
    model.backward(g)                                         # twice: not 2 x the gradient
    np.testing.assert_array_equal(model.params.grad, fresh)


def test_save_load_roundtrip_without_pickle(tmp_path, rng):
    model = cnn((1, 12, 12), 4, seed=1, widths=(2, 2, 3, 3), hidden=8)
    model.params.theta[:] = rng.standard_normal(model.params.size)
    path = tmp_path / "model.npz"
    model.save(path, extra={"Omega": np.arange(3.0)})
    other = cnn((1, 12, 12), 4, seed=2, widths=(2, 2, 3, 3), hidden=8)
    extra = other.load(path)
    np.testing.assert_array_equal(other.params.theta, model.params.theta)
    np.testing.assert_array_equal(extra["Omega"], np.arange(3.0))
    with np.load(path, allow_pickle=False) as f:              # plain arrays only
        assert all(f[k].dtype != object for k in f.files)


def test_save_is_atomic(tmp_path, monkeypatch):
    model = mlp([3, 2])
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()

    def broken(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before                        # the old file is intact
    assert os.listdir(tmp_path) == ["m.npz"]                  # no temporary left behind


def test_load_rejects_a_different_architecture(tmp_path):
    mlp([3, 2]).save(tmp_path / "m.npz")
    with pytest.raises((KeyError, ValueError), match="dense"):
        mlp([3, 4, 2]).load(tmp_path / "m.npz")


def test_move_between_backends(device, rng):
    from synapse.backend import asnumpy
    model = mlp([4, 3, 2], seed=0, zero_readout=False)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    opt = Adam(model.params)
    model.loss_and_grad(x, np.array([0, 1, 0, 1, 1]))
    opt.step(model.params.grad)
    before, m = model.forward(x).copy(), opt.m.copy()
    model.to(device)
    opt.to_device()                                           # the optimizer state follows
    np.testing.assert_array_equal(asnumpy(opt.m), m)
    np.testing.assert_allclose(asnumpy(model.forward(x)), before, rtol=1e-6)
    model.to("cpu")
    np.testing.assert_allclose(model.forward(x), before, rtol=1e-6)


def test_freeze_all_but_readout(rng):
    model = mlp([4, 5, 3], zero_readout=False)
    model.freeze(except_names=model.readout_names())
    before = model.params.theta.copy()
    opt = Adam(model.params, lr=0.1)
    x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    for _ in range(3):
        model.loss_and_grad(x, y)
        opt.step(model.params.grad)
    moved = model.params.theta != before
    for name in model.params.names:
        assert moved[model.params.slices[name]].any() == (name in model.readout_names())


def test_optimizer_state_reset_and_restore(rng):
    model = mlp([4, 3], zero_readout=False)
    opt = Adam(model.params, lr=0.01)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    model.loss_and_grad(x, y)
    delta = opt.step(model.params.grad).copy()
    assert np.abs(delta).max() > 0
    state = opt.state_dict()
    assert state["t"] == 1 and np.abs(state["m"]).max() > 0
    opt.reset()
    assert opt.t == 0 and not opt.m.any() and not opt.v.any()
    opt.load_state_dict(state)
    np.testing.assert_array_equal(opt.m, state["m"])


def test_step_returns_the_actual_change(rng):
    for opt_cls, kw in ((Adam, {"lr": 0.01}), (SGD, {"lr": 0.1, "momentum": 0.9})):
        model = mlp([4, 3], zero_readout=False)
        opt = opt_cls(model.params, **kw)
        x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
        for _ in range(3):
            before = model.params.theta.copy()
            model.loss_and_grad(x, y)
            delta = opt.step(model.params.grad)
            np.testing.assert_allclose(model.params.theta - before, delta, rtol=1e-5, atol=1e-7)


# -- clear errors on bad input --------------------------------------------------------------
@pytest.mark.parametrize("x,match", [
    (np.zeros((2, 5), np.float32), r"dense0.*expected size 4 on axis 1, got input shape \(2, 5\)"),
    (np.zeros((2, 4), np.int64), "float array"),
    (np.zeros((2, 2, 4), np.float32), r"expected a 2-d input"),
    (np.full((2, 4), np.nan, np.float32), "NaN or Inf"),
    (np.full((2, 4), np.inf, np.float32), "NaN or Inf"),
])
def test_bad_inputs_name_the_problem(x, match):
    model = mlp([4, 3, 2])
    with pytest.raises((ValueError, TypeError), match=match):
        model.loss_and_grad(x, np.zeros(len(x), dtype=np.int64))


@pytest.mark.parametrize("y,active,match", [
    (np.array([0, 1, 1]), None, r"expected 2 labels .* got labels of shape \(3,\)"),
    (np.array([0, 5]), None, r"labels must be in \[0, 2\)"),
    (np.array([0.0, 1.0]), None, "labels must be integers"),
    (np.array([0, 1]), [1], r"labels \[0\] are not among the active units \[1\]"),
])
def test_bad_labels_name_the_problem(y, active, match):
    model = mlp([4, 2])
    with pytest.raises((ValueError, TypeError), match=match):
        model.loss_and_grad(np.zeros((2, 4), np.float32), y, active)


@pytest.mark.parametrize("build,match", [
    (lambda: Dense(4, 0), "sizes must be positive"),
    (lambda: Dense(4, 3, init="orthogonal"), "unknown initialiser 'orthogonal'"),
    (lambda: Conv2D(1, 2, 3, padding="full"), "unknown padding 'full'"),
    (lambda: Sequential([]), "at least one layer"),
    (lambda: mlp([4, 3], dtype=np.int32), "float32 or float64"),
    (lambda: resolve_device("tpu"), "unknown device 'tpu'"),
    (lambda: make_optimizer("rmsprop", mlp([2, 2]).params), "unknown optimizer 'rmsprop'"),
    (lambda: Adam(mlp([2, 2]).params, lr=-1), "lr must be"),
    (lambda: make_method("si", lam=1), "method 'si'"),
])
def test_bad_options_name_the_problem(build, match):
    with pytest.raises((ValueError, TypeError, KeyError), match=match):
        build()


def test_cuda_request_without_gpu_fails_clearly():
    from synapse.backend import cuda_unavailable_reason
    reason = cuda_unavailable_reason()
    if reason is None:
        pytest.skip("a GPU is present: nothing to refuse")
    with pytest.raises(ConfigError, match="^device: device .cuda. was requested but cannot"):
        mlp([2, 2], device="cuda")


def test_optimizer_rejects_wrong_gradient():
    model = mlp([3, 2])
    with pytest.raises(ValueError, match="gradient of shape"):
        Adam(model.params).step(np.zeros(3, np.float32))


def test_cnn_shapes_follow_the_authors_network():
    model = cnn((3, 32, 32), 10)
    kinds = [layer.kind for layer in model.layers]
    assert kinds == ["conv", "relu", "conv", "relu", "maxpool", "conv", "relu", "conv", "relu",
                     "maxpool", "dropout", "flatten", "dense", "relu", "dropout", "dense"]
    assert model.params.shapes["dense0.W"] == (64 * 6 * 6, 512)
    assert model.forward(np.zeros((2, 3 * 32 * 32), np.float32), train=False).shape == (2, 10)


def test_si_state_survives_save_and_load(tmp_path, rng):
    model = mlp([4, 3], zero_readout=False)
    si = SI(c=1.0).attach(model)
    si.Omega[...] = rng.random(si.Omega.size)
    si.omega[...] = rng.random(si.Omega.size)
    model.save(tmp_path / "m.npz", extra=si.state_dict())
    other = mlp([4, 3], seed=9)
    si2 = SI(c=1.0).attach(other)
    si2.load_state_dict(other.load(tmp_path / "m.npz"))
    for name in si.state_names:
        np.testing.assert_array_equal(getattr(si2, name), getattr(si, name))


def test_a_bad_device_names_where_it_came_from(monkeypatch):
    monkeypatch.setenv("SYNAPSE_DEVICE", "bogus")
    with pytest.raises(ConfigError, match=r"^\$SYNAPSE_DEVICE: unknown device 'bogus'"):
        mlp([2, 2])
    with pytest.raises(ConfigError, match=r"^device: unknown device 'tpu'"):
        mlp([2, 2], device="tpu")


def test_damaged_model_files_are_refused_naming_the_file(tmp_path):
    from synapse.errors import CheckpointError, DataError
    model = mlp([3, 2], zero_readout=False)
    path = tmp_path / "m.npz"
    model.save(path)
    data = path.read_bytes()
    for damaged in (data[:len(data) // 2], b"", b"\x93NUMPY garbage" * 50):
        path.write_bytes(damaged)
        with pytest.raises(CheckpointError, match=f"model file {path} ") as err:
            model.load(path)
        assert "pickle" not in str(err.value)
    model.params.theta[0] = np.nan
    with pytest.raises(DataError, match=r"not saving .*param/dense0.W holds NaN/Inf"):
        model.save(tmp_path / "nan.npz")
    assert not (tmp_path / "nan.npz").exists()
