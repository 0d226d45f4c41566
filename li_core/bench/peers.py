"""Peer columns: other libraries' neurons timed on the same input as
``li_scan``, where Norse 1.1 is installed: its ``LI`` module, and its own
functional step, ``li_feed_forward_step``, in a Python loop over
``x.unbind(0)``.

Both are timed exactly like ``li_scan`` (one warm-up run, then up to
``repeats`` runs within the time budget), so a figure that rests on fewer
runs says so in its ``*_repeats`` field. The module reads its input as
``input_tensor[ts]`` step by step; in PyTorch the backward of each such read
is a gradient the size of the whole sequence, so its training time grows
with ``T**2`` while the step loop's grows with ``T``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..types import LIParameters
from .timing import gradient, measure, scaled, timing_fields
from .workloads import DT, Workload

#: the peers' field prefixes, and what each is (for the report's notes)
PEERS = {
    "norse_": "Norse's LI module",
    "norse_step_": "Norse's li_feed_forward_step in a loop over x.unbind(0)",
}


def norse_forwards(p: LIParameters, device: Any) -> dict[str, Callable[[Any], Any]] | None:
    """``{prefix: voltages of x}`` for Norse's ``LI`` module and its
    functional step loop with the parameters ``p``, or None where Norse is
    not installed."""
    import importlib.util

    if importlib.util.find_spec("norse") is None:
        return None
    import torch
    from norse.torch import LI
    from norse.torch import LIParameters as NorseParameters
    from norse.torch.functional.leaky_integrator import LIState, li_feed_forward_step

    norse_p = NorseParameters(*(v if isinstance(v, torch.Tensor) else torch.tensor(v, device=device) for v in p))
    module = LI(p=norse_p, dt=DT)

    def step_loop(xs: Any) -> Any:
        state = LIState(torch.zeros_like(xs[0]), torch.zeros_like(xs[0]))
        voltages = []
        for x in xs.unbind(0):
            v, state = li_feed_forward_step(x, state, norse_p, DT)
            voltages.append(v)
        return torch.stack(voltages)

    return {"norse_": lambda xs: module(xs)[0], "norse_step_": step_loop}


def norse_fields(
    library: str | None,
    workload: Workload,
    xs: Any,
    p: LIParameters,
    repeats: int,
    sync: Any,
    max_seconds: float | None,
) -> dict[str, Any]:
    """Norse 1.1's ``LI`` module and functional step loop timed on the same
    torch input like ``li_scan`` (over the step loop's steps, scaled like
    it), for the feed-forward workloads when Norse is installed: for each of
    :data:`PEERS`, the median and quartiles and the number of timed runs, or
    the reason it failed; else no fields."""
    if library != "torch" or workload.inputs is not None:
        return {}
    forwards = norse_forwards(p, xs.device)
    if forwards is None:
        return {}
    fields: dict[str, Any] = {}
    for prefix, forward in forwards.items():
        run = gradient(library, forward, xs) if workload.training else functools.partial(forward, xs)
        if run is None:
            continue
        try:
            timing = measure(run, repeats, sync, max_seconds=max_seconds)
        except Exception as exc:  # noqa: BLE001 - reported; Norse's own limits never hide li_scan's row
            fields[f"{prefix}reason"] = f"{type(exc).__name__}: {exc}"
            continue
        fields.update(timing_fields(prefix, scaled(timing, workload.steps / xs.shape[0])))
        fields[f"{prefix}repeats"] = timing.repeats
    return fields
