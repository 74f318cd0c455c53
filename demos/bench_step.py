"""Time one training step of the paper's networks, synapse against PyTorch, side by side.

Networks: the split-MNIST MLP 784-256-256-10 (batch 64 and 256), the permuted-MNIST MLP
784-2000-2000-10 (batch 256) and the authors' CIFAR CNN (``synapse.model.cnn``, batch 64), all
with Adam. Rows: synapse plain step; synapse SI step (penalty + Adam + omega, one fused pass);
on the small MLP a synapse EWC step with its Fisher phase amortised over a task's steps; and,
where torch is installed, PyTorch CPU doing the same plain step and a straightforward PyTorch
SI step. All timed in the same process, interleaved in rounds (this machine is noisy):
medians are reported, with the spread of the per-round ratio, and the ratios are what to read.

Under each MLP table: the step's matrix products alone, with NumPy and with torch (the floor
under both libraries' step). Under each network: the fused SI update alone (``adam_si_step``
on the network's parameter vector, as in training) against its
memory-traffic floor: the time an in-place ``np.add`` takes per byte, measured in the same
run, times the update's bytes (7 arrays read, 4 written).

    python demos/bench_step.py [--nets mlp256 mlp2000 cnn] [--rounds 5] [--seconds 0.4]
    python demos/bench_step.py --twins     # also the synapse rows on the NumPy twins
    python demos/bench_step.py --threads 1 # BLAS and torch on one thread each
"""
import argparse
import contextlib
import time

import numpy as np

import synapse_kernels as sk
from synapse_kernels import cpu
from synapse.data import Task
from synapse.methods import EWC, SI, Method
from synapse.model import cnn, mlp
from synapse.optim import Adam
from bench_kernels import time_cpu      # median ms of fn() after warm-up calls

# name: (synapse model builder, input shape of one example, batch sizes)
NETWORKS = {
    "mlp256": (lambda: mlp([784, 256, 256, 10], seed=0), (784,), (64, 256)),
    "mlp2000": (lambda: mlp([784, 2000, 2000, 10], seed=0), (784,), (256,)),
    "cnn": (lambda: cnn(seed=0), (3, 32, 32), (64,)),
}
TITLES = {"mlp256": "784-256-256-10", "mlp2000": "784-2000-2000-10",
          "cnn": "the authors' CIFAR CNN"}
POOL = 16    # minibatches cycled through


def batches(x, y):
    """Cycle through a pool of different minibatches, as training does. (One batch repeated
    leaves some units dead for good; their Adam moments then decay into float32 denormals,
    which are slow on x86 and would skew the timing.)"""
    i = 0
    while True:
        yield x[i], y[i]
        i = (i + 1) % len(x)


def synapse_step(net, method, x, y, omega_init=0.1, cpu_path=None):
    """A training step of ``net``; ``cpu_path`` ('numpy', ...) forces that CPU path in it."""
    forced = (lambda: cpu.path(cpu_path)) if cpu_path else contextlib.nullcontext
    model = NETWORKS[net][0]()
    with forced():
        opt = Adam(model.params, lr=1e-3)
    method.attach(model)
    if hasattr(method, "Omega"):       # a task boundary has passed: the penalty is live
        method.Omega[...] = omega_init
    data = batches(x, y)

    def step():
        with forced():
            xb, yb = next(data)
            model.loss_and_grad(xb, yb, check=False)
            method.step(opt, model.params.grad)
    return step, model


def ewc_fisher_seconds(x_task, y_task, samples):
    """Wall time of one EWC Fisher phase (per-example gradients) at a task boundary."""
    model = NETWORKS["mlp256"][0]()
    ewc = EWC(c=100.0, fisher_samples=samples).attach(model)
    task = Task("t", x_task, y_task, x_task, y_task)
    start = time.perf_counter()
    ewc.importance(task)
    return time.perf_counter() - start


def torch_net(net):
    import torch
    nn = torch.nn
    if net == "mlp256":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                             nn.Linear(256, 10))
    if net == "mlp2000":
        return nn.Sequential(nn.Linear(784, 2000), nn.ReLU(), nn.Linear(2000, 2000), nn.ReLU(),
                             nn.Linear(2000, 10))
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
                         nn.Flatten(), nn.Linear(64 * 6 * 6, 512), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(512, 10))


def torch_steps(net, x, y):
    import torch
    model = torch_net(net)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = batches([torch.from_numpy(b) for b in x], [torch.from_numpy(b) for b in y])
    params = list(model.parameters())
    omega = [torch.zeros_like(p) for p in params]
    Omega = [torch.full_like(p, 0.1) for p in params]
    ref = [p.detach().clone() for p in params]

    def plain():
        tx, ty = next(data)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(tx), ty).backward()
        opt.step()

    def si():   # the textbook PyTorch SI: task grad, penalty via autograd, omega from the change
        tx, ty = next(data)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(tx), ty)
        loss.backward(retain_graph=False)
        g = [p.grad.detach().clone() for p in params]
        with torch.no_grad():
            for p, O, r in zip(params, Omega, ref):
                p.grad += 2.0 * O * (p - r)
            old = [p.detach().clone() for p in params]
        opt.step()
        with torch.no_grad():
            for w, gi, p, o in zip(omega, g, params, old):
                w -= gi * (p - o)
    return plain, si


def measure(fns, rounds, seconds):
    """Per-round seconds per step of each function, interleaved; steps per round chosen so a
    round of one function takes about ``seconds`` (from the fastest of three warm-up steps)."""
    fastest = {}
    for name, f in fns.items():
        for _ in range(3):
            start = time.perf_counter()
            f()
            fastest[name] = min(fastest.get(name, np.inf), time.perf_counter() - start)
    steps = max(3, int(seconds / np.mean(list(fastest.values()))))
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            start = time.perf_counter()
            for _ in range(steps):
                f()
            times[name].append((time.perf_counter() - start) / steps)
    return {k: np.asarray(v) for k, v in times.items()}, steps


UPDATE_ARRAYS = 11   # the fused SI update reads theta g m v omega Omega theta_ref, writes 4


def update_floor(n_params, repeat=10):
    """(measured ms of the fused SI update, floor ms, GB/s) on a vector of n_params.

    The update (``adam_si_step``, as training calls it) reads 7 arrays and
    writes 4 of them in place. Its floor is the time those 11 x n_params x 4 bytes take at the
    rate of ``np.add(a, b, out=a)`` on two vectors of 4 n_params floats (8 read, 4 written in
    place), measured here: the same kind of traffic with no arithmetic to speak of. (A plain
    copy is no floor: its destination is written without being read, and the processor reads
    it first anyway.)"""
    rng = np.random.default_rng(0)
    a = [(1e-3 * rng.standard_normal(n_params)).astype(np.float32) for _ in range(7)]
    theta, g, m, v, omega, Omega, ref = a
    v[:], Omega[:] = np.abs(v), np.abs(Omega)
    src, dst = np.ones(4 * n_params, dtype=np.float32), np.ones(4 * n_params, dtype=np.float32)

    add_ms = time_cpu(lambda: np.add(dst, src, out=dst), repeat)
    gbs = 12 * n_params * 4 / add_ms / 1e6
    update_ms = time_cpu(lambda: sk.adam_si_step(theta, g, m, v, omega, Omega, ref, 0.1, 1e-3,
                                                  0.9, 0.999, 1e-8), repeat)
    return update_ms, UPDATE_ARRAYS * n_params * 4 / gbs / 1e6, gbs


def products_ms(model, batch, torch=None, repeat=20):
    """(NumPy ms, torch ms or None) of an MLP step's matrix products alone: per Dense layer
    x W, x^T g_y and, except on the first layer, g_y W^T; the floor under both libraries' step."""
    rng = np.random.default_rng(1)
    layers = [(layer.W, layer.needs_gx) for layer in model.layers if layer.kind == "dense"]
    data = [(w, rng.random((batch, w.shape[0]), dtype=np.float32),
             rng.random((batch, w.shape[1]), dtype=np.float32), gx) for w, gx in layers]

    def products(mm, args):
        for w, x, gy, gx in args:
            mm(x, w), mm(x.T, gy)
            if gx:
                mm(gy, w.T)
    ours = time_cpu(lambda: products(np.matmul, data), repeat)
    if torch is None:
        return ours, None
    tdata = [(torch.from_numpy(w), torch.from_numpy(x), torch.from_numpy(gy), gx)
             for w, x, gy, gx in data]
    return ours, time_cpu(lambda: products(torch.mm, tdata), repeat)


def spread(values):
    return f"{np.median(values):.2f} ({np.min(values):.2f}-{np.max(values):.2f})"


def report(net, batch, times, steps, rounds, fisher=None):
    t = {k: float(np.median(v)) for k, v in times.items()}
    base = t["synapse plain"]
    extra = f"; EWC: + Fisher {fisher[0] * 1e3:.0f} ms / {fisher[1]} steps" if fisher else ""
    print(f"\n{TITLES[net]}, batch {batch}: median step time over {rounds} rounds x {steps} "
          f"steps{extra}")
    print(f"{'':22s} {'ms/step':>8s} {'vs synapse plain':>17s} {'vs torch plain':>15s}")
    for name, sec in t.items():
        vs_torch = f"{sec / t['torch plain']:.2f}" if "torch plain" in t else "-"
        print(f"{name:22s} {sec * 1e3:8.2f} {sec / base:17.2f} {vs_torch:>15s}")
    over = times["synapse SI"] / times["synapse plain"] - 1
    line = f"SI overhead: synapse {100 * np.median(over):+.0f}% " \
           f"({100 * over.min():+.0f}% to {100 * over.max():+.0f}% over rounds)"
    if "torch plain" in t:
        plain = times["synapse plain"] / times["torch plain"]
        si = times["synapse SI"] / times["torch SI"]
        print(f"synapse plain / torch plain = {spread(plain)}   "
              f"synapse SI / torch SI = {spread(si)}   (median, min-max over rounds)")
        line += f", torch {t['torch SI'] / t['torch plain'] - 1:+.0%}"
    print(line)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.4,
                    help="about how long one round of one row runs")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads for OpenBLAS (synapse's matrix products) and for torch")
    ap.add_argument("--twins", action="store_true",
                    help="also time the synapse rows on the NumPy twins (SYNAPSE_CPU_KERNELS=numpy)")
    ap.add_argument("--task-examples", type=int, default=12000,
                    help="training examples per task, to amortise EWC's Fisher (split MNIST: ~12k)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--fisher-samples", type=int, default=500)
    args = ap.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
        print("torch not installed: PyTorch rows skipped (pip install 'synapse-si[bench]')")
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
        threadpool_limits(args.threads, user_api="blas")
        blas = [(i["internal_api"], i.get("num_threads")) for i in threadpool_info()]
        print(f"BLAS: {blas}; torch threads: {torch.get_num_threads() if torch else '-'}")
    except ImportError:
        pass
    print(f"CPU path: {sk.cpu_path()}")
    rng = np.random.default_rng(0)
    for net in args.nets:
        shape, sizes = NETWORKS[net][1], NETWORKS[net][2]
        fisher = None
        if net == "mlp256":
            x_task = rng.random((args.fisher_samples, 784)).astype(np.float32)
            y_task = rng.integers(0, 10, args.fisher_samples)
            fisher = ewc_fisher_seconds(x_task, y_task, args.fisher_samples)
        for batch in sizes:
            x = rng.random((POOL, batch) + shape).astype(np.float32)
            y = rng.integers(0, 10, (POOL, batch))
            fns = {"synapse plain": synapse_step(net, Method(), x, y)[0]}
            fns["synapse SI"], model = synapse_step(net, SI(c=1.0, xi=1e-3), x, y)
            if args.twins:
                fns["synapse plain [twins]"] = synapse_step(net, Method(), x, y,
                                                            cpu_path="numpy")[0]
                fns["synapse SI [twins]"] = synapse_step(net, SI(c=1.0, xi=1e-3), x, y,
                                                         cpu_path="numpy")[0]
            if fisher is not None:
                fns["synapse EWC"] = synapse_step(net, EWC(c=100.0), x, y)[0]
            if torch is not None:
                fns["torch plain"], fns["torch SI"] = torch_steps(net, x, y)
            times, steps = measure(fns, args.rounds, args.seconds)
            amortised = None
            if fisher is not None:
                per_task = args.epochs * -(-args.task_examples // batch)
                times["synapse EWC"] = times["synapse EWC"] + fisher / per_task
                amortised = (fisher, per_task)
            report(net, batch, times, steps, args.rounds, amortised)
            if net.startswith("mlp"):
                ours, theirs = products_ms(model, batch, torch)
                print(f"matrix products alone: {ours:.2f} ms with NumPy (OpenBLAS)" +
                      (f", {theirs:.2f} ms with torch" if theirs is not None else ""))
        n = model.params.size
        update_ms, floor_ms, gbs = update_floor(n)
        print(f"fused SI update alone ({n:,} float32 parameters): {update_ms:.2f} ms; "
              f"memory-traffic floor {floor_ms:.2f} ms ({UPDATE_ARRAYS} x {n * 4 / 1e6:.1f} MB "
              f"at an in-place np.add's {gbs:.1f} GB/s)")


if __name__ == "__main__":
    main()
