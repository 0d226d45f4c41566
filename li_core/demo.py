"""The simulation behind ``li demo``.

A population of leaky integrators listens to Poisson spike trains through
random weights for one second of model time (``T = 1000`` steps of
``dt = 1 ms``), computed by one call of :func:`li_core.li_scan` with
``input_weights``. The inputs are made in NumPy by :func:`make_inputs` and
converted with the backend's ``asarray``, so every backend simulates the same
numbers; the voltages come back through its ``to_numpy``. A chunked (lazy)
backend such as ``dask`` streams the voltages into a Zarr store instead, with
a progress bar (:func:`simulate_into_store`), which never deletes what it
did not write (:func:`check_store`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

from .api import li_scan
from .arrays import device as device_of
from .arrays import dtype_name, library_name
from .bench import format_seconds, synchronizer
from .errors import BackendUnavailableError
from .registry import get_backend, registry

__all__ = [
    "DemoResult",
    "check_plot_path",
    "check_store",
    "make_inputs",
    "plot",
    "plot_path",
    "simulate",
    "simulate_into_store",
    "store_mark",
    "summary",
]

#: firing rate of every input, in Hz
RATE = 20.0
#: :func:`simulate_into_store`'s blocks: this many steps ...
STORE_CHUNK_STEPS = 250
#: ... of this many neurons (16 MiB of float32 voltages)
STORE_CHUNK_NEURONS = 16384
#: the attribute that marks a Zarr array as a demo store: ``{"complete": bool, ...}``
STORE_ATTRIBUTE = "li_demo"


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
    overwrite: bool = False,
) -> DemoResult:
    """Run the demo on a chunked (lazy) ``backend`` and stream the voltages
    into the Zarr store ``store``, with a progress bar on stderr. The inputs
    are :func:`make_inputs`'s, in blocks of :data:`STORE_CHUNK_STEPS` steps
    and :data:`STORE_CHUNK_NEURONS` neurons (time and neurons both run in
    parallel); nothing but one block per task is ever in memory. The
    result's ``voltages`` is a lazy array over the store. Needs
    ``li-neurons[dask]``.

    ``store`` is checked first (:func:`check_store`): a previous demo store
    there is replaced, anything else only with ``overwrite=True``. The
    store is written beside it under a temporary name, marked incomplete
    (the attribute :data:`STORE_ATTRIBUTE`, see :func:`store_mark`), marked
    complete when every block is written and only then renamed into place,
    so an interrupted run leaves the previous store as it was."""
    path = check_store(store, overwrite=overwrite)
    chosen = _available(backend)
    if not chosen.block_libraries:
        raise ValueError(f"backend {chosen.name!r} is not a chunked backend; simulate() runs it in memory")
    import dask.array as da
    import zarr
    from tqdm.dask import TqdmCallback  # type: ignore[import-untyped]  # tqdm ships no type information

    spikes, weights = make_inputs(neurons, inputs, steps, dt, rate, seed)
    xs = chosen.asarray(spikes, device=device).rechunk((STORE_CHUNK_STEPS, -1))
    w = chosen.asarray(weights, device=device).rechunk((STORE_CHUNK_NEURONS, -1))
    start = time.perf_counter()
    voltages, _ = li_scan(xs, None, w, dt=dt, backend=chosen)
    mark = {"complete": False, "backend": chosen.name, "neurons": neurons, "inputs": inputs, "steps": steps}
    mark.update(seed=seed, dt=dt, rate=rate)
    parent, name = os.path.split(os.path.abspath(path))
    work = tempfile.mkdtemp(prefix=f".{name}.", suffix=".li-demo-partial", dir=parent)
    written, previous, moved = os.path.join(work, "store"), os.path.join(work, "previous"), False
    try:
        writing = voltages.to_zarr(written, compute=False)
        attributes = zarr.open_array(written, mode="r+").attrs
        attributes[STORE_ATTRIBUTE] = mark
        with TqdmCallback(desc=f"li demo: {path}", unit="task", disable=not progress, file=sys.stderr):
            writing.compute()
        attributes[STORE_ATTRIBUTE] = {**mark, "complete": True}
        if os.path.lexists(path):  # a previous demo store, or a path the caller let us overwrite
            os.rename(path, previous)
            moved = True
        os.rename(written, path)
    finally:
        if moved and not os.path.lexists(path):  # (interrupted between the two renames)
            os.rename(previous, path)
        shutil.rmtree(work, ignore_errors=True)  # ours: the partial store or the replaced one
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


def store_mark(store: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The demo's mark on the Zarr array at ``store`` (``"complete"`` says
    whether every block was written), or None where ``store`` is not a
    demo store (or Zarr is not installed)."""
    try:
        import zarr

        mark = zarr.open_array(os.fspath(store), mode="r").attrs.get(STORE_ATTRIBUTE)
    except Exception:  # noqa: BLE001 - anything zarr cannot open as an array is not a demo store
        return None
    return dict(mark) if isinstance(mark, dict) else None


def check_store(store: str | os.PathLike[str], overwrite: bool = False, argument: str = "store") -> str:
    """``store`` as a path that :func:`simulate_into_store` may write, else
    ``ValueError`` saying why, before any work. Refused: the empty path,
    the home directory, the working directory and its ancestors (``.``,
    ``..``, ``/``), a path whose parent is not a writable directory, and an
    existing path that is not a demo store (:func:`store_mark`) unless
    ``overwrite``. Messages name ``argument``."""
    path = os.fspath(store)
    if not path.strip():
        raise ValueError(f"{argument} must name a path, got an empty string")
    resolved = Path(path).resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path.home().resolve():
        raise ValueError(f"{argument} {path!r} is the home directory; name a new path inside it, e.g. li-demo.zarr")
    if resolved == cwd or resolved in cwd.parents:
        where = "the working directory" if resolved == cwd else "an ancestor of the working directory"
        raise ValueError(f"{argument} {path!r} is {where}; name a new path inside it, e.g. li-demo.zarr")
    path = os.path.normpath(path)  # (no trailing separator: the store is renamed into place)
    check_writable_directory(argument, path, resolved.parent)
    if os.path.lexists(path) and not overwrite and store_mark(path) is None:
        what = "a directory" if os.path.isdir(path) else "a file"
        allow = "--overwrite" if argument.startswith("-") else "overwrite=True"
        raise ValueError(
            f"{argument} {path!r} exists and is {what} that is not a demo store; "
            f"choose another path, or allow replacing it with {allow}"
        )
    return path


def memory_needed(neurons: int, inputs: int, steps: int, chunked: bool) -> int:
    """About how many bytes the demo holds at once: the float32 spikes and
    weights (made in NumPy, then copied by the backend) and, in memory, the
    projected inputs and two runs' voltages; a chunked backend streams the
    voltages and holds one block per task."""
    inputs_bytes = 4 * 2 * (steps * inputs + neurons * inputs)
    if chunked:
        return inputs_bytes + 4 * 4 * STORE_CHUNK_STEPS * min(neurons, STORE_CHUNK_NEURONS)
    return inputs_bytes + 4 * 3 * steps * neurons


def physical_memory() -> int | None:
    """This machine's memory in bytes, where the system says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_size(neurons: int, inputs: int, steps: int, chunked: bool) -> None:
    """``ValueError`` where the demo would need more memory than this
    machine has (:func:`memory_needed`), before anything is allocated."""
    needed, available = memory_needed(neurons, inputs, steps, chunked), physical_memory()
    if available is not None and needed > available:
        raise ValueError(
            f"neurons={neurons}, inputs={inputs}, steps={steps} need about {needed / 1e9:.3g} GB of memory, "
            f"more than this machine's {available / 1e9:.3g} GB; choose fewer"
        )


def check_device(backend: str, device: Any) -> None:
    """``ValueError`` unless ``backend`` is available (else
    ``BackendUnavailableError``) and can place an array on ``device`` (None:
    its default), tried with a one-element array."""
    import numpy as np

    chosen = _available(backend)
    if device is None:
        return
    kind = str(device).partition(":")[0]
    if kind not in chosen.devices:
        raise ValueError(f"device {device!r}: backend {chosen.name!r} has devices {', '.join(chosen.devices)}")
    try:
        chosen.asarray(np.zeros(1, dtype=np.float32), device=device)
    except Exception as exc:  # noqa: BLE001 - the error is the reported reason
        raise ValueError(
            f"device {device!r} is not usable by backend {chosen.name!r} here: {type(exc).__name__}: {exc}"
        ) from None


def check_writable_directory(argument: str, path: str, directory: Path) -> None:
    """``ValueError`` naming ``argument`` unless ``directory`` (where ``path``
    goes) is a directory that a file can be created in."""
    if not directory.is_dir():
        raise ValueError(f"{argument} {path!r}: the directory {str(directory)!r} does not exist")
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise ValueError(f"{argument} {path!r}: cannot write in {str(directory)!r} ({exc.strerror})") from None


def _available(backend: str) -> Any:
    """The backend called ``backend``; BackendUnavailableError (with the
    install command) when it cannot run here."""
    chosen = get_backend(backend)
    reason = registry.availability(chosen)  # (this backend's alone: list_backends() would import every library)
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
    registered = registry.backends.get(result.backend)
    distribution = "?" if registered is None else registered.distribution
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


def plot_path(path: str | os.PathLike[str]) -> str:
    """The file :func:`plot` writes for ``path``: ``path`` itself, or with
    ``.png`` added where it has no suffix (as matplotlib does)."""
    path = os.fspath(path)
    return path if Path(path).suffix else f"{path}.png"


def check_plot_path(path: str | os.PathLike[str], argument: str = "output") -> str:
    """:func:`plot_path` of ``path`` where a file can be written there, else
    ``ValueError`` naming ``argument``: checked before any simulation runs."""
    written = plot_path(path)
    if os.path.isdir(written):
        raise ValueError(f"{argument} {written!r} is a directory; name a file in it, e.g. {written}/li-demo.png")
    check_writable_directory(argument, written, Path(written).resolve().parent)
    return written


def plot(result: DemoResult, path: str | os.PathLike[str], traces: int = 5) -> str:
    """Write a figure of ``result`` to ``path`` (``.png`` added where it has
    no suffix, see :func:`plot_path`): a raster of the input spikes above the
    voltage traces of ``traces`` neurons; returns the path written. Needs
    matplotlib (imported here, not at module import)."""
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
    written = plot_path(path)
    figure.savefig(written, dpi=110)
    return written
