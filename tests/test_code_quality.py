"""The habits the project enforces on every change: ruff's lint rules and
format, and mypy over the packages (configured in pyproject.toml). A new
finding fails the build; the tools come with the ``test`` extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def _ruff() -> str:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if found is None:
        pytest.fail('ruff is not installed: pip install -e ".[test]"')
    return found


def test_ruff_lint_is_clean():
    done = _run(_ruff(), "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_applied():
    done = _run(_ruff(), "format", "--check", "--no-cache", ".")
    assert done.returncode == 0, "run `ruff format .`:\n" + done.stdout + done.stderr


def test_mypy_is_clean():
    done = _run(sys.executable, "-m", "mypy")
    assert done.returncode == 0, 'mypy (pip install -e ".[test]"):\n' + done.stdout + done.stderr
