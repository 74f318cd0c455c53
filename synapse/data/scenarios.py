"""The three scenarios of continual learning (van de Ven & Tolias 2019; van de Ven, Tuytelaars &
Tolias 2022), as data the tasks carry: ``Task.scenario`` names one of ``SCENARIOS``.

A scenario answers two questions, and the engine reads the answers from here, nowhere else:

- ``task_identity``: is the task's identity given at test time? If so, a task is tested with
  its own output units (``Task.classes``); if not, the model must choose among the units of
  every task learned so far (:func:`eval_units`).
- ``reset_optimizer``: does the Learner forget the optimizer's state at each new task when the
  caller does not say (``Learner(reset_optimizer=None)``)? ``reason`` says why.

Which units are active while a task is *trained* is ``Task.classes`` itself: the task's pair
(task-incremental), the shared pair 0/1 (domain-incremental) or every class seen so far
(class-incremental); :func:`synapse.data.split_tasks` builds each.
"""
from typing import NamedTuple


class Scenario(NamedTuple):
    name: str
    task_identity: bool      # the task's own units compete at test time
    reset_optimizer: bool    # the Learner's default at each new task
    reason: str              # why that default


SCENARIOS = {s.name: s for s in (
    Scenario("task", True, True,
             "the authors' split-MNIST protocol resets Adam at each task (ganguli-lab/pathint, "
             "fig_split_mnist); the task's own units learn from a fresh optimizer"),
    Scenario("domain", False, False,
             "the authors' permuted-MNIST protocol and van de Ven et al. keep Adam's state: "
             "the same units go on learning the same labels"),
    Scenario("class", False, False,
             "van de Ven et al. keep Adam's state; and a reset can stall the new classes: "
             "fine-tuning split digits on all 10 units (64-64-10, 20 epochs per task) scored "
             "0.000 on its third task with a reset per task, 0.972 without (on the class "
             "scenario's growing units, 0.986 either way; tests/test_scenarios.py)"),
)}


def eval_units(task, learned):
    """The output units that compete when ``task`` is tested after learning ``learned``.

    With task identity (scenario 'task', and a Task that declares no scenario): the task's own
    ``classes``. Without: the union of the ``classes`` of the ``learned`` tasks, the units of
    every class seen so far (None, all units, if any learned task used all units). A task of a
    class-incremental sequence not learned yet is then tested among classes it does not hold:
    its accuracy is 0, as it is for a model that has never seen its classes. Before any task
    is learned, the task's own units.
    """
    if task.scenario is None or SCENARIOS[task.scenario].task_identity or not learned:
        return task.classes
    units = set()
    for t in learned:
        if t.classes is None:
            return None
        units.update(t.classes)
    return tuple(sorted(units))


def resets_optimizer(task, setting):
    """Whether the Learner resets the optimizer before ``task``: ``setting`` if the caller gave
    True or False; else (None) the default of the task's scenario (True where it has none)."""
    if setting is not None:
        return setting
    return True if task.scenario is None else SCENARIOS[task.scenario].reset_optimizer
