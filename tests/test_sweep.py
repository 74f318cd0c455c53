import sys

import numpy as np
import pytest

from synapse.experiments.sweep import grid_product, group_runs, merge_results, run_grid

try:  # tests/ is on sys.path under pytest's default import mode; else import it as a package
    from _sweep_jobs import failing_run, fake_run
except ImportError:  # pragma: no cover
    from tests._sweep_jobs import failing_run, fake_run

GRID = grid_product(seed=[0, 1], c=[0.0, 1.0])


def expected():
    return [fake_run(**kw) for kw in GRID]


def assert_same_results(results):
    want = expected()
    assert [(r["seed"], r["c"]) for r in results] == [(kw["seed"], kw["c"]) for kw in GRID]
    for r, w in zip(results, want):
        np.testing.assert_array_equal(r["R"], w["R"])


def test_grid_product_order_and_scalars():
    assert GRID == [{"seed": 0, "c": 0.0}, {"seed": 0, "c": 1.0},
                    {"seed": 1, "c": 0.0}, {"seed": 1, "c": 1.0}]
    assert grid_product(seed=range(2), method="si") == [{"seed": 0, "method": "si"},
                                                        {"seed": 1, "method": "si"}]
    with pytest.raises(ValueError, match="no values"):
        grid_product(seed=[])


def test_sequential_merge_and_group():
    results = run_grid(fake_run, GRID, progress=False)
    assert_same_results(results)
    record = merge_results(results, GRID)
    assert record["n_runs"] == 4 and record["params"] == {"seed": [0, 1], "c": [0.0, 1.0]}
    curves = group_runs(record, "c", "R")
    assert list(curves) == [0.0, 1.0] and curves[1.0].shape == (2, 3, 3)
    np.testing.assert_array_equal(curves[0.0][1], results[2]["R"])  # seed 1, c = 0
    assert list(group_runs(record, ("seed", "c"), "R")) == [(0, 0.0), (0, 1.0), (1, 0.0), (1, 1.0)]


def test_loky_processes():
    results = run_grid(fake_run, GRID, n_jobs=2, backend="loky", progress=False)
    assert_same_results(results)
    import os
    assert all(r["pid"] != os.getpid() for r in results)  # really ran in worker processes


def test_progress_prints_a_final_line(capsys):
    run_grid(fake_run, GRID[:2], backend="threading", n_jobs=2, desc="sweep")
    err = capsys.readouterr().err
    assert "sweep" in err and "2/2" in err


def test_errors_are_clear():
    with pytest.raises(ValueError, match="loky.*dask"):
        run_grid(fake_run, GRID, backend="spark")
    with pytest.raises(TypeError, match=r"grid\[0\]"):
        run_grid(fake_run, [(0, 1)])
    with pytest.raises(RuntimeError, match="diverged") as info:
        run_grid(failing_run, GRID, progress=False)
    if sys.version_info >= (3, 11):
        assert "'seed': 1" in "".join(info.value.__notes__)
    assert run_grid(fake_run, [], progress=False) == []
    with pytest.raises(ValueError, match="results for a grid"):
        merge_results([{}], GRID)
    with pytest.raises(TypeError, match="must return dicts"):
        merge_results([1])


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'synapse-si\[dask\]'"):
        run_grid(fake_run, GRID, scheduler="tcp://127.0.0.1:1", progress=False)


def test_dask_local_cluster():
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    with distributed.LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1,
                                  processes=True, dashboard_address=None,
                                  memory_limit="1GiB") as cluster:
        # The same call as locally, given only the scheduler's address.
        results = run_grid(fake_run, GRID, scheduler=cluster.scheduler_address, progress=False)
        assert_same_results(results)
        assert len({r["pid"] for r in results} - {__import__("os").getpid()}) >= 1
        # backend="dask" picks up a client already active in this process.
        with distributed.Client(cluster) as client:
            results = run_grid(fake_run, GRID, backend="dask", progress=False)
            assert_same_results(results)
            results = run_grid(fake_run, GRID, scheduler=client, progress=False)
            assert_same_results(results)
            assert client.status == "running"   # a client we were given stays open


def test_dask_backend_without_cluster_is_a_clear_error():
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    with pytest.raises(ValueError, match="scheduler='tcp://"):
        run_grid(fake_run, GRID, backend="dask", progress=False)


# synapse.progress, which run_grid uses to report finished jobs.

class FakeTTY:
    def __init__(self, tty=True):
        self.text, self.tty = "", tty

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return self.tty


def test_progress_on_a_terminal_is_rate_limited_and_shows_eta_and_postfix():
    from synapse.progress import Progress
    out = FakeTTY()
    with Progress(total=1000, desc="task 2/5", stream=out, min_interval=3600) as bar:
        for _ in range(1000):
            bar.update(1, loss=0.123456)
    redraws = out.text.count("\r")
    assert redraws == 2                      # the first update and the final line only
    last = out.text.rstrip("\n").split("\r")[-1]
    assert "task 2/5" in last and "1000/1000" in last and "loss=0.1235" in last and " < " in last
    assert out.text.endswith("\n")


def test_progress_off_a_terminal_prints_only_a_final_line_and_disabled_prints_nothing():
    from synapse.progress import format_seconds, progress
    out = FakeTTY(tty=False)
    assert list(progress(range(5), desc="eval", stream=out)) == list(range(5))
    assert out.text.count("\n") == 1 and "5/5" in out.text and "\r" not in out.text
    quiet = FakeTTY()
    assert sum(progress(iter(range(4)), enabled=False, stream=quiet)) == 6
    assert quiet.text == ""
    assert format_seconds(75.2) == "1:15" and format_seconds(3725) == "1:02:05"
    assert format_seconds(None) == "?" and format_seconds(float("nan")) == "?"
