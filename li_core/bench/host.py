"""The host-overhead workload: microseconds per ``li_scan`` call, forward
and training, over a grid of sequence lengths ``T`` and neuron counts ``N``,
side by side with the floor of any fused op written in Python, measured in
the same run on the same array.

The floor is one elementwise op each way: for torch one
``torch.autograd.Function`` whose forward is ``2*x`` and whose backward is
``2*g``; for other libraries ``2*x`` through the array namespace (and its
gradient by the library's autograd, where the harness has a recipe). Each
cell times the two candidates in interleaved rounds, each round a batch of
calls ended by one device synchronisation, so a noisy neighbour slows both
alike; the figure is the median over rounds of the time per call.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from ..api import li_scan
from ..arrays import library_name, namespace
from .timing import gradient, synchronizer
from .workloads import DT, PARAMETERS, Workload

#: a round of calls lasts at least this long (seconds)
ROUND_SECONDS = 2e-3


def floor(x: Any) -> Callable[[Any], Any]:
    """The Python-level floor for arrays like ``x``: one elementwise op (and,
    for torch, one ``autograd.Function`` with one op back)."""
    if library_name(x) == "torch":
        return _torch_floor().apply
    xp = namespace(x)
    return lambda a: xp.multiply(a, 2.0)


def _torch_floor() -> Any:
    function: Any = sys.modules["torch"].autograd.Function

    class Floor(function):
        @staticmethod
        def forward(ctx: Any, a: Any) -> Any:
            return a * 2.0

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            return g * 2.0

    return Floor


def interleaved(candidates: dict[str, Callable[[], Any]], sync: Callable[[Any], None], rounds: int) -> dict[str, float]:
    """Median seconds per call of each candidate, timed in interleaved rounds
    after one warm-up call each; a round is as many calls as last about
    :data:`ROUND_SECONDS` (the calibration is the warm-up)."""
    calls = {}
    for name, fn in candidates.items():
        fn()
        start = time.perf_counter()
        sync(fn())
        calls[name] = max(1, int(ROUND_SECONDS / max(time.perf_counter() - start, 1e-7)))
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(calls[name] - 1):
                fn()
            sync(fn())
            times[name].append((time.perf_counter() - start) / calls[name])
    return {name: statistics.median(values) for name, values in times.items()}


def time_host(backend: Any, device: Any, workload: Workload, dtype: str, repeats: int, seed: int) -> dict[str, Any]:
    """The fields of one host row: per grid cell, ``li_scan``'s and the
    floor's microseconds per forward call (and per training call, forward and
    backward of the sum with respect to the input, where the library has a
    gradient recipe) and their ratios."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cells = []
    for steps, neurons in workload.grid():
        x = backend.asarray(rng.standard_normal((steps, workload.batch, neurons)).astype(dtype), device=device)
        library, sync = library_name(x), synchronizer(x)
        base = floor(x)

        def scan(a: Any) -> Any:
            return li_scan(a, None, None, PARAMETERS, DT, backend=backend)[0]

        cell: dict[str, Any] = {"steps": steps, "neurons": neurons}
        forward = interleaved(
            {"li_scan": functools.partial(scan, x), "floor": functools.partial(base, x)}, sync, repeats
        )
        cell.update(forward_us=forward["li_scan"] * 1e6, floor_forward_us=forward["floor"] * 1e6)
        cell["forward_ratio"] = forward["li_scan"] / forward["floor"]
        train, train_floor = gradient(library, scan, x), gradient(library, base, x)
        if backend.autograd and train is not None and train_floor is not None:
            training = interleaved({"li_scan": train, "floor": train_floor}, sync, repeats)
            cell.update(training_us=training["li_scan"] * 1e6, floor_training_us=training["floor"] * 1e6)
            cell["training_ratio"] = training["li_scan"] / training["floor"]
        cells.append(cell)
    return {"status": "ok", "host": cells}


#: the columns of :func:`host_table`
HOST_HEADERS = ["backend", "device", "T", "N", "forward", "floor", "x floor", "training", "floor", "x floor"]


def host_table(report: dict[str, Any]) -> list[list[str]]:
    """The host-overhead rows of a :func:`li_core.bench.run` report, as
    text under :data:`HOST_HEADERS`."""

    def us(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} us"

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    table = []
    for row in report["results"]:
        for cell in row.get("host", ()):
            table.append(
                [
                    row["backend"],
                    row["device"],
                    str(cell["steps"]),
                    str(cell["neurons"]),
                    us(cell["forward_us"]),
                    us(cell["floor_forward_us"]),
                    ratio(cell["forward_ratio"]),
                    us(cell.get("training_us")),
                    us(cell.get("floor_training_us")),
                    ratio(cell.get("training_ratio")),
                ]
            )
    return table
