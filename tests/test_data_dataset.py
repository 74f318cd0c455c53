"""Dataset checks itself on construction: one DataError line naming the array, or clean data."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synapse.data import Dataset
from synapse.errors import DataError

SHAPE = (1, 3, 4)


def _arrays(n_train=20, n_test=8, d=12, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n_train, d), dtype=np.float32), np.arange(n_train) % 10,
            rng.random((n_test, d), dtype=np.float32), np.arange(n_test) % 10)


def _make(x_train=None, y_train=None, x_test=None, y_test=None, shape=SHAPE, n_classes=10, **kw):
    base = _arrays()
    given_ = (x_train, y_train, x_test, y_test)
    args = [b if g is None else g for b, g in zip(base, given_)]
    return Dataset("toy", "test arrays", *args, shape, n_classes, **kw)


def _refused(words, **kw):
    with pytest.raises(DataError) as info:
        _make(**kw)
    msg = str(info.value)
    assert "\n" not in msg and words in msg, msg
    return msg


def test_clean_data_passes_unchanged():
    x_tr, y_tr, x_te, y_te = _arrays()
    ds = Dataset("toy", "test arrays", x_tr, y_tr, x_te, y_te, SHAPE, 10)
    assert ds.x_train is x_tr and ds.source == "test arrays"  # float32 in [0, 1]: no copy, no note
    assert ds.y_train.dtype == np.int64 and ds.image_shape == SHAPE


def test_uint8_is_scaled_and_said():
    x8 = np.random.default_rng(0).integers(0, 256, (20, 12), dtype=np.uint8)
    ds = _make(x_train=x8)
    assert ds.x_train.dtype == np.float32 and np.array_equal(ds.x_train * 255, x8.astype(np.float32))
    assert "x_train given as uint8 0..255, scaled to float32 [0, 1] by 1/255" in ds.source
    assert "x_test" not in ds.source and ds.info()["source"] == ds.source


def test_float64_becomes_float32():
    x64 = np.random.default_rng(0).random((20, 12))
    ds = _make(x_train=x64)
    assert ds.x_train.dtype == np.float32 and np.allclose(ds.x_train, x64)


@pytest.mark.parametrize("kw, words", [
    (dict(shape=(1, 0, 0)), "toy: image_shape (1, 0, 0) holds no pixels"),
    (dict(x_train=np.zeros((20, 0), np.float32), shape=(1, 0, 0)), "holds no pixels"),
    (dict(x_test=np.zeros((8, 16), np.float32)),
     "toy.x_test: 16 pixels per image, but toy.x_train and image_shape (1, 3, 4) have 12"),
    (dict(x_train=np.zeros((20, 16), np.float32), x_test=np.zeros((8, 16), np.float32)),
     "toy.x_train: 16 pixels per image, but image_shape (1, 3, 4) have 12"),
    (dict(x_train=np.zeros((20, 3, 4), np.float32)), "toy.x_train: shape (20, 3, 4), expected"),
    (dict(x_train=np.zeros((0, 12), np.float32), y_train=np.zeros(0, int)),
     "toy.x_train: shape (0, 12) holds no examples"),
    (dict(x_test=np.zeros((0, 12), np.float32), y_test=np.zeros(0, int)), "holds no examples"),
    (dict(x_train=np.full((20, 12), np.nan, np.float32)), "toy.x_train: holds NaN or infinite"),
    (dict(x_test=np.full((8, 12), np.inf, np.float32)), "toy.x_test: holds NaN or infinite"),
    (dict(x_train=np.full((20, 12), 255.0, np.float32)),
     "toy.x_train: pixel values span [255, 255], outside [0, 1]"),
    (dict(x_train=np.zeros((20, 12), np.int64)), "toy.x_train: pixels have dtype int64"),
    (dict(x_train=np.full((20, 12), "a")), "toy.x_train: pixels have dtype <U1"),
    (dict(x_train=np.zeros((20, 12), object)), "toy.x_train: pixels have dtype object"),
    (dict(y_train=np.zeros(20)), "toy.y_train: labels have dtype float64"),
    (dict(y_train=np.zeros(19, int)), "toy.y_train: shape (19,), expected (20,)"),
    (dict(y_test=np.zeros((8, 1), int)), "toy.y_test: shape (8, 1), expected (8,)"),
    (dict(y_train=np.r_[np.arange(19) % 10, -1]),
     "toy.y_train: 1 of 20 labels are outside the 10 classes 0..9 (values -1)"),
    (dict(n_classes=0), "n_classes must be a positive integer"),
    (dict(n_classes=2.5), "n_classes must be a positive integer"),
    (dict(x_val=np.zeros((3, 12), np.float32)), "x_val and y_val come together"),
    (dict(x_val=np.zeros((3, 12), np.float32), y_val=np.array([0, 1, 12])),
     "toy.y_val: 1 of 3 labels are outside the 10 classes 0..9 (values 12)"),
], ids=lambda v: None if isinstance(v, dict) else v[:40])
def test_refused_with_one_line_naming_the_array(kw, words):
    _refused(words, **kw)


@settings(max_examples=60, deadline=None)
@given(n_classes=st.integers(1, 12), n=st.integers(1, 50), data=st.data())
def test_labels_outside_the_classes_are_always_caught(n_classes, n, data):
    y = np.array(data.draw(st.lists(st.integers(-3, n_classes + 3), min_size=n, max_size=n)))
    bad = int(((y < 0) | (y >= n_classes)).sum())
    x = np.zeros((n, 12), np.float32)
    if bad == 0:
        ds = _make(x_train=x, y_train=y, y_test=np.zeros(8, int), n_classes=n_classes)
        assert np.array_equal(ds.y_train, y)
    else:
        _refused(f"{bad} of {n} labels are outside the {n_classes} classes",
                 x_train=x, y_train=y, y_test=np.zeros(8, int), n_classes=n_classes)
