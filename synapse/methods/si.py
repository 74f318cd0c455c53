"""Synaptic Intelligence (Zenke, Poole & Ganguli 2017), Eq. 1-4.

Per parameter k the method keeps
  * ``omega`` — the running path integral of this task (Eq. 2-3),
  * ``Omega`` — the consolidated importance of all previous tasks (Eq. 4),
  * ``theta_ref`` — the weights at the end of the previous task (theta tilde of Eq. 1).

Every step (``step``):   omega_k += -g_k * delta_k        (Eq. 2-3)
  with g the gradient of the task loss WITHOUT the penalty and delta the change the optimizer
  actually made, as in the authors' code (ganguli-lab/pathint: pathint/optimizers.py
  accumulates the gradient times the update of the wrapped Keras optimizer, and
  pathint/protocols.py defines the path-integral importance); any optimizer works.
The optimizer follows the surrogate loss (Eq. 1):
  L~ = L + c sum_k Omega_k (theta_k - theta_ref_k)^2,  dL~/dtheta = g + 2 c Omega (theta - theta_ref).
At a task boundary (``end_task``, Eq. 4):
  Omega <- relu(Omega + omega / (Delta^2 + xi)), Delta = theta - theta_ref;
  theta_ref <- theta; omega <- 0.
"""
from .base import Method, regularised_mask
from ..checks import check_nonnegative
from ..errors import ConfigError
from .._kernels import kernels
from ..backend import to_float

INTEGRATORS = ("first-order", "trapezoid")


class SI(Method):
    """Synaptic Intelligence as a regulariser for any model and optimizer of the engine.

    c           strength of the surrogate loss (Eq. 1); c = 0 is fine-tuning.
    xi          damping of Eq. 4, bounds Omega where Delta is tiny.
    integrator  'first-order': omega += -g(t) delta(t), the paper's sum (one multiply-add per
                step, fused into the optimizer's update). 'trapezoid': omega += -(g(t) +
                g(t+1))/2 delta(t), exact to second order in the step size for the path
                integral (one more buffer, delta(t-1), and one more pass per step); the last
                step's term is closed at the task boundary with the gradient at the final
                weights (``close_path``).
    include / exclude  parameter names to regularise (e.g. exclude a multi-head readout).
    """

    name = "si"
    state_names = ("omega", "Omega", "theta_ref")
    foreign_names = {
        "si_lambda": "Avalanche's name: synapse's c = si_lambda / 2 (Avalanche's penalty "
                     "carries a 1/2, (si_lambda / 2) sum Omega (theta - theta*)^2)",
        "eps": "Avalanche's name for the damping of Eq. 4: use xi (Avalanche's default is "
               "1e-7; the authors used xi = 1e-3 and 0.1)",
        "epsilon": "the damping of Eq. 4 is xi here",
        "excluded_parameters": "Avalanche's name: use exclude (parameter names, e.g. "
                               "exclude=model.readout_names())",
    }

    def __init__(self, c=1.0, xi=1e-3, integrator="first-order", include=None, exclude=None):
        check_nonnegative("SI", c=c)
        check_nonnegative("SI", xi=xi)
        if float(xi) <= 0:
            raise ConfigError("xi", f"SI's xi must be > 0 (it damps 1/Delta^2), got {xi}")
        if integrator not in INTEGRATORS:
            raise ConfigError("integrator", f"unknown SI integrator {integrator!r}; expected one "
                                            f"of {INTEGRATORS}")
        self.c, self.xi, self.integrator = float(c), float(xi), integrator
        self.include, self.exclude = include, exclude

    def allocate(self):
        xp, theta = self.params.xp, self.params.theta
        self.omega = xp.zeros_like(theta)                  # omega_k, this task
        self.Omega = xp.zeros_like(theta)                  # Omega_k, consolidated
        self.theta_ref = theta.copy()                      # theta~: weights at the start of task 1
        self.mask = regularised_mask(self.params, self.include, self.exclude)
        self.delta_prev = xp.zeros_like(theta) if self.closes_path else None  # delta(t-1)
        self._g_total = xp.zeros_like(theta)               # scratch: g + penalty gradient

    def float_settings(self):
        return {"c": self.c, "xi": self.xi}

    def regulariser(self):
        return self.c, self.Omega, self.theta_ref

    @property
    def closes_path(self):
        """The trapezoid needs the gradient at a task's end to close its last step."""
        return self.integrator == "trapezoid"

    def begin_task(self, task_index, task):
        if self.closes_path:
            self.delta_prev.fill(0)

    # Eq. 1 (gradient) and Eq. 2-3, every step
    def step(self, optimizer, g):
        """One step on the surrogate loss (Eq. 1); omega from the task gradient ``g`` (Eq. 2).

        By default (first-order integrator, SGD or Adam) this is ONE fused pass,
        ``optimizer.step_si(g, omega, Omega, theta_ref, c)`` (kernels/optim.py: adam_si_step,
        sgd_si_step), which integrates omega from the change inside the pass. The lines after
        it are the same math unfused, run by the trapezoid and by optimizers without
        ``fuses_si``; demos/walkthrough.py checks that both agree.
        """
        if self.integrator == "first-order" and getattr(optimizer, "fuses_si", False):
            optimizer.step_si(g, self.omega, self.Omega, self.theta_ref, self.c)
            return
        gt = kernels.penalty_grad(g, self.Omega, self.params.theta, self.theta_ref, self.c,
                                  out=self._g_total) if self.c else g
        delta = optimizer.step(gt)                         # the change the optimizer made
        if self.integrator == "first-order":
            kernels.omega_accumulate(self.omega, g, delta)
        else:
            kernels.omega_accumulate_trapezoid(self.omega, g, self.delta_prev, delta)

    def close_path(self, g_final):
        """Trapezoid only: add the last half-term -g(t1) delta(t1 - 1) / 2."""
        if self.closes_path:
            zero = self.params.xp.zeros_like(g_final)
            kernels.omega_accumulate_trapezoid(self.omega, g_final, self.delta_prev, zero)

    # Eq. 1 (value)
    def penalty(self):
        if not self.c:
            return 0.0
        return kernels.penalty_value(self.Omega, self.params.theta, self.theta_ref, self.c)

    # Eq. 4, at the task boundary
    def end_task(self, task_index, task):
        kernels.consolidate(self.Omega, self.omega, self.params.theta, self.theta_ref, self.xi)
        self.Omega *= self.mask                            # unregularised parameters: Omega = 0

    def summary(self):
        return {"sum_omega": to_float(self.omega.sum())}

    def config(self):
        return {"method": self.name, "c": self.c, "xi": self.xi, "integrator": self.integrator,
                "include": self.include, "exclude": self.exclude}
