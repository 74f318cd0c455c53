"""Optimizer updates over a flat parameter vector, plain and fused with SI.

Each update computes the change it makes, ``d``, and applies ``theta += d``. The plain
updates also keep it in ``delta``: SI's unfused path integrates ``-g * delta`` from it,
whatever the optimizer. The fused SI updates integrate omega from ``d`` inside the pass and
keep nothing else.

Adam in PyTorch's form: with ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`` and
``eps_t = eps * sqrt(1 - beta2^t)`` (computed on the host),
``theta -= lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)`` becomes
``d = -lr_t * m / (sqrt(v) + eps_t)``.

The math is in ``equations.py`` (``adam_change``, ``sgd_change``, ``surrogate_gradient``,
``path_integral``). As in chainer's adam.py, each public function sits under its CUDA body
(a module-level spec) and its fused CPU loop (numba, ``cpu.py``), and holds the NumPy twin,
the same equations on whole arrays; host-side scalars (``1 - beta1``, ``2 c``) are computed
once per step and passed in.
"""
from . import cpu
from ._dispatch import on_gpu
from .cuda import Elementwise
from .equations import PREAMBLE, adam_change, path_integral, sgd_change, surrogate_gradient

ADAM_SCALARS = "T lr_t, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T eps_t"


def adam_scalars(lr_t, beta1, beta2, eps_t):
    """The host-side scalars of every Adam kernel, in ``ADAM_SCALARS``' order."""
    return lr_t, beta1, 1.0 - beta1, beta2, 1.0 - beta2, eps_t


ADAM_STEP = Elementwise(
    "synapse_adam_step", "T g, " + ADAM_SCALARS, "T theta, T m, T v, T delta",
    """
    T d = adam_change(m, v, g, lr_t, beta1, one_minus_beta1, beta2, one_minus_beta2, eps_t);
    theta += d;
    delta = d;
    """, PREAMBLE)


@cpu.loop
def adam_step_loop(theta, m, v, delta, g, lr_t, beta1, one_minus_beta1, beta2, one_minus_beta2,
                   eps_t):
    for i in range(theta.size):
        mi, vi, d = adam_change(m[i], v[i], g[i], lr_t, beta1, one_minus_beta1, beta2,
                                one_minus_beta2, eps_t)
        m[i], v[i] = mi, vi
        theta[i] += d
        delta[i] = d


def adam_step(theta, g, m, v, delta, lr_t, beta1, beta2, eps_t):
    """One Adam step, in place: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
    ``d = -lr_t m / (sqrt(v) + eps_t)``, ``theta += d``; the change kept in ``delta``.
    Returns ``delta``."""
    scalars = adam_scalars(lr_t, beta1, beta2, eps_t)
    if on_gpu(theta):
        ADAM_STEP(g, *scalars, theta, m, v, delta)
    elif not cpu.run(adam_step_loop, (theta, m, v, delta, g), scalars):
        m[...], v[...], delta[...] = adam_change(m, v, g, *scalars)
        theta += delta
    return delta


SGD_STEP = Elementwise(
    "synapse_sgd_step", "T g, T lr, T momentum", "T theta, T buf, T delta",
    """
    T d = sgd_change(buf, g, lr, momentum);
    theta += d;
    delta = d;
    """, PREAMBLE)


@cpu.loop
def sgd_step_loop(theta, buf, delta, g, lr, momentum):
    for i in range(theta.size):
        b, d = sgd_change(buf[i], g[i], lr, momentum)
        buf[i] = b
        theta[i] += d
        delta[i] = d


def sgd_step(theta, g, buf, delta, lr, momentum):
    """One SGD step, in place (PyTorch's heavy ball): ``buf = momentum buf + g``,
    ``d = -lr buf`` (``-lr g`` without momentum, buf untouched), ``theta += d``; the change
    kept in ``delta``. Returns ``delta``."""
    if on_gpu(theta):
        SGD_STEP(g, lr, momentum, theta, buf, delta)
    elif not cpu.run(sgd_step_loop, (theta, buf, delta, g), (lr, momentum)):
        buf[...], delta[...] = sgd_change(buf, g, lr, momentum)
        theta += delta
    return delta


ADAM_SI_STEP = Elementwise(
    "synapse_adam_si_step", "T g, T Omega, T theta_ref, T two_c, " + ADAM_SCALARS,
    "T theta, T m, T v, T omega",
    """
    T gt = surrogate_gradient(g, Omega, theta, theta_ref, two_c);   // Eq. 1
    T d = adam_change(m, v, gt, lr_t, beta1, one_minus_beta1, beta2, one_minus_beta2, eps_t);
    theta += d;
    omega = path_integral(omega, g, d);           // Eq. 2-3, with the task gradient g
    """, PREAMBLE)


@cpu.loop
def adam_si_step_loop(theta, m, v, omega, g, Omega, theta_ref, two_c, lr_t, beta1,
                      one_minus_beta1, beta2, one_minus_beta2, eps_t):
    for i in range(theta.size):
        gi, ti = g[i], theta[i]
        gt = surrogate_gradient(gi, Omega[i], ti, theta_ref[i], two_c)          # Eq. 1
        mi, vi, d = adam_change(m[i], v[i], gt, lr_t, beta1, one_minus_beta1, beta2,
                                one_minus_beta2, eps_t)
        m[i], v[i] = mi, vi
        theta[i] = ti + d
        omega[i] = path_integral(omega[i], gi, d)                             # Eq. 2-3


def adam_si_step(theta, g, m, v, omega, Omega, theta_ref, c, lr_t, beta1, beta2, eps_t):
    """One Adam step on the surrogate loss, then SI's omega from the actual change.

    gt = g + 2 c Omega (theta - theta_ref) (Eq. 1); Adam on gt, change d; omega += -g * d
    (Eq. 2-3). ``g`` stays the task gradient without the penalty, as in the authors' code
    (github.com/ganguli-lab/pathint: ``unreg_grads`` in ``pathint/optimizers.py``, used by
    the path-integral protocol in ``pathint/protocols.py``).
    """
    scalars = adam_scalars(lr_t, beta1, beta2, eps_t)
    if on_gpu(theta):
        ADAM_SI_STEP(g, Omega, theta_ref, 2.0 * c, *scalars, theta, m, v, omega)
    elif not cpu.run(adam_si_step_loop, (theta, m, v, omega, g, Omega, theta_ref),
                     (2.0 * c, *scalars)):
        gt = surrogate_gradient(g, Omega, theta, theta_ref, 2.0 * c)
        m[...], v[...], d = adam_change(m, v, gt, *scalars)
        theta += d
        omega[...] = path_integral(omega, g, d)


SGD_SI_STEP = Elementwise(
    "synapse_sgd_si_step", "T g, T Omega, T theta_ref, T two_c, T lr, T momentum",
    "T theta, T buf, T omega",
    """
    T gt = surrogate_gradient(g, Omega, theta, theta_ref, two_c);   // Eq. 1
    T d = sgd_change(buf, gt, lr, momentum);
    theta += d;
    omega = path_integral(omega, g, d);           // Eq. 2-3, with the task gradient g
    """, PREAMBLE)


@cpu.loop
def sgd_si_step_loop(theta, buf, omega, g, Omega, theta_ref, two_c, lr, momentum):
    for i in range(theta.size):
        gi, ti = g[i], theta[i]
        gt = surrogate_gradient(gi, Omega[i], ti, theta_ref[i], two_c)          # Eq. 1
        b, d = sgd_change(buf[i], gt, lr, momentum)
        buf[i] = b
        theta[i] = ti + d
        omega[i] = path_integral(omega[i], gi, d)                             # Eq. 2-3


def sgd_si_step(theta, g, buf, omega, Omega, theta_ref, c, lr, momentum):
    """SGD (heavy ball) on the surrogate loss, change d, then omega += -g * d (Eq. 1-3)."""
    if on_gpu(theta):
        SGD_SI_STEP(g, Omega, theta_ref, 2.0 * c, lr, momentum, theta, buf, omega)
    elif not cpu.run(sgd_si_step_loop, (theta, buf, omega, g, Omega, theta_ref),
                     (2.0 * c, lr, momentum)):
        gt = surrogate_gradient(g, Omega, theta, theta_ref, 2.0 * c)
        buf[...], d = sgd_change(buf, gt, lr, momentum)
        theta += d
        omega[...] = path_integral(omega, g, d)
