"""The simulation behind ``li demo``.

A population of leaky integrators listens to Poisson spike trains through
random weights for one second of model time (``T = 1000`` steps of
``dt = 1 ms``), computed by one call of :func:`li_core.li_scan` with
``input_weights``. The inputs are made in NumPy by :func:`make_inputs` and
converted with the backend's ``asarray``, so every backend simulates the same
numbers; the voltages come back through its ``to_numpy``. A chunked (lazy)
backend such as ``dask`` streams the voltages into a Zarr store instead, with
a progress bar (:func:`simulate_into_store`).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, NamedTuple

from .api import li_scan
from .arrays import device as device_of
from .arrays import dtype_name, library_name
from .bench import format_seconds, synchronizer
from .errors import BackendUnavailableError
from .registry import get_backend, list_backends

__all__ = ["DemoResult", "make_inputs", "plot", "simulate", "simulate_into_store", "summary"]

#: firing rate of every input, in Hz
RATE = 20.0
#: :func:`simulate_into_store`'s blocks: this many steps ...
STORE_CHUNK_STEPS = 250
#: ... of this many neurons (16 MiB of float32 voltages)
STORE_CHUNK_NEURONS = 16384


def make_inputs(
    neurons: int = 1000, inputs: int = 100, steps: int = 1000, dt: float = 1e-3, rate: float = RATE, seed: int = 0
) -> tuple[Any, Any]:
    """Float32 NumPy spikes ``[steps, inputs]`` and weights ``[neurons, inputs]``.

    Exactly::

        rng = numpy.random.default_rng(seed)
        spikes = (rng.random((steps, inputs)) < rate * dt).astype(numpy.float32)
        weights = rng.normal(0.5, 1.0, size=(neurons, inputs)).astype(numpy.float32)

    i.e. independent Poisson spike trains at ``rate`` Hz (one Bernoulli trial
    per time bin) and normally distributed weights, mostly excitatory.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    spikes = (rng.random((steps, inputs)) < rate * dt).astype(np.float32)
    weights = rng.normal(0.5, 1.0, size=(neurons, inputs)).astype(np.float32)
    return spikes, weights


class DemoResult(NamedTuple):
    """What :func:`simulate` computed, as NumPy arrays, and how long it took."""

    backend: str
    version: str | None
    device: str
    dtype: str
    spikes: Any  #: [T, inputs]
    weights: Any  #: [neurons, inputs]
    voltages: Any  #: [T, neurons] (a lazy array reading ``store`` when there is one)
    seconds: float  #: the timed run, after one warm-up run (into ``store``: the one run)
    first_seconds: float  #: the first run, including one-time costs
    dt: float
    rate: float
    store: str | None = None  #: the Zarr store the voltages were written to, if any


def simulate(
    backend: str = "numpy",
    neurons: int = 1000,
    inputs: int = 100,
    steps: int = 1000,
    dt: float = 1e-3,
    rate: float = RATE,
    seed: int = 0,
    device: Any = None,
) -> DemoResult:
    """Run the demo on ``backend`` (on ``device``, when given).

    >>> from li_core.demo import simulate
    >>> result = simulate(neurons=20, inputs=10, steps=50)
    >>> result.voltages.shape, result.backend
    ((50, 20), 'numpy')
    """
    chosen = _available(backend)
    spikes, weights = make_inputs(neurons, inputs, steps, dt, rate, seed)
    xs = chosen.asarray(spikes, device=device)
    w = chosen.asarray(weights, device=device)
    sync = synchronizer(xs)

    def run() -> Any:
        voltages, _ = li_scan(xs, None, w, dt=dt, backend=chosen)
        sync(voltages)
        return voltages

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    start = time.perf_counter()
    voltages = run()
    seconds = time.perf_counter() - start
    return DemoResult(
        backend=chosen.name,
        version=chosen.version(),
        device=str(device_of(xs, library_name(xs))),
        dtype=dtype_name(xs.dtype),
        spikes=spikes,
        weights=weights,
        voltages=chosen.to_numpy(voltages),
        seconds=seconds,
        first_seconds=first,
        dt=dt,
        rate=rate,
    )


def simulate_into_store(
    store: str | os.PathLike[str],
    backend: str = "dask",
    neurons: int = 1000,
    inputs: int = 100,
    steps: int = 1000,
    dt: float = 1e-3,
    rate: float = RATE,
    seed: int = 0,
    device: Any = None,
    progress: bool = True,
) -> DemoResult:
    """Run the demo on a chunked (lazy) ``backend`` and stream the voltages
    into the Zarr store ``store`` (replacing what is there), with a progress
    bar on stderr. The inputs are :func:`make_inputs`'s, in blocks of
    :data:`STORE_CHUNK_STEPS` steps and :data:`STORE_CHUNK_NEURONS` neurons
    (time and neurons both run in parallel); nothing but one block per task
    is ever in memory. The result's ``voltages`` is a lazy array over the
    store. Needs ``li-neurons[dask]``."""
    chosen = _available(backend)
    if not chosen.block_libraries:
        raise ValueError(f"backend {chosen.name!r} is not a chunked backend; simulate() runs it in memory")
    import dask.array as da
    from tqdm.dask import TqdmCallback  # type: ignore[import-untyped]  # tqdm ships no type information

    spikes, weights = make_inputs(neurons, inputs, steps, dt, rate, seed)
    xs = chosen.asarray(spikes, device=device).rechunk((STORE_CHUNK_STEPS, -1))
    w = chosen.asarray(weights, device=device).rechunk((STORE_CHUNK_NEURONS, -1))
    start = time.perf_counter()
    voltages, _ = li_scan(xs, None, w, dt=dt, backend=chosen)
    path = os.fspath(store)
    with TqdmCallback(desc=f"li demo: {path}", unit="task", disable=not progress, file=sys.stderr):
        voltages.to_zarr(path, mode="w")
    seconds = time.perf_counter() - start
    return DemoResult(
        backend=chosen.name,
        version=chosen.version(),
        device=str(device_of(xs, library_name(xs))) if device is None else str(device),
        dtype=dtype_name(xs.dtype),
        spikes=spikes,
        weights=weights,
        voltages=da.from_zarr(path),
        seconds=seconds,
        first_seconds=seconds,
        dt=dt,
        rate=rate,
        store=path,
    )


def _available(backend: str) -> Any:
    """The backend called ``backend``; BackendUnavailableError (with the
    install command) when it cannot run here."""
    chosen = get_backend(backend)
    reason = next(info.reason for info in list_backends() if info.name == chosen.name)
    if reason is not None:
        hint = chosen.install_hint()
        fix = f"; to install it: {hint}" if hint else ""
        raise BackendUnavailableError(f"backend {chosen.name!r} is unavailable: {reason}{fix}")
    return chosen


def _statistics(v: Any) -> tuple[float, float, float]:
    """Mean (in float64), min and max of the voltages; a lazy array is
    read once for all three."""
    stats = (v.mean(dtype="float64"), v.min(), v.max())
    if library_name(v) == "dask":
        stats = sys.modules["dask"].compute(*stats)
    mean, low, high = (float(value) for value in stats)
    return mean, low, high


def summary(result: DemoResult) -> str:
    """The lines ``li demo`` prints about a result."""
    steps, inputs = result.spikes.shape
    neurons = result.voltages.shape[1]
    v = result.voltages
    version = f" {result.version}" if result.version else ""
    distribution = next((info.distribution for info in list_backends() if info.name == result.backend), "?")
    mean, low, high = _statistics(v)
    if result.store is None:
        timing = (
            f"time:    {format_seconds(result.seconds)} for li_scan "
            f"(first call {format_seconds(result.first_seconds)}, including one-time costs)"
        )
    else:
        gigabytes = v.nbytes / 1e9
        timing = (
            f"time:    {format_seconds(result.seconds)} for li_scan into the Zarr store {result.store} "
            f"({gigabytes:.3g} GB of voltages in blocks of {list(v.chunksize)}, {gigabytes / result.seconds:.3g} GB/s)"
        )
    return "\n".join(
        [
            f"li demo: {neurons} leaky integrators driven by {inputs} Poisson inputs at {result.rate:g} Hz "
            f"for {steps * result.dt:g} s of model time (T={steps}, dt={result.dt * 1e3:g} ms)",
            f"backend: {result.backend}{version} (from {distribution}), device {result.device}, {result.dtype}",
            f"shapes:  spikes {list(result.spikes.shape)} ({int(result.spikes.sum())} spikes), "
            f"weights {list(result.weights.shape)}, voltages {list(v.shape)}",
            timing,
            f"voltage: mean {mean:.7g}  min {low:.7g}  max {high:.7g}",
        ]
    )


def plot(result: DemoResult, path: str | os.PathLike[str], traces: int = 5) -> None:
    """Write a figure of ``result`` to ``path``: a raster of the input spikes
    above the voltage traces of ``traces`` neurons. Needs matplotlib (imported
    here, not at module import)."""
    import numpy as np
    from matplotlib.figure import Figure

    steps = result.spikes.shape[0]
    time_ms = np.arange(1, steps + 1) * result.dt * 1e3
    figure = Figure(figsize=(8, 6))
    raster, voltage = figure.subplots(2, 1, sharex=True, height_ratios=(1, 1.4))
    when, which = np.nonzero(result.spikes)
    raster.scatter(time_ms[when], which, s=2, marker="|", color="black", linewidths=0.8)
    raster.set_ylabel("input")
    raster.set_title(f"{result.spikes.shape[1]} Poisson inputs at {result.rate:g} Hz", fontsize=10)
    neurons = result.voltages.shape[1]
    chosen = np.linspace(0, neurons - 1, num=min(traces, neurons)).astype(int)
    shown = np.asarray(result.voltages[:, chosen])  # (read from the store, when there is one)
    for column, k in enumerate(chosen):
        voltage.plot(time_ms, shown[:, column], linewidth=0.9, label=f"neuron {k}")
    voltage.set_xlabel("time (ms)")
    voltage.set_ylabel("membrane voltage v")
    voltage.set_title(f"leaky integrators on the {result.backend} backend", fontsize=10)
    voltage.legend(fontsize=7, loc="upper right", ncols=min(len(chosen), 5))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
