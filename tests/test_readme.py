"""The README's Python example runs and does what its comments say."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - running the README's own example is the test
    assert namespace["voltages"].shape == (1000, 32, 10)
    assert namespace["state"].v.shape == (32, 10)
    np.testing.assert_array_equal(namespace["state"].v, namespace["voltages"][-1])
