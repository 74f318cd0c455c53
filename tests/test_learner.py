"""The Learner driven task by task, its checks at task boundaries, checkpoints on disk (real,
corrupt files) and one-line errors, on scikit-learn's digits."""
import json
import warnings

import numpy as np
import pytest

from synapse.data import Task, load_dataset, split_tasks
from synapse.errors import CheckpointError, ConfigError, DataError, UserError
from synapse.learner import DivergenceError, Learner, SilentPenaltyWarning
from synapse.methods import SI, make_method
from synapse.model import mlp
from synapse.optim import Adam
from synapse.train import train_tasks


@pytest.fixture(scope="module")
def tasks():
    return split_tasks(load_dataset("digits", log=None))[:3]


def fresh(method=None, seed=0, lr=1e-3, dtype=np.float32):
    model = mlp([64, 32, 10], seed=seed, dtype=dtype)
    method = make_method("si", c=1.0) if method is None else method
    return model, method, Adam(model.params, lr=lr)


def quiet(**kw):
    return dict(dict(batch_size=32, progress=False), **kw)


def test_task_by_task_equals_one_call_bitwise(tasks):
    model_a, si_a, opt_a = fresh()
    whole = train_tasks(model_a, tasks, si_a, opt_a, epochs=2, **quiet())
    model_b, si_b, opt_b = fresh()
    learner = Learner(model_b, si_b, opt_b, **quiet())
    for task in tasks:
        learner.learn(task, epochs=2, eval_tasks=tasks)
    np.testing.assert_array_equal(learner.R, whole.R)
    assert np.isfinite(whole.R).all() and whole.R.shape == (3, 3)
    for name in ("omega", "Omega", "theta_ref"):
        np.testing.assert_array_equal(getattr(si_b, name), getattr(si_a, name))
    np.testing.assert_array_equal(model_b.params.theta, model_a.params.theta)
    assert learner.history.epochs == whole.epochs


def test_train_tasks_once_per_task_keeps_si_state(tasks):
    """The Avalanche-style loop: one call per task, same model, method and optimizer. The
    method's state survives each call (before: attach re-zeroed Omega, and SI was fine-tuning)."""
    model_a, si_a, opt_a = fresh()
    train_tasks(model_a, tasks, si_a, opt_a, epochs=2, **quiet())
    model_b, si_b, opt_b = fresh()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SilentPenaltyWarning)
        for task in tasks:
            h = train_tasks(model_b, [task], si_b, opt_b, epochs=2, **quiet())
            assert h.R.shape == (1, 1) and h.epochs[-1]["penalty"] >= 0
    assert float(si_b.Omega.sum()) > 0 and si_b.tasks_learned == 3
    np.testing.assert_array_equal(si_b.Omega, si_a.Omega)
    np.testing.assert_array_equal(model_b.params.theta, model_a.params.theta)


def test_learner_rows_grow_and_columns_follow_learning_order(tasks):
    model, si, opt = fresh()
    learner = Learner(model, si, opt, **quiet())
    row = learner.learn(tasks[0], epochs=1)
    assert learner.R.shape == (1, 1) and row.shape == (1,)
    learner.learn(tasks[1], epochs=1, eval_tasks=[tasks[2]])     # declares a future column
    assert [t.name for t in learner.tasks] == [t.name for t in tasks]
    R = learner.R
    assert np.isnan(R[0, 1:]).all() and np.isfinite(R[1]).all() and np.isnan(R[2]).all()
    learner.learn(tasks[2], epochs=1)
    assert np.isfinite(np.tril(learner.R)).all() and learner.R[2, 2] == learner.history.R[2, 2]
    assert learner.evaluate(tasks) == list(learner.R[2])
    with pytest.raises(UserError, match="already learned"):
        learner.learn(tasks[0], epochs=1)


def test_attaching_to_another_model_is_an_error():
    model, si, _ = fresh()
    si.attach(model)
    si.Omega[...] = 1
    assert si.attach(model) is si and si.Omega.sum() == si.Omega.size   # kept
    with pytest.raises(UserError, match="already attached to another model"):
        si.attach(mlp([64, 32, 10]))
    with pytest.raises(UserError, match="optimizer was built for another model"):
        Learner(model, si, Adam(mlp([64, 32, 10]).params))


def test_finished_run_continues_with_a_new_task(tmp_path, tasks):
    """A checkpoint of a finished two-task run, resumed with a third task (before:
    IndexError), ends where one uninterrupted three-task run ends, bit for bit."""
    model, si, opt = fresh()
    two = train_tasks(model, tasks[:2], si, opt, epochs=1, checkpoint_dir=tmp_path, **quiet())
    model, si, opt = fresh()
    three = train_tasks(model, tasks, si, opt, epochs=1, checkpoint_dir=tmp_path, resume=True,
                        **quiet())
    np.testing.assert_array_equal(three.R[:2, :2], two.R)
    assert np.isnan(three.R[:2, 2]).all()              # task 3 was unknown then: not evaluated
    assert np.isfinite(three.R[2]).all() and len(three.task_seconds) == 3
    model_u, si_u, opt_u = fresh()
    train_tasks(model_u, tasks, si_u, opt_u, epochs=1, **quiet())
    np.testing.assert_array_equal(model.params.theta, model_u.params.theta)
    np.testing.assert_array_equal(si.Omega, si_u.Omega)


# -- no silent no-op regulariser ------------------------------------------------------------
@pytest.mark.parametrize("name", ["si", "ewc"])
def test_silent_penalty_warns_when_state_was_reset(tasks, name):
    method = make_method(name, c=1.0) if name == "si" else make_method(name, fisher_samples=30)
    model, _, opt = fresh(method)
    learner = Learner(model, method, opt, **quiet())
    learner.learn(tasks[0], epochs=1)
    method.Omega[...] = 0                               # the state is lost between tasks
    with pytest.warns(SilentPenaltyWarning, match="never changed an update"):
        learner.learn(tasks[1], epochs=1)
    assert len(learner.history.warnings) == 1 and "task 2" in learner.history.warnings[0]


def test_all_zero_importance_warns(tasks):
    model, _, opt = fresh()
    si = SI(c=1.0, exclude=list(model.params.names))    # regularises nothing
    with pytest.warns(SilentPenaltyWarning, match="all-zero importance"):
        Learner(model, si, opt, **quiet()).learn(tasks[0], epochs=1)


def test_a_normal_run_does_not_warn(tasks):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model, si, opt = fresh()
        h = train_tasks(model, tasks, si, opt, epochs=1, **quiet())
    assert h.warnings == []


# -- divergence -----------------------------------------------------------------------------
def test_exploding_loss_is_divergence(tasks):
    """lr = 1e6: finite losses of ~1e20 used to finish with exit 0 and accuracy 0.5."""
    model, si, opt = fresh(lr=1e6)
    with np.errstate(all="ignore"), pytest.raises(DivergenceError, match=r"task 1 .*epoch 1.*"
                                                  r"over 1000 times its starting value"):
        train_tasks(model, tasks, si, opt, epochs=2, **quiet())
    assert not issubclass(DivergenceError, UserError)


def test_normal_runs_stay_far_below_the_explosion_threshold(tasks):
    model, si, opt = fresh(lr=1e-2)
    h = train_tasks(model, tasks[:2], si, opt, epochs=3, **quiet())
    assert max(e["loss"] for e in h.epochs) < 10 * np.log(2)     # the threshold: ~693


def test_non_finite_state_is_never_checkpointed(tmp_path, tasks):
    class Poisoned(SI):
        def end_task(self, k, task):
            super().end_task(k, task)
            if k == 1:
                self.Omega[:5] = np.nan
    model, _, opt = fresh()
    with pytest.raises(DivergenceError, match=r"task 2 .*Omega holds 5 NaN/Inf.*last checkpoint "
                                              r"\(after task 1, all finite\) is unchanged"):
        train_tasks(model, tasks, Poisoned(c=1.0), opt, epochs=1, checkpoint_dir=tmp_path,
                    **quiet())
    with np.load(tmp_path / "checkpoint.npz") as f:
        assert json.loads(bytes(f["meta"]).decode())["tasks_done"] == 1
        assert all(np.isfinite(f[k]).all() for k in f.files if k != "meta")


@pytest.mark.parametrize("setting", [dict(xi=1e-50), dict(c=1e-50), dict(c=1e50),
                                     dict(xi=1e-40)])
def test_settings_that_underflow_in_float32_are_refused_at_attach(setting):
    with pytest.raises(ConfigError, match=f"^{list(setting)[0]}: .*flows in float32"):
        SI(**setting).attach(mlp([4, 2]))
    SI(**setting).attach(mlp([4, 2], dtype=np.float64))       # float64 holds them


def test_a_learning_rate_that_is_zero_in_float32_is_refused():
    model = mlp([4, 2])
    with pytest.raises(ConfigError, match="^lr: 1e-50 .*underflows in float32"):
        Learner(model, SI(), Adam(model.params, lr=1e-50))


# -- checkpoints on disk ----------------------------------------------------------------------
@pytest.fixture
def checkpoint(tmp_path, tasks):
    model, si, opt = fresh()
    train_tasks(model, tasks[:2], si, opt, epochs=1, checkpoint_dir=tmp_path, **quiet())
    return tmp_path / "checkpoint.npz"


def resume(folder, tasks, method=None):
    model, si, opt = fresh(method)
    return train_tasks(model, tasks, si, opt, epochs=1, checkpoint_dir=folder, resume=True,
                       **quiet())


@pytest.mark.parametrize("damage", ["truncated", "empty", "random"])
def test_corrupt_checkpoint_is_one_line_naming_the_file(checkpoint, tasks, damage):
    data = checkpoint.read_bytes()
    checkpoint.write_bytes({"truncated": data[:len(data) // 2], "empty": b"",
                            "random": np.random.default_rng(0).bytes(4096)}[damage])
    with pytest.raises(CheckpointError) as err:
        resume(checkpoint.parent, tasks)
    msg = str(err.value)
    assert str(checkpoint) in msg and "\n" not in msg and "pickle" not in msg


def test_checkpoint_with_nan_is_refused(checkpoint, tasks):
    with np.load(checkpoint) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["method/Omega"][3] = np.nan
    np.savez(checkpoint, **arrays)
    with pytest.raises(CheckpointError, match=r"holds 1 NaN/Inf values in 'method/Omega'"):
        resume(checkpoint.parent, tasks)


def test_checkpoint_of_another_run_is_refused(checkpoint, tasks):
    with pytest.raises(CheckpointError, match=r"another run .*'c': 1\.0.*'c': 2\.0"):
        resume(checkpoint.parent, tasks, make_method("si", c=2.0))
    with pytest.raises(CheckpointError, match="2 task\\(s\\) done, but only 1"):
        resume(checkpoint.parent, tasks[:1])
    with pytest.raises(CheckpointError, match="learned"):
        resume(checkpoint.parent, [tasks[1], tasks[0]])


def test_checkpoint_of_the_same_task_names_over_other_data_is_refused(checkpoint, tasks):
    """Names alone do not identify a task: the checkpoint keeps a digest of the learned tasks'
    arrays, and a task list named the same but holding other data is refused."""
    other = [Task(t.name, t.x_train[::-1].copy(), t.y_train[::-1].copy(), t.x_test, t.y_test,
                  t.classes) for t in tasks]
    with pytest.raises(CheckpointError, match="other data than the tasks given now"):
        resume(checkpoint.parent, other)


def test_checkpoint_with_another_tag_is_refused(tmp_path, tasks):
    model, si, opt = fresh()
    train_tasks(model, tasks[:1], si, opt, epochs=1, checkpoint_dir=tmp_path, tag={"run": 1},
                **quiet())
    model, si, opt = fresh()
    with pytest.raises(CheckpointError, match=r'its record \{"run": 1\}, now \{"run": 2\}'):
        train_tasks(model, tasks, si, opt, epochs=1, checkpoint_dir=tmp_path, resume=True,
                    tag={"run": 2}, **quiet())


def test_resume_removes_a_temporary_file_left_by_a_kill(checkpoint, tasks):
    stale = checkpoint.parent / ".checkpoint.npz.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    resume(checkpoint.parent, tasks)
    assert not stale.exists()


# -- one-line errors for API mistakes ----------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    (dict(epochs=float("nan")), "epochs: must be a whole number"),
    (dict(epochs=2.5), "epochs: must be a whole number"),
    (dict(epochs=1.7), "epochs: must be a whole number"),
    (dict(epochs="32"), "epochs: must be a whole number"),
    (dict(epochs=0), "epochs: must be a whole number >= 1"),
    (dict(epochs=[1, 2]), "epochs: 2 epoch counts for 3 tasks"),
    (dict(batch_size="32"), "batch_size: must be a whole number"),
    (dict(batch_size=float("nan")), "batch_size: must be a whole number"),
    (dict(seed=-1), "seed: must be a whole number >= 0"),
    (dict(reset_optimizer="False"), "reset_optimizer: must be True or False"),
])
def test_bad_training_settings_are_refused(tasks, kwargs, match):
    model, si, opt = fresh()
    with pytest.raises(UserError, match=match):
        train_tasks(model, tasks, si, opt, **dict(quiet(), **kwargs))
    assert not model.params.theta[-10:].any()          # nothing trained


def test_bad_task_lists_are_refused(tasks):
    model, si, opt = fresh()
    t = tasks[0]
    with pytest.raises(ConfigError, match="tasks: no tasks to learn"):
        train_tasks(model, [], si, opt)
    with pytest.raises(DataError, match="expected a Task, got a tuple"):
        train_tasks(model, [(t.x_train, t.y_train, t.x_test, t.y_test)], si, opt)
    with pytest.raises(DataError, match="expected a list of Tasks, got a Task"):
        train_tasks(model, t, si, opt)
    two_out = mlp([64, 2])
    with pytest.raises(DataError, match=r"classes/labels \[8, 9\] are outside the model's 2 "):
        train_tasks(two_out, [Task("8 vs 9", t.x_train, t.y_train + 8, t.x_test,
                                   t.y_test + 8, classes=(8, 9))],
                    make_method("si"), Adam(two_out.params))
    images = Task("images", t.x_train.reshape(-1, 1, 8, 8), t.y_train,
                  t.x_test.reshape(-1, 1, 8, 8), t.y_test, t.classes)
    with pytest.raises(DataError, match=r"shape \(1, 8, 8\), but the model reads flat vectors"):
        train_tasks(model, [images], si, opt)
    narrow = mlp([60, 10])
    with pytest.raises(DataError, match="reads 60 values per example"):
        train_tasks(narrow, [t], make_method("si"), Adam(narrow.params))


@pytest.mark.parametrize("change,match", [
    (dict(x_train=np.zeros((4, 3), object)), "x_train must be a float array, got dtype object"),
    (dict(x_train=np.full((4, 3), "a")), "x_train must be a float array, got dtype <U1"),
    (dict(x_train=np.zeros((4, 3), np.uint8)), r"uint8 .*scale images to float in \[0, 1\]"),
    (dict(y_train=np.array([0, 1, 0])), "4 x_train examples but 3 y_train labels"),
    (dict(y_train=np.array([0.0, 1.0, 0.0, 1.0])), "y_train labels must be integers"),
    (dict(y_train=np.array([0, 1, 2, 1])), r"y_train labels \[2\] are outside the task's "
                                           r"classes \[0, 1\]"),
    (dict(x_test=np.zeros((2, 5), np.float32)), "examples differ in shape between splits"),
    (dict(x_test=np.zeros((0, 3), np.float32), y_test=np.zeros(0, int)), "no test examples"),
    (dict(x_train=np.zeros((4, 0), np.float32)), r"x_train must be \(examples, features"),
    (dict(classes=(0, 0)), "classes must be distinct integers"),
    (dict(clases=(0, 1)), r"unknown field\(s\) \['clases'\]"),
    (dict(y_test=None), "y_test is missing"),
])
def test_task_names_what_is_wrong(change, match):
    fields = dict(name="mine", x_train=np.zeros((4, 3), np.float32), y_train=np.array([0, 1] * 2),
                  x_test=np.zeros((2, 3), np.float32), y_test=np.array([0, 1]), classes=(0, 1))
    with pytest.raises(DataError, match=match):
        Task(**dict(fields, **change))


def test_accuracy_of_nothing_is_an_error():
    with pytest.raises(DataError, match="no examples"):
        mlp([4, 2]).accuracy(np.zeros((0, 4), np.float32), np.zeros(0, int))


YOUR_OWN_TASKS = """
import numpy as np
from sklearn.datasets import load_digits
from synapse import data, learner, methods, model, optim
x, y = load_digits(return_X_y=True)
x = (x / 16).astype(np.float32)                   # inputs: floats in [0, 1]
net = model.mlp([64, 64, 10])
run = learner.Learner(net, methods.SI(c=1.0), optim.Adam(net.params), batch_size=32)
for classes in [(0, 1), (2, 3), (4, 5)]:
    xs, ys = x[np.isin(y, classes)], y[np.isin(y, classes)]
    task = data.Task(f"digits {classes}", xs[:250], ys[:250], xs[250:], ys[250:], classes)
    run.learn(task, epochs=10)
print(run.R)                                      # R[i, j]: accuracy on task j after task i
"""


def test_your_own_tasks_example_runs(capsys):
    """README's "your own tasks" example, verbatim: three tasks learned one by one."""
    scope = {}
    exec(YOUR_OWN_TASKS, scope)
    R = scope["run"].R
    assert R.shape == (3, 3) and np.isfinite(np.tril(R)).all() and np.isnan(np.triu(R, 1)[0, 1])
    assert (np.diag(R) > 0.8).all()


def test_progress_off_a_terminal_reaches_a_log_while_a_task_runs():
    """Redirected to a file, progress prints a line every log_interval seconds, not only at
    the end of a task."""
    import io
    import time
    from synapse.progress import Progress
    out = io.StringIO()
    with Progress(total=4, desc="task 1/2", stream=out, log_interval=0.01) as bar:
        for _ in range(4):
            time.sleep(0.02)
            bar.update(1, loss=0.5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 and "1/4" in lines[0] and "4/4" in lines[-1]
    assert "\r" not in out.getvalue() and "loss=0.5" in lines[0]


# -- properties of the setting checks -----------------------------------------------------------
from hypothesis import given, strategies as st  # noqa: E402


@given(st.one_of(st.floats(), st.integers(-5, 10 ** 6), st.text(max_size=3), st.booleans()))
def test_a_count_is_never_rounded_or_guessed(value):
    from synapse.checks import check_count
    whole = isinstance(value, float) and np.isfinite(value) and value.is_integer()
    if (type(value) is int or whole) and value >= 1:
        assert check_count("epochs", value) == value
    else:
        with pytest.raises(ConfigError, match="^epochs: must be a whole number >= 1, got "):
            check_count("epochs", value)


@given(st.floats(min_value=0, allow_nan=False, allow_infinity=False))
def test_an_accepted_setting_keeps_its_meaning_in_float32(c):
    """SI(c) attaches to a float32 model exactly when float32(c) is 0 only for c = 0, finite,
    and not subnormal."""
    tiny, largest = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
    try:
        SI(c=c).attach(mlp([2, 2]))
    except ConfigError as err:
        assert str(err).startswith("c: ") and (0 < c < tiny or c > largest)
    else:
        with np.errstate(over="ignore"):
            c32 = np.float32(c)
        assert np.isfinite(c32) and (c == 0) == (c32 == 0)
        assert c == 0 or c32 >= tiny
