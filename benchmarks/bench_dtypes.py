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
    the rates ladder: per-neuron ``dt*tau_inv`` on a half-decade ladder from
    1 down to 1e-K (membrane rates ascending where the synaptic ones descend,
    plus a neuron slow and one fast in both), random inputs with mean 0.5, a
    random start state and ``v_leak``. Each cell is the float32 voltages'
    error as a multiple of the float32 tolerance
    (:func:`li_core.testing.tolerances.error_ratio`) against the float64
    ``numpy`` backend, on each path: the default (the compiled loops, when
    numba imports), the compiled loops off (the blocked scan over the NumPy
    loop), the blocked scan off too (the NumPy loop), and the ``dask``
    backend with time chunks of 1,000 and 10,000 steps (NumPy blocks on the
    default path).
``gradients``
    the same measure for the gradients of a random weighted sum of all
    voltages on the ``torch`` backend (CPU), ``d/dxs`` and ``d/dtau_mem_inv``,
    float32 against float64 on the default path, on the same three paths.
``dask``
    the ``dask`` backend (100 time chunks of 1,000 steps) against the
    ``numpy`` backend in float64 and in float32 (what
    ``tests/test_dask_backend.py`` checks).

The report goes to docs/results/dtypes.json (see benchmarks/recording.py).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from recording import CLOCKS, medians, table, write_report

import li_backends.compiled as compiled
import li_backends.numpy as numpy_backend
from li_core import LIParameters, LIState, li_scan
from li_core.testing.tolerances import error_ratio

DT = 1e-3
SHAPE = (1000, 32, 1024)
#: (slowest rate 1e-K as K, steps): the ladder of the slow-neuron tables
LADDER = ((4, 20_000), (4, 100_000), (5, 100_000), (6, 1_000_000), (9, 100_000))
GRADIENT_LADDER = ((5, 100_000), (9, 100_000))
#: path -> (compiled loops, blocked scan)
PATHS = {"default": (True, True), "compiled off": (False, True), "blocked off": (False, False)}
#: each path as the tables name it
LABELS = {
    "default": "default (compiled loops)",
    "compiled off": "compiled off (blocked scan)",
    "blocked off": "blocked off too (loop)",
}
DASK_CHUNKS = (1_000, 10_000)


def speed(repeats: int, clock: Callable[[], float], figures: dict[str, float]) -> list[list[Any]]:
    x = np.random.default_rng(0).normal(size=SHAPE)
    fns: dict[str, Callable[[], object]] = {}
    for dtype in ("float16", "float32", "float64"):
        xd = x.astype(dtype)
        fns[f"numpy {dtype}"] = lambda xd=xd: li_scan(xd, backend="numpy")
        fns[f"numpy {dtype} copy"] = xd.copy
    torch = _torch()
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


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _dask() -> Any:
    try:
        import dask.array
    except ImportError:
        return None
    return dask


@contextlib.contextmanager
def path(name: str) -> Iterator[None]:
    """The compiled loops and the blocked scan (of the ``numpy`` and, when
    installed, ``torch`` backends) on or off as :data:`PATHS` says."""
    use_compiled, blocked = PATHS[name]
    torch_ops: Any = importlib.import_module("li_backends.torch.ops") if _torch() is not None else None
    saved = compiled.ENABLED, numpy_backend.BLOCKED, getattr(torch_ops, "BLOCKED", None)
    compiled.ENABLED, numpy_backend.BLOCKED = use_compiled, blocked
    if torch_ops is not None:
        torch_ops.BLOCKED = blocked
    try:
        yield
    finally:
        compiled.ENABLED, numpy_backend.BLOCKED = saved[:2]
        if torch_ops is not None:
            torch_ops.BLOCKED = saved[2]


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


def numpy_scan(xs: Any, state: LIState, p: LIParameters, name: str = "default") -> np.ndarray:
    with path(name):
        return li_scan(xs, state, None, p, DT, backend="numpy")[0]


def dask_scan(xs: Any, state: LIState, p: LIParameters, chunk: int) -> np.ndarray:
    dask = _dask()
    return dask.compute(li_scan(dask.array.from_array(xs, chunks=(chunk, -1)), state, None, p, DT)[0])[0]


def slow_accuracy(figures: dict[str, float]) -> list[list[Any]]:
    """The float32 voltages on the ladder, each path against the float64 ``numpy`` backend."""
    rows = []
    for decade, steps in LADDER:
        case = ladder_case(decade, steps)
        exact = numpy_scan(*case)
        case32 = as_dtype(*case, "float32")
        results = {name: numpy_scan(*case32, name) for name in PATHS}
        if _dask() is not None:
            results.update({f"dask {chunk:,}": dask_scan(*case32, chunk) for chunk in DASK_CHUNKS})
        cells = [f"1e-{decade}, {steps:,}"]
        for name, got in results.items():
            ratio = error_ratio(got, exact, "float32")
            figures[f"float32 rates to 1e-{decade}, {steps} steps: {name}: v / tolerance"] = ratio
            cells.append(f"{ratio:.3g}")
        rows.append(cells)
    return rows


def torch_gradients(case: tuple[np.ndarray, LIState, LIParameters], dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """``d/dxs`` and ``d/dtau_mem_inv`` of a random weighted sum of all voltages on the ``torch`` backend."""
    torch = _torch()
    xs, state, p = case

    def tensor(value: np.ndarray, grad: bool = False) -> Any:
        return torch.tensor(value, dtype=getattr(torch, dtype), requires_grad=grad)

    x, tau_mem_inv = tensor(xs, True), tensor(p.tau_mem_inv, True)
    weights = tensor(np.random.default_rng(1).normal(size=xs.shape))
    q = LIParameters(tensor(p.tau_syn_inv), tau_mem_inv, tensor(p.v_leak))
    voltages, _ = li_scan(x, LIState(tensor(state.v), tensor(state.i)), None, q, DT, backend="torch")
    (voltages * weights).sum().backward()
    return x.grad.numpy(), tau_mem_inv.grad.numpy()


def gradient_accuracy(figures: dict[str, float]) -> list[list[Any]]:
    """The float32 gradients on the ladder, each path against the default float64 ones."""
    if _torch() is None:
        return []
    rows = []
    for decade, steps in GRADIENT_LADDER:
        case = ladder_case(decade, steps)
        exact = torch_gradients(case, "float64")
        cells = [f"1e-{decade}, {steps:,}"]
        for name in PATHS:
            with path(name):
                got = torch_gradients(case, "float32")
            for what, g, want in zip(("d/dxs", "d/dtau_mem_inv"), got, exact):
                ratio = error_ratio(g, want, "float32")
                figures[f"float32 rates to 1e-{decade}, {steps} steps: torch {name}: {what} / tolerance"] = ratio
                cells.append(f"{ratio:.3g}")
        rows.append(cells)
    return rows


def dask_against_numpy(figures: dict[str, float]) -> list[list[Any]]:
    """The ``dask`` backend (100 time chunks) against the ``numpy`` backend in its own dtype."""
    if _dask() is None:
        return []
    rows = []
    for dtype, decade in (("float64", 9), ("float32", 4)):
        case = as_dtype(*ladder_case(decade, 100_000), dtype)
        ratio = error_ratio(dask_scan(*case, 1_000), numpy_scan(*case), dtype)
        figures[f"{dtype}, rates to 1e-{decade}: dask against the numpy backend: v / tolerance"] = ratio
        rows.append([f"{dtype}, rates to 1e-{decade}", f"{ratio:.2g}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="process")
    parser.add_argument("--json", default=None, help="where to store the report (default docs/results/dtypes.json)")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    paths = list(LABELS.values())
    dask_paths = [f"dask, {chunk:,}-step chunks" for chunk in DASK_CHUNKS] if _dask() is not None else []
    gradient_paths = [f"{LABELS[name]}: {what}" for name in PATHS for what in ("d/dxs", "d/dtau_mem_inv")]
    tables = {
        "speed": table(
            ["backend", "float16 / bfloat16", "float32", "float64"], speed(args.repeats, CLOCKS[args.clock], figures)
        ),
        "slow": table(["rates down to, steps", *paths, *dask_paths], slow_accuracy(figures)),
        "gradients": table(["rates down to, steps", *gradient_paths], gradient_accuracy(figures)),
        "dask": table(["100,000 steps in 100 time chunks", "voltages / tolerance"], dask_against_numpy(figures)),
    }
    settings = {
        "repeats": args.repeats,
        "clock": args.clock,
        "shape": list(SHAPE),
        "dt": DT,
        "numpy": np.__version__,
        "compiled loops": compiled.unavailable() or "on",
    }
    for name, stored in tables.items():
        print(f"\n{name}\n" + "\n".join(" | ".join(row) for row in [stored["headers"], *stored["rows"]]))
    print("\nstored in", write_report("dtypes", settings, figures, tables, args.json))


if __name__ == "__main__":
    main()
