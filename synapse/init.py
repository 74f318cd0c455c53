"""Weight initialisers. Each draws from an explicit ``numpy.random.Generator`` on the host,
so a seed gives the same initial weights on NumPy and on CuPy.

``fan_in``/``fan_out`` follow Glorot & Bengio (2010) and He et al. (2015): for a dense
weight (in, out) they are in and out; for a conv weight (O, C, kh, kw) they are C*kh*kw and
O*kh*kw.
"""
import numpy as np


def fans(shape):
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


def glorot_uniform(shape, rng):
    """U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Keras' default, as in the authors' code)."""
    fan_in, fan_out = fans(shape)
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape)


def he_normal(shape, rng):
    """N(0, 2 / fan_in), for ReLU layers."""
    fan_in, _ = fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def he_uniform(shape, rng):
    fan_in, _ = fans(shape)
    a = np.sqrt(6.0 / fan_in)
    return rng.uniform(-a, a, size=shape)


def zeros(shape, rng):
    return np.zeros(shape)


INITIALISERS = {"glorot": glorot_uniform, "glorot_uniform": glorot_uniform,
                "he": he_normal, "he_normal": he_normal, "he_uniform": he_uniform,
                "zeros": zeros}


def get_initialiser(name, owner="layer"):
    if callable(name):
        return name
    if name not in INITIALISERS:
        raise ValueError(f"{owner}: unknown initialiser {name!r}; expected one of "
                         f"{sorted(INITIALISERS)}")
    return INITIALISERS[name]
