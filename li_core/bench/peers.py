"""Peer columns: other libraries' neurons timed on the same input as
``li_scan`` (Norse 1.1's ``LI`` module, where installed)."""

from __future__ import annotations

from typing import Any

from ..types import LIParameters
from .timing import LOOP_REPEATS, gradient, measure, scaled, timing_fields
from .workloads import DT, Workload


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


def norse_fields(
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

    run = gradient(library, norse, xs) if workload.training else (lambda: norse(xs))
    if run is None:
        return {}
    try:
        timing = measure(run, min(repeats, LOOP_REPEATS), sync, max_seconds=max_seconds)
    except Exception as exc:  # noqa: BLE001 - reported; Norse's own limits never hide li_scan's row
        return {"norse_reason": f"{type(exc).__name__}: {exc}"}
    return timing_fields("norse_", scaled(timing, workload.steps / xs.shape[0]))
