"""Baselines with SI's quadratic penalty form ``c * sum_k Omega_k (theta_k - theta_ref_k)^2``
and another importance: L2 (Omega = 1), EWC (diagonal Fisher), online EWC, MAS.

They reuse SI's kernels for the penalty; only the importance differs.

EWC with one anchor per task, (lambda / 2) sum_t sum_k F_t,k (theta_k - theta*_t,k)^2, is one
quadratic: with Omega = sum_t F_t and theta_ref = sum_t F_t theta*_t / Omega its gradient is
lambda Omega (theta - theta_ref) exactly, and its value differs by a constant (kept in
``self.offset``). So c = lambda / 2 here.
"""
import numpy as np

from .base import Method, regularised_mask
from ..checks import check_count, check_nonnegative
from ..errors import ConfigError
from .._kernels import kernels
from ..backend import asnumpy
from ..losses import softmax_cross_entropy


class QuadraticPenalty(Method):
    """Shared machinery: Omega, theta_ref, the penalty and its gradient (Eq. 1 form)."""

    state_names = ("Omega", "theta_ref", "offset")

    def __init__(self, c=1.0, include=None, exclude=None):
        check_nonnegative(type(self).__name__, c=c)
        self.c, self.include, self.exclude = float(c), include, exclude

    def allocate(self):
        xp, theta = self.params.xp, self.params.theta
        self.Omega = xp.zeros_like(theta)
        self.theta_ref = theta.copy()
        self.offset = xp.zeros((), dtype=theta.dtype)      # constant part of the penalty
        self.mask = regularised_mask(self.params, self.include, self.exclude)
        self._g_total = xp.zeros_like(theta)

    def float_settings(self):
        return {"c": self.c}

    def regulariser(self):
        return self.c, self.Omega, self.theta_ref

    def step(self, optimizer, g):
        if self.c:
            g = kernels.penalty_grad(g, self.Omega, self.params.theta, self.theta_ref, self.c,
                                     out=self._g_total)
        optimizer.step(g)

    def penalty(self):
        if not self.c:
            return 0.0
        return kernels.penalty_value(self.Omega, self.params.theta, self.theta_ref,
                                     self.c) + self.c * self.offset

    def importance(self, task):
        """This task's importance of each parameter (flat, >= 0)."""
        raise NotImplementedError

    def sample(self, task, n):
        """Up to n training examples of the task, the same ones for a given seed and task
        size, and the generator that drew them."""
        rng = np.random.default_rng([self.seed, len(task.x_train)])
        return rng.permutation(len(task.x_train))[:n], rng

    def combine(self, importance):
        """Add a task's importance with anchor theta (exact sum of per-task quadratics).

        theta_ref moves toward theta by the new task's share of the importance, written as
        ``theta_ref + w (theta - theta_ref)`` so that a weight that did not move keeps its
        anchor bit for bit (a rounding-level offset would give Adam a spurious direction).
        """
        xp, theta = self.params.xp, self.params.theta
        total = self.Omega + importance
        share = importance / xp.where(total > 0, total, 1)               # w in [0, 1]
        new_ref = xp.where(self.Omega > 0, self.theta_ref + share * (theta - self.theta_ref),
                           theta)
        self.offset = self.offset + (self.Omega * self.theta_ref ** 2).sum() \
            + (importance * theta ** 2).sum() - (total * new_ref ** 2).sum()
        self.Omega, self.theta_ref = total, new_ref

    def end_task(self, task_index, task):
        self.combine(self.importance(task) * self.mask)

    def config(self):
        return {"method": self.name, "c": self.c, "include": self.include, "exclude": self.exclude}


class L2(QuadraticPenalty):
    """Plain L2 to the previous task's weights: Omega = 1, theta_ref = latest weights."""

    name = "l2"

    def end_task(self, task_index, task):
        self.Omega = self.mask.copy()
        self.theta_ref = self.params.theta.copy()


def per_example_grads(model, x, y, active, labels="empirical", rng=None):
    """Yield the flat gradient of -log p(label | x_n) for each example (batch of one).

    labels='empirical' uses the true labels; 'sampled' draws each label from the model's own
    predictive distribution (the 'true' Fisher of Kirkpatrick et al.).
    """
    xp = model.xp
    for n in range(len(x)):
        xn = x[n:n + 1]
        if labels == "sampled":
            logits = asnumpy(model.forward(xn, train=False))[0]
            units = np.arange(logits.size) if active is None else np.asarray(active)
            z = logits[units] - logits[units].max()
            p = np.exp(z) / np.exp(z).sum()
            yn = np.asarray([units[rng.choice(units.size, p=p)]])
        else:
            yn = asnumpy(y[n:n + 1])
        logits = model.forward(xn, train=False)
        _, g = softmax_cross_entropy(logits, xp.asarray(yn), active)
        model.backward(g)
        yield model.params.grad


class EWC(QuadraticPenalty):
    """Elastic weight consolidation (Kirkpatrick et al. 2017), diagonal Fisher per task.

    F_k = mean_n (d log p(y_n | x_n) / d theta_k)^2 over ``fisher_samples`` training examples;
    ``fisher='empirical'`` uses the labels, ``'sampled'`` labels drawn from the model.
    Penalty (lambda/2) sum_t F_t (theta - theta*_t)^2, i.e. c = lambda / 2.
    """

    name = "ewc"
    foreign_names = {
        "ewc_lambda": "Avalanche's name: synapse's c = ewc_lambda (both penalties are "
                      "lambda sum F (theta - theta*)^2, no 1/2; Kirkpatrick et al.'s lambda is 2c)",
        "mode": "Avalanche's EWC mode: mode='separate' is EWC, mode='online' is OnlineEWC",
        "decay_factor": "Avalanche's name: use OnlineEWC(gamma=decay_factor)",
    }

    def __init__(self, c=100.0, fisher="empirical", fisher_samples=500, seed=0, include=None,
                 exclude=None):
        super().__init__(c, include, exclude)
        if fisher not in ("empirical", "sampled"):
            raise ConfigError("fisher", f"unknown EWC fisher {fisher!r}; expected 'empirical' or "
                                        f"'sampled'")
        self.fisher, self.seed = fisher, seed
        self.fisher_samples = check_count("fisher_samples", fisher_samples)

    def importance(self, task):
        idx, rng = self.sample(task, self.fisher_samples)
        F = self.params.xp.zeros_like(self.params.theta)
        for g in per_example_grads(self.model, task.x_train[idx], task.y_train[idx],
                                   task.classes, self.fisher, rng):
            F += g * g
        return F / len(idx)

    def config(self):
        return dict(super().config(), fisher=self.fisher, fisher_samples=self.fisher_samples)


class OnlineEWC(EWC):
    """Online EWC (Schwarz et al. 2018): F <- gamma F + F_task, one anchor (latest weights);
    gamma in (0, 1] (1: nothing is forgotten; above 1 old tasks would outweigh new ones)."""

    name = "online-ewc"
    foreign_names = dict(EWC.foreign_names, decay_factor="Avalanche's name: use gamma")

    def __init__(self, c=100.0, gamma=1.0, **kwargs):
        super().__init__(c, **kwargs)
        check_nonnegative("OnlineEWC", gamma=gamma)
        if not 0 < float(gamma) <= 1:
            raise ConfigError("gamma", f"OnlineEWC's decay of the old importance must be in "
                                       f"(0, 1], got {gamma}")
        self.gamma = float(gamma)

    def end_task(self, task_index, task):
        self.Omega = self.gamma * self.Omega + self.importance(task) * self.mask
        self.theta_ref = self.params.theta.copy()

    def float_settings(self):
        return dict(super().float_settings(), gamma=self.gamma)

    def config(self):
        return dict(super().config(), gamma=self.gamma)


class MAS(QuadraticPenalty):
    """Memory aware synapses (Aljundi et al. 2018): Omega_k = mean_n |d ||f(x_n)||^2 / d theta_k|,
    f the logits of the task's active units; anchors combined as for EWC."""

    name = "mas"
    foreign_names = {
        "lambda_reg": "Avalanche's name: synapse's c = lambda_reg (both penalties are "
                      "lambda sum Omega (theta - theta*)^2, no 1/2)",
        "alpha": "Avalanche's MAS averages the tasks' importances with alpha; synapse adds "
                 "them (no alpha)",
    }

    def __init__(self, c=1.0, samples=500, seed=0, include=None, exclude=None):
        super().__init__(c, include, exclude)
        self.samples, self.seed = check_count("samples", samples), seed

    def importance(self, task):
        model, xp = self.model, self.params.xp
        idx, _ = self.sample(task, self.samples)
        total = xp.zeros_like(self.params.theta)
        keep = None
        for n in idx:
            logits = model.forward(task.x_train[n:n + 1], train=False)
            if task.classes is not None and keep is None:
                keep = xp.zeros(logits.shape[1], dtype=logits.dtype)
                keep[xp.asarray(np.asarray(task.classes))] = 1
            model.backward(2 * logits * (1 if keep is None else keep))   # d ||f||^2 / d f
            total += xp.abs(model.params.grad)
        return total / len(idx)

    def config(self):
        return dict(super().config(), samples=self.samples)
