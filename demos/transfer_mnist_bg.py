"""Transfer MNIST -> MNIST-bg (Fig. 3 right) with 10 labelled examples per class.

    python demos/transfer_mnist_bg.py      # 5 seeds x 4 methods, about 15 s

It runs `synapse.experiments.transfer.run_mnist_bg`: pretrain on MNIST, then learn MNIST-bg
with SI (Omega from pretraining), feature extraction, fine-tuning, or from scratch; the bars are
validation accuracy (never the test split). See `synapse transfer-mnist-bg --help`.
"""
from synapse.experiments import transfer

if __name__ == "__main__":
    results = transfer.run_mnist_bg(profile="quick")
    print("figure:", results["figures"][0])
