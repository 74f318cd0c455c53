"""Time one training step of the split-MNIST network (784-256-256-10, Adam) side by side.

Rows: synapse plain Adam step; synapse SI step (penalty + Adam + omega, fused); synapse EWC
step with its Fisher phase amortised over a task's steps; and, where torch is installed,
PyTorch CPU doing the same plain step and a straightforward PyTorch SI step. All timed in the
same process, interleaved in rounds (this machine is noisy); medians are reported, and the
ratios are what to read.

    python demos/bench_step.py [--batch 64 256] [--rounds 7] [--steps 200]
"""
import argparse
import time

import numpy as np

from synapse.data import Task
from synapse.methods import EWC, SI, Method
from synapse.model import mlp
from synapse.optim import Adam

SIZES = [784, 256, 256, 10]


def batches(x, y):
    """Cycle through a pool of different minibatches, as training does. (One batch repeated
    leaves some units dead for good; their Adam moments then decay into float32 denormals,
    which are slow on x86 and would skew the timing.)"""
    i = 0
    while True:
        yield x[i], y[i]
        i = (i + 1) % len(x)


def synapse_step(method, x, y, omega_init=0.1):
    model = mlp(SIZES, seed=0)
    opt = Adam(model.params, lr=1e-3)
    method.attach(model)
    if hasattr(method, "Omega"):       # a task boundary has passed: the penalty is live
        method.Omega[...] = omega_init
    data = batches(x, y)

    def step():
        xb, yb = next(data)
        model.loss_and_grad(xb, yb, check=False)
        method.step(opt, model.params.grad)
    return step, model


def ewc_fisher_seconds(x_task, y_task, samples):
    """Wall time of one EWC Fisher phase (per-example gradients) at a task boundary."""
    model = mlp(SIZES, seed=0)
    ewc = EWC(c=100.0, fisher_samples=samples).attach(model)
    task = Task("t", x_task, y_task, x_task, y_task)
    start = time.perf_counter()
    ewc.importance(task)
    return time.perf_counter() - start


def torch_steps(x, y):
    import torch
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    data = batches([torch.from_numpy(b) for b in x], [torch.from_numpy(b) for b in y])
    params = list(net.parameters())
    omega = [torch.zeros_like(p) for p in params]
    Omega = [torch.full_like(p, 0.1) for p in params]
    ref = [p.detach().clone() for p in params]

    def plain():
        tx, ty = next(data)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(tx), ty).backward()
        opt.step()

    def si():   # the textbook PyTorch SI: task grad, penalty via autograd, omega from the change
        tx, ty = next(data)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(tx), ty)
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


def measure(fns, rounds, steps):
    for f in fns.values():
        for _ in range(20):
            f()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            start = time.perf_counter()
            for _ in range(steps):
                f()
            times[name].append((time.perf_counter() - start) / steps)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--task-examples", type=int, default=12000,
                    help="training examples per task, to amortise EWC's Fisher (split MNIST: ~12k)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--fisher-samples", type=int, default=500)
    args = ap.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        torch = None
        print("torch not installed: PyTorch rows skipped (pip install 'synapse-si[bench]')")
    try:
        from threadpoolctl import threadpool_info
        blas = [(i["internal_api"], i.get("num_threads")) for i in threadpool_info()]
        print(f"BLAS: {blas}")
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    x_task = rng.random((args.fisher_samples, 784)).astype(np.float32)
    y_task = rng.integers(0, 10, args.fisher_samples)
    fisher_s = ewc_fisher_seconds(x_task, y_task, args.fisher_samples)
    for batch in args.batch:
        x = rng.random((32, batch, 784)).astype(np.float32)    # a pool of 32 minibatches
        y = rng.integers(0, 10, (32, batch))
        fns = {"synapse plain": synapse_step(Method(), x, y)[0],
               "synapse SI": synapse_step(SI(c=1.0, xi=1e-3), x, y)[0],
               "synapse EWC": synapse_step(EWC(c=100.0), x, y)[0]}
        if torch is not None:
            fns["torch plain"], fns["torch SI"] = torch_steps(x, y)
        t = measure(fns, args.rounds, args.steps)
        steps_per_task = args.epochs * -(-args.task_examples // batch)
        t["synapse EWC"] += fisher_s / steps_per_task
        base = t["synapse plain"]
        print(f"\nbatch {batch}: median step time over {args.rounds} rounds x {args.steps} steps "
              f"(EWC: + Fisher {fisher_s * 1e3:.0f} ms / {steps_per_task} steps)")
        print(f"{'':16s} {'ms/step':>8s} {'vs synapse plain':>17s} {'vs torch plain':>15s}")
        for name, sec in t.items():
            vs_torch = f"{sec / t['torch plain']:.2f}" if "torch plain" in t else "-"
            print(f"{name:16s} {sec * 1e3:8.3f} {sec / base:17.2f} {vs_torch:>15s}")
        if "torch plain" in t:
            print(f"synapse plain / torch plain = {base / t['torch plain']:.2f}  (target <= 1.0)")
            print(f"SI overhead: synapse {t['synapse SI'] / base - 1:+.1%} (target <= +10%), "
                  f"torch {t['torch SI'] / t['torch plain'] - 1:+.1%}")


if __name__ == "__main__":
    main()
