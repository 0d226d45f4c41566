"""The ``li check`` and ``li compare`` subcommands."""

from __future__ import annotations

import argparse

from li_core.arrays import FLOATING
from li_core.backend import install_command

from .compare import CASES


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


def run_check(args: argparse.Namespace) -> int:
    try:
        import pytest  # noqa: F401 - imported only to check that it is installed
    except ImportError:
        print(f"li check needs pytest: {install_command('test')}")
        return 2
    from .runner import run_conformance

    return run_conformance(
        _split(args.backends), dtypes=args.dtype, devices=args.device, pytest_args=["-q" if args.quiet else "-v"]
    )


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the same inputs through every available backend and print the max absolute and relative error "
        "against the float64 reference per backend, dtype and case (a weighted scan of random inputs; slow "
        "neurons, dt*tau_inv down to 1e-4); exit 1 if any is outside tolerance."
    )
    parser.add_argument("--backends", action="append", default=[], help="comma-separated backend names (default: all)")
    parser.add_argument(
        "--dtype", action="append", default=[], choices=FLOATING, help="dtype (repeatable; default: declared)"
    )
    parser.add_argument("--steps", type=int, default=1000, help="time steps of the weighted scan (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", action="append", default=[], choices=CASES, help="only this case (repeatable)")


def run_compare(args: argparse.Namespace) -> int:
    from .compare import compare, format_table

    rows = compare(
        _split(args.backends) or None, args.dtype or None, steps=args.steps, seed=args.seed, cases=args.case or CASES
    )
    print(format_table(rows))
    return 0 if all(row.ok for row in rows) else 1
