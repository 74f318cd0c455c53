"""The interface every continual-learning method shares, and plain fine-tuning.

The trainer calls, for each task: ``begin_task``; every minibatch ``step(optimizer, g)``
with ``g`` the gradient of the task loss alone; ``end_task`` at the boundary. A method that
regularises adds its penalty's gradient inside ``step`` and reports its value via
``penalty()``.
"""
import numpy as np

from ..backend import asnumpy


class Method:
    """Fine-tuning: no penalty (SI with c = 0 behaves identically)."""

    name = "finetune"
    state_names = ()          # flat per-parameter arrays saved in checkpoints
    closes_path = False       # True: the trainer hands close_path the gradient at a task's end

    def attach(self, model):
        """Allocate per-parameter state on the model's backend. Called once, before task 1."""
        self.model = model
        self.params = model.params
        return self

    def begin_task(self, task_index, task):
        pass

    def step(self, optimizer, g):
        """One optimizer step on the regularised loss; returns the parameter change."""
        return optimizer.step(g)

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
        return {name: asnumpy(getattr(self, name)).copy() for name in self.state_names}

    def load_state_dict(self, state):
        xp = self.params.xp
        for name in self.state_names:
            value = np.asarray(state[name])
            expected = getattr(self, name).shape
            if value.shape != expected:
                raise ValueError(f"{self.name}: state {name!r} has shape {value.shape}, "
                                 f"expected {expected}")
            setattr(self, name, xp.asarray(value, dtype=self.params.dtype))
        return self


def regularised_mask(params, include=None, exclude=None):
    """Flat 0/1 mask of the parameters a penalty applies to (all by default)."""
    names = list(params.names if include is None else include)
    names = [n for n in names if n not in set(exclude or ())]
    return params.mask(names)
