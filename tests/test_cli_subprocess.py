"""The ``synapse`` command as a user meets it: a real process, real folders, a second process at
the same time, Ctrl-C. Every mistake is one line naming the setting, file or folder, exit 2, and
no half-made results folder."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

TINY = ["--data", "digits", "--seeds", "1", "--epochs", "1", "--hidden", "8", "--no-progress"]


def synapse(*argv, env=None, cwd=None, timeout=120):
    """Run ``python -m synapse.cli ARGV``; returns (exit status, stdout, stderr)."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("SYNAPSE_DEVICE", None) if "SYNAPSE_DEVICE" not in (env or {}) else None
    p = subprocess.run([sys.executable, "-m", "synapse.cli", *argv], capture_output=True,
                       text=True, env=full_env, cwd=cwd, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def one_line_error(code, err, *words):
    """Exit 2 and one error line (besides the runner's own '[synapse] ...' status lines and
    argparse's usage line)."""
    lines = [line for line in err.strip().splitlines()
             if line.strip() and not line.startswith(("[synapse]", "usage:", " "))]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[-1], (w, err)


def config_of(out):
    with open(out / "config.json", encoding="utf-8") as f:
        return json.load(f)


# -- settings reach the engine exactly as given (issue: nothing silently changed) ---------
def test_boolean_setting_is_a_boolean_by_flag_and_by_set(tmp_path):
    for i, how in enumerate((["--set", "reset_optimizer=False"], ["--reset-optimizer", "false"])):
        out = tmp_path / f"r{i}"
        code, _, err = synapse("split-mnist", "--out", str(out), "--c", "1", *how, *TINY)
        assert code == 0, err
        assert config_of(out)["reset_optimizer"] is False
    code, _, err = synapse("split-mnist", "--out", str(tmp_path / "m"), "--set",
                           "reset_optimizer=maybe", *TINY)
    one_line_error(code, err, "reset_optimizer", "maybe")
    assert not (tmp_path / "m").exists()


def test_method_with_a_strength_runs_exactly_that_strength(tmp_path):
    out = tmp_path / "si5"
    code, _, err = synapse("split-mnist", "--out", str(out), "--method", "si=5", *TINY)
    assert code == 0, err
    with open(out / "results.json", encoding="utf-8") as f:
        runs = json.load(f)["runs"]
    assert [(r["method"], r["c"]) for r in runs] == [("si", 5.0)]
    # c given but nothing runs it: refused rather than ignored
    code, _, err = synapse("split-mnist", "--out", str(tmp_path / "x"), "--method", "si=5",
                           "--c", "0,1", *TINY)
    one_line_error(code, err, "--c")


@pytest.mark.parametrize("value", ["cuda", "bogus"])
def test_synapse_device_reaches_the_experiments(value, tmp_path):
    from synapse.backend import cuda_unavailable_reason
    if value == "cuda" and cuda_unavailable_reason() is None:
        pytest.skip("a usable GPU is here: SYNAPSE_DEVICE=cuda would run")
    code, _, err = synapse("split-mnist", "--out", str(tmp_path / "d"), *TINY,
                           env={"SYNAPSE_DEVICE": value})
    one_line_error(code, err, "$SYNAPSE_DEVICE")
    assert not (tmp_path / "d").exists()


def test_every_setting_by_set_equals_its_flag(tmp_path):
    by_flag, by_set = tmp_path / "flag", tmp_path / "set"
    flags = ["--seeds", "2", "--c", "0,1", "--epochs", "1", "--device", "cpu", "--method", "si"]
    sets = ["--set", "seeds=2", "--set", "c=0,1", "--set", "epochs=1", "--set", "device=cpu",
            "--set", "methods=si"]
    base = ["--data", "digits", "--hidden", "8", "--no-progress"]
    assert synapse("split-mnist", "--out", str(by_flag), *flags, *base)[0] == 0
    assert synapse("split-mnist", "--out", str(by_set), *sets, *base)[0] == 0
    assert config_of(by_flag) == config_of(by_set)
    code, _, err = synapse("split-mnist", "--out", str(tmp_path / "both"), "--epochs", "1",
                           "--set", "epochs=2", *base)
    one_line_error(code, err, "epochs", "contradicts")


@pytest.mark.parametrize("setting", ["hidden=abc", "optimizer=rmsprop", "integrator=euler",
                                     "data_seed=-1", "epochs=1.7", "batch_size=nan",
                                     "no_such_key=1"])
def test_bad_settings_are_one_line_and_leave_no_folder(setting, tmp_path):
    out = tmp_path / "bad"
    code, _, err = synapse("split-mnist", "--out", str(out), "--set", setting, *TINY)
    one_line_error(code, err, setting.split("=")[0])
    assert not out.exists()


def test_underflowing_xi_is_refused_up_front(tmp_path):
    code, _, err = synapse("split-mnist", "--out", str(tmp_path / "xi"), "--xi", "1e-50", *TINY)
    one_line_error(code, err, "--xi", "float32")
    assert not (tmp_path / "xi").exists()


def test_abbreviated_flags_are_refused(tmp_path):
    code, _, err = synapse("split-mnist", "--out", str(tmp_path / "a"), "--e", "1")
    assert code == 2 and "--e" in err


def test_version():
    code, out, _ = synapse("--version")
    assert code == 0 and out.startswith("synapse ")


# -- the results folder -------------------------------------------------------------------
@pytest.mark.parametrize("where", ["file", "/dev/null", "/proc/synapse-x"])
def test_unusable_out_is_one_line(where, tmp_path):
    if where == "file":
        where = tmp_path / "a-file"
        where.write_text("mine")
    code, _, err = synapse("split-mnist", "--out", str(where), *TINY)
    one_line_error(code, err, "--out", str(where))
    if isinstance(where, os.PathLike):
        assert where.read_text() == "mine"


def test_a_folder_that_holds_something_is_never_reused(tmp_path):
    out = tmp_path / "full"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = synapse("split-mnist", "--out", str(out), *TINY)
    one_line_error(code, err, "--out", "notes.txt", "--resume")
    assert sorted(p.name for p in out.iterdir() if p.name != ".lock") == ["notes.txt"]


def test_two_runs_started_at_once_never_share_a_folder(tmp_path):
    out = tmp_path / "shared"
    argv = [sys.executable, "-m", "synapse.cli", "split-mnist", "--out", str(out), "--c", "1",
            "--data", "digits", "--seeds", "1", "--epochs", "2", "--hidden", "8",
            "--no-progress"]
    procs = [subprocess.Popen(argv + ["--lr", lr], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for lr in ("0.001", "0.01")]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "--out" in loser and str(out) in loser
    with open(out / "results.json", encoding="utf-8") as f:
        results_lr = json.load(f)["config"]["lr"]
    assert config_of(out)["lr"] == results_lr            # one run's settings and numbers


def test_progress_reaches_a_log_file_and_checkpoints_are_cleaned(tmp_path):
    out = tmp_path / "log"
    log = tmp_path / "stderr.txt"
    argv = ["split-mnist", "--out", str(out), "--c", "1", "--data", "digits", "--seeds", "1",
            "--epochs", "1", "--hidden", "8"]
    with open(log, "w") as f:
        p = subprocess.run([sys.executable, "-m", "synapse.cli", *argv], stdout=subprocess.PIPE,
                           stderr=f, text=True, timeout=120)
    assert p.returncode == 0
    text = log.read_text()
    assert str(out) in text.splitlines()[0]               # the folder is said at the start
    assert sum("task" in line and "si-c1-seed0" in line for line in text.splitlines()) >= 5
    assert not list(out.rglob("checkpoint*.npz"))         # removed when the run finished
    assert "on disk" in p.stdout
    kept = tmp_path / "kept"
    assert synapse("split-mnist", "--out", str(kept), "--keep-checkpoints", "--c", "1",
                   *TINY)[0] == 0
    assert len(list(kept.rglob("checkpoint*.npz"))) == 1


# -- resume -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    code, _, err = synapse("split-mnist", "--out", str(out), "--c", "1",
                           "--keep-checkpoints", *TINY)
    assert code == 0, err
    return out


def test_resume_with_another_experiment_is_one_line(finished):
    code, _, err = synapse("permuted-mnist", "--resume", str(finished))
    one_line_error(code, err, "split-mnist", str(finished))


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_resume_with_a_damaged_config_is_one_line(damage, finished, tmp_path):
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    text = (out / "config.json").read_text()
    (out / "config.json").write_text({"truncated": text[:len(text) // 2], "empty": "",
                                      "garbage": "\x00\x01 not json"}[damage])
    code, _, err = synapse("split-mnist", "--resume", str(out))
    one_line_error(code, err, "config.json")


def test_resume_of_a_missing_folder_is_one_line(tmp_path):
    code, _, err = synapse("split-mnist", "--resume", str(tmp_path / "nope"))
    one_line_error(code, err, "--resume", "nope")


# -- Ctrl-C ---------------------------------------------------------------------------------
def test_ctrl_c_prints_the_resume_command_and_resume_finishes(tmp_path):
    out = tmp_path / "cut"
    argv = [sys.executable, "-m", "synapse.cli", "split-mnist", "--out", str(out), "--c", "1",
            "--data", "digits", "--seeds", "1", "--epochs", "300", "--hidden", "8"]
    # The child gets Ctrl-C's default action even if something in this test process (a Dask
    # or loky helper) left SIGINT ignored, which a child would inherit.
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not list(out.rglob("checkpoint.npz")) and time.time() < deadline:
        time.sleep(0.05)                          # wait until task 1 is checkpointed
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    lines = [line for line in err.strip().splitlines() if "interrupted" in line]
    assert len(lines) == 1 and f"--resume {out}" in lines[0] and "Traceback" not in err
    code, _, err = synapse("split-mnist", "--resume", str(out), "--no-progress")
    assert code == 0, err
    assert (out / "results.json").exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "random"])
def test_resume_from_a_damaged_checkpoint_is_one_line(damage, finished, tmp_path):
    """A run cut after a task (run.json and results.json not yet written) whose checkpoint was
    then damaged: one line naming the file, never NumPy's advice about pickles."""
    import shutil
    out = tmp_path / "cut"
    shutil.copytree(finished, out)
    for done in list(out.rglob("run.json")) + [out / "results.json"]:
        done.unlink()
    ckpt = next(out.rglob("checkpoint.npz"))
    data = ckpt.read_bytes()
    ckpt.write_bytes({"truncated": data[:len(data) // 3], "empty": b"",
                      "random": os.urandom(4096)}[damage])
    code, _, err = synapse("split-mnist", "--resume", str(out), "--no-progress")
    one_line_error(code, err, "checkpoint.npz")
    assert "pickle" not in err


def test_resume_with_a_truncated_run_record_is_one_line(finished, tmp_path):
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    record = next(out.rglob("run.json"))
    record.write_text(record.read_text()[:40])
    code, _, err = synapse("split-mnist", "--resume", str(out), "--no-progress")
    one_line_error(code, err, "run.json")
