"""Optimizer updates over a flat parameter vector, plain and fused with SI.

Each update computes the change it makes, ``d``, and applies ``theta += d``. Where the caller
passes an array ``delta`` the change is also kept there (SI's unfused path integrates ``-g *
delta`` from it, whatever the optimizer; the identity check sums it); ``delta=None`` keeps
nothing, and the fused kernel and loop write one array fewer per element, as training calls
them (the fused SI updates integrate omega from ``d`` inside the pass and never need it kept).

Adam in PyTorch's form: with ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`` and
``eps_t = eps * sqrt(1 - beta2^t)`` (computed on the host),
``theta -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)`` becomes
``d = -lr_t * m / (sqrt(v) + eps_t)``.

As in chainer's adam.py, each CUDA body sits above its NumPy twin, with the same body as a
fused CPU loop (numba, ``cpu.py``) between them; host-side scalars (``1 - beta1``, ``2 c``)
are computed once per step and passed in. The loops group their products as the twins do
(``(1 - b2) (g g)``, ``-lr_t (m / ...)``), so on the engine's float scalars the two CPU paths
give the same bits.
"""
import numpy as np

from . import cpu
from ._dispatch import on_gpu, scratch
from .cuda import Elementwise, update
from .si import penalty_grad, omega_accumulate

ADAM_SCALARS = "T lr_t, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T eps_t"

ADAM_STEP = Elementwise(
    "synapse_adam_step", "T g, " + ADAM_SCALARS, "T theta, T m, T v",
    """
    m = beta1 * m + one_minus_beta1 * g;          // m = b1 m + (1 - b1) g
    v = beta2 * v + one_minus_beta2 * g * g;      // v = b2 v + (1 - b2) g^2
    T d = -lr_t * m / (sqrt(v) + eps_t);          // the step Adam takes
    theta += d;
    """)


@cpu.loop
def adam_step_loop(theta, m, v, delta, g, lr_t, beta1, one_minus_beta1, beta2, one_minus_beta2,
                   eps_t):
    for i in range(theta.size):
        gi = g[i]
        mi = beta1 * m[i] + one_minus_beta1 * gi              # m = b1 m + (1 - b1) g
        vi = beta2 * v[i] + one_minus_beta2 * (gi * gi)       # v = b2 v + (1 - b2) g^2
        d = -lr_t * (mi / (np.sqrt(vi) + eps_t))              # the step Adam takes
        m[i], v[i] = mi, vi
        theta[i] += d
        if delta is not None:                                 # (resolved when compiled)
            delta[i] = d


def adam_step(theta, g, m, v, delta, lr_t, beta1, beta2, eps_t, tmp=None):
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  d = -lr_t m / (sqrt(v) + eps_t);  theta += d.

    The change ``d`` is kept in ``delta`` where that is an array (None: not kept). Returns
    ``delta``."""
    if on_gpu(theta):
        update(ADAM_STEP, delta, g, lr_t, beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps_t,
               theta, m, v)
        return delta
    if cpu.run(adam_step_loop, (theta, m, v, delta, g),
               (lr_t, beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps_t)):
        return delta
    # NumPy twin
    tmp = scratch(theta, tmp)
    d = tmp if delta is None else delta     # not kept: the change goes where the denominator was
    m *= beta1
    np.multiply(g, 1.0 - beta1, out=tmp)
    m += tmp                                # m = b1 m + (1 - b1) g
    v *= beta2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - beta2
    v += tmp                                # v = b2 v + (1 - b2) g^2
    np.sqrt(v, out=tmp)
    tmp += eps_t
    np.divide(m, tmp, out=d)
    d *= -lr_t                              # d = -lr_t m / (sqrt(v) + eps_t)
    theta += d
    return delta


SGD_STEP = Elementwise(
    "synapse_sgd_step", "T g, T lr, T momentum", "T theta, T buf",
    """
    T d;
    if (momentum != 0) {
        buf = momentum * buf + g;                 // heavy ball: buf = mu buf + g
        d = -lr * buf;
    } else {
        d = -lr * g;                              // plain SGD leaves buf alone
    }
    theta += d;
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
        theta[i] += d
        if delta is not None:                         # (resolved when compiled)
            delta[i] = d


def sgd_step(theta, g, buf, delta, lr, momentum, tmp=None):
    """buf = momentum buf + g;  d = -lr buf;  theta += d (PyTorch's heavy-ball form).

    The change ``d`` is kept in ``delta`` where that is an array (None: not kept). Returns
    ``delta``."""
    if on_gpu(theta):
        buf = scratch(theta, buf)  # untouched when momentum == 0, but CuPy needs an array
        update(SGD_STEP, delta, g, lr, momentum, theta, buf)
        return delta
    if cpu.run(sgd_step_loop, (theta, scratch(theta, buf), delta, g), (lr, momentum)):
        return delta
    # NumPy twin
    d = scratch(theta, tmp) if delta is None else delta
    if momentum:
        buf *= momentum
        buf += g
        np.multiply(buf, -lr, out=d)
    else:
        np.multiply(g, -lr, out=d)
    theta += d
    return delta


ADAM_SI_STEP = Elementwise(
    "synapse_adam_si_step", "T g, T Omega, T theta_ref, T two_c, " + ADAM_SCALARS,
    "T theta, T m, T v, T omega",
    """
    T gt = g + two_c * Omega * (theta - theta_ref);  // Eq. 1: gradient of the surrogate loss
    m = beta1 * m + one_minus_beta1 * gt;            // Adam on gt
    v = beta2 * v + one_minus_beta2 * gt * gt;
    T d = -lr_t * m / (sqrt(v) + eps_t);
    theta += d;
    omega -= g * d;                                  // Eq. 2-3, with the task gradient g
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
        m[i], v[i] = mi, vi
        theta[i] = ti + d
        omega[i] -= gi * d                                  # Eq. 2-3, with the task gradient g
        if delta is not None:                               # (resolved when compiled)
            delta[i] = d


def adam_si_step(theta, g, m, v, delta, omega, Omega, theta_ref, c, lr_t, beta1, beta2, eps_t,
                 tmp=None, tmp2=None):
    """One Adam step on the surrogate loss, then SI's omega from the actual change.

    gt = g + 2 c Omega (theta - theta_ref); Adam on gt, change d; omega += -g * d.
    ``g`` stays the task gradient without the penalty, as in the authors' code
    (github.com/ganguli-lab/pathint: ``unreg_grads`` in ``pathint/optimizers.py``, used by
    the path-integral protocol in ``pathint/protocols.py``). The change is kept in ``delta``
    where that is an array (None: not kept). Returns ``delta``.
    """
    if on_gpu(theta):
        update(ADAM_SI_STEP, delta, g, Omega, theta_ref, 2.0 * c, lr_t, beta1, 1.0 - beta1,
               beta2, 1.0 - beta2, eps_t, theta, m, v, omega)
        return delta
    if cpu.run(adam_si_step_loop, (theta, m, v, omega, delta, g, Omega, theta_ref),
               (2.0 * c, lr_t, beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps_t)):
        return delta
    # NumPy twin
    tmp, tmp2 = scratch(theta, tmp), scratch(theta, tmp2)
    gt = penalty_grad(g, Omega, theta, theta_ref, c, out=tmp2) if c else g
    d = adam_step(theta, gt, m, v, tmp if delta is None else delta, lr_t, beta1, beta2, eps_t,
                  tmp=tmp)
    omega_accumulate(omega, g, d, tmp=tmp2)           # gt is spent: its buffer is free
    return delta


SGD_SI_STEP = Elementwise(
    "synapse_sgd_si_step", "T g, T Omega, T theta_ref, T two_c, T lr, T momentum",
    "T theta, T buf, T omega",
    """
    T gt = g + two_c * Omega * (theta - theta_ref);  // Eq. 1: gradient of the surrogate loss
    T d;
    if (momentum != 0) {
        buf = momentum * buf + gt;                   // SGD with momentum on gt
        d = -lr * buf;
    } else {
        d = -lr * gt;
    }
    theta += d;
    omega -= g * d;                                  // Eq. 2-3, with the task gradient g
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
        theta[i] = ti + d
        omega[i] -= gi * d                                  # Eq. 2-3, with the task gradient g
        if delta is not None:                               # (resolved when compiled)
            delta[i] = d


def sgd_si_step(theta, g, buf, delta, omega, Omega, theta_ref, c, lr, momentum, tmp=None,
                tmp2=None):
    """SGD (with momentum) on the surrogate loss, change d, then omega += -g * d; the change
    is kept in ``delta`` where that is an array (None: not kept). Returns ``delta``."""
    if on_gpu(theta):
        buf = scratch(theta, buf)  # untouched when momentum == 0
        update(SGD_SI_STEP, delta, g, Omega, theta_ref, 2.0 * c, lr, momentum, theta, buf, omega)
        return delta
    if cpu.run(sgd_si_step_loop, (theta, scratch(theta, buf), omega, delta, g, Omega, theta_ref),
               (2.0 * c, lr, momentum)):
        return delta
    # NumPy twin
    tmp, tmp2 = scratch(theta, tmp), scratch(theta, tmp2)
    gt = penalty_grad(g, Omega, theta, theta_ref, c, out=tmp2) if c else g
    d = sgd_step(theta, gt, buf, tmp if delta is None else delta, lr, momentum)
    omega_accumulate(omega, g, d, tmp=tmp2)           # gt is spent: its buffer is free
    return delta
