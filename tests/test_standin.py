"""The engine on ``device="cuda"`` over the strict CuPy stand-in: ``python -m pytest -m standin``.

The stand-in (tests/standin/cupy) is installed as ``cupy`` for the session by conftest.py; what
it proves and what only a GPU can is in tests/standin/README.md. Without ``-m standin`` these
tests skip.
"""
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from synapse.backend import asnumpy
from synapse.data import load_dataset, split_tasks
from synapse.learner import Learner, train_epoch
from synapse.methods import make_method
from synapse.model import mlp
from synapse.optim import make_optimizer
from synapse.train import train_tasks

pytestmark = pytest.mark.standin
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cp():
    import cupy
    assert hasattr(cupy, "_standin"), "the session runs on a real CuPy, not the stand-in"
    return cupy


@pytest.fixture(scope="module")
def tasks():
    return split_tasks(load_dataset("digits", log=None))[:2]


# -- the stand-in is as strict as CuPy ----------------------------------------------------

def test_standin_refuses_implicit_conversion_as_cupy_does(cp):
    x = cp.zeros(3, dtype=np.float32)
    assert not isinstance(x, np.ndarray)
    with pytest.raises(TypeError, match=r"Implicit conversion to a NumPy array is not allowed\. "
                                        r"Please use `\.get\(\)` to construct a NumPy array "
                                        r"explicitly\."):
        np.asarray(x)
    with pytest.raises(TypeError):
        json.dumps({"v": x})


def test_standin_refuses_host_arrays_in_device_arithmetic(cp):
    x, host = cp.ones(3), np.ones(3)
    for mixed in (lambda: x + host, lambda: host * x, lambda: cp.matmul(x, host),
                  lambda: cp.maximum(x, host)):
        with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
            mixed()
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
        x[...] = host
    assert isinstance(x * np.float32(2) + 1.0, cp.ndarray)     # NumPy and Python scalars are fine
    assert bool((x == np.asarray(1.0)).all())                  # CuPy takes a 0-d one in comparisons


def test_numpy_functions_dispatch_to_device_arrays(cp):
    x = cp.arange(6, dtype=np.float64).reshape(2, 3)
    for result in (np.sum(x), np.exp(x), np.empty_like(x), np.maximum(x, 0), x.sum(), x[0, 1]):
        assert isinstance(result, cp.ndarray)                  # 0-d arrays, never scalars
    with pytest.raises(TypeError):                             # NumPy function CuPy lacks here
        np.histogram(x)


def test_what_the_standin_lacks_fails_naming_the_cupy_feature(cp):
    with pytest.raises(AttributeError, match=r"cupy\.fft"):
        cp.fft
    with pytest.raises(AttributeError, match=r"cupy\.ndarray\.tofile"):
        cp.zeros(2).tofile


def test_host_syncs_are_counted(cp):
    x = cp.ones(4)
    with cp._standin.counting() as rec:
        float(x.sum()), x.get(), x.tolist(), f"{x[0]:.2f}", asnumpy(x)
    assert [what for what, _ in rec.syncs] == ["float", "get", "tolist", "format", "get"]
    assert [Path(where.rsplit(":", 1)[0]).name for _, where in rec.syncs] == \
        ["test_standin.py"] * 4 + ["backend.py"]          # where: the line that asked


def test_elementwise_kernel_runs_the_cuda_body_and_its_preamble(cp):
    """The exact body, with a device function from CuPy's ``preamble=``, compiled by g++."""
    kernel = cp.ElementwiseKernel("T x, T s", "T y", "y = twice(x) + s", "standin_twice",
                                  preamble="__device__ inline T twice(T a) { return a + a; }")
    x, y = cp.arange(5, dtype=np.float32), cp.empty(5, dtype=np.float32)
    assert kernel(x, np.float32(0.5), y) is y
    np.testing.assert_array_equal(y.get(), 2 * np.arange(5, dtype=np.float32) + 0.5)
    with pytest.raises(TypeError, match="Unsupported type"):
        kernel(np.arange(5, dtype=np.float32), 0.5, y)


def test_gpu_tests_still_see_no_gpu():
    from conftest import CUDA_REASON
    assert CUDA_REASON


# -- every method and optimizer: the CUDA path follows the CPU trajectory -------------------

METHODS = [("finetune", {}), ("si", dict(c=1.0)), ("si", dict(c=1.0, integrator="trapezoid")),
           ("l2", dict(c=0.1)), ("ewc", dict(c=10.0, fisher_samples=20)),
           ("online-ewc", dict(c=10.0, fisher_samples=20)), ("mas", dict(c=1.0, samples=20))]
OPTIMIZERS = [("adam", {}), ("sgd", dict(lr=0.05, momentum=0.9)), ("sgd", dict(lr=0.05))]


def train_on(device, tasks, method, optimizer, epochs=1):
    model = mlp([64, 16, 10], seed=0, device=device)
    m = make_method(method[0], **method[1])
    opt = make_optimizer(optimizer[0], model.params, **optimizer[1])
    h = train_tasks(model, tasks, m, opt, epochs=epochs, batch_size=32, seed=0, progress=False)
    state = {name: asnumpy(getattr(m, name)) for name in m.state_names}
    return asnumpy(model.params.theta), state, h


@pytest.mark.parametrize("method,optimizer",
                         [(m, OPTIMIZERS[0]) for m in METHODS] +
                         [(METHODS[1], o) for o in OPTIMIZERS[1:]],
                         ids=lambda v: v[0] + "".join(f",{k}={x}" for k, x in v[1].items()))
def test_training_on_cuda_follows_the_cpu(tasks, method, optimizer):
    """Two split-digits tasks (about 50 steps each) from one seed: weights, the method's state,
    the accuracy matrix and the logged losses agree to float32 rounding."""
    t0, s0, h0 = train_on("cpu", tasks, method, optimizer)
    t1, s1, h1 = train_on("cuda", tasks, method, optimizer)
    np.testing.assert_allclose(t1, t0, rtol=1e-4, atol=1e-4 * np.abs(t0).max())
    for name in s0:
        scale = max(np.abs(s0[name]).max(), 1e-12)
        np.testing.assert_allclose(s1[name], s0[name], rtol=1e-3, atol=1e-4 * scale, err_msg=name)
    np.testing.assert_allclose(h1.R, h0.R, atol=0.01)
    for a, b in zip(h0.epochs, h1.epochs):
        assert all(isinstance(v, (int, float, str)) for v in b.values()), b   # JSON-ready
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)


# -- host synchronisations on the CUDA path -----------------------------------------------

def test_a_training_step_never_waits_for_the_device(cp, tasks):
    """Forward, backward and the fused SI/Adam update: no host sync and no upload per step."""
    model = mlp([64, 16, 10], seed=0, device="cuda")
    method = make_method("si", c=1.0)
    learner = Learner(model, method, make_optimizer("adam", model.params), progress=False)
    learner.learn(tasks[0], epochs=1)                    # task 2 carries a live penalty
    method.begin_task(1, tasks[1])
    x = cp.asarray(tasks[1].x_train[:32], dtype=np.float32)
    y = cp.asarray(tasks[1].y_train[:32])
    model.loss_and_grad(x, y, tasks[1].classes, check=False)      # warm the per-task caches
    with cp._standin.counting() as rec:
        for _ in range(3):
            model.loss_and_grad(x, y, tasks[1].classes, check=False)
            method.step(learner.optimizer, model.params.grad)
    assert rec.syncs == [] and rec.uploads == []


@pytest.mark.parametrize("batch_size", [16, 64])
def test_an_epoch_syncs_three_times_whatever_its_steps(cp, tasks, batch_size):
    """train_epoch reads back the mean loss, the penalty and the first minibatch's loss once
    each at its end (the only syncs of an epoch), and uploads one shuffle order."""
    model = mlp([64, 16, 10], seed=0, device="cuda")
    method = make_method("si", c=1.0).attach(model)
    optimizer = make_optimizer("adam", model.params)
    method.begin_task(0, tasks[0])
    x = cp.asarray(tasks[0].x_train, dtype=np.float32)
    y = cp.asarray(tasks[0].y_train)
    train_epoch(model, method, optimizer, x, y, tasks[0].classes, batch_size,
                np.random.default_rng(1))    # the task's active units go up once, cached
    with cp._standin.counting() as rec:
        train_epoch(model, method, optimizer, x, y, tasks[0].classes, batch_size,
                    np.random.default_rng(0))
    assert len(rec.syncs) == 3, Counter(rec.syncs)
    assert len(rec.uploads) == 1, Counter(rec.uploads)


# -- checkpoints cross devices ------------------------------------------------------------

@pytest.mark.parametrize("first,then", [("cuda", "cpu"), ("cpu", "cuda")])
def test_checkpoint_written_on_one_device_resumes_on_the_other(tasks, tmp_path, first, then):
    """Task 1 on ``first`` with a checkpoint, killed; resumed on ``then`` for task 2: the same
    numbers as an uninterrupted run on ``then`` (to float32 rounding)."""
    def run(device, folder, stop_after=None):
        model = mlp([64, 16, 10], seed=0, device=device)
        m = make_method("si", c=1.0)

        def stop(i, history):
            if i == stop_after:
                raise KeyboardInterrupt
        try:
            h = train_tasks(model, tasks, m, make_optimizer("adam", model.params), epochs=1,
                            batch_size=32, seed=0, progress=False, checkpoint_dir=folder,
                            resume=True, on_task_end=stop)
        except KeyboardInterrupt:
            return None
        return asnumpy(model.params.theta), asnumpy(m.Omega), h.R

    assert run(first, tmp_path / "ck", stop_after=0) is None
    theta, Omega, R = run(then, tmp_path / "ck")
    theta0, Omega0, R0 = run(then, tmp_path / "fresh")
    np.testing.assert_allclose(theta, theta0, rtol=1e-4, atol=1e-4 * np.abs(theta0).max())
    np.testing.assert_allclose(Omega, Omega0, rtol=1e-3, atol=1e-4 * np.abs(Omega0).max())
    np.testing.assert_allclose(R, R0, atol=0.01)


def test_model_saved_on_cuda_loads_on_cpu(tmp_path):
    model = mlp([64, 16, 10], seed=3, device="cuda", zero_readout=False)
    model.save(tmp_path / "m.npz", extra={"Omega": model.params.theta * 2})
    back = mlp([64, 16, 10], seed=0, device="cpu")
    extra = back.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.params.theta, asnumpy(model.params.theta))
    np.testing.assert_array_equal(extra["Omega"], 2 * back.params.theta)


# -- every experiment's quick profile, through the command line, on cuda ------------------

TINY = ["--seeds", "1", "--hidden", "8", "--no-progress", "--device", "cuda"]
EXPERIMENTS = {
    "split-mnist": ["--data", "digits", "--epochs", "1", "--method", "si=1", "--method", "ewc=10"],
    "permuted-mnist": ["--data", "digits", "--epochs", "1", "--c", "0,1", "--n-tasks", "2"],
    "transfer-mnist-bg": ["--data", "digits", "--epochs", "1", "--c", "1",
                          "--pretrain-epochs", "1"],
    "transfer-cifar": ["--data", "mnist-subset", "--epochs", "1", "--c", "1",
                       "--pretrain-epochs", "1", "--pretrain-examples", "300", "--shots", "5",
                       "--widths", "4,4,4,4"],
    "scenarios": ["--data", "digits", "--steps", "3", "--method", "finetune,si,mas,joint"],
}


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_experiment_runs_on_cuda_from_the_command_line(experiment, tmp_path):
    """``synapse <experiment> --device cuda`` (quick profile, tiny settings) in a real process
    whose ``cupy`` is the stand-in: results.json, config.json, summary and figures written."""
    out = tmp_path / "out"
    env = dict(os.environ)
    env.pop("SYNAPSE_DEVICE", None)
    p = subprocess.run([sys.executable, "-m", "synapse.cli", experiment, "--out", str(out),
                        *EXPERIMENTS[experiment], *TINY], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    saved = json.loads((out / "results.json").read_text())
    assert saved["backend"]["device"] == "cuda"
    figure = experiment.replace("-", "_")
    for name in ("config.json", "summary.txt", f"{figure}.png", f"{figure}.svg"):
        assert (out / name).stat().st_size > 0, name


# -- demos/gpu_check.py: its training part ------------------------------------------------

def test_gpu_check_training_part_runs_on_cuda():
    sys.path.insert(0, str(ROOT / "demos"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(ROOT / "demos"))
    name, verdict, detail, seconds = gpu_check.run_split_mnist(epochs=1, data="digits",
                                                               hidden=[16])
    assert verdict == "pass", detail
    assert "ACC cuda" in detail and seconds > 0


# -- bugs the stand-in found ---------------------------------------------------------------

def test_walkthrough_runs_with_synapse_device_cuda():
    """Bug: with SYNAPSE_DEVICE=cuda, demos/walkthrough.py gave device arrays to np.testing
    (TypeError: implicit conversion) at its fused-step and relu checks."""
    env = dict(os.environ, SYNAPSE_DEVICE="cuda")
    p = subprocess.run([sys.executable, str(ROOT / "demos" / "walkthrough.py")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "every claim checked" in p.stdout


@pytest.mark.parametrize("method", [("si", dict(c=1.0, integrator="trapezoid")),
                                    ("ewc", dict(c=1.0, fisher_samples=5)),
                                    ("mas", dict(c=1.0, samples=5))], ids=lambda m: m[0])
def test_tasks_of_device_arrays_train_a_cpu_model(cp, tasks, method):
    """Bug: a Task holding CuPy arrays (data already on the GPU) given to a model on the CPU
    failed with TypeError (implicit conversion) at learner.py's upload of the task and in
    Sequential._prepare_input; now it comes to the host explicitly, and learns exactly what
    the same task of NumPy arrays does."""
    from synapse.data import Task
    on_device = [Task(t.name, cp.asarray(t.x_train), cp.asarray(t.y_train), cp.asarray(t.x_test),
                      cp.asarray(t.y_test), classes=t.classes) for t in tasks]
    t0, s0, h0 = train_on("cpu", tasks, method, OPTIMIZERS[0])
    t1, s1, h1 = train_on("cpu", on_device, method, OPTIMIZERS[0])
    np.testing.assert_array_equal(t1, t0)
    np.testing.assert_array_equal(h1.R, h0.R)


@pytest.mark.parametrize("method", [("ewc", "fisher_samples"), ("online-ewc", "fisher_samples"),
                                    ("mas", "samples")], ids=lambda m: m[0])
def test_importance_syncs_once_not_per_example(cp, tasks, method):
    """Bug: EWC's empirical Fisher and MAS checked each example's input (and EWC its label,
    three more) and uploaded each one: 4 (EWC) or 1 (MAS) host syncs per example, 2,000 at
    each task end with the default 500 samples. Now the examples go up and are checked once."""
    counts = []
    for samples in (10, 40):
        model = mlp([64, 16, 10], seed=0, device="cuda")
        m = make_method(method[0], c=1.0, **{method[1]: samples}).attach(model)
        with cp._standin.counting() as rec:
            m.importance(tasks[0])
        counts.append((len(rec.syncs), len(rec.uploads)))
    (syncs10, up10), (syncs40, up40) = counts
    assert syncs10 == syncs40 <= 4 and max(up10, up40) <= 4, counts   # the active units once


@pytest.mark.parametrize("to", ["cpu", "cuda"])
def test_load_state_dict_takes_device_arrays(to):
    """Bug: model, method and optimizer ``load_state_dict`` read each value with np.asarray,
    so state given as CuPy arrays (e.g. ``model.load_state_dict(gpu_model.params.values)``)
    failed with TypeError (implicit conversion); now either device's arrays load."""
    from synapse.methods import SI
    from synapse.optim import Adam
    src = mlp([4, 3, 2], seed=0, device="cuda", zero_readout=False)
    si, opt = SI().attach(src), Adam(src.params)
    si.omega += 1.5
    opt.m += 0.25
    dst = mlp([4, 3, 2], seed=1, device=to)
    dst.load_state_dict(dict(src.params.values))
    si_dst, opt_dst = SI().attach(dst), Adam(dst.params)
    si_dst.load_state_dict({n: getattr(si, n) for n in si.state_names})
    opt_dst.load_state_dict({**{n: getattr(opt, n) for n in opt.state_names}, "t": 3})
    np.testing.assert_array_equal(asnumpy(dst.params.theta), asnumpy(src.params.theta))
    np.testing.assert_array_equal(asnumpy(si_dst.omega), asnumpy(si.omega))
    np.testing.assert_array_equal(asnumpy(opt_dst.m), asnumpy(opt.m))


def test_learning_a_task_syncs_per_epoch_never_per_step(cp, tasks):
    """Learner.learn with SI: per epoch the three of train_epoch plus SI's logged sum(omega)
    (plus the anchored penalty from the second task on); per task, one finite check per state
    array (theta, omega, Omega, theta_ref, Adam's m and v), the silent-penalty check and one
    read-back per evaluated column (test sets under 2,048 examples)."""
    def learn(epochs):
        model = mlp([64, 16, 10], seed=0, device="cuda")
        learner = Learner(model, make_method("si", c=1.0), make_optimizer("adam", model.params),
                          batch_size=32, progress=False)
        counts = []
        for task in tasks:
            with cp._standin.counting() as rec:
                learner.learn(task, epochs, eval_tasks=tasks)
            counts.append(len(rec.syncs))
        return counts
    one, three = learn(1), learn(3)
    assert [b - a for a, b in zip(one, three)] == [2 * 4, 2 * 5]
    assert one == [4 + 6 + 1 + 2, 5 + 6 + 1 + 2]
