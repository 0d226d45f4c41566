"""pytest options for the conformance suite (registered through the
``pytest11`` entry point, so they exist wherever li-neurons is installed).

``pytest --pyargs li_core.testing.conformance --li-backend NAME
[--li-dtype float32] [--li-device cpu]``; without ``--li-backend`` every
registered backend is run (unavailable ones are skipped with their reason).
"""

from __future__ import annotations

from typing import Any

import pytest

BACKENDS_UNDER_TEST = pytest.StashKey[list]()


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("li", "leaky-integrator conformance suite")
    group.addoption("--li-backend", action="append", default=[], help="backend to check (repeatable)")
    group.addoption("--li-dtype", action="append", default=[], help="dtype to check (repeatable)")
    group.addoption("--li-device", action="append", default=[], help="device to check (repeatable)")


class BackendObjects:
    """A pytest plugin object that puts backend objects (not only registered
    names) under test: ``pytest.main(args, plugins=[BackendObjects([...])])``."""

    def __init__(self, backends: list) -> None:
        self.backends = backends

    def pytest_configure(self, config: Any) -> None:
        config.stash[BACKENDS_UNDER_TEST] = self.backends


def chosen_backends(config: Any) -> list:
    """Backend objects or names to check: programmatic, then ``--li-backend``,
    else every registered backend."""
    objects = config.stash.get(BACKENDS_UNDER_TEST, None)
    if objects:
        return list(objects)
    names = [name for option in config.getoption("li_backend", default=[]) for name in option.split(",") if name]
    if names:
        return names
    from li_core.registry import registry

    return list(registry.backends)
