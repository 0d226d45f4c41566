"""The timing harness behind ``li bench`` and the scripts in ``benchmarks/``.

Three pieces, usable on their own:

- :func:`measure` times a function: warm-up runs, then ``repeats`` timed runs,
  each ended by a device synchronisation, summarised by median and quartiles;
- :func:`synchronizer` returns that synchronisation for an array of any
  library (a no-op on the CPU, ``torch.cuda.synchronize`` for CUDA tensors,
  the device's ``synchronize`` for CuPy, ``block_until_ready`` for JAX);
- :data:`WORKLOADS` and :func:`run` are the standard workloads and the runner
  that times ``li_scan`` on every available backend next to two yardsticks
  on the same arrays and device: copying the input (the cost of touching the
  data once) and the one-step-at-a-time Python loop of
  :func:`li_core.reference.scan` (what Norse users write by hand).

Inputs are generated once in NumPy with a fixed seed and converted with each
backend's ``asarray``, so every backend times the same numbers.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TextIO

from . import reference
from .api import li_scan
from .arrays import library_name, namespace
from .registry import get_backend, list_backends
from .types import LIParameters, LIState

__all__ = [
    "RESULT_HEADERS",
    "WORKLOADS",
    "Progress",
    "Timing",
    "Workload",
    "copier",
    "describe_settings",
    "format_results",
    "format_seconds",
    "format_table",
    "machine_info",
    "measure",
    "plot_results",
    "result_table",
    "run",
    "synchronizer",
]

PARAMETERS = LIParameters()
DT = 1e-3
#: the slow reference loop is timed at most this many times
LOOP_REPEATS = 3
#: default time budget of one measurement, in seconds (see measure's max_seconds)
MAX_SECONDS = 10.0
#: the backend that runs the reference loop itself: benchmarked only on request
REFERENCE_BACKEND = "array_api"
#: the reference backend skips workloads longer than this (it steps one slice at a time)
REFERENCE_MAX_STEPS = 10_000


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
    sync = sync or _no_sync
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


def _no_sync(result: Any) -> None:
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
        return _no_sync
    if library == "cupy":
        where = x.device
        return lambda result: where.synchronize()
    if library == "jax":
        jax = sys.modules["jax"]
        return lambda result: jax.block_until_ready(result)
    if library == "dask":  # lazy: the work happens when the result is computed
        return lambda result: result.compute()
    return _no_sync


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


@dataclasses.dataclass(frozen=True)
class Workload:
    """One standard benchmark: a scan over ``steps`` time steps of
    ``[batch, neurons]`` leaky integrators, fed through a ``[neurons,
    inputs]`` weight matrix when ``inputs`` is set, and differentiated
    (forward and backward of ``vs.sum()``) when ``training`` is set. With
    ``per_neuron`` every neuron has its own time constants and leak; else the
    defaults. With ``loop_steps`` the step loop yardstick is timed over the
    first ``loop_steps`` steps only and its time scaled to ``steps`` (its
    cost per step is constant; a long run would take minutes)."""

    name: str
    title: str
    steps: int
    batch: int
    neurons: int
    inputs: int | None = None
    training: bool = False
    per_neuron: bool = False
    loop_steps: int | None = None

    @property
    def shape(self) -> str:
        inputs = f" in={self.inputs}" if self.inputs is not None else ""
        return f"T={self.steps} B={self.batch}{inputs} N={self.neurons}"

    def quick(self) -> Workload:
        """A much smaller version with the same structure (for tests)."""
        return dataclasses.replace(
            self,
            steps=max(2, self.steps // 10),
            batch=max(1, self.batch // 4),
            neurons=max(8, self.neurons // 16),
            inputs=None if self.inputs is None else max(8, self.inputs // 16),
            loop_steps=None if self.loop_steps is None else max(2, self.loop_steps // 10),
        )

    def arrays(self, dtype: str, seed: int = 0) -> tuple[Any, Any]:
        """The NumPy input (and weights, or None) of this workload: a
        standard-normal current, or with weights Bernoulli spikes with
        probability 0.05 per step through normal weights scaled by
        ``1/sqrt(inputs)``."""
        import numpy as np

        rng = np.random.default_rng(seed)
        if self.inputs is None:
            return rng.standard_normal((self.steps, self.batch, self.neurons)).astype(dtype), None
        spikes = (rng.random((self.steps, self.batch, self.inputs)) < 0.05).astype(dtype)
        weights = (rng.standard_normal((self.neurons, self.inputs)) / np.sqrt(self.inputs)).astype(dtype)
        return spikes, weights

    def parameters(self, dtype: str, seed: int = 0) -> LIParameters:
        """The parameters: the defaults, or with ``per_neuron`` NumPy arrays
        of shape ``[neurons]`` with ``dt*tau_inv`` uniform in (0.05, 0.45)
        and ``v_leak`` uniform in (-1, 1) (drawn apart from the inputs)."""
        if not self.per_neuron:
            return PARAMETERS
        import numpy as np

        rng = np.random.default_rng([seed, 1])
        rates = rng.uniform(0.05, 0.45, size=(2, self.neurons)) / DT
        leak = rng.uniform(-1.0, 1.0, size=self.neurons)
        return LIParameters(*(value.astype(dtype) for value in (*rates, leak)))


#: the standard workloads, by name
WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("feedforward", "feed-forward scan", 1000, 32, 1024),
        Workload("training", "training (forward + backward)", 500, 16, 4096, training=True),
        Workload("small", "small scan", 100, 8, 256),
        Workload("weighted", "weighted scan", 500, 16, 1024, inputs=1024),
        Workload("long", "few neurons, long run", 100_000, 1, 16, per_neuron=True, loop_steps=10_000),
    )
}


class Progress:
    """A minimal progress bar on ``stream`` (stderr): redrawn in place on a
    terminal, one line per step otherwise; silent when disabled."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True, width: int = 24) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, label: str) -> None:
        """Announce that the next step, ``label``, starts."""
        if not self.enabled:
            return
        filled = self.width * self.done // self.total
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"[{bar}] {self.done + 1}/{self.total} {label}"
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.done += 1

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on and how: OS, CPU, core count,
    Python, the date (UTC), the git commit of the code when it runs from a
    checkout, and the command line."""
    from . import __version__

    return {
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "li_neurons": __version__,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "command": shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
    }


def _commit() -> str | None:
    """The git commit of this package's checkout (with ``+dirty`` for
    uncommitted changes), or None outside a checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(
            ["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def _gpu_name(x: Any) -> str | None:
    """The name of the GPU that holds ``x``, or None (CPU, or unknown)."""
    library = library_name(x)
    try:
        if library == "torch" and x.device.type == "cuda":
            return f"{x.device}: {sys.modules['torch'].cuda.get_device_name(x.device)}"
        if library == "cupy":
            name = sys.modules["cupy"].cuda.runtime.getDeviceProperties(x.device.id)["name"]
            return f"cuda:{x.device.id}: {name.decode() if isinstance(name, bytes) else name}"
    except Exception:  # noqa: BLE001 - a label is never worth failing a benchmark
        return None
    return None


def _gradient(library: str | None, forward: Callable[[Any], Any], x: Any) -> Callable[[], Any] | None:
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


def _row(backend: str, device: str | None, workload: Workload | None, dtype: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "backend": backend,
        "device": device,
        "workload": None if workload is None else workload.name,
        "shape": None if workload is None else workload.shape,
        "dtype": dtype,
    }
    row.update(fields)
    return row


def _timing_fields(prefix: str, timing: Timing) -> dict[str, float]:
    return {
        f"{prefix}median_s": timing.median,
        f"{prefix}q25_s": timing.q25,
        f"{prefix}q75_s": timing.q75,
    }


def _probe_device(backend: Any, device: str, only: bool) -> tuple[Any, str | None]:
    """The ``device=`` argument that puts arrays on ``device`` for this
    backend, or the reason it cannot. A backend with a single declared device
    may also take ``device=None`` for it."""
    import numpy as np

    probe = np.zeros(1, dtype=np.float32)
    errors = []
    for argument in (device, None) if only else (device,):
        try:
            backend.asarray(probe, device=argument)
        except Exception as exc:  # noqa: BLE001 - reported in the results, never fatal to a benchmark
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        return argument, None
    return None, errors[0]


def _time_case(
    backend: Any, device: Any, workload: Workload, dtype: str, repeats: int, seed: int, max_seconds: float | None
) -> dict[str, Any]:
    """Time one workload on one backend and device; the row's fields."""
    import numpy as np

    xs_np, w_np = workload.arrays(dtype, seed)
    xs = backend.asarray(xs_np, device=device)
    w = None if w_np is None else backend.asarray(w_np, device=device)
    p_np = workload.parameters(dtype, seed)
    p = LIParameters(*(v if isinstance(v, float) else backend.asarray(v, device=device) for v in p_np))
    library = library_name(xs)
    sync = synchronizer(xs)
    # the reference loop receives what the core would give a backend
    zeros_np = np.zeros((workload.batch, workload.neurons), dtype=dtype)
    state = LIState(backend.asarray(zeros_np, device=device), backend.asarray(zeros_np, device=device))
    loop_steps = min(workload.loop_steps or workload.steps, workload.steps)
    loop_xs = xs[:loop_steps, ...]
    if backend.block_libraries:  # lazy: a step loop over a lazy array would time graph building; loop in memory
        loop_xs, state, w_loop, p_loop = xs_np[:loop_steps, ...], LIState(zeros_np, zeros_np), w_np, p_np
        loop_sync: Callable[[Any], None] = _no_sync
    else:
        w_loop, p_loop, loop_sync = w, p, sync
    del xs_np, w_np

    def fused(a: Any) -> Any:
        return li_scan(a, None, w, p, DT, backend=backend)[0]

    def loop(a: Any) -> Any:
        return reference.scan(a, state, w_loop, p_loop, DT)[0]

    if workload.training:
        run_fused, run_loop = _gradient(library, fused, xs), _gradient(library, loop, loop_xs)
        if run_fused is None or run_loop is None:
            return {"status": "skipped", "reason": f"the harness has no gradient recipe for {library} arrays"}
    else:
        run_fused, run_loop = (lambda: fused(xs)), (lambda: loop(loop_xs))
    fused_timing = measure(run_fused, repeats, sync, max_seconds=max_seconds)
    copy_timing = measure(copier(xs), repeats, sync, max_seconds=max_seconds)
    # no warm-up for the loop: li_scan's warm-up already paid the one-time
    # costs of the library and device, and the loop can take minutes
    loop_timing = measure(run_loop, min(repeats, LOOP_REPEATS), loop_sync, warmup=0, max_seconds=max_seconds)
    loop_timing = _scaled(loop_timing, workload.steps / loop_steps)
    norse = _norse_fields(library, workload, loop_xs, p_loop, repeats, loop_sync, max_seconds)
    if "norse_median_s" in norse:
        norse["speedup_over_norse"] = norse["norse_median_s"] / fused_timing.median
    return {
        **norse,
        "status": "ok",
        "gpu": _gpu_name(xs),
        "repeats": fused_timing.repeats,
        "copy_repeats": copy_timing.repeats,
        "loop_repeats": loop_timing.repeats,
        "loop_steps": loop_steps,
        "loop_scaled": loop_steps < workload.steps,
        **_timing_fields("", fused_timing),
        **_timing_fields("copy_", copy_timing),
        **_timing_fields("loop_", loop_timing),
        "ratio_to_copy": fused_timing.median / copy_timing.median,
        "ratio_to_loop": fused_timing.median / loop_timing.median,
        "speedup_over_loop": loop_timing.median / fused_timing.median,
    }


def _norse_module(p: LIParameters, device: Any) -> Any | None:
    """Norse's ``LI`` module with the parameters ``p``, or None where Norse
    is not installed."""
    import importlib.util

    if importlib.util.find_spec("norse") is None:
        return None
    import torch
    from norse.torch import LI
    from norse.torch import LIParameters as NorseParameters

    values = [v if isinstance(v, torch.Tensor) else torch.tensor(v, device=device) for v in p]
    return LI(p=NorseParameters(*values), dt=DT)


def _norse_fields(
    library: str | None,
    workload: Workload,
    xs: Any,
    p: LIParameters,
    repeats: int,
    sync: Any,
    max_seconds: float | None,
) -> dict[str, Any]:
    """Norse 1.1's ``LI`` module timed on the same torch input (over the step
    loop's steps, scaled like it), for the feed-forward workloads when Norse is
    installed; else no fields."""
    if library != "torch" or workload.inputs is not None:
        return {}
    module = _norse_module(p, xs.device)
    if module is None:
        return {}

    def norse(a: Any) -> Any:
        return module(a)[0]

    run = _gradient(library, norse, xs) if workload.training else (lambda: norse(xs))
    if run is None:
        return {}
    try:
        timing = measure(run, min(repeats, LOOP_REPEATS), sync, max_seconds=max_seconds)
    except Exception as exc:  # noqa: BLE001 - reported; Norse's own limits never hide li_scan's row
        return {"norse_reason": f"{type(exc).__name__}: {exc}"}
    return _timing_fields("norse_", _scaled(timing, workload.steps / xs.shape[0]))


def _scaled(timing: Timing, factor: float) -> Timing:
    """``timing`` with every time multiplied by ``factor``."""
    t = timing
    return Timing(t.median * factor, t.q25 * factor, t.q75 * factor, t.min * factor, t.max * factor, t.repeats)


def _skip_reason(backend: str, autograd: bool, workload: Workload) -> str | None:
    """Why ``backend`` does not run ``workload``, or None."""
    if workload.training and not autograd:
        return f"{backend} does not declare autograd"
    if backend == REFERENCE_BACKEND and workload.steps > REFERENCE_MAX_STEPS:
        return (
            f"{backend} steps one time slice at a time, like the step loop: {workload.steps} steps "
            f"would take minutes (it runs workloads of up to {REFERENCE_MAX_STEPS} steps)"
        )
    return None


def run(
    backends: Sequence[str] | None = None,
    workloads: Sequence[str] | None = None,
    *,
    repeats: int = 5,
    dtype: str = "float32",
    devices: Sequence[str] | None = None,
    quick: bool = False,
    seed: int = 0,
    max_seconds: float | None = MAX_SECONDS,
    progress: Progress | bool = True,
) -> dict[str, Any]:
    """Run the standard workloads; the report as a JSON-ready dict.

    ``backends`` defaults to every registered backend but ``array_api``,
    whose ``li_scan`` is the reference loop itself (unavailable ones give a
    ``skipped`` row with the reason); ``workloads`` to all of
    :data:`WORKLOADS`; ``devices`` to every device each backend declares.
    The training workload runs on backends that declare autograd; the
    reference backend skips workloads of more than
    :data:`REFERENCE_MAX_STEPS` steps. ``quick``
    shrinks every workload (for tests). Each measurement is timed ``repeats``
    times (the reference loop at most ``LOOP_REPEATS`` times) within about
    ``max_seconds`` (see :func:`measure`). One failing case gives an ``error``
    row and the others still run.

    The report has ``machine``, ``settings`` and ``results``: one row per
    backend, device and workload with the median and quartiles of
    ``li_scan`` (``median_s``, ...), of copying the input (``copy_*``) and of
    the reference loop (``loop_*``), and the ratios ``ratio_to_copy`` and
    ``ratio_to_loop`` (``li_scan``'s time over theirs) and
    ``speedup_over_loop`` (the inverse of the latter).
    """
    names = list(backends) if backends else [i.name for i in list_backends() if i.name != REFERENCE_BACKEND]
    chosen = [WORKLOADS[name] for name in (workloads or WORKLOADS)]  # KeyError names the workload
    if quick:
        chosen = [w.quick() for w in chosen]
    infos = {info.name: info for info in list_backends()}
    # in report order: a finished row (skipped), or what to time
    plan: list[dict[str, Any] | tuple[Any, str, Any, Workload]] = []
    for name in names:
        backend = get_backend(name)  # BackendNotFoundError lists the registered names
        info = infos[name]
        if not info.available:
            plan.append(_row(name, None, None, dtype, status="skipped", reason=info.reason))
            continue
        if dtype not in info.dtypes:
            plan.append(_row(name, None, None, dtype, status="skipped", reason=f"{name} does not support {dtype}"))
            continue
        wanted = [d for d in info.devices if devices is None or d in devices]
        if not wanted:
            plan.append(_row(name, None, None, dtype, status="skipped", reason="none of the requested devices"))
        for device in wanted:
            argument, reason = _probe_device(backend, device, only=len(info.devices) == 1)
            if reason is not None:
                plan.append(_row(name, device, None, dtype, status="skipped", reason=reason))
                continue
            for workload in chosen:
                reason = _skip_reason(name, info.autograd, workload)
                if reason is not None:
                    plan.append(_row(name, device, workload, dtype, status="skipped", reason=reason))
                else:
                    plan.append((backend, device, argument, workload))

    cases = sum(1 for entry in plan if isinstance(entry, tuple))
    bar = progress if isinstance(progress, Progress) else Progress(cases, enabled=bool(progress))
    rows: list[dict[str, Any]] = []
    for entry in plan:
        if isinstance(entry, dict):
            rows.append(entry)
            continue
        backend, device, argument, workload = entry
        bar.update(f"{backend.name} {device} {workload.name} ({workload.shape})")
        try:
            fields = _time_case(backend, argument, workload, dtype, repeats, seed, max_seconds)
        except Exception as exc:  # noqa: BLE001 - one failing case must not hide the others
            fields = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
        rows.append(_row(backend.name, device, workload, dtype, version=infos[backend.name].version, **fields))
    bar.close()
    return {
        "machine": machine_info(),
        "settings": {
            "dtype": dtype,
            "repeats": repeats,
            "max_seconds": max_seconds,
            "quick": quick,
            "seed": seed,
            "dt": DT,
            "workloads": {w.name: dataclasses.asdict(w) for w in chosen},
        },
        "results": rows,
    }


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table with left-aligned columns."""
    text_rows = [[("" if cell is None else str(cell)) for cell in row] for row in rows]
    widths = [max(len(h), *(len(r[k]) for r in text_rows)) if text_rows else len(h) for k, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in text_rows]
    return "\n".join(lines)


def format_seconds(seconds: float) -> str:
    """``0.0123`` as ``12.3 ms`` (three significant digits)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def describe_settings(report: dict[str, Any]) -> str:
    """One sentence on how a :func:`run` report was measured and where."""
    machine, settings = report["machine"], report["settings"]
    gpus = sorted({row["gpu"] for row in report["results"] if row.get("gpu")})
    budget = settings.get("max_seconds")
    return (
        f"{settings['dtype']}, median of up to {settings['repeats']} runs"
        f"{f' (about {budget:g} s at most per measurement)' if budget else ''}"
        f"{', quick sizes' if settings['quick'] else ''}; li-neurons {machine['li_neurons']} on {machine['cpu']} "
        f"({machine['cpu_count']} CPUs{', GPU ' + ', '.join(gpus) if gpus else ''}), {machine['platform']}, "
        f"Python {machine['python']}"
        + (f"; {machine['date']}" if machine.get("date") else "")
        + (f", commit {machine['commit']}" if machine.get("commit") else "")
        + (f", `{machine['command']}`" if machine.get("command") else "")
    )


#: the columns of :func:`result_table`
RESULT_HEADERS = [
    "backend", "device", "workload", "shape", "median", "IQR", "copy", "x copy", "loop", "speedup", "norse", "vs norse",
]  # fmt: skip


def result_table(report: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """The rows (as text, under :data:`RESULT_HEADERS`) of a :func:`run`
    report's timed cases, and one note per skipped or failed case."""
    table, notes = [], []
    for row in report["results"]:
        if row["status"] != "ok":
            what = " ".join(part for part in (row["backend"], row["device"], row["workload"]) if part)
            notes.append(f"{row['status']}: {what}: {row['reason']}")
            continue
        table.append(
            [
                row["backend"],
                f"{row['device']} ({row['gpu']})" if row.get("gpu") else row["device"],
                row["workload"],
                row["shape"],
                format_seconds(row["median_s"]),
                f"{format_seconds(row['q25_s'])} - {format_seconds(row['q75_s'])}",
                format_seconds(row["copy_median_s"]),
                f"{row['ratio_to_copy']:.3g}",
                format_seconds(row["loop_median_s"]) + ("*" if row.get("loop_scaled") else ""),
                f"{row['speedup_over_loop']:.3g}x",
                format_seconds(row["norse_median_s"]) if row.get("norse_median_s") else "-",
                f"{row['speedup_over_norse']:.3g}x" if row.get("speedup_over_norse") else "-",
            ]
        )
        if row.get("norse_reason"):
            notes.append(f"norse not timed: {row['backend']} {row['device']} {row['workload']}: {row['norse_reason']}")
    return table, notes


def format_results(report: dict[str, Any]) -> str:
    """The human-readable table of a :func:`run` report, then the skipped
    and failed cases with their reasons."""
    table, notes = result_table(report)
    parts = [f"li bench: {describe_settings(report)}", ""]
    parts.append(format_table(RESULT_HEADERS, table) if table else "(nothing was timed)")
    if notes:
        parts += ["", *notes]
    parts += [
        "",
        "x copy: li_scan's time over copying its input once on the same device; "
        "speedup: the one-step-at-a-time loop's time (li_core.reference.scan) over li_scan's; "
        "norse, vs norse: Norse's LI module on the same torch input (feed-forward workloads, when Norse is "
        "installed; timed like the loop) and its time over li_scan's.",
    ]
    scaled = {row["workload"]: row["loop_steps"] for row in report["results"] if row.get("loop_scaled")}
    parts += [
        f"*: the loop timed over the first {steps} steps of {name}, scaled to all." for name, steps in scaled.items()
    ]
    return "\n".join(parts)


def plot_results(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """A bar chart of a :func:`run` report, written to ``path`` (PNG, or any
    format matplotlib infers from the suffix): per workload, ``li_scan``'s
    median time on each backend and device next to the reference loop's,
    on a log scale, with the copy time as a tick. Needs matplotlib."""
    from matplotlib.figure import Figure

    rows = [r for r in report["results"] if r["status"] == "ok"]
    present = {r["workload"] for r in rows}
    workloads = [w for w in report["settings"]["workloads"] if w in present]
    targets = list(dict.fromkeys(f"{r['backend']} ({r['device']})" for r in rows))
    figure = Figure(figsize=(max(6.0, 1.6 * len(workloads) * max(1, len(targets)) ** 0.5 + 2), 4.2))
    axes = figure.add_subplot()
    group = 0.8
    width = group / max(1, 2 * len(targets))
    colors = [f"C{k}" for k in range(10)]
    for k, target in enumerate(targets):
        fused, loop, copy, positions = [], [], [], []
        for g, workload in enumerate(workloads):
            match = [r for r in rows if r["workload"] == workload and f"{r['backend']} ({r['device']})" == target]
            if not match:
                continue
            r = match[0]
            positions.append(g - group / 2 + (2 * k + 0.5) * width)
            fused.append(r["median_s"] * 1e3)
            loop.append(r["loop_median_s"] * 1e3)
            copy.append(r["copy_median_s"] * 1e3)
        color = colors[k % len(colors)]
        axes.bar(positions, fused, width, color=color, label=f"{target}: li_scan")
        loop_positions = [p + width for p in positions]
        axes.bar(loop_positions, loop, width, color=color, alpha=0.35, hatch="//", label=f"{target}: step loop")
        label = "copy of the input" if k == 0 else None
        axes.scatter(positions, copy, marker="_", s=300, color="black", zorder=3, label=label)
    axes.set_xticks(range(len(workloads)), workloads)
    axes.set_yscale("log")
    axes.set_ylabel("median time (ms, log scale)")
    machine = report["machine"]
    title = f"li bench, {report['settings']['dtype']}: {machine['cpu']} ({machine['cpu_count']} CPUs)"
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
