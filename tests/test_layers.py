"""Every layer's backward pass against central finite differences, in float64."""
import numpy as np
from hypothesis import given, settings, strategies as st, HealthCheck

from synapse.gradcheck import check_layer, numerical_grad
from synapse.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from synapse.losses import softmax_cross_entropy
from synapse.model import Sequential

SETTINGS = dict(max_examples=15, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def bound(layer, device, seed=0):
    """A layer with its parameters allocated (float64), as if inside a model."""
    Sequential([layer], seed=seed, device=device, dtype=np.float64)
    layer.needs_gx = True
    # random, non-zero parameters (biases start at zero otherwise)
    rng = np.random.default_rng(seed + 7)
    for name in getattr(layer, "_param_names", []):
        p = getattr(layer, name)
        p[...] = layer.xp_of(p).asarray(rng.standard_normal(p.shape) * 0.5)
    return layer


def away_from_zero(xp, rng, shape, gap=0.05):
    """Random inputs with |x| >= gap, so no ReLU kink lies within a finite-difference step."""
    x = rng.standard_normal(shape)
    x = np.sign(x) * (np.abs(x) + gap)
    return xp.asarray(x)


@settings(**SETTINGS)
@given(n=st.integers(1, 4), i=st.integers(1, 6), o=st.integers(1, 5), seed=st.integers(0, 99))
def test_dense_gradients(device, xp, n, i, o, seed):
    rng = np.random.default_rng(seed)
    layer = bound(Dense(i, o), device, seed)
    check_layer(layer, xp.asarray(rng.standard_normal((n, i))), rng)


@settings(**SETTINGS)
@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=4), seed=st.integers(0, 99))
def test_relu_gradient(xp, shape, seed):
    rng = np.random.default_rng(seed)
    check_layer(ReLU(), away_from_zero(xp, rng, tuple(shape)), rng)


@settings(**SETTINGS)
@given(n=st.integers(1, 2), c=st.integers(1, 3), o=st.integers(1, 3), hw=st.integers(3, 6),
       k=st.integers(1, 3), stride=st.integers(1, 2), pad=st.integers(0, 1), seed=st.integers(0, 99))
def test_conv2d_gradients(device, xp, n, c, o, hw, k, stride, pad, seed):
    rng = np.random.default_rng(seed)
    layer = bound(Conv2D(c, o, k, stride=stride, padding=pad), device, seed)
    check_layer(layer, xp.asarray(rng.standard_normal((n, c, hw, hw))), rng)


@settings(**SETTINGS)
@given(n=st.integers(1, 2), c=st.integers(1, 3), hw=st.integers(2, 6), k=st.integers(1, 3),
       stride=st.integers(1, 3), seed=st.integers(0, 99))
def test_maxpool_gradient(xp, n, c, hw, k, stride, seed):
    if k > hw:
        return
    rng = np.random.default_rng(seed)
    # distinct values spaced well apart: no ties, so the arg-max is stable under +-eps
    x = rng.permutation(n * c * hw * hw).reshape(n, c, hw, hw) * 0.1
    check_layer(MaxPool2D(k, stride), xp.asarray(x.astype(np.float64)), rng)


def test_maxpool_forward_matches_naive(rng):
    x = rng.standard_normal((2, 3, 5, 5))
    y = MaxPool2D(2).forward(x)
    naive = np.array([[[[x[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max() for j in range(2)]
                        for i in range(2)] for c in range(3)] for n in range(2)])
    np.testing.assert_array_equal(y, naive)


def test_maxpool_gives_a_tied_window_to_its_first_maximum():
    """As PyTorch (and argmax): in a window of equal values the first one gets the gradient;
    ties are common after a ReLU (windows of zeros)."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 2] = x[0, 0, 2, 1] = 1.0
    pool = MaxPool2D(2, stride=1)
    np.testing.assert_array_equal(pool.forward(x)[0, 0], [[0.0, 1.0], [1.0, 1.0]])
    gx = pool.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))[0, 0]
    np.testing.assert_array_equal(gx, [[1.0, 0.0, 0.0], [0.0, 0.0, 2.0 + 4.0], [0.0, 3.0, 0.0]])


def test_conv_and_pool_buffers_follow_the_batch_size(rng):
    """The layers reuse their column and gradient buffers between steps; a new batch size
    (training batch, then a last partial batch, then again) gives what fresh layers give."""
    layer, pool = bound(Conv2D(2, 3, 3, padding=1), "cpu"), MaxPool2D(2)
    for n in (4, 3, 4):
        x, r = rng.standard_normal((n, 2, 6, 6)), rng.standard_normal((n, 3, 3, 3))
        fresh, fresh_pool = bound(Conv2D(2, 3, 3, padding=1), "cpu"), MaxPool2D(2)
        layer.gW[...] = 0
        y, y_fresh = pool.forward(layer.forward(x)), fresh_pool.forward(fresh.forward(x))
        np.testing.assert_array_equal(y, y_fresh)
        np.testing.assert_array_equal(layer.backward(pool.backward(r)),
                                      fresh.backward(fresh_pool.backward(r)))
        np.testing.assert_array_equal(layer.gW, fresh.gW)


def test_conv_forward_matches_naive(rng):
    layer = bound(Conv2D(2, 3, 3, stride=2, padding=1), "cpu")
    x = rng.standard_normal((2, 2, 5, 5))
    y = layer.forward(x)
    xp_ = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    naive = np.zeros((2, 3, 3, 3))
    for n in range(2):
        for o in range(3):
            for i in range(3):
                for j in range(3):
                    naive[n, o, i, j] = (xp_[n, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
                                         * layer.W[o]).sum() + layer.b[o]
    np.testing.assert_allclose(y, naive, rtol=1e-12, atol=1e-12)


def test_flatten_roundtrip(xp, rng):
    x = xp.asarray(rng.standard_normal((2, 3, 4, 5)))
    layer = Flatten()
    assert layer.forward(x).shape == (2, 60)
    assert layer.backward(xp.ones((2, 60))).shape == (2, 3, 4, 5)


def test_dropout_train_and_eval(device, xp):
    layer = Dropout(0.5)
    Sequential([Dense(4, 4), layer], seed=3, device=device, dtype=np.float64)
    x = xp.ones((200, 50))
    y = layer.forward(x, train=True)
    kept = float((y != 0).mean())
    assert 0.4 < kept < 0.6                       # about half kept
    assert set(np.unique(np.asarray(y.get() if hasattr(y, "get") else y))) <= {0.0, 2.0}
    g = layer.backward(xp.ones_like(x))
    assert bool((g == y).all())                   # same mask and scale on the way back
    assert layer.forward(x, train=False) is x     # identity in eval mode


@settings(**SETTINGS)
@given(n=st.integers(1, 5), k=st.integers(2, 6), seed=st.integers(0, 99), masked=st.booleans())
def test_softmax_cross_entropy_gradient(xp, n, k, seed, masked):
    rng = np.random.default_rng(seed)
    active = sorted(rng.choice(k, size=rng.integers(1, k + 1), replace=False).tolist()) \
        if masked else None
    units = active if masked else list(range(k))
    z = xp.asarray(rng.standard_normal((n, k)) * 3)
    y = xp.asarray(rng.choice(units, size=n))
    loss, g = softmax_cross_entropy(z, y, active)
    numeric = numerical_grad(lambda: softmax_cross_entropy(z, y, active)[0], z)
    np.testing.assert_allclose(np.asarray(g.get() if hasattr(g, "get") else g), numeric,
                               atol=1e-7, rtol=1e-6)
    if masked:   # inactive logits get no gradient and do not change the loss
        inactive = [u for u in range(k) if u not in active]
        assert bool((g[:, inactive] == 0).all())


def test_softmax_cross_entropy_is_stable_and_mean():
    z = np.array([[1000.0, 0.0], [0.0, 1000.0]])
    loss, _ = softmax_cross_entropy(z, np.array([0, 0]))
    assert np.isfinite(loss) and abs(float(loss) - 500.0) < 1e-9   # (0 + 1000) / 2


def test_model_gradient_end_to_end(device, rng):
    """The whole network's backward against finite differences of the mean loss (CPU), and
    the same gradient computed on the requested backend."""
    from synapse.backend import asnumpy
    model = Sequential([Conv2D(1, 2, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(),
                        Dense(8, 3)], seed=1, dtype=np.float64, input_shape=(1, 4, 4))
    x = rng.standard_normal((3, 16))
    y = np.array([0, 2, 1])
    model.loss_and_grad(x, y)
    analytic = model.params.grad.copy()
    numeric = numerical_grad(lambda: softmax_cross_entropy(model.forward(x), y)[0],
                             model.params.theta)
    np.testing.assert_allclose(analytic, numeric, atol=1e-6, rtol=1e-5)
    model.to(device)
    model.loss_and_grad(x, y)
    np.testing.assert_allclose(asnumpy(model.params.grad), analytic, atol=1e-10, rtol=1e-8)
