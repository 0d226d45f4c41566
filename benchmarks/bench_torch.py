"""PyTorch backend speed on the CPU, measured side by side in one run.

    python benchmarks/bench_torch.py [--repeats 9] [--max-seconds 10] [--threads N] [--no-norse]

Workloads (float32, default parameters, state None):

1. training: forward + backward of ``li_scan(x)[0].sum()``, T=500, batch 16,
   4096 neurons; targets: >= 50x faster than Norse's ``LI`` module and
   within 4x of ``x.clone()`` (the step loop is shown for information);
2. forward: ``li_scan(x)``, T=1000, batch 32, 1024 neurons; target: within
   2x of ``x.clone()``;
3. small forward: T=100, batch 8, 256 neurons; target: >= 3x faster than
   Norse's ``LI`` module (and a small training run, for information).

Yardsticks on the same tensor: ``x.clone()``; the step loop, one Euler step
at a time (the contract's step, docs/contract.md section 1, written in torch
ops, differentiated by autograd for training); when norse is installed,
Norse 1.1's ``LI`` module and Norse's own step, ``li_feed_forward_step`` in a
Python loop over ``x.unbind(0)`` (:mod:`li_core.bench.peers`). The module
reads ``input_tensor[ts]`` step by step, and the backward of each read is a
gradient the size of the whole sequence, so its training time grows with
``T**2``: ``norse LI / norse step`` shows how much of its figure that is. ``li_scan`` runs the compiled loops where numba
imports (:mod:`li_backends.compiled`); ``li_scan, torch ops`` is the same
call with them switched off (``li_backends.compiled.ENABLED``), timed beside
it. For the small workloads both torch-op algorithms are also timed on their
own (``loop`` and ``blocked``, the time-blocked scan forced through
``li_backends.torch.ops``; the automatic choice runs the loop for 2048
neurons per step). ``--threads`` sets torch's and numba's threads.
``benchmarks/bench_long.py`` times few neurons over long runs.

The fast candidates of a workload (``x.clone()`` and ``li_scan``) are timed
in interleaved rounds after a warm-up, so a noisy neighbour slows them alike.
The slow baselines run afterwards, for every workload: their per-step tensors
leave a large free heap behind, after which big allocations stop paying page
faults, and the fast candidates must all be timed in the same allocator state.
They get the same warm-up and rounds, but one whose timed runs have taken
``--max-seconds`` runs no more rounds, and its line says on how many runs its
median rests. Figures are medians; ratios are of medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

import torch

from li_backends import compiled
from li_backends.torch import ops
from li_core import LIParameters, li_scan
from li_core.bench.peers import norse_forwards
from li_core.blocked_scan import CHUNK_SCALE

P = LIParameters()
DT = 1e-3


class Workload(NamedTuple):
    title: str
    shape: tuple[int, int, int]
    train: bool
    ratios: list[tuple[str, str, float | None]]  # (slow, fast, target)
    algorithms: bool = False  # also time the loop and blocked paths on their own
    repeats_factor: int = 1


WORKLOADS = [
    Workload(
        "training fwd+bwd, T=500, batch 16, 4096 neurons",
        (500, 16, 4096),
        True,
        [
            ("norse LI", "li_scan", 50),
            ("norse step", "li_scan", None),
            ("norse LI", "norse step", None),
            ("step loop", "li_scan", None),
            ("li_scan", "x.clone()", 4),
            ("li_scan, torch ops", "x.clone()", None),
        ],
    ),
    Workload(
        "forward, T=1000, batch 32, 1024 neurons",
        (1000, 32, 1024),
        False,
        [
            ("li_scan", "x.clone()", 2),
            ("li_scan, torch ops", "x.clone()", None),
            ("norse LI", "li_scan", None),
            ("norse step", "li_scan", None),
            ("step loop", "li_scan", None),
        ],
    ),
    Workload(
        "small forward, T=100, batch 8, 256 neurons",
        (100, 8, 256),
        False,
        [
            ("norse LI", "li_scan", 3),
            ("norse step", "li_scan", None),
            ("step loop", "li_scan", 3),
            ("li_scan, loop", "li_scan, blocked", None),
        ],
        algorithms=True,
        repeats_factor=5,
    ),
    Workload(
        "small training fwd+bwd, T=100, batch 8, 256 neurons",
        (100, 8, 256),
        True,
        [
            ("norse LI", "li_scan", None),
            ("norse step", "li_scan", None),
            ("norse LI", "norse step", None),
            ("step loop", "li_scan", None),
            ("li_scan, loop", "li_scan, blocked", None),
        ],
        algorithms=True,
        repeats_factor=5,
    ),
]


def step_loop(xs: torch.Tensor) -> torch.Tensor:
    """The Euler step applied one time step at a time (what Norse's ``LI``
    does), in the increment form."""
    v = torch.zeros_like(xs[0])
    i = torch.zeros_like(xs[0])
    voltages = []
    for x in xs:
        j = i + x
        v = v + DT * P.tau_mem_inv * ((P.v_leak - v) + j)
        i = j + (-DT * P.tau_syn_inv) * j
        voltages.append(v)
    return torch.stack(voltages)


def scan(xs: torch.Tensor) -> torch.Tensor:
    return li_scan(xs, backend="torch")[0]


def forced(algorithm: str, fn: Callable) -> Callable:
    """``fn`` with the scan forced onto one algorithm of torch ops, without
    the compiled loops (``blocked``: chunks of ``CHUNK_SCALE * sqrt(T)``
    steps whatever the neuron count; ``auto``: the automatic choice)."""

    def length(steps: int, neurons: int) -> int:
        return max(1, round(CHUNK_SCALE * steps**0.5)) if algorithm == "blocked" else 0

    def run(x):
        saved = ops.chunk_length, compiled.ENABLED
        if algorithm != "auto":
            ops.chunk_length = length
        compiled.ENABLED = False
        try:
            return fn(x)
        finally:
            ops.chunk_length, compiled.ENABLED = saved

    return run


def runner(fn: Callable, x: torch.Tensor, train: bool) -> Callable[[], None]:
    """``fn(x)``, or forward + backward of ``fn(x).sum()`` with respect to ``x``."""
    if not train:
        return lambda: fn(x)

    def run():
        x.grad = None
        fn(x).sum().backward()

    return run


def seconds(
    candidates: dict[str, Callable], repeats: int, max_seconds: float | None = None
) -> dict[str, tuple[float, int]]:
    """Median seconds per candidate, and the number of timed runs behind it,
    over ``repeats`` interleaved rounds after one warm-up call each; a
    candidate whose timed runs have taken ``max_seconds`` sits out the
    remaining rounds."""
    for fn in candidates.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            if max_seconds is not None and sum(times[name]) >= max_seconds:
                continue
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(ts), len(ts)) for name, ts in times.items()}


def report(
    title: str, times: dict[str, tuple[float, int]], repeats: int, ratios: list[tuple[str, str, float | None]]
) -> None:
    """The medians (with their number of runs where a run was too long to
    repeat ``repeats`` times), then ``slow / fast`` ratios with their targets
    (a lower bound when the fast one is li_scan, else an upper bound)."""
    print(title)
    for name, (value, runs) in times.items():
        short = f"   ({runs} of {repeats} runs: too long to repeat)" if runs < repeats else ""
        print(f"  {name:<22}{value * 1e3:10.2f} ms{short}")
    for slow, fast, target in ratios:
        if slow in times and fast in times:
            goal = "" if target is None else f"   (target {'>=' if fast == 'li_scan' else '<='} {target:g}x)"
            print(f"  {slow + ' / ' + fast:<40}{times[slow][0] / times[fast][0]:8.2f}x{goal}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--max-seconds", type=float, default=10.0, help="a slow baseline repeats no more once its runs took this long"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch's and numba's threads (default: theirs)")
    parser.add_argument("--no-norse", action="store_true", help="skip Norse even when it is installed")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    slow: dict[str, Callable] = {"step loop": step_loop}
    norse = None if args.no_norse else norse_forwards(P, "cpu")
    if norse is not None:
        slow.update({"norse LI": norse["norse_"], "norse step": norse["norse_step_"]})
    elif not args.no_norse:
        print("norse is not installed; comparing with the step loop only\n")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {compiled.threads(args.threads)}\n")

    def tensor(workload: Workload) -> torch.Tensor:
        x = torch.randn(workload.shape, generator=torch.Generator().manual_seed(0))
        return x.requires_grad_(workload.train)

    results = []
    for workload in WORKLOADS:
        x = tensor(workload)
        fast = {"x.clone()": x.detach().clone, "li_scan": runner(scan, x, workload.train)}
        if compiled.unavailable() is None:
            fast["li_scan, torch ops"] = runner(forced("auto", scan), x, workload.train)
        if workload.algorithms:
            for name in ("loop", "blocked"):
                fast[f"li_scan, {name}"] = runner(forced(name, scan), x, workload.train)
        with torch.set_grad_enabled(workload.train):
            results.append(seconds(fast, args.repeats * workload.repeats_factor))
    for workload, times in zip(WORKLOADS, results):
        x = tensor(workload)
        repeats = args.repeats * workload.repeats_factor
        with torch.set_grad_enabled(workload.train):
            baselines = {name: runner(fn, x, workload.train) for name, fn in slow.items()}
            times.update(seconds(baselines, repeats, args.max_seconds))
        report(workload.title, times, repeats, workload.ratios)


if __name__ == "__main__":
    main()
