"""synapse's Adam against the textbook update written out by hand in float64, without torch.

Kingma & Ba (2015), Algorithm 1, with the epsilon where PyTorch puts it (synapse/optim.py):

    m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2,
    m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t),   theta -= lr m_hat / (sqrt(v_hat) + eps).

The optimizer folds both bias corrections into host scalars (``lr_t``, ``eps_t``); this checks
those scalars through ``Adam.step`` and ``Adam.step_si`` on every kernel path, so a wrong
correction of the step or of eps fails here even where torch (test_torch_crosscheck.py) is not
installed. The gradients span nine decades, so that eps matters for the smallest of them.
"""
import numpy as np
import pytest

from synapse.backend import asnumpy, xp_for
from synapse.optim import Adam
from synapse.params import ParamStore

SIZE = 10
SETTINGS = [dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),       # the defaults
            dict(lr=0.05, beta1=0.5, beta2=0.9, eps=1e-3)]


def textbook_adam(theta, grads, lr, beta1, beta2, eps):
    """Yield theta after each step of Algorithm 1 (float64, one line per equation)."""
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        yield theta


def gradients(rng, steps):
    """``steps`` gradients whose elements range over magnitudes 1e-9 .. 1, random signs."""
    scale = np.logspace(-9, 0, SIZE)
    return [scale * rng.standard_normal(SIZE) for _ in range(steps)]


def store(device, theta):
    params = ParamStore([("w", (SIZE,))], xp=xp_for(device), dtype=np.float64)
    params.theta[...] = params.xp.asarray(theta)
    return params


def assert_steps_match(got_theta, want_theta, got_before, want_before, step):
    """The weights agree, and so does the change of this step (read from the weights)."""
    np.testing.assert_allclose(got_theta, want_theta, rtol=1e-12, atol=1e-15,
                               err_msg=f"theta after step {step}")
    np.testing.assert_allclose(got_theta - got_before, want_theta - want_before, rtol=1e-9,
                               atol=1e-15, err_msg=f"the change of step {step}")


def steps_follow_the_textbook(opt, params, start, grads, hyper):
    """``opt.step`` on each gradient moves theta from ``start`` as the textbook update does."""
    want_before = start
    for t, (g, want) in enumerate(zip(grads, textbook_adam(start, grads, **hyper)), start=1):
        before = asnumpy(params.theta).copy()
        opt.step(params.xp.asarray(g))
        assert_steps_match(asnumpy(params.theta), want, before, want_before, t)
        want_before = want


@pytest.mark.parametrize("hyper", SETTINGS, ids=["defaults", "large-eps"])
def test_adam_step_is_textbook_adam_with_both_bias_corrections(hyper, engine):
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal(SIZE)
    grads = gradients(rng, 6)
    params = store(engine, theta0)
    opt = Adam(params, **hyper)
    steps_follow_the_textbook(opt, params, theta0, grads, hyper)


@pytest.mark.parametrize("hyper", SETTINGS, ids=["defaults", "large-eps"])
def test_adam_restarts_its_bias_correction_after_reset(hyper, engine):
    """``reset`` (between tasks) restarts t: the next step is a first step again."""
    rng = np.random.default_rng(1)
    theta0 = rng.standard_normal(SIZE)
    params = store(engine, theta0)
    opt = Adam(params, **hyper)
    for g in gradients(rng, 3):
        opt.step(params.xp.asarray(g))
    opt.reset()
    start = asnumpy(params.theta).copy()
    grads = gradients(rng, 2)
    steps_follow_the_textbook(opt, params, start, grads, hyper)


@pytest.mark.parametrize("hyper", SETTINGS, ids=["defaults", "large-eps"])
def test_adam_fused_with_si_is_textbook_adam_on_the_surrogate_gradient(hyper, engine):
    """``step_si`` (SI's fused pass): textbook Adam on g + 2 c Omega (theta - theta_ref)
    (Eq. 1), and omega += -g * delta with the task gradient g (Eq. 2-3)."""
    rng = np.random.default_rng(2)
    theta0, theta_ref = rng.standard_normal(SIZE), rng.standard_normal(SIZE)
    Omega, c = rng.uniform(0.5, 2.0, SIZE), 0.3
    grads = gradients(rng, 6)
    params = store(engine, theta0)
    xp = params.xp
    opt = Adam(params, **hyper)
    omega, Omega_d, theta_ref_d = xp.zeros(SIZE), xp.asarray(Omega), xp.asarray(theta_ref)
    m, v, want, want_omega = np.zeros(SIZE), np.zeros(SIZE), theta0.copy(), np.zeros(SIZE)
    for t, g in enumerate(grads, start=1):
        gt = g + 2 * c * Omega * (want - theta_ref)       # Eq. 1, at the textbook's weights
        m = hyper["beta1"] * m + (1 - hyper["beta1"]) * gt
        v = hyper["beta2"] * v + (1 - hyper["beta2"]) * gt ** 2
        m_hat, v_hat = m / (1 - hyper["beta1"] ** t), v / (1 - hyper["beta2"] ** t)
        step = -hyper["lr"] * m_hat / (np.sqrt(v_hat) + hyper["eps"])
        want_omega -= g * step
        before = asnumpy(params.theta).copy()
        opt.step_si(xp.asarray(g), omega, Omega_d, theta_ref_d, c)
        assert_steps_match(asnumpy(params.theta), want + step, before, want, t)
        want = want + step
        np.testing.assert_allclose(asnumpy(omega), want_omega, rtol=1e-9, atol=1e-15)
