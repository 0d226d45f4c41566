"""Every built-in backend runs the shipped conformance suite (unavailable
ones, e.g. cupy without a GPU, are skipped with their reason). Third-party
backends run it through ``li check NAME``."""

from li_core.backend import DISTRIBUTION
from li_core.registry import registry
from li_core.testing.conformance import *  # noqa: F403  (collects the suite's tests here)
from li_core.testing.conformance import parametrize_targets


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        built_in = [name for name, entry in registry.backends.items() if entry.distribution == DISTRIBUTION]
        parametrize_targets(metafunc, built_in)
