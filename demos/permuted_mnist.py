"""Permuted MNIST (the paper's Fig. 2), built step by step: one shared head, Adam not reset.

    python demos/permuted_mnist.py         # 5 tasks, a 256-256 network, about a minute

The full experiment (several c, seeds, figure) is `synapse permuted-mnist`.
"""
from synapse.data import load_dataset, permuted_tasks
from synapse.methods import make_method
from synapse.metrics import summarize
from synapse.model import mlp
from synapse.optim import Adam
from synapse.train import train_tasks

data = load_dataset("auto")
tasks = permuted_tasks(data, n_tasks=5, seed=0)     # task 1: MNIST as is; then permutations

for c in (0.0, 0.1, 1.0):
    model = mlp([784, 256, 256, 10], seed=0)
    si = make_method("si", c=c, xi=0.1)             # xi = 0.1: the authors' permuted-MNIST value
    history = train_tasks(model, tasks, si, Adam(model.params, lr=1e-3), epochs=5,
                          batch_size=64, seed=0, reset_optimizer=False)
    print(f"c={c:g}: mean accuracy over seen tasks "
          f"{[round(a, 3) for a in summarize(history.R)['mean_seen_accuracy']]}")
