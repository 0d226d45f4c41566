"""Cross-backend equivalence: the same random inputs, generated once in NumPy
float64, through every available backend, each compared with the float64
Array API reference at the SPEC tolerance of its dtype."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from li_core import li_scan, reference
from li_core.registry import registry

from .cases import random_case
from .targets import Target, targets_for
from .tolerances import RTOL, error_ratio


class Comparison(NamedTuple):
    """One backend and dtype against the reference. ``max_abs`` is the largest
    ``|y - r|``, ``max_rel`` the largest ``|y - r| / (|r| + max|r|)`` (the
    SPEC's scaled error) and ``ratio`` that divided by the dtype's rtol:
    ``ok`` means ``ratio <= 1``. ``skipped`` says why a pair was not run."""

    backend: str
    dtype: str
    device: str
    max_abs: float
    max_rel: float
    ratio: float
    ok: bool
    skipped: str | None = None


def _compare_one(target: Target, steps: int, seed: int) -> Comparison:
    case = random_case(steps, (4,), 48, inputs=32, seed=seed)
    given, rounded = target.case(case), target.rounded(case)
    vs, states = li_scan(
        given.xs, given.state, given.weights, given.p, case.dt, backend=target.backend, record_states=True
    )
    expected, expected_states = reference.scan(rounded.xs, rounded.state, rounded.weights, rounded.p, case.dt, True)
    max_abs = max_rel = ratio = 0.0
    for got, want in ((target.numpy(vs), expected), (target.numpy(states.i), expected_states.i)):
        error = np.abs(got - want)
        max_abs = max(max_abs, float(error.max()))
        max_rel = max(max_rel, float((error / (np.abs(want) + np.abs(want).max())).max()))
        ratio = max(ratio, error_ratio(got, want, target.dtype))
    return Comparison(target.backend.name, target.dtype, str(target.device), max_abs, max_rel, ratio, ratio <= 1.0)


def compare(
    backends: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    *,
    steps: int = 1000,
    seed: int = 0,
) -> list[Comparison]:
    """Compare ``backends`` (default: every registered one) in ``dtypes``
    (default: each backend's declared dtypes) over a ``steps``-step weighted
    scan with per-neuron parameters, recording states. Unavailable backends
    and undeclared dtypes come back as skipped rows with the reason."""
    rows = []
    for target, skip in targets_for(list(backends or registry.backends), list(dtypes) if dtypes else None, None):
        if skip:
            rows.append(
                Comparison(target.backend.name, target.dtype, str(target.device), np.nan, np.nan, np.nan, True, skip)
            )
        else:
            rows.append(_compare_one(target, steps, seed))
    return rows


def format_table(rows: Sequence[Comparison]) -> str:
    """A plain-text table of the comparison."""
    header = f"{'backend':<12} {'dtype':<9} {'device':<7} {'max abs err':>12} {'max rel err':>12} {'rtol':>7} {'err/tol':>8}  result"
    lines = [header, "-" * len(header)]
    for r in rows:
        if r.skipped:
            lines.append(
                f"{r.backend:<12} {r.dtype:<9} {r.device:<7} {'':>12} {'':>12} {'':>7} {'':>8}  skipped: {r.skipped}"
            )
        else:
            verdict = "ok" if r.ok else "OUTSIDE TOLERANCE"
            lines.append(
                f"{r.backend:<12} {r.dtype:<9} {r.device:<7} {r.max_abs:12.3e} {r.max_rel:12.3e} "
                f"{RTOL[r.dtype]:7.0e} {r.ratio:8.3f}  {verdict}"
            )
    return "\n".join(lines)
