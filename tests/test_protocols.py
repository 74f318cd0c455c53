"""The experiment declarations: typed settings (one parser for flags, --set and the API), the
runs a configuration expands to, and the transfer protocol's choice of c and paired statistics."""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from synapse.errors import ConfigError
from synapse.experiments import PROTOCOLS, get
from synapse.experiments.protocol import configure, expand
from synapse.experiments.settings import Boolean, Integer, ListOf, Number, Seeds
from synapse.experiments.common import paired_difference
from synapse.experiments.transfer import choose_c


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_every_profile_sets_exactly_the_declared_settings(name):
    protocol = get(name)
    names = {s.name for s in protocol.settings}
    for profile, values in protocol.profiles.items():
        assert set(values) == names, (profile, set(values) ^ names)
        config = configure(protocol, profile)
        assert set(config.values()) == names and getattr(config, "device", "cpu") == "cpu"
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.seeds = (0,)                        # a config, once checked, stays as it is


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_text_and_values_give_the_same_config(name):
    """What the CLI parses from text equals what the API coerces from Python values."""
    protocol = get(name)
    for s in protocol.settings:
        value = protocol.profiles["paper"][s.name]
        if value is None:
            continue
        typed = s.coerce(value)
        assert s.parse(s.kind.show(typed)) == typed, s.name


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=5, unique=True))
def test_float_lists_round_trip_through_text(values):
    kind = ListOf(Number(0.0, strict=False), distinct=True)
    assert kind.parse(",".join(repr(v) for v in values)) == kind.coerce(values)


@pytest.mark.parametrize("kind, bad", [
    (Boolean(), "maybe"), (Boolean(), "False "), (Integer(), "1.7"), (Integer(), "nan"),
    (Integer(), "0"), (Number(), "nan"), (Number(), "inf"), (Number(), "-1"), (Seeds(), "0"),
    (Seeds(), "1,1"), (ListOf(Integer()), "abc"), (ListOf(Integer()), ""),
])
def test_bad_text_is_refused(kind, bad):
    if bad == "False ":
        assert kind.parse(bad) is False                   # surrounding space is fine
        return
    with pytest.raises(ValueError):
        kind.parse(bad)


@pytest.mark.parametrize("kind, bad", [
    (Boolean(), "False"), (Boolean(), 1), (Integer(), 1.7), (Integer(), "32"),
    (Integer(), True), (Number(), "0.1"), (Number(), float("nan")), (Seeds(), [0, -1]),
])
def test_bad_python_values_are_refused(kind, bad):
    with pytest.raises(ValueError):
        kind.coerce(bad)


def test_methods_with_a_strength_run_exactly_that_strength():
    protocol = get("split-mnist")
    config = configure(protocol, values={"methods": ["si=7"], "seeds": 1})
    assert [(r.method, r.c) for r in expand(config)] == [("si", 7.0)]
    config = configure(protocol, values={"methods": ["si", "si=7", "ewc"], "c": [0, 1],
                                         "seeds": [3]})
    runs = [(r.seed, r.method, r.c) for r in expand(config)]
    from synapse.methods import make_method
    assert runs == [(3, "si", 0.0), (3, "si", 1.0), (3, "si", 7.0),
                    (3, "ewc", make_method("ewc").c)]       # the default strength, explicit
    with pytest.raises(ConfigError, match="twice"):
        configure(protocol, values={"methods": ["si", "si=1"], "c": [0, 1]})
    with pytest.raises(ConfigError, match="no plain 'si'"):
        configure(protocol, values={"methods": ["si=7"], "c": [1]})


def test_unknown_setting_and_device_from_the_environment(monkeypatch):
    protocol = get("permuted-mnist")
    with pytest.raises(ConfigError, match="no_such"):
        configure(protocol, values={"no_such": 1})
    monkeypatch.setenv("SYNAPSE_DEVICE", "bogus")
    with pytest.raises(ConfigError, match=r"\$SYNAPSE_DEVICE"):
        configure(protocol)
    monkeypatch.setenv("SYNAPSE_DEVICE", "cpu")
    assert configure(protocol).device == "cpu"


def test_values_that_vanish_in_float32_are_refused():
    protocol = get("split-mnist")
    with pytest.raises(ConfigError, match="xi"):
        configure(protocol, values={"xi": 1e-50})
    with pytest.raises(ConfigError, match="c"):
        configure(protocol, values={"c": [0, 1e-60]})


# -- transfer: c is chosen on the selection half, never on the reported one ----------------
def fake_runs(selection, report, seeds=5):
    """Transfer records: SI at each c with the given selection/report accuracy per c."""
    runs = []
    for seed in range(seeds):
        methods = [{"method": "si", "c": c, "label": f"c={c:g} (SI)",
                    "selection_accuracy": selection[c], "report_accuracy": report[c]}
                   for c in selection]
        methods.append({"method": "finetune", "c": None, "label": "fine-tuning",
                        "selection_accuracy": 0.5, "report_accuracy": 0.5 + 0.01 * seed})
        runs.append({"seed": seed, "methods": methods})
    return runs


def test_choice_of_c_never_reads_the_reported_split():
    selection = {0.1: 0.7, 1.0: 0.8, 10.0: 0.6}
    report = {0.1: 0.9, 1.0: 0.6, 10.0: 0.95}          # would pick c=10 if it were read
    assert choose_c(fake_runs(selection, report))[0] == 1.0
    poisoned = {c: float("nan") for c in report}        # the report half unreadable: same c
    assert choose_c(fake_runs(selection, poisoned))[0] == 1.0


def test_the_transfer_splits_are_disjoint():
    from synapse.experiments import transfer_mnist_bg
    config = configure(get("transfer-mnist-bg"), values={"data": "digits"})
    data = transfer_mnist_bg.load(config)
    sel, rep = data.selection[0], data.report[0]
    rows = lambda x: {r.tobytes() for r in x}          # noqa: E731
    assert not rows(sel) & rows(rep)
    assert not rows(sel) & rows(data.pool_x) and not rows(rep) & rows(data.pool_x)


def test_paired_difference_matches_a_t_interval():
    a, b = [0.80, 0.82, 0.85, 0.79, 0.81], [0.75, 0.80, 0.80, 0.76, 0.80]
    d = np.subtract(a, b)
    got = paired_difference(a, b)
    half = 2.7764451051977987 * d.std(ddof=1) / math.sqrt(5)   # t(0.975, 4)
    assert got["mean"] == pytest.approx(d.mean())
    assert (got["low"], got["high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert paired_difference([0.5], [0.4])["low"] is None


@given(st.lists(st.integers(0, 4), min_size=1, max_size=300), st.integers(1, 300),
       st.integers(0, 10))
def test_stratified_subset_is_exact_and_proportional(labels, n, seed):
    from synapse.data import stratified_subset
    y = np.array(labels)
    n = min(n, len(y))
    xs, ys = stratified_subset(np.arange(len(y)), y, n, seed)
    assert len(ys) == n and len(set(xs.tolist())) == n and (y[xs] == ys).all()
    for c in np.unique(y):
        share = n * np.mean(y == c)
        assert abs(np.sum(ys == c) - share) < 1


@given(st.floats(0, 1e12, allow_nan=False))
def test_a_strength_is_named_in_full(c):
    """Run names and labels write c exactly: the text reads back as the same float, so two
    different strengths never share a folder or a label."""
    from synapse.experiments.runs import Run
    from synapse.experiments.settings import show_number
    assert float(show_number(c)) == c
    run = Run(0, "si", c)
    assert run.name == f"si-c{show_number(c)}-seed0" and show_number(c) in run.label


def test_a_config_travels_to_worker_processes_unchanged():
    import pickle
    config = configure(get("split-mnist"), values={"c": [0, 0.1234567], "seeds": [3]})
    back = pickle.loads(pickle.dumps(config))
    assert back == config and type(back) is type(config) and back.c == (0.0, 0.1234567)


def test_one_map_from_a_run_to_its_method():
    from synapse.experiments.runs import Run, method_for, recipe
    config = configure(get("transfer-mnist-bg"))
    si = method_for(config, Run(0, "si", 10.0))
    assert (si.name, si.c, si.xi, si.integrator) == ("si", 10.0, config.xi, config.integrator)
    for name in ("feature-extraction", "scratch", "finetune"):
        assert method_for(config, Run(0, name)).name == "finetune"
    assert recipe("feature-extraction").readout_only and not recipe("scratch").pretrained
    assert recipe("si").pretrained and not recipe("si").readout_only
