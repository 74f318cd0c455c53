"""A run, typed: ``Run(seed, method, c)``, its name and label, and the ONE map from a run to the
engine's :class:`~synapse.methods.base.Method`.

A run's identity is the exact triple: its folder name and its label write c in full
(:func:`~.settings.show_number`), so c = 1 and c = 1.0000001 are two runs with two names, never
one. The experiments' methods are the engine's (``si``, ``finetune``, ``ewc``, ...) plus two of
transfer, declared here as data (:data:`RECIPES`): ``feature-extraction`` fine-tunes the
pretrained network's readout only, ``scratch`` fine-tunes a fresh network.
"""
from dataclasses import dataclass
from typing import Optional

from synapse.methods import SI, make_method

from .settings import show_number


@dataclass(frozen=True)
class Recipe:
    """How a method of an experiment trains: the engine's method, from the pretrained network
    or a fresh one, every weight or only the readout."""

    engine: str
    pretrained: bool = True
    readout_only: bool = False


RECIPES = {"feature-extraction": Recipe("finetune", readout_only=True),
           "scratch": Recipe("finetune", pretrained=False)}


def recipe(method):
    """The :class:`Recipe` of ``method`` (an engine method trains as itself)."""
    return RECIPES.get(method, Recipe(method))


def has_strength(method):
    """Whether ``method`` takes a strength c (SI and the quadratic baselines)."""
    return recipe(method).engine != "finetune"


def default_strength(method):
    """The strength a method runs with when none is given (recorded, never implicit): SI runs
    the c grid, fine-tuning has none, a baseline its engine default."""
    if method == "si" or not has_strength(method):
        return None
    return make_method(method).c


def make_si(config, c, integrator=None):
    """THE place SI is built from settings: ``SI(c, config.xi, config.integrator)``."""
    return SI(c=c, xi=config.xi, integrator=integrator or config.integrator)


def method_for(config, run):
    """The engine's Method for ``run``: SI(c, xi), fine-tuning, or a baseline at strength c."""
    engine = recipe(run.method).engine
    if engine == "si":
        return make_si(config, run.c)
    if engine == "finetune":
        return make_method("finetune")
    return make_method(engine, c=run.c)


NAMES = {"finetune": "fine-tuning", "ewc": "EWC", "online-ewc": "online EWC", "l2": "L2",
         "mas": "MAS", "feature-extraction": "feature extraction", "scratch": "from scratch"}


@dataclass(frozen=True)
class Run:
    """One run: a seed, a method and its strength c (None where it has none). ``method`` may
    also name a job that runs several methods itself (transfer's ``transfer``)."""

    seed: int
    method: str
    c: Optional[float] = None

    @property
    def tag(self):
        """``si-c1`` / ``ewc-c500`` / ``finetune``: the method and c, in full."""
        return self.method + ("" if self.c is None else f"-c{show_number(self.c)}")

    @property
    def name(self):
        """The run's folder: ``si-c1-seed0``."""
        return f"{self.tag}-seed{self.seed}"

    @property
    def label(self):
        """Legend label: the paper's ``c=0 (fine-tuning)`` / ``c=1 (SI)`` for SI; a baseline
        with its strength."""
        c = None if self.c is None else show_number(self.c)
        if self.method == "si":
            return f"c={c} (fine-tuning)" if self.c == 0 else f"c={c} (SI)"
        name = NAMES.get(self.method, self.method)
        return name if c is None else f"{name} (c={c})"

    def to_json(self):
        return {"seed": self.seed, "method": self.method, "c": self.c}
