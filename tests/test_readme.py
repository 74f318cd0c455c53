"""README's Python examples are executed, so what a reader copies works; its links and those of
docs/ lead somewhere, and CI runs the test command README gives."""
import pathlib
import re
import shlex

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
PAGES = [README] + sorted((ROOT / "docs").glob("*.md"))


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_readme_example_runs(k, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                          # results folders land here
    exec(compile(BLOCKS[k], f"README.md python block {k + 1}", "exec"), {"__name__": "readme"})


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files(page):
    """Every relative link or image of README and docs/ names a file of the repository."""
    text = page.read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
               if "://" not in t]
    missing = [t for t in targets if not (page.parent / t).resolve().exists()]
    assert targets or page != README                    # the pattern finds README's links
    assert not missing, f"{page.name}: links to missing files {missing}"


def test_ci_runs_the_test_commands_readme_gives():
    """README's first shell block says how to run the tests; .ci/run runs exactly that."""
    quick = re.search(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    readme = [shlex.split(part) for x in quick.group(1).splitlines() if "pytest" in x
              for part in x.split("#")[0].split("&&")]
    ci = [shlex.split(x.split("#")[0]) for x in (ROOT / ".ci" / "run").read_text().splitlines()
          if x.strip() and not x.lstrip().startswith(("#", "set ", "cd "))]
    drop = {"-q", "python", "-m"}                        # quiet flags and the interpreter
    strip = lambda argv: [a for a in argv if a not in drop]  # noqa: E731
    assert [strip(argv) for argv in ci] == [strip(argv) for argv in readme]
