"""Synaptic Intelligence bookkeeping, one pass per equation.

Symbols follow Zenke, Poole & Ganguli (2017): ``omega`` the running importance,
``Omega`` the consolidated importance, ``theta_ref`` the reference weights (theta tilde),
``xi`` the damping, ``c`` the strength of the surrogate loss.

Each function is written three times, one under the other: a fused CUDA body (a
module-level spec, launched when the arrays are CuPy arrays), the same body as a fused CPU
loop (compiled by numba, ``cpu.py``), and the NumPy twin inside the public function, the
same math as in-place passes (the reference, and the fallback where numba is unavailable).
"""
import numpy as np

from . import cpu
from ._dispatch import on_gpu, scratch
from .cuda import Elementwise, Reduction


OMEGA_ACCUMULATE = Elementwise(
    "synapse_omega_accumulate", "T g, T delta", "T omega",
    "omega -= g * delta;  // Eq. 2-3: omega += -g delta")


@cpu.loop
def omega_accumulate_loop(omega, g, delta):
    for i in range(omega.size):
        omega[i] -= g[i] * delta[i]                  # Eq. 2-3: omega += -g delta


# Eq. 2-3: omega_k += -g_k * delta_k
def omega_accumulate(omega, g, delta, tmp=None):
    """Accumulate the path integral in place: ``omega += -g * delta``.

    ``g`` is the gradient of the task loss alone (no penalty); ``delta`` the change the
    optimizer actually made. Returns ``omega``.
    """
    if on_gpu(omega):
        OMEGA_ACCUMULATE(g, delta, omega)
        return omega
    if cpu.run(omega_accumulate_loop, (omega, g, delta)):
        return omega
    # NumPy twin
    tmp = scratch(omega, tmp)
    np.multiply(g, delta, out=tmp)        # g * delta
    np.subtract(omega, tmp, out=omega)     # omega -= g * delta
    return omega


OMEGA_ACCUMULATE_TRAPEZOID = Elementwise(
    "synapse_omega_accumulate_trapezoid", "T g, T delta", "T omega, T delta_prev",
    """
    omega -= g * (delta_prev + delta) / 2;  // Eq. 2-3, trapezoid: -0.5 g(t) (delta(t-1) + delta(t))
    delta_prev = delta;                     // g(t+1) closes this step on the next call
    """)


@cpu.loop
def omega_accumulate_trapezoid_loop(omega, delta_prev, g, delta):
    for i in range(omega.size):
        d = delta[i]
        omega[i] -= 0.5 * (g[i] * (delta_prev[i] + d))     # -0.5 g(t) (delta(t-1) + delta(t))
        delta_prev[i] = d                                  # g(t+1) closes this step next call


# Eq. 2-3, trapezoidal rule: the step t -> t+1 contributes -0.5 (g(t) + g(t+1)) delta(t).
def omega_accumulate_trapezoid(omega, g, delta_prev, delta, tmp=None):
    """Second-order path integral, one gradient per step.

    ``g`` is the gradient at theta(t); it closes the previous step's term and opens this
    one's: ``omega += -0.5 * g * (delta_prev + delta)``. Afterwards ``delta_prev`` holds
    ``delta``. Close a run with ``delta=0`` and the gradient at the final weights.
    """
    if on_gpu(omega):
        OMEGA_ACCUMULATE_TRAPEZOID(g, delta, omega, delta_prev)
        return omega
    if cpu.run(omega_accumulate_trapezoid_loop, (omega, delta_prev, g, delta)):
        return omega
    # NumPy twin
    tmp = scratch(omega, tmp)
    np.add(delta_prev, delta, out=tmp)     # delta(t-1) + delta(t)
    tmp *= g
    tmp *= 0.5
    np.subtract(omega, tmp, out=omega)     # omega -= 0.5 g (delta(t-1) + delta(t))
    delta_prev[...] = delta
    return omega


PENALTY_GRAD = Elementwise(
    "synapse_penalty_grad", "T g, T Omega, T theta, T theta_ref, T two_c", "T out",
    "out = g + two_c * Omega * (theta - theta_ref);  // Eq. 1, gradient")


@cpu.loop
def penalty_grad_loop(out, g, Omega, theta, theta_ref, two_c):
    for i in range(out.size):
        out[i] = g[i] + two_c * (Omega[i] * (theta[i] - theta_ref[i]))   # Eq. 1, gradient


# Eq. 1, gradient: dL~/dtheta = g + 2 c Omega (theta - theta_ref)
def penalty_grad(g, Omega, theta, theta_ref, c, out):
    """Write the gradient of the surrogate loss into ``out`` (may not alias ``g``)."""
    if on_gpu(g):
        PENALTY_GRAD(g, Omega, theta, theta_ref, 2.0 * c, out)
        return out
    if cpu.run(penalty_grad_loop, (out, g, Omega, theta, theta_ref), (2.0 * c,)):
        return out
    # NumPy twin
    np.subtract(theta, theta_ref, out=out)  # theta - theta_ref
    out *= Omega
    out *= 2.0 * c
    out += g                                # g + 2 c Omega (theta - theta_ref)
    return out


# Eq. 1, value. No comments inside the strings: CuPy pastes them into expressions and macros.
PENALTY_VALUE = Reduction(
    "synapse_penalty_value", "T Omega, T theta, T theta_ref, T c", "T y",
    map_expr="Omega * (theta - theta_ref) * (theta - theta_ref)",  # Omega_k Delta_k^2
    reduce_expr="a + b",                                            # sum over k
    post_map_expr="y = c * a",                                      # times c
    identity="0")


@cpu.loop
def penalty_value_loop(Omega, theta, theta_ref, c, y):
    a = 0.0                                          # summed in float64 for either dtype
    for i in range(Omega.size):
        Delta = theta[i] - theta_ref[i]
        a += Omega[i] * Delta * Delta                # Omega_k Delta_k^2
    y[0] = c * a                                     # times c


# Eq. 1, value: c * sum_k Omega_k (theta_k - theta_ref_k)^2
def penalty_value(Omega, theta, theta_ref, c, tmp=None):
    """The surrogate penalty as a 0-d array (no host sync on CuPy)."""
    if on_gpu(Omega):
        return PENALTY_VALUE(Omega, theta, theta_ref, c)
    y = np.zeros(1)
    if cpu.run(penalty_value_loop, (Omega, theta, theta_ref), (c,), extra=(y,)):
        return np.asarray(y[0], dtype=Omega.dtype)
    # NumPy twin
    tmp = scratch(theta, tmp)
    np.subtract(theta, theta_ref, out=tmp)  # Delta
    tmp *= tmp
    tmp *= Omega                            # Omega Delta^2
    return np.asarray(c * tmp.sum(), dtype=tmp.dtype)


CONSOLIDATE = Elementwise(
    "synapse_consolidate", "T theta, T xi", "T Omega, T theta_ref, T omega",
    """
    T Delta = theta - theta_ref;                     // Delta, the distance moved in the task
    T total = Omega + omega / (Delta * Delta + xi);  // Eq. 4: Omega + omega / (Delta^2 + xi)
    Omega = total < 0 ? (T)0 : total;                // relu; NaN stays NaN, as np.maximum
    theta_ref = theta;                               // theta tilde <- theta
    omega = 0;                                       // a new path integral starts
    """)


@cpu.loop
def consolidate_loop(Omega, theta_ref, omega, theta, xi):
    for i in range(Omega.size):
        ti = theta[i]
        Delta = ti - theta_ref[i]                          # the distance moved in the task
        total = Omega[i] + omega[i] / (Delta * Delta + xi)  # Eq. 4: Omega + omega / (Delta^2 + xi)
        Omega[i] = 0 if total < 0 else total               # relu; NaN stays NaN, as np.maximum
        theta_ref[i] = ti                                  # theta tilde <- theta
        omega[i] = 0                                       # a new path integral starts


# Eq. 4: Omega <- relu(Omega + omega / (Delta^2 + xi)), Delta = theta - theta_ref;
#        then theta_ref <- theta, omega <- 0.
def consolidate(Omega, omega, theta, theta_ref, xi):
    """Consolidate a task's importance into ``Omega`` and reset, all in place."""
    if on_gpu(Omega):
        CONSOLIDATE(theta, xi, Omega, theta_ref, omega)
        return Omega
    if cpu.run(consolidate_loop, (Omega, theta_ref, omega, theta), (xi,)):
        return Omega
    # NumPy twin
    delta = theta - theta_ref                  # Delta
    Omega += omega / (delta * delta + xi)       # omega / (Delta^2 + xi)
    np.maximum(Omega, 0, out=Omega)             # relu of the running total
    theta_ref[...] = theta
    omega[...] = 0
    return Omega
