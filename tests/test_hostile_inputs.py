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
