"""Split MNIST in the three scenarios of van de Ven et al.: fine-tuning, SI, EWC and the joint
upper bound, each scored by ACC (mean test accuracy over the five tasks after the last).

    python demos/three_scenarios.py                      # mnist-subset, 300 steps, 2 seeds
    python demos/three_scenarios.py --steps 2000 --seeds 5 --data mnist

Their protocol (GMvandeVen/continual-learning): 784-400-400 ReLU, Adam lr 1e-3 kept across
tasks, batch 128, a number of minibatches per task; SI xi = 0.1 with c = 10 / 50,000 / 5,000
(task / domain / class); EWC lambda = 1e5 / 1e10 / 1e9, which is c = lambda / 2 here. Then,
for class-incremental SI, what its readout does to the first task once the second is learned.
"""
import argparse

import numpy as np

from synapse.data import load_dataset, split_tasks
from synapse.learner import Learner, evaluate
from synapse.methods import make_method
from synapse.metrics import average_accuracy, mean_sem
from synapse.model import mlp
from synapse.optim import Adam
from synapse.train import train_joint, train_tasks

SI_C = {"task": 10.0, "domain": 5e4, "class": 5e3}
EWC_LAMBDA = {"task": 1e5, "domain": 1e10, "class": 1e9}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", default="mnist-subset")
parser.add_argument("--steps", type=int, default=300, help="minibatches per task")
parser.add_argument("--seeds", type=int, default=2)
args = parser.parse_args()
data = load_dataset(args.data)


def network(scenario, seed):
    model = mlp([784, 400, 400, 2 if scenario == "domain" else 10], seed=seed)
    return model, Adam(model.params, lr=1e-3)


def method(name, scenario):
    if name == "si":
        return make_method("si", c=SI_C[scenario], xi=0.1)
    if name == "ewc":
        return make_method("ewc", c=EWC_LAMBDA[scenario] / 2)
    return make_method("finetune")


def acc(name, scenario, seed):
    tasks = split_tasks(data, scenario=scenario)
    model, optimizer = network(scenario, seed)
    run = dict(steps=args.steps, batch_size=128, seed=seed, progress=False)
    if name == "joint":
        return average_accuracy(train_joint(model, tasks, optimizer, **run).R)
    history = train_tasks(model, tasks, method(name, scenario), optimizer,
                          reset_optimizer=False, **run)
    return average_accuracy(history.R)


methods = ("finetune", "si", "ewc", "joint")
print(f"ACC on split {data.name}, {args.steps} minibatches of 128 per task, "
      f"mean +- SEM over {args.seeds} seeds")
print(f"{'scenario':<10}" + "".join(f"{m:>18}" for m in methods))
for scenario in ("task", "domain", "class"):
    cells = []
    for name in methods:
        mean, sem = mean_sem([acc(name, scenario, seed) for seed in range(args.seeds)])
        cells.append(f"{mean:.3f} +- {sem:.3f}")
    print(f"{scenario:<10}" + "".join(f"{c:>18}" for c in cells), flush=True)

# Class-incremental: after digits 2/3, where do SI's answers on digits 0/1 go?
print("\nclass-incremental, after learning 0/1 then 2/3, on the test digits 0/1:")
tasks = split_tasks(data, scenario="class")
for name in ("finetune", "si"):
    model, optimizer = network("class", 0)
    learner = Learner(model, method(name, "class"), optimizer, batch_size=128, seed=0,
                      reset_optimizer=False, progress=False)
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
