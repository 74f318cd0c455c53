"""Datasets and continual-learning tasks: real data, checksummed downloads, offline fallbacks.

``load_dataset(name)`` returns a :class:`Dataset`; ``split_tasks``,
``permuted_tasks`` and ``few_shot`` turn it into task sequences; ``SCENARIOS`` are the
task-, domain- and class-incremental ways to test them. Files live in
``data_dir()``: the ``cache_dir`` argument, else $SYNAPSE_DATA, else
~/.cache/synapse. Every problem with data is one ``synapse.errors.DataError`` line
naming the file, folder or array.
"""
from .cache import ENV_DATA_DIR, data_dir
from .cifar import cifar10_available, cifar10_instructions, load_cifar10
from .dataset import Dataset
from .scenarios import SCENARIOS, Scenario, eval_units
from .task import InputScaleWarning, Task
from .download import ChecksumError, DataNotFoundError, DownloadError, fetch, file_digest
from .idx import IDXError, read_idx, read_idx_images, read_idx_labels, read_idx_pair, write_idx
from .load import DATASETS, load_auto, load_dataset
from .mnist import MNIST_MIRRORS, MNIST_SHA256, load_mnist
from .mnist_bg import (build_mnist_bg, load_mnist_bg, load_official_mnist_bg,
                       official_mnist_bg_folder, official_mnist_bg_instructions)
from .offline import load_digits, load_fashion_mnist, load_mnist_subset
from .splits import stratified_subset, train_test_split, train_val_split
from .tasks import few_shot, permutations, permuted_tasks, split_tasks

__all__ = [
    "Dataset", "Task", "InputScaleWarning", "SCENARIOS", "Scenario", "eval_units", "DATASETS",
    "load_dataset", "load_auto",
    "split_tasks", "permuted_tasks", "permutations", "few_shot", "train_val_split",
    "train_test_split", "stratified_subset",
    "load_mnist", "load_mnist_subset", "load_fashion_mnist", "load_digits",
    "load_mnist_bg", "build_mnist_bg", "load_official_mnist_bg", "official_mnist_bg_folder",
    "official_mnist_bg_instructions", "load_cifar10", "cifar10_available", "cifar10_instructions",
    "fetch", "file_digest", "ChecksumError", "DownloadError", "DataNotFoundError",
    "read_idx", "read_idx_images", "read_idx_labels", "read_idx_pair", "write_idx", "IDXError",
    "data_dir", "ENV_DATA_DIR", "MNIST_MIRRORS", "MNIST_SHA256",
]
