"""The ``li check`` and ``li compare`` subcommands.

Both exit 0 only when something was checked and every check passed: a
backend, dtype or device that nothing can run on is refused before the run
(status 2, with the reason, e.g. "cupy is unavailable: ..."), and a run in
which every check was skipped fails (status 1), unless ``--allow-skips``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from li_core.arrays import FLOATING
from li_core.backend import install_command
from li_core.errors import UsageError

from .compare import CASES


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


#: about the bytes ``li compare`` holds per step of the weighted scan: float64
#: inputs [4, 32] and a backend's copy, and eight [4, 48] sequences (the
#: reference's and the backend's voltages and currents, their errors)
COMPARE_BYTES_PER_STEP = 8 * (2 * 4 * 32 + 8 * 4 * 48)


def _check_compare_size(steps: int) -> None:
    """:class:`UsageError` where ``--steps`` needs more memory than this machine has."""
    from li_core.demo import physical_memory

    needed, available = steps * COMPARE_BYTES_PER_STEP, physical_memory()
    if available is not None and needed > available:
        raise UsageError(
            f"--steps {steps} needs about {needed / 1e9:.3g} GB of memory, "
            f"more than this machine's {available / 1e9:.3g} GB; choose fewer"
        )


def _add_allow_skips(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-skips",
        action="store_true",
        help="exit 0 even when nothing could run here (every check skipped), for scripts",
    )


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the conformance suite (the contract's sections 2, 4 and 5) against one or more registered backends; "
        "each check is reported as passed, failed or skipped with its reason."
    )
    parser.add_argument("backends", nargs="+", metavar="NAME", help="registered backend name(s)")
    parser.add_argument("--dtype", action="append", default=[], choices=FLOATING, help="only this dtype (repeatable)")
    parser.add_argument("--device", action="append", default=[], help="only this device (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="one line per failure instead of one per check")
    _add_allow_skips(parser)


def nothing_to_check(backends: list[Any], dtypes: list[str], devices: list[str]) -> list[str]:
    """Why nothing of one of ``backends`` (objects) can be checked here with
    these ``dtypes`` and ``devices`` (empty: all it declares), one line each:
    unavailable, no such device or dtype, a device it cannot use."""
    from .targets import targets_for

    lines = []
    for backend in backends:
        reasons = [skip for _, skip in targets_for([backend], dtypes or None, devices or None)]
        if reasons and all(reasons):
            reason = backend.availability()
            if reason is not None:
                hint = backend.install_hint()
                lines.append(f"{backend.name} is unavailable: {reason}" + (f"; to install it: {hint}" if hint else ""))
            else:
                lines.append(f"nothing of {backend.name} can be checked here: {reasons[0]}")
    return lines


class _Outcomes:
    """A pytest plugin counting the checks that passed."""

    def __init__(self) -> None:
        self.passed = 0

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" and report.passed:
            self.passed += 1


def run_check(args: argparse.Namespace) -> int:
    try:
        import pytest  # noqa: F401 - imported only to check that it is installed
    except ImportError:
        raise UsageError(f"li check needs pytest: {install_command('test')}") from None
    from li_core.selection import resolve

    from .runner import run_conformance

    backends = [resolve(name) for name in _split(args.backends)]  # unknown names fail here
    problems = nothing_to_check(backends, args.dtype, args.device)
    if problems and not args.allow_skips:
        raise UsageError("; ".join(problems) + " (--allow-skips accepts that)")
    outcomes = _Outcomes()
    status = run_conformance(
        backends,
        dtypes=args.dtype,
        devices=args.device,
        pytest_args=["-q" if args.quiet else "-v"],
        plugins=[outcomes],
    )
    if status == 0 and outcomes.passed == 0 and not args.allow_skips:
        print(
            "li check: no check ran: every one was skipped (reasons above); --allow-skips accepts that", file=sys.stderr
        )
        return 1
    return status


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the same inputs through every available backend and print the max absolute and relative error "
        "against the float64 reference per backend, dtype and case (a weighted scan of random inputs; slow "
        "neurons, dt*tau_inv down to 1e-4; long runs, down to 1e-6 over 10^6 steps and to 1e-9 over 10^5); "
        "exit 1 if any is outside tolerance."
    )
    parser.add_argument("--backends", action="append", default=[], help="comma-separated backend names (default: all)")
    parser.add_argument(
        "--dtype", action="append", default=[], choices=FLOATING, help="dtype (repeatable; default: declared)"
    )
    parser.add_argument(
        "--steps", type=_positive_int, default=1000, help="time steps of the weighted scan (default 1000)"
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--case", action="append", default=[], choices=CASES, help="only this case (repeatable)")
    _add_allow_skips(parser)


def run_compare(args: argparse.Namespace) -> int:
    from .compare import compare, format_table

    _check_compare_size(args.steps)
    rows = compare(
        _split(args.backends) or None, args.dtype or None, steps=args.steps, seed=args.seed, cases=args.case or CASES
    )
    print(format_table(rows))
    if all(row.skipped for row in rows) and not args.allow_skips:
        reasons = sorted({row.skipped for row in rows if row.skipped})
        print(f"li compare: nothing was compared, every row was skipped: {'; '.join(reasons)}", file=sys.stderr)
        return 1
    return 0 if all(row.ok for row in rows) else 1
