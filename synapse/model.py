"""Sequential model over a flat parameter vector, with save/load to .npz (no pickle)."""
import numpy as np

from .checkpoint import export_state, import_state, write_arrays
from .checks import check_count, check_finite, check_memory
from .errors import ConfigError, DataError, UserError
from .fileio import load_npz
from .backend import asnumpy, check_dtype, get_array_module, resolve_device, to_device, xp_for
from .init import get_initialiser
from .losses import predict_labels, softmax_cross_entropy
from .params import ParamStore


class Sequential:
    """Layers applied in order; parameters live in one ``ParamStore`` (``model.params``).

    Parameter names are ``<kind><index>.<name>``, e.g. ``dense0.W``, ``conv1.b``.
    Initial weights come from ``numpy.random.default_rng(seed)`` on the host, so a seed gives
    the same model on every backend. ``dtype`` is float32 for training, float64 for checks.
    """

    def __init__(self, layers, seed=0, device=None, dtype=np.float32, input_shape=None):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Sequential: needs at least one layer")
        self.dtype = check_dtype(dtype)
        self.seed = seed
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.training = True
        counts, specs, inits, self.owners = {}, [], {}, []
        for layer in self.layers:
            i = counts[layer.kind] = counts.get(layer.kind, -1) + 1
            layer.name = f"{layer.kind}{i}"
            names = []
            for pname, shape, init in layer.param_specs():
                full = f"{layer.name}.{pname}"
                specs.append((full, shape))
                inits[full] = get_initialiser(init, layer.name)
                names.append(pname)
            self.owners.append(names)
        self.params = ParamStore(specs, np, self.dtype)
        rng = np.random.default_rng(seed)
        for name in self.params:
            self.params[name][...] = inits[name](self.params.shapes[name], rng)
        self.layers[0].needs_gx = False
        self.frozen = None
        self.to(device)                    # the one place a model resolves its device

    # -- parameters -------------------------------------------------------------------
    @property
    def xp(self):
        return self.params.xp

    def _bind(self):
        for layer, names in zip(self.layers, self.owners):
            prefix = layer.name + "."
            layer.bind({n: self.params.values[prefix + n] for n in names},
                       {n: self.params.grads[prefix + n] for n in names})
            if hasattr(layer, "rng"):
                layer.rng = self._layer_rng

    def to(self, device):
        """Move the model (parameters, gradients, random generator) to 'cpu' or 'cuda' (None:
        $SYNAPSE_DEVICE, else 'cpu'); below here the device is a resolved name."""
        self.device = resolve_device(device)
        self.params.to(self.device)
        self.reseed(self.seed)
        if self.frozen is not None:
            self.frozen = to_device(self.frozen, self.device)
        self._bind()
        return self

    def reseed(self, *seed):
        """Re-seed the layers' generator (dropout) from ints, e.g. ``reseed(seed, task)``."""
        state = np.random.SeedSequence([int(s) for s in seed] + [1]).generate_state(1)[0]
        self._layer_rng = xp_for(self.device).random.default_rng(int(state))
        self._bind()

    def freeze(self, names=None, except_names=None):
        """Freeze parameters: their gradient is zeroed after every backward pass.

        ``freeze(except_names=model.readout_names())`` keeps only the readout trainable
        (feature extraction); ``freeze(["dense0.W"])`` freezes one parameter; ``freeze([])``
        unfreezes everything. Exactly one of ``names`` and ``except_names`` is given: a bare
        ``freeze()`` would freeze nothing, so it is refused, as are unknown names.
        """
        if (names is None) == (except_names is None):
            raise UserError("freeze: give the parameters to freeze, freeze(names=[...]), or those "
                            "to keep trainable, freeze(except_names=[...]) (freeze([]) unfreezes "
                            "everything)")
        if except_names is not None:
            kept = self._param_names("except_names", except_names)
            names = [n for n in self.params.names if n not in set(kept)]
        names = self._param_names("names", names)
        self.frozen = None if not names else 1 - self.params.mask(names)
        return self

    def _param_names(self, key, names):
        """``names`` as a list of this model's parameter names; one line on anything else."""
        if callable(names):
            raise UserError(f"freeze: {key} is a method ({getattr(names, '__name__', names)}); "
                            f"call it for its list of names, e.g. model.readout_names()")
        if isinstance(names, str) or not isinstance(names, (list, tuple, set, frozenset)):
            raise UserError(f"freeze: {key} must be a list of parameter names, got {names!r}")
        unknown = [n for n in names if n not in self.params.names]
        if unknown:
            raise UserError(f"freeze: unknown parameter names {unknown} in {key}; the model has "
                            f"{self.params.names}")
        return list(names)

    @property
    def n_inputs(self):
        """Values per example the model reads (None where no layer says)."""
        if self.input_shape is not None:
            return int(np.prod(self.input_shape))
        return getattr(self.layers[0], "in_features", None)

    @property
    def n_outputs(self):
        """Output units (logits) of the last layer that declares them (None if none does)."""
        for layer in reversed(self.layers):
            if hasattr(layer, "out_features"):
                return layer.out_features
        return None

    def readout_names(self):
        """Names of the last parameterised layer's parameters (the readout)."""
        for layer, names in zip(reversed(self.layers), reversed(self.owners)):
            if names:
                return [f"{layer.name}.{n}" for n in names]
        return []

    # -- forward / backward -----------------------------------------------------------
    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def _prepare_input(self, x, check=True):
        xp = self.xp
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise DataError(f"model input must be an array, got {type(x).__name__}")
        if x.dtype.kind != "f":
            raise DataError(f"model input must be a float array, got dtype {x.dtype}")
        if get_array_module(x) is not xp or x.dtype != self.dtype:
            x = to_device(x, self.device, self.dtype)
        if check:
            check_finite(x, "model input")
        if self.input_shape is not None and x.ndim == 2 and len(self.input_shape) > 1:
            x = x.reshape(x.shape[0], *self.input_shape)   # flat images for a CNN
        return x

    def forward(self, x, train=None, check=True):
        """Logits for x. ``check`` rejects NaN/Inf inputs (the trainer checks a task once
        and then passes False, sparing a pass over every batch)."""
        train = self.training if train is None else train
        x = self._prepare_input(x, check)
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, gy):
        for layer in reversed(self.layers):
            gy = layer.backward(gy)
        if self.frozen is not None:
            self.params.grad *= self.frozen
        return gy

    def loss_and_grad(self, x, y, active=None, check=True):
        """Run forward and backward; return the mean loss (0-d array).

        ``model.params.grad`` then holds dL/dtheta of the task loss (each layer's backward
        writes its parameters' gradients).
        """
        logits = self.forward(x, train=self.training, check=check)
        if get_array_module(y) is not self.xp:
            y = to_device(y, self.device)
        loss, g = softmax_cross_entropy(logits, y, active, check=check)
        self.backward(g)
        return loss

    def predict(self, x, active=None, batch_size=2048):
        """Labels (NumPy) predicted in eval mode, arg-max over the active units."""
        check_finite(x, "model input")
        out = []
        for i in range(0, len(x), batch_size):
            logits = self.forward(x[i:i + batch_size], train=False, check=False)
            out.append(asnumpy(predict_labels(logits, active)))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def accuracy(self, x, y, active=None, batch_size=2048):
        """Fraction of ``x`` whose predicted label (over the ``active`` units) equals ``y``."""
        if len(x) != len(y):
            raise DataError(f"accuracy: {len(x)} inputs but {len(y)} labels")
        if len(y) == 0:
            raise DataError("accuracy: no examples (empty arrays): accuracy is undefined")
        return float((self.predict(x, active, batch_size) == asnumpy(y)).mean())

    # -- persistence --------------------------------------------------------------------
    def state_dict(self):
        """Named parameters as NumPy arrays."""
        return export_state({name: self.params[name] for name in self.params})

    def load_state_dict(self, state):
        arrays = import_state("the model", state, self.params.shapes, self.xp, self.dtype)
        for name, value in arrays.items():
            self.params[name][...] = value
        return self

    def save(self, path, extra=None):
        """Write the parameters (and ``extra`` arrays, e.g. SI state) to .npz, atomically;
        never NaN/Inf (``load`` refuses them)."""
        arrays = {f"param/{k}": v for k, v in self.state_dict().items()}
        arrays.update({f"extra/{k}": v for k, v in export_state(extra or {}).items()})
        write_arrays(path, arrays, DataError, refusal=f"not saving {path}")

    def load(self, path):
        """Load parameters saved by ``save``; returns the ``extra`` arrays as a dict."""
        arrays = load_npz(path, "model file")
        state = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
        extra = {k[6:]: v for k, v in arrays.items() if k.startswith("extra/")}
        self.load_state_dict(state)
        return extra

    def __repr__(self):
        rows = "\n".join(f"  {layer!r}" for layer in self.layers)
        return (f"Sequential({self.params.size:,} parameters, {self.device}, "
                f"{self.dtype.name})\n{rows}")


def mlp_sizes(sizes):
    """``sizes`` (input, hidden..., output widths) as a list of ints >= 1; a one-line
    ConfigError names the first that is not one (784.5 is refused, never truncated)."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (list, tuple, np.ndarray)):
        raise ConfigError("mlp sizes", f"expected a list of layer widths such as [784, 256, 10], "
                                       f"got {sizes!r}")
    if len(sizes) < 2:
        raise ConfigError("mlp sizes", f"needs at least the input and output widths, e.g. "
                                       f"[784, 10], got {list(sizes)}")
    return [check_count(f"mlp sizes[{i}]", s) for i, s in enumerate(sizes)]


def mlp_memory(sizes, dtype=np.float32, copies=2, batch=0):
    """Bytes of memory an ``mlp(sizes)`` takes: ``copies`` flat vectors of its P parameters
    (2 to build it: theta and its gradient) plus the float64 draw of its largest weight matrix
    at initialisation. Training keeps more flat vectors: Adam adds 3 (m, v, the change), SGD
    2 (buf, the change), SI 4 (omega, Omega, theta_ref, the unfused path's penalty gradient;
    5 with the trapezoid): 9 in a run of SI with Adam. ``copies=12`` (the experiments'
    ``RUN_COPIES``, sizing a run before it starts, as ``--hidden`` needs) still counts the two
    scratch vectors the optimizers and SI each held before their updates became single passes:
    3 vectors over, kept so that the memory checks refuse what they refused when measured.
    ``batch``: also the activations of that many examples at once (a unit's pre-activation
    and activation kept by the forward pass, a gradient of each in the backward pass: 4 per
    unit; within ~10% of the traced peak of a split-MNIST run with a 20,000-unit layer)."""
    sizes = mlp_sizes(sizes)
    pairs = list(zip(sizes[:-1], sizes[1:]))
    n_params = sum(a * b + b for a, b in pairs)      # W (a, b) and b (b,) per layer
    values = copies * n_params + 4 * batch * sum(sizes)
    return values * check_dtype(dtype).itemsize + 8 * max(a * b for a, b in pairs)


def _cnn_geometry(input_shape):
    """(h1, w1, h2, w2): the feature maps after the first and second conv-pool stage of
    :func:`cnn` (a 'same' conv, a 'valid' 3x3 conv, a 2x2 pool, each stage)."""
    c, h, w = input_shape
    h1, w1 = (h - 2) // 2, (w - 2) // 2
    h2, w2 = (h1 - 2) // 2, (w1 - 2) // 2
    if h2 < 1 or w2 < 1:
        raise ConfigError("input_shape", f"cnn: input {tuple(input_shape)} is too small for two "
                                         f"conv-pool stages")
    return h1, w1, h2, w2


def cnn_memory(input_shape=(3, 32, 32), n_classes=10, widths=(32, 32, 64, 64), hidden=512,
               dtype=np.float32, copies=2, batch=0):
    """Bytes of memory a :func:`cnn` takes, estimated as :func:`mlp_memory` does: ``copies``
    flat vectors of its parameters and, for ``batch`` examples at once, 4 values per unit of
    every layer's output plus the 3x3 patches (im2col) of the widest conv input."""
    c, h, w = input_shape
    a, b, d, e = widths
    h1, w1, h2, w2 = _cnn_geometry(input_shape)
    convs = ((c, a), (a, b), (b, d), (d, e))
    n_params = sum(9 * i * o + o for i, o in convs) + e * h2 * w2 * hidden + hidden \
        + hidden * n_classes + n_classes
    units = (a + b) * h * w + (d + e) * h1 * w1 + hidden + n_classes
    patches = 9 * max(c * h * w, a * h * w, b * h1 * w1, d * h1 * w1)
    return (copies * n_params + batch * (4 * units + patches)) * check_dtype(dtype).itemsize


def mlp(sizes, seed=0, device=None, dtype=np.float32, zero_readout=True, init="glorot",
        activation="relu"):
    """Dense-ReLU stack, e.g. ``mlp([784, 256, 256, 10])`` (the split-MNIST network).

    ``zero_readout`` starts the output layer at zero, as the authors' code does;
    ``activation`` is 'relu' or 'tanh'. Widths that are not whole numbers >= 1, and a network
    larger than the memory available (``mlp_memory``), are refused before anything is
    allocated, with one line.
    """
    from .layers import Dense, ReLU, Tanh
    acts = {"relu": ReLU, "tanh": Tanh}
    if activation not in acts:
        raise ConfigError("activation", f"mlp: unknown activation {activation!r}; expected one "
                                        f"of {sorted(acts)}")
    sizes = mlp_sizes(sizes)
    device = resolve_device(device)
    need = mlp_memory(sizes, dtype)
    check_memory(f"mlp({sizes})", need)                   # built on the host first
    if device == "cuda":
        check_memory(f"mlp({sizes})", need, device)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        layers.append(Dense(a, b, init="zeros" if last and zero_readout else init))
        if not last:
            layers.append(acts[activation]())
    return Sequential(layers, seed=seed, device=device, dtype=dtype)


def cnn(input_shape=(3, 32, 32), n_classes=10, seed=0, device=None, dtype=np.float32,
        widths=(32, 32, 64, 64), hidden=512, dropout=(0.25, 0.5), zero_readout=True):
    """The authors' CIFAR network: conv 32, 32, pool, conv 64, 64, pool, dropout .25,
    dense 512, dropout .5, readout (the paper's split CIFAR-10/100 network; the authors'
    repository ganguli-lab/pathint, fig_transfer_cifar/train.py)."""
    from .layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
    c, h, w = input_shape
    a, b, d, e = widths
    layers = [Conv2D(c, a, 3, padding="same"), ReLU(), Conv2D(a, b, 3), ReLU(), MaxPool2D(2),
              Conv2D(b, d, 3, padding="same"), ReLU(), Conv2D(d, e, 3), ReLU(), MaxPool2D(2),
              Dropout(dropout[0]), Flatten()]
    h2, w2 = _cnn_geometry(input_shape)[2:]
    layers += [Dense(e * h2 * w2, hidden), ReLU(), Dropout(dropout[1]),
               Dense(hidden, n_classes, init="zeros" if zero_readout else "glorot")]
    return Sequential(layers, seed=seed, device=device, dtype=dtype, input_shape=input_shape)
