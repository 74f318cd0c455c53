"""Continual-learning methods behind one interface, chosen by name."""
from .base import Method
from ..errors import ConfigError
from .si import SI
from .quadratic import EWC, L2, MAS, OnlineEWC

METHODS = {"finetune": Method, "si": SI, "l2": L2, "ewc": EWC, "online-ewc": OnlineEWC,
           "mas": MAS}


def make_method(name, **kwargs):
    """``make_method('si', c=1, xi=1e-3)``; 'finetune' takes no options."""
    if name not in METHODS:
        raise ConfigError("method", f"unknown method {name!r}; expected one of {sorted(METHODS)}")
    cls = METHODS[name]
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError("method", f"method {name!r}: {err}") from None


__all__ = ["Method", "SI", "L2", "EWC", "OnlineEWC", "MAS", "METHODS", "make_method"]
