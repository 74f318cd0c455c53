"""The fused CPU loops (numba) against their NumPy twins: call by call, through whole
training runs, and how the CPU path is chosen (SYNAPSE_CPU_KERNELS, a missing numba, a
read-only cache folder)."""
import dataclasses
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kernel_harness as h
import synapse_kernels as sk
from synapse_kernels import cpu

pytest.importorskip("numba", reason="numba is not installed: the twins are all there is")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = [np.float32, np.float64]
# The twins and the loops do the same operations in the same order; only where a host
# scalar is rounded to float32 (the loop, as CuPy does) or kept in float64 (a NumPy scalar in
# the twin) can they differ, by an ulp or so.
TOLERANCE = {np.dtype(np.float32): 3e-6, np.dtype(np.float64): 1e-14}


class Spy:
    """Counts the fused loops that actually ran."""

    def __init__(self, monkeypatch):
        self.ran = []
        call = cpu.Loop.__call__

        def spying(loop, *args):
            self.ran.append(loop.name)
            return call(loop, *args)
        monkeypatch.setattr(cpu.Loop, "__call__", spying)


def run_both(case, dtype, make_views=lambda a: a, shape=(7,), seed=0):
    """Run ``case`` on the twins and on the loops from the same inputs; return both."""
    base = case.inputs(np, np.random.default_rng(seed), shape, dtype)
    results = {}
    for path in ("numpy", "numba"):
        args = {k: (make_views(v.copy()) if isinstance(v, np.ndarray) else v)
                for k, v in base.items()}
        with h.cpu_path(path):
            ret = case.call(args)
        results[path] = args, ret
    return results


def assert_same(results, dtype, what):
    (want, want_ret), (got, got_ret) = results["numpy"], results["numba"]
    tol = TOLERANCE[np.dtype(dtype)]
    for name, w in want.items():
        if isinstance(w, np.ndarray):
            np.testing.assert_allclose(got[name], w, rtol=tol, atol=tol,
                                       err_msg=f"{what}: array {name}")
    if want_ret is None:                 # an update that kept no change
        assert got_ret is None, f"{what}: returned {type(got_ret)}, expected None"
        return
    np.testing.assert_allclose(got_ret, want_ret, rtol=tol, atol=tol, err_msg=f"{what}: return")
    assert np.asarray(got_ret).dtype == np.asarray(want_ret).dtype


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(h.CASES))
def test_loop_matches_twin(name, dtype, monkeypatch):
    spy = Spy(monkeypatch)
    for seed, shape in enumerate([(1,), (7,), (1001,), (3, 5), (4099,)]):
        assert_same(run_both(h.CASES[name], dtype, shape=shape, seed=seed), dtype,
                    f"{name} {shape}")
    assert len(spy.ran) == 5, "the compiled loop did not run"


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(set(h.CASES) - {"penalty_value"}))
def test_loop_is_the_twin_bit_for_bit_on_python_scalars(name, dtype):
    """With Python floats for the scalars, as the optimizers pass them, the twins' NumPy
    rounds each scalar to the arrays' dtype as the loop does: every bit agrees. (The sum in
    penalty_value is taken in another order, so it agrees to rounding only.)"""
    case = dataclasses.replace(h.CASES[name],
                               scalars={k: float(v) for k, v in h.CASES[name].scalars.items()})
    results = run_both(case, dtype, shape=(1001,))
    (want, _), (got, _) = results["numpy"], results["numba"]
    for key, w in want.items():
        if isinstance(w, np.ndarray):
            np.testing.assert_array_equal(got[key], w, err_msg=f"{name}: array {key}")


def strided_1d(x):
    """Every other element of a wider array: a 1-d view with a stride of two."""
    wide = np.full(x.shape[0] * 2, np.nan, dtype=x.dtype)
    wide[::2] = x
    return wide[::2]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(h.CASES))
def test_loop_writes_through_strided_views(name, dtype, monkeypatch):
    """A 1-d view runs the loop in place and leaves the elements between untouched."""
    spy = Spy(monkeypatch)
    results = run_both(h.CASES[name], dtype, make_views=strided_1d, shape=(1001,))
    assert_same(results, dtype, name)
    assert spy.ran, "the compiled loop did not take the strided view"
    for a in results["numba"][0].values():
        if isinstance(a, np.ndarray) and a.base is not None:
            assert np.isnan(a.base[1::2]).all(), "an element outside the view was written"


@pytest.mark.parametrize("name", ["adam_si_step", "consolidate", "penalty_grad"])
def test_a_strided_2d_view_falls_back_to_the_twin(name, monkeypatch):
    """A view that cannot be flattened without a copy runs the twin, in place, correctly."""
    spy = Spy(monkeypatch)
    results = run_both(h.CASES[name], np.float64, make_views=lambda a: h._strided_copy(np, a),
                       shape=(3, 5))
    assert_same(results, np.float64, name)
    assert spy.ran == []


def test_a_read_only_array_gets_numpys_error_and_the_loops_stay_on(monkeypatch):
    theta = np.zeros(5)
    theta.flags.writeable = False
    with h.cpu_path("auto"):
        with pytest.raises(ValueError, match="read-only"):
            sk.adam_step(theta, np.ones(5), np.zeros(5), np.zeros(5), np.empty(5), 1e-3, 0.9,
                         0.999, 1e-8)
        spy = Spy(monkeypatch)
        sk.adam_step(np.zeros(5), np.ones(5), np.zeros(5), np.zeros(5), np.empty(5), 1e-3,
                     0.9, 0.999, 1e-8)
        assert spy.ran == ["adam_step_loop"]
        assert sk.cpu_path().startswith("numba ")


def test_updates_are_in_place_and_return_their_output():
    rng = np.random.default_rng(0)
    theta, g, m, v, delta, omega, Omega, ref = (rng.standard_normal(9) for _ in range(8))
    v, Omega = np.abs(v), np.abs(Omega)
    parent = np.zeros(20)
    parent[5:14] = theta
    theta = parent[5:14]                                   # a view into a larger vector
    with h.cpu_path("numba"):
        assert sk.adam_step(theta, g, m, v, delta, **h.ADAM) is delta
        assert sk.adam_si_step(theta, g, m, v, omega, Omega, ref, 0.5, **h.ADAM) is None
        np.testing.assert_array_equal(parent[5:14], theta)
        assert (parent[:5] == 0).all() and (parent[14:] == 0).all()
        assert sk.omega_accumulate(omega, g, delta) is omega
        assert sk.consolidate(Omega, omega, theta, ref, 0.1) is Omega
        assert (omega == 0).all() and (ref == theta).all()
        out = np.empty(9)
        assert sk.penalty_grad(g, Omega, theta, ref, 0.7, out=out) is out


def test_penalty_value_of_a_large_float32_vector_is_accurate():
    """The loop sums in float64: on 2^22 float32 elements it is within float32 rounding of
    the exact value (a float32 running sum would be off by ~1e-3 relative)."""
    rng = np.random.default_rng(1)
    n = 1 << 22
    Omega, theta, ref = (rng.random(n, dtype=np.float32) for _ in range(3))
    exact = 0.3 * np.sum(Omega.astype(np.float64) * (theta.astype(np.float64) - ref) ** 2)
    with h.cpu_path("numba"):
        got = sk.penalty_value(Omega, theta, ref, 0.3)
    assert got.dtype == np.float32 and got.shape == ()
    assert abs(float(got) - exact) <= 1e-6 * exact


def test_warm_compiles_every_loop_for_the_dtype():
    """After the optimizer is built no loop is left to compile for its dtype."""
    from synapse.model import mlp
    from synapse.optim import Adam
    from synapse_kernels import warm
    with h.cpu_path("numba"):
        Adam(mlp([5, 3], seed=0, dtype=np.float64).params)
        assert np.dtype(np.float64) in warm._warm
        for loop in cpu._loops:
            sigs = [[str(t) for t in s] for s in loop.jit().signatures]
            assert any(s[0] == "array(float64, 1d, C)" for s in sigs), loop.name


def test_the_kernels_import_no_circle():
    """cpu.py compiles loops and knows nothing of the kernels that use it."""
    import ast
    import pathlib
    source = (pathlib.Path(sk.__file__).parent / "cpu.py").read_text()
    imported = {node.module for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom)}
    assert not imported & {"optim", "si", "warm", "equations"}, imported


def test_an_edited_equation_is_compiled_afresh(tmp_path):
    """numba checks only the cached loop's own file; the cache folder is named after all
    the kernels' source, so an equation edited in equations.py never runs stale."""
    site = tmp_path / "site"
    shutil.copytree(os.path.join(ROOT, "kernels"), site / "synapse_kernels",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = """
        import numpy as np, synapse_kernels as sk
        print(sk.penalty_grad(np.ones(3), np.ones(3), np.full(3, 2.0), np.zeros(3), 1.0,
                              np.empty(3)).tolist())
    """
    env = {"PYTHONPATH": str(site), "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "SYNAPSE_CPU_KERNELS": "numba"}
    first = python(code, env=env, cwd=tmp_path)
    equations = site / "synapse_kernels" / "equations.py"
    edited = equations.read_text().replace("return g + two_c * (Omega", "return g - two_c * (Omega")
    assert edited != equations.read_text()
    equations.write_text(edited)
    second = python(code, env=env, cwd=tmp_path)
    assert first == (0, "[5.0, 5.0, 5.0]\n"), first
    assert second == (0, "[-3.0, -3.0, -3.0]\n"), second


# --- whole training runs -----------------------------------------------------------------

def train(tasks, method, optimizer, path, dtype):
    from synapse.methods import make_method
    from synapse.model import mlp
    from synapse.train import train_tasks
    with h.cpu_path(path):
        model = mlp([64, 32, 32, 10], seed=0, dtype=dtype)
        m = make_method(**method)
        opt = optimizer(model.params)
        hist = train_tasks(model, tasks, m, opt, epochs=2, batch_size=32, seed=0, progress=False)
    return model.params.theta, m, hist


@pytest.fixture(scope="module")
def tasks():
    from synapse.data import load_dataset, split_tasks
    return split_tasks(load_dataset("digits", log=None))[:3]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("method,optimizer", [
    (dict(name="si", c=1.0, xi=1e-3), "adam"),
    (dict(name="si", c=0.5, integrator="trapezoid"), "adam"),
    (dict(name="si", c=1.0), "sgd-momentum"),
    (dict(name="ewc", c=5.0, fisher_samples=20), "adam"),
], ids=["si-adam-fused", "si-trapezoid", "si-sgd-momentum-fused", "ewc-penalty"])
def test_training_on_the_loops_is_bit_for_bit_the_twins(tasks, method, optimizer, dtype,
                                                        monkeypatch):
    """The loops group every product as the twins do and round the engine's scalars as the
    twins' NumPy does, so whole runs agree to the last bit; only the logged penalty value,
    summed in another order (float64 in the loop), differs by rounding."""
    from synapse.optim import SGD, Adam
    make = Adam if optimizer == "adam" else (lambda p: SGD(p, lr=0.05, momentum=0.9))
    theta_t, m_t, h_t = train(tasks, method, make, "numpy", dtype)
    spy = Spy(monkeypatch)
    theta_n, m_n, h_n = train(tasks, method, make, "numba", dtype)
    assert spy.ran, "no compiled loop ran"
    np.testing.assert_array_equal(theta_n, theta_t)
    np.testing.assert_array_equal(m_n.Omega, m_t.Omega)
    np.testing.assert_array_equal(h_n.R, h_t.R)
    assert [e["penalty"] for e in h_n.epochs] == pytest.approx(
        [e["penalty"] for e in h_t.epochs], rel=TOLERANCE[np.dtype(dtype)])


# --- choosing the path -------------------------------------------------------------------

def python(code, env=None, cwd=ROOT):
    """Run ``code`` in a fresh interpreter; return (exit status, stdout + stderr)."""
    full = {k: v for k, v in os.environ.items() if k != "SYNAPSE_CPU_KERNELS"}
    full.update(env or {})
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full,
                         capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout + out.stderr


PATH_OF = """
    import synapse._kernels, synapse_kernels as sk
    print(sk.cpu_path())
"""


@pytest.mark.parametrize("value, expected", [
    ("numpy", "NumPy twins (SYNAPSE_CPU_KERNELS=numpy)"),
    ("numba", "numba "),
    ("auto", "numba "),
    ("", "numba "),
])
def test_environment_variable_chooses_the_path(value, expected):
    status, out = python(PATH_OF, env={"SYNAPSE_CPU_KERNELS": value})
    assert status == 0, out
    assert out.startswith(expected), out


def test_a_bad_environment_variable_is_one_user_error():
    code = """
        import synapse.errors
        from synapse.model import mlp
        from synapse.optim import Adam
        try:
            Adam(mlp([4, 3], seed=0).params)
        except synapse.errors.UserError as err:
            print("UserError:", err)
    """
    status, out = python(code, env={"SYNAPSE_CPU_KERNELS": "fortran"})
    assert status == 0, out
    assert out.strip() == ("UserError: SYNAPSE_CPU_KERNELS='fortran': expected one of auto, "
                           "numba, numpy")


NO_NUMBA = """
    import sys
    sys.modules["numba"] = None          # as if numba were not installed
    import numpy as np
    import synapse._kernels, synapse_kernels as sk
    print(sk.cpu_path())
    omega, g, delta = np.zeros(3), np.ones(3), np.full(3, 2.0)
    print(sk.omega_accumulate(omega, g, delta).tolist())
"""


def test_without_numba_the_twins_run():
    status, out = python(NO_NUMBA, env={"SYNAPSE_CPU_KERNELS": "auto"})
    assert status == 0, out
    first, second = out.strip().splitlines()
    assert first.startswith("NumPy twins (numba cannot be imported: ModuleNotFoundError")
    assert second == "[-2.0, -2.0, -2.0]"


def test_demanding_numba_without_it_is_an_error():
    """cpu_path() says so, and the first update raises instead of quietly running the twin."""
    status, out = python(NO_NUMBA, env={"SYNAPSE_CPU_KERNELS": "numba"})
    assert status != 0
    assert out.startswith("error: SYNAPSE_CPU_KERNELS=numba, but numba cannot be imported")
    assert out.strip().splitlines()[-1].startswith(
        "ValueError: SYNAPSE_CPU_KERNELS=numba, but numba cannot be imported")


def test_no_writable_cache_folder_compiles_in_memory(tmp_path):
    """An installed copy whose __pycache__, NUMBA_CACHE_DIR and user cache folder cannot be
    written (here: files where folders should be, which stops root too) still runs the loops,
    compiled in memory for the process."""
    site = tmp_path / "site"
    shutil.copytree(os.path.join(ROOT, "kernels"), site / "synapse_kernels",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (site / "synapse_kernels" / "__pycache__").write_text("not a folder")
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    code = """
        import numpy as np, synapse_kernels as sk
        print(sk.cpu_path())
        print(sk.omega_accumulate(np.zeros(3), np.ones(3), np.full(3, 2.0)).tolist())
    """
    env = {"PYTHONPATH": str(site), "NUMBA_CACHE_DIR": str(blocked / "numba"),
           "HOME": str(blocked), "XDG_CACHE_HOME": str(blocked / "cache"),
           "SYNAPSE_CPU_KERNELS": "numba"}
    status, out = python(code, env=env, cwd=tmp_path)
    assert status == 0, out
    assert out.strip().splitlines() == [
        "numba " + __import__("numba").__version__ +
        " fused loops (one pass per update, 1 thread)", "[-2.0, -2.0, -2.0]"]
    assert not (tmp_path / "blocked").is_dir()


def test_an_unwritable_user_cache_never_puts_the_cache_beside_the_package(tmp_path):
    """Where only the installed package's folder is writable, the loops compile in memory:
    numba's own fallback, ``__pycache__`` beside the source, is never used."""
    site = tmp_path / "site"
    shutil.copytree(os.path.join(ROOT, "kernels"), site / "synapse_kernels",
                    ignore=shutil.ignore_patterns("__pycache__"))
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    code = """
        import numpy as np, synapse_kernels as sk
        print(sk.omega_accumulate(np.zeros(3), np.ones(3), np.full(3, 2.0)).tolist())
    """
    env = {"PYTHONPATH": str(site), "HOME": str(blocked), "XDG_CACHE_HOME": str(blocked),
           "SYNAPSE_CPU_KERNELS": "numba"}
    status, out = python(code, env=env, cwd=tmp_path)
    assert status == 0, out
    assert out.strip() == "[-2.0, -2.0, -2.0]"
    written = [p.name for p in site.rglob("*") if p.suffix in (".nbi", ".nbc")]
    assert written == []


def test_the_cache_lives_in_the_user_cache_not_beside_the_package(tmp_path):
    """Files written beside an installed package outlive `pip uninstall`; left in
    site-packages/synapse_kernels they make it a namespace package that hides a later
    editable install (README's two commands, in order, hit this)."""
    pytest.importorskip("numba")
    import synapse_kernels
    pycache = os.path.join(os.path.dirname(synapse_kernels.__file__), "__pycache__")

    def cached_beside_package():
        return {f for f in os.listdir(pycache) if f.endswith((".nbi", ".nbc"))} \
            if os.path.isdir(pycache) else set()
    before = cached_beside_package()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path), SYNAPSE_CPU_KERNELS="numba")
    code = ("import numpy as np, synapse_kernels as k; k.warm_cpu(np.float32); "
            "print(k.cpu_path())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    cached = list((tmp_path / "synapse" / "numba").rglob("*.nbi"))
    assert cached, "no cache written to $XDG_CACHE_HOME/synapse/numba"
    assert cached_beside_package() == before
