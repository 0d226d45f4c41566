"""The newcomer's path: the README's two commands are what CI runs, its
Python example runs and does what its comments say, and ``li`` alone helps."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def two_commands() -> list[str]:
    """The command lines of the README's "Two commands" section."""
    section = README.read_text().split("## Two commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, "the Two commands section has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_has_two_commands_demo_then_tests():
    demo, tests = two_commands()
    assert demo.endswith("li demo") and '".[plot]"' in demo  # the picture needs matplotlib
    assert tests.endswith("python -m pytest") and "test" in tests


def test_ci_runs_the_readmes_test_command_exactly():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert two_commands()[1] in ci_lines
    # ... and it is the last thing CI runs, so its exit status is CI's
    assert [line for line in ci_lines if line.strip() and not line.startswith("#")][-1] == two_commands()[1]


def test_li_without_arguments_prints_help_and_a_hint():
    done = subprocess.run([sys.executable, "-m", "li_core"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: li")
    assert "li demo" in done.stdout.splitlines()[-1]


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - running the README's own example is the test
    assert namespace["voltages"].shape == (1000, 32, 10)
    assert namespace["state"].v.shape == (32, 10)
    np.testing.assert_array_equal(namespace["state"].v, namespace["voltages"][-1])
