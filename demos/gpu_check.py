"""Everything to run when a GPU is at hand, in under five minutes; a summary table last.

    python demos/gpu_check.py

1. ``pytest -m gpu`` (every kernel against its NumPy twin on the GPU);
2. the kernel benchmark (``demos/bench_kernels.py``);
3. split MNIST with SI on CuPy and on NumPy from the same seed: time per epoch and ACC.

Without a GPU it says what it could not do and exits with status 1.
"""
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "demos"))

from synapse.backend import cuda_unavailable_reason  # noqa: E402


def run_gpu_tests():
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p",
                           "no:cacheprovider", str(ROOT / "tests")], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    print(proc.stdout[-3000:], proc.stderr[-1000:], sep="\n")
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "no output"
    return ("pytest -m gpu", "pass" if proc.returncode == 0 else "FAIL", tail,
            time.time() - t0)


def run_bench():
    import bench_kernels
    t0 = time.time()
    rows, ratio = bench_kernels.bench(n=1 << 24, repeat=30)
    bench_kernels.print_table(rows, ratio, 1 << 24, "float32", "CuPy")
    fused = next(r for r in rows if r[0] == "adam_si_step")
    verdict = "pass" if fused[3] >= 70 and ratio > 1 else "below target"
    return ("kernel benchmark", verdict,
            f"adam_si_step {fused[2]:.0f} GB/s = {fused[3]:.0f}% of copy; "
            f"{ratio:.2f}x unfused", time.time() - t0)


def run_split_mnist(epochs=2, data="auto", hidden=(256, 256)):
    """Split MNIST with SI (c = 1) on CuPy and on NumPy, same seed: time per epoch and ACC
    (``data="digits"``, a small ``hidden``: the quick form the stand-in tests run)."""
    from synapse.data import load_dataset, split_tasks
    from synapse.methods import SI
    from synapse.metrics import average_accuracy
    from synapse.model import mlp
    from synapse.optim import Adam
    from synapse.train import train_tasks

    tasks = split_tasks(load_dataset(data))
    t0, out = time.time(), {}
    for device in ("cuda", "cpu"):
        model = mlp([tasks[0].x_train.shape[1], *hidden, 10], seed=0, device=device)
        start = time.perf_counter()
        h = train_tasks(model, tasks, SI(c=1.0, xi=1e-3), Adam(model.params), epochs=epochs,
                        batch_size=64, seed=0, progress=False)
        out[device] = ((time.perf_counter() - start) / (epochs * len(tasks)),
                       average_accuracy(h.R))
    (gpu_s, gpu_acc), (cpu_s, cpu_acc) = out["cuda"], out["cpu"]
    detail = (f"s/epoch cuda {gpu_s:.3f}, cpu {cpu_s:.3f} ({cpu_s / gpu_s:.1f}x); "
              f"ACC cuda {gpu_acc:.4f}, cpu {cpu_acc:.4f}")
    verdict = "pass" if abs(gpu_acc - cpu_acc) < 0.02 else "ACC differs"
    return ("split-MNIST CuPy/NumPy", verdict, detail, time.time() - t0)


def main():
    reason = cuda_unavailable_reason()
    if reason:
        print(f"gpu_check: no GPU here ({reason}).\nNot run: pytest -m gpu, the kernel "
              "benchmark, split-MNIST on CuPy. The CPU checks are `pytest tests/test_kernels.py "
              "tests/test_kernels_training.py`.")
        return 1
    rows = []
    for step in (run_gpu_tests, run_bench, run_split_mnist):
        try:
            rows.append(step())
        except Exception as err:  # one failing step must not hide the others' results
            rows.append((step.__name__, "ERROR", f"{type(err).__name__}: {err}"[:70], 0.0))
    print("\nSummary")
    print(f"{'check':<22}{'result':<14}{'seconds':>8}  detail")
    for name, result, detail, seconds in rows:
        print(f"{name:<22}{result:<14}{seconds:>8.1f}  {detail}")
    return 0 if all(r[1] == "pass" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
