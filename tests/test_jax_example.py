"""The third-party example backend (examples/li-jax-backend), installed as a
real distribution, passes ``li check jax``."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("li_jax_backend", reason="install it with: pip install ./examples/li-jax-backend")


def test_jax_backend_is_registered_from_its_own_distribution():
    import li_core

    rows = {row.name: row for row in li_core.list_backends()}
    assert rows["jax"].distribution == "li-jax-backend" and rows["jax"].available


def test_the_installed_example_is_this_source():
    """A stale installation would check yesterday's code."""
    import li_jax_backend

    source = Path(__file__).parents[1] / "examples" / "li-jax-backend" / "li_jax_backend" / "__init__.py"
    installed = Path(li_jax_backend.__file__)
    assert installed.read_text() == source.read_text(), (
        f"reinstall: pip install ./examples/li-jax-backend ({installed})"
    )


def test_li_check_passes_for_the_jax_example():
    done = subprocess.run(
        [sys.executable, "-m", "li_core", "check", "jax", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
