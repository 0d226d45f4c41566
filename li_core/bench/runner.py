"""The runner of ``li bench``: every backend, device and workload, timed
next to copying the input and the reference step loop (and the peers)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .. import reference
from ..api import li_scan
from ..arrays import library_name
from ..registry import get_backend, list_backends
from ..types import LIParameters, LIState
from .host import time_host
from .machine import gpu_name, machine_info
from .paths import backend_paths
from .peers import PEERS, norse_fields
from .timing import (
    MAX_SECONDS,
    copier,
    gradient,
    measure,
    no_sync,
    scaled,
    synchronizer,
    timing_fields,
)
from .workloads import DT, WORKLOADS, Workload

#: the backend that runs the reference loop itself: benchmarked only on request
REFERENCE_BACKEND = "array_api"
#: the reference backend skips workloads longer than this (it steps one slice at a time)
REFERENCE_MAX_STEPS = 10_000


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

    if workload.host:
        return time_host(backend, device, workload, dtype, repeats, seed)

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
        loop_sync: Callable[[Any], None] = no_sync
    else:
        w_loop, p_loop, loop_sync = w, p, sync
    del xs_np, w_np

    def fused(a: Any) -> Any:
        return li_scan(a, None, w, p, DT, backend=backend)[0]

    def loop(a: Any) -> Any:
        return reference.scan(a, state, w_loop, p_loop, DT)[0]

    if workload.training:
        run_fused, run_loop = gradient(library, fused, xs), gradient(library, loop, loop_xs)
        if run_fused is None or run_loop is None:
            return {"status": "skipped", "reason": f"the harness has no gradient recipe for {library} arrays"}
    else:
        run_fused, run_loop = (lambda: fused(xs)), (lambda: loop(loop_xs))
    fused_timing = measure(run_fused, repeats, sync, max_seconds=max_seconds)
    copy_timing = measure(copier(xs), repeats, sync, max_seconds=max_seconds)
    # every yardstick and peer is timed like li_scan: one warm-up, then up to
    # `repeats` runs within the budget (a slow one records fewer runs)
    loop_timing = measure(run_loop, repeats, loop_sync, max_seconds=max_seconds)
    loop_timing = scaled(loop_timing, workload.steps / loop_steps)
    norse = norse_fields(library, workload, loop_xs, p_loop, repeats, loop_sync, max_seconds)
    for prefix in PEERS:
        if f"{prefix}median_s" in norse:
            norse[f"speedup_over_{prefix.rstrip('_')}"] = norse[f"{prefix}median_s"] / fused_timing.median
    return {
        **norse,
        "status": "ok",
        "gpu": gpu_name(xs),
        "repeats": fused_timing.repeats,
        "copy_repeats": copy_timing.repeats,
        "loop_repeats": loop_timing.repeats,
        "loop_steps": loop_steps,
        "loop_scaled": loop_steps < workload.steps,
        **timing_fields("", fused_timing),
        **timing_fields("copy_", copy_timing),
        **timing_fields("loop_", loop_timing),
        "ratio_to_copy": fused_timing.median / copy_timing.median,
        "ratio_to_loop": fused_timing.median / loop_timing.median,
        "speedup_over_loop": loop_timing.median / fused_timing.median,
    }


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
    shrinks every workload (for tests). Each measurement (``li_scan``, the
    copy, the reference loop, the peers) gets one warm-up run and is timed
    ``repeats`` times within about ``max_seconds`` (see :func:`measure`).
    One failing case gives an ``error`` row and the others still run.

    The report has ``machine``, ``paths`` (:func:`backend_paths` of the
    backends), ``settings`` and ``results``: one row per
    backend, device and workload with the median and quartiles of
    ``li_scan`` (``median_s``, ...), of copying the input (``copy_*``), of
    the reference loop (``loop_*``) and of the peers (``norse_*``,
    ``norse_step_*``, module ``li_core.bench.peers``), the number of timed runs
    of each (``repeats``, ``loop_repeats``, ...), the ratios
    ``ratio_to_copy`` and ``ratio_to_loop`` (``li_scan``'s time over theirs)
    and ``speedup_over_loop``, ``speedup_over_norse`` and
    ``speedup_over_norse_step`` (their time over ``li_scan``'s). A row of
    the ``host`` workload has instead ``host``, its grid of per-call times
    beside the floor, and ``host_goals``, the calls that have a goal, each
    beside its floor (module ``li_core.bench.host``).
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

    # asked before anything is timed: a backend whose kernels load in the
    # background (li_backends.compiled) has them loaded by the time it says
    # which path it takes, so no timing shares the interpreter with the load
    paths = backend_paths(names)
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
        "paths": paths,
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
