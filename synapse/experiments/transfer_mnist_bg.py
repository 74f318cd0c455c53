"""Transfer MNIST -> MNIST-bg (the paper's Fig. 3, right): an MLP pretrained on MNIST learns
MNIST-bg (digits over natural-photo patches) from 10 labelled examples per class; chance 0.1.

The small task's MNIST-bg digits come from a part of the MNIST training split disjoint from the
pretraining digits; its held-out data (selection and report halves) is MNIST-bg over further
training digits of that part and over test digits, so no held-out digit was seen in pretraining
or in the small task's training. If the official MNIST-bg files are in the
data folder they are used instead (and the pretraining uses the whole MNIST training split).
The protocol (c chosen on a selection half, paired differences) is in :mod:`.transfer`.

    from synapse.experiments import transfer_mnist_bg
    results = transfer_mnist_bg.run(profile="quick", seeds=10)
"""
import functools

import numpy as np

from synapse.data import train_val_split
from synapse.model import mlp

from . import common, protocol, runner, transfer
from .settings import common_settings

# The paper gives the data sizes (10 per class), n = 5 and the network kind; the optimizer and
# xi follow the authors' split-MNIST settings (ganguli-lab/pathint). The SI strength for transfer
# is not given in the paper: it is chosen from the c grid on the selection half.
PAPER = {"data": "auto", "data_seed": 0, "hidden": [256, 256], "optimizer": "adam", "lr": 1e-3,
         "batch_size": 64, "epochs": 50, "xi": 1e-3,
         "c": [0.01, 0.1, 1.0, 10.0, 100.0], "methods": list(transfer.METHODS),
         "seeds": list(range(10)), "device": None, "integrator": "first-order",
         "pretrain_epochs": 10, "pretrain_examples": None, "shots": 10}


@functools.lru_cache(maxsize=2)
def _load(data, data_seed, pretrain_examples, official):
    from synapse.data.mnist_bg import build_mnist_bg, load_official_mnist_bg
    from synapse.data import Dataset

    base = common.cached_dataset(data, data_seed)
    if official is not None:           # the official files: pretrain on all of base's digits
        bg = load_official_mnist_bg(official)
        selection, report = transfer.held_out_halves(bg.x_val, bg.y_val, data_seed)
        pre = transfer.pretrain_task(f"{base.name} (all 10 digits)", base.x_train,
                                     base.y_train, None, data_seed, pretrain_examples)
        note = (f"pretraining: {len(base.y_train):,} digits of [{base.source}]; small task: "
                f"{bg.source}; held out: its validation split = selection "
                f"{len(selection[1]):,} + report {len(report[1]):,}")
        return transfer.TransferData(f"{base.name} -> mnist-bg (official)", pre, bg.x_train,
                                     bg.y_train, selection, report, None, note,
                                     base.image_shape, chance=0.1)
    # Disjoint digits: a stratified share of the training split becomes the small task's
    # labelled pool (MNIST-bg train), and the held-out data is MNIST-bg built over the
    # validation digits of that share AND the base test digits (at most 2,000): none of these
    # digits is ever seen in pretraining or in the small task's training.
    share = min(0.5, 12_000 / len(base.y_train))
    x_pre, y_pre, x_src, y_src = train_val_split(base.x_train, base.y_train, share, data_seed)
    src = Dataset(base.name, base.source, x_src, y_src, base.x_test, base.y_test,
                  base.image_shape, base.n_classes)
    bg = build_mnist_bg(src, seed=data_seed, n_test=2_000)
    held_x = np.concatenate([bg.x_val, bg.x_test])
    held_y = np.concatenate([bg.y_val, bg.y_test])
    selection, report = transfer.held_out_halves(held_x, held_y, data_seed)
    pre = transfer.pretrain_task(f"{base.name} (all 10 digits)", x_pre, y_pre, None, data_seed,
                                 pretrain_examples)
    note = (f"pretraining: {len(y_pre):,} digits of [{base.source}]; small task: MNIST-bg from "
            f"{len(bg.y_train):,} other digits of the same training split: "
            f"{bg.source.split(' over digits from ')[0]}; held out: MNIST-bg over "
            f"{len(bg.y_val):,} further training digits and {len(bg.y_test):,} test digits = "
            f"selection {len(selection[1]):,} + report {len(report[1]):,}")
    return transfer.TransferData(f"{base.name} -> mnist-bg", pre, bg.x_train, bg.y_train,
                                 selection, report, None, note, base.image_shape, chance=0.1)


def load(config):
    """The transfer data; the official MNIST-bg files whenever they are in the data folder."""
    from synapse.data.mnist_bg import official_mnist_bg_folder
    return _load(config.data, config.data_seed, config.pretrain_examples,
                 official_mnist_bg_folder())


def make_model(config, image_shape, seed):
    return mlp([int(np.prod(image_shape)), *config.hidden, 10], seed=seed,
               device=config.device)


def memory(config, data):
    """What one job holds besides the loaded data: a network with its optimizer and method
    state, and the pretrained one."""
    width = int(np.prod(load(config).image_shape))
    return [common.network_memory(config, width, 10, copies=transfer.RUN_COPIES)]


PROTOCOL = protocol.Protocol(
    name="transfer-mnist-bg",
    summary="Fig. 3 right: pretrain on MNIST, then MNIST-bg from 10 labels per class",
    doc=__doc__,
    settings=common_settings(transfer.METHODS, ("auto", "mnist", "mnist-subset", "digits"),
                             continual=False) + transfer.SETTINGS,
    profiles={"paper": PAPER,
              # 5 pretraining epochs, 30 on the small task, c grid 0.1-10, 5 seeds: ~1 min
              "quick": dict(PAPER, pretrain_epochs=5, epochs=30, c=[0.1, 1.0, 10.0],
                            seeds=list(range(5)))},
    figure="transfer_mnist_bg",
    describe_data=functools.partial(transfer.describe_data, load),
    run_one=functools.partial(transfer.run_one, load, make_model, "MNIST-bg"),
    report=functools.partial(transfer.report, "Transfer MNIST -> MNIST-bg"),
    expand=transfer.expand, grid=("seeds",), memory=memory)

run = functools.partial(runner.run, PROTOCOL)
