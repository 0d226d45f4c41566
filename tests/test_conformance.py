"""Every registered built-in backend runs the shipped conformance suite
(unavailable ones, e.g. cupy without a GPU, are skipped with their reason)."""

from li_core.testing.conformance import *  # noqa: F401,F403  (collects the suite's tests here)
from li_core.testing.conformance import pytest_generate_tests  # noqa: F401
