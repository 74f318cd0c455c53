"""Achieved memory bandwidth of each fused kernel against a device-to-device copy.

Each kernel must move (read + write) a known number of arrays; bandwidth = bytes / time,
timed with CUDA events after warm-up, median of many runs. The copy of one array of the same
size, timed in the same run, is the ceiling. The fused adam_si step is also timed against
the same update written as unfused CuPy array expressions.

    python demos/bench_kernels.py [--n 16777216] [--dtype float32] [--repeat 50]
    python demos/bench_kernels.py --cpu     # time the NumPy twins instead (no GPU needed)

Without a GPU (and without --cpu) it exits with status 1 and says why.
"""
import argparse
import sys
import time

import numpy as np

import synapse_kernels as sk
from synapse.backend import cuda_unavailable_reason

# kernel: (arrays read, arrays written, call on a dict of arrays)
ADAM = dict(lr_t=1e-3, beta1=0.9, beta2=0.999, eps_t=1e-8)
KERNELS = {
    "omega_accumulate": (3, 1, lambda a: sk.omega_accumulate(a["omega"], a["g"], a["delta"])),
    "omega_accumulate_trapezoid": (4, 2, lambda a: sk.omega_accumulate_trapezoid(
        a["omega"], a["g"], a["delta_prev"], a["delta"])),
    "penalty_grad": (4, 1, lambda a: sk.penalty_grad(a["g"], a["Omega"], a["theta"],
                                                     a["theta_ref"], 0.1, a["out"])),
    "penalty_value": (3, 0, lambda a: sk.penalty_value(a["Omega"], a["theta"], a["theta_ref"],
                                                       0.1)),
    "consolidate": (4, 3, lambda a: sk.consolidate(a["Omega_c"], a["omega_c"], a["theta"],
                                                   a["theta_ref_c"], 0.1)),
    "adam_step": (4, 4, lambda a: sk.adam_step(a["theta"], a["g"], a["m"], a["v"], a["delta"],
                                               **ADAM)),
    "sgd_step": (3, 3, lambda a: sk.sgd_step(a["theta"], a["g"], a["buf"], a["delta"], 1e-3,
                                             0.9)),
    "adam_si_step": (7, 5, lambda a: sk.adam_si_step(
        a["theta"], a["g"], a["m"], a["v"], a["delta"], a["omega"], a["Omega"],
        a["theta_ref"], 0.1, **ADAM)),
    "sgd_si_step": (6, 4, lambda a: sk.sgd_si_step(
        a["theta"], a["g"], a["buf"], a["delta"], a["omega"], a["Omega"], a["theta_ref"], 0.1,
        1e-3, 0.9)),
}
NAMES = ["omega", "g", "delta", "delta_prev", "out", "Omega", "theta", "theta_ref", "m", "v",
         "buf", "Omega_c", "omega_c", "theta_ref_c"]


def arrays(xp, n, dtype):
    """Small values so that many repeated updates stay finite."""
    rng = np.random.default_rng(0)
    out = {k: xp.asarray((1e-3 * rng.standard_normal(n)).astype(dtype)) for k in NAMES}
    out["v"] = abs(out["v"])
    out["Omega"] = abs(out["Omega"])
    return out


def unfused_adam_si(a, c=0.1, lr_t=1e-3, b1=0.9, b2=0.999, eps_t=1e-8):
    """The fused step as plain CuPy expressions: one kernel and temporary per operation."""
    theta, g, m, v = a["theta"], a["g"], a["m"], a["v"]
    gt = g + 2 * c * a["Omega"] * (theta - a["theta_ref"])
    m *= b1
    m += (1 - b1) * gt
    v *= b2
    v += (1 - b2) * gt * gt
    a["delta"][...] = -lr_t * m / (np.sqrt(v) + eps_t)
    theta += a["delta"]
    a["omega"] -= g * a["delta"]


def time_gpu(cp, fn, repeat, warmup=5):
    """Median milliseconds of ``fn()`` between CUDA events, after warm-up."""
    for _ in range(warmup):
        fn()
    start, stop, times = cp.cuda.Event(), cp.cuda.Event(), []
    for _ in range(repeat):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return float(np.median(times))


def time_cpu(fn, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
    return float(np.median(times))


def bench(n=1 << 24, dtype="float32", repeat=50, cpu=False):
    """Rows of (kernel, ms, GB/s, % of copy) and the fused/unfused ratio."""
    dtype = np.dtype(dtype)
    if cpu:
        xp, timer = np, (lambda fn: time_cpu(fn, repeat))
    else:
        import cupy as xp
        timer = (lambda fn: time_gpu(xp, fn, repeat))
    a = arrays(xp, n, dtype)
    src, dst = a["g"], xp.empty_like(a["g"])
    copy_ms = timer(lambda: xp.copyto(dst, src))
    copy_gbs = 2 * n * dtype.itemsize / copy_ms / 1e6
    rows = [("copy (device to device)" if not cpu else "copy (np.copyto)", copy_ms, copy_gbs,
             100.0)]
    for name, (reads, writes, call) in KERNELS.items():
        ms = timer(lambda: call(a))
        gbs = (reads + writes) * n * dtype.itemsize / ms / 1e6
        rows.append((name, ms, gbs, 100 * gbs / copy_gbs))
    unfused_ms = timer(lambda: unfused_adam_si(a))
    fused_ms = next(r[1] for r in rows if r[0] == "adam_si_step")
    return rows, unfused_ms / fused_ms


def print_table(rows, ratio, n, dtype, where):
    print(f"\nKernel bandwidth, {n:,} {dtype} elements, {where}")
    print(f"{'kernel':<28}{'ms':>10}{'GB/s':>10}{'% copy':>9}")
    for name, ms, gbs, pct in rows:
        print(f"{name:<28}{ms:>10.3f}{gbs:>10.1f}{pct:>8.0f}%")
    print(f"adam_si_step: unfused array expressions take {ratio:.2f}x the fused time")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 24)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--cpu", action="store_true", help="time the NumPy twins instead")
    args = ap.parse_args(argv)
    if not args.cpu:
        reason = cuda_unavailable_reason()
        if reason:
            print(f"bench_kernels: no GPU to benchmark on: {reason}. "
                  "(--cpu times the NumPy twins.)", file=sys.stderr)
            return 1
    rows, ratio = bench(args.n, args.dtype, args.repeat, cpu=args.cpu)
    print_table(rows, ratio, args.n, args.dtype, "NumPy twins on the CPU" if args.cpu else "CuPy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
