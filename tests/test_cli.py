"""The ``synapse`` command: help for every subcommand, argparse errors for impossible values,
and a tiny run end to end (then resumed)."""
import pytest

from synapse.backend import cuda_unavailable_reason
from synapse.cli import main
from synapse.experiments import PROTOCOLS as EXPERIMENTS
from synapse.experiments.results import load_results

TINY = ["--data", "digits", "--seeds", "1", "--epochs", "1", "--hidden", "8",
        "--no-progress"]


def exit_code(argv, capsys):
    with pytest.raises(SystemExit) as err:
        main(argv)
    out = capsys.readouterr()
    return err.value.code, out.out + out.err


def run_cli(argv, capsys):
    """(exit status, printed text) whether main returns or argparse exits."""
    try:
        code = main(argv)
    except SystemExit as err:
        code = err.code
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("argv", [["--help"]] + [[name, "--help"] for name in EXPERIMENTS]
                         + [["info", "--help"]])
def test_help(argv, capsys):
    code, text = exit_code(argv, capsys)
    assert code == 0 and "usage: synapse" in text
    if len(argv) == 2 and argv[0] in EXPERIMENTS:
        assert "--profile" in text and "quick:" in text and "paper:" in text


@pytest.mark.parametrize("args, option", [
    (["--c", "-1"], "--c"), (["--c", "0,x"], "--c"), (["--xi", "0"], "--xi"),
    (["--xi", "-1e-3"], "--xi"), (["--epochs", "0"], "--epochs"), (["--seeds", "-2"], "--seeds"),
    (["--method", "nope"], "--method"), (["--data", "imagenet"], "--data"),
    (["--device", "tpu"], "--device"), (["--lr", "0"], "--lr"), (["--bogus"], "--bogus"),
    (["--set", "no_such_key=1"], "no_such_key"), (["--set", "batch_size=0"], "batch"),
])
def test_impossible_values_exit_2_naming_the_option(args, option, capsys, tmp_path):
    code, text = run_cli(["split-mnist", "--out", str(tmp_path / "x")] + args, capsys)
    assert code == 2 and option in text and "error" in text
    assert not (tmp_path / "x" / "results.json").exists()


@pytest.mark.skipif(cuda_unavailable_reason() is None, reason="CUDA is available here")
def test_cuda_unavailable_is_a_clear_error(capsys):
    code, text = run_cli(["split-mnist", "--device", "cuda"], capsys)
    assert code == 2 and "--device" in text and cuda_unavailable_reason()[:20] in text


def test_tiny_run_end_to_end_then_resume(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["split-mnist", "--out", str(out), "--c", "0,1"] + TINY) == 0
    printed = capsys.readouterr().out
    assert "c=1 (SI)" in printed and "ACC" in printed
    first = load_results(out)
    assert (out / "split_mnist.png").exists() and len(first["runs"]) == 2
    assert main(["split-mnist", "--resume", str(out), "--c", "0,1"] + TINY) == 0
    again = load_results(out)
    assert [r["R"] for r in again["runs"]] == [r["R"] for r in first["runs"]]
    code, text = run_cli(["split-mnist", "--resume", str(out), "--epochs", "2"], capsys)
    assert code == 2 and "--epochs" in text


def test_methods_repeatable_and_comma_separated(tmp_path, capsys):
    out = tmp_path / "m"
    argv = ["split-mnist", "--out", str(out), "--c", "1", "--method", "si,finetune",
            "--method", "l2=0.5"] + TINY
    assert main(argv) == 0
    labels = {r["label"] for r in load_results(out)["runs"]}
    assert labels == {"c=1 (SI)", "fine-tuning", "L2 (c=0.5)"}


def test_divergence_exits_1_with_task_and_epoch(tmp_path, capsys):
    import numpy as np
    with np.errstate(all="ignore"):
        code = main(["split-mnist", "--out", str(tmp_path / "d"), "--c", "1", "--lr", "1e20"]
                    + TINY)
    assert code == 1 and "task 1" in capsys.readouterr().err


def test_info(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "CUDA" in text and "mnist-subset" in text


def test_transfer_cifar_without_the_files_names_url_md5_and_folder(tmp_path, monkeypatch,
                                                                     capsys):
    import synapse.data.cifar as cifar
    monkeypatch.setenv("SYNAPSE_DATA", str(tmp_path))     # --data-dir sets it; undone after
    monkeypatch.setattr(cifar, "CIFAR10_URLS", ["http://127.0.0.1:9/cifar-10-python.tar.gz"])
    code, text = run_cli(["transfer-cifar", "--data-dir", str(tmp_path), "--out",
                          str(tmp_path / "out"), "--no-progress"], capsys)
    assert code == 2 and "Traceback" not in text
    line = [t for t in text.splitlines() if "error" in t]
    assert len(line) == 1
    assert "c58f30108f718f92721af3b95e74349a" in line[0]
    assert str(tmp_path / "cifar10") in line[0]
    assert not (tmp_path / "out").exists()


def test_transfer_mnist_bg_uses_the_official_files_when_present(tmp_path, monkeypatch, capsys):
    """Small stand-ins for mnist_background_images_{train,test}.amat in the data folder."""
    import numpy as np
    monkeypatch.setenv("SYNAPSE_DATA", str(tmp_path))     # --data-dir sets it; undone after
    folder = tmp_path / "mnist-bg"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", 600), ("test", 50)):
        rows = np.hstack([rng.random((n, 784)).round(3), (np.arange(n) % 10)[:, None]])
        np.savetxt(folder / f"mnist_background_images_{name}.amat", rows, fmt="%g")
    out = tmp_path / "out"
    code, text = run_cli(["transfer-mnist-bg", "--data-dir", str(tmp_path), "--out", str(out),
                          "--data", "mnist-subset", "--seeds", "1", "--epochs", "1",
                          "--pretrain-epochs", "1", "--pretrain-examples", "300",
                          "--hidden", "8", "--c", "1", "--no-progress"], capsys)
    assert code == 0, text
    saved = load_results(out)
    assert "official" in saved["data"]["source"] and "official" in saved["data"]["name"]
    assert saved["data"]["small_task"]["n_pool"] == 500           # the official train rows


def test_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
    import errno
    import synapse.experiments.runner as runner

    def no_space(path, obj, indent=2):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(runner, "atomic_write_json", no_space)
    code, text = run_cli(["split-mnist", "--out", str(tmp_path / "o"), "--c", "1"] + TINY, capsys)
    assert code == 2 and "Traceback" not in text
    assert "No space left on device" in text and str(tmp_path / "o") in text


@pytest.mark.parametrize("address, words", [("bogus", "not a scheduler address"),
                                            ("tcp://127.0.0.1:9", "cannot reach")])
def test_a_bad_scheduler_is_one_line_and_quick(address, words, tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed")
    import time
    import synapse.experiments.sweep as sweep
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT_S", 2)
    started = time.perf_counter()
    code, text = run_cli(["split-mnist", "--out", str(tmp_path / "s"), "--scheduler", address]
                         + TINY, capsys)
    assert code == 2 and words in text and "--scheduler" in text
    assert len([t for t in text.splitlines() if t.strip()]) == 1
    assert time.perf_counter() - started < 30
    assert not (tmp_path / "s").exists()


def test_n_jobs_must_be_a_positive_count(tmp_path):
    from synapse.errors import ConfigError
    from synapse.experiments import split_mnist
    with pytest.raises(ConfigError, match="jobs"):
        split_mnist.run(out=tmp_path / "j", n_jobs=0, data="digits")
    assert not (tmp_path / "j").exists()
