"""The ``li`` command line (also ``python -m li_core``).

``li backends`` lists the registered backends, ``li demo`` simulates a
population and plots it, ``li bench`` times the standard workloads,
``li check`` runs the conformance suite against one backend and
``li compare`` checks every backend against the float64 reference.
Every subcommand is a small ``_cmd_*`` function taking the parsed arguments
and returning the exit status: 0, 1 when something failed or nothing ran,
2 for a user mistake (as argparse), which is reported in one line on stderr
(:class:`UsageError`) before any work.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from .arrays import FLOATING
from .backend import install_command
from .errors import StoreChangedError, UsageError


class _Parser(argparse.ArgumentParser):
    """argparse's parser, reporting a mistake in one line (not the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _checked(check: Any, *args: Any, **kwargs: Any) -> Any:
    """``check(*args, **kwargs)`` with its ``ValueError`` as a :class:`UsageError`."""
    try:
        return check(*args, **kwargs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _split(text: str) -> list[str]:
    """``"a,b"`` as ``["a", "b"]``, for comma-separated options."""
    return [part.strip() for part in text.split(",") if part.strip()]


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


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text}")
    return value


def _no_matplotlib(what: str) -> int:
    print(
        f"li: matplotlib is not installed, so {what} was not written. To get it: {install_command('plot')}",
        file=sys.stderr,
    )
    return 0


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401 - imported only to check that it is installed
    except ImportError:
        return False
    return True


# -- li backends ---------------------------------------------------------------------------


BACKEND_COLUMNS = (
    "name",
    "available",
    "version",
    "distribution",
    "priority",
    "dtypes",
    "devices",
    "autograd",
    "blocks",
)


def backend_row(info: Any, unavailable: str = "no") -> list[Any]:
    """One ``BackendInfo`` as table cells, in ``BACKEND_COLUMNS`` order."""
    return [
        info.name,
        "yes" if info.available else unavailable,
        info.version or "-",
        info.distribution,
        info.priority,
        ", ".join(info.dtypes),
        ", ".join(info.devices),
        "yes" if info.autograd else "no",
        ", ".join(info.block_libraries) or "-",
    ]


def _cmd_backends(args: argparse.Namespace) -> int:
    from . import get_backend, list_backends
    from .bench import format_table

    infos = list_backends()
    if args.json:
        print(json.dumps([info._asdict() for info in infos], indent=2))
        return 0
    print(format_table(BACKEND_COLUMNS, [backend_row(info, unavailable="no (see below)") for info in infos]))
    for info in infos:
        backend = get_backend(info.name)
        if not info.available:
            hint = backend.install_hint()
            print(f"\n{info.name} is unavailable: {info.reason}" + (f"\n  to install it: {hint}" if hint else ""))
        elif note := backend.notes():
            print(f"\n{info.name}: {note}")
    return 0


# -- li demo -------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import demo, get_backend

    chunked = bool(get_backend(args.backend).block_libraries)  # a chunked backend streams into a Zarr store
    plotting = _has_matplotlib()
    output = _checked(demo.check_plot_path, args.output, "-o/--output") if plotting else args.output
    if chunked:
        store = _checked(demo.check_store, args.store, overwrite=args.overwrite, argument="--store")
        if plotting and os.path.abspath(output) in (store, os.path.abspath(args.store)):
            raise UsageError(f"-o/--output {output!r} and --store {args.store!r} name the same path; choose two")
    _checked(demo.check_size, args.neurons, args.inputs, args.steps, chunked)
    _checked(demo.check_device, args.backend, args.device)
    sizes = {"neurons": args.neurons, "inputs": args.inputs, "steps": args.steps, "seed": args.seed}
    if chunked:
        with _terminate_as_exit():
            result = demo.simulate_into_store(
                args.store, args.backend, device=args.device, overwrite=args.overwrite, **sizes
            )
    else:
        result = demo.simulate(args.backend, device=args.device, **sizes)
    try:
        print(demo.summary(result))
        if plotting:
            written = demo.plot(result, output)
    except StoreChangedError as exc:  # (another run replaced the store before this one read it)
        print(f"li demo: {exc}", file=sys.stderr)
        return 1
    if not plotting:
        return _no_matplotlib(f"the plot {output}")
    print(f"wrote {written}")
    return 0


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM (``kill``, a job scheduler's stop) raises ``SystemExit(143)``
    inside the block, as Ctrl-C raises KeyboardInterrupt, so that the demo
    store is settled (the previous one kept, the partial one removed)
    before the process ends. Only in the main thread, where Python runs
    signal handlers."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def stop(number: int, frame: Any) -> None:
        raise SystemExit(128 + number)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- li bench ------------------------------------------------------------------------------


def _check_bench_arguments(args: argparse.Namespace) -> None:
    """:class:`UsageError` for a workload, dtype or device kind that nothing
    could be timed on, or a chart that could not be written."""
    from . import bench, demo, list_backends

    unknown = [w for w in args.workloads or () if w not in bench.WORKLOADS]
    if unknown:
        raise UsageError(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(bench.WORKLOADS)}")
    if args.dtype not in FLOATING:
        raise UsageError(f"--dtype must be one of {', '.join(FLOATING)}, got {args.dtype!r}")
    kinds = sorted({kind for info in list_backends() for kind in info.devices})
    unknown = [device for device in args.devices or () if device not in kinds]
    if unknown:
        raise UsageError(f"no backend has device(s) {', '.join(unknown)}; the registered ones have {', '.join(kinds)}")
    if args.plot and _has_matplotlib():
        args.plot = _checked(demo.check_plot_path, args.plot, "--plot")


def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    _check_bench_arguments(args)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    report = bench.run(
        args.backends,
        args.workloads,
        repeats=repeats,
        dtype=args.dtype,
        devices=args.devices,
        quick=args.quick,
        max_seconds=args.max_seconds,
        progress=not args.quiet,
    )
    print(json.dumps(report, indent=2) if args.json else bench.format_results(report))
    rows = report["results"]
    timed = any(row["status"] == "ok" for row in rows)
    if args.plot and timed:
        if _has_matplotlib():
            bench.plot_results(report, args.plot)
            print(f"wrote {args.plot}", file=sys.stderr)
        else:
            _no_matplotlib(f"the chart {args.plot}")
    if any(row["status"] == "error" for row in rows):
        return 1
    if not timed and not args.allow_skips:
        reasons = sorted({row.get("reason") or row["status"] for row in rows}) or [
            "no backend, device and workload fit"
        ]
        print(f"li bench: nothing was timed ({'; '.join(reasons)}); --allow-skips accepts that", file=sys.stderr)
        return 1
    return 0


# -- li check / li compare (the conformance suite, li_core.testing) ------------------------


def _testing_commands() -> tuple[Any, str | None]:
    """``li_core.testing.commands`` and None, or None and why it cannot be used."""
    try:
        from .testing import commands
    except ImportError as exc:
        if (exc.name or "").startswith("li_core.testing"):
            return None, "not available yet (li_core.testing.commands is not part of this installation)"
        return None, f"cannot be loaded: {type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a broken suite must not take the other subcommands down
        return None, f"cannot be loaded: {type(exc).__name__}: {exc}"
    return commands, None


def _add_testing_command(subcommands: Any, name: str, help_text: str) -> None:
    parser = subcommands.add_parser(name, help=help_text, description=help_text)
    commands, why = _testing_commands()
    if commands is None:
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        parser.epilog = f"li {name} is {why}."
        parser.set_defaults(handler=lambda args: _unavailable(name, why))
        return
    getattr(commands, f"add_{name}_arguments")(parser)
    parser.set_defaults(handler=getattr(commands, f"run_{name}"))


def _unavailable(name: str, why: str | None) -> int:
    print(f"li {name} is {why}", file=sys.stderr)
    return 2


# -- the parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``li`` argument parser with every subcommand."""
    from . import __version__

    parser = _Parser(
        prog="li",
        description="Leaky-integrator neurons on any array framework: list the backends, run a demo, "
        "benchmark, check a backend against the contract, compare backends.",
        epilog="Run 'li COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"li-neurons {__version__}")
    subcommands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    backends = subcommands.add_parser(
        "backends",
        help="list the registered backends and what they support",
        description="List every registered backend: whether it is available here (or why not), the version "
        "of its array library, the distribution that registered it, its priority in the automatic choice, "
        "and its dtypes, devices and autograd support.",
    )
    backends.add_argument("--json", action="store_true", help="print the records as JSON")
    backends.set_defaults(handler=_cmd_backends)

    demo = subcommands.add_parser(
        "demo",
        help="simulate a population driven by Poisson spikes and plot it",
        description="Simulate leaky integrators driven by Poisson spike trains through random weights for one "
        "second of model time (T=1000 steps of 1 ms, one li_scan call), print a summary and write a PNG "
        f"with the input raster and a few voltage traces (needs matplotlib: {install_command('plot')}). A chunked backend "
        "(dask) streams the voltages into a Zarr store with a progress bar, parallel over time and neurons.",
    )
    demo.add_argument("--backend", default="numpy", metavar="NAME", help="backend to run on (default: numpy)")
    demo.add_argument("--device", default=None, help="device for the backend's arrays (default: the backend's own)")
    demo.add_argument("-o", "--output", default="li-demo.png", metavar="PATH", help="PNG file (default: %(default)s)")
    demo.add_argument("--neurons", type=_positive_int, default=1000, metavar="N", help="neurons (default: %(default)s)")
    demo.add_argument("--inputs", type=_positive_int, default=100, metavar="M", help="inputs (default: %(default)s)")
    demo.add_argument(
        "--steps", type=_positive_int, default=1000, metavar="T", help="time steps (default: %(default)s)"
    )
    demo.add_argument("--seed", type=_non_negative_int, default=0, metavar="S", help="random seed (default: 0)")
    demo.add_argument(
        "--store",
        default="li-demo.zarr",
        metavar="PATH",
        help="Zarr store for the voltages of a chunked backend such as dask (default: %(default)s); a previous "
        "demo store there is replaced once the new one is complete, any other existing path is refused",
    )
    demo.add_argument(
        "--overwrite", action="store_true", help="allow --store to replace an existing path that is not a demo store"
    )
    demo.set_defaults(handler=_cmd_demo)

    from . import bench as bench_module
    from .bench import WORKLOADS

    bench = subcommands.add_parser(
        "bench",
        help="time the standard workloads on every available backend",
        description="Time li_scan on the standard workloads on every available backend and device, next to "
        "copying the same input on the same device and the one-step-at-a-time reference loop "
        "(li_core.reference.scan), with device synchronisation. Workloads: "
        + "; ".join(f"{w.name}: {w.title} {w.shape}" for w in WORKLOADS.values())
        + ". The training workload runs on autograd backends only.",
    )
    bench.add_argument(
        "--backends",
        type=_split,
        metavar="A,B",
        help="comma-separated backends (default: all but array_api, which is the reference loop itself)",
    )
    bench.add_argument(
        "--workloads", type=_split, metavar="W,...", help=f"comma-separated workloads (default: {','.join(WORKLOADS)})"
    )
    bench.add_argument("--devices", type=_split, metavar="D,...", help="only these device kinds, e.g. cpu,cuda")
    bench.add_argument(
        "--dtype", default="float32", help=f"dtype of the arrays: {', '.join(FLOATING)} (default: float32)"
    )
    bench.add_argument(
        "--repeats", type=_positive_int, metavar="N", help="timed runs per measurement (default: 5, --quick: 2)"
    )
    bench.add_argument(
        "--max-seconds",
        type=_positive_seconds,
        default=bench_module.MAX_SECONDS,
        metavar="S",
        help="stop repeating a measurement once it has taken S seconds (default: %(default)g)",
    )
    bench.add_argument("--quick", action="store_true", help="much smaller workloads, for a smoke test")
    bench.add_argument("--json", action="store_true", help="print the report as JSON (machine, settings, results)")
    bench.add_argument("--plot", metavar="PATH", help="also write a bar chart (PNG) to PATH; needs matplotlib")
    bench.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    bench.add_argument(
        "--allow-skips", action="store_true", help="exit 0 even when every measurement was skipped (for scripts)"
    )
    bench.set_defaults(handler=_cmd_bench)

    _add_testing_command(
        subcommands, "check", "run the conformance suite against one backend (does it honour the contract?)"
    )
    _add_testing_command(
        subcommands,
        "compare",
        "run the same random inputs through every backend and compare with the float64 reference",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``li`` with ``argv`` (default: the process arguments); the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        print("\nNew here? Start with `li demo`: one second of leaky integrators, summarised and plotted.")
        return 0
    from .errors import BackendNotFoundError, BackendUnavailableError

    try:
        status = int(args.handler(args) or 0)
        sys.stdout.flush()  # (here, where a closed pipe can still be caught)
    except (BackendNotFoundError, BackendUnavailableError, UsageError) as exc:
        print(f"li {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _reader_gone()
    return status


def _reader_gone() -> int:
    """The status after the reader of standard output went away (``li demo |
    head -1``): quietly, as a Unix tool killed by SIGPIPE (128 + 13); the
    rest of the output goes nowhere, so that Python's exit does not fail
    flushing it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # 128 + SIGPIPE (13)


if __name__ == "__main__":
    sys.exit(main())
