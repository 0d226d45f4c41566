"""CuPy backend speed on a CUDA device, against copying the same array.

    python benchmarks/bench_cupy.py [--repeats 30]

``li_scan`` over T=1000 steps, float32, for batch 32 x 1024 neurons and for
batch 32 x 32768 neurons (about 1M neurons), next to ``cupy.copy`` of the
input: the scan reads the input once and writes the voltages once, as a copy
does, so the ratio tells how close the scan gets to the device's copy
bandwidth (goal: at most 1.4x). Each run is timed by CUDA events on the
current stream after a synchronised warm-up (which also compiles the
kernels); medians over repeats, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np

from li_core import li_scan
from li_core.registry import get_backend

SIZES = {"1024 neurons": 1024, "~1M neurons": 32768}


def median_ms(cupy, fn, repeats: int) -> float:
    """Median milliseconds of ``fn`` by CUDA events, after a warm-up."""
    fn()
    cupy.cuda.Device().synchronize()
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop))
    return statistics.median(times)


def bench(cupy, label: str, neurons: int, repeats: int) -> None:
    """Print copy and scan times for inputs [1000, 32, neurons]."""
    xs = cupy.asarray(np.random.default_rng(0).normal(size=(1000, 32, neurons)).astype(np.float32))
    copy = median_ms(cupy, lambda: cupy.copy(xs), repeats)
    scan = median_ms(cupy, lambda: li_scan(xs, backend="cupy"), repeats)
    gigabytes = 2 * xs.nbytes / 1e9  # read once, write once
    print(f"  {label:13s} ({xs.nbytes / 1e6:7.1f} MB in)")
    print(f"    cupy.copy  {copy:9.3f} ms   {gigabytes / (copy / 1e3):7.1f} GB/s")
    print(f"    li_scan    {scan:9.3f} ms   {gigabytes / (scan / 1e3):7.1f} GB/s   {scan / copy:5.2f}x copy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    reason = get_backend("cupy").availability()
    if reason is not None:
        print(f"bench_cupy: skipped, the cupy backend cannot run here: {reason}")
        return 0
    import cupy

    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()
    print(f"li_scan (cupy), T=1000, batch 32, float32, on {name}; medians of {args.repeats} runs")
    for label, neurons in SIZES.items():
        bench(cupy, label, neurons, args.repeats)
        cupy.get_default_memory_pool().free_all_blocks()
    return 0


if __name__ == "__main__":
    sys.exit(main())
