"""Central finite differences, the one numerical-gradient helper all gradient tests share."""
import numpy as np

from .backend import asnumpy, get_array_module


def numerical_grad(f, x, eps=1e-6):
    """d f / d x by central differences, perturbing x in place (float64 expected).

    .. math:: \\frac{\\partial f}{\\partial x_i} \\approx \\frac{f(x + \\epsilon e_i) -
              f(x - \\epsilon e_i)}{2 \\epsilon}
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_grad needs float64 for accuracy, got {x.dtype}")
    grad = np.zeros(x.shape)
    flat = x.reshape(-1)          # a view: perturbing it perturbs x
    for i in range(flat.size):
        old = float(flat[i])
        flat[i] = old + eps
        fp = float(f())
        flat[i] = old - eps
        fm = float(f())
        flat[i] = old
        grad.reshape(-1)[i] = (fp - fm) / (2 * eps)
    return grad


def check_layer(layer, x, rng, atol=1e-6, rtol=1e-5, train=True):
    """Compare a layer's backward with finite differences of sum(forward(x) * r).

    Checks g_x and every parameter gradient; returns the largest relative error found.
    """
    xp = get_array_module(x)
    y = layer.forward(x, train)
    r = xp.asarray(rng.standard_normal(y.shape))            # a random cotangent
    objective = lambda: float((layer.forward(x, train) * r).sum())  # noqa: E731
    for name in getattr(layer, "_param_names", []):
        getattr(layer, "g" + name)[...] = np.nan    # backward must write, not add (Layer)
    layer.forward(x, train)
    gx = layer.backward(r)
    worst = 0.0
    pairs = [("x", x, gx)] if gx is not None else []
    pairs += [(n, getattr(layer, n), getattr(layer, "g" + n))
              for n in getattr(layer, "_param_names", [])]
    for name, value, analytic in pairs:
        numeric = numerical_grad(objective, value)
        analytic = asnumpy(analytic)
        np.testing.assert_allclose(analytic, numeric, atol=atol, rtol=rtol,
                                   err_msg=f"{layer}: gradient of {name}")
        scale = np.abs(numeric).max() + 1e-12
        worst = max(worst, float(np.abs(analytic - numeric).max() / scale))
    return worst
