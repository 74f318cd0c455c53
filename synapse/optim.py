"""Optimizers over the flat parameter vector.

``step(g)`` applies one update and returns ``delta``, the change it actually made (kept in
``opt.delta``): SI's unfused path integrates ``-g * delta`` from it, whatever the optimizer.
``step_si(g, omega, Omega, theta_ref, c)`` is the same update on SI's surrogate loss, with the
penalty gradient and the omega update fused into it (one pass, one kernel; omega is integrated
from the change inside the pass, which is not kept). The element-wise math lives in
``synapse_kernels`` (start at ``kernels/equations.py``): a fused CUDA kernel on CuPy; on the
CPU the same equations as a loop compiled by numba (warmed when the optimizer is built, so no
step pays for the compile), or their NumPy twin.
"""
import math

import numpy as np

from .checkpoint import export_state, import_state
from .checks import check_nonnegative
from .errors import ConfigError, UserError
from .params import ParamStore
from ._kernels import kernels, warm_cpu


class Optimizer:
    """Base: holds the ParamStore, the last change ``delta`` and the state (``state_names``),
    each shaped like theta."""

    state_names = ()
    fuses_si = False     # True where step_si fuses SI's penalty and omega update

    def __init__(self, params):
        if not isinstance(params, ParamStore):
            raise UserError(f"{type(self).__name__}: expected a model's parameters, "
                            f"{type(self).__name__}(model.params), got a {type(params).__name__}")
        self.params = params
        self.reset()
        if params.xp is np:
            warm_cpu(params.dtype)   # the loops compile now, not inside the first step

    def float_settings(self):
        """The real-valued settings (lr, momentum, betas, eps: whichever it has), by name."""
        return {}

    def _zeros(self):
        return self.params.xp.zeros_like(self.params.theta)

    def reset(self):
        """Forget the optimizer state (the authors reset Adam between split-MNIST tasks)."""
        self.t = 0
        self.delta = self._zeros()
        for name in self.state_names:
            setattr(self, name, self._zeros())

    def state_dict(self):
        state = export_state({name: getattr(self, name) for name in self.state_names})
        state["t"] = np.asarray(self.t)
        return state

    def load_state_dict(self, state):
        theta = self.params.theta
        moments = {k: v for k, v in state.items() if k != "t"}
        arrays = import_state(type(self).__name__, moments,
                              {name: theta.shape for name in self.state_names},
                              self.params.xp, self.params.dtype)
        for name, value in arrays.items():
            setattr(self, name, value)
        self.t = int(state["t"])
        return self

    def to_device(self):
        """Re-home the state after the ParamStore moved to another backend."""
        state = self.state_dict()
        self.reset()
        if self.params.xp is np:
            warm_cpu(self.params.dtype)
        return self.load_state_dict(state)

    def _check_grad(self, g):
        theta = self.params.theta
        if g.shape != theta.shape or g.dtype != theta.dtype:
            raise ValueError(f"{type(self).__name__}.step: gradient of shape {g.shape} and dtype "
                             f"{g.dtype}, expected {theta.shape} and {theta.dtype}")


class SGD(Optimizer):
    """theta += delta, delta = -lr * buf, buf = momentum * buf + g (PyTorch's form)."""

    state_names = ("buf",)
    fuses_si = True

    def __init__(self, params, lr=0.01, momentum=0.0):
        check_nonnegative("SGD", lr=lr, momentum=momentum)
        self.lr, self.momentum = float(lr), float(momentum)
        super().__init__(params)

    def float_settings(self):
        return {"lr": self.lr, "momentum": self.momentum}

    def step(self, g):
        self._check_grad(g)
        self.t += 1
        return kernels.sgd_step(self.params.theta, g, self.buf, self.delta, self.lr,
                                self.momentum)

    def step_si(self, g, omega, Omega, theta_ref, c):
        """SGD on g + 2 c Omega (theta - theta_ref) (Eq. 1), change d; then omega += -g * d."""
        self._check_grad(g)
        self.t += 1
        kernels.sgd_si_step(self.params.theta, g, self.buf, omega, Omega, theta_ref, c,
                            self.lr, self.momentum)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with PyTorch's epsilon placement.

    .. math:: m \\leftarrow \\beta_1 m + (1-\\beta_1) g,\\quad
              v \\leftarrow \\beta_2 v + (1-\\beta_2) g^2,\\quad
              \\delta = -\\frac{\\eta}{1-\\beta_1^t}\\,\\frac{m}{\\sqrt{v/(1-\\beta_2^t)}+\\epsilon}
    """

    state_names = ("m", "v")
    fuses_si = True

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        check_nonnegative("Adam", lr=lr, beta1=beta1, beta2=beta2, eps=eps)
        for key, beta in (("beta1", beta1), ("beta2", beta2)):
            if not float(beta) < 1:
                raise UserError(f"Adam: {key} must be in [0, 1) (a decay rate), got {beta}")
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), float(eps)
        super().__init__(params)

    def float_settings(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _scalars(self):
        """Host-side bias corrections: lr_t and eps_t of the fused update."""
        c2 = math.sqrt(1.0 - self.beta2 ** self.t)
        return self.lr * c2 / (1.0 - self.beta1 ** self.t), self.eps * c2

    def step(self, g):
        self._check_grad(g)
        self.t += 1
        lr_t, eps_t = self._scalars()
        return kernels.adam_step(self.params.theta, g, self.m, self.v, self.delta, lr_t,
                                 self.beta1, self.beta2, eps_t)

    def step_si(self, g, omega, Omega, theta_ref, c):
        """Adam on g + 2 c Omega (theta - theta_ref) (Eq. 1), change d; then omega += -g * d."""
        self._check_grad(g)
        self.t += 1
        lr_t, eps_t = self._scalars()
        kernels.adam_si_step(self.params.theta, g, self.m, self.v, omega, Omega, theta_ref, c,
                             lr_t, self.beta1, self.beta2, eps_t)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name, params, **kwargs):
    if name not in OPTIMIZERS:
        raise ConfigError("optimizer", f"unknown optimizer {name!r}; expected one of "
                                       f"{sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, **kwargs)
