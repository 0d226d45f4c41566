"""Shared fixtures: a clean registry and selection state for every test.

The tests' processes, and the processes they start, load the compiled
loops before their first scan (``LI_NUMBA_BACKGROUND=0``) rather than run
the loop of array operations meanwhile: a test that checks which path ran
sees the same one every time (tests/test_first_call.py checks the loading).
"""

import os

import pytest

from li_core.registry import registry

os.environ.setdefault("LI_NUMBA_BACKGROUND", "0")


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry rebuilt from scratch (and again after the test)."""
    monkeypatch.delenv("LI_BACKEND", raising=False)
    registry.reset()
    yield registry
    registry.reset()
