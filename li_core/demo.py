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

import contextlib
import errno
import functools
import itertools
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

try:
    import fcntl
except ImportError:  # (Windows: leftovers of killed runs are named, not removed)
    fcntl = None  # type: ignore[assignment]  # (no module on Windows: the name stays, as None)

from .api import li_scan
from .arrays import device as device_of
from .arrays import dtype_name, library_name
from .bench import format_seconds, synchronizer
from .errors import BackendUnavailableError, StoreChangedError
from .registry import get_backend, registry

__all__ = [
    "DemoResult",
    "check_plot_path",
    "check_store",
    "foreign_entry",
    "make_inputs",
    "plot",
    "plot_path",
    "settle_leftovers",
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
    voltages: Any  #: [T, neurons] (a lazy array reading ``store``, this run's only, when there is one)
    seconds: float  #: the timed run, after one warm-up run (into ``store``: the one run)
    first_seconds: float  #: the first run, including one-time costs
    dt: float
    rate: float
    store: str | None = None  #: the Zarr store (resolved path) the voltages were written to, if any


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
    result's ``voltages`` is a lazy array over the store that reads only
    this run's store: once another run has replaced it, reading raises
    :class:`~li_core.errors.StoreChangedError`. Needs ``li-neurons[dask]``.

    ``store`` is checked first (:func:`check_store`) and resolved once; the
    resolved path is the one written. A previous demo store there is
    replaced, anything else only with ``overwrite=True``. The store is
    written beside it in a locked ``.NAME.*.li-demo-partial`` directory,
    marked incomplete (the attribute :data:`STORE_ATTRIBUTE`, see
    :func:`store_mark`), marked complete when every block is written and
    only then renamed into place: whenever the run is interrupted, the
    previous store is where it was (or, from a run killed between the two
    renames, is put back by the next run, :func:`settle_leftovers`)."""
    path = check_store(store, overwrite=overwrite)
    if settle_leftovers(path):  # (a store put back may be one that only overwrite=True may replace)
        path = check_store(store, overwrite=overwrite)
    chosen = _available(backend)
    if not chosen.block_libraries:
        raise ValueError(f"backend {chosen.name!r} is not a chunked backend; simulate() runs it in memory")
    import zarr

    spikes, weights = make_inputs(neurons, inputs, steps, dt, rate, seed)
    xs = chosen.asarray(spikes, device=device).rechunk((STORE_CHUNK_STEPS, -1))
    w = chosen.asarray(weights, device=device).rechunk((STORE_CHUNK_NEURONS, -1))
    start = time.perf_counter()
    voltages, _ = li_scan(xs, None, w, dt=dt, backend=chosen)
    run = uuid.uuid4().hex
    mark = {"complete": False, "backend": chosen.name, "neurons": neurons, "inputs": inputs, "steps": steps}
    mark.update(seed=seed, dt=dt, rate=rate, run=run)
    with _partial_directory(path) as work:
        written = os.path.join(work, "store")
        try:
            writing = voltages.to_zarr(written, compute=False)
            attributes = zarr.open_array(written, mode="r+").attrs
            attributes[STORE_ATTRIBUTE] = mark
            with _progress_bar()(desc=f"li demo: {path}", unit="task", disable=not progress, file=sys.stderr):
                writing.compute()
            attributes[STORE_ATTRIBUTE] = {**mark, "complete": True}
            _move_into_place(written, path, work)
        finally:
            _settle(path, work)
    seconds = time.perf_counter() - start
    return DemoResult(
        backend=chosen.name,
        version=chosen.version(),
        device=str(device_of(xs, library_name(xs))) if device is None else str(device),
        dtype=dtype_name(xs.dtype),
        spikes=spikes,
        weights=weights,
        voltages=_voltages_of_run(path, run),
        seconds=seconds,
        first_seconds=seconds,
        dt=dt,
        rate=rate,
        store=path,
    )


@functools.cache
def _progress_bar() -> Any:
    """tqdm's Dask progress callback, made safe to interrupt: an interrupt
    that lands before its bar exists would otherwise end in tqdm's
    ``AttributeError`` (no ``pbar``) instead of the interrupt."""
    from tqdm.dask import TqdmCallback  # type: ignore[import-untyped]  # tqdm ships no type information

    class ProgressBar(TqdmCallback):
        def _finish(self, *args: Any, **kwargs: Any) -> None:
            if hasattr(self, "pbar"):
                super()._finish(*args, **kwargs)

    return ProgressBar


#: a run's working directory beside the store ``NAME``: ``.NAME.`` + 8 random characters + this
PARTIAL_SUFFIX = ".li-demo-partial"


def _partial_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(name)}\.[A-Za-z0-9_]{{8}}{re.escape(PARTIAL_SUFFIX)}")


@contextlib.contextmanager
def _partial_directory(path: str) -> Iterator[str]:
    """A new ``.NAME.*.li-demo-partial`` directory beside the store ``path``,
    locked (``flock``) while the run lives, so that no other run takes it
    for a killed run's leftover; it is created under another suffix and
    renamed once locked, so it never exists unlocked under its own name."""
    parent, name = os.path.split(path)
    starting = tempfile.mkdtemp(prefix=f".{name}.", suffix=".li-demo-starting", dir=parent)
    descriptor = os.open(starting, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        work = starting[: -len(".li-demo-starting")] + PARTIAL_SUFFIX
        os.rename(starting, work)
        yield work
    finally:
        os.close(descriptor)  # (releases the lock)
        if os.path.isdir(starting):  # (interrupted before the rename: empty)
            os.rmdir(starting)


def _move_into_place(written: str, path: str, work: str) -> None:
    """Rename the complete store ``written`` to ``path``; what is there is
    first moved into ``work`` (as ``previous``, which :func:`_settle` puts
    back if the new store is not in place). A store that a concurrent run
    renamed into place meanwhile is replaced as well: the last run wins."""
    if os.path.lexists(path):
        os.rename(path, os.path.join(work, "previous"))
    for attempt in itertools.count():
        try:
            os.rename(written, path)
            return
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not os.path.isdir(path):
                raise
            os.rename(path, os.path.join(work, f"replaced-{attempt}"))


def _settle(path: str, work: str) -> None:
    """After a run (finished, failed, interrupted or killed) in ``work``:
    put the previous store back where the new one is not in place, then
    remove ``work``. An interrupt that lands before the previous store is
    back leaves it in ``work``, where the next run finds it."""
    previous = os.path.join(work, "previous")
    if os.path.lexists(previous) and not os.path.lexists(path):
        os.rename(previous, path)
    shutil.rmtree(work, ignore_errors=True)


def settle_leftovers(path: str | os.PathLike[str]) -> list[str]:
    """Settle what killed runs (SIGKILL, SIGTERM, a lost machine) left beside
    the store ``path``: each ``.NAME.*.li-demo-partial`` directory that no
    live run holds locked is removed, after its previous store is put back
    where ``path`` does not exist. Returns the stores put back. Where file
    locks are not available (Windows), nothing is removed: a
    :class:`ResourceWarning` names the directories instead."""
    parent, name = os.path.split(os.path.abspath(path))
    pattern = _partial_pattern(name)
    try:
        leftovers = sorted(entry for entry in os.listdir(parent) if pattern.fullmatch(entry))
    except OSError:
        return []
    restored = []
    for entry in leftovers:
        work = os.path.join(parent, entry)
        if os.path.islink(work) or not os.path.isdir(work):
            continue
        if fcntl is None:
            message = f"{work} was left by an earlier run of li demo; remove it once no run uses it"
            warnings.warn(message, ResourceWarning, stacklevel=2)
            continue
        descriptor = os.open(work, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            continue  # a live run's
        try:
            missing = not os.path.lexists(path) and os.path.lexists(os.path.join(work, "previous"))
            _settle(os.fspath(path), work)
            if missing and os.path.lexists(path):
                restored.append(os.fspath(path))
        finally:
            os.close(descriptor)
    return restored


def _voltages_of_run(path: str, run: str) -> Any:
    """The voltages in the store ``path`` as a lazy array whose every block,
    once read, is checked to come from run ``run`` (:func:`_check_run`)."""
    import dask.array as da

    stored = da.from_zarr(path)
    return stored.map_blocks(_check_run, path=path, run=run, dtype=stored.dtype, meta=stored._meta)


def _check_run(block: Any, *, path: str, run: str) -> Any:
    """``block``, read from the store ``path``, when the store still is run
    ``run``'s (its mark is read after the block: a store, once replaced,
    never comes back), else :class:`StoreChangedError`."""
    mark = store_mark(path) or {}
    if mark.get("run") != run:
        raise StoreChangedError(
            f"the Zarr store {path} was replaced after this result was written (by another run of li demo?); "
            "this result's voltages are no longer there"
        )
    return block


def store_mark(store: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The demo's mark on the Zarr array at ``store`` (``"complete"`` says
    whether every block was written, ``"run"`` identifies the run), or None
    where ``store`` is not a demo store (or Zarr is not installed)."""
    try:
        import zarr

        mark = zarr.open_array(os.fspath(store), mode="r").attrs.get(STORE_ATTRIBUTE)
    except Exception:  # noqa: BLE001 - anything zarr cannot open as an array is not a demo store
        return None
    return dict(mark) if isinstance(mark, dict) else None


#: the metadata files of a Zarr array (format 3; format 2)
_ZARR_METADATA = frozenset(("zarr.json", ".zarray", ".zattrs"))


def foreign_entry(store: str | os.PathLike[str]) -> str | None:
    """The first entry under the demo store ``store`` (a directory) that
    Zarr did not write for the array: anything but its metadata files and
    the chunk files of its grid (a user's notes, a link), as a path
    relative to ``store``; None where there is none."""
    import zarr

    array = zarr.open_array(os.fspath(store), mode="r")
    for root, directories, files in os.walk(store):
        for entry in sorted(files) + sorted(d for d in directories if os.path.islink(os.path.join(root, d))):
            full = os.path.join(root, entry)
            relative = os.path.relpath(full, store).replace(os.sep, "/")
            if os.path.islink(full) or not (relative in _ZARR_METADATA or _is_chunk(array, relative)):
                return relative
    return None


def _is_chunk(array: Any, relative: str) -> bool:
    """Is ``relative`` the key of one of ``array``'s chunks?"""
    parts = re.split(r"[/.]", relative)
    if parts and parts[0] == "c":
        parts = parts[1:]
    if len(parts) != len(array.shape) or not all(part.isdigit() for part in parts):
        return False
    coordinates = tuple(int(part) for part in parts)
    grid = array.cdata_shape
    return all(k < n for k, n in zip(coordinates, grid)) and array.metadata.encode_chunk_key(coordinates) == relative


def check_store(store: str | os.PathLike[str], overwrite: bool = False, argument: str = "store") -> str:
    """``store`` resolved (symbolic links and ``..`` followed) to the one
    absolute path that :func:`simulate_into_store` checks and writes, else
    ``ValueError`` saying why, before any work. Refused: the empty path, a
    loop of symbolic links, the home directory, the working directory and
    its ancestors, a path whose parent is not a writable directory, an
    existing path that is not a demo store (:func:`store_mark`) or that
    holds files Zarr did not write for it (:func:`foreign_entry`) unless
    ``overwrite``, and an existing directory that cannot be moved or
    removed (read-only or immutable). Messages name ``argument``."""
    text = os.fspath(store)
    if not text.strip():
        raise ValueError(f"{argument} must name a path, got an empty string")
    try:
        resolved = Path(text).resolve()
    except (RuntimeError, OSError) as exc:  # (a loop of symbolic links)
        raise ValueError(f"{argument} {text!r} cannot be resolved (a loop of symbolic links?): {exc}") from None
    cwd = Path.cwd().resolve()
    if resolved == Path.home().resolve():
        raise ValueError(f"{argument} {text!r} is the home directory; name a new path inside it, e.g. li-demo.zarr")
    if resolved == cwd or resolved in cwd.parents:
        where = "the working directory" if resolved == cwd else "an ancestor of the working directory"
        raise ValueError(f"{argument} {text!r} is {where}; name a new path inside it, e.g. li-demo.zarr")
    path = str(resolved)
    check_writable_directory(argument, text, resolved.parent)
    if not os.path.lexists(path):
        return path
    allow = "--overwrite" if argument.startswith("-") else "overwrite=True"
    if not overwrite:
        what = "a directory" if os.path.isdir(path) else "a file"
        if store_mark(path) is None:
            raise ValueError(
                f"{argument} {text!r} exists and is {what} that is not a demo store; "
                f"choose another path, or allow replacing it with {allow}"
            )
        if (entry := foreign_entry(path)) is not None:
            raise ValueError(
                f"{argument} {text!r} is a demo store that also holds {entry!r}, which li demo did not write; "
                f"move it out, choose another path, or allow replacing it all with {allow}"
            )
    _check_removable(argument, text, path)
    return path


def _check_removable(argument: str, text: str, path: str) -> None:
    """``ValueError`` where the existing directory ``path`` (or one inside
    it) is not writable: it could be neither moved aside nor removed."""
    if not os.path.isdir(path) or os.path.islink(path):
        return
    for root, _, _ in os.walk(path):
        if not os.access(root, os.W_OK):
            inside = "" if root == path else f": {os.path.relpath(root, path)!r} in it"
            raise ValueError(
                f"{argument} {text!r} cannot be replaced: it is read-only or immutable{inside}; "
                "make it writable (chmod u+w, chattr -i) or choose another path"
            )


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
    """:func:`plot_path` of ``path`` where matplotlib can write a figure
    there, else ``ValueError`` naming ``argument``, checked before any
    simulation runs: refused are the empty path, a directory (existing, or
    named with a trailing separator), a format that matplotlib does not
    write (its list: ``FigureCanvasBase.get_supported_filetypes()``) and a
    directory that is missing or not writable. Needs matplotlib."""
    from matplotlib.backend_bases import FigureCanvasBase

    text = os.fspath(path)
    if not text.strip():
        raise ValueError(f"{argument} must name a file, got an empty string")
    if text.endswith((os.sep, "/")) or os.path.isdir(text):
        example = os.path.join(text, "li-demo.png")
        raise ValueError(f"{argument} {text!r} is a directory; name a file in it, e.g. {example}")
    written = plot_path(text)
    suffix = Path(written).suffix.lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix[1:] not in formats:
        raise ValueError(
            f"{argument} {text!r}: matplotlib cannot write {suffix} files; "
            f"name a file ending in one of {', '.join('.' + name for name in sorted(formats))}"
        )
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
