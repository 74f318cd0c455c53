"""The identity experiment end to end on small real data (scikit-learn's 8x8 digits): the
recorded numbers, not the picture."""
import json
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg

from synapse.errors import ConfigError
from synapse.experiments import identity
from synapse.experiments.protocol import configure

# Small and fast (~5 s): 64 inputs, 16-unit layers, full-batch paths of duration 8.
SMALL = dict(identity.PROFILES["quick"], data="digits", n_train=300, smooth_hidden=[16],
             relu_hidden=[16, 16], orders_n=128, lrs=[0.2, 0.1, 0.05, 0.025], duration=8.0,
             epochs=2)


def small(**change):
    return configure(identity.PROTOCOL, values=dict(SMALL, **change))


@pytest.fixture(scope="module")
def run():
    return identity.compute(small(), seed=0)


def test_record_is_json_and_complete(run):
    back = json.loads(json.dumps(run, allow_nan=False))
    assert back == run
    for panel in ("smooth", "relu", "minibatch"):
        curves = run[panel]["curves"]
        n = len(curves["step"])
        assert n >= 2 and all(len(v) == n for v in curves.values())
        assert curves["decrease"][0] == 0 and curves["first_order"][0] == 0
    assert run["data"]["name"] == "digits"


def test_smooth_full_batch_curves_agree_within_the_integrators_bound(run):
    """Full-batch gradient descent on a tanh net: at every recorded step the first-order sum
    is within 1% and the trapezoid within 0.1% of the final loss decrease (the bounds the
    property test in test_si.py asserts for random nets), and the trapezoid is the closer."""
    c = {k: np.array(v) for k, v in run["smooth"]["curves"].items()}
    d = c["decrease"][-1]
    assert d > 0.5                                          # the loss really moved
    assert np.abs(c["first_order"] - c["decrease"]).max() < 1e-2 * d
    assert np.abs(c["trapezoid"] - c["decrease"]).max() < 1e-3 * d
    s = run["smooth"]["summary"]
    assert abs(s["trapezoid_error"]) < abs(s["first_order_error"]) / 5


def test_fitted_orders_are_one_and_two_on_the_smooth_net(run):
    o = run["orders"]["smooth"]
    assert 0.85 < o["order_first_order"] < 1.15, o
    assert 1.8 < o["order_trapezoid"] < 2.2, o
    # the fit is taken in the asymptotic regime: every neighbouring pair shows the same order
    assert np.allclose(o["local_slopes_first_order"], 1, atol=0.15), o
    assert np.allclose(o["local_slopes_trapezoid"], 2, atol=0.2), o


def test_no_order_is_claimed_for_the_relu_trapezoid(run):
    """On the ReLU net the trapezoid's error follows no power of lr (kinks): no order, and the
    record says which test failed; the least-squares slope is still kept, as a fit."""
    o = run["orders"]["relu"]
    assert o["order_trapezoid"] is None and o["why_no_order_trapezoid"], o
    assert np.isfinite(o["slope_trapezoid"])


LRS = [0.1, 0.05, 0.025, 0.0125]


@given(p=st.floats(0.5, 3.0), C=st.floats(1e-8, 1e2), a=st.floats(-0.5, 0.5),
       sign=st.sampled_from([-1.0, 1.0]))
def test_power_law_order_reports_a_power_law(p, C, a, sign):
    """error = +-C lr^p (1 + a lr), a power law with a higher-order term: the order is p."""
    errors = [sign * C * lr ** p * (1 + a * lr) for lr in LRS]
    order, why = identity.power_law_order(LRS, errors)
    assert why == "" and order == pytest.approx(p, abs=0.05)
    assert identity.power_law_order(LRS[::-1], errors[::-1])[0] == pytest.approx(order)


def test_power_law_order_refuses_a_kinked_curve():
    """The ReLU trapezoid's errors of `synapse identity` (mnist-subset, seed 0, as |error|):
    order 2, then 5, then 0.3. One least-squares slope (2.75) runs through them; no order."""
    kinked = [2.530e-05, 6.288e-06, 1.739e-07, 1.443e-07]
    assert identity.slope(LRS, kinked) == pytest.approx(2.75, abs=0.01)
    order, why = identity.power_law_order(LRS, kinked)
    assert order is None and why.startswith("local slopes 2, 5.2, 0.27")
    # the same errors as measured: the last one has the other sign
    order, why = identity.power_law_order(LRS, [-2.530e-05, -6.288e-06, -1.739e-07, 1.443e-07])
    assert order is None and "changes sign" in why
    assert identity.power_law_order(LRS, [1e-3, 5e-4, 0.0, 1e-4]) == \
        (None, "zero or non-finite error")


def test_tracked_trapezoid_is_the_engines(run):
    """The trapezoid curve is tracked from g and delta; the engine's SI(integrator='trapezoid')
    on the same path gives the same sum."""
    e = run["engine_trapezoid"]
    assert e["engine"] == pytest.approx(e["tracked"], rel=1e-10, abs=1e-12)
    assert e["engine"] == pytest.approx(e["decrease"], rel=1e-3)


def test_minibatch_gap_is_batch_noise(run):
    """With minibatches sum(omega) exceeds the full-batch decrease, and the excess is the batch
    noise (omega uses the minibatch gradient the update is built from), not quadrature error."""
    s = run["minibatch"]["summary"]
    assert s["first_order"] > s["decrease"] > 0
    assert s["batch_noise"] == pytest.approx(s["first_order"] - s["full_gradient"])
    assert s["batch_noise"] > 5 * abs(s["quadrature_error"])


def test_importance_per_layer_and_per_input(run):
    imp = run["importance"]
    shares = [layer["share"] for layer in imp["layers"].values()]
    assert sum(shares) == pytest.approx(1.0)
    assert min(layer["mean"] for layer in imp["layers"].values()) >= 0
    image = np.array(imp["per_input"])
    assert image.shape == (8, 8) and (image >= 0).all() and image.sum() > 0
    W = imp["layers"][imp["first_layer"]]
    assert image.sum() == pytest.approx(W["total"])


def test_report_and_results_folder(run, tmp_path):
    out = identity.report(small(), [run])
    assert set(out) == {"summary", "plot", "figure", "table"}
    assert out["summary"]["seed 0"]["orders"]["smooth"]["trapezoid"] == \
        run["orders"]["smooth"]["order_trapezoid"]
    assert out["summary"]["seed 0"]["orders"]["relu"]["trapezoid"] is None
    assert "batch noise" in out["plot"]["note"]
    assert "seed 0" in out["table"] and "no power law" in out["table"]


def test_figure_panels_and_legends(run):
    """Panels (a)-(f), each label once; the ReLU trapezoid says "no power law (kinks)"; and no
    legend overlaps any panel, so none covers a curve."""
    fig = identity.report(small(), [run])["figure"]
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [re.match(r"\((\w)\) ", t).group(1) for t in titles] == list("abcdef")
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    texts = [t.get_text() for legend in legends for t in legend.get_texts()]
    assert "ReLU, trapezoid: no power law (kinks)" in texts
    assert any(re.fullmatch(r"tanh, trapezoid: order 1\.9\d|tanh, trapezoid: order 2\.0\d", t)
               for t in texts), texts
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), (legend, ax.get_title())


def test_run_writes_the_results_folder(tmp_path, monkeypatch):
    small = dict(SMALL, lrs=[0.2, 0.1, 0.05], duration=1.0, epochs=1, relu_hidden=[8])
    monkeypatch.setitem(identity.PROFILES, "tiny", small)
    result = identity.run(profile="tiny", out=tmp_path, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["runs"][0]["orders"]["smooth"]["order_trapezoid"] == \
        result["summary"]["seed 0"]["orders"]["smooth"]["trapezoid"]
    for name in ("identity.png", "identity.svg", "summary.txt"):
        assert (tmp_path / name).stat().st_size > 0
    assert saved["backend"]["dtype"] == "float64"          # the networks it trains


@pytest.mark.parametrize("change,option", [
    (dict(lrs=[0.1, 0.05]), "lrs"), (dict(lrs=[0.1, 0.05, 20.0]), "lrs"),
    (dict(gd_lr=0), "gd_lr"), (dict(batch_size=500), "batch_size"),
    (dict(data="cifar10"), "data"), (dict(smooth_hidden=[]), "smooth_hidden"),
    (dict(epochs=1.5), "epochs"), (dict(colour="red"), "colour"), (dict(n_train=10**6), "n_train")])
def test_bad_settings_name_the_setting(change, option):
    with pytest.raises(ConfigError) as err:
        identity.compute(small(**change), seed=0)
    assert err.value.option == option and "\n" not in str(err.value)


def test_settings_are_typed_before_the_rules():
    """A scalar where a list belongs is typed first (``lrs=0.1`` -> ``(0.1,)``), so the rules
    answer with one line naming it, not a TypeError."""
    with pytest.raises(ConfigError, match="^lrs: needs at least 3 step sizes"):
        small(lrs=0.1)
    assert small(seeds=2).seeds == (0, 1)
