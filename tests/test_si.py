"""Synaptic Intelligence: the path-integral identity (Eq. 3) and Eq. 1 and 4 as written."""
import os

import numpy as np
import pytest
from hypothesis import assume, event, example, given, settings, strategies as st, HealthCheck

from synapse.backend import asnumpy
from synapse.gradcheck import numerical_grad
from synapse.methods import SI, make_method
from synapse.model import mlp
from synapse.optim import SGD, Adam
from synapse_kernels import consolidate, penalty_grad, penalty_value

EXAMPLES = int(os.environ.get("SI_EXAMPLES", 12))   # raise for a longer search
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def path_integral(optimizer, lr, duration, integrator, seed, sizes, n, activation="tanh",
                  device="cpu"):
    """Train full-batch for duration / lr steps; return (sum(omega), L(t0) - L(t1))."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, sizes[0])), rng.integers(0, sizes[-1], n)
    model = mlp(sizes, seed=seed, dtype=np.float64, zero_readout=False, activation=activation,
                device=device)
    opt = {"sgd": lambda p: SGD(p, lr=lr), "momentum": lambda p: SGD(p, lr=lr, momentum=0.9),
           "adam": lambda p: Adam(p, lr=lr)}[optimizer](model.params)
    si = SI(c=0.0, integrator=integrator).attach(model)
    loss0 = float(asnumpy(model.loss_and_grad(x, y)))
    for _ in range(int(round(duration / lr))):
        si.step(opt, model.params.grad)
        loss1 = float(asnumpy(model.loss_and_grad(x, y)))
    si.close_path(model.params.grad)             # trapezoid: g at theta(t1) closes the sum
    return float(asnumpy(si.omega.sum())), loss0 - loss1


def errors(optimizer, lrs, duration, integrator, signs=None, **kw):
    """[(|sum(omega) - (L(t0) - L(t1))|, L(t0) - L(t1))] for each lr; the signs of the errors
    are appended to ``signs`` if given."""
    out = []
    for lr in lrs:
        total, decrease = path_integral(optimizer, lr, duration, integrator, **kw)
        out.append((abs(total - decrease), decrease))
        if signs is not None:
            signs.append(np.sign(total - decrease))
    return out


EPS = np.finfo(np.float64).eps


def extrapolated_ratios(lr0, duration, integrator, levels, **kw):
    """Yield (lr, signed error, Richardson ratio R, roundoff floor) as lr halves from lr0.

    Signed errors e(lr) = sum(omega) - (L(t0) - L(t1)) = lr^p (a + b lr + O(lr^2)) give halving
    ratios r(lr) = e(lr) / e(lr/2) = 2^p (1 + b lr / (2a) + O(lr^2)); the Richardson step
    R = 2 r(lr/2) - r(lr) = 2^p + O(lr^2) removes the linear correction. R is None until three
    step sizes are in. The floor is the float64 rounding of the sum of lr^-1 terms of size
    |sum(omega)| (random-walk estimate): errors near it carry no order."""
    es = []
    for i in range(levels):
        lr = lr0 / 2 ** i
        total, decrease = path_integral("sgd", lr, duration, integrator, **kw)
        es.append(total - decrease)
        ratio = None if i < 2 else 2 * es[-2] / es[-1] - es[-3] / es[-2]
        floor = EPS * np.sqrt(duration / lr) * (abs(total) + 1.0)
        yield lr, es[-1], decrease, ratio, floor


def observed_order(integrator, lr0=0.04, duration=1.0, levels=10, **kw):
    """Halve lr until the extrapolated ratio R is in its asymptotic regime; return the evidence.

    The leading coefficient a of the error is an integral along the path (for the first-order
    sum 1/2 int g^T H g dt) and can nearly cancel; then b lr outweighs a at the usual step sizes
    and no fixed set of step sizes shows the order (the old test's seed 441 example: R = 4.69
    at lr = 0.01, 4.28 at lr = 0.005, -> 4). So this halves lr until the regime is reached, a
    condition checked on the data: the successive changes D of R shrink at least twofold twice
    in a row (R = 2^p + O(lr^2) makes them shrink fourfold), or R has settled (|D| < 1e-3 2^p
    twice). From there the rest of the sequence moves R by at most sum_k |D| 2^-k = |D|, so
    2^p lies within 2 |D| (+ 5% for the O(lr^3) terms) of the last R. Returns a dict with the
    last R and D, the errors, or ``reason`` when the regime was not reached above the
    roundoff floor (the example carries no evidence either way)."""
    ratios, changes, errors = [], [], []
    for lr, e, decrease, ratio, floor in extrapolated_ratios(lr0, duration, integrator, levels,
                                                             **kw):
        errors.append(e)
        if abs(e) < 1e3 * floor:
            return dict(reason="roundoff", lr=lr, errors=errors)
        if ratio is None:
            continue
        ratios.append(ratio)
        if len(ratios) >= 2:
            changes.append(ratios[-1] - ratios[-2])
        if len(changes) >= 3:
            d3, d2, d1 = (abs(d) for d in changes[-3:])
            settled = 1e-3 * 2 ** ORDERS[integrator][0]
            if (d2 <= d3 / 2 and d1 <= d2 / 2) or (d1 < settled and d2 < settled):
                return dict(R=ratios[-1], D=changes[-1], lr=lr, error=e, decrease=decrease,
                            errors=errors)
    return dict(reason="no asymptotic regime within the halvings", lr=lr, errors=errors)


net = dict(seed=st.integers(0, 10_000), sizes=st.sampled_from([[3, 4, 2], [4, 6, 3], [5, 3, 3, 2]]),
           n=st.integers(4, 16))


# integrator: (order p, final error bound relative to the loss decrease)
ORDERS = {"first-order": (1, 0.05),      # halving lr halves the error
          "trapezoid": (2, 1e-3)}        # halving lr quarters it


@pytest.mark.parametrize("integrator", sorted(ORDERS))
@settings(max_examples=EXAMPLES, **SETTINGS)
@given(**net)
@example(seed=441, sizes=[4, 6, 3], n=7)       # leading term nearly cancelled (the old flake)
def test_path_integral_converges_at_the_integrators_order(integrator, seed, sizes, n):
    """Plain gradient descent: sum(omega) = L(t0) - L(t1) + O(lr^p), p = 1 for the paper's
    first-order sum and p = 2 for the trapezoid; the order is read off where the error's
    expansion has reached its asymptotic regime (see ``observed_order``).

    Checked over 3,000 random (not derandomized) examples per integrator, ``env -u CI
    SI_EXAMPLES=3000 python -m pytest tests/test_si.py -k converges``: no failure; set aside
    were 0.13% (first-order) and 0.86% (trapezoid) of the examples, where the loss barely moved
    or the error sat at float64 rounding."""
    p, final = ORDERS[integrator]
    found = observed_order(integrator, seed=seed, sizes=sizes, n=n)
    event(found.get("reason", f"regime reached at lr = {found['lr']:g}"))
    assume("reason" not in found)                  # errors at float64 rounding: no order to see
    assume(found["decrease"] > 1e-2)               # the loss moved
    R, D = found["R"], found["D"]
    assert abs(R - 2 ** p) <= 2 * abs(D) + 0.05 * 2 ** p, found
    assert abs(found["error"]) / found["decrease"] < final, found


@pytest.mark.parametrize("optimizer,lrs,duration", [("momentum", [0.01, 0.005, 0.0025], 0.5),
                                                    ("adam", [0.004, 0.002, 0.001], 0.1)])
@settings(max_examples=5, **SETTINGS)
@given(seed=st.integers(0, 10_000))
def test_path_integral_with_actual_deltas(optimizer, lrs, duration, seed):
    """Momentum and Adam: with the optimizer's actual change delta the identity still holds.

    The first-order error still shrinks at first order; its observed order p (over two
    halvings of lr) is not exactly 1 because these optimizers' paths themselves change with lr
    (their moment averages run over a fixed number of steps), so p is only bracketed. The
    trapezoid error is far smaller."""
    kw = dict(seed=seed, sizes=[4, 6, 3], n=12)
    first = errors(optimizer, lrs, duration, "first-order", **kw)
    trap = errors(optimizer, lrs, duration, "trapezoid", **kw)
    (e1, d), (e2, _), (e3, _) = first
    assume(d > 1e-2)
    assert e1 > e2 > e3, (e1, e2, e3)
    order = np.log2(e1 / e3) / 2
    assert 0.8 < order < 1.7, (order, e1, e2, e3)
    assert e3 / d < 0.05
    assert trap[-1][0] < e3 / 20


def test_path_integral_relu_network():
    """The split-MNIST architecture's ReLU: the first-order identity holds as well."""
    (e1, d), (e2, _) = errors("sgd", [0.02, 0.01], 1.0, "first-order", seed=3,
                              sizes=[6, 8, 8, 3], n=20, activation="relu")
    assert d > 0.05 and e2 < e1 and e2 / d < 0.05


# -- Eq. 1 and Eq. 4 against direct transcriptions ------------------------------------------
def random_state(xp, rng, size=50, dtype=np.float64):
    f = lambda *a: xp.asarray(rng.standard_normal(size).astype(dtype))  # noqa: E731
    return f(), f(), f(), xp.asarray(np.abs(rng.standard_normal(size)).astype(dtype))


def test_penalty_and_gradient_match_eq1(xp, rng):
    theta, theta_ref, g, Omega = random_state(xp, rng)
    c = 0.7
    value = float(asnumpy(penalty_value(Omega, theta, theta_ref, c)))
    expect = c * sum(O * (t - r) ** 2 for O, t, r in zip(asnumpy(Omega), asnumpy(theta),
                                                        asnumpy(theta_ref)))
    assert value == pytest.approx(expect, rel=1e-12)
    out = xp.empty_like(g)
    penalty_grad(g, Omega, theta, theta_ref, c, out)
    np.testing.assert_allclose(asnumpy(out), asnumpy(g + 2 * c * Omega * (theta - theta_ref)),
                               rtol=1e-12)
    if xp is np:   # finite differences of the value
        numeric = numerical_grad(lambda: penalty_value(Omega, theta, theta_ref, c), theta)
        np.testing.assert_allclose(asnumpy(out - g), numeric, rtol=1e-6, atol=1e-8)


def test_consolidation_matches_eq4(xp, rng):
    theta, theta_ref, omega, Omega = random_state(xp, rng)
    omega = omega * 0.1
    xi = 1e-3
    want = np.maximum(asnumpy(Omega) + asnumpy(omega) / ((asnumpy(theta) - asnumpy(theta_ref)) ** 2
                                                         + xi), 0)
    theta_np = asnumpy(theta).copy()
    consolidate(Omega, omega, theta, theta_ref, xi)
    np.testing.assert_allclose(asnumpy(Omega), want, rtol=1e-12)
    np.testing.assert_array_equal(asnumpy(theta_ref), theta_np)
    assert not asnumpy(omega).any()


def test_omega_adds_up_over_tasks(rng):
    """Omega is a running total over tasks: two consolidations equal the sum of both terms."""
    model = mlp([3, 2], dtype=np.float64, zero_readout=False)
    si = SI(c=1.0, xi=0.1).attach(model)
    expected = np.zeros(model.params.size)
    for task in range(2):
        si.omega[...] = np.abs(rng.standard_normal(model.params.size))
        model.params.theta += rng.standard_normal(model.params.size) * 0.1
        expected += si.omega / ((model.params.theta - si.theta_ref) ** 2 + 0.1)
        si.end_task(task, None)
    np.testing.assert_allclose(si.Omega, expected, rtol=1e-12)


# -- behaviour of the importance ------------------------------------------------------------
def _train_si(model, si, opt, x, y, steps):
    for _ in range(steps):
        model.loss_and_grad(x, y)
        si.step(opt, model.params.grad)


def test_frozen_parameter_gets_no_importance(rng):
    model = mlp([4, 5, 3], dtype=np.float64, zero_readout=False)
    model.freeze(["dense0.b"])
    si = SI(c=1.0, xi=1e-3).attach(model)
    x, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    _train_si(model, si, Adam(model.params, lr=0.01), x, y, 20)
    sl = model.params.slices["dense0.b"]
    assert not si.omega[sl].any()
    si.end_task(0, None)
    assert not si.Omega[sl].any()
    assert si.Omega.sum() > 0


def test_harmful_change_is_clamped_to_zero(rng):
    """A parameter whose change raised the loss (omega < 0) ends with Omega = 0, not < 0."""
    model = mlp([3, 2], dtype=np.float64, zero_readout=False)
    si = SI(c=1.0, xi=1e-3).attach(model)
    x, y = rng.standard_normal((8, 3)), rng.integers(0, 2, 8)
    model.loss_and_grad(x, y)
    g = model.params.grad.copy()
    delta = 0.01 * g                                # a step *up* the gradient
    model.params.theta += delta
    si.omega -= g * delta                           # Eq. 2-3 with that actual change
    harmed = si.omega < 0                           # every weight that moved: g * delta > 0
    assert harmed.sum() > 0
    si.end_task(0, None)
    assert (si.Omega >= 0).all()
    assert not si.Omega[harmed].any()               # relu(0 + negative) = 0


def test_xi_bounds_omega_when_delta_is_tiny():
    model = mlp([2, 2], dtype=np.float64, zero_readout=False)
    si = SI(c=1.0, xi=0.5).attach(model)
    si.omega[...] = 2.0                             # but theta never moved: Delta = 0
    si.end_task(0, None)
    np.testing.assert_allclose(si.Omega, 2.0 / 0.5)


def test_readout_can_be_excluded(rng):
    model = mlp([4, 5, 3], dtype=np.float64, zero_readout=False)
    si = SI(c=1.0, exclude=model.readout_names()).attach(model)
    x, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    _train_si(model, si, Adam(model.params, lr=0.01), x, y, 10)
    si.end_task(0, None)
    for name in model.readout_names():
        assert not si.Omega[model.params.slices[name]].any()
    assert si.Omega[model.params.slices["dense0.W"]].any()


@pytest.mark.parametrize("bad", [dict(c=-1.0), dict(xi=0.0), dict(xi=-1e-3), dict(c=float("nan")),
                                 dict(xi=float("nan")), dict(integrator="euler")])
def test_invalid_hyperparameters_are_rejected(bad):
    with pytest.raises((ValueError, TypeError)) as err:
        SI(**bad)
    assert list(bad)[0] in str(err.value)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown method 'foo'"):
        make_method("foo")


def test_penalty_pulls_toward_reference(rng):
    """With Omega > 0 and c large, training on a new task stays near theta_ref."""
    x, y = rng.standard_normal((20, 4)), rng.integers(0, 3, 20)
    drift = {}
    for c in (0.0, 10.0):
        model = mlp([4, 6, 3], seed=1, dtype=np.float64, zero_readout=False)
        si = SI(c=c, xi=1e-3).attach(model)
        opt = Adam(model.params, lr=0.01)
        _train_si(model, si, opt, x, y, 30)
        si.end_task(0, None)
        _train_si(model, si, opt, x, (y + 1) % 3, 30)
        drift[c] = float(np.sqrt((si.Omega * (model.params.theta - si.theta_ref) ** 2).sum()))
    assert drift[10.0] < 0.5 * drift[0.0]


@pytest.mark.parametrize("path", ["numpy", "numba"])
@pytest.mark.parametrize("optimizer", ["adam", "momentum"])
def test_the_fused_si_step_is_the_unfused_one_bit_for_bit(path, optimizer, rng):
    """``opt.step_si`` (one pass) and the unfused path (penalty gradient, ``opt.step``, omega
    from the change it returns) compute the same equations in the same order: theta, omega
    and the optimizer's state agree to the last bit, with the penalty on."""
    from synapse_kernels import cpu
    if path == "numba":
        pytest.importorskip("numba", reason="numba is not installed: no compiled CPU loops")
    x, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    Omega = rng.uniform(0, 1, mlp([5, 4, 3], seed=1).params.size)
    runs = []
    with cpu.path(path):
        for fused in (True, False):
            model = mlp([5, 4, 3], seed=1, dtype=np.float64, zero_readout=False)
            opt = (Adam(model.params, lr=0.05) if optimizer == "adam"
                   else SGD(model.params, lr=0.05, momentum=0.9))
            opt.fuses_si = fused
            si = SI(c=0.5).attach(model)
            si.Omega[...] = Omega
            for _ in range(3):
                model.loss_and_grad(x, y)
                si.step(opt, model.params.grad)
            runs.append((model.params.theta.copy(), si.omega.copy(), opt.state_dict()))
    (theta1, omega1, state1), (theta2, omega2, state2) = runs
    assert np.abs(omega1).max() > 0 and np.abs(theta1 - theta2).max() == 0
    np.testing.assert_array_equal(theta1, theta2)
    np.testing.assert_array_equal(omega1, omega2)
    for name in state1:
        np.testing.assert_array_equal(state1[name], state2[name])
