"""The "c scan" of permuted MNIST: final accuracy against c for several data sizes, one figure.

    python demos/c_scan.py RESULTS_FOLDER... [--out c_scan]

Each RESULTS_FOLDER is a `synapse permuted-mnist` run (its results.json holds the scan); the
label of each line is its data and training-set size. omega is a sum over optimizer steps, so
with fewer steps per task the same c protects less: the curve moves right as data shrinks.
"""
import argparse
import pathlib

from synapse.experiments.plotting import plot_c_scan
from synapse.experiments.results import load_results, save_figure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("folders", nargs="+", type=pathlib.Path)
    parser.add_argument("--out", default="c_scan", help="figure path without extension")
    args = parser.parse_args(argv)
    scans, configs = {}, []
    for folder in args.folders:
        res = load_results(folder)
        cfg, data = res["config"], res["data"]
        steps = -(-data["n_train"] // cfg["batch_size"])          # minibatches per epoch
        label = (f"{data['name']}, {data['n_train']:,} images ({steps} steps/epoch)")
        scans[label] = res["plot"]["c_scan"]
        configs.append(cfg)
    first = configs[0]
    counts = sorted({len(c["seeds"]) for c in configs})
    seeds = "one seed" if counts == [1] else f"{' or '.join(map(str, counts))} seeds"
    note = (f"permuted tasks: {first['n_tasks']}, network 784-"
            f"{'-'.join(str(h) for h in first['hidden'])}-10, {first['epochs']} epochs/task, "
            f"batch {first['batch_size']}, xi {first['xi']:g}; {seeds} each")
    fig = plot_c_scan(scans, title="Permuted tasks: final accuracy against c", note=note)
    for path in save_figure(fig, args.out):
        print(path)


if __name__ == "__main__":
    main()
