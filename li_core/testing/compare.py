"""Cross-backend equivalence: the same inputs, generated once in NumPy
float64, through every available backend, each compared with the float64
Array API reference at the tolerance of its dtype (the contract
(docs/contract.md), section 4). Four cases: a weighted scan of random inputs
with per-neuron parameters, slow neurons and synapses, and the two long runs
of the conformance suite (rates down to 1e-6 over 10^6 steps, and down to
1e-9 over 100,000), whose float64 yardstick is
:mod:`li_core.testing.long_runs`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from li_core import li_scan, reference
from li_core.arrays import HALF
from li_core.registry import registry

from .cases import Case, ladder_case, random_case, slow_case
from .long_runs import RUNS, long_scan, run_length
from .targets import Target, targets_for
from .tolerances import RTOL, error_ratio

#: the compared cases, in table order
CASES = ("weighted", "slow neurons", *RUNS)


class Comparison(NamedTuple):
    """One backend, dtype and case against the reference. ``max_abs`` is the
    largest ``|y - r|``, ``max_rel`` the largest ``|y - r| / (|r| + max|r|)``
    (the contract's scaled error) and ``ratio`` that divided by the dtype's
    rtol: ``ok`` means ``ratio <= 1``. ``rounding`` is the largest error of
    the reference itself rounded once to the dtype (a result computed in a
    wider type and rounded at the end comes out that close). ``skipped`` says
    why a pair was not run."""

    backend: str
    dtype: str
    device: str
    case: str
    max_abs: float
    max_rel: float
    ratio: float
    ok: bool
    rounding: float = np.nan
    skipped: str | None = None


def _case(name: str, target: Target, steps: int, seed: int) -> tuple[Case, bool]:
    """The case, and whether it is a full-length long run (its yardstick is
    then :func:`~li_core.testing.long_runs.long_scan`)."""
    if name == "weighted":
        return random_case(steps, (4,), 48, inputs=32, seed=seed), False
    if name == "slow neurons":
        return slow_case(1e-2 if target.dtype in HALF else 1e-4, seed=seed), False
    slowest, length, full = run_length(name, target.backend.name)
    return ladder_case(slowest, length, seed=seed), full


def _compare_one(target: Target, name: str, case: Case, long: bool) -> Comparison:
    given, rounded = target.case(case), target.rounded(case)
    vs, states = li_scan(
        given.xs, given.state, given.weights, given.p, case.dt, backend=target.backend, record_states=True
    )
    if long:
        expected, expected_states = long_scan(rounded, record_states=True)
    else:
        expected, expected_states = reference.scan(rounded.xs, rounded.state, rounded.weights, rounded.p, case.dt, True)
    max_abs = max_rel = ratio = rounding = 0.0
    for got, want in ((target.numpy(vs), expected), (target.numpy(states.i), expected_states.i)):
        error = np.abs(got - want)
        max_abs = max(max_abs, float(error.max()))
        max_rel = max(max_rel, float((error / (np.abs(want) + np.abs(want).max())).max()))
        ratio = max(ratio, error_ratio(got, want, target.dtype))
        rounding = max(rounding, float(np.abs(target.numpy(target.array(want)) - want).max()))
    return Comparison(
        target.backend.name, target.dtype, str(target.device), name, max_abs, max_rel, ratio, ratio <= 1.0, rounding
    )


def compare(
    backends: Sequence[str] | None = None,
    dtypes: Sequence[str] | None = None,
    *,
    steps: int = 1000,
    seed: int = 0,
    cases: Sequence[str] = CASES,
) -> list[Comparison]:
    """Compare ``backends`` (default: every registered one) in ``dtypes``
    (default: each backend's declared dtypes), recording states, on

    - ``"weighted"``: a ``steps``-step weighted scan with per-neuron parameters;
    - ``"slow neurons"``: per-neuron ``dt*tau_inv`` from 1 down to 1e-4 (1e-2
      in half precision) over 2/(dt*tau_inv) steps of the slowest;
    - ``"rates to 1e-6"`` and ``"absorption"``: the conformance suite's long
      runs, rates down to 1e-6 over 10^6 steps and down to 1e-9 over 100,000
      (10^4 steps for backends that step in Python), float32 and float64
      only (half precision cannot resolve such rates: skipped rows).

    Rows come case by case. Unavailable backends and undeclared dtypes come
    back as skipped rows with the reason."""
    unknown = [name for name in cases if name not in CASES]
    if unknown:
        raise ValueError(f"cases must be among {CASES}, got {unknown}")
    targets = targets_for(list(backends or registry.backends), list(dtypes) if dtypes else None, None)
    rows = []
    for name in cases:
        for target, skip in targets:
            if not skip and name in RUNS and target.dtype in HALF:
                skip = f"{target.dtype} cannot resolve rates below 1e-2"
            if skip:
                where = (target.backend.name, target.dtype, str(target.device), name)
                rows.append(Comparison(*where, np.nan, np.nan, np.nan, True, skipped=skip))
            else:
                rows.append(_compare_one(target, name, *_case(name, target, steps, seed)))
    return rows


def format_table(rows: Sequence[Comparison]) -> str:
    """A plain-text table of the comparison."""
    header = (
        f"{'backend':<12} {'dtype':<9} {'device':<7} {'case':<13} {'max abs err':>12} {'max rel err':>12} "
        f"{'rtol':>7} {'err/tol':>8}  result"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        start = f"{r.backend:<12} {r.dtype:<9} {r.device:<7} {r.case:<13}"
        if r.skipped:
            lines.append(f"{start} {'':>12} {'':>12} {'':>7} {'':>8}  skipped: {r.skipped}")
        else:
            verdict = "ok" if r.ok else "OUTSIDE TOLERANCE"
            lines.append(f"{start} {r.max_abs:12.3e} {r.max_rel:12.3e} {RTOL[r.dtype]:7.0e} {r.ratio:8.3f}  {verdict}")
    return "\n".join(lines)
