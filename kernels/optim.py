"""Optimizer updates over a flat parameter vector, plain and fused with SI.

Each update writes the change it makes into ``delta`` and applies ``theta += delta``,
so SI can integrate ``-g * delta`` whatever the optimizer.

Adam in PyTorch's form: with ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`` and
``eps_t = eps * sqrt(1 - beta2^t)`` (computed on the host),
``theta -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)`` becomes
``delta = -lr_t * m / (sqrt(v) + eps_t)``.

As in chainer's adam.py, each CUDA body sits above its NumPy twin, with the same body as a
fused CPU loop (numba, ``cpu.py``) between them; host-side scalars (``1 - beta1``, ``2 c``)
are computed once per step and passed in. The loops group their products as the twins do
(``(1 - b2) (g g)``, ``-lr_t (m / ...)``), so on the engine's float scalars the two CPU paths
give the same bits.
"""
import numpy as np

from . import cpu
from ._dispatch import on_gpu, scratch
from .cuda import Elementwise
from .si import penalty_grad, omega_accumulate

ADAM_SCALARS = "T lr_t, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T eps_t"

ADAM_STEP = Elementwise(
    "synapse_adam_step", "T g, " + ADAM_SCALARS, "T theta, T m, T v, T delta",
    """
    m = beta1 * m + one_minus_beta1 * g;          // m = b1 m + (1 - b1) g
    v = beta2 * v + one_minus_beta2 * g * g;      // v = b2 v + (1 - b2) g^2
    delta = -lr_t * m / (sqrt(v) + eps_t);        // the step Adam takes
    theta += delta;
    """)


@cpu.loop
def adam_step_loop(theta, m, v, delta, g, lr_t, beta1, one_minus_beta1, beta2, one_minus_beta2,
                   eps_t):
    for i in range(theta.size):
        gi = g[i]
        mi = beta1 * m[i] + one_minus_beta1 * gi              # m = b1 m + (1 - b1) g
        vi = beta2 * v[i] + one_minus_beta2 * (gi * gi)       # v = b2 v + (1 - b2) g^2
        d = -lr_t * (mi / (np.sqrt(vi) + eps_t))              # the step Adam takes
        m[i], v[i], delta[i] = mi, vi, d
        theta[i] += d


def adam_step(theta, g, m, v, delta, lr_t, beta1, beta2, eps_t, tmp=None):
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  delta = -lr_t m / (sqrt(v) + eps_t);  theta += delta."""
    if on_gpu(theta):
        ADAM_STEP(g, lr_t, beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps_t, theta, m, v, delta)
        return delta
    if cpu.run(adam_step_loop, (theta, m, v, delta, g),
               (lr_t, beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps_t)):
        return delta
    # NumPy twin
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


SGD_STEP = Elementwise(
    "synapse_sgd_step", "T g, T lr, T momentum", "T theta, T buf, T delta",
    """
    if (momentum != 0) {
        buf = momentum * buf + g;                 // heavy ball: buf = mu buf + g
        delta = -lr * buf;
    } else {
        delta = -lr * g;                          // plain SGD leaves buf alone
    }
    theta += delta;
    """)


@cpu.loop
def sgd_step_loop(theta, buf, delta, g, lr, momentum):
    for i in range(theta.size):
        if momentum != 0:
            b = momentum * buf[i] + g[i]              # heavy ball: buf = mu buf + g
            buf[i] = b
            d = -lr * b
        else:
            d = -lr * g[i]                            # plain SGD leaves buf alone
        delta[i] = d
        theta[i] += d


def sgd_step(theta, g, buf, delta, lr, momentum, tmp=None):
    """buf = momentum buf + g;  delta = -lr buf;  theta += delta (PyTorch's heavy-ball form)."""
    if on_gpu(theta):
        buf = scratch(theta, buf)  # untouched when momentum == 0, but CuPy needs an array
        SGD_STEP(g, lr, momentum, theta, buf, delta)
        return delta
    if cpu.run(sgd_step_loop, (theta, scratch(theta, buf), delta, g), (lr, momentum)):
        return delta
    # NumPy twin
    if momentum:
        buf *= momentum
        buf += g
        np.multiply(buf, -lr, out=delta)
    else:
        np.multiply(g, -lr, out=delta)
    theta += delta
    return delta


ADAM_SI_STEP = Elementwise(
    "synapse_adam_si_step", "T g, T Omega, T theta_ref, T two_c, " + ADAM_SCALARS,
    "T theta, T m, T v, T omega, T delta",
    """
    T gt = g + two_c * Omega * (theta - theta_ref);  // Eq. 1: gradient of the surrogate loss
    m = beta1 * m + one_minus_beta1 * gt;            // Adam on gt
    v = beta2 * v + one_minus_beta2 * gt * gt;
    delta = -lr_t * m / (sqrt(v) + eps_t);
    theta += delta;
    omega -= g * delta;                              // Eq. 2-3, with the task gradient g
    """)


@cpu.loop
def adam_si_step_loop(theta, m, v, omega, delta, g, Omega, theta_ref, two_c, lr_t, beta1,
                      one_minus_beta1, beta2, one_minus_beta2, eps_t):
    for i in range(theta.size):
        gi, ti = g[i], theta[i]
        gt = gi + two_c * (Omega[i] * (ti - theta_ref[i]))  # Eq. 1: surrogate gradient
        mi = beta1 * m[i] + one_minus_beta1 * gt            # Adam on gt
        vi = beta2 * v[i] + one_minus_beta2 * (gt * gt)
        d = -lr_t * (mi / (np.sqrt(vi) + eps_t))
        m[i], v[i], delta[i] = mi, vi, d
        theta[i] = ti + d
        omega[i] -= gi * d                                  # Eq. 2-3, with the task gradient g


def adam_si_step(theta, g, m, v, delta, omega, Omega, theta_ref, c, lr_t, beta1, beta2, eps_t,
                 tmp=None, tmp2=None):
    """One Adam step on the surrogate loss, then SI's omega from the actual change.

    gt = g + 2 c Omega (theta - theta_ref); Adam on gt; omega += -g * delta.
    ``g`` stays the task gradient without the penalty, as in the authors' code
    (github.com/ganguli-lab/pathint: ``unreg_grads`` in ``pathint/optimizers.py``, used by
    the path-integral protocol in ``pathint/protocols.py``).
    """
    if on_gpu(theta):
        ADAM_SI_STEP(g, Omega, theta_ref, 2.0 * c, lr_t, beta1, 1.0 - beta1, beta2,
                     1.0 - beta2, eps_t, theta, m, v, omega, delta)
        return delta
    if cpu.run(adam_si_step_loop, (theta, m, v, omega, delta, g, Omega, theta_ref),
               (2.0 * c, lr_t, beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps_t)):
        return delta
    # NumPy twin
    gt = penalty_grad(g, Omega, theta, theta_ref, c, out=scratch(theta, tmp2)) if c else g
    adam_step(theta, gt, m, v, delta, lr_t, beta1, beta2, eps_t, tmp=tmp)
    omega_accumulate(omega, g, delta, tmp=tmp)
    return delta


SGD_SI_STEP = Elementwise(
    "synapse_sgd_si_step", "T g, T Omega, T theta_ref, T two_c, T lr, T momentum",
    "T theta, T buf, T omega, T delta",
    """
    T gt = g + two_c * Omega * (theta - theta_ref);  // Eq. 1: gradient of the surrogate loss
    if (momentum != 0) {
        buf = momentum * buf + gt;                   // SGD with momentum on gt
        delta = -lr * buf;
    } else {
        delta = -lr * gt;
    }
    theta += delta;
    omega -= g * delta;                              // Eq. 2-3, with the task gradient g
    """)


@cpu.loop
def sgd_si_step_loop(theta, buf, omega, delta, g, Omega, theta_ref, two_c, lr, momentum):
    for i in range(theta.size):
        gi, ti = g[i], theta[i]
        gt = gi + two_c * (Omega[i] * (ti - theta_ref[i]))  # Eq. 1: surrogate gradient
        if momentum != 0:
            b = momentum * buf[i] + gt                      # SGD with momentum on gt
            buf[i] = b
            d = -lr * b
        else:
            d = -lr * gt
        delta[i] = d
        theta[i] = ti + d
        omega[i] -= gi * d                                  # Eq. 2-3, with the task gradient g


def sgd_si_step(theta, g, buf, delta, omega, Omega, theta_ref, c, lr, momentum, tmp=None,
                tmp2=None):
    """SGD (with momentum) on the surrogate loss, then omega += -g * delta."""
    if on_gpu(theta):
        buf = scratch(theta, buf)  # untouched when momentum == 0
        SGD_SI_STEP(g, Omega, theta_ref, 2.0 * c, lr, momentum, theta, buf, omega, delta)
        return delta
    if cpu.run(sgd_si_step_loop, (theta, scratch(theta, buf), omega, delta, g, Omega, theta_ref),
               (2.0 * c, lr, momentum)):
        return delta
    # NumPy twin
    gt = penalty_grad(g, Omega, theta, theta_ref, c, out=scratch(theta, tmp2)) if c else g
    sgd_step(theta, gt, buf, delta, lr, momentum)
    omega_accumulate(omega, g, delta, tmp=tmp)
    return delta
