"""Host overhead per call: ``li_scan`` and friends next to their floors,
measured in the same run.

    python benchmarks/bench_host.py [--backends torch,numpy] [--devices cpu,cuda] [--repeats 9] [--quick]

The grid: for T in {1, 16, 256} and N in {8, 512, 4096} (batch 2, float32,
default parameters, state None), every available backend on every device it
has is timed against the floor of any fused op written in Python: one
``torch.autograd.Function`` with one elementwise op each way (``2*x`` and
``2*g``), or for other libraries one op; on torch also training with three
``[N]`` parameter tensors that require grad. The goal rows: on torch at
T=4, B=2, N=8 the ``li_scan`` forward, its training with parameter
gradients and a training step of ``LI``, ``LICell`` and ``LILinearCell``
(goal 3x their floor); on NumPy ``li_feed_forward_step`` on [8, 256]
beside the hand-written step (goal 1.25x) and the first call in a fresh
process beside the same with ``LI_NUMBA=0`` (goal +0.3 s). Each group runs
in interleaved rounds (:func:`li_core.bench.host.interleaved`); figures are
medians of the time per call, ratios are of medians. The same tables are
``li bench --workloads host``.
"""

from __future__ import annotations

import argparse

from li_core import bench
from li_core.bench.host import GOAL_HEADERS, HOST_HEADERS, goal_table, host_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", help="comma-separated backends (default: every available one)")
    parser.add_argument("--devices", help="comma-separated device kinds (default: all)")
    parser.add_argument("--repeats", type=int, default=9, help="interleaved rounds per cell (default 9)")
    parser.add_argument("--quick", action="store_true", help="a small grid, for a smoke test")
    args = parser.parse_args()
    report = bench.run(
        args.backends.split(",") if args.backends else None,
        ["host"],
        repeats=args.repeats,
        devices=args.devices.split(",") if args.devices else None,
        quick=args.quick,
        progress=False,
    )
    print(f"bench_host: {bench.describe_settings(report)}\n")
    print(bench.format_table(HOST_HEADERS, host_table(report)))
    goals = goal_table(report)
    if goals:
        print()
        print(bench.format_table(GOAL_HEADERS, goals))
    for row in report["results"]:
        if row["status"] != "ok":
            print(f"{row['status']}: {row['backend']} {row['device'] or ''}: {row['reason']}")


if __name__ == "__main__":
    main()
