"""SI's path integral as the trainer runs it, checked against the loss and against a plain
NumPy re-computation of the same path.

``RecordedSI`` is SI unchanged, but it keeps what it was handed: each step's task gradient g
and the weights before and after the step, the gradient that closes the trapezoid, and omega
and Omega around the consolidation (Eq. 4). From those, omega (Eq. 2-3, the change read from
the weights) and Omega (Eq. 4) are computed again here, one line per equation.
"""
import numpy as np
import pytest

from synapse.backend import asnumpy
from synapse.data import load_dataset, split_tasks
from synapse.methods import SI
from synapse.model import mlp
from synapse.optim import SGD, Adam
from synapse.train import train_tasks


class RecordedSI(SI):
    """SI that records its path: per task, [(g, theta before, theta after)] for each step."""

    def begin_task(self, task_index, task):
        self.path, self.g_final = [], None
        super().begin_task(task_index, task)

    def step(self, optimizer, g, **options):
        before = asnumpy(self.params.theta).copy()
        out = super().step(optimizer, g, **options)
        self.path.append((asnumpy(g).copy(), before, asnumpy(self.params.theta).copy()))
        return out

    def close_path(self, g_final):
        self.g_final = asnumpy(g_final).copy()
        super().close_path(g_final)

    def end_task(self, task_index, task):
        self.omega_at_end = asnumpy(self.omega).copy()      # just before Eq. 4
        self.Omega_before = asnumpy(self.Omega).copy()
        super().end_task(task_index, task)


def path_integral(path, integrator, g_final=None):
    """omega of one task from its recorded path (Eq. 2-3), the change read from the weights:
    first-order  sum_t -g(t) delta(t);  trapezoid  sum_t -(g(t) + g(t+1)) / 2 delta(t), the
    last step closed by the gradient at the final weights."""
    omega, delta_prev = np.zeros_like(path[0][0]), np.zeros_like(path[0][0])
    for g, before, after in path:
        delta = after - before
        if integrator == "first-order":
            omega -= g * delta
        else:
            omega -= 0.5 * g * (delta_prev + delta)
        delta_prev = delta
    if integrator == "trapezoid":
        assert g_final is not None, "the trainer never closed the trapezoid (close_path)"
        omega -= 0.5 * g_final * delta_prev
    return omega


def consolidated(Omega, omega, theta, theta_ref, xi):
    """Eq. 4: relu(Omega + omega / (Delta^2 + xi)), the relu on the running total."""
    return np.maximum(Omega + omega / ((theta - theta_ref) ** 2 + xi), 0.0)


@pytest.fixture(scope="module")
def digit_tasks():
    """scikit-learn's 8x8 digits as binary tasks (0/1, 2/3, ...), multi-head."""
    return split_tasks(load_dataset("digits", log=None))


# -- 1. the trainer closes the trapezoid ----------------------------------------------------
def test_trainer_closes_the_trapezoid_at_the_task_boundary(digit_tasks, device):
    """Full-batch gradient descent through ``train_tasks`` at c = 0: sum(omega) just before
    the consolidation equals the loss decrease to 0.1% (measured: 2e-5) only with the last
    half-step -g(t1) delta(t1 - 1) / 2 that the trainer's ``close_path`` adds; without it the
    sum misses by 1.4%. A tanh net keeps the path smooth, where the trapezoid is second order.
    """
    task = digit_tasks[0]
    model = mlp([64, 16, 10], seed=0, dtype=np.float64, zero_readout=False, activation="tanh",
                device=device)
    si = RecordedSI(c=0.0, integrator="trapezoid")
    history = train_tasks(model, [task], si, SGD(model.params, lr=0.2), epochs=10,
                          batch_size=len(task.x_train), progress=False)
    start = history.epochs[0]["loss"]                    # the loss at the first step
    end = float(asnumpy(model.loss_and_grad(model.xp.asarray(task.x_train, dtype=np.float64),
                                            task.y_train, task.classes)))
    decrease = start - end
    assert decrease > 0.5                                # the loss really moved
    assert len(si.path) == 10                            # one full-batch step per epoch
    assert si.omega_at_end.sum() == pytest.approx(decrease, rel=1e-3)


# -- 2. the unfused path (the trapezoid's) integrates the task gradient, penalty on ---------
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_trapezoid_integrates_the_task_gradient_with_the_penalty_on(optimizer, engine):
    """One trapezoid step with c > 0, Omega > 0 and theta != theta_ref, then ``close_path``:
    omega = -(g0 + g1) / 2 * delta0 with g0, g1 the gradients of the task loss alone, not of
    the surrogate loss the optimizer followed (Eq. 2-3); delta0 is read from the weights."""
    rng = np.random.default_rng(0)
    model = mlp([5, 4, 3], seed=1, dtype=np.float64, zero_readout=False, device=engine)
    xp = model.xp
    x, y = xp.asarray(rng.standard_normal((12, 5))), xp.asarray(rng.integers(0, 3, 12))
    opt = {"sgd": lambda p: SGD(p, lr=0.1), "momentum": lambda p: SGD(p, lr=0.1, momentum=0.9),
           "adam": lambda p: Adam(p, lr=0.05)}[optimizer](model.params)
    si = RecordedSI(c=0.7, integrator="trapezoid").attach(model)
    si.begin_task(0, None)
    size = model.params.size
    si.Omega[...] = xp.asarray(rng.uniform(0.5, 2.0, size))
    si.theta_ref[...] = model.params.theta + xp.asarray(0.5 * rng.standard_normal(size))
    model.loss_and_grad(x, y)
    si.step(opt, model.params.grad)
    model.loss_and_grad(x, y)
    si.close_path(model.params.grad)
    (g0, before, after), g1 = si.path[0], si.g_final
    delta0 = after - before
    want = -(g0 + g1) / 2 * delta0
    np.testing.assert_allclose(asnumpy(si.omega), want, rtol=1e-9, atol=1e-15)
    # the penalty's gradient is not small against g: integrating it would be visible
    Omega, ref = asnumpy(si.Omega), asnumpy(si.theta_ref)
    penalised = -(g0 + 2 * si.c * Omega * (before - ref) + g1
                  + 2 * si.c * Omega * (after - ref)) / 2 * delta0
    assert np.abs(penalised - want).max() > 0.1 * np.abs(want).max()


# -- 4. omega and Omega through training, recomputed in NumPy -------------------------------
@pytest.mark.parametrize("optimizer,integrator", [
    ("adam", "first-order"), ("momentum", "first-order"), ("adam", "trapezoid")],
    ids=["adam-fused", "momentum-fused", "adam-trapezoid"])
def test_training_omega_and_Omega_match_a_numpy_recomputation(optimizer, integrator,
                                                              digit_tasks, engine):
    """Two tasks with c > 0: on the second the penalty pulls (Omega > 0, theta != theta_ref),
    so the penalised and the task gradient differ. omega just before each consolidation is the
    path integral of the recorded task gradients (Eq. 2-3), and Omega after it is Eq. 4 with
    the relu on the running total, both recomputed from the recorded path alone. c is large
    enough that the penalty drags some weights against their task gradient (omega < 0 where
    Omega > 0: measured 146, 19 and 188 weights of 1210 on the three runs), where a relu on
    the new term alone would keep Omega instead of lowering it."""
    model = mlp([64, 16, 10], seed=0, dtype=np.float64, device=engine)
    opt = {"adam": lambda p: Adam(p, lr=0.01),
           "momentum": lambda p: SGD(p, lr=0.05, momentum=0.9)}[optimizer](model.params)
    si = RecordedSI(c=100.0, xi=1e-3, integrator=integrator)
    Omega = np.zeros(model.params.size)
    for task in digit_tasks[:2]:
        train_tasks(model, [task], si, opt, epochs=2, batch_size=32, progress=False)
        theta_ref, theta = si.path[0][1], si.path[-1][2]   # the task's first and last weights
        omega = path_integral(si.path, integrator, si.g_final)
        np.testing.assert_allclose(si.omega_at_end, omega, rtol=1e-9,
                                   atol=1e-9 * np.abs(omega).max(),
                                   err_msg=f"omega before consolidating {task.name}")
        np.testing.assert_allclose(si.Omega_before, Omega, rtol=1e-9, atol=1e-9 * Omega.max())
        pulled_back = (Omega > 0) & (omega < 0)
        Omega = consolidated(Omega, omega, theta, theta_ref, si.xi)
        np.testing.assert_allclose(asnumpy(si.Omega), Omega, rtol=1e-9,
                                   atol=1e-9 * Omega.max(), err_msg=f"Omega after {task.name}")
    assert pulled_back.any()                              # the relu of Eq. 4 had work to do
