"""Transfer CIFAR-10 classes 0-7 -> 8 vs 9 (Fig. 3 left) with 50 labelled examples per class.

    python demos/transfer_cifar.py                  # CIFAR-10 (downloaded once, md5-checked)
    python demos/transfer_cifar.py fashion-mnist    # the same protocol on a labelled stand-in

It runs `synapse.experiments.transfer_cifar.run`: the authors' CNN pretrained on classes 0-7,
then 8 vs 9 with SI (c chosen on a selection half), feature extraction, fine-tuning, or from
scratch; accuracy on the report half, chance 0.5.
"""
import sys

from synapse.experiments import transfer_cifar

if __name__ == "__main__":
    data = sys.argv[1] if len(sys.argv) > 1 else "cifar10"
    results = transfer_cifar.run(profile="quick", data=data)
    print("figure:", results["figures"][0])
