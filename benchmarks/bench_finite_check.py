"""What checking array parameters for NaN and inf costs a scan.

    python benchmarks/bench_finite_check.py [--repeats 21]

``li_scan`` with per-neuron array parameters (``tau_mem_inv``,
``tau_syn_inv`` and ``v_leak`` of shape ``[N]``, float32), timed with the
check (:func:`li_core.validation.check_finite`, as shipped) and without it
(the function replaced by one that returns its argument), the two runs
interleaved so that a noisy machine slows both alike. Two workloads, on
NumPy and on torch on the CPU (when installed):

- W1: ``T=1000``, batch 32, 1024 neurons (the benchmarks' feed-forward scan);
- small: ``T=100``, batch 8, 256 neurons.

Prints the median seconds of each and their difference relative to the
scan without the check, ``(with - without) / without`` (noisy: it is the
difference of two noisy medians), then the median time of the three checks
alone (timed in a loop) and that as a share of the scan. The target is a
share under 2 %.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import li_core
from li_core import LIParameters, li_scan, validation

WORKLOADS = {"W1": (1000, 32, 1024), "small": (100, 8, 256)}


def inputs(library: str, steps: int, batch: int, neurons: int) -> tuple[Any, LIParameters]:
    """Random inputs and per-neuron parameters in ``library`` (float32)."""
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(steps, batch, neurons)).astype(np.float32)
    fields = (
        rng.uniform(50, 200, neurons).astype(np.float32),
        rng.uniform(100, 300, neurons).astype(np.float32),
        rng.normal(0, 0.1, neurons).astype(np.float32),
    )
    if library == "torch":
        import torch

        return torch.from_numpy(xs), LIParameters(*(torch.from_numpy(f) for f in fields))
    return xs, LIParameters(*fields)


def interleaved(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median seconds of ``fn()`` with and without the check, timed
    alternately (the order flipping each round) after one warm-up each."""
    times: dict[bool, list[float]] = {True: [], False: []}
    shipped = validation.check_finite
    for k in range(repeats + 1):
        for checked in (True, False) if k % 2 else (False, True):
            validation.check_finite = shipped if checked else (lambda name, value: value)
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if k:
                times[checked].append(elapsed)
    validation.check_finite = shipped
    return statistics.median(times[True]), statistics.median(times[False])


def check_alone(p: LIParameters, repeats: int, inner: int = 200) -> float:
    """Median seconds of checking the three parameters once (``inner`` calls per timing)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            for k, value in enumerate(p):
                validation.check_finite(LIParameters._fields[k], value)
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    libraries = ["numpy"]
    if any(info.name == "torch" and info.available for info in li_core.list_backends()):
        libraries.append("torch")
    print(f"{'library':<8} {'workload':<8} {'with check':>12} {'without':>12} {'diff':>8} {'check':>12} {'share':>8}")
    for library in libraries:
        for workload, shape in WORKLOADS.items():
            xs, p = inputs(library, *shape)

            def scan(xs: Any = xs, p: LIParameters = p) -> Any:
                return li_scan(xs, None, None, p, dt=1e-3)

            with_check, without = interleaved(scan, args.repeats)
            alone = check_alone(p, args.repeats)
            print(
                f"{library:<8} {workload:<8} {with_check * 1e3:10.3f}ms {without * 1e3:10.3f}ms "
                f"{(with_check - without) / without:8.2%} {alone * 1e6:10.1f}us {alone / without:8.3%}"
            )


if __name__ == "__main__":
    main()
