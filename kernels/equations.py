"""The per-element equations, each written once per backend: start reading here.

Each equation is a CUDA device function (the string above it) and a Python function written
with the same symbols and the same grouping of products. The Python function is the NumPy
twin: the public functions in ``si.py`` / ``optim.py`` call it on whole arrays (the
reference, and the CPU fallback), and numba compiles the very same function into the fused CPU
loops, which call it on one element at a time. The device functions are pasted ahead of every
fused CUDA body (``PREAMBLE``, CuPy's ``preamble=``), where ``T`` is the kernel's float type.
So a change to an equation is one edit for the GPU and one for both CPU paths.

Host-side scalars (``two_c = 2 c``, ``one_minus_beta1 = 1 - beta1``) come in computed once per
step, as chainer's adam.py passes them: in float32 a complement taken on the device would
round differently from the host's.
"""
import numpy as np

from . import cpu

_cuda = []


def equation(cuda):
    """Declare a Python equation and its CUDA twin (added to ``PREAMBLE``)."""
    def declare(fn):
        _cuda.append(cuda.strip("\n"))
        return cpu.equation(fn)
    return declare


@equation("""
// Eq. 1, gradient of the surrogate loss L + c sum_k Omega_k (theta_k - theta_ref_k)^2
__device__ T surrogate_gradient(T g, T Omega, T theta, T theta_ref, T two_c) {
    return g + two_c * (Omega * (theta - theta_ref));
}""")
def surrogate_gradient(g, Omega, theta, theta_ref, two_c):
    """Eq. 1, gradient: ``g + 2 c Omega (theta - theta_ref)``, with ``g`` the task gradient."""
    return g + two_c * (Omega * (theta - theta_ref))


@equation("""
// Eq. 2-3: omega += -g delta, g the task gradient, delta the change the optimizer made
__device__ T path_integral(T omega, T g, T delta) {
    return omega - g * delta;
}""")
def path_integral(omega, g, delta):
    """Eq. 2-3, one step of the path integral: ``omega - g * delta``."""
    return omega - g * delta


@equation("""
// Adam (PyTorch's form, bias corrections folded into lr_t and eps_t): moments in place
__device__ T adam_change(T& m, T& v, T g, T lr_t, T beta1, T one_minus_beta1, T beta2,
                         T one_minus_beta2, T eps_t) {
    m = beta1 * m + one_minus_beta1 * g;            // m = b1 m + (1 - b1) g
    v = beta2 * v + one_minus_beta2 * (g * g);      // v = b2 v + (1 - b2) g^2
    return -lr_t * (m / (sqrt(v) + eps_t));         // the change Adam makes
}""")
def adam_change(m, v, g, lr_t, beta1, one_minus_beta1, beta2, one_minus_beta2, eps_t):
    """Adam: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2`` and the change
    ``d = -lr_t m / (sqrt(v) + eps_t)``; returns ``(m, v, d)``."""
    m = beta1 * m + one_minus_beta1 * g
    v = beta2 * v + one_minus_beta2 * (g * g)
    return m, v, -lr_t * (m / (np.sqrt(v) + eps_t))


@equation("""
// SGD, heavy ball (PyTorch's form): buf = mu buf + g, the change -lr buf; buf in place
__device__ T sgd_change(T& buf, T g, T lr, T momentum) {
    if (momentum != 0) {
        buf = momentum * buf + g;
        return -lr * buf;
    }
    return -lr * g;                                 // plain SGD leaves buf alone
}""")
def sgd_change(buf, g, lr, momentum):
    """SGD: with momentum ``buf = momentum buf + g`` and the change ``d = -lr buf``; plain SGD
    ``d = -lr g`` (buf untouched); returns ``(buf, d)``."""
    if momentum != 0:
        buf = momentum * buf + g
        return buf, -lr * buf
    return buf, -lr * g


@equation("""
// Eq. 2-3, trapezoid: the step t -> t+1 adds -(g(t) + g(t+1)) delta(t) / 2; each gradient
// closes the previous step's half and opens this one's
__device__ T path_integral_trapezoid(T omega, T g, T delta_prev, T delta) {
    return omega - g * (delta_prev + delta) / 2;
}""")
def path_integral_trapezoid(omega, g, delta_prev, delta):
    """Eq. 2-3 to second order: ``omega - g (delta(t-1) + delta(t)) / 2``, ``g`` at theta(t)."""
    return omega - g * (delta_prev + delta) / 2


@equation("""
// Eq. 1, one term of the penalty: Omega_k (theta_k - theta_ref_k)^2
__device__ T penalty_term(T Omega, T theta, T theta_ref) {
    return Omega * (theta - theta_ref) * (theta - theta_ref);
}""")
def penalty_term(Omega, theta, theta_ref):
    """Eq. 1, one weight's share of the penalty before c: ``Omega (theta - theta_ref)^2``."""
    return Omega * (theta - theta_ref) * (theta - theta_ref)


@equation("""
// Eq. 4: relu(Omega + omega / (Delta^2 + xi)), Delta = theta - theta_ref, the distance moved
__device__ T consolidated(T Omega, T omega, T theta, T theta_ref, T xi) {
    T Delta = theta - theta_ref;
    T total = Omega + omega / (Delta * Delta + xi);
    return total < 0 ? (T)0 : total;               // relu; NaN stays NaN, as np.maximum
}""")
def consolidated(Omega, omega, theta, theta_ref, xi):
    """Eq. 4: ``relu(Omega + omega / (Delta^2 + xi))`` with ``Delta = theta - theta_ref``; the
    relu of the running total, as in the authors' code (ganguli-lab/pathint,
    pathint/protocols.py)."""
    Delta = theta - theta_ref
    return np.maximum(Omega + omega / (Delta * Delta + xi), 0)


PREAMBLE = "\n".join(_cuda) + "\n"
