"""MNIST-bg: digits over natural-image patches (Larochelle et al. 2007, "mnist-back-image").

The original is from H. Larochelle, D. Erhan, A. Courville, J. Bergstra and Y. Bengio, "An
empirical evaluation of deep architectures on problems with many factors of variation", ICML
2007: each MNIST digit is placed over a random patch cut from one of 20 natural photos (in
grayscale), patches with low pixel variance are rejected; 10,000 train + 2,000 validation,
50,000 test. Its files are ``mnist_background_images_{train,test}.amat`` in
``mnist_background_images.zip`` (``OFFICIAL_URL``, the LISA lab's page for that paper). Put both
in ``<data_dir>/mnist-bg/`` and they are used instead of a build
(:func:`official_mnist_bg_folder` says whether they are there).

Without them synapse builds MNIST-bg the same way from the natural photos that install with its
dependencies, offline, as files inside the installed packages (nothing fetched at run time):
scikit-learn's 2 sample photos and 11 of scikit-image's bundled sample images, listed in
``PHOTOS``. Only real photographs of real scenes are used; left out are text and
documents (``text``, ``page``), synthetic images and drawings (``chessboard_*``, ``color``,
``logo``, ``phantom``, ``horse``), microscopy and medical images (``cell``, ``ihc``,
``retina``, ``microaneurysms``), the mostly black astronomy image (``hubble_deep_field``), a
deliberately blurred demo (``clock_motion``), a near-duplicate stereo view
(``motorcycle_right``) and non-photo files (``lfw_subset.npy``, ``*.tif``, ``*.gif``). Colour
photos become grayscale with the ITU-R 601 luma weights. Two choices are ours, because the paper
does not fix them: a patch is rejected when its pixel standard deviation is below
``MIN_PATCH_STD`` (0.05 on [0, 1]), and the composite keeps, per pixel, the brighter of digit
and background, ``x = max(digit, patch)``, so the white strokes always show. The build is
deterministic in its seed.
"""
import functools
import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..fileio import atomic_write_bytes, open_regular
from .cache import data_dir, subdir
from .dataset import Dataset, check_labels
from .download import one_line
from .splits import train_val_split

N_TRAIN, N_VAL, N_TEST = 10_000, 2_000, 50_000
MIN_PATCH_STD = 0.05
RECIPE_VERSION = 2  # 1: scikit-learn's 2 photos only; 2: the 13 PHOTOS
OFFICIAL_URL = "http://www.iro.umontreal.ca/~lisa/icml2007data/mnist_background_images.zip"
OFFICIAL_TRAIN = "mnist_background_images_train.amat"
OFFICIAL_TEST = "mnist_background_images_test.amat"
MAX_FILE_BYTES = 1 << 30   # the official test .amat (50,000 rows of text) is far below 1 GiB
PHOTOS = (  # (package, file inside the installed package)
    ("sklearn", "datasets/images/china.jpg"), ("sklearn", "datasets/images/flower.jpg"),
    ("skimage", "data/astronaut.png"), ("skimage", "data/camera.png"),
    ("skimage", "data/chelsea.png"), ("skimage", "data/coffee.png"),
    ("skimage", "data/coins.png"), ("skimage", "data/moon.png"),
    ("skimage", "data/rocket.jpg"), ("skimage", "data/motorcycle_left.png"),
    ("skimage", "data/brick.png"), ("skimage", "data/grass.png"), ("skimage", "data/gravel.png"),
)
_PIP_NAME = {"sklearn": "scikit-learn", "skimage": "scikit-image"}
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 grayscale


def photo_path(package, name):
    """Where ``name`` lies inside the installed ``package`` (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"MNIST-bg backgrounds need the photos inside {package}, which is not "
                        f"installed: pip install {_PIP_NAME[package]}")
    return Path(spec.submodule_search_locations[0]) / name


@functools.lru_cache(maxsize=1)
def sample_photos():
    """The ``PHOTOS``, grayscale float32 ``(H, W)`` in [0, 1], read-only, in ``PHOTOS`` order."""
    from PIL import Image

    photos = []
    for package, name in PHOTOS:
        path = photo_path(package, name)
        try:
            with Image.open(path) as img:
                gray = (np.asarray(img, np.float32) if img.mode == "L"
                        else np.asarray(img.convert("RGB"), np.float32) @ _LUMA)
        except OSError as err:
            raise DataError(f"{path}: MNIST-bg background photo cannot be read "
                            f"({one_line(err)}); reinstall {package}") from err
        photo = gray / np.float32(255)
        photo.flags.writeable = False
        photos.append(photo)
    return tuple(photos)


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
    which = (f"the {len(PHOTOS)} photos of synapse.data.mnist_bg.PHOTOS (scikit-learn's 2 "
             f"sample photos and {len(PHOTOS) - 2} of scikit-image's sample images)"
             if photos is None else f"{len(photos)} given photos")
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
              f"backgrounds: random {shape[0]}x{shape[1]} patches of {which} in grayscale, "
              f"patches with std < {min_std} rejected; the original used 20 photos) over digits "
              f"from [{base.source}]: {len(y_tr):,} train / {len(y_val):,} val / "
              f"{len(y_te):,} test, seed {seed}")
    return Dataset("mnist-bg", source, x_tr, y_tr, x_te, y_te, base.image_shape, base.n_classes,
                   x_val, y_val, fallback=getattr(base, "fallback", None))


def _save(path, ds):
    buf = io.BytesIO()
    np.savez(buf, source=np.str_(ds.source), image_shape=np.asarray(ds.image_shape),
             n_classes=ds.n_classes, x_train=ds.x_train, y_train=ds.y_train, x_val=ds.x_val,
             y_val=ds.y_val, x_test=ds.x_test, y_test=ds.y_test)
    atomic_write_bytes(path, buf.getvalue())


def _load(path):
    try:
        with open_regular(path, "MNIST-bg cache", error=DataError) as f, \
                np.load(f, allow_pickle=False) as z:
            return Dataset("mnist-bg", str(z["source"]), z["x_train"], z["y_train"],
                           z["x_test"], z["y_test"], tuple(int(s) for s in z["image_shape"]),
                           int(z["n_classes"]), z["x_val"], z["y_val"])
    except DataError as err:
        raise DataError(f"{path}: {err}; delete it to build it again") from err
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: unreadable MNIST-bg cache ({one_line(err)}); delete it to "
                        f"build it again") from err


def _read_amat(path):
    """Rows of 784 pixels in [0, 1] then the label, space-separated (LISA's .amat)."""
    try:
        with open_regular(path, "MNIST-bg file", MAX_FILE_BYTES, DataError) as f:
            values = np.array(f.read().decode("ascii").split(), dtype=np.float32)
    except DataError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not an MNIST-bg .amat file ({one_line(err)})") from err
    if len(values) == 0 or len(values) % 785:
        raise DataError(f"{path}: {len(values):,} numbers, not rows of 784 pixels and a label; "
                        f"the file is truncated or not MNIST-bg")
    table = values.reshape(-1, 785)
    x, labels = table[:, :-1], table[:, -1]
    if not (np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= 1):
        raise DataError(f"{path}: pixel values outside [0, 1]; not an MNIST-bg .amat file")
    y = labels.astype(np.int64)
    if not np.array_equal(y, labels):
        raise DataError(f"{path}: the last column (labels) holds non-integers")
    check_labels(y, 10, path)
    return x, y


def official_mnist_bg_folder(cache_dir=None):
    """``<data_dir>/mnist-bg`` if both official .amat files are there, else None."""
    folder = data_dir(cache_dir) / "mnist-bg"
    return folder if all((folder / f).is_file() for f in (OFFICIAL_TRAIN, OFFICIAL_TEST)) else None


def official_mnist_bg_instructions(cache_dir=None):
    """One line: how to make the official MNIST-bg files available."""
    return (f"for the official MNIST-bg, download {OFFICIAL_URL}, unzip it and put {OFFICIAL_TRAIN} "
            f"and {OFFICIAL_TEST} in {data_dir(cache_dir) / 'mnist-bg'}")


def load_official_mnist_bg(folder):
    """The official files: last 2,000 training rows are the validation set (as LISA used them).

    Pixels are kept in the order the files store them.
    """
    folder = Path(folder)
    x, y = _read_amat(folder / OFFICIAL_TRAIN)
    x_te, y_te = _read_amat(folder / OFFICIAL_TEST)
    n_val = min(N_VAL, len(y) // 6)
    if n_val == 0:
        raise DataError(f"{folder / OFFICIAL_TRAIN}: {len(y)} rows, too few to hold out "
                        f"a validation set")
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
    official = official_mnist_bg_folder(cache_dir)
    if official is not None:
        cached = official / "official_v1.npz"
        if not cached.exists():
            log(f"[synapse.data] reading the official MNIST-bg files in {official} (once)")
            _save(cached, load_official_mnist_bg(official))
        return _load(cached)
    folder = subdir(cache_dir, "mnist-bg")
    base = base_loader()
    cached = folder / f"mnist-bg_from-{base.name}_seed{seed}_v{RECIPE_VERSION}.npz"
    if cached.exists():
        ds = _load(cached)
        ds.fallback = base.fallback
        return ds
    log(f"[synapse.data] building MNIST-bg from {base.name} (seed {seed}) -> {cached}")
    ds = build_mnist_bg(base, seed)
    _save(cached, ds)
    return ds
