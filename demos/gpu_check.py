"""Everything to run when a GPU is at hand, in under five minutes; a summary table last.

    python demos/gpu_check.py

1. ``pytest -m gpu`` (every kernel against its NumPy twin on the GPU);
2. the kernel benchmark (``demos/bench_kernels.py``);
3. a short split-MNIST run on CuPy, if ``synapse.experiments`` provides a runner.

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


def run_split_mnist():
    try:
        from synapse.experiments import split_mnist
        runner = split_mnist.run
    except (ImportError, AttributeError) as err:
        return ("split-MNIST on CuPy", "not run",
                f"synapse.experiments has no split-MNIST runner yet ({err})", 0.0)
    t0 = time.time()
    result = runner(device="cuda", epochs=1)
    return ("split-MNIST on CuPy", "done", str(result)[:70], time.time() - t0)


def main():
    reason = cuda_unavailable_reason()
    if reason:
        print(f"gpu_check: no GPU here ({reason}).\nNot run: pytest -m gpu, the kernel "
              "benchmark, split-MNIST on CuPy. The CPU checks are `pytest tests/test_kernels.py`.")
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
    return 0 if all(r[1] in ("pass", "done", "not run") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
