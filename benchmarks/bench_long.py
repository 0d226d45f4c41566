"""Few neurons, long runs: the plain loop against the time-blocked scan, side by side in one run.

    python benchmarks/bench_long.py [--repeats 9] [--threads 1] [--clock process|wall]

Workloads (float32, per-neuron parameters, state None): 16 neurons x 100,000
steps and 256 neurons x 20,000 steps. For each, in interleaved rounds after a
warm-up: ``x.copy()`` and ``x.clone()`` of the input (the yardsticks), the
``numpy`` backend's ``li_scan``, the ``torch`` backend's forward and forward +
backward of ``li_scan(x)[0].sum()`` (gradients of the input and of the three
per-neuron parameters), each with the blocked scan switched off (``loop``,
through ``li_backends.numpy.BLOCKED`` and ``li_backends.torch.ops.BLOCKED``)
and on (``blocked``). Medians of the process CPU time by default (the machine
is shared: another process's load then costs less than with the wall clock);
ratios are of medians, to the copy of the input in the same library.
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
from li_core import LIParameters, li_scan

WORKLOADS = [(100_000, 16), (20_000, 256)]


def forced(module, blocked: bool, fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` with ``module.BLOCKED`` set to ``blocked`` while it runs."""

    def run():
        saved, module.BLOCKED = module.BLOCKED, blocked
        try:
            return fn()
        finally:
            module.BLOCKED = saved

    return run


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
    for name, blocked in (("loop", False), ("blocked", True)):
        out[f"numpy, {name}"] = forced(numpy_backend, blocked, lambda: li_scan(x, p=p, backend="numpy"))
        with_no_grad = torch.no_grad()(lambda: li_scan(xt, p=pt, backend="torch"))
        out[f"torch forward, {name}"] = forced(torch_ops, blocked, with_no_grad)
        out[f"torch fwd+bwd, {name}"] = forced(torch_ops, blocked, train)
    return out


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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "process" else time.perf_counter
    print(
        f"numpy {np.__version__}, torch {torch.__version__}, {torch.get_num_threads()} torch threads, {args.clock} time"
    )
    for steps, neurons in WORKLOADS:
        times = medians(candidates(steps, neurons), args.repeats, clock)
        print(f"\n{neurons} neurons x {steps:,} steps, float32, per-neuron parameters")
        for name, value in times.items():
            copy = times["x.copy()" if name.startswith("numpy") else "x.clone()"]
            ratio = "" if name.startswith("x.") else f"{value / copy:8.1f}x copy"
            print(f"  {name:<24}{value * 1e3:10.2f} ms{ratio}")
        for what in ("numpy", "torch forward", "torch fwd+bwd"):
            loop, blocked = times[f"{what}, loop"], times[f"{what}, blocked"]
            print(f"  {what + ': loop / blocked':<40}{loop / blocked:8.1f}x")


if __name__ == "__main__":
    main()
