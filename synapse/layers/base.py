"""What every layer shares: parameters it declares, buffers it reuses, input checks."""

from ..backend import get_array_module


class Layer:
    """A layer declares its parameters; ``forward(x)`` keeps what ``backward(gy)`` needs.

    ``backward(gy)`` returns ``gx`` and *writes* the gradients of the layer's parameters
    (``self.g<name>``, views into the model's flat gradient vector), so a training step never
    has to zero them first.
    """

    kind = "layer"
    needs_gx = True          # the model clears this on the first layer: no one reads its gx

    def param_specs(self):
        """[(name, shape, init)] of this layer's parameters; init is a callable or a name."""
        return []

    def bind(self, values, grads):
        """Attach views into the model's flat vectors: ``self.W``, ``self.gW``, ..."""
        self._param_names = list(values)
        for name in values:
            setattr(self, name, values[name])
            setattr(self, "g" + name, grads[name])

    def buffer(self, key, shape, like):
        """A reused output array, so the training loop does not allocate every step."""
        bufs = self.__dict__.setdefault("_buffers", {})
        xp = get_array_module(like)
        buf = bufs.get(key)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or \
                get_array_module(buf) is not xp:
            buf = bufs[key] = xp.empty(shape, dtype=like.dtype)
        return buf

    @staticmethod
    def xp_of(x):
        return get_array_module(x)

    def check_input(self, x, ndim, dims=None):
        """Raise a clear error unless x is a float array of the expected rank and sizes."""
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise TypeError(f"{self}: expected an array, got {type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"{self}: expected a float array, got dtype {x.dtype}")
        if x.ndim != ndim:
            raise ValueError(f"{self}: expected a {ndim}-d input, got shape {tuple(x.shape)}")
        for axis, size in (dims or {}).items():
            if x.shape[axis] != size:
                raise ValueError(f"{self}: expected size {size} on axis {axis}, "
                                 f"got input shape {tuple(x.shape)}")

    def __repr__(self):
        name = getattr(self, "name", None)
        prefix = f"{name} " if name else ""
        return f"{prefix}{type(self).__name__}({self.describe()})"

    def describe(self):
        return ""


def check_choice(layer, option, value, choices):
    if value not in choices:
        raise ValueError(f"{layer}: unknown {option} {value!r}; expected one of {sorted(choices)}")


__all__ = ["Layer", "check_choice"]
