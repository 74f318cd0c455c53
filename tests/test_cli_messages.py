"""What the ``synapse`` command says, replayed as a user meets it (issue 21, cases 8, 14, 15):
a real process, a real signal, a real file edited by hand. Every mistake is ONE line
``synapse <command>: error: ...`` naming what the user typed (or the file they did not type),
exit 2; a warning is said once; SIGTERM stops a run as Ctrl-C does; a tiny run imports only
what it uses."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

TINY = ["--data", "digits", "--seeds", "1", "--epochs", "1", "--hidden", "8"]


def synapse(*argv, timeout=120):
    """Run ``python -m synapse.cli ARGV`` off a terminal; (exit status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "SYNAPSE_DEVICE"}
    p = subprocess.run([sys.executable, "-m", "synapse.cli", *argv], capture_output=True,
                       text=True, env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def error_line(code, err, prog="synapse split-mnist"):
    """The one line of a refused command (exit 2, nothing else on stderr)."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


# -- 8. argparse's own mistakes: one line, the closest flag or choice --------------------------
@pytest.mark.parametrize("argv, prog, says", [
    (["split-mnist", "--resume", "X", "--out", "Y"], "synapse split-mnist",
     "argument --out: not allowed with argument --resume"),
    (["split-mnist", "--epoch", "3"], "synapse split-mnist",
     "unrecognized argument --epoch (did you mean --epochs?)"),
    (["split-mnist", "--epochs=3", "--batch_size", "8"], "synapse split-mnist",
     "unrecognized argument --batch_size (did you mean --batch-size?)"),
    (["permuted-mnist", "--n_tasks", "3"], "synapse permuted-mnist",
     "unrecognized argument --n_tasks (did you mean --n-tasks?)"),
    (["split-mnist", "--bogus", "--zzz"], "synapse split-mnist",
     "unrecognized argument --bogus (and 1 more); see synapse split-mnist --help"),
    (["split-mnist", "leftover"], "synapse split-mnist", "unexpected argument 'leftover'"),
    (["split-mnist", "--profile", "papr"], "synapse split-mnist",
     "invalid choice 'papr' (did you mean paper?); choose from paper, quick"),
    (["split-mnist", "--epochs"], "synapse split-mnist", "argument --epochs: expected one"),
    (["split-mnst"], "synapse", "invalid choice 'split-mnst' (did you mean split-mnist?)"),
    ([], "synapse", "the following arguments are required: COMMAND"),
    (["split-mnist", "--set", "epoch=3"], "synapse split-mnist",
     "--set epoch: unknown setting (did you mean epochs?)"),
    (["split-mnist", "--data", "digit"], "synapse split-mnist",
     "--data: unknown value 'digit' (did you mean digits?)"),
])
def test_argparse_mistakes_are_one_line_with_the_closest_flag(argv, prog, says):
    code, out, err = synapse(*argv)
    assert says in error_line(code, err, prog) and not out
    assert "usage:" not in err


# -- 14. right but confusing ------------------------------------------------------------------
@pytest.mark.parametrize("flag, value, says", [
    ("--epochs", "0", "--epochs: must be an integer >= 1, got 0"),
    ("--hidden", "0", "--hidden: '0': must be an integer >= 1, got 0"),
    ("--hidden", "8,0", "--hidden: '0': must be an integer >= 1, got 0"),
    ("--epochs", "x", "--epochs: 'x' is not an integer"),
])
def test_an_integer_out_of_range_is_not_called_a_non_integer(flag, value, says, tmp_path):
    code, _, err = synapse("split-mnist", "--out", str(tmp_path / "r"), *TINY, flag, value)
    assert error_line(code, err).endswith(says)
    assert not (tmp_path / "r").exists()


def _hand_edited(tmp_path, protocol, profile, settings, **edits):
    """A results folder whose run never got past config.json (as a run killed at its start
    leaves it), config.json written as synapse writes it, then edited by hand."""
    from synapse.experiments import get
    from synapse.experiments.protocol import configure

    out = tmp_path / "edited"
    out.mkdir()
    stored = dict(configure(get(protocol), profile, settings).to_json(), **edits)
    (out / "config.json").write_text(json.dumps(stored), encoding="utf-8")
    return out


@pytest.mark.parametrize("protocol, settings, edits, setting", [
    ("split-mnist", {"data": "digits", "hidden": [8]}, {"xi": 0}, "xi"),        # configure's
    ("identity", {"data": "digits"}, {"n_train": 5000}, "n_train"),            # at run time
])
def test_a_value_from_config_json_is_blamed_on_config_json(protocol, settings, edits, setting,
                                                            tmp_path):
    """On --resume the values come from config.json: the line names that file and the setting,
    never a flag the user did not type (``--xi``, ``--n-train``)."""
    out = _hand_edited(tmp_path, protocol, "quick", settings, **edits)
    code, _, err = synapse(protocol, "--resume", str(out), "--no-progress")
    line = error_line(code, err, f"synapse {protocol}")
    assert f"{out / 'config.json'}: {setting}: " in line, line
    assert "--" + setting.replace("_", "-") not in line


def test_sigterm_stops_like_ctrl_c_and_a_busy_folder_is_blamed_on_resume(tmp_path):
    """A long run in one process; --resume of its folder from a second one is refused naming
    --resume (not --out); SIGTERM (kill) then exits 143 with the command that continues it,
    and that command finishes the run."""
    out = tmp_path / "long"
    argv = [sys.executable, "-m", "synapse.cli", "split-mnist", "--out", str(out), "--c", "1",
            "--data", "digits", "--seeds", "1", "--epochs", "300", "--hidden", "8"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not list(out.rglob("checkpoint.npz")) and time.time() < deadline:
            time.sleep(0.05)                          # task 1 is checkpointed
        assert p.poll() is None, "the run ended before it could be stopped"
        code, _, err = synapse("split-mnist", "--resume", str(out))
        assert error_line(code, err).endswith(
            f"--resume: {out} is in use by another synapse run; wait for it to finish")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        p.kill() if p.poll() is None else None
    assert p.returncode == 143, err
    said = [line for line in err.splitlines() if "terminated" in line]
    assert said == [f"synapse split-mnist: terminated (SIGTERM); the finished tasks are "
                    f"checkpointed: continue with `synapse split-mnist --resume {out}`"], err
    assert "Traceback" not in err
    code, _, err = synapse("split-mnist", "--resume", str(out), "--no-progress")
    assert code == 0, err
    assert (out / "results.json").exists()


ONE_STEP = ["--batch-size", "10000", "--method", "si=1"]     # 1,438 / 5 images: 1 step per task


@pytest.mark.parametrize("quiet", [False, True])
def test_a_silent_penalty_is_said_once_with_what_was_measured(quiet, tmp_path):
    """One step per task with a zero readout: the hidden layers never move, so SI's penalty
    never acts on tasks 2-5. Each task's warning appears once (the log line off a terminal;
    the end of the run with --no-progress), saying what was measured and why it happens. Off
    a terminal each task is one log line, not also the progress bar's last line."""
    code, _, err = synapse("split-mnist", "--out", str(tmp_path / "r"), *TINY, *ONE_STEP,
                           *(["--no-progress"] if quiet else []))
    assert code == 0, err
    said = [line for line in err.splitlines() if "never changed an update" in line]
    assert [line.split("during ")[1].split(" si ")[0] for line in said] == [
        f"task {k} ('digits {2 * k - 2}/{2 * k - 1}')" for k in (2, 3, 4, 5)], err
    assert all("none of the 18 weights its 1 step(s) moved is among the" in line
               and "zero readout" in line for line in said), said[0]
    assert "SilentPenaltyWarning" not in err and "learner.learn(" not in err
    with open(tmp_path / "r" / "results.json", encoding="utf-8") as f:
        assert len(json.load(f)["runs"][0]["warnings"]) == 4            # and kept
    for k, name in enumerate(["0/1", "2/3", "4/5", "6/7", "8/9"]):
        task = f"task {k + 1}/5 digits {name}"
        lines = [line for line in err.splitlines() if task in line]
        assert len(lines) == (0 if quiet else 1), err
        assert all(line.startswith(f"[synapse] si-c1-seed0: {task}: mean accuracy over seen "
                                   f"tasks ") for line in lines), err


@pytest.mark.parametrize("Omega, says", [
    (0.0, "no weight carried importance from earlier tasks .* lost or reset"),
    (1e-45, r"\d+ weights both important and moved gave a penalty that underflowed to 0 in "
            r"float32"),
])
def test_the_other_causes_are_named(Omega, says, device):
    """Omega zeroed between tasks (the state lost or reset), or so small that every term of the
    penalty rounds to 0. On 'cuda' the same check runs on CuPy arrays (the GPU, or the
    stand-in with -m standin)."""
    from synapse import methods, model, optim
    from synapse.data import Task
    from synapse.learner import Learner, SilentPenaltyWarning

    rng = np.random.default_rng(0)
    x = rng.random((64, 16), dtype=np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64)
    net = model.mlp([16, 8, 2], device=device)
    si = methods.SI(c=1.0)
    learner = Learner(net, si, optim.Adam(net.params), batch_size=16, progress=False)
    learner.learn(Task("one", x, y, x, y, (0, 1)), epochs=1)
    si.Omega[...] = Omega
    with pytest.warns(SilentPenaltyWarning, match=says):
        learner.learn(Task("two", x, 1 - y, x, 1 - y, (0, 1)), epochs=1)


# -- 15. start-up: what a command imports ------------------------------------------------------
def test_digits_read_without_scikit_learn_equal_its_loader():
    from sklearn.datasets import load_digits

    from synapse.data.offline import digits_arrays
    data, target = digits_arrays()
    ref_data, ref_target = load_digits(return_X_y=True)
    assert data.dtype == ref_data.dtype and target.dtype == ref_target.dtype
    np.testing.assert_array_equal(data, ref_data)
    np.testing.assert_array_equal(target, ref_target)


IMPORTS = ("import runpy, sys\n"
           "sys.argv = ['synapse'] + sys.argv[1:]\n"
           "try:\n"
           "    runpy.run_module('synapse.cli', run_name='__main__')\n"
           "except SystemExit:\n"
           "    pass\n"
           "print('imported:', *sorted(m for m in ('sklearn', 'matplotlib', 'numba', 'joblib')"
           " if m in sys.modules))\n")


@pytest.mark.parametrize("argv, imported", [
    (["split-mnist", "--epochs", "0"], set()),                          # a mistake: nothing
    (["split-mnist", *TINY, "--no-progress", "--c", "1"], {"matplotlib"}),
])
def test_a_command_imports_only_what_it_uses(argv, imported, tmp_path):
    """A refused flag imports none of the heavy packages; a tiny digits run in one process
    draws its figure but imports neither scikit-learn (about 1.5 s of a 3 s run) nor joblib."""
    p = subprocess.run([sys.executable, "-c", IMPORTS, *argv, "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=120)
    line = p.stdout.strip().splitlines()[-1]
    assert line.startswith("imported:"), (p.stdout, p.stderr)
    assert set(line.split()[1:]) - {"numba"} == imported, (line, p.stderr)
