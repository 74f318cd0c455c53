"""MNIST-bg: digits over natural-image patches (Larochelle et al. 2007, "mnist-back-image").

Recipe (FACTS.md): each digit is placed over a random patch cut from a natural
black-and-white photo; patches with low pixel variance are rejected. Official
split: 10,000 train + 2,000 validation, 50,000 test. We follow it with the
photos that install offline, scikit-learn's two sample photos, converted to
grayscale. Two choices are ours, because the recipe as we have it does not fix
them: a patch is rejected when its pixel standard deviation is below
``MIN_PATCH_STD`` (0.05 on [0, 1]), and the composite keeps, per pixel, the
brighter of digit and background: ``x = max(digit, patch)``, so the white
strokes always show. If the official ``mnist_background_images_*.amat`` files
are in the cache folder they are read instead.
"""
import io
from pathlib import Path

import numpy as np

from ..fileio import atomic_write_bytes
from .cache import subdir
from .dataset import Dataset
from .splits import train_val_split

N_TRAIN, N_VAL, N_TEST = 10_000, 2_000, 50_000
MIN_PATCH_STD = 0.05
RECIPE_VERSION = 1
OFFICIAL_TRAIN = "mnist_background_images_train.amat"
OFFICIAL_TEST = "mnist_background_images_test.amat"
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 grayscale


def sample_photos():
    """scikit-learn's sample photos (china.jpg, flower.jpg), grayscale float32 in [0, 1]."""
    from sklearn.datasets import load_sample_images

    return [(img.astype(np.float32) @ _LUMA) / np.float32(255) for img in load_sample_images().images]


def sample_patches(photos, n, rng, shape=(28, 28), min_std=MIN_PATCH_STD):
    """``n`` patches ``(n, H, W)``, each from a random photo at a random place, std >= ``min_std``."""
    h, w = shape
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    kept, have = [], 0
    while have < n:
        m = 2 * (n - have) + 16  # over-draw: some candidates are rejected
        which = rng.integers(len(photos), size=m)
        u, v = rng.random(m), rng.random(m)
        patches = np.empty((m, h, w), np.float32)
        for k, photo in enumerate(photos):
            sel = np.flatnonzero(which == k)
            r = (u[sel] * (photo.shape[0] - h + 1)).astype(np.int64)
            c = (v[sel] * (photo.shape[1] - w + 1)).astype(np.int64)
            patches[sel] = photo[r[:, None, None] + rows, c[:, None, None] + cols]
        good = patches[patches.std(axis=(1, 2)) >= min_std]
        kept.append(good[: n - have])
        have += len(kept[-1])
    return np.concatenate(kept)


def composite(x, patches):
    """Digit over background: per pixel the brighter of the two. x (N, D), patches (N, H, W)."""
    return np.maximum(x, patches.reshape(len(x), -1))


def build_mnist_bg(base, seed=0, n_train=N_TRAIN, n_val=N_VAL, n_test=N_TEST,
                   min_std=MIN_PATCH_STD, photos=None):
    """MNIST-bg from the digits of ``base`` (a Dataset), deterministic in ``seed``.

    Train and validation come from ``base``'s training split only (scaled down
    in the official 10,000 : 2,000 ratio when ``base`` is smaller), test from
    its test split only.
    """
    photos = sample_photos() if photos is None else photos
    rng = np.random.default_rng(seed)
    pool = len(base.y_train)
    if pool < n_train + n_val:
        n_val = int(round(pool * n_val / (n_train + n_val)))
        n_train = pool - n_val
    pick = rng.permutation(pool)[: n_train + n_val]
    x_tr, y_tr, x_val, y_val = train_val_split(base.x_train[pick], base.y_train[pick],
                                               n_val / (n_train + n_val), seed)
    x_te, y_te = base.x_test[:n_test], base.y_test[:n_test]
    shape = base.image_shape[1:]
    x_tr, x_val, x_te = (composite(x, sample_patches(photos, len(x), rng, shape, min_std))
                         for x in (x_tr, x_val, x_te))
    source = (f"MNIST-bg built by synapse (Larochelle et al. 2007 recipe, x = max(digit, patch); "
              f"backgrounds: random {shape[0]}x{shape[1]} patches of scikit-learn's {len(photos)} "
              f"sample photos in grayscale, patches with std < {min_std} rejected; the original "
              f"used 20 photos) over digits from [{base.source}]: {len(y_tr):,} train / "
              f"{len(y_val):,} val / {len(y_te):,} test, seed {seed}")
    return Dataset("mnist-bg", source, x_tr, y_tr, x_te, y_te, base.image_shape, base.n_classes,
                   x_val, y_val)


def _save(path, ds):
    buf = io.BytesIO()
    np.savez(buf, source=np.str_(ds.source), image_shape=np.asarray(ds.image_shape),
             n_classes=ds.n_classes, x_train=ds.x_train, y_train=ds.y_train, x_val=ds.x_val,
             y_val=ds.y_val, x_test=ds.x_test, y_test=ds.y_test)
    atomic_write_bytes(path, buf.getvalue())


def _load(path):
    with np.load(path, allow_pickle=False) as z:
        return Dataset("mnist-bg", str(z["source"]), z["x_train"], z["y_train"], z["x_test"],
                       z["y_test"], tuple(int(s) for s in z["image_shape"]), int(z["n_classes"]),
                       z["x_val"], z["y_val"])


def _read_amat(path):
    """Rows of 784 pixels in [0, 1] then the label, space-separated (LISA's .amat)."""
    with open(path) as f:
        table = np.array(f.read().split(), dtype=np.float32).reshape(-1, 785)
    return table[:, :-1], table[:, -1].astype(np.int64)


def load_official_mnist_bg(folder):
    """The official files: last 2,000 training rows are the validation set (as LISA used them).

    Pixels are kept in the order the files store them.
    """
    folder = Path(folder)
    x, y = _read_amat(folder / OFFICIAL_TRAIN)
    x_te, y_te = _read_amat(folder / OFFICIAL_TEST)
    n_val = min(N_VAL, len(y) // 6)
    source = (f"MNIST-bg official files (Larochelle et al. 2007, mnist_background_images) in "
              f"{folder}: {len(y) - n_val:,} train / {n_val:,} val / {len(y_te):,} test")
    return Dataset("mnist-bg", source, x[:-n_val], y[:-n_val], x_te, y_te, (1, 28, 28), 10,
                   x[-n_val:], y[-n_val:])


def load_mnist_bg(base_loader, cache_dir=None, seed=0, log=print):
    """Official MNIST-bg if its files are in ``<data_dir>/mnist-bg/``, else ours, cached as .npz.

    ``base_loader()`` returns the MNIST Dataset to draw digits from; its name is
    part of the cache key, so a build from the 5k subset is never mistaken for
    one from full MNIST.
    """
    folder = subdir(cache_dir, "mnist-bg")
    if (folder / OFFICIAL_TRAIN).exists() and (folder / OFFICIAL_TEST).exists():
        cached = folder / f"official_v{RECIPE_VERSION}.npz"
        if not cached.exists():
            log(f"[synapse.data] reading the official MNIST-bg files in {folder} (once)")
            _save(cached, load_official_mnist_bg(folder))
        return _load(cached)
    base = base_loader()
    cached = folder / f"mnist-bg_from-{base.name}_seed{seed}_v{RECIPE_VERSION}.npz"
    if cached.exists():
        return _load(cached)
    log(f"[synapse.data] building MNIST-bg from {base.name} (seed {seed}) -> {cached}")
    ds = build_mnist_bg(base, seed)
    _save(cached, ds)
    return ds
