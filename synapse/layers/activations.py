"""Parameter-free layers: ReLU, Flatten, Dropout."""
import numpy as np

from .base import Layer


class ReLU(Layer):
    """y = max(x, 0);  g_x = g_y [x > 0]."""

    kind = "relu"

    def forward(self, x, train=True):
        xp = self.xp_of(x)
        self.active = x > 0                                       # the derivative, kept
        return xp.maximum(x, 0, out=self.buffer("y", x.shape, x))

    def backward(self, gy):
        xp = self.xp_of(gy)
        return xp.multiply(gy, self.active, out=self.buffer("gx", gy.shape, gy))


class Tanh(Layer):
    """y = tanh(x);  g_x = g_y (1 - y^2). Smooth, for tests that need a C-infinity loss."""

    kind = "tanh"

    def forward(self, x, train=True):
        self.y = self.xp_of(x).tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W); backward restores the shape."""

    kind = "flatten"

    def forward(self, x, train=True):
        if x.ndim < 2:
            raise ValueError(f"{self}: expected at least a 2-d input, got shape {tuple(x.shape)}")
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, gy):
        return gy.reshape(self.shape)


class Dropout(Layer):
    """Inverted dropout: in training y = x m / (1 - p) with m ~ Bernoulli(1 - p); identity in eval.

    The mask comes from the model's seeded generator (``self.rng``), so runs repeat exactly.
    """

    kind = "dropout"

    def __init__(self, p=0.5):
        p = float(p)
        if not 0.0 <= p < 1.0 or np.isnan(p):
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.rng = None

    def forward(self, x, train=True):
        self.train = train and self.p > 0
        if not self.train:
            return x
        if self.rng is None:
            raise RuntimeError(f"{self}: no random generator; add the layer to a Sequential model")
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p
        self.scale = keep * x.dtype.type(1.0 / (1.0 - self.p))    # m / (1 - p)
        return x * self.scale

    def backward(self, gy):
        return gy * self.scale if self.train else gy

    def describe(self):
        return f"p={self.p}"
