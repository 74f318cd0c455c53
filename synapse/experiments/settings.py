"""Typed settings: every experiment setting is declared once, parsed once, checked once.

A :class:`Setting` has a name, a kind and a line of help. The ``synapse`` command gives each
setting its own flag (``--batch-size 64``) and also accepts ``--set batch_size=64``; the Python
API takes keyword arguments (``batch_size=64``). Text from the command line goes through
``kind.parse``, Python values through ``kind.coerce``; both end in the same typed value, so
``--set reset_optimizer=False``, ``--reset-optimizer false`` and ``reset_optimizer=False`` are the
same boolean, and ``reset_optimizer=maybe`` is refused with a line naming the setting. A value that
cannot be used is a :class:`~synapse.errors.ConfigError`; nothing is silently changed.
"""
import difflib
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from synapse.backend import DEVICES
from synapse.errors import ConfigError

TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_))


def show_number(v):
    """A float written in full: the shortest text that reads back as exactly ``v`` (``repr``),
    without a trailing '.0': 1.0 -> '1', 0.1 -> '0.1', 1234567.0 -> '1234567',
    1.0000001 -> '1.0000001'. Names, labels and records use it, so two different values never
    share a name (``{v:g}`` would write 1 and 1.0000001 both as '1')."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def did_you_mean(word, candidates):
    """' (did you mean X?)' for the candidate most like ``word`` (leading dashes and the
    difference between '_' and '-' aside), or ''."""
    def bare(w):
        return w.lstrip("-").replace("_", "-").lower()
    names = {bare(c): c for c in candidates}
    close = difflib.get_close_matches(bare(word), list(names), n=1, cutoff=0.7)
    return f" (did you mean {names[close[0]]}?)" if close else ""


def _items(text):
    """'1,2' or '[1, 2]' -> ['1', '2']; '' -> []. An empty item ('8,,8', '8,') is refused,
    never dropped: it is a typo, and the list meant may be another one."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not text.strip():
        return []
    items = [t.strip() for t in text.split(",")]
    if "" in items:
        raise ValueError(f"{text!r} has an empty item (two commas in a row, or one at an "
                         f"end); write each value once, e.g. 256,256")
    return items


class Integer:
    """An int >= ``low`` (``none_ok``: also None, written 'none')."""

    def __init__(self, low=1, none_ok=False):
        self.low, self.none_ok = low, none_ok
        self.metavar = "N" + ("|none" if none_ok else "")
        self.type = Optional[int] if none_ok else int

    def parse(self, text):
        if self.none_ok and text.strip().lower() in ("none", "null"):
            return None
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
        return self.coerce(value)                 # '0' is an integer, below the range

    def coerce(self, v):
        if v is None and self.none_ok:
            return None
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)
        if not _is_int(v):
            raise ValueError(f"must be an integer >= {self.low}, got {v!r}")
        if v < self.low:
            raise ValueError(f"must be an integer >= {self.low}, got {v}")
        return int(v)

    def show(self, v):
        return "none" if v is None else str(v)


class Number:
    """A finite float, > ``low`` (``strict``) or >= ``low``."""

    def __init__(self, low=0.0, strict=True):
        self.low, self.strict = low, strict
        self.metavar = "X"
        self.type = float

    def parse(self, text):
        try:
            return self.coerce(float(text))
        except ValueError as err:
            if "could not convert" in str(err):
                raise ValueError(f"{text!r} is not a number") from None
            raise

    def coerce(self, v):
        if not _is_number(v):
            raise ValueError(f"must be a number, got {v!r}")
        v = float(v) + 0.0                     # -0.0 is 0: one value, one name ('c=0')
        ok = math.isfinite(v) and (v > self.low if self.strict else v >= self.low)
        if not ok:
            raise ValueError(f"must be a finite number {'>' if self.strict else '>='} "
                             f"{self.low:g}, got {v:g}")
        return v

    def show(self, v):
        return show_number(v)


class Boolean:
    metavar = "true|false"
    type = bool

    def parse(self, text):
        t = text.strip().lower()
        if t in TRUE:
            return True
        if t in FALSE:
            return False
        raise ValueError(f"{text!r} is not a boolean; write true or false")

    def coerce(self, v):
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        raise ValueError(f"must be True or False, got {v!r}")

    def show(self, v):
        return "true" if v else "false"


class Choice:
    def __init__(self, *options, none_ok=False):
        self.options, self.none_ok = tuple(options), none_ok
        self.metavar = "|".join(self.options)
        self.type = Optional[str] if none_ok else str

    def parse(self, text):
        return self.coerce(text.strip())

    def coerce(self, v):
        if v is None and self.none_ok:
            return None
        if v not in self.options:
            raise ValueError(f"unknown value {v!r}{did_you_mean(str(v), self.options)}; "
                             f"choose from {', '.join(self.options)}")
        return v

    def show(self, v):
        return str(v)


class ListOf:
    """A non-empty list of ``item`` values, written '1,2' or '[1,2]' on the command line."""

    def __init__(self, item, distinct=False):
        self.item, self.distinct = item, distinct
        self.metavar = "LIST"
        self.type = Tuple[item.type, ...]

    def parse(self, text):
        items = _items(text)
        if not items:
            raise ValueError("give at least one value, e.g. 1,2")
        return self._check([self._one(self.item.parse, t) for t in items])

    def coerce(self, v):
        if not isinstance(v, (list, tuple, np.ndarray)):
            v = [v]
        return self._check([self._one(self.item.coerce, x) for x in v])

    @staticmethod
    def _one(convert, x):
        try:
            return convert(x)
        except ValueError as err:
            raise ValueError(f"{x!r}: {err}") from None

    def _check(self, values):
        if not values:
            raise ValueError("give at least one value")
        if self.distinct and len(set(values)) != len(values):
            raise ValueError(f"repeated values in {list(values)}")
        return tuple(values)

    def show(self, v):
        return ",".join(self.item.show(x) for x in v)


class Seeds(ListOf):
    """A count (5 = seeds 0..4) or a list of distinct seeds (3,7)."""

    def __init__(self):
        super().__init__(Integer(low=0), distinct=True)
        self.metavar = "N|LIST"

    def parse(self, text):
        if "," not in text and "[" not in text:
            return self.coerce(Integer(low=1).parse(text))
        return super().parse(text)

    def coerce(self, v):
        if _is_int(v):
            if v < 1:
                raise ValueError(f"a seed count must be >= 1, got {v}")
            return tuple(range(int(v)))
        return super().coerce(v)

    def show(self, v):
        return str(len(v)) if tuple(v) == tuple(range(len(v))) else super().show(v)


class MethodSpec:
    """'NAME' or 'NAME=C' with NAME one of the experiment's methods and C >= 0."""

    metavar = "NAME[=C]"
    type = str

    def __init__(self, *names):
        self.names = names

    def parse(self, text):
        return self.coerce(text.strip())

    def coerce(self, v):
        if not isinstance(v, str):
            raise ValueError(f"must be a method name, got {v!r}")
        name, sep, strength = v.partition("=")
        if name not in self.names:
            raise ValueError(f"unknown method {name!r}; choose from {', '.join(self.names)}")
        if not sep:
            return name
        value = Number(0.0, strict=False).parse(strength)
        return f"{name}={show_number(value)}"

    def show(self, v):
        return v


def split_method(spec):
    """'ewc=1000' -> ('ewc', 1000.0); 'si' -> ('si', None)."""
    name, _, strength = spec.partition("=")
    return name, (float(strength) if strength else None)


@dataclass(frozen=True)
class Setting:
    """One setting of an experiment: ``name`` (a Python identifier), its kind, one line of help."""

    name: str
    kind: object
    help: str

    def parse(self, text, where=None):
        return self._convert(self.kind.parse, text, where)

    def coerce(self, value, where=None):
        return self._convert(self.kind.coerce, value, where)

    def _convert(self, convert, value, where):
        try:
            return convert(value)
        except ValueError as err:
            raise ConfigError(where or self.name, str(err)) from None


# The settings every experiment shares; each experiment adds its own.
def common_settings(methods, datasets, continual=True):
    """The shared settings; ``continual=False`` (one task per optimizer, as in transfer) leaves
    out ``reset_optimizer``, which would have no effect there."""
    settings = (
        Setting("data", Choice(*datasets), "dataset"),
        Setting("data_seed", Integer(low=0), "seed of the train/test split (the same for every run)"),
        Setting("hidden", ListOf(Integer(low=1)), "hidden layer widths, e.g. 256,256"),
        Setting("optimizer", Choice("adam", "sgd"), "optimizer"),
        Setting("lr", Number(), "learning rate"),
        Setting("batch_size", Integer(), "minibatch size"),
        Setting("epochs", Integer(), "epochs per task"),
        Setting("reset_optimizer", Boolean(), "reset the optimizer's state between tasks"),
        Setting("xi", Number(), "SI damping xi > 0 of Eq. 4"),
        Setting("c", ListOf(Number(0.0, strict=False), distinct=True),
                "SI strengths, each >= 0; c=0 is fine-tuning; plain 'si' runs once per c"),
        Setting("methods", ListOf(MethodSpec(*methods), distinct=True),
                f"methods: {', '.join(methods)}; 'si' runs once per c, 'si=C' exactly C"
                + (", 'ewc=1000' sets a baseline's strength" if "ewc" in methods else "")),
        Setting("seeds", Seeds(), "a count (5 = seeds 0..4) or a comma list (3,7)"),
        Setting("device", Choice(*DEVICES, none_ok=True),
                "cpu (NumPy) or cuda (CuPy); default $SYNAPSE_DEVICE, else cpu"),
        Setting("integrator", Choice("first-order", "trapezoid"), "SI's path integral"),
    )
    return tuple(s for s in settings if continual or s.name != "reset_optimizer")
