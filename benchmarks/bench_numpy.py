"""NumPy backend speed, measured side by side in one run.

    python benchmarks/bench_numpy.py [--repeats 15] [--threads N] [--scaling]

1. ``li_scan`` T=1000, batch 32, 1024 neurons, float32, against ``x.copy()``
   of the same array and against the step loop, one step at a time
   (``li_core.reference.scan``: a Python loop of array ops, as Norse runs it);
   ``li_scan`` on the compiled loops (where numba imports,
   :mod:`li_backends.compiled`, on ``--threads`` threads) and on the
   backend's loop of ufuncs (``li_backends.compiled.ENABLED`` off), timed
   in interleaved rounds with the copy.
2. The per-call cost of ``li_feed_forward_step`` on an [8, 256] float32 state,
   against the same step written as raw NumPy operations.
3. With ``--scaling``: the compiled ``li_scan`` of a large population (T=200,
   batch 32, 65,536 neurons, float32: 1.7 GB per array) on 1 thread and on
   all of numba's, interleaved, against ``x.copy()``.

Medians over repeats (the machine may be noisy); ratios are of medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from li_backends import compiled
from li_core import LIParameters, LIState, li_feed_forward_step, li_scan, reference
from li_core.bench import measure


def median_seconds(fn, repeats: int, inner: int = 1) -> float:
    """Median seconds of one ``fn()``, timing ``inner`` calls at a time."""

    def calls():
        for _ in range(inner):
            fn()

    return measure(calls, repeats=repeats).median / inner


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each of ``fns``, timed in interleaved rounds after a warm-up."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def uncompiled(fn):
    """``fn`` with the compiled loops switched off."""

    def run():
        saved, compiled.ENABLED = compiled.ENABLED, False
        try:
            return fn()
        finally:
            compiled.ENABLED = saved

    return run


def on_threads(count: int, fn):
    """``fn`` with the compiled loops on ``count`` threads."""

    def run():
        import numba

        saved = numba.get_num_threads()
        numba.set_num_threads(count)
        try:
            return fn()
        finally:
            numba.set_num_threads(saved)

    return run


def scaling(repeats: int) -> None:
    """The compiled scan of a large population on 1 thread and on all."""
    import numba

    xs = np.random.default_rng(1).normal(size=(200, 32, 65536)).astype(np.float32)
    everyone = numba.get_num_threads()
    fns = {"x.copy()": xs.copy}
    for count in sorted({1, everyone}):
        fns[f"li_scan, {count} thread(s)"] = on_threads(count, lambda: li_scan(xs, backend="numpy"))
    times = interleaved(fns, repeats)
    print("li_scan, T=200, batch 32, 65,536 neurons, float32, compiled loops")
    for name, value in times.items():
        print(f"  {name:<28}{value * 1e3:9.2f} ms   {value / times['x.copy()']:5.2f}x copy")
    print(
        f"  1 thread / {everyone} threads{times['li_scan, 1 thread(s)'] / times[f'li_scan, {everyone} thread(s)']:14.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="numba's threads for the compiled loops")
    parser.add_argument("--scaling", action="store_true", help="also the large population on 1 and all threads")
    args = parser.parse_args()
    print(compiled.threads(args.threads))
    rng = np.random.default_rng(0)

    xs = rng.normal(size=(1000, 32, 1024)).astype(np.float32)
    zero = LIState(np.zeros((32, 1024), np.float32), np.zeros((32, 1024), np.float32))
    fns = {"x.copy()": xs.copy, "li_scan (numpy)": lambda: li_scan(xs, backend="numpy")}
    if compiled.unavailable() is None:
        fns["li_scan, NumPy loop"] = uncompiled(fns["li_scan (numpy)"])
    times = interleaved(fns, args.repeats)
    steps = median_seconds(lambda: reference.scan(xs, zero, None, LIParameters(), 1e-3), max(3, args.repeats // 3))
    copy, scan = times["x.copy()"], times["li_scan (numpy)"]
    print("li_scan, T=1000, batch 32, 1024 neurons, float32")
    for name, value in times.items():
        print(f"  {name:<20}{value * 1e3:8.2f} ms" + ("" if name == "x.copy()" else f"   {value / copy:5.2f}x copy"))
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
    if args.scaling and compiled.unavailable() is None:
        scaling(max(3, args.repeats // 3))


if __name__ == "__main__":
    main()
