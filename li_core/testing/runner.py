"""Running the conformance suite from Python (what ``li check`` calls)."""

from __future__ import annotations

from collections.abc import Sequence

from li_core.backend import Backend
from li_core.selection import resolve


def run_conformance(
    backends: Sequence[str | Backend],
    *,
    dtypes: Sequence[str] = (),
    devices: Sequence[str] = (),
    pytest_args: Sequence[str] = (),
    plugins: Sequence[object] = (),
) -> int:
    """Run :mod:`li_core.testing.conformance` on ``backends`` (registered names
    or backend objects) and return pytest's exit code (0: every check passed
    or was skipped with a reason). The report names each passed, failed and
    skipped check; extra pytest ``plugins`` (objects with hook methods) see
    every check's report too."""
    import pytest

    from .pytest_plugin import BackendObjects

    objects = [resolve(b) for b in backends]  # unknown names fail here, before any test
    args = [
        "--pyargs",
        "li_core.testing.conformance",
        "-p",
        "no:cacheprovider",
        "-rfEs",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        *pytest_args,
    ]
    for dtype in dtypes:
        args += ["--li-dtype", dtype]
    for device in devices:
        args += ["--li-device", device]
    return int(pytest.main(args, plugins=[BackendObjects(objects), *plugins]))
