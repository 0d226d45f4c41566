"""Speed and accuracy by dtype: the figures of docs/dtypes.md and of the accuracy paragraph of docs/dask.md.

    python benchmarks/bench_dtypes.py [--repeats 5] [--clock process|wall] [--json PATH]

``speed``
    one ``li_scan`` of ``li bench``'s ``feedforward`` workload (T = 1000,
    batch 32, 1024 neurons, the default parameters, starting at rest) on the
    ``numpy`` backend in float16, float32 and float64 and on the ``torch``
    backend (CPU, one thread) in bfloat16, float32 and float64, each beside a
    copy of its input; the median of ``--repeats`` interleaved rounds after a
    warm-up, process CPU time by default.
``slow float32``
    per-neuron ``dt*tau_inv`` on a half-decade ladder from 1 down to 1e-9
    (membrane rates ascending where the synaptic ones descend, plus a neuron
    slow and one fast in both), 100,000 steps of random inputs with mean 0.5,
    float32, as a fraction of the float32 tolerance against the float64
    ``numpy`` backend: the ``numpy`` backend (its default path), its loop,
    and the ``dask`` backend with 100 time chunks of 1000 steps (when Dask is
    installed).

The report goes to docs/results/dtypes.json (see benchmarks/recording.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
from recording import CLOCKS, medians, table, write_report

import li_backends.numpy as numpy_backend
from li_core import LIParameters, LIState, li_scan
from li_core.testing.tolerances import error_ratio

DT = 1e-3
SHAPE = (1000, 32, 1024)


def speed(repeats: int, clock: Callable[[], float], figures: dict[str, float]) -> list[list[Any]]:
    x = np.random.default_rng(0).normal(size=SHAPE)
    fns: dict[str, Callable[[], object]] = {}
    for dtype in ("float16", "float32", "float64"):
        xd = x.astype(dtype)
        fns[f"numpy {dtype}"] = lambda xd=xd: li_scan(xd, backend="numpy")
        fns[f"numpy {dtype} copy"] = xd.copy
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(1)
        for dtype in ("bfloat16", "float32", "float64"):
            xt = torch.from_numpy(x).to(getattr(torch, dtype))
            fns[f"torch {dtype}"] = torch.no_grad()(lambda xt=xt: li_scan(xt, backend="torch"))
            fns[f"torch {dtype} copy"] = xt.clone
    times = medians(fns, repeats, clock)
    figures.update({f"{name} (s)": value for name, value in times.items()})
    rows = []
    for backend, half in (("numpy", "float16"), ("torch", "bfloat16")):
        if f"{backend} float32" not in times:
            continue
        cells = [f"`{backend}`"]
        for dtype in (half, "float32", "float64"):
            ratio = times[f"{backend} {dtype}"] / times[f"{backend} {dtype} copy"]
            figures[f"{backend} {dtype} / copy"] = ratio
            cells.append(f"{times[f'{backend} {dtype}']:.3f} s ({ratio:.1f}x copy)")
        rows.append(cells)
    return rows


def ladder_case(slowest_decade: int, steps: int) -> tuple[np.ndarray, LIState, LIParameters]:
    """The rates ladder in float64 (see the module docstring)."""
    rng = np.random.default_rng(0)
    ladder = np.logspace(0, -slowest_decade, 2 * slowest_decade + 1)
    bottom = 10.0**-slowest_decade
    mem = np.concatenate([ladder, ladder[::-1], [bottom, 1.0]])
    syn = np.concatenate([ladder[::-1], ladder, [bottom, 1.0]])
    xs = rng.normal(0.5, 1.0, size=(steps, mem.size))
    p = LIParameters(syn / DT, mem / DT, rng.uniform(-1, 1, mem.size))
    state = LIState(*(rng.normal(size=mem.size) for _ in range(2)))
    return xs, state, p


def slow_float32(figures: dict[str, float]) -> list[list[Any]]:
    xs, state, p = ladder_case(9, 100_000)
    want, _ = li_scan(xs, state, None, p, DT, backend="numpy")
    x32 = xs.astype(np.float32)
    s32 = LIState(*(s.astype(np.float32) for s in state))
    p32 = LIParameters(*(q.astype(np.float32) for q in p))
    results = {"numpy": li_scan(x32, s32, None, p32, DT, backend="numpy")[0]}
    saved, numpy_backend.BLOCKED = numpy_backend.BLOCKED, False
    try:
        results["numpy, loop"] = li_scan(x32, s32, None, p32, DT, backend="numpy")[0]
    finally:
        numpy_backend.BLOCKED = saved
    try:
        import dask
        import dask.array as da
    except ImportError:
        pass
    else:
        lazy, _ = li_scan(da.from_array(x32, chunks=(1000, -1)), s32, None, p32, DT)
        results["dask, 100 time chunks"] = dask.compute(lazy)[0]
    rows = []
    for name, got in results.items():
        ratio = error_ratio(got, want, "float32")
        figures[f"slow float32 1e-9, {name}: v / tolerance"] = ratio
        rows.append([name, f"{ratio:.2g}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="process")
    parser.add_argument("--json", default=None, help="where to store the report (default docs/results/dtypes.json)")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    tables = {
        "speed": table(
            ["backend", "float16 / bfloat16", "float32", "float64"], speed(args.repeats, CLOCKS[args.clock], figures)
        ),
        "slow float32": table(["float32, rates down to 1e-9", "voltages / tolerance"], slow_float32(figures)),
    }
    settings = {"repeats": args.repeats, "clock": args.clock, "shape": list(SHAPE), "dt": DT, "numpy": np.__version__}
    for name, stored in tables.items():
        print(f"\n{name}\n" + "\n".join(" | ".join(row) for row in [stored["headers"], *stored["rows"]]))
    print("\nstored in", write_report("dtypes", settings, figures, tables, args.json))


if __name__ == "__main__":
    main()
