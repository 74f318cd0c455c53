"""Full MNIST (60,000 + 10,000) from the four standard IDX files, downloaded and checksummed."""
from .cache import subdir
from .dataset import Dataset
from .download import fetch
from .idx import read_idx_pair

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}


def mnist_files(cache_dir=None, download=True, mirrors=MNIST_MIRRORS, sha256=None,
                timeout=30.0, log=print):
    """Verified paths of the four MNIST files in ``<data_dir>/mnist/``, keyed by name."""
    sha256 = sha256 or MNIST_SHA256
    return {name: fetch([m + name for m in mirrors], name, sha256=digest, cache_dir=cache_dir,
                        subfolder="mnist", download=download, timeout=timeout, log=log)
            for name, digest in sha256.items()}


def load_mnist(cache_dir=None, download=True, mirrors=MNIST_MIRRORS, sha256=None,
               timeout=30.0, log=print):
    """Full MNIST with its official split.

    Raises a one-line :class:`~synapse.errors.DataError` (``DataNotFoundError``,
    ``DownloadError``, ``ChecksumError``, ``IDXError``) naming the file when the files can be
    neither found nor fetched, or are not MNIST.
    """
    paths = mnist_files(cache_dir, download, mirrors, sha256, timeout, log)
    x_train, y_train = read_idx_pair(paths["train-images-idx3-ubyte.gz"],
                                     paths["train-labels-idx1-ubyte.gz"], n_classes=10)
    x_test, y_test = read_idx_pair(paths["t10k-images-idx3-ubyte.gz"],
                                   paths["t10k-labels-idx1-ubyte.gz"], n_classes=10)
    where = subdir(cache_dir, "mnist")
    source = (f"MNIST (LeCun et al.), IDX files checksummed (SHA-256) in {where}: "
              f"official split {len(y_train):,} train / {len(y_test):,} test")
    return Dataset("mnist", source, x_train, y_train, x_test, y_test, (1, 28, 28), 10)
