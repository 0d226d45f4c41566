"""Shared fixtures: a clean registry and selection state for every test."""

import pytest

from li_core.registry import registry


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry rebuilt from scratch (and again after the test)."""
    monkeypatch.delenv("LI_BACKEND", raising=False)
    registry.reset()
    yield registry
    registry.reset()
