"""All trainable arrays of a model as views into one flat vector.

SI keeps per-parameter state (omega, Omega, theta_ref) the size of the model. Keeping the
parameters in one flat vector ``theta`` (and their gradients in ``grad``) makes that state
three more flat vectors, lets the optimizer and SI update everything in one pass, and lets a
GPU kernel cover all parameters in one launch. Layers see shaped views into the vectors.
"""
import numpy as np

from .backend import get_array_module, to_device


class ParamStore:
    """``theta`` and ``grad``, flat, plus a named, shaped view of each parameter.

    >>> store = ParamStore([("dense0.W", (3, 2)), ("dense0.b", (2,))])
    >>> store.theta.shape, store["dense0.W"].shape
    ((8,), (3, 2))
    """

    def __init__(self, specs, xp=np, dtype=np.float32):
        self.names = [name for name, _ in specs]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate parameter names in {self.names}")
        self.shapes = {name: tuple(shape) for name, shape in specs}
        self.slices = {}
        offset = 0
        for name, shape in specs:
            size = int(np.prod(shape, dtype=np.int64))
            self.slices[name] = slice(offset, offset + size)
            offset += size
        self.size = offset
        self._allocate(xp.zeros(self.size, dtype=dtype), xp.zeros(self.size, dtype=dtype))

    def _allocate(self, theta, grad):
        self.theta, self.grad = theta, grad     # (P,) each
        self.values = {n: theta[s].reshape(self.shapes[n]) for n, s in self.slices.items()}
        self.grads = {n: grad[s].reshape(self.shapes[n]) for n, s in self.slices.items()}

    @property
    def xp(self):
        return get_array_module(self.theta)

    @property
    def dtype(self):
        return self.theta.dtype

    def __getitem__(self, name):
        return self.values[name]

    def __iter__(self):
        return iter(self.names)

    def __len__(self):
        return len(self.names)

    def mask(self, names):
        """A flat 0/1 vector (dtype of theta) that is 1 on the named parameters."""
        unknown = sorted(set(names) - set(self.names))
        if unknown:
            raise KeyError(f"unknown parameter names {unknown}; the model has {self.names}")
        m = np.zeros(self.size, dtype=self.dtype)
        for name in names:
            m[self.slices[name]] = 1
        return to_device(m, "cuda" if self.xp is not np else "cpu")

    def to(self, device):
        """Move theta and grad to 'cpu' or 'cuda'; views are rebuilt, names kept."""
        self._allocate(to_device(self.theta, device), to_device(self.grad, device))
        return self
