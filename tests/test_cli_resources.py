"""Issue 21, resources and up-front checks, replayed as a user did them: a real ``synapse``
process, a real FIFO, a real symlink to /dev/zero, real servers on 127.0.0.1. Each mistake is
one line naming the setting, variable or file (exit 2) BEFORE any results folder is made, and
nothing hangs: every process runs under a timeout."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from synapse.experiments import split_mnist
from synapse.experiments.protocol import configure
from synapse.experiments.sweep import local_workers
from test_cli_subprocess import TINY, one_line_error, synapse


def no_folder(tmp_path):
    """Nothing was made under ``tmp_path`` (the test's own files aside)."""
    return sorted(p.name for p in tmp_path.iterdir())


# -- 1, 2. memory: the network, its optimizer and method state, the tasks; before any folder --
def test_a_network_larger_than_the_machine_is_refused_before_any_folder(tmp_path):
    code, _, err = synapse("split-mnist", *TINY, "--hidden", "100000000",
                           "--out", str(tmp_path / "out"), timeout=60)
    one_line_error(code, err, "--hidden: one run", "64-100000000-10 network",
                   "of memory but this machine has", "available")
    assert no_folder(tmp_path) == []


def test_resuming_a_config_json_with_such_a_network_is_refused_naming_it(tmp_path):
    """config.json edited to a huge network: refused naming the file, nothing written."""
    out = tmp_path / "edited"
    out.mkdir()
    stored = configure(split_mnist.PROTOCOL, "quick", {"data": "digits", "seeds": 1,
                                                       "hidden": [8]}).to_json()
    (out / "config.json").write_text(json.dumps(dict(stored, hidden=[100000000])))
    code, _, err = synapse("split-mnist", "--resume", str(out), timeout=60)
    one_line_error(code, err, f"{out / 'config.json'}: hidden: one run", "this machine has")
    assert sorted(p.name for p in out.iterdir() if p.name != ".lock") == ["config.json"]
    assert json.loads((out / "config.json").read_text())["hidden"] == [100000000]


def test_permuted_tasks_that_do_not_fit_are_refused_before_any_folder(tmp_path):
    """Every permuted copy of the data is built before the first task: 100,000 of them (and
    their 100,000 x 100,000 accuracy matrix) are counted, and refused, up front."""
    code, _, err = synapse("permuted-mnist", *TINY, "--n-tasks", "100000",
                           "--out", str(tmp_path / "out"), timeout=60)
    one_line_error(code, err, "--n-tasks: one run", "100,000 tasks' data", "this machine has")
    assert no_folder(tmp_path) == []


# -- 3. a scheduler that never answers, one that answers garbage ----------------------------
class Server:
    """A TCP server on 127.0.0.1 that accepts every connection and then either says nothing
    (``reply=None``) or writes ``reply``; closed by the test."""

    def __init__(self, reply=None):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.reply, self.conns = reply, []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:                                       # closed by the test
                return
            self.conns.append(conn)
            if self.reply is not None:
                try:
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def close(self):
        for conn in [self.sock, *self.conns]:
            conn.close()


def test_a_silent_or_garbage_scheduler_is_one_line_in_bounded_time(tmp_path):
    """README: an unreachable scheduler is reported after 10 s. Both servers run at once."""
    silent, garbage = Server(), Server(b"\xff" * 64 + b"HTTP/1.1 200 OK\r\n\r\nhello" * 10)
    try:
        started = time.monotonic()
        procs = {name: subprocess.Popen(
            [sys.executable, "-m", "synapse.cli", "split-mnist", *TINY, "--scheduler",
             f"tcp://127.0.0.1:{server.port}", "--out", str(tmp_path / name)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, server in (("silent", silent), ("garbage", garbage))}
        result = {name: (p.wait(timeout=40), p.stderr.read(), time.monotonic() - started)
                  for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        silent.close()
        garbage.close()
    code, err, seconds = result["silent"]
    one_line_error(code, err, f"--scheduler: the server at tcp://127.0.0.1:{silent.port} "
                              f"accepted the connection but did not answer in 10 s")
    assert 9 < seconds < 30, seconds
    code, err, seconds = result["garbage"]
    one_line_error(code, err, f"tcp://127.0.0.1:{garbage.port} answered, but not as a Dask "
                              f"scheduler")
    assert no_folder(tmp_path) == []


# -- 4. --jobs 1000 with two runs; 13. --c -0 ------------------------------------------------
def test_jobs_never_exceed_the_runs_and_minus_zero_is_zero(tmp_path):
    """Two runs (c = -0 and 1) with --jobs 1000: at most two workers (fewer where there is one
    core), and c = -0 is the run c = 0 by name and label."""
    out = tmp_path / "out"
    code, text, err = synapse("split-mnist", *TINY, "--c=-0,1", "--jobs", "1000",
                              "--out", str(out), timeout=120)
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["n_jobs"] == min(2, len(os.sched_getaffinity(0)))
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["si-c0-seed0", "si-c1-seed0"]
    assert "\nc=0 (fine-tuning) " in text and "c=-0" not in text + err
    assert results["config"]["c"] == [0.0, 1.0]
    assert np.copysign(1.0, results["config"]["c"][0]) == 1.0


@pytest.mark.parametrize("asked, items, cores, workers, note", [
    (1000, 2, 16, 2, None),                       # two runs, two workers, nothing to say
    (1000, 500, 16, 16, "jobs: 1000 asked, but this machine has 16 CPU cores: 16 runs at once"),
    (-1, 500, 4, 4, None),                        # -1 is one per core: asked for exactly that
    (-1, 3, 4, 3, None),
    (3, 500, 4, 3, None),
])
def test_local_workers_are_capped_by_runs_and_cores(monkeypatch, asked, items, cores, workers,
                                                    note):
    monkeypatch.setattr("synapse.experiments.sweep.cpu_cores", lambda: cores)
    assert local_workers(asked, items) == (workers, note)


# -- 5. CLI side: config.json / run.json that are not regular files, on --resume -------------
def results_folder(tmp_path):
    """A results folder as a tiny split-mnist run leaves it (config.json, runs/<run>/)."""
    out = tmp_path / "res"
    (out / "runs" / "si-c0-seed0").mkdir(parents=True)
    config = configure(split_mnist.PROTOCOL, "quick", {"data": "digits", "seeds": 1,
                                                       "hidden": [8], "epochs": 1})
    (out / "config.json").write_text(json.dumps(config.to_json()))
    return out


@pytest.mark.parametrize("file, make, kind", [
    ("config.json", os.mkfifo, "a FIFO (named pipe)"),
    ("config.json", lambda p: os.symlink("/dev/zero", p), "a character device"),
    ("runs/si-c0-seed0/run.json", os.mkfifo, "a FIFO (named pipe)"),
], ids=["config-fifo", "config-dev-zero", "run-json-fifo"])
def test_resume_reads_only_regular_files(tmp_path, file, make, kind):
    out = results_folder(tmp_path)
    path = out / file
    path.unlink(missing_ok=True)
    make(path)
    code, _, err = synapse("split-mnist", "--resume", str(out), timeout=30)
    one_line_error(code, err, str(path), kind, "not a regular file")


# -- 7. checked up front, as $SYNAPSE_DEVICE is ------------------------------------------------
def test_shots_beyond_the_pool_are_refused_naming_shots(tmp_path):
    code, _, err = synapse("transfer-mnist-bg", *TINY, "--pretrain-epochs", "1", "--shots",
                           "100000", "--out", str(tmp_path / "out"), timeout=60)
    one_line_error(code, err, "--shots: 100,000 labelled examples per class asked",
                   "holds", "of its rarest class")
    assert no_folder(tmp_path) == []


def test_a_bad_cpu_kernels_variable_is_refused_before_any_folder(tmp_path):
    code, _, err = synapse("split-mnist", *TINY, "--out", str(tmp_path / "out"),
                           env={"SYNAPSE_CPU_KERNELS": "bogus"}, timeout=60)
    one_line_error(code, err, "$SYNAPSE_CPU_KERNELS: 'bogus': expected one of")
    assert no_folder(tmp_path) == []


def test_fashion_training_labels_of_one_class_are_refused_naming_the_file(tmp_path):
    from synapse.data import write_idx
    from synapse.data.offline import FASHION_FILES
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in zip(FASHION_FILES, (100, 100, 20, 20)):
        array = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if "images" in name
                 else np.zeros(n, np.uint8) if "train" in name else np.arange(n) % 10)
        write_idx(folder / name, np.asarray(array, np.uint8))
    code, _, err = synapse("split-mnist", *TINY, "--data", "fashion-mnist", "--data-dir",
                           str(tmp_path / "data"), "--out", str(tmp_path / "out"), timeout=60)
    one_line_error(code, err, str(folder / FASHION_FILES[1]),
                   "no training example of class(es) [1, 2, 3, 4, 5, 6, 7, 8, 9]")
    assert no_folder(tmp_path) == ["data"]


# -- 13. an empty list item ----------------------------------------------------------------------
@pytest.mark.parametrize("hidden", ["8,,8", "8,", ",8"])
def test_an_empty_item_in_a_list_is_refused(tmp_path, hidden):
    code, _, err = synapse("split-mnist", *TINY, "--hidden", hidden,
                           "--out", str(tmp_path / "out"), timeout=60)
    one_line_error(code, err, f"--hidden: {hidden!r} has an empty item")
    assert no_folder(tmp_path) == []
