"""Optimizer updates over a flat parameter vector, plain and fused with SI.

Each update writes the change it makes into ``delta`` and applies ``theta += delta``,
so SI can integrate ``-g * delta`` whatever the optimizer.

Adam in PyTorch's form: with ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`` and
``eps_t = eps * sqrt(1 - beta2^t)`` (computed on the host),
``theta -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)`` becomes
``delta = -lr_t * m / (sqrt(v) + eps_t)``.
"""
import numpy as np

from ._dispatch import on_gpu, scratch
from .si import penalty_grad, omega_accumulate


def adam_step(theta, g, m, v, delta, lr_t, beta1, beta2, eps_t, tmp=None):
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  delta = -lr_t m / (sqrt(v) + eps_t);  theta += delta."""
    if on_gpu(theta):
        from . import cuda
        return cuda.adam_step(g, lr_t, beta1, beta2, eps_t, theta, m, v, delta)
    tmp = scratch(theta, tmp)
    m *= beta1
    np.multiply(g, 1.0 - beta1, out=tmp)
    m += tmp                                # m = b1 m + (1 - b1) g
    v *= beta2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - beta2
    v += tmp                                # v = b2 v + (1 - b2) g^2
    np.sqrt(v, out=tmp)
    tmp += eps_t
    np.divide(m, tmp, out=delta)
    delta *= -lr_t                          # delta = -lr_t m / (sqrt(v) + eps_t)
    theta += delta
    return delta


def sgd_step(theta, g, buf, delta, lr, momentum, tmp=None):
    """buf = momentum buf + g;  delta = -lr buf;  theta += delta (PyTorch's heavy-ball form)."""
    if on_gpu(theta):
        from . import cuda
        return cuda.sgd_step(g, lr, momentum, theta, buf, delta)
    if momentum:
        buf *= momentum
        buf += g
        np.multiply(buf, -lr, out=delta)
    else:
        np.multiply(g, -lr, out=delta)
    theta += delta
    return delta


def adam_si_step(theta, g, m, v, delta, omega, Omega, theta_ref, c, lr_t, beta1, beta2, eps_t,
                 tmp=None, tmp2=None):
    """One Adam step on the surrogate loss, then SI's omega from the actual change.

    gt = g + 2 c Omega (theta - theta_ref); Adam on gt; omega += -g * delta.
    ``g`` stays the task gradient without the penalty (the authors' choice, FACTS.md).
    """
    if on_gpu(theta):
        from . import cuda
        return cuda.adam_si_step(g, Omega, theta_ref, c, lr_t, beta1, beta2, eps_t,
                                 theta, m, v, omega, delta)
    tmp2 = scratch(theta, tmp2)
    gt = penalty_grad(g, Omega, theta, theta_ref, c, out=tmp2) if c else g
    adam_step(theta, gt, m, v, delta, lr_t, beta1, beta2, eps_t, tmp=tmp)
    omega_accumulate(omega, g, delta, tmp=tmp)
    return delta


def sgd_si_step(theta, g, buf, delta, omega, Omega, theta_ref, c, lr, momentum, tmp=None,
                tmp2=None):
    """SGD (with momentum) on the surrogate loss, then omega += -g * delta."""
    if on_gpu(theta):
        from . import cuda
        return cuda.sgd_si_step(g, Omega, theta_ref, c, lr, momentum, theta, buf, omega, delta)
    tmp2 = scratch(theta, tmp2)
    gt = penalty_grad(g, Omega, theta, theta_ref, c, out=tmp2) if c else g
    sgd_step(theta, gt, buf, delta, lr, momentum)
    omega_accumulate(omega, g, delta, tmp=tmp)
    return delta
