"""Transfer CIFAR-10 classes 0-7 -> 8 vs 9 (Fig. 3 left) with 50 labelled examples per class.

    python demos/transfer_cifar.py                  # needs cifar-10-python.tar.gz (see `synapse info`)
    python demos/transfer_cifar.py fashion-mnist    # the same protocol on a labelled stand-in

It runs `synapse.experiments.transfer.run_cifar`: a CNN pretrained on classes 0-7, then 8 vs 9
with SI, feature extraction, fine-tuning, or from scratch; validation accuracy, chance 0.5.
"""
import sys

from synapse.experiments import transfer

if __name__ == "__main__":
    data = sys.argv[1] if len(sys.argv) > 1 else "cifar10"
    results = transfer.run_cifar(profile="quick", data=data)
    print("figure:", results["figures"][0])
