"""The fused kernels, checked without a GPU; and their NumPy twins, checked against the paper.

Each CUDA body, with the device functions of its preamble, is (1) compiled with nvcc as CuPy
would compile it and (2) pasted into a C++ loop, built with g++ and run through the public
functions' GPU branch on NumPy arrays, then compared with the NumPy twin. Mutated bodies and
preambles must fail the same check.
"""
import dataclasses

import numpy as np
import pytest

import synapse_kernels as sk
import kernel_harness as h
from synapse_kernels import optim, si

DTYPES = [np.float32, np.float64]
SHAPES = [(1,), (7,), (1001,), (3, 5)]


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("kernel_builds")


@pytest.fixture(scope="session")
def launcher(build_dir):
    return h.CpuLauncher(build_dir)


# --- the CUDA bodies ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(h.CASES))
def test_kernel_body_matches_twin(name, dtype, launcher):
    for seed, shape in enumerate(SHAPES):
        h.check_case(h.CASES[name], launcher, dtype, shape, seed=seed)
    h.check_case(h.CASES[name], launcher, dtype, (2, 3), seed=9, strided=True)


def test_every_kernel_is_checked(launcher):
    """Each spec in si.py / optim.py is launched, in both dtypes, by some case."""
    specs = {v.name for m in (si, optim) for v in vars(m).values()
             if isinstance(v, (sk.cuda.Elementwise, sk.cuda.Reduction))}
    launched = {(s.spec.name, s.ctype) for s in h.launch_signatures()}
    assert launched == {(n, t) for n in specs for t in ("float", "double")}


def test_each_equation_is_written_once_per_backend():
    """The bodies call the shared device functions; none spells an equation out again."""
    from synapse_kernels import equations
    bodies = [v.operation if isinstance(v, sk.cuda.Elementwise) else v.map_expr
              for m in (si, optim) for v in vars(m).values()
              if isinstance(v, (sk.cuda.Elementwise, sk.cuda.Reduction))]
    for fn in ("surrogate_gradient", "path_integral", "adam_change", "sgd_change"):
        assert equations.PREAMBLE.count(f" {fn}(") == 1, fn
    for spelled_out in ("two_c *", "* d", "sqrt(", "momentum *", "Delta", "/ 2"):
        assert not any(spelled_out in body for body in bodies), spelled_out


@pytest.fixture(scope="module")
def nvcc():
    reason = h.nvcc_unavailable_reason()
    if reason:
        pytest.skip(f"cannot compile CUDA here: {reason}")


def test_cuda_source_compiles(nvcc, build_dir):
    signatures = h.launch_signatures()
    ptx = h.compile_ptx(h.cuda_source(signatures), build_dir).read_text()
    for sig in signatures:
        assert f".entry {sig.symbol}(" in ptx


def test_cupy_generated_source_compiles(nvcc, build_dir):
    """The code CuPy's own generator writes for each elementwise kernel builds with nvcc."""
    pytest.importorskip("cupy", reason="CuPy is not installed; its code generator is needed")
    signatures = h.launch_signatures()
    for ctype in ("float", "double"):
        src = h.cupy_source([s for s in signatures if s.ctype == ctype])
        ptx = h.compile_ptx(src, build_dir, include=h.cupy_include_dir()).read_text()
        assert ptx.count(".entry synapse_") == 8  # every kernel but the reduction


def test_nvcc_rejects_a_typo(nvcc, build_dir):
    typo = dataclasses.replace(optim.ADAM_STEP,
                               preamble=optim.ADAM_STEP.preamble.replace("sqrt(v)", "sqrtt(v)"))
    sig = h.Signature(typo, "float", scalars=("lr_t", "beta1", "one_minus_beta1", "beta2",
                                              "one_minus_beta2", "eps_t"))
    with pytest.raises(h.CompileError, match="sqrtt"):
        h.compile_ptx(h.cuda_source([sig]), build_dir)


# A mutant: (case, spec, field, old, new). Each must make the CPU check fail. A mutated
# preamble (an equation's device function) is launched only by the mutated spec.
MUTANTS = [
    ("adam_si_step", optim.ADAM_SI_STEP, "preamble", "return omega - g * delta",
     "return omega + g * delta"),
    ("adam_si_step", optim.ADAM_SI_STEP, "operation", "path_integral(omega, g, d)",
     "path_integral(omega, gt, d)"),
    ("sgd_si_step", optim.SGD_SI_STEP, "preamble", "return g + two_c", "return g - two_c"),
    ("sgd_si_step", optim.SGD_SI_STEP, "operation", "theta += d", "theta -= d"),
    ("adam_step", optim.ADAM_STEP, "preamble", "sqrt(v) + eps_t", "sqrt(v + eps_t)"),
    ("adam_step", optim.ADAM_STEP, "operation", "delta = d;", ""),
    ("sgd_step/no_momentum", optim.SGD_STEP, "preamble", "return -lr * g;",
     "return -lr * buf;"),
    ("penalty_grad", si.PENALTY_GRAD, "operation", "out = ", "if (i > 0) out = "),
    ("penalty_value", si.PENALTY_VALUE, "post_map_expr", "y = c * a", "y = a"),
    ("penalty_value", si.PENALTY_VALUE, "preamble", "return Omega * (theta - theta_ref)",
     "return (theta - theta_ref)"),
    ("consolidate", si.CONSOLIDATE, "operation", "theta_ref = theta;", ""),
    ("consolidate", si.CONSOLIDATE, "preamble", "Delta * Delta + xi", "Delta + xi"),
    ("omega_accumulate_trapezoid", si.OMEGA_ACCUMULATE_TRAPEZOID, "preamble",
     "(delta_prev + delta) / 2", "(delta_prev + delta)"),
    ("omega_accumulate", si.OMEGA_ACCUMULATE, "preamble", "omega - g * delta",
     "omega + g * delta"),
]


@pytest.mark.parametrize("case, spec, field, old, new", MUTANTS,
                         ids=[f"{m[0]}:{m[3]}->{m[4] or 'deleted'}" for m in MUTANTS])
def test_a_mutated_body_fails_the_check(case, spec, field, old, new, build_dir, monkeypatch):
    assert old in getattr(spec, field)
    mutant = dataclasses.replace(spec, **{field: getattr(spec, field).replace(old, new, 1)})
    module = si if any(v is spec for v in vars(si).values()) else optim
    name = next(k for k, v in vars(module).items() if v is spec)
    monkeypatch.setattr(module, name, mutant)   # the public function launches the mutant
    with pytest.raises(AssertionError):
        h.check_case(h.CASES[case], h.CpuLauncher(build_dir), np.float64, (7,))


def test_consolidate_keeps_nan_like_the_twin(launcher):
    """relu written as ``total < 0 ? 0 : total`` propagates NaN, as np.maximum does."""
    args = h.CASES["consolidate"].inputs(np, np.random.default_rng(0), (4,), np.float64)
    args["omega"][1] = np.nan
    with h.emulate_gpu(launcher):
        sk.consolidate(**args)
    assert np.isnan(args["Omega"][1]) and np.isfinite(np.delete(args["Omega"], 1)).all()


# --- the NumPy twins and the compiled CPU loops against the equations written naively ------

@pytest.fixture(params=["numpy", "numba"])
def cpu_path(request):
    """Run the test once on the NumPy twins and once on the fused CPU loops."""
    if request.param == "numba":
        pytest.importorskip("numba", reason="numba is not installed: no compiled CPU loops")
    with h.cpu_path(request.param):
        yield request.param


def test_adam_twin_is_textbook_adam(cpu_path):
    rng = np.random.default_rng(1)
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
    theta, m, v, delta = (np.zeros(5) for _ in range(4))
    theta[:] = ref = rng.standard_normal(5)
    m_ref, v_ref = np.zeros(5), np.zeros(5)
    for t in range(1, 6):
        g = rng.standard_normal(5)
        lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        sk.adam_step(theta, g, m, v, delta, lr_t, b1, b2, eps * np.sqrt(1 - b2 ** t))
        m_ref = b1 * m_ref + (1 - b1) * g                 # Kingma & Ba, Algorithm 1
        v_ref = b2 * v_ref + (1 - b2) * g ** 2
        m_hat, v_hat = m_ref / (1 - b1 ** t), v_ref / (1 - b2 ** t)
        ref = ref - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(theta, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_twin_is_heavy_ball(momentum, cpu_path):
    rng = np.random.default_rng(2)
    theta, buf, delta = rng.standard_normal(4), np.zeros(4), np.zeros(4)
    ref, ref_buf = theta.copy(), np.zeros(4)
    for _ in range(4):
        g = rng.standard_normal(4)
        sk.sgd_step(theta, g, buf, delta, 0.1, momentum)
        ref_buf = momentum * ref_buf + g                  # PyTorch's SGD with momentum
        ref = ref - 0.1 * ref_buf
        np.testing.assert_allclose(theta, ref, rtol=1e-12)


def test_consolidate_twin_is_eq4(cpu_path):
    rng = np.random.default_rng(3)
    Omega, omega, theta, theta_ref = rng.standard_normal((4, 6))
    xi = 0.1
    want = [max(O + w / ((t - r) ** 2 + xi), 0.0)          # Eq. 4, element by element
            for O, w, t, r in zip(Omega, omega, theta, theta_ref)]
    sk.consolidate(Omega, omega, theta, theta_ref, xi)
    np.testing.assert_allclose(Omega, want, rtol=1e-12)
    assert (theta_ref == theta).all() and (omega == 0).all()


def test_omega_twins_integrate_the_loss_change(cpu_path):
    """On a quadratic loss the trapezoid path integral is exact: sum(omega) = L(0) - L(T);
    the first-order one is the same sum with g(t) alone (Eq. 2-3)."""
    rng = np.random.default_rng(4)
    a = rng.uniform(0.5, 2.0, 8)
    loss, grad = (lambda th: 0.5 * np.sum(a * th ** 2)), (lambda th: a * th)
    theta = rng.standard_normal(8)
    start = loss(theta)
    omega1, omega2, delta_prev, delta = np.zeros(8), np.zeros(8), np.zeros(8), np.zeros(8)
    first_order = np.zeros(8)
    for _ in range(50):
        g = grad(theta)
        delta[:] = -0.05 * g + 0.01 * rng.standard_normal(8)
        sk.omega_accumulate(omega1, g, delta)
        sk.omega_accumulate_trapezoid(omega2, g, delta_prev, delta)
        first_order -= g * delta
        theta += delta
    sk.omega_accumulate_trapezoid(omega2, grad(theta), delta_prev, np.zeros(8))
    np.testing.assert_allclose(omega1, first_order, rtol=1e-12)
    np.testing.assert_allclose(omega2.sum(), start - loss(theta), rtol=1e-10)


def test_penalty_grad_is_the_gradient_of_penalty_value(cpu_path):
    rng = np.random.default_rng(5)
    Omega, theta_ref = rng.uniform(0, 1, (2, 3)), rng.standard_normal((2, 3))
    theta, g, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), 0.7
    out = sk.penalty_grad(g, Omega, theta, theta_ref, c, np.empty_like(g))
    numeric = np.empty_like(theta)
    for k in np.ndindex(theta.shape):  # central differences on the 2-D array
        e = np.zeros_like(theta)
        e[k] = 1e-6
        numeric[k] = (sk.penalty_value(Omega, theta + e, theta_ref, c)
                      - sk.penalty_value(Omega, theta - e, theta_ref, c)) / 2e-6
    np.testing.assert_allclose(out - g, numeric, rtol=1e-6, atol=1e-9)
    Delta = theta - theta_ref
    assert sk.penalty_value(Omega, theta, theta_ref, c).shape == ()
    np.testing.assert_allclose(sk.penalty_value(Omega, theta, theta_ref, c),
                               c * np.sum(Omega * Delta ** 2), rtol=1e-12)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_si_steps_are_penalty_then_step_then_omega(optimizer, cpu_path):
    rng = np.random.default_rng(6)
    theta, g, omega, theta_ref = rng.standard_normal((4, 5))
    Omega, c = rng.uniform(0, 1, 5), 0.5
    state = [rng.standard_normal(5)] + ([rng.uniform(0, 1, 5)] if optimizer == "adam" else [])
    gt = g + 2 * c * Omega * (theta - theta_ref)                  # Eq. 1, gradient
    if optimizer == "adam":
        m = 0.9 * state[0] + 0.1 * gt
        v = 0.999 * state[1] + 0.001 * gt ** 2
        want_delta = -1e-2 * m / (np.sqrt(v) + 1e-6)
    else:
        want_delta = -0.1 * (0.9 * state[0] + gt)
    want_theta, want_omega = theta + want_delta, omega - g * want_delta  # Eq. 2-3 with g
    before = theta.copy()
    if optimizer == "adam":
        sk.adam_si_step(theta, g, *state, omega, Omega, theta_ref, c, **h.ADAM)
    else:
        sk.sgd_si_step(theta, g, *state, omega, Omega, theta_ref, c, 0.1, 0.9)
    for got, want in [(theta - before, want_delta), (theta, want_theta), (omega, want_omega)]:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
