"""Transfer MNIST -> MNIST-bg (Fig. 3 right) with 10 labelled examples per class.

    python demos/transfer_mnist_bg.py      # 5 seeds, SI at 3 c + 3 other methods, about a minute

It runs `synapse.experiments.transfer_mnist_bg.run`: pretrain on MNIST once per seed, then learn
MNIST-bg from that network with SI (Omega from pretraining; c chosen on a selection half of the
held-out data), feature extraction, fine-tuning, or from scratch; the bars are accuracy on the
other (report) half. See `synapse transfer-mnist-bg --help`.
"""
from synapse.experiments import transfer_mnist_bg

if __name__ == "__main__":
    results = transfer_mnist_bg.run(profile="quick")
    print("figure:", results["figures"][0])
