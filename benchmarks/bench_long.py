"""Few neurons, long runs: the compiled loop, the plain loop and the time-blocked scan, side by side in one run.

    python benchmarks/bench_long.py [--repeats 9] [--threads 1] [--clock process|wall] [--json PATH]
    python benchmarks/bench_long.py --grid [--steps 20000] [--threads 1] [--json PATH]

Workloads (float32, per-neuron parameters, state None): 16 neurons x 100,000
steps and 256 neurons x 20,000 steps. For each, in interleaved rounds after a
warm-up: ``x.copy()`` and ``x.clone()`` of the input (the yardsticks), the
``numpy`` backend's ``li_scan``, the ``torch`` backend's forward and forward +
backward of ``li_scan(x)[0].sum()`` (gradients of the input and of the three
per-neuron parameters), each on the compiled loops (``compiled``, where numba
imports; :mod:`li_backends.compiled`), and with them switched off
(``li_backends.compiled.ENABLED``) with the blocked scan switched off
(``loop``, through ``li_backends.numpy.BLOCKED`` and
``li_backends.torch.ops.BLOCKED``) and on (``blocked``). Medians of the
process CPU time by default (the machine is shared: another process's load
then costs less than with the wall clock); ratios are of medians, to the copy
of the input in the same library. ``--threads`` sets torch's and numba's
threads.

``--grid`` measures where each path wins: the ``numpy`` backend's scan over
``--steps`` steps of 1 to 2048 neurons (float32, per-neuron parameters),
compiled, blocked and loop, beside a copy of the input, and very short scans
(8 neurons, 1 to 64 steps), compiled against the loop (docs/model.md).

With ``--grid`` the report is stored in docs/results/compiled.json (``--json
PATH`` elsewhere; see benchmarks/recording.py). The workloads are printed, and
stored only where ``--json PATH`` says: no page quotes them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np
import torch
from recording import CLOCKS, medians, ms, table, write_report

import li_backends.numpy as numpy_backend
import li_backends.torch.ops as torch_ops
from li_backends import compiled
from li_core import LIParameters, li_scan

WORKLOADS = [(100_000, 16), (20_000, 256)]
GRID = [1, 16, 64, 256, 512, 1024, 2048]
#: the very short scans of ``--grid``: steps of this many neurons
SHORT_NEURONS = 8
SHORT_STEPS = [1, 4, 16, 64]
#: the paths: (compiled loops on, blocked scan on)
PATHS = {"compiled": (True, True), "loop": (False, False), "blocked": (False, True)}


def forced(module, path: str, fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` on one of :data:`PATHS` (``module.BLOCKED`` and
    ``li_backends.compiled.ENABLED`` set while it runs)."""
    on, blocked = PATHS[path]

    def run():
        saved = module.BLOCKED, compiled.ENABLED
        module.BLOCKED, compiled.ENABLED = blocked, on
        try:
            return fn()
        finally:
            module.BLOCKED, compiled.ENABLED = saved

    return run


def paths() -> list[str]:
    """The paths to time: without numba, not the compiled one."""
    return list(PATHS) if compiled.unavailable() is None else ["loop", "blocked"]


def short_paths() -> list[str]:
    """The paths of the very short scans: not the blocked one, which runs the
    loop below ``MIN_BLOCKED_STEPS``."""
    return [name for name in paths() if name != "blocked"]


def candidates(steps: int, neurons: int) -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps, neurons)).astype(np.float32)
    p = LIParameters(
        *(rng.uniform(50, 400, neurons).astype(np.float32) for _ in range(2)),
        np.float32(0.0) + 0.1 * rng.normal(size=neurons).astype(np.float32),
    )
    xt = torch.from_numpy(x.copy())
    pt = LIParameters(*(torch.from_numpy(np.array(q)) for q in p))
    trained = LIParameters(*(q.clone().requires_grad_() for q in pt))
    xg = xt.clone().requires_grad_()

    def train():
        for leaf in (xg, *trained):
            leaf.grad = None
        li_scan(xg, p=trained, backend="torch")[0].sum().backward()

    out: dict[str, Callable[[], object]] = {"x.copy()": x.copy, "x.clone()": xt.clone}
    for name in paths():
        out[f"numpy, {name}"] = forced(numpy_backend, name, lambda: li_scan(x, p=p, backend="numpy"))
        with_no_grad = torch.no_grad()(lambda: li_scan(xt, p=pt, backend="torch"))
        out[f"torch forward, {name}"] = forced(torch_ops, name, with_no_grad)
        out[f"torch fwd+bwd, {name}"] = forced(torch_ops, name, train)
    return out


def grid(steps: int, repeats: int, clock: Callable[[], float], figures: dict[str, float]) -> list[list[str]]:
    """The ``numpy`` backend's scan on each path for :data:`GRID` neurons,
    beside a copy of the input; the times and each path's time over the
    compiled loop's go into ``figures``."""
    rng = np.random.default_rng(0)
    names = paths()
    rows = []
    for neurons in GRID:
        x = rng.normal(size=(steps, neurons)).astype(np.float32)
        p = LIParameters(*(rng.uniform(50, 400, neurons).astype(np.float32) for _ in range(2)), 0.0)
        fns = {name: forced(numpy_backend, name, lambda x=x, p=p: li_scan(x, p=p, backend="numpy")) for name in names}
        times = medians({**fns, "copy": x.copy}, repeats, clock)
        for name, value in times.items():
            figures[f"grid, {neurons} neurons, {name}"] = value
            if "compiled" in times and name in ("loop", "blocked"):
                figures[f"grid, {neurons} neurons, {name} / compiled"] = value / times["compiled"]
        rows.append([str(neurons), *(ms(times[name]) for name in (*names, "copy"))])
    if "compiled" in names:
        for name in ("loop", "blocked"):
            ratios = [figures[f"grid, {n} neurons, {name} / compiled"] for n in GRID]
            figures[f"grid, {name} / compiled, least"] = min(ratios)
            figures[f"grid, {name} / compiled, most"] = max(ratios)
    return rows


def short(repeats: int, clock: Callable[[], float], figures: dict[str, float]) -> list[list[str]]:
    """Very short scans of :data:`SHORT_NEURONS` neurons: the ``numpy``
    backend's scan on each path for :data:`SHORT_STEPS` steps (each timing
    covers 100 calls, one being too short for the clock, and there
    are at least 21 rounds: the whole costs milliseconds, and a busy machine
    scatters such short timings)."""
    rng = np.random.default_rng(0)
    names = short_paths()
    rows = []
    for steps in SHORT_STEPS:
        x = rng.normal(size=(steps, SHORT_NEURONS)).astype(np.float32)
        p = LIParameters(*(rng.uniform(50, 400, SHORT_NEURONS).astype(np.float32) for _ in range(2)), 0.0)
        fns = {name: forced(numpy_backend, name, lambda x=x, p=p: li_scan(x, p=p, backend="numpy")) for name in names}
        times = medians(fns, max(repeats, 21), clock, number=100)
        for name, value in times.items():
            figures[f"short, {steps} steps, {name}"] = value
        rows.append([str(steps), *(f"{times[name] * 1e6:.0f} µs" for name in names)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="process")
    parser.add_argument("--grid", action="store_true", help="the numpy paths' crossover instead of the workloads")
    parser.add_argument("--steps", type=int, default=20_000, help="steps of the --grid runs")
    parser.add_argument(
        "--json",
        default=None,
        help="where to store the report (default docs/results/compiled.json with --grid; the workloads: nowhere)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]
    print(
        f"numpy {np.__version__}, torch {torch.__version__}, {torch.get_num_threads()} torch threads, {args.clock} time"
    )
    print(compiled.threads(args.threads))
    settings: dict[str, Any] = {
        "repeats": args.repeats,
        "clock": args.clock,
        "threads": args.threads,
        "dtype": "float32",
        "numpy": np.__version__,
        "torch": torch.__version__,
        "numba": numba_version(),
    }
    figures: dict[str, float] = {}
    if args.grid:
        settings.update(steps=args.steps, short_neurons=SHORT_NEURONS)
        tables = {
            "grid": table(
                ["neurons per step", *paths(), "copy of the input"], grid(args.steps, args.repeats, clock, figures)
            ),
            "short": table([f"steps ({SHORT_NEURONS} neurons)", *short_paths()], short(args.repeats, clock, figures)),
        }
    else:
        tables = {"workloads": table(["workload", "time", "/ copy"], workloads(args.repeats, clock, figures))}
    for title, stored in tables.items():
        print(f"\n{title}\n" + "\n".join(" | ".join(row) for row in [stored["headers"], *stored["rows"]]))
    if args.grid or args.json:
        measured = ["numpy"] if args.grid else ["numpy", "torch"]
        print("\nstored in", write_report("compiled", settings, figures, tables, args.json, backends=measured))


def workloads(repeats: int, clock: Callable[[], float], figures: dict[str, float]) -> list[list[str]]:
    """Every candidate on each of :data:`WORKLOADS`, and its time over the copy of the input."""
    rows = []
    for steps, neurons in WORKLOADS:
        times = medians(candidates(steps, neurons), repeats, clock)
        for name, value in times.items():
            copy = times["x.copy()" if name.startswith("numpy") else "x.clone()"]
            figures[f"{neurons} x {steps}, {name}"] = value
            ratio = ""
            if not name.startswith("x."):
                figures[f"{neurons} x {steps}, {name} / copy"] = value / copy
                ratio = f"{value / copy:.1f}"
            rows.append([f"{neurons} x {steps:,}, {name}", ms(value), ratio])
        fast = "compiled" if "compiled" in paths() else "blocked"
        for what in ("numpy", "torch forward", "torch fwd+bwd"):
            for slow in ("loop", "blocked"):
                if slow != fast:
                    figures[f"{neurons} x {steps}, {what}: {slow} / {fast}"] = (
                        times[f"{what}, {slow}"] / times[f"{what}, {fast}"]
                    )
    return rows


def numba_version() -> str:
    try:
        return metadata.version("numba")
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
