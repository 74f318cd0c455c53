"""Synaptic Intelligence bookkeeping, one fused pass per equation.

Symbols follow Zenke, Poole & Ganguli (2017): ``omega`` the running importance,
``Omega`` the consolidated importance, ``theta_ref`` the reference weights (theta tilde),
``xi`` the damping, ``c`` the strength of the surrogate loss.

The math itself is in ``equations.py``. Here each public function sits under the two fused
forms that call it: a CUDA body (a module-level spec, launched when the arrays are CuPy
arrays) and a CPU loop (compiled by numba, ``cpu.py``); inside the function, the NumPy twin
applies the same equation to whole arrays (the reference, and the fallback where numba is
unavailable).
"""
import numpy as np

from . import cpu
from ._dispatch import on_gpu
from .cuda import Elementwise, Reduction
from .equations import (PREAMBLE, consolidated, path_integral, path_integral_trapezoid,
                        penalty_term, surrogate_gradient)


OMEGA_ACCUMULATE = Elementwise(
    "synapse_omega_accumulate", "T g, T delta", "T omega",
    "omega = path_integral(omega, g, delta);", PREAMBLE)


@cpu.loop
def omega_accumulate_loop(omega, g, delta):
    for i in range(omega.size):
        omega[i] = path_integral(omega[i], g[i], delta[i])


def omega_accumulate(omega, g, delta):
    """Eq. 2-3, in place: ``omega += -g * delta``. Returns ``omega``.

    ``g`` is the gradient of the task loss alone (no penalty); ``delta`` the change the
    optimizer actually made.
    """
    if on_gpu(omega):
        OMEGA_ACCUMULATE(g, delta, omega)
    elif not cpu.run(omega_accumulate_loop, (omega, g, delta)):
        omega[...] = path_integral(omega, g, delta)
    return omega


OMEGA_ACCUMULATE_TRAPEZOID = Elementwise(
    "synapse_omega_accumulate_trapezoid", "T g, T delta", "T omega, T delta_prev",
    """
    omega = path_integral_trapezoid(omega, g, delta_prev, delta);
    delta_prev = delta;                     // g(t+1) closes this step on the next call
    """, PREAMBLE)


@cpu.loop
def omega_accumulate_trapezoid_loop(omega, delta_prev, g, delta):
    for i in range(omega.size):
        d = delta[i]
        omega[i] = path_integral_trapezoid(omega[i], g[i], delta_prev[i], d)
        delta_prev[i] = d


def omega_accumulate_trapezoid(omega, g, delta_prev, delta):
    """Eq. 2-3 by the trapezoidal rule: the step t -> t+1 contributes
    ``-0.5 (g(t) + g(t+1)) delta(t)``, one gradient per step.

    ``g`` is the gradient at theta(t); it closes the previous step's term and opens this
    one's: ``omega += -0.5 * g * (delta_prev + delta)``. Afterwards ``delta_prev`` holds
    ``delta``. Close a run with ``delta=0`` and the gradient at the final weights.
    """
    if on_gpu(omega):
        OMEGA_ACCUMULATE_TRAPEZOID(g, delta, omega, delta_prev)
    elif not cpu.run(omega_accumulate_trapezoid_loop, (omega, delta_prev, g, delta)):
        omega[...] = path_integral_trapezoid(omega, g, delta_prev, delta)
        delta_prev[...] = delta
    return omega


PENALTY_GRAD = Elementwise(
    "synapse_penalty_grad", "T g, T Omega, T theta, T theta_ref, T two_c", "T out",
    "out = surrogate_gradient(g, Omega, theta, theta_ref, two_c);", PREAMBLE)


@cpu.loop
def penalty_grad_loop(out, g, Omega, theta, theta_ref, two_c):
    for i in range(out.size):
        out[i] = surrogate_gradient(g[i], Omega[i], theta[i], theta_ref[i], two_c)


def penalty_grad(g, Omega, theta, theta_ref, c, out):
    """Eq. 1, gradient: ``out = g + 2 c Omega (theta - theta_ref)``. Returns ``out``."""
    if on_gpu(g):
        PENALTY_GRAD(g, Omega, theta, theta_ref, 2.0 * c, out)
    elif not cpu.run(penalty_grad_loop, (out, g, Omega, theta, theta_ref), (2.0 * c,)):
        out[...] = surrogate_gradient(g, Omega, theta, theta_ref, 2.0 * c)
    return out


# No comments inside the strings: CuPy pastes them into expressions and macros.
PENALTY_VALUE = Reduction(
    "synapse_penalty_value", "T Omega, T theta, T theta_ref, T c", "T y",
    map_expr="penalty_term(Omega, theta, theta_ref)",                # Omega_k Delta_k^2
    reduce_expr="a + b",                                            # sum over k
    post_map_expr="y = c * a",                                      # times c
    identity="0", preamble=PREAMBLE)


@cpu.loop
def penalty_value_loop(Omega, theta, theta_ref, c, y):
    a = 0.0                                          # summed in float64 for either dtype
    for i in range(Omega.size):
        a += penalty_term(Omega[i], theta[i], theta_ref[i])
    y[0] = c * a


def penalty_value(Omega, theta, theta_ref, c):
    """Eq. 1, value: ``c sum_k Omega_k (theta_k - theta_ref_k)^2``, as a 0-d array (no host
    sync on CuPy)."""
    if on_gpu(Omega):
        return PENALTY_VALUE(Omega, theta, theta_ref, c)
    y = np.zeros(1)
    if cpu.run(penalty_value_loop, (Omega, theta, theta_ref), (c,), extra=(y,)):
        return np.asarray(y[0], dtype=Omega.dtype)
    return np.asarray(c * penalty_term(Omega, theta, theta_ref).sum(), dtype=Omega.dtype)


CONSOLIDATE = Elementwise(
    "synapse_consolidate", "T theta, T xi", "T Omega, T theta_ref, T omega",
    """
    Omega = consolidated(Omega, omega, theta, theta_ref, xi);
    theta_ref = theta;                               // theta tilde <- theta
    omega = 0;                                       // a new path integral starts
    """, PREAMBLE)


@cpu.loop
def consolidate_loop(Omega, theta_ref, omega, theta, xi):
    for i in range(Omega.size):
        ti = theta[i]
        Omega[i] = consolidated(Omega[i], omega[i], ti, theta_ref[i], xi)
        theta_ref[i] = ti
        omega[i] = 0


def consolidate(Omega, omega, theta, theta_ref, xi):
    """Eq. 4 at a task's end, in place: ``Omega <- relu(Omega + omega / (Delta^2 + xi))``
    with ``Delta = theta - theta_ref``; then ``theta_ref <- theta`` and ``omega <- 0``.
    Returns ``Omega``."""
    if on_gpu(Omega):
        CONSOLIDATE(theta, xi, Omega, theta_ref, omega)
    elif not cpu.run(consolidate_loop, (Omega, theta_ref, omega, theta), (xi,)):
        Omega[...] = consolidated(Omega, omega, theta, theta_ref, xi)
        theta_ref[...] = theta
        omega[...] = 0
    return Omega
