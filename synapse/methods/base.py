"""The interface every continual-learning method shares, and plain fine-tuning.

The learner (synapse/learner.py) calls ``attach(model)`` once, then for each task:
``begin_task``; every minibatch ``step(optimizer, g)`` with ``g`` the gradient of the task
loss alone; ``end_task`` at the boundary. A method that regularises adds its penalty's
gradient inside ``step`` and reports its value via ``penalty()``.

A method's state (omega, Omega, theta_ref, ...) belongs to ONE model, and a model carries ONE
method with state (``model.attached_method``): attaching again to the same model keeps the
state (a method can be driven one task at a time); attaching it to another model, or a second
method to a model whose method holds state, is an error. The second method would start from
zero importance while the weights already hold what the first one protected: the earlier tasks
would be protected by nothing, silently. To go on, pass the method the model already carries
(``learner.method``) to the new Learner; to start over, build a new model. Fine-tuning holds no
state, so a model fine-tuned first (pretraining) may take a regulariser next, which then starts
from zero importance by design.
"""

from ..checkpoint import export_state, import_state
from ..checks import check_representable
from ..errors import ConfigError, UserError


class Method:
    """Fine-tuning: no penalty (SI with c = 0 behaves identically)."""

    name = "finetune"
    state_names = ()          # flat per-parameter arrays saved in checkpoints
    closes_path = False       # True: the trainer hands close_path the gradient at a task's end
    foreign_names = {}        # a peer library's argument name -> what to pass synapse instead

    def __new__(cls, *args, **kwargs):
        """Answer another library's argument name (Avalanche's ``si_lambda``, ...) with
        synapse's, in one line, instead of Python's bare TypeError."""
        for name in kwargs:
            if name in cls.foreign_names:
                raise ConfigError(name, cls.foreign_names[name])
        return super().__new__(cls)

    def attach(self, model):
        """Bind to ``model`` and allocate per-parameter state on its backend, the first time.

        Attaching again to the same model keeps the state (and ``tasks_learned``); attaching
        to another model, or to a model that carries another method, raises (see the module
        docstring). Settings that the model's dtype cannot hold are refused here.
        """
        current = getattr(self, "model", None)
        if current is model:
            return self
        if current is not None:
            raise UserError(f"method {self.name!r} is already attached to another model: its "
                            f"state belongs to that model; build a new method for this one")
        other = getattr(model, "attached_method", None)
        if other is not None and other.state_names:
            raise UserError(f"method {self.name!r} cannot attach to this model: it already "
                            f"carries method {other.name!r} ({other.tasks_learned} task(s) "
                            f"learned), whose state would be dropped; pass that method "
                            f"(learner.method) to continue, or build a new model to start over")
        check_representable(f"method {self.name!r}", model.dtype, **self.float_settings())
        model.attached_method = self
        self.model, self.params = model, model.params
        self.tasks_learned = 0     # tasks consolidated so far (the learner counts them)
        self.allocate()
        return self

    def allocate(self):
        """Create the per-parameter state (called once, by ``attach``)."""

    def float_settings(self):
        """Real-valued settings the training dtype must represent (e.g. ``{"c": 1.0}``)."""
        return {}

    def regulariser(self):
        """``(c, Omega, theta_ref)`` of a quadratic penalty c sum_k Omega_k (theta_k -
        theta_ref_k)^2, or None: the learner checks that it is not silently inert."""
        return None

    def begin_task(self, task_index, task):
        pass

    def step(self, optimizer, g):
        """One optimizer step on the regularised loss, ``g`` the task loss's gradient."""
        optimizer.step(g)

    def penalty(self):
        """The penalty's value at the current weights (a 0-d array, or 0.0)."""
        return 0.0

    def close_path(self, g_final):
        pass

    def end_task(self, task_index, task):
        pass

    def summary(self):
        """Scalars worth logging per epoch (host floats)."""
        return {}

    def config(self):
        return {"method": self.name}

    # -- persistence -------------------------------------------------------------------
    def state_dict(self):
        return export_state({name: getattr(self, name) for name in self.state_names})

    def load_state_dict(self, state):
        arrays = import_state(self.name, state,
                              {name: getattr(self, name).shape for name in self.state_names},
                              self.params.xp, self.params.dtype)
        for name, value in arrays.items():
            setattr(self, name, value)
        return self


def regularised_mask(params, include=None, exclude=None):
    """Flat 0/1 mask of the parameters a penalty applies to (all by default)."""
    names = list(params.names if include is None else include)
    names = [n for n in names if n not in set(exclude or ())]
    return params.mask(names)
