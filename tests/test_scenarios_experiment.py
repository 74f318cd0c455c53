"""``synapse scenarios``: split tasks in the task-, domain- and class-incremental scenarios, each
method at its scenario's strength, the joint bound, one figure of three panels. Replayed as a
user runs it (a real process, real folders), at tiny scale: scikit-learn's 8x8 digits, a 16-unit
network, a few minibatches per task."""
import json
import shutil

import numpy as np
import pytest

from synapse.errors import ConfigError
from synapse.experiments import scenarios
from synapse.experiments.protocol import configure
from synapse.experiments.runs import method_for

from test_cli_subprocess import one_line_error, synapse

TINY = ["--data", "digits", "--steps", "5", "--hidden", "16", "--no-progress"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The quick profile (2 seeds, every method, every scenario) at tiny scale, by the CLI."""
    out = tmp_path_factory.mktemp("scenarios") / "quick"
    code, stdout, err = synapse("scenarios", "--out", str(out), *TINY, timeout=300)
    assert code == 0, err
    return out, stdout


def test_quick_profile_writes_results_figure_and_table(finished):
    out, stdout = finished
    for name in ("results.json", "config.json", "summary.txt", "scenarios.png", "scenarios.svg"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "results.json").read_text())
    runs = saved["runs"]
    assert len(runs) == 2 * 3 * 6                    # seeds x scenarios x methods
    assert saved["config"]["reset_optimizer"] is False
    for scenario, reset in saved["summary"]["reset_optimizer"].items():
        assert reset["value"] is False and "Adam's state" in reset["reason"], scenario
    assert saved["summary"]["reset_optimizer"]["task"]["engine_default"] is True
    for scenario in ("task", "domain", "class"):
        panel = saved["summary"][scenario]
        assert set(panel) == {"fine-tuning", "SI", "EWC", "online EWC", "MAS", "joint",
                              "si_minus_finetune"}
        mine = [r for r in runs if r["scenario"] == scenario]
        for label in ("SI", "joint"):
            accs = [r["metrics"]["acc"] for r in mine if r["label"].endswith(
                "(SI)" if label == "SI" else "joint")]
            assert panel[label]["acc"]["mean"] == pytest.approx(np.mean(accs))
        si = {r["seed"]: r["metrics"]["acc"] for r in mine if r["method"] == "si"}
        ft = {r["seed"]: r["metrics"]["acc"] for r in mine if r["method"] == "finetune"}
        diff = panel["si_minus_finetune"]
        assert diff["mean"] == pytest.approx(np.mean([si[s] - ft[s] for s in (0, 1)]))
        assert diff["low"] <= diff["mean"] <= diff["high"]
        curve = saved["plot"]["curves"][scenario]["SI"]["mean_seen_mean"]
        assert len(curve) == 5 and curve[-1] == pytest.approx(panel["SI"]["acc"]["mean"])
    assert "SI - fine-tuning" in stdout and "95% interval" in stdout


def test_each_scenario_is_tested_as_declared(finished):
    """Task: each task among its own two units; domain: two shared units; class: among every
    class seen so far, so a task not yet learned scores 0 (its classes cannot be chosen)."""
    saved = json.loads((finished[0] / "results.json").read_text())
    for r in saved["runs"]:
        R = np.array(r["R"], dtype=float)
        if r["scenario"] == "class" and r["method"] != "joint":
            assert np.all(R[np.triu_indices(5, 1)] == 0)
        if r["scenario"] == "task":
            assert np.all(R[np.triu_indices(5, 1)] > 0.05)      # 2-way chance, never 0
    shares = {(r["scenario"], r["method"]): r["new_class_share"] for r in saved["runs"]}
    assert shares[("task", "si")] is None and shares[("domain", "si")] is None
    assert 0 <= shares[("class", "finetune")] <= 1


def test_strengths_are_the_scenarios_declared_values():
    """The paper profile runs each method at its scenario's strength (van de Ven et al.'s SI c,
    EWC lambda / 2); 'si=C' runs C in every scenario; the engine method gets exactly that c."""
    config = configure(scenarios.PROTOCOL, "paper", {"seeds": 1})
    got = {(r.scenario, r.method): r.c for r in scenarios.expand(config)}
    lam = {"task": 1e5, "domain": 1e10, "class": 1e9}
    for s, c_si in (("task", 10.0), ("domain", 5e4), ("class", 5e3)):
        assert got[(s, "si")] == c_si and got[(s, "ewc")] == lam[s] / 2
        assert got[(s, "online-ewc")] == lam[s] / 2
        assert got[(s, "finetune")] is None and got[(s, "joint")] is None
        assert got[(s, "mas")] == scenarios.STRENGTHS[s]["mas"]
    for run in scenarios.expand(config):
        method = method_for(config, run)
        assert getattr(method, "c", None) == run.c
    config = configure(scenarios.PROTOCOL, "paper", {"seeds": 1, "methods": ["si=3"]})
    assert {r.c for r in scenarios.expand(config)} == {3.0}


def test_the_same_run_twice_is_refused(tmp_path):
    """'si' in the task scenario is c = 10: asking for si=10 as well is one run twice."""
    with pytest.raises(ConfigError, match="asked for twice"):
        configure(scenarios.PROTOCOL, "quick", {"methods": ["si", "si=10"]})
    out = tmp_path / "twice"
    code, _, err = synapse("scenarios", "--out", str(out), *TINY, "--method", "si",
                           "--method", "si=10", "--scenarios", "task")
    one_line_error(code, err, "--method", "asked for twice")
    assert not out.exists()
    # in the class scenario si is c = 5000: si and si=10 are two runs, both named in full
    config = configure(scenarios.PROTOCOL, "quick", {"methods": ["si", "si=10"],
                                                     "scenarios": ["class"], "seeds": 1})
    assert [r.name for r in scenarios.expand(config)] == ["class-si-c5000-seed0",
                                                          "class-si-c10-seed0"]


class Killed(Exception):
    pass


def test_resume_after_a_kill_gives_the_uninterrupted_numbers(tmp_path):
    kw = dict(seeds=1, data="digits", steps=5, hidden=[16], scenarios=["domain", "class"],
              methods=["finetune", "si", "joint"], progress=False)
    full = scenarios.run(out=tmp_path / "full", **kw)
    calls = []

    def kill_in_second_run(i, history):  # domain fine-tuning = tasks 0-4; domain SI dies after 2
        calls.append(i)
        if len(calls) == 8:
            raise Killed

    with pytest.raises(Killed):
        scenarios.run(out=tmp_path / "cut", on_task_end=kill_in_second_run, **kw)
    resumed_calls = []
    resumed = scenarios.run(out=tmp_path / "cut", resume=True,
                            on_task_end=lambda i, h: resumed_calls.append(i), **kw)
    assert resumed_calls == [3, 4] + [0, 1, 2, 3, 4] * 2      # then class fine-tuning and SI
    R = lambda res: {r["label"]: r["R"] for r in res["runs"]}  # noqa: E731
    assert R(resumed) == R(full)
    with pytest.raises(ConfigError, match="steps"):
        scenarios.run(out=tmp_path / "cut", resume=True, **dict(kw, steps=6))


def test_a_run_record_from_another_scenario_is_refused(finished, tmp_path):
    """A task-scenario run copied into the folder of the class-scenario run of the same
    method: --resume names the file and the scenario, and changes nothing."""
    out = tmp_path / "copied"
    shutil.copytree(finished[0], out)
    shutil.rmtree(out / "runs" / "class-finetune-seed0")
    shutil.copytree(out / "runs" / "task-finetune-seed0", out / "runs" / "class-finetune-seed0")
    code, _, err = synapse("scenarios", "--resume", str(out), "--no-progress")
    one_line_error(code, err, "class-finetune-seed0", "run.json", "scenario")
