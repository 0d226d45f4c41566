"""The public functions: check the arguments, choose a backend, run it.

A step whose arguments need nothing converted, broadcast or warned about
(:func:`li_core.validation.plain_call`: the common case of a loop over time)
goes to its backend as it is; any other call takes the full checks."""

from __future__ import annotations

from typing import Any

from . import forking  # noqa: F401 - imported to record forks from now on (see li_core.forking)
from .backend import Backend
from .selection import select
from .types import LIParameters, LIState
from .validation import check_call, complete_state, plain_call, refuse_dtype

_DEFAULT_PARAMETERS = LIParameters()


def _plain_backend(backend: str | Backend | None, x: Any, argument: str, operation: str, dtype: str) -> Backend:
    """The backend of a plain call (:func:`~li_core.validation.plain_call`
    gave its ``dtype``), refused where it does not compute in that dtype."""
    chosen = select(backend, x, argument, operation)
    if dtype not in chosen.dtypes:
        refuse_dtype(argument, dtype, chosen)
    return chosen


def li_step(
    input_spikes: Any,
    state: LIState | None,
    input_weights: Any,
    p: LIParameters = _DEFAULT_PARAMETERS,
    dt: float = 0.001,
    *,
    backend: str | Backend | None = None,
) -> tuple[Any, LIState]:
    """One forward-Euler step of leaky integrators driven through weights.

    ``x = input_spikes @ input_weights.T`` (``[..., in]`` through ``[out, in]``
    gives ``[..., out]``), then ``j = i + x``,
    ``v' = v + dt*tau_mem_inv*((v_leak - v) + j)``, ``i' = j - dt*tau_syn_inv*j``.
    Returns ``(v', LIState(v', i'))``; the two voltages are distinct arrays.
    ``state=None`` starts from ``v = v_leak, i = 0``.
    """
    if input_weights is not None and (dtype := plain_call(input_spikes, state, input_weights, p, dt)) is not None:
        chosen = _plain_backend(backend, input_spikes, "input_spikes", "li_step", dtype)
        return chosen.step(input_spikes, state, input_weights, p, dt)  # type: ignore[arg-type]  # (plain_call saw an LIState)
    call = check_call("input_spikes", input_spikes, state, input_weights, p, dt, time_axis=False, weights_required=True)
    chosen = select(backend, input_spikes, "input_spikes", "li_step")
    return chosen.step(input_spikes, complete_state(call, chosen), input_weights, call.p, call.dt)


def li_feed_forward_step(
    input_tensor: Any,
    state: LIState | None,
    p: LIParameters = _DEFAULT_PARAMETERS,
    dt: float = 0.001,
    *,
    backend: str | Backend | None = None,
) -> tuple[Any, LIState]:
    """One forward-Euler step with an already weighted input current:
    ``j = i + x``, ``v' = v + dt*tau_mem_inv*((v_leak - v) + j)``,
    ``i' = j - dt*tau_syn_inv*j``. Returns ``(v', LIState(v', i'))`` with
    distinct voltage arrays; ``state=None`` starts from ``v = v_leak, i = 0``.
    """
    if (dtype := plain_call(input_tensor, state, None, p, dt)) is not None:  # (the common case)
        chosen = _plain_backend(backend, input_tensor, "input_tensor", "li_feed_forward_step", dtype)
        return chosen.feed_forward_step(input_tensor, state, p, dt)  # type: ignore[arg-type]  # (plain_call saw an LIState)
    call = check_call("input_tensor", input_tensor, state, None, p, dt, time_axis=False)
    chosen = select(backend, input_tensor, "input_tensor", "li_feed_forward_step")
    return chosen.feed_forward_step(input_tensor, complete_state(call, chosen), call.p, call.dt)


def li_scan(
    inputs: Any,
    state: LIState | None = None,
    input_weights: Any = None,
    p: LIParameters = _DEFAULT_PARAMETERS,
    dt: float = 0.001,
    *,
    backend: str | Backend | None = None,
    record_states: bool = False,
) -> tuple[Any, LIState]:
    """Run the step over the time-first ``inputs`` ``[T, *shape]``, carrying the state.

    Without weights the neurons have shape ``shape``; with ``input_weights``
    ``[out, in]`` the inputs are ``[T, *batch, in]`` and the neurons
    ``[*batch, out]``. Returns the voltages ``[T, *neurons]`` and the final
    state, or with ``record_states=True`` an ``LIState`` of the whole
    ``[T, *neurons]`` sequences. ``T = 0`` returns an empty sequence and the
    initial state.
    """
    if not isinstance(record_states, bool):
        raise TypeError(f"record_states must be True or False, got {record_states!r}")
    call = check_call("inputs", inputs, state, input_weights, p, dt, time_axis=True)
    chosen = select(backend, inputs, "inputs", "li_scan")
    return chosen.scan(inputs, complete_state(call, chosen), input_weights, call.p, call.dt, record_states)
