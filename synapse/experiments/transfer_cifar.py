"""Transfer CIFAR-10 classes 0-7 -> 8 vs 9 (the paper's Fig. 3, left): the authors' CNN
pretrained on eight classes learns the last two from 50 labelled examples per class; chance 0.5.

Needs the CIFAR-10 files (downloaded and md5-checked on a machine with internet);
``data="fashion-mnist"`` or ``"mnist-subset"`` runs the same protocol as a clearly labelled
STAND-IN (it is not CIFAR-10). The protocol (c chosen on a selection half, paired differences)
is in :mod:`.transfer`.
"""
import functools

import numpy as np

from synapse.model import cnn, cnn_memory

from . import common, protocol, runner, transfer
from .settings import Integer, ListOf, Setting, common_settings

# The authors' CIFAR settings (ganguli-lab/pathint): conv 32,32,(pool),64,64,(pool), dropout
# .25, dense 512, dropout .5; Adam 1e-3, batch 256, 60 epochs, xi 1e-3. The SI strength for
# transfer is chosen from the c grid on the selection half.
PAPER = {"data": "cifar10", "data_seed": 0, "widths": [32, 32, 64, 64], "hidden": [512],
         "optimizer": "adam", "lr": 1e-3, "batch_size": 256, "pretrain_epochs": 60,
         "pretrain_examples": None, "epochs": 60, "shots": 50, "xi": 1e-3, "c": [0.01, 0.1, 1.0, 10.0, 100.0], "methods": list(transfer.METHODS),
         "seeds": list(range(10)), "device": None, "integrator": "first-order"}


@functools.lru_cache(maxsize=2)
def _load(data, data_seed, pretrain_examples):
    ds = common.cached_dataset(data, data_seed, 0.1)
    classes_pre, classes_small = tuple(range(8)), (8, 9)
    pre_mask = np.isin(ds.y_train, classes_pre)
    small_tr, small_val = np.isin(ds.y_train, classes_small), np.isin(ds.y_val, classes_small)
    selection, report = transfer.held_out_halves(ds.x_val[small_val], ds.y_val[small_val],
                                                 data_seed)
    pre = transfer.pretrain_task(f"{ds.name} classes 0-7", ds.x_train[pre_mask],
                                 ds.y_train[pre_mask], classes_pre, data_seed, pretrain_examples)
    stand_in = "" if ds.name == "cifar10" else (
        f"STAND-IN for CIFAR-10 (the CIFAR-10 files are absent): {ds.name}, classes 0-7 -> 8 vs 9; ")
    note = (f"{stand_in}{ds.source}; pretraining: classes 0-7, small task: classes 8 vs 9; held "
            f"out: a validation split carved from the training split = selection "
            f"{len(selection[1]):,} + report {len(report[1]):,}")
    return transfer.TransferData(ds.name, pre, ds.x_train[small_tr], ds.y_train[small_tr], selection,
                                 report, classes_small, note, ds.image_shape, chance=0.5)


def load(config):
    return _load(config.data, config.data_seed, config.pretrain_examples)


def make_model(config, image_shape, seed):
    return cnn(tuple(image_shape), 10, seed=seed, device=config.device,
               widths=tuple(config.widths), hidden=config.hidden[0])


def memory(config, data):
    """What one job holds besides the loaded data: the CNN with its optimizer and method
    state, the pretrained one, and the activations of its largest batch."""
    shape = tuple(load(config).image_shape)
    need = cnn_memory(shape, 10, tuple(config.widths), config.hidden[0],
                      copies=transfer.RUN_COPIES,
                      batch=max(config.batch_size, common.EVAL_BATCH))
    return [("widths", f"the CNN (widths {','.join(map(str, config.widths))}, dense "
                       f"{config.hidden[0]}) with its optimizer and method state", need)]


def check(config, given):
    if len(config.hidden) != 1:
        from synapse.errors import ConfigError
        raise ConfigError("hidden", f"the CIFAR CNN has one dense layer: give one width, got "
                                    f"{list(config.hidden)}")


def title(config, runs, data):
    stand_in = "" if config.data == "cifar10" else f" ({config.data} stand-in)"
    return transfer.report(f"Transfer classes 0-7 -> 8 vs 9{stand_in}", config, runs, data)


PROTOCOL = protocol.Protocol(
    name="transfer-cifar",
    summary="Fig. 3 left: CNN pretrained on CIFAR-10 classes 0-7, then 8 vs 9 from 50 per class",
    doc=__doc__,
    settings=common_settings(transfer.METHODS, ("cifar10", "fashion-mnist", "mnist-subset"),
                             continual=False)
    + (Setting("widths", ListOf(Integer()), "the four conv layers' channels"),)
    + transfer.SETTINGS,
    profiles={"paper": PAPER,
              # a narrower CNN, 4,000 pretraining images, 2 + 20 epochs: minutes on a CPU
              "quick": dict(PAPER, widths=[16, 16, 32, 32], hidden=[128], batch_size=64,
                            pretrain_examples=4000, pretrain_epochs=2, epochs=20,
                            c=[0.1, 1.0, 10.0], seeds=list(range(5)))},
    figure="transfer_cifar",
    describe_data=functools.partial(transfer.describe_data, load),
    run_one=functools.partial(transfer.run_one, load, make_model, "8 vs 9"),
    report=title, check=check, expand=transfer.expand, grid=("seeds",), memory=memory)

run = functools.partial(runner.run, PROTOCOL)
