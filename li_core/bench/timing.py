"""Timing a function: :func:`measure` (warm-up, timed runs ended by a device
synchronisation, median and quartiles), the synchronisation and copy of an
array of any library, and the gradient recipe the harness times for training."""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ..arrays import library_name, namespace

#: default time budget of one measurement, in seconds (see measure's max_seconds)
MAX_SECONDS = 10.0


class Timing(NamedTuple):
    """Wall-clock seconds of the timed runs of :func:`measure`."""

    median: float
    q25: float  #: lower quartile
    q75: float  #: upper quartile
    min: float
    max: float
    repeats: int


def measure(
    fn: Callable[[], Any],
    repeats: int = 5,
    sync: Callable[[Any], None] | None = None,
    warmup: int = 1,
    max_seconds: float | None = None,
) -> Timing:
    """Time ``fn()``: ``warmup`` untimed runs, then ``repeats`` timed ones.

    ``sync(result)`` is called after every run, inside the timed region, so
    that asynchronous devices (CUDA, JAX) have finished the work before the
    clock stops; it is also called after the warm-up runs so that no queued
    work leaks into the first timed run.

    ``max_seconds`` bounds the time spent on the timed runs: no new run
    starts once they have taken longer (there is always at least one).
    ``Timing.repeats`` says how many runs were timed.

    >>> from li_core.bench import measure
    >>> timing = measure(lambda: sum(range(1000)), repeats=3)
    >>> timing.repeats, timing.min <= timing.median <= timing.max
    (3, True)
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    sync = sync or no_sync
    budget = math.inf if max_seconds is None else max_seconds
    for _ in range(warmup):
        _run_once(fn, sync)
    times = [_run_once(fn, sync)]
    while len(times) < repeats and sum(times) < budget:
        times.append(_run_once(fn, sync))
    if len(times) > 1:
        q25, _, q75 = statistics.quantiles(times, n=4, method="inclusive")
    else:
        q25 = q75 = times[0]
    return Timing(statistics.median(times), q25, q75, min(times), max(times), len(times))


def _run_once(fn: Callable[[], Any], sync: Callable[[Any], None]) -> float:
    start = time.perf_counter()
    result = fn()
    sync(result)
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def no_sync(result: Any) -> None:
    return None


def synchronizer(x: Any) -> Callable[[Any], None]:
    """The function that waits for the device of ``x`` to finish its queued
    work (it receives the timed function's result and may ignore it)."""
    library = library_name(x)
    if library == "torch":
        kind = x.device.type
        torch = sys.modules["torch"]
        if kind == "cuda":
            where = x.device
            return lambda result: torch.cuda.synchronize(where)
        if kind == "mps":
            return lambda result: torch.mps.synchronize()
        if kind == "xpu":
            return lambda result: torch.xpu.synchronize(x.device)
        return no_sync
    if library == "cupy":
        where = x.device
        return lambda result: where.synchronize()
    if library == "jax":
        jax = sys.modules["jax"]
        return lambda result: jax.block_until_ready(result)
    if library == "dask":  # lazy: the work happens when the result is computed
        return lambda result: result.compute()
    return no_sync


def copier(x: Any) -> Callable[[], Any]:
    """A function returning a fresh copy of ``x`` on its device: the cost of
    reading and writing the data once."""
    library = library_name(x)
    if library in ("numpy", "cupy"):
        return x.copy
    if library == "torch":
        return x.clone
    xp = namespace(x)
    return lambda: xp.asarray(x, copy=True)


def scaled(timing: Timing, factor: float) -> Timing:
    """``timing`` with every time multiplied by ``factor``."""
    t = timing
    return Timing(t.median * factor, t.q25 * factor, t.q75 * factor, t.min * factor, t.max * factor, t.repeats)


def gradient(library: str | None, forward: Callable[[Any], Any], x: Any) -> Callable[[], Any] | None:
    """``d sum(forward(x)) / dx`` as a function of nothing, for the libraries
    whose autograd the harness knows (PyTorch, JAX); None otherwise."""
    if library == "torch":
        leaf = x.detach().requires_grad_(True)

        def torch_gradient() -> Any:
            leaf.grad = None
            forward(leaf).sum().backward()
            return leaf.grad

        return torch_gradient
    if library == "jax":
        jax = sys.modules["jax"]
        gradient = jax.grad(lambda a: forward(a).sum())
        return lambda: gradient(x)
    return None


def timing_fields(prefix: str, timing: Timing) -> dict[str, float]:
    return {
        f"{prefix}median_s": timing.median,
        f"{prefix}q25_s": timing.q25,
        f"{prefix}q75_s": timing.q75,
    }
