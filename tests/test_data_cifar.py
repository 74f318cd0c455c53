"""CIFAR-10: download, verify, extract and read, on small archives the tests build in the real format.

The archive is served by the local HTTP server of test_data.py (127.0.0.1); the loader is pointed
at it the documented way, by assigning ``synapse.data.cifar.CIFAR10_URLS`` and ``CIFAR10_MD5``.
"""
import hashlib
import io
import json
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest

import synapse.data.cifar as cifar
from synapse.data import (ChecksumError, DataNotFoundError, DownloadError, cifar10_available,
                          cifar10_instructions, load_cifar10, load_dataset)
from synapse.errors import DataError
from test_data import _closed_port_url, _Handler, _one_line, server  # noqa: F401  (fixture)

N = 4  # images per batch


def _quiet(msg):
    pass


def _py2_batch(data, labels):
    """A batch pickled as Python 2 + NumPy 1 wrote CIFAR-10: protocol 2, str opcodes, numpy.core."""
    def s(b):
        return b"U" + bytes([len(b)]) + b  # SHORT_BINSTRING

    n, d = data.shape
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
             + b"(K\x01K" + bytes([n]) + b"M" + struct.pack("<H", d) + b"\x86"
             + b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R"
             + b"(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
             + b"\x89T" + struct.pack("<I", data.nbytes) + data.tobytes() + b"tb")
    label_list = b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return b"\x80\x02}" + s(b"data") + array + b"s" + s(b"labels") + label_list + b"s."


def _members(seed=0):
    """name -> (pixels uint8 (N, 3072), labels) of the six batches, and their pickled bytes."""
    rng = np.random.default_rng(seed)
    arrays, members = {}, {}
    for i, name in enumerate(cifar.TRAIN_BATCHES + ("test_batch",)):
        x = rng.integers(0, 256, (N, 3072), dtype=np.uint8)
        y = [int(v) for v in (np.arange(N) + i) % 10]
        arrays[name] = (x, y)
        members[name] = _py2_batch(x, y)
    members["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=4)
    return arrays, members


def _archive(members, drop=()):
    """The bytes of a cifar-10-python.tar.gz holding ``members`` (less those in ``drop``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            if name in drop:
                continue
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def point_at(monkeypatch):
    """Point the loader at ``url`` with the md5 of ``data`` and, given ``members``, the md5 of
    each batch file in it (the documented override)."""
    def point(url, data, members=None):
        md5 = hashlib.md5(data).hexdigest()
        monkeypatch.setattr(cifar, "CIFAR10_URLS", (url,))
        monkeypatch.setattr(cifar, "CIFAR10_MD5", md5)
        if members is not None:
            monkeypatch.setattr(cifar, "CIFAR10_BATCH_MD5",
                                {n: hashlib.md5(b).hexdigest() for n, b in members.items()})
        return md5
    return point


def _placed(tmp_path, members, point_at):
    """An archive put in the cache folder by hand (no network); returns its md5."""
    data = _archive(members)
    (tmp_path / "cifar10").mkdir(exist_ok=True)
    (tmp_path / "cifar10" / cifar.CIFAR10_ARCHIVE).write_bytes(data)
    return point_at(_closed_port_url() + "/cifar-10-python.tar.gz", data, members)


def _left(tmp_path):
    folder = tmp_path / "cifar10"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# ---------------------------------------------------------------- download


def test_download_verify_extract_load(server, tmp_path, point_at):
    arrays, members = _members()
    data = _archive(members)
    _Handler.files["/cifar/cifar-10-python.tar.gz"] = data
    md5 = point_at(f"{server}/cifar/cifar-10-python.tar.gz", data, members)
    log = []
    ds = load_dataset("cifar10", cache_dir=tmp_path, log=log.append)
    assert any("downloading" in m for m in log) and any("extracting" in m for m in log)
    assert ds.name == "cifar10" and ds.image_shape == (3, 32, 32) and ds.n_classes == 10
    x_train = np.concatenate([arrays[n][0] for n in cifar.TRAIN_BATCHES])
    assert np.array_equal(ds.x_train, x_train.astype(np.float32) / np.float32(255))
    assert np.array_equal(ds.x_test * 255, arrays["test_batch"][0].astype(np.float32))
    assert ds.y_train.tolist() == sum((arrays[n][1] for n in cifar.TRAIN_BATCHES), [])
    assert ds.y_train.dtype == np.int64 and md5 in ds.source and "20 train / 4 test" in ds.source
    marker = json.loads((tmp_path / "cifar10" / cifar.MARKER).read_text())
    assert marker["archive_md5"] == md5 and marker["batch_md5"] == cifar.CIFAR10_BATCH_MD5
    assert _left(tmp_path) == sorted([cifar.CIFAR10_ARCHIVE, cifar.BATCH_DIR, cifar.MARKER]
                                     + [f"{cifar.BATCH_DIR}/{n}" for n in members])
    assert cifar10_available(tmp_path)
    # second load: from the verified extraction, no download, even with the server gone
    cifar.CIFAR10_URLS = (_closed_port_url() + "/gone.tar.gz",)
    again = load_cifar10(tmp_path, download=False, log=log.append)
    assert np.array_equal(again.x_train, ds.x_train)


@pytest.mark.parametrize("path, kind", [("/corrupt/cifar-10-python.tar.gz", ChecksumError),
                                        ("/drop/cifar-10-python.tar.gz", DownloadError)])
def test_wrong_checksum_or_dropped_connection_leave_nothing(server, tmp_path, point_at, path, kind):
    data = _archive(_members()[1])
    _Handler.files["/cifar-10-python.tar.gz"] = data
    _Handler.files["/corrupt/cifar-10-python.tar.gz"] = data[:100] + bytes([data[100] ^ 1]) + data[101:]
    md5 = point_at(f"{server}{path}", data)
    with pytest.raises(kind) as info:
        load_dataset("cifar10", cache_dir=tmp_path, log=_quiet)
    _one_line(info.value, cifar.CIFAR10_ARCHIVE, md5, tmp_path / "cifar10")
    assert _left(tmp_path) == []  # no archive, no .part, no batches, no marker


def test_server_down_says_url_md5_and_folder(tmp_path, point_at):
    url = _closed_port_url() + "/cifar-10-python.tar.gz"
    md5 = point_at(url, b"whatever")
    with pytest.raises(DownloadError) as info:
        load_cifar10(tmp_path, timeout=2, log=_quiet)
    _one_line(info.value, url, md5, tmp_path / "cifar10")
    assert _left(tmp_path) == []


def test_offline_message_names_the_real_url_md5_and_folder(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("cifar10", cache_dir=tmp_path, download=False, log=_quiet)
    _one_line(info.value, "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
              "c58f30108f718f92721af3b95e74349a", tmp_path / "cifar10")
    assert isinstance(info.value, FileNotFoundError) and not cifar10_available(tmp_path)
    line = cifar10_instructions(tmp_path)
    assert line == (f"download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (md5 "
                    f"c58f30108f718f92721af3b95e74349a, about 163 MB) and put it in "
                    f"{tmp_path / 'cifar10'} as cifar-10-python.tar.gz")


def test_a_cached_wrong_archive_is_never_extracted(tmp_path):
    (tmp_path / "cifar10").mkdir()
    data = _archive(_members()[1])
    (tmp_path / "cifar10" / cifar.CIFAR10_ARCHIVE).write_bytes(data)
    with pytest.raises(ChecksumError) as info:
        load_cifar10(tmp_path, download=False, log=_quiet)  # the real md5: our archive is not it
    _one_line(info.value, tmp_path / "cifar10" / cifar.CIFAR10_ARCHIVE,
              "c58f30108f718f92721af3b95e74349a", hashlib.md5(data).hexdigest(), "delete it")
    assert _left(tmp_path) == [cifar.CIFAR10_ARCHIVE]


# ---------------------------------------------------------------- files


def test_a_batch_altered_after_extraction_is_never_unpickled(tmp_path, point_at):
    _placed(tmp_path, _members()[1], point_at)
    load_cifar10(tmp_path, download=False, log=_quiet)
    batch = tmp_path / "cifar10" / cifar.BATCH_DIR / "data_batch_2"
    batch.write_bytes(pickle.dumps(os.system))
    with pytest.raises(ChecksumError) as info:
        load_cifar10(tmp_path, download=False, log=_quiet)
    _one_line(info.value, batch, "refusing to unpickle", cifar.MARKER)


def _crafted(name, data):
    members = _members()[1]
    members[name] = data
    return members


@pytest.mark.parametrize("batch, words", [
    (pickle.dumps(os.system, protocol=4), "posix.system: refused"),
    (pickle.dumps({b"data": np.zeros((N, 3072)), b"labels": [0] * N}, protocol=4),
     "b'data' must be a uint8 array (N, 3072), got dtype float64"),
    (pickle.dumps({b"data": np.zeros((N, 100), np.uint8), b"labels": [0] * N}, protocol=4),
     "got dtype uint8, shape (4, 100)"),
    (pickle.dumps({b"data": np.zeros((N, 3072), np.uint8), b"labels": ["cat"] * N}, protocol=4),
     "b'labels' must be 4 integers"),
    (pickle.dumps({b"data": np.zeros((N, 3072), np.uint8), b"labels": [0, 1, 10, 200]}, protocol=4),
     "2 of 4 labels are outside the 10 classes 0..9 (values 10, 200)"),
    (pickle.dumps([1, 2, 3], protocol=4), "expected a dict with b'data' and b'labels', got a list"),
    (b"\x80\x02}q\x00(", "not a CIFAR-10 batch"),  # truncated pickle
], ids=["callable", "float64", "short-rows", "str-labels", "labels-outside", "list", "truncated"])
def test_bad_batch_in_a_verified_archive_names_the_file(tmp_path, point_at, batch, words):
    _placed(tmp_path, _crafted("test_batch", batch), point_at)
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path, download=False, log=_quiet)
    _one_line(info.value, tmp_path / "cifar10" / cifar.BATCH_DIR / "test_batch", words)


def test_modern_pickles_load_too(tmp_path, point_at):
    """NumPy 2 pickles (numpy._core) of the same dict are read like the Python 2 originals."""
    x = np.arange(N * 3072, dtype=np.int64).reshape(N, 3072).astype(np.uint8)
    batch = pickle.dumps({b"data": x, b"labels": np.arange(N)}, protocol=4)
    _placed(tmp_path, _crafted("test_batch", batch), point_at)
    ds = load_cifar10(tmp_path, download=False, log=_quiet)
    assert np.array_equal(ds.x_test * 255, x.astype(np.float32)) and ds.y_test.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("text, words", [
    ("{not json", "unreadable extraction record"),
    ("", "unreadable extraction record"),
    ("[1, 2]", "incomplete extraction record"),
    ('{"archive_md5": 5}', "incomplete extraction record"),
], ids=["not-json", "empty", "list", "md5-not-a-string"])
def test_bad_marker_names_the_file(tmp_path, point_at, text, words):
    _placed(tmp_path, _members()[1], point_at)
    load_cifar10(tmp_path, download=False, log=_quiet)
    marker = tmp_path / "cifar10" / cifar.MARKER
    marker.write_text(text)
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path, download=False, log=_quiet)
    _one_line(info.value, marker, words, "delete it")


def test_archive_without_a_batch_extracts_nothing(tmp_path, point_at):
    data = _archive(_members()[1], drop=("test_batch",))
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / cifar.CIFAR10_ARCHIVE).write_bytes(data)
    point_at("http://127.0.0.1:9/x.tar.gz", data, _members()[1])
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path, download=False, log=_quiet)
    _one_line(info.value, tmp_path / "cifar10" / cifar.CIFAR10_ARCHIVE,
              "holds no cifar-10-batches-py/test_batch")
    assert _left(tmp_path) == sorted([cifar.CIFAR10_ARCHIVE, cifar.BATCH_DIR])  # no batch, no marker


def test_not_a_gzip_archive(tmp_path, point_at):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / cifar.CIFAR10_ARCHIVE).write_bytes(b"not an archive at all")
    point_at("http://127.0.0.1:9/x.tar.gz", b"not an archive at all")
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path, download=False, log=_quiet)
    _one_line(info.value, tmp_path / "cifar10" / cifar.CIFAR10_ARCHIVE, "cannot be unpacked")


# ---------------------------------------------------------------- trust only what synapse verified


def test_a_hand_written_marker_never_vouches_for_forged_batches(tmp_path):
    """Issue 21, case 12: well-formed forged batches and a marker written by hand holding the
    public archive md5 and the sha256 of the forged files. The digests in the code decide."""
    arrays, members = _members()
    folder = tmp_path / "cifar10"
    (folder / cifar.BATCH_DIR).mkdir(parents=True)
    for name, data in members.items():
        (folder / cifar.BATCH_DIR / name).write_bytes(data)
    (folder / cifar.MARKER).write_text(json.dumps({
        "archive": cifar.CIFAR10_ARCHIVE, "archive_md5": cifar.CIFAR10_MD5,
        "sha256": {n: hashlib.sha256(d).hexdigest() for n, d in members.items()}}))
    with pytest.raises(ChecksumError) as info:
        load_cifar10(tmp_path, download=False, log=_quiet)
    batch = folder / cifar.BATCH_DIR / "data_batch_1"
    _one_line(info.value, batch, hashlib.md5(members["data_batch_1"]).hexdigest(),
              "c99cafc152244af753f735de768cd75f", "refusing to unpickle", cifar.MARKER)


def test_an_archive_with_the_right_md5_but_other_batches_extracts_nothing(tmp_path, point_at):
    """An archive passed off as CIFAR-10 by its md5 alone (CIFAR10_MD5 pointed at it) still
    holds batches that are not the official files: nothing is extracted."""
    data = _archive(_members()[1])
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / cifar.CIFAR10_ARCHIVE).write_bytes(data)
    point_at("http://127.0.0.1:9/x.tar.gz", data)                  # batch digests: official
    with pytest.raises(ChecksumError) as info:
        load_cifar10(tmp_path, download=False, log=_quiet)
    _one_line(info.value, cifar.CIFAR10_ARCHIVE, "data_batch_1", "official", "refusing")
    assert _left(tmp_path) == sorted([cifar.CIFAR10_ARCHIVE, cifar.BATCH_DIR])


@pytest.mark.parametrize("make, kind", [
    (os.mkfifo, "a FIFO"), (lambda p: os.symlink("/dev/zero", p), "a character device")],
    ids=["fifo", "symlink-to-dev-zero"])
def test_a_batch_or_marker_that_is_not_a_regular_file(tmp_path, point_at, no_hang, make, kind):
    _placed(tmp_path, _members()[1], point_at)
    load_cifar10(tmp_path, download=False, log=_quiet)
    folder = tmp_path / "cifar10"
    for path in (folder / cifar.BATCH_DIR / "test_batch", folder / cifar.MARKER):
        saved = path.read_bytes()
        path.unlink()
        make(path)
        with no_hang(10), pytest.raises(DataError) as info:
            load_cifar10(tmp_path, download=False, log=_quiet)
        _one_line(info.value, path, kind, "not a regular file")
        path.unlink()
        path.write_bytes(saved)
