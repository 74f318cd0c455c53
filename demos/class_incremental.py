"""Why a parameter-importance penalty cannot help in class-incremental learning, measured.

``synapse scenarios`` gives the table and the figure (SI protects with task identity, helps
somewhat in the domain scenario, and is no better than fine-tuning among all classes). This demo
shows why, on split MNIST after learning digits 0/1 and then 2/3 (class-incremental, all four
units compete at test time): where the test digits 0/1 go, and their logits.

    python demos/class_incremental.py                    # mnist-subset, 2,000 minibatches/task
    python demos/class_incremental.py --steps 300 --data mnist

The new task's loss only ever pushes the old classes' logits down (they are wrong answers for
every 2 or 3); nothing in Eq. 1 protects the readout's decision between old and new classes, so
SI keeps 0 apart from 1 (the accuracy among 0/1 alone, same weights) while every 0 and 1 is
called a 2 or a 3.
"""
import argparse

import numpy as np

from synapse.data import load_dataset, split_tasks
from synapse.experiments.scenarios import STRENGTHS
from synapse.learner import Learner, evaluate
from synapse.methods import make_method
from synapse.model import mlp
from synapse.optim import Adam

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", default="mnist-subset")
parser.add_argument("--steps", type=int, default=2000, help="minibatches per task")
args = parser.parse_args()
tasks = split_tasks(load_dataset(args.data), scenario="class")

print(f"class-incremental split {args.data}, after learning 0/1 then 2/3 "
      f"({args.steps} minibatches of 128 each), on the test digits 0/1:")
for name, options in (("finetune", {}), ("si", dict(c=STRENGTHS["class"]["si"], xi=0.1))):
    model = mlp([784, 400, 400, 10], seed=0)
    learner = Learner(model, make_method(name, **options), Adam(model.params, lr=1e-3),
                      batch_size=128, seed=0, reset_optimizer=False, progress=False)
    for task in tasks[:2]:
        learner.learn(task, steps=args.steps)
    old = tasks[0]
    guess = model.predict(old.x_test, active=(0, 1, 2, 3))
    among_all, = evaluate(model, [old], learned=tasks[:2])
    own = model.accuracy(old.x_test, old.y_test, (0, 1))
    logits = model.forward(old.x_test, train=False)
    print(f"  {name:<9} called 2 or 3: {np.isin(guess, (2, 3)).mean():.3f};  accuracy among "
          f"0-3: {among_all:.3f};  among 0/1 only (same weights): {own:.3f};  mean logit "
          f"of the true class {logits[np.arange(len(old.y_test)), old.y_test].mean():+.2f}, "
          f"of the best of 2/3 {logits[:, 2:4].max(axis=1).mean():+.2f}")
