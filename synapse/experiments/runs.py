"""A run, typed: ``Run(seed, method, c)``, its name and label, and the ONE map from a run to the
engine's :class:`~synapse.methods.base.Method`.

A run's identity is the exact triple (and its scenario, where an experiment runs several):
its folder name and its label write c in full (:func:`~.settings.show_number`), so c = 1 and
c = 1.0000001 are two runs with two names, never one. The experiments' methods are the
engine's (``si``, ``finetune``, ``ewc``, ...) plus two of transfer and one of the scenarios,
declared here as data (:data:`RECIPES`):
``feature-extraction`` fine-tunes the pretrained network's readout only, ``scratch`` fine-tunes
a fresh network, ``joint`` trains one network on every task's data at once
(:func:`synapse.train.train_joint`, the upper bound).
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
    joint: bool = False          # the tasks' data pooled, not learned in sequence


RECIPES = {"feature-extraction": Recipe("finetune", readout_only=True),
           "scratch": Recipe("finetune", pretrained=False),
           "joint": Recipe("finetune", joint=True)}


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
         "mas": "MAS", "feature-extraction": "feature extraction", "scratch": "from scratch",
         "joint": "joint"}


@dataclass(frozen=True)
class Run:
    """One run: a seed, a method and its strength c (None where it has none), and the
    scenario it runs in where an experiment spreads over scenarios (``synapse scenarios``;
    None elsewhere). ``method`` may also name a job that runs several methods itself
    (transfer's ``transfer``)."""

    seed: int
    method: str
    c: Optional[float] = None
    scenario: Optional[str] = None

    @property
    def tag(self):
        """``si-c1`` / ``ewc-c500`` / ``finetune`` / ``class-si-c5000``: the scenario (if any),
        the method and c, in full."""
        return ("" if self.scenario is None else f"{self.scenario}-") + self.method + (
            "" if self.c is None else f"-c{show_number(self.c)}")

    @property
    def name(self):
        """The run's folder: ``si-c1-seed0``."""
        return f"{self.tag}-seed{self.seed}"

    @property
    def label(self):
        """Legend label: the paper's ``c=0 (fine-tuning)`` / ``c=1 (SI)`` for SI; a baseline
        with its strength."""
        where = "" if self.scenario is None else f"{self.scenario}: "
        c = None if self.c is None else show_number(self.c)
        if self.method == "si":
            return where + (f"c={c} (fine-tuning)" if self.c == 0 else f"c={c} (SI)")
        name = NAMES.get(self.method, self.method)
        return where + (name if c is None else f"{name} (c={c})")

    def to_json(self):
        run = {"seed": self.seed, "method": self.method, "c": self.c}
        return run if self.scenario is None else dict(run, scenario=self.scenario)
