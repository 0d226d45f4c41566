"""Few neurons, long runs: the compiled loop, the plain loop and the time-blocked scan, side by side in one run.

    python benchmarks/bench_long.py [--repeats 9] [--threads 1] [--clock process|wall]
    python benchmarks/bench_long.py --grid [--steps 20000] [--threads 1]

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
compiled, blocked and loop, beside a copy of the input (docs/model.md).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

import li_backends.numpy as numpy_backend
import li_backends.torch.ops as torch_ops
from li_backends import compiled
from li_core import LIParameters, li_scan

WORKLOADS = [(100_000, 16), (20_000, 256)]
GRID = [1, 16, 64, 256, 512, 1024, 2048]
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


def grid(steps: int, repeats: int, clock: Callable[[], float]) -> None:
    """The ``numpy`` backend's scan on each path for :data:`GRID` neurons."""
    rng = np.random.default_rng(0)
    names = paths()
    print(f"\nnumpy scan, {steps:,} steps, float32, per-neuron parameters (ms)")
    print(f"  {'neurons':>8}" + "".join(f"{name:>11}" for name in names) + f"{'copy':>11}")
    for neurons in GRID:
        x = rng.normal(size=(steps, neurons)).astype(np.float32)
        p = LIParameters(*(rng.uniform(50, 400, neurons).astype(np.float32) for _ in range(2)), 0.0)
        fns = {name: forced(numpy_backend, name, lambda x=x, p=p: li_scan(x, p=p, backend="numpy")) for name in names}
        times = medians({**fns, "copy": x.copy}, repeats, clock)
        print(f"  {neurons:>8}" + "".join(f"{times[name] * 1e3:11.3f}" for name in (*names, "copy")))


def medians(fns: dict[str, Callable[[], object]], repeats: int, clock: Callable[[], float]) -> dict[str, float]:
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--clock", choices=("process", "wall"), default="process")
    parser.add_argument("--grid", action="store_true", help="the numpy paths' crossover instead of the workloads")
    parser.add_argument("--steps", type=int, default=20_000, help="steps of the --grid runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "process" else time.perf_counter
    print(
        f"numpy {np.__version__}, torch {torch.__version__}, {torch.get_num_threads()} torch threads, {args.clock} time"
    )
    print(compiled.threads(args.threads))
    if args.grid:
        grid(args.steps, args.repeats, clock)
        return
    for steps, neurons in WORKLOADS:
        times = medians(candidates(steps, neurons), args.repeats, clock)
        print(f"\n{neurons} neurons x {steps:,} steps, float32, per-neuron parameters")
        for name, value in times.items():
            copy = times["x.copy()" if name.startswith("numpy") else "x.clone()"]
            ratio = "" if name.startswith("x.") else f"{value / copy:8.1f}x copy"
            print(f"  {name:<24}{value * 1e3:10.2f} ms{ratio}")
        for what in ("numpy", "torch forward", "torch fwd+bwd"):
            for slow in ("loop", "blocked"):
                fast = "compiled" if "compiled" in paths() else "blocked"
                if slow != fast:
                    ratio = times[f"{what}, {slow}"] / times[f"{what}, {fast}"]
                    print(f"  {f'{what}: {slow} / {fast}':<40}{ratio:8.1f}x")


if __name__ == "__main__":
    main()
