"""Split MNIST (Fig. 1 of the paper), built step by step from the engine's pieces.

    python demos/split_mnist.py            # one seed, c = 0 and c = 1, about 10 s on a CPU

The full experiment (seeds, SEM, figure, results folder) is `synapse split-mnist`, i.e.
`synapse.experiments.split_mnist.run()`.
"""
from synapse.data import load_dataset, split_tasks
from synapse.methods import make_method
from synapse.metrics import summarize
from synapse.model import mlp
from synapse.optim import Adam
from synapse.train import train_tasks

data = load_dataset("auto")                         # full MNIST if cached, else the 5k subset
tasks = split_tasks(data)                           # 0/1, 2/3, 4/5, 6/7, 8/9 (masked heads)

for c in (0.0, 1.0):                                # c = 0 is fine-tuning
    model = mlp([784, 256, 256, 10], seed=0)        # the authors' network, zero readout
    si = make_method("si", c=c, xi=1e-3)            # Eq. 1-4
    history = train_tasks(model, tasks, si, Adam(model.params, lr=1e-3), epochs=10,
                          batch_size=64, seed=0, reset_optimizer=True)
    m = summarize(history.R)                        # R[i, j]: test accuracy on j after task i
    print(f"c={c:g}: ACC {m['acc']:.4f}, BWT {m['bwt']:+.4f}, "
          f"mean over seen tasks {[round(a, 3) for a in m['mean_seen_accuracy']]}")
