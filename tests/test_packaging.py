"""kernels/ ships inside the wheel as ``synapse_kernels`` and is found from an installed copy."""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for item in ("setup.cfg", "setup.py", "pyproject.toml", "README.md", "synapse", "kernels"):
        path = os.path.join(ROOT, item)
        if os.path.isdir(path):
            shutil.copytree(path, src / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif os.path.exists(path):
            shutil.copy(path, src / item)
    out = tmp_path_factory.mktemp("wheel")
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(out), str(src)], check=True, capture_output=True,
                       timeout=300)
    except subprocess.CalledProcessError as err:
        pytest.fail(f"pip wheel failed:\n{err.stderr.decode()[-2000:]}")
    (whl,) = out.glob("*.whl")
    return whl


def test_wheel_contains_the_kernels_under_their_own_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("__init__", "si", "optim", "cuda", "cpu"):
        assert f"synapse_kernels/{module}.py" in names
    assert not any("harness" in n for n in names)               # test-only code stays in tests/
    assert not any(n.startswith("kernels/") for n in names)     # no generic top-level name
    top = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("top_level.txt"))).decode().split()
    assert sorted(top) == ["synapse", "synapse_kernels"]


def test_installed_copy_finds_its_kernels(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    code = ("import synapse._kernels as k, synapse_kernels, synapse;"
            "print(synapse.__file__); print(k.kernels.__file__)")
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert all(path.startswith(str(target)) for path in out), out
