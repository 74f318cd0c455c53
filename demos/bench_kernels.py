"""Achieved memory bandwidth of each fused kernel against a device-to-device copy.

Each kernel must move (read + write) a known number of arrays; bandwidth = bytes / time,
timed with CUDA events after warm-up, median of many runs. The copy of one array of the same
size, timed in the same run, is the ceiling. The fused adam_si step is also timed against
the same update written as unfused CuPy array expressions.

    python demos/bench_kernels.py [--n 16777216] [--dtype float32] [--repeat 50]
    python demos/bench_kernels.py --cpu     # the CPU: compiled loops, NumPy twins, prange

With ``--cpu`` each kernel is timed on the fused CPU loops (numba) and on the NumPy twins,
against ``np.copyto`` of one array; the adam_si loop is also timed compiled with ``prange``
(numba's parallel loops), which is how the serial choice in ``kernels/cpu.py`` was made.
Without a GPU (and without --cpu) it exits with status 1 and says why.
"""
import argparse
import inspect
import sys
import time

import numpy as np

import synapse_kernels as sk
from synapse.backend import cuda_unavailable_reason
from synapse_kernels import cpu, optim

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
    "adam_si_step": (7, 4, lambda a: sk.adam_si_step(
        a["theta"], a["g"], a["m"], a["v"], a["omega"], a["Omega"], a["theta_ref"], 0.1,
        **ADAM)),
    "sgd_si_step": (6, 3, lambda a: sk.sgd_si_step(
        a["theta"], a["g"], a["buf"], a["omega"], a["Omega"], a["theta_ref"], 0.1, 1e-3, 0.9)),
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
    """Median milliseconds of ``fn()`` over ``repeat`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
    return float(np.median(times))


def bench(n=1 << 24, dtype="float32", repeat=50):
    """Rows of (kernel, ms, GB/s, % of copy) and the fused/unfused ratio, on the GPU."""
    dtype = np.dtype(dtype)
    import cupy as xp
    timer = (lambda fn: time_gpu(xp, fn, repeat))
    a = arrays(xp, n, dtype)
    src, dst = a["g"], xp.empty_like(a["g"])
    copy_ms = timer(lambda: xp.copyto(dst, src))
    copy_gbs = 2 * n * dtype.itemsize / copy_ms / 1e6
    rows = [("copy (device to device)", copy_ms, copy_gbs, 100.0)]
    for name, (reads, writes, call) in KERNELS.items():
        ms = timer(lambda: call(a))
        gbs = (reads + writes) * n * dtype.itemsize / ms / 1e6
        rows.append((name, ms, gbs, 100 * gbs / copy_gbs))
    unfused_ms = timer(lambda: unfused_adam_si(a))
    fused_ms = next(r[1] for r in rows if r[0] == "adam_si_step")
    return rows, unfused_ms / fused_ms


def parallel_loop(loop):
    """The same loop compiled with numba's ``prange`` (threads over the index range)."""
    import numba
    src = inspect.getsource(loop.fn).replace("@cpu.loop\n", "").replace(" range(", " prange(")
    scope = {"np": np, "prange": numba.prange}
    exec(src, scope)
    return numba.njit(parallel=True, error_model="numpy")(scope[loop.name])


def bench_cpu(n, dtype, repeat):
    """Rows of (kernel, twin ms, loop ms, loop GB/s, % of copy); then prange's adam_si time."""
    dtype = np.dtype(dtype)
    a = arrays(np, n, dtype)
    src, dst = a["g"], np.empty_like(a["g"])
    copy_ms = time_cpu(lambda: np.copyto(dst, src), repeat)
    copy_gbs = 2 * n * dtype.itemsize / copy_ms / 1e6
    rows = [("copy (np.copyto)", copy_ms, copy_ms, copy_gbs, 100.0)]
    sk.warm_cpu(dtype)
    for name, (reads, writes, call) in KERNELS.items():
        ms = {}
        for path in ("numpy", "numba"):
            with cpu.path(path):
                ms[path] = time_cpu(lambda: call(a), repeat)
        gbs = (reads + writes) * n * dtype.itemsize / ms["numba"] / 1e6
        rows.append((name, ms["numpy"], ms["numba"], gbs, 100 * gbs / copy_gbs))
    par = parallel_loop(optim.adam_si_step_loop)
    t = dtype.type
    args = [a[k] for k in ("theta", "m", "v", "omega", "g", "Omega", "theta_ref")]
    scalars = [t(x) for x in (0.2, 1e-3, 0.9, 0.1, 0.999, 0.001, 1e-8)]
    par(*args, *scalars)
    return rows, time_cpu(lambda: par(*args, *scalars), repeat)


def print_cpu_table(rows, prange_ms, n, dtype):
    print(f"\nCPU kernels, {n:,} {dtype} elements; {sk.cpu_path()}")
    print(f"{'kernel':<28}{'twin ms':>10}{'loop ms':>10}{'loop GB/s':>11}{'% copy':>8}")
    for name, twin_ms, loop_ms, gbs, pct in rows:
        print(f"{name:<28}{twin_ms:>10.3f}{loop_ms:>10.3f}{gbs:>11.1f}{pct:>7.0f}%")
    import numba
    serial = next(r[2] for r in rows if r[0] == "adam_si_step")
    print(f"adam_si_step with prange ({numba.get_num_threads()} threads): {prange_ms:.3f} ms "
          f"against {serial:.3f} ms on one thread")


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
    ap.add_argument("--cpu", action="store_true",
                    help="time the CPU paths (compiled loops, NumPy twins) instead")
    args = ap.parse_args(argv)
    if not args.cpu:
        reason = cuda_unavailable_reason()
        if reason:
            print(f"bench_kernels: no GPU to benchmark on: {reason}. "
                  "(--cpu times the NumPy twins.)", file=sys.stderr)
            return 1
    if args.cpu:
        print_cpu_table(*bench_cpu(args.n, args.dtype, args.repeat), args.n, args.dtype)
        return 0
    rows, ratio = bench(args.n, args.dtype, args.repeat)
    print_table(rows, ratio, args.n, args.dtype, "CuPy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
