"""Hostile and careless inputs to the data layer and the Python API, replayed as the user gave
them (issue 21): real files on disk, a real FIFO, a real symlink to /dev/zero, a real gzip bomb.
Each mistake must be one ``UserError`` line naming what is wrong and where; none may hang or
allocate what the machine does not have."""
import gzip
import os
import subprocess
import sys
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest

import synapse.checks
from synapse import methods, model, optim
from synapse.data import IDXError, Task, load_dataset, read_idx_images, write_idx
from synapse.data.offline import FASHION_FILES
from synapse.errors import DataError, UserError
from synapse.fileio import open_regular, read_regular
from synapse.learner import Learner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _one_line(err, *words, kind=UserError):
    msg = str(err)
    assert isinstance(err, kind), type(err)
    assert "\n" not in msg and msg == msg.strip(), msg
    for word in words:
        assert str(word) in msg, (word, msg)
    return msg


# ---------------------------------------------------------------- 5. data files


def _fashion_folder(tmp_path, n_train=60, n_test=10):
    """A Fashion-MNIST folder in the cache, as a user would lay it out (all four files)."""
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in zip(FASHION_FILES, (n_train, n_train, n_test, n_test)):
        array = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if "images" in name
                 else (np.arange(n) % 10).astype(np.uint8))
        write_idx(folder / name, array)
    return folder


def _gzip_member(data, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, 31)        # wbits 31: a gzip member
    return c.compress(data) + c.flush()


def test_a_gzip_bomb_in_place_of_fashion_mnist_is_never_inflated_whole(tmp_path):
    """The header declares 60,000 images (47 MB); the stream inflates to 1 GiB more. Only the
    declared bytes and one more are ever inflated."""
    folder = _fashion_folder(tmp_path)
    header = (2051).to_bytes(4, "big") + np.asarray((60000, 28, 28), ">u4").tobytes()
    zeros = _gzip_member(bytes(16 << 20), level=9)         # 16 MiB -> about 16 KB
    with open(folder / FASHION_FILES[0], "wb") as f:       # gzip members concatenate
        f.write(_gzip_member(header + bytes(60000 * 784)))
        for _ in range(64):                                # + 1 GiB of zeros
            f.write(zeros)
    assert (folder / FASHION_FILES[0]).stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(IDXError) as info:
            load_dataset("fashion-mnist", cache_dir=tmp_path, log=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _one_line(info.value, folder / FASHION_FILES[0], "count mismatch", "47,040,000 data bytes",
              "holds more", kind=DataError)
    assert peak < 100 << 20, f"{peak / 2**20:.0f} MiB allocated while reading"


def test_an_idx_header_whose_sizes_overflow_int64_is_one_line(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes((2051).to_bytes(4, "big") + np.asarray((2**22, 2**21, 2**21), ">u4").tobytes()
                     + bytes(100))
    with pytest.raises(IDXError) as info:
        read_idx_images(path)
    _one_line(info.value, path, f"{2**64:,} data bytes", "more than the", kind=DataError)


def test_an_idx_header_declaring_more_than_memory_is_refused_before_allocating(tmp_path,
                                                                               monkeypatch):
    path = tmp_path / "img.gz"
    write_idx(path, np.zeros((3000, 28, 28), np.uint8))    # 2,352,000 data bytes
    monkeypatch.setattr(synapse.checks, "available_memory", lambda device="cpu": 1 << 20)
    with pytest.raises(IDXError) as info:
        read_idx_images(path)
    _one_line(info.value, path, "needs 2.2 MiB of memory but this machine has 1.0 MiB available",
              kind=DataError)


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_data_longer_or_shorter_than_declared(tmp_path, suffix):
    path = tmp_path / f"img{suffix}"
    for n, words in ((5, "count mismatch"), (3, "truncated")):
        header = (2051).to_bytes(4, "big") + np.asarray((4, 2, 2), ">u4").tobytes()
        data = header + bytes(4 * n)
        path.write_bytes(gzip.compress(data) if suffix else data)
        with pytest.raises(IDXError) as info:
            read_idx_images(path)
        _one_line(info.value, path, words, "16 data bytes", kind=DataError)


@pytest.fixture
def fashion_with(tmp_path):
    """Fashion-MNIST's training images replaced by ``make(path)`` (a FIFO, a symlink...)."""
    def replace(make):
        folder = _fashion_folder(tmp_path)
        path = folder / FASHION_FILES[0]
        path.unlink()
        make(path)
        return path
    return replace


@pytest.mark.parametrize("make, kind", [
    (os.mkfifo, "a FIFO (named pipe)"),
    (lambda p: os.symlink("/dev/zero", p), "a character device"),
    (os.mkdir, "a folder"),
], ids=["fifo", "symlink-to-dev-zero", "folder"])
def test_only_regular_files_are_read_as_data(fashion_with, no_hang, make, kind):
    path = fashion_with(make)
    with no_hang(10), pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", cache_dir=path.parent.parent, log=None)
    _one_line(info.value, path, kind, "not a regular file", kind=DataError)


def test_open_regular_bounds_the_size_and_follows_symlinks_to_files(tmp_path, no_hang):
    """The one helper (synapse.fileio.open_regular / read_regular) every reader of a file a
    user may have replaced goes through."""
    (tmp_path / "a.json").write_bytes(b"x" * 100)
    os.symlink(tmp_path / "a.json", tmp_path / "link.json")
    assert read_regular(tmp_path / "link.json", "config", 100) == b"x" * 100
    with pytest.raises(UserError) as info:
        read_regular(tmp_path / "a.json", "config", 99)
    _one_line(info.value, tmp_path / "a.json", "100 bytes, more than the 99")
    os.mkfifo(tmp_path / "fifo.json")
    with no_hang(10), pytest.raises(DataError) as info:
        open_regular(tmp_path / "fifo.json", "run record", error=DataError)
    _one_line(info.value, "run record", tmp_path / "fifo.json", "FIFO")
    with pytest.raises(UserError) as info:
        read_regular(tmp_path / "missing.json", "config")
    _one_line(info.value, tmp_path / "missing.json", "does not exist")


# ---------------------------------------------------------------- 9, 13. Python API mistakes


@pytest.mark.parametrize("call, words", [
    (lambda: optim.Adam(model.mlp([4, 2]).params, beta1=1.5), "Adam: beta1 must be in [0, 1)"),
    (lambda: optim.Adam(model.mlp([4, 2]).params, beta2=float("nan")), "Adam: beta2 must be"),
    (lambda: optim.Adam([1, 2, 3]), "Adam(model.params), got a list"),
    (lambda: optim.SGD(model.mlp([4, 2]), lr=0.1), "SGD(model.params), got a Sequential"),
    (lambda: model.mlp([]), "mlp sizes: needs at least the input and output widths"),
    (lambda: model.mlp([784]), "mlp sizes: needs at least the input and output widths"),
    (lambda: model.mlp([784, 0, 10]), "mlp sizes[1]: must be a whole number >= 1, got 0"),
    (lambda: model.mlp([784, -3, 10]), "mlp sizes[1]: must be a whole number >= 1, got -3"),
    (lambda: model.mlp([784.5, 10]), "mlp sizes[0]: must be a whole number >= 1, got 784.5"),
    (lambda: model.mlp("784,10"), "expected a list of layer widths"),
    (lambda: model.mlp([784, 10**9, 10]), "mlp([784, 1000000000, 10]) needs 11.5 TiB of memory "
                                          "but this machine has"),
    (lambda: model.mlp([4, 4, 2]).freeze(names=["nope"]), "freeze: unknown parameter names "
                                                          "['nope'] in names"),
    (lambda: model.mlp([4, 2]).freeze(), "freeze: give the parameters to freeze"),
    (lambda: model.mlp([4, 2]).freeze("dense0.W"), "names must be a list of parameter names"),
    (lambda: methods.OnlineEWC(gamma=2), "gamma: OnlineEWC's decay of the old importance "
                                         "must be in (0, 1], got 2"),
    (lambda: methods.OnlineEWC(gamma=0), "must be in (0, 1], got 0"),
], ids=["beta1", "beta2-nan", "adam-list", "sgd-model", "mlp-empty", "mlp-one", "mlp-zero",
        "mlp-negative", "mlp-float", "mlp-str", "mlp-huge", "freeze-unknown", "freeze-nothing",
        "freeze-str", "online-ewc-gamma-2", "online-ewc-gamma-0"])
def test_api_mistakes_are_one_line_user_errors(call, words):
    with pytest.raises(UserError) as info:
        call()
    _one_line(info.value, words)


def test_freeze_with_the_readout_method_itself_says_to_call_it():
    net = model.mlp([4, 3, 2])
    with pytest.raises(UserError) as info:
        net.freeze(except_names=net.readout_names)
    _one_line(info.value, "except_names is a method (readout_names)", "readout_names()")
    net.freeze(except_names=net.readout_names())
    assert net.frozen.tolist() == [0.0] * (4 * 3 + 3) + [1.0] * (3 * 2 + 2)
    net.freeze([])
    assert net.frozen is None


def test_mlp_memory_is_what_building_and_training_need():
    """The one estimate mlp() checks before allocating (and the CLI can check up front)."""
    assert model.mlp_memory([2, 3, 1], np.float64) == 2 * (2 * 3 + 3 + 3 * 1 + 1) * 8 + 8 * 6
    hidden = [64, 100000000, 10]                               # --hidden 100000000 on digits
    params = 64 * 10**8 + 10**8 + 10**9 + 10
    assert model.mlp_memory(hidden, copies=12) == 12 * params * 4 + 8 * 64 * 10**8
    net = model.mlp([5, 7, 3], dtype=np.float64)
    assert model.mlp_memory([5, 7, 3], np.float64) >= 2 * net.params.theta.nbytes


def test_learner_save_without_a_folder(tmp_path):
    net = model.mlp([4, 2])
    run = Learner(net, methods.SI(), optim.Adam(net.params), progress=False)
    with pytest.raises(UserError) as info:
        run.save()
    _one_line(info.value, "learner.save(folder)", "checkpoint_dir")
    run.save(tmp_path)
    assert (tmp_path / "checkpoint.npz").is_file()


# ---------------------------------------------------------------- 10. what a Task promises


def _arrays(n=40, d=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)).astype(np.float32), (np.arange(n) % 2).astype(np.int64)


@pytest.mark.parametrize("split", ["x_train", "x_test", "x_val"])
def test_nan_is_refused_in_every_split(split):
    x, y = _arrays()
    arrays = dict(x_train=x, x_test=x, x_val=x)
    arrays[split] = x.copy()
    arrays[split][3, 5] = np.nan
    with pytest.raises(DataError) as info:
        Task("mine", arrays["x_train"], y, arrays["x_test"], y, (0, 1), arrays["x_val"], y)
    _one_line(info.value, f"task 'mine': {split} contains NaN or Inf")


def test_nan_put_into_x_val_after_the_task_was_built_is_refused_before_training():
    x, y = _arrays()
    task = Task("mine", x, y, x, y, (0, 1), x.copy(), y)
    task.x_val[0, 0] = np.inf
    net = model.mlp([16, 2])
    with pytest.raises(DataError) as info:
        Learner(net, methods.SI(), optim.Adam(net.params), progress=False).learn(task, 1)
    _one_line(info.value, "task 'mine' x_val contains NaN or Inf")
    assert not net.params.theta[-2:].any()                      # nothing trained


@pytest.mark.parametrize("scale, shift, words", [
    (255, 0, "x_train spans [0.0"), (1, -5, "(mean -4.48"), (255, 0, "x / 255")])
def test_inputs_far_from_unit_scale_get_one_warning_line(scale, shift, words):
    from synapse.data import InputScaleWarning
    x, y = _arrays()
    with pytest.warns(InputScaleWarning) as caught:
        Task("mine", x * scale + shift, y, x * scale + shift, y, (0, 1))
    assert len(caught) == 1
    _one_line(caught[0].message, "task 'mine'", words, kind=InputScaleWarning)


def test_unit_scale_inputs_pass_silently():
    x, y = _arrays(400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Task("pixels", x, y, x, y)
        Task("signed", 2 * x - 1, y, x, y)
        Task("standardised", (x - x.mean(0)) / x.std(0), y, x, y)


# ---------------------------------------------------------------- 11. one method per model


def test_a_second_method_on_a_trained_model_is_refused():
    x, y = _arrays()
    net = model.mlp([16, 2])
    first = Learner(net, methods.SI(c=1.0), optim.Adam(net.params), progress=False)
    first.learn(Task("one", x, y, x, y, (0, 1)), epochs=1)
    for method in (methods.SI(c=1.0), methods.EWC()):
        with pytest.raises(UserError) as info:
            Learner(net, method, optim.Adam(net.params), progress=False)
        _one_line(info.value, f"method {method.name!r} cannot attach to this model",
                  "carries method 'si' (1 task(s) learned)", "learner.method", "new model")
    again = Learner(net, first.method, optim.Adam(net.params), progress=False)
    assert again.first_index == 1                              # continues: task 2 next
    with pytest.raises(UserError, match="already attached to another model"):
        first.method.attach(model.mlp([16, 2]))                # one SI, two models: refused too


# ---------------------------------------------------------------- 15. dependencies


def test_synapse_data_does_not_import_scikit_learn_until_digits_are_loaded():
    """scikit-learn (about 1.8 s to import) is imported by load_digits only."""
    code = ("import sys, synapse.data, synapse.model, synapse.learner, synapse.methods;"
            "early = [m for m in ('sklearn', 'scipy') if m in sys.modules];"
            "assert not early, f'imported at start-up: {early}'")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)


def test_modules_imported_at_run_time_are_declared():
    import configparser
    import re
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    declared = {re.split(r"[<>=\[ ]", line)[0] for line in
                cfg["options"]["install_requires"].split("\n") if line and line[0].isalpha()}
    for module, package in (("scipy", "scipy"), ("threadpoolctl", "threadpoolctl")):
        used = subprocess.run(["grep", "-rlE", rf"^\s*(from|import) {module}\b",
                               os.path.join(ROOT, "synapse")], capture_output=True, text=True)
        assert used.stdout, f"{module} is no longer imported: drop it from setup.cfg"
        assert package in declared, f"{module} is imported by {used.stdout.split()} but not declared"


def test_a_regulariser_may_follow_fine_tuning_which_holds_nothing():
    x, y = _arrays()
    net = model.mlp([16, 2])
    Learner(net, methods.Method(), optim.Adam(net.params), progress=False).learn(
        Task("pretrain", x, y, x, y, (0, 1)), epochs=1)
    si = methods.SI(c=1.0)
    Learner(net, si, optim.Adam(net.params), progress=False)
    assert net.attached_method is si
