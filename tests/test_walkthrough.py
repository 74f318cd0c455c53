"""The walkthrough from the paper to the code runs as a user runs it, and every claim in it holds
(each one is an assert inside the script)."""
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_walkthrough_runs_and_every_claim_holds():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    done = subprocess.run([sys.executable, str(ROOT / "demos" / "walkthrough.py")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for section in ("1. quadratic", "2. training loop", "3. where", "3a. ReLU kinks",
                    "3b. minibatches", "4. negative omega", "5. multi-head", "6. xi and c"):
        assert any(line.startswith(section) for line in lines), (section, done.stdout)
    assert lines[-1] == "walkthrough: every claim checked"
