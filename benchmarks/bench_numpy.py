"""NumPy backend speed, measured side by side in one run.

    python benchmarks/bench_numpy.py [--repeats 15]

1. ``li_scan`` T=1000, batch 32, 1024 neurons, float32, against ``x.copy()``
   of the same array and against the step loop, one step at a time
   (``li_core.reference.scan``: a Python loop of array ops, as Norse runs it).
2. The per-call cost of ``li_feed_forward_step`` on an [8, 256] float32 state,
   against the same step written as raw NumPy operations.

Medians over repeats (the machine may be noisy); ratios are of medians.
"""

from __future__ import annotations

import argparse

import numpy as np

from li_core import LIParameters, LIState, li_feed_forward_step, li_scan, reference
from li_core.bench import measure


def median_seconds(fn, repeats: int, inner: int = 1) -> float:
    """Median seconds of one ``fn()``, timing ``inner`` calls at a time."""

    def calls():
        for _ in range(inner):
            fn()

    return measure(calls, repeats=repeats).median / inner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    xs = rng.normal(size=(1000, 32, 1024)).astype(np.float32)
    zero = LIState(np.zeros((32, 1024), np.float32), np.zeros((32, 1024), np.float32))
    copy = median_seconds(lambda: xs.copy(), args.repeats)
    scan = median_seconds(lambda: li_scan(xs, backend="numpy"), args.repeats)
    steps = median_seconds(lambda: reference.scan(xs, zero, None, LIParameters(), 1e-3), max(3, args.repeats // 3))
    print("li_scan, T=1000, batch 32, 1024 neurons, float32")
    print(f"  x.copy()            {copy * 1e3:8.2f} ms")
    print(f"  li_scan (numpy)     {scan * 1e3:8.2f} ms   {scan / copy:5.2f}x copy")
    print(
        f"  step loop           {steps * 1e3:8.2f} ms   {steps / copy:5.2f}x copy   li_scan is {steps / scan:4.1f}x faster"
    )

    x = rng.normal(size=(8, 256)).astype(np.float32)
    state = LIState(rng.normal(size=(8, 256)).astype(np.float32), rng.normal(size=(8, 256)).astype(np.float32))
    p, dt = LIParameters(), 1e-3

    def raw_numpy_step():
        j = state.i + x
        v_new = state.v + dt * p.tau_mem_inv * ((p.v_leak - state.v) + j)
        i_new = j + (-dt * p.tau_syn_inv) * j
        return v_new, LIState(v_new.copy(), i_new)

    inner = 2000
    raw = min(median_seconds(raw_numpy_step, args.repeats, inner) for _ in range(3))
    ours = min(
        median_seconds(lambda: li_feed_forward_step(x, state, backend=None), args.repeats, inner) for _ in range(3)
    )
    print("li_feed_forward_step, [8, 256] float32, per call")
    print(f"  raw NumPy step      {raw * 1e6:8.2f} us")
    print(f"  li_feed_forward_step{ours * 1e6:8.2f} us   overhead {(ours - raw) * 1e6:+.2f} us")


if __name__ == "__main__":
    main()
