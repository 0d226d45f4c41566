"""Speed and accuracy by dtype: the figures of docs/dtypes.md and of the accuracy paragraph of docs/dask.md.

    python benchmarks/bench_dtypes.py [--repeats 5] [--clock process|wall] [--json PATH]

``speed``
    one ``li_scan`` of ``li bench``'s ``feedforward`` workload (T = 1000,
    batch 32, 1024 neurons, the default parameters, starting at rest) on the
    ``numpy`` backend in float16, float32 and float64 and on the ``torch``
    backend (CPU, one thread) in bfloat16, float32 and float64, each beside a
    copy of its input; the median of ``--repeats`` interleaved rounds after a
    warm-up, process CPU time by default.
``slow``
    per-neuron ``dt*tau_inv`` on a half-decade ladder from 1 down to 1e-9 (or
    1e-4; membrane rates ascending where the synaptic ones descend, plus a
    neuron slow and one fast in both), 100,000 steps of random inputs with
    mean 0.5, the error as a fraction of the tolerance: the ``dask`` backend
    (100 time chunks of 1000 steps, when Dask is installed) against the
    ``numpy`` backend in float64 and in float32 (what
    ``tests/test_dask_backend.py`` checks), and in float32 against the float64
    ``numpy`` backend, beside the ``numpy`` backend's default (blocked) path
    and its loop.

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


def as_dtype(xs: np.ndarray, state: LIState, p: LIParameters, dtype: str) -> tuple[Any, LIState, LIParameters]:
    return xs.astype(dtype), LIState(*(s.astype(dtype) for s in state)), LIParameters(*(q.astype(dtype) for q in p))


def numpy_scan(xs: Any, state: LIState, p: LIParameters, blocked: bool = True) -> np.ndarray:
    saved, numpy_backend.BLOCKED = numpy_backend.BLOCKED, blocked
    try:
        return li_scan(xs, state, None, p, DT, backend="numpy")[0]
    finally:
        numpy_backend.BLOCKED = saved


def slow_accuracy(figures: dict[str, float]) -> list[list[Any]]:
    """Errors as fractions of the tolerance (see the module docstring)."""
    try:
        import dask
        import dask.array as da
    except ImportError:
        dask = None

    def dask_scan(xs: Any, state: LIState, p: LIParameters) -> np.ndarray | None:
        if dask is None:
            return None
        return dask.compute(li_scan(da.from_array(xs, chunks=(1000, -1)), state, None, p, DT)[0])[0]

    rows = []

    def row(name: str, got: np.ndarray | None, want: np.ndarray, dtype: str) -> None:
        if got is not None:
            ratio = error_ratio(got, want, dtype)
            figures[f"{name}: v / tolerance"] = ratio
            rows.append([name, f"{ratio:.2g}"])

    case9 = ladder_case(9, 100_000)
    exact = numpy_scan(*case9)
    row("float64, rates to 1e-9: dask against the numpy backend", dask_scan(*case9), exact, "float64")
    case4 = as_dtype(*ladder_case(4, 100_000), "float32")
    row("float32, rates to 1e-4: dask against the numpy backend", dask_scan(*case4), numpy_scan(*case4), "float32")
    case9_32 = as_dtype(*case9, "float32")
    row("float32, rates to 1e-9: numpy (blocked) against float64", numpy_scan(*case9_32), exact, "float32")
    row("float32, rates to 1e-9: numpy loop against float64", numpy_scan(*case9_32, blocked=False), exact, "float32")
    row("float32, rates to 1e-9: dask against float64", dask_scan(*case9_32), exact, "float32")
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
        "slow": table(["100,000 steps, 100 time chunks for dask", "voltages / tolerance"], slow_accuracy(figures)),
    }
    settings = {"repeats": args.repeats, "clock": args.clock, "shape": list(SHAPE), "dt": DT, "numpy": np.__version__}
    for name, stored in tables.items():
        print(f"\n{name}\n" + "\n".join(" | ".join(row) for row in [stored["headers"], *stored["rows"]]))
    print("\nstored in", write_report("dtypes", settings, figures, tables, args.json))


if __name__ == "__main__":
    main()
