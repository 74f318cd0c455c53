"""The path-integral identity (Eq. 3) on real training, made visible.

SI's running importance omega_k sums each weight's share of the loss decrease along the path
the optimizer took (Eq. 2-3, the paper's sum, with g the task gradient and delta the change the
optimizer actually made):

    sum_k omega_k = sum_t -g(t) . delta(t)  ~=  L(theta(t0)) - L(theta(t1)).

"~=" hides conditions. The sum is a quadrature of the line integral of the gradient along the
path; it converges to the loss decrease when the loss is smooth, the gradient is the one of the
loss measured (full batch), and the step size goes to zero. This module measures each condition
on MNIST digits, both integrators side by side: the paper's first-order sum (error O(lr)) and
the trapezoid -(g(t) + g(t+1))/2 . delta(t) (error O(lr^2)).

  smooth     full-batch gradient descent, tanh network: the curves coincide.
  relu       the same on the paper's ReLU network: units switch on and off between steps, the
             loss has kinks, and the error no longer vanishes with the step size.
  minibatch  Adam on minibatches: omega integrates the MINIBATCH gradient, which the update itself
             is built from, so sum(omega) also collects the batch noise (~ lr x the gradient
             variance per step) and exceeds the full-batch loss decrease. The gap is measured
             as sum(omega) - sum_t -grad L_full(t) . delta(t) (the noise term) next to the
             quadrature error (the full-gradient sum against the actual decrease).
  orders     the identity's error against the step size at a fixed duration lr x steps, and
             its order where it follows a power law (smooth net: ~1 and ~2); where the kinks
             bend it (flat, then steep) no order is claimed.
  importance where Omega (Eq. 4) ends up after the minibatch run: per layer, and per input pixel
             (the first layer's Omega summed over hidden units, as an image).

    from synapse.experiments import identity
    from synapse.experiments.protocol import configure
    results = identity.run(profile="quick", out="results/identity")  # the results document
    config = configure(identity.PROTOCOL, "quick")                   # typed and checked
    run = identity.compute(config, seed=0)                           # one run, JSON-ready
    out = identity.report(config, [run])                             # summary, plot, figure, table

``synapse identity`` runs it from the command line (``--profile paper``, ``--seeds 3``, ...).

The first-order sum is read from the engine (``sum(SI.omega)``, the fused optimizer step); the
trapezoid is tracked from the same g and delta along the same path, and checked once against the
engine's own ``SI(integrator="trapezoid")``.
"""
import functools
import time

import numpy as np

from synapse.backend import asnumpy
from synapse.errors import ConfigError
from synapse.model import mlp
from synapse.optim import SGD, Adam

from . import common, protocol, runner
from .runs import Run, make_si
from .common import table
from .results import to_jsonable
from .settings import Choice, Integer, ListOf, Number, Seeds, Setting

FIGURE = "identity"
DATASETS = ("mnist-subset", "mnist", "fashion-mnist", "digits")

# Plain settings; every one is used. "lrs" are the step sizes of the orders panel, run for
# "duration" = lr x steps each; "gd_*" the full-batch runs of the smooth and relu panels.
QUICK = {"data": "mnist-subset", "data_seed": 0, "n_train": 500,
         "smooth_hidden": [64], "relu_hidden": [64, 64],
         "gd_lr": 0.1, "gd_steps": 150,
         "orders_n": 128, "lrs": [0.1, 0.05, 0.025, 0.0125], "duration": 2.0,
         "adam_lr": 1e-3, "batch_size": 32, "epochs": 3, "xi": 1e-3, "seeds": [0]}
PROFILES = {
    "quick": QUICK,
    # the split-MNIST network's shape (784-256-256-10) in every panel, batch 64 as the authors
    # used, 3 seeds; minutes on 2 cores (the full-batch gradient is taken at every minibatch step)
    "paper": dict(QUICK, n_train=1000, smooth_hidden=[256, 256], relu_hidden=[256, 256],
                  batch_size=64, epochs=5, seeds=[0, 1, 2]),
}


# -- settings ---------------------------------------------------------------------------------
SETTINGS = (
    Setting("data", Choice(*DATASETS), "real digits to learn"),
    Setting("data_seed", Integer(low=0), "seed of the dataset's split"),
    Setting("n_train", Integer(), "training examples on every path"),
    Setting("smooth_hidden", ListOf(Integer()), "hidden widths of the tanh network"),
    Setting("relu_hidden", ListOf(Integer()), "hidden widths of the ReLU network"),
    Setting("gd_lr", Number(), "step size of the full-batch paths"),
    Setting("gd_steps", Integer(), "steps of the full-batch paths"),
    Setting("orders_n", Integer(), "examples of the step-size panel"),
    Setting("lrs", ListOf(Number(), distinct=True), "step sizes of the orders panel (>= 3)"),
    Setting("duration", Number(), "lr x steps of every path in the orders panel"),
    Setting("adam_lr", Number(), "Adam's learning rate on the minibatch path"),
    Setting("batch_size", Integer(), "minibatch size (below n_train)"),
    Setting("epochs", Integer(), "epochs of the minibatch path"),
    Setting("xi", Number(), "SI damping xi of Eq. 4 (for the importance panel)"),
    Setting("seeds", Seeds(), "a count (3 = seeds 0..2) or a comma list"),
)


def check_rules(config, given=None):
    """What one setting alone cannot say; each rule names the setting to change."""
    if len(config.lrs) < 3:
        raise ConfigError("lrs", f"needs at least 3 step sizes to fit a slope, got "
                                 f"{list(config.lrs)}")
    for lr in config.lrs:
        if config.duration / lr < 1:
            raise ConfigError("lrs", f"step size {lr} is longer than duration "
                                     f"{config.duration}: no step would run")
    if config.batch_size >= config.n_train:
        raise ConfigError("batch_size", f"{config.batch_size} is not smaller than n_train "
                                        f"{config.n_train}: that is full-batch, not minibatch")


def training_digits(config, seed):
    """The first ``max(n_train, orders_n)`` training examples of a seeded shuffle (float64;
    which ones depends on the seed), and the dataset."""
    ds = common.cached_dataset(config.data, config.data_seed)
    n = len(ds.y_train)
    if config.n_train > n or config.orders_n > n:
        key = "n_train" if config.n_train > n else "orders_n"
        raise ConfigError(key, f"{getattr(config, key)} examples asked, {ds.name} has {n} "
                               f"training examples")
    order = np.random.default_rng([seed, 7]).permutation(n)
    keep = order[:max(config.n_train, config.orders_n)]
    return ds.x_train[keep].astype(np.float64), ds.y_train[keep], ds


# -- one path, both integrators -----------------------------------------------------------------
def _dot(a, b):
    return float(asnumpy((a * b).sum()))


def follow_path(model, optimizer, si, batches, x, y, record_every=1, full_gradient=False):
    """Train along ``batches`` with ``si`` (a fresh SI with c = 0, first-order) and record the
    identity.

    ``batches`` is a list of ``(xb, yb)``; passing ``(x, y)`` itself is a full-batch step.
    Every ``record_every`` steps (and at the end) a row: the step, the full-batch loss decrease
    L(t0) - L(t), the engine's sum(omega) (first-order), the trapezoid sum over the same g and
    delta, and with ``full_gradient`` the first-order sum taken with the FULL-batch gradient
    along the same path (for minibatches: the identity's integrand without the batch noise).
    Returns ``(rows, si)``; ``si`` still holds this task's omega (``end_task`` consolidates).
    """
    si.attach(model)
    params = model.params
    full_loss = lambda: float(asnumpy(model.loss_and_grad(x, y)))  # noqa: E731  (sets grad)
    loss0 = full_loss()
    trapezoid, full_sum, delta_prev = 0.0, 0.0, None
    rows = {"step": [], "decrease": [], "first_order": [], "trapezoid": []}
    if full_gradient:
        rows["full_gradient"] = []

    def record(t, loss):
        rows["step"].append(t)
        rows["decrease"].append(loss0 - loss)
        rows["first_order"].append(float(asnumpy(si.omega.sum())))
        rows["trapezoid"].append(trapezoid)
        if full_gradient:
            rows["full_gradient"].append(full_sum)

    loss = loss0
    for t, (xb, yb) in enumerate(batches):
        recording = t % record_every == 0
        if t and (recording or full_gradient or xb is x):
            loss = full_loss()                            # L(t); grad = full-batch g(t)
        g_full = params.grad.copy() if full_gradient else None
        if xb is not x:
            model.loss_and_grad(xb, yb)                   # this minibatch's g(t)
        g = params.grad                                   # the task gradient, no penalty
        if delta_prev is not None:
            trapezoid += -0.5 * _dot(g, delta_prev)       # closes step t-1 with g(t)
        if recording:
            record(t, loss)
        before = params.theta.copy()
        si.step(optimizer, g)
        delta = params.theta - before                     # the optimizer's actual change
        trapezoid += -0.5 * _dot(g, delta)                # opens step t with g(t)
        if full_gradient:
            full_sum += -_dot(g_full, delta)
        delta_prev = delta                                # a fresh array each step
    loss = full_loss()
    xb, yb = batches[-1]
    if xb is not x:
        model.loss_and_grad(xb, yb)                       # a minibatch g closes a minibatch path
    trapezoid += -0.5 * _dot(params.grad, delta_prev)
    si.close_path(params.grad)                            # first-order: nothing to close
    record(len(batches), loss)
    return rows, si


def _network(x, y, hidden, activation, seed):
    """The float64 network of every panel: ``x``'s inputs, ``hidden``, one output per class."""
    return mlp([x.shape[1], *hidden, int(y.max()) + 1], seed=seed, dtype=np.float64,
               activation=activation)


def _gd_path(config, seed, x, y, hidden, activation, lr, steps, record_every=1):
    """The rows of :func:`follow_path` for full-batch gradient descent on a fresh network."""
    model = _network(x, y, hidden, activation, seed)
    rows, _ = follow_path(model, SGD(model.params, lr=lr), make_si(config, 0.0, "first-order"),
                          [(x, y)] * steps, x, y,
                          record_every=record_every)
    return rows


def engine_trapezoid(config, seed, x, y, hidden, activation, lr, steps):
    """The engine's own trapezoid (``SI(integrator="trapezoid")``) on the same path: sum(omega)
    after ``close_path`` and the loss decrease."""
    model = _network(x, y, hidden, activation, seed)
    si = make_si(config, 0.0, "trapezoid").attach(model)
    opt = SGD(model.params, lr=lr)
    loss0 = float(asnumpy(model.loss_and_grad(x, y)))
    si.begin_task(0, None)
    for _ in range(steps):
        si.step(opt, model.params.grad)
        loss = float(asnumpy(model.loss_and_grad(x, y)))
    si.close_path(model.params.grad)
    return {"sum_omega": float(asnumpy(si.omega.sum())), "decrease": loss0 - loss}


def engine_check(config, seed, x, y, tracked):
    """The trapezoid tracked here against the engine's own on the same path: the orders panel's
    smooth net at its largest step size. ``tracked`` is the trapezoid sum that
    ``orders(config, seed, x, y, "tanh")`` recorded on that path (``trapezoid_sum[0]``)."""
    lr = config.lrs[0]
    steps = int(round(config.duration / lr))
    xs, ys = x[:config.orders_n], y[:config.orders_n]
    engine = engine_trapezoid(config, seed, xs, ys, config.smooth_hidden, "tanh", lr, steps)
    return {"lr": lr, "steps": steps, "tracked": tracked,
            "engine": engine["sum_omega"], "decrease": engine["decrease"]}


def slope(lrs, errors):
    """Least-squares slope of log|error| against log(lr)."""
    return float(np.polyfit(np.log(lrs), np.log(np.abs(errors)), 1)[0])


def local_slopes(lrs, errors):
    """The slope between each pair of neighbouring step sizes, log(e_i / e_j) / log(lr_i / lr_j)
    (``lrs`` in the order given)."""
    e, lr = np.abs(np.asarray(errors, dtype=float)), np.asarray(lrs, dtype=float)
    return [float(p) for p in np.log(e[:-1] / e[1:]) / np.log(lr[:-1] / lr[1:])]


def power_law_order(lrs, errors, tolerance=0.25):
    """The observed order p of ``error ~ C lr^p``, or None where the errors follow no power law.

    p is the least-squares slope of log|error| against log(lr) (:func:`slope`). It is reported
    as an order only where the errors are a power law over the whole range: they keep one sign
    (a sign change is a zero crossing, not a power) and every neighbouring pair of step sizes
    shows the same slope, each local slope within ``tolerance`` of p. A kink (a ReLU unit
    switching between steps) makes the error flat at some step sizes and steep at others; one
    slope through such points is no order. Returns ``(p or None, why)``: ``why`` names each
    condition that failed where p is None, else "".
    """
    by_lr = np.argsort(lrs)[::-1]                       # largest step first
    lrs, errors = np.asarray(lrs, dtype=float)[by_lr], np.asarray(errors, dtype=float)[by_lr]
    if np.any(errors == 0) or not np.all(np.isfinite(errors)):
        return None, "zero or non-finite error"
    fit, local = slope(lrs, errors), local_slopes(lrs, errors)
    why = []
    if len(set(np.sign(errors))) > 1:
        why.append("the error changes sign")
    if max(abs(p - fit) for p in local) > tolerance:
        why.append("local slopes " + ", ".join(f"{p:.2g}" for p in local))
    return (None, "; ".join(why)) if why else (fit, "")


def orders(config, seed, x, y, activation):
    """Final identity errors for each step size in ``lrs`` at a fixed duration, both integrators;
    per integrator the fitted slope, the local slopes, and the order (:func:`power_law_order`:
    None, with the reason, where the errors follow no power law); the network of the smooth
    (tanh) or relu panel, ``orders_n`` examples."""
    hidden = (config.smooth_hidden if activation == "tanh" else config.relu_hidden)
    xs, ys = x[:config.orders_n], y[:config.orders_n]
    out = {"lr": list(config.lrs), "first_order": [], "trapezoid": [], "decrease": [],
           "trapezoid_sum": []}
    for lr in config.lrs:
        steps = int(round(config.duration / lr))
        rows = _gd_path(config, seed, xs, ys, hidden, activation, lr, steps, record_every=steps)
        d = rows["decrease"][-1]
        out["decrease"].append(d)
        out["first_order"].append(rows["first_order"][-1] - d)
        out["trapezoid"].append(rows["trapezoid"][-1] - d)
        out["trapezoid_sum"].append(rows["trapezoid"][-1])
    for name in ("first_order", "trapezoid"):
        out[f"slope_{name}"] = slope(out["lr"], out[name])          # the fit, order or not
        out[f"local_slopes_{name}"] = local_slopes(out["lr"], out[name])
        out[f"order_{name}"], out[f"why_no_order_{name}"] = power_law_order(out["lr"], out[name])
    return out


def minibatch_path(config, seed, x, y):
    """The paper's ReLU network trained with Adam on minibatches; the identity and Omega."""
    model = _network(x, y, config.relu_hidden, "relu", seed)
    rng = np.random.default_rng([seed, 11])
    bs, n = config.batch_size, len(y)
    batches = []
    for _ in range(config.epochs):
        order = rng.permutation(n)
        batches += [(x[order[i:i + bs]], y[order[i:i + bs]]) for i in range(0, n - bs + 1, bs)]
    rows, si = follow_path(model, Adam(model.params, lr=config.adam_lr),
                           make_si(config, 0.0, "first-order"), batches, x, y,
                           record_every=max(1, len(batches) // 50), full_gradient=True)
    si.end_task(0, None)                                   # Eq. 4: Omega from this path
    return rows, importance(model, si)


def importance(model, si):
    """Omega per parameter array (mean, total, share of all) and the first layer's Omega per
    input, summed over its units (an image)."""
    Omega = asnumpy(si.Omega)
    params = model.params
    total = float(Omega.sum())
    layers = {}
    for name in params.names:
        part = Omega[params.slices[name]]
        layers[name] = {"size": int(part.size), "mean": float(part.mean()),
                        "total": float(part.sum()),
                        "share": float(part.sum() / total) if total > 0 else 0.0}
    first = params.names[0]
    W = Omega[params.slices[first]].reshape(params.shapes[first])   # (inputs, units)
    return {"layers": layers, "first_layer": first, "per_input": W.sum(axis=1)}


def _curves_summary(rows):
    d, f, t = rows["decrease"][-1], rows["first_order"][-1], rows["trapezoid"][-1]
    out = {"decrease": d, "first_order": f, "trapezoid": t,
           "first_order_error": f - d, "trapezoid_error": t - d,
           "first_order_relative": (f - d) / d, "trapezoid_relative": (t - d) / d}
    if "full_gradient" in rows:
        full = rows["full_gradient"][-1]
        out.update(full_gradient=full, batch_noise=f - full, quadrature_error=full - d,
                   ratio=f / d)
    return out


def compute(config, seed):
    """ONE run of every panel; returns a JSON-ready dict holding every plotted number."""
    start = time.perf_counter()
    x, y, ds = training_digits(config, seed)
    x, y = x[:config.n_train], y[:config.n_train]
    lr, steps = config.gd_lr, config.gd_steps
    smooth = _gd_path(config, seed, x, y, config.smooth_hidden, "tanh", lr, steps)
    relu = _gd_path(config, seed, x, y, config.relu_hidden, "relu", lr, steps)
    minibatch, omega = minibatch_path(config, seed, x, y)
    side = int(round(np.sqrt(omega["per_input"].size)))
    image_shape = tuple(ds.image_shape[-2:]) if np.prod(ds.image_shape[-2:]) == \
        omega["per_input"].size else (side, side)
    omega["per_input"] = omega["per_input"].reshape(image_shape)
    smooth_orders = orders(config, seed, x, y, "tanh")
    record = {
        "seed": seed, "data": ds.info(),
        "smooth": {"curves": smooth, "summary": _curves_summary(smooth)},
        "relu": {"curves": relu, "summary": _curves_summary(relu)},
        "minibatch": {"curves": minibatch, "summary": _curves_summary(minibatch)},
        "orders": {"smooth": smooth_orders, "relu": orders(config, seed, x, y, "relu")},
        # the orders panel's first path is the one checked: its tracked sum, not a rerun
        "engine_trapezoid": engine_check(config, seed, x, y, smooth_orders["trapezoid_sum"][0]),
        "importance": omega,
    }
    record["seconds"] = time.perf_counter() - start
    return to_jsonable(record)


# -- report -------------------------------------------------------------------------------------
def note_for(run):
    """The figure's note: the data, and the minibatch gap measured and explained."""
    m = run["minibatch"]["summary"]
    return (f"{run['data']['name']}, {run['data']['n_features']} inputs; seed {run['seed']}. "
            f"Minibatch Adam: sum(omega) = {m['first_order']:.3g} vs full-batch decrease "
            f"{m['decrease']:.3g} (x{m['ratio']:.2g}); {m['batch_noise']:.3g} of the gap is batch "
            f"noise (omega uses the same minibatch gradient the update is made of: "
            f"sum(omega) - sum -grad L_full . delta), {m['quadrature_error']:.2g} is the "
            f"quadrature error.")


def _order_text(order):
    return "no power law" if order is None else f"{order:.2f}"


def report(config, runs):
    """The identity figure (first run), the numbers behind it, a per-seed summary and table."""
    if not runs:
        raise ConfigError("seeds", "no runs to report")
    summary = {}
    for run in runs:
        s = {panel: run[panel]["summary"] for panel in ("smooth", "relu", "minibatch")}
        s["orders"] = {arch: {k: run["orders"][arch][f"order_{k}"]
                              for k in ("first_order", "trapezoid")}
                       for arch in ("smooth", "relu")}
        s["engine_trapezoid"] = run["engine_trapezoid"]
        summary[f"seed {run['seed']}"] = s
    rows = []
    for label, s in summary.items():
        rows.append([label,
                     f"{s['smooth']['first_order_relative']:+.2e} / "
                     f"{s['smooth']['trapezoid_relative']:+.2e}",
                     f"{s['relu']['first_order_relative']:+.2e} / "
                     f"{s['relu']['trapezoid_relative']:+.2e}",
                     f"{s['minibatch']['ratio']:.2f}",
                     *(" / ".join(_order_text(s["orders"][arch][k])
                                  for k in ("first_order", "trapezoid"))
                       for arch in ("smooth", "relu"))])
    header = ["run", "smooth rel. error (1st / trap)", "relu rel. error (1st / trap)",
              "minibatch sum(omega)/decrease", "smooth orders (1st / trap)",
              "relu orders (1st / trap)"]
    text = table(rows, header)
    note = note_for(runs[0])
    from .plotting import plot_identity
    figure = plot_identity(runs[0], note=note)
    plot = {"kind": "identity", "note": note, "run": runs[0]}
    return {"summary": summary, "plot": plot, "figure": figure, "table": text}


def memory(config, data):
    """Both float64 networks, each with SGD/Adam and SI state, on full batches of
    ``max(n_train, orders_n)`` examples."""
    batch = max(config.n_train, config.orders_n, config.batch_size, common.EVAL_BATCH)
    return [common.network_memory(config, data["n_features"], data["n_classes"], dtype=np.float64,
                                  hidden=getattr(config, name), setting=name, batch=batch)
            for name in ("smooth_hidden", "relu_hidden")]


PROTOCOL = protocol.Protocol(
    name="identity",
    summary="Eq. 3 made visible: sum(omega) against the loss decrease, both integrators",
    doc=__doc__, settings=SETTINGS, profiles=PROFILES, figure=FIGURE,
    describe_data=lambda config: training_digits(config, 0)[2].info(),
    run_one=lambda config, run, run_dir, log, on_task_end, tag: compute(config, run.seed),
    report=lambda config, runs, data: report(config, runs),
    check=check_rules, dtype="float64", grid=("seeds",), memory=memory,
    expand=lambda config: [Run(seed, "identity") for seed in config.seeds])

run = functools.partial(runner.run, PROTOCOL)
run.__doc__ = """Run the identity experiment; keyword arguments as
:func:`synapse.experiments.runner.run` (``seeds=3``, ``lrs=[0.1, 0.05, 0.025]``, ...)."""
