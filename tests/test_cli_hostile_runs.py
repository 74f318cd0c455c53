"""The issue-18 reproductions, replayed as a user did them: a real ``synapse`` process, a real
edited config.json, a real copied checkpoint.npz. Each used to exit 0 with numbers that were not
what ran; each is now either two honestly named runs or one line naming the setting (exit 2,
before any folder; on --resume nothing is overwritten)."""
import hashlib
import json
import shutil
import subprocess
import sys
import time

import pytest

from test_cli_subprocess import TINY, one_line_error, synapse

PERMUTED = ["permuted-mnist", *TINY, "--c", "1", "--set", "n_tasks=2", "--keep-checkpoints"]


def digest(folder):
    """Every file under ``folder`` and its bytes: nothing changed means this is equal."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Two finished permuted runs (2 tasks, c = 1, checkpoints kept): data_seed 0 and 1."""
    root = tmp_path_factory.mktemp("finished")
    both = [subprocess.Popen([sys.executable, "-m", "synapse.cli", *PERMUTED, "--data-seed",
                              str(seed), "--out", str(root / f"d{seed}")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for seed in (0, 1)]                                  # side by side: half the wait
    for p in both:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    return root


def edited(finished, tmp_path, **changes):
    """A copy of the data_seed-0 folder whose config.json the user edited."""
    out = tmp_path / "edited"
    shutil.copytree(finished / "d0", out)
    stored = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(dict(stored, **changes)))
    return out


# -- 1. c = 1 and c = 1.0000001; 4. ewc=1234567 ---------------------------------------------
def test_close_strengths_are_two_runs_named_in_full(tmp_path):
    out = tmp_path / "r"
    code, text, err = synapse("split-mnist", *TINY, "--c", "1,1.0000001", "--method", "si",
                              "--method", "ewc=1234567", "--method", "si=0.1234567",
                              "--out", str(out))
    assert code == 0, err
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "ewc-c1234567-seed0", "si-c0.1234567-seed0", "si-c1-seed0", "si-c1.0000001-seed0"]
    for row in ("c=1 (SI)", "c=1.0000001 (SI)", "EWC (c=1234567)", "c=0.1234567 (SI)"):
        assert f"\n{row} " in text, text
    assert json.loads((out / "config.json").read_text())["methods"] == [
        "si", "ewc=1234567", "si=0.1234567"]
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [(r["method"], r["c"]) for r in runs] == [
        ("si", 1.0), ("si", 1.0000001), ("ewc", 1234567.0), ("si", 0.1234567)]


def test_strengths_equal_in_float32_are_refused(tmp_path):
    code, _, err = synapse("split-mnist", *TINY, "--c", "1,1.00000001", "--out",
                           str(tmp_path / "r"))
    one_line_error(code, err, "--c", "c=1 and c=1.00000001", "float32")
    assert not (tmp_path / "r").exists()


# -- 2. --resume refuses what does not match ---------------------------------------------------
def test_a_checkpoint_copied_from_another_data_seed_is_refused(finished, tmp_path):
    out = tmp_path / "cut"
    shutil.copytree(finished / "d0", out)
    run = out / "runs" / "si-c1-seed0"
    (run / "run.json").unlink()                                  # the run was interrupted
    shutil.copy(finished / "d1" / "runs" / "si-c1-seed0" / "checkpoint.npz", run)
    before = digest(out)
    code, _, err = synapse("permuted-mnist", "--resume", str(out))
    one_line_error(code, err, str(run / "checkpoint.npz"), "data_seed=1, not 0")
    assert digest(out) == before


@pytest.mark.parametrize("changes, words", [
    ({"data_seed": 1}, "data_seed=0, not 1"),
    ({"n_tasks": 6}, "n_tasks=2, not 6"),
    ({"train_examples": 500}, "train_examples=null, not 500"),
])
def test_an_edited_config_is_refused_naming_the_setting(finished, tmp_path, changes, words):
    out = edited(finished, tmp_path, **changes)
    before = digest(out)
    code, _, err = synapse("permuted-mnist", "--resume", str(out))
    one_line_error(code, err, str(out / "runs" / "si-c1-seed0" / "run.json"), words)
    assert digest(out) == before


@pytest.mark.parametrize("changes, words", [
    ({"profile": "bogus"}, "profile: unknown profile 'bogus'"),
    ({"methods": ["si", "si=1"], "c": [0, 1]}, "si with c=1 is asked for twice"),
])
def test_a_resumed_config_gets_every_check_of_a_fresh_one(finished, tmp_path, changes, words):
    out = edited(finished, tmp_path, **changes)
    before = digest(out)
    code, _, err = synapse("permuted-mnist", "--resume", str(out))
    one_line_error(code, err, str(out / "config.json"), words)
    assert digest(out) == before


# -- 3, 5. data settings that cannot be honoured --------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["transfer-mnist-bg", "--pretrain-examples", "100000"],
     ["--pretrain-examples", "100,000 asked", "719 pretraining examples"]),
    (["permuted-mnist", "--train-examples", "1"],
     ["--train-examples", "fewer than the 10 classes"]),
])
def test_data_settings_beyond_the_data_are_refused(tmp_path, argv, words):
    code, _, err = synapse(*argv[:1], *TINY, *argv[1:], "--out", str(tmp_path / "r"))
    one_line_error(code, err, *words)
    assert not (tmp_path / "r").exists()


# -- 6. --out inside a running run's folder ------------------------------------------------------
def test_out_inside_a_running_results_folder_is_refused(tmp_path):
    a = tmp_path / "A"
    running = subprocess.Popen([sys.executable, "-m", "synapse.cli", "split-mnist", *TINY,
                                "--epochs", "5", "--c", "1", "--out", str(a)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (a / "config.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        inside = a / "runs" / "si-c1-seed0"
        code, _, err = synapse("split-mnist", *TINY, "--out", str(inside))
        one_line_error(code, err, "--out", f"inside {a}")
    finally:
        assert running.wait(timeout=120) == 0, running.stderr.read()
    assert sorted(p.name for p in (a / "runs").iterdir()) == ["si-c1-seed0"]
    assert sorted(p.name for p in inside.iterdir()) == ["run.json"]        # A's own, only


@pytest.mark.parametrize("content", ["[]", '{"a": 1}'])
def test_a_run_record_that_is_not_one_is_refused(finished, tmp_path, content):
    out = edited(finished, tmp_path)
    record = out / "runs" / "si-c1-seed0" / "run.json"
    record.write_text(content)
    before = digest(out)
    code, _, err = synapse("permuted-mnist", "--resume", str(out))
    one_line_error(code, err, str(record), "holds no record of the settings")
    assert digest(out) == before
