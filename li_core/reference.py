"""The numerical yardstick: the model written once in the pure Array API.

No in-place writes and no library-specific calls, so these functions run on
any Array API library (NumPy, array-api-strict, PyTorch, CuPy, JAX, ...). They
follow the contract (docs/contract.md), section 1 literally, one Euler step at
a time, in its increment forms; half-precision inputs are computed in float32
and returned in their own dtype.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from .arrays import HALF, dtype_name, namespace
from .types import LIParameters, LIState


def rates(p: LIParameters, dt: float) -> tuple[Any, Any]:
    """``(a, d) = (dt*tau_mem_inv, dt*tau_syn_inv)``: the fractions of the way
    to its target that ``v`` and ``j`` decay in one step. The increment forms
    ``v_t = v_{t-1} + a*((v_leak - v_{t-1}) + j_t)`` and ``i_t = j_t - d*j_t``
    use them as they are; the decays ``c = 1 - a`` and ``b = 1 - d`` are
    rounded near 1 in float32 and must not drive a float32 recurrence.
    Floats stay floats; arrays stay arrays."""
    return dt * p.tau_mem_inv, dt * p.tau_syn_inv


def _copy(xp: Any, x: Any) -> Any:
    return xp.asarray(x, copy=True)


def _cast_all(xp: Any, dtype: Any, *values: Any) -> list[Any]:
    return [value if isinstance(value, float) else xp.astype(value, dtype) for value in values]


def _upcast(xp: Any, x: Any, state: LIState, w: Any, p: LIParameters) -> tuple[Any, LIState, Any, LIParameters]:
    """Half-precision arguments as float32 (others unchanged)."""
    if dtype_name(x.dtype) not in HALF:
        return x, state, w, p
    x, v, i, *params = _cast_all(xp, xp.float32, x, state.v, state.i, *p)
    if w is not None:
        w = xp.astype(w, xp.float32)
    return x, LIState(v, i), w, LIParameters(*params)


def _euler(x: Any, state: LIState, a: Any, d: Any, v_leak: Any) -> tuple[Any, Any]:
    """One step in the contract's order and increment forms, with the rates
    ``(a, d)`` of :func:`rates`: the current jumps (``j = i + x``), then
    ``v' = v + a*((v_leak - v) + j)`` and ``i' = j - d*j``."""
    j = state.i + x
    v_new = state.v + a * ((v_leak - state.v) + j)
    i_new = j - d * j
    return v_new, i_new


def feed_forward_step(x: Any, state: LIState, p: LIParameters, dt: float) -> tuple[Any, LIState]:
    """One Euler step with an already weighted input current ``x``."""
    xp = namespace(x)
    dtype = x.dtype
    x, state, _, p = _upcast(xp, x, state, None, p)
    v_new, i_new = _euler(x, state, *rates(p, dt), p.v_leak)
    v_new, i_new = xp.astype(v_new, dtype), xp.astype(i_new, dtype)
    return v_new, LIState(_copy(xp, v_new), i_new)


def step(x: Any, state: LIState, w: Any, p: LIParameters, dt: float) -> tuple[Any, LIState]:
    """One Euler step with input spikes projected as ``x @ w.T``."""
    xp = namespace(x)
    dtype = x.dtype
    x, state, w, p = _upcast(xp, x, state, w, p)
    v_new, i_new = _euler(xp.matmul(x, xp.matrix_transpose(w)), state, *rates(p, dt), p.v_leak)
    v_new, i_new = xp.astype(v_new, dtype), xp.astype(i_new, dtype)
    return v_new, LIState(_copy(xp, v_new), i_new)


def scan(
    xs: Any, state: LIState, w: Any, p: LIParameters, dt: float, record_states: bool = False
) -> tuple[Any, LIState]:
    """Euler steps over the time-first ``xs``; with ``w`` all ``T`` steps are
    projected by one matmul first. The slices come from ``unstack`` where the
    namespace has it (Array API 2023.12): indexing ``xs[t]`` in a loop makes
    an autograd backward quadratic in ``T``."""
    xp = namespace(xs)
    dtype = xs.dtype
    xs, current, w, p = _upcast(xp, xs, state, w, p)
    if w is not None:
        xs = xp.matmul(xs, xp.matrix_transpose(w))
    a, d = rates(p, dt)
    vs, is_ = [], []
    slices = xp.unstack(xs, axis=0) if hasattr(xp, "unstack") else (xs[t, ...] for t in range(xs.shape[0]))
    for x_t in slices:
        current = LIState(*_euler(x_t, current, a, d, p.v_leak))
        vs.append(current.v)
        is_.append(current.i)
    if not vs:
        empty = xp.zeros((0, *state.v.shape), dtype=dtype, device=array_api_compat.device(xs))
        if record_states:
            return empty, LIState(_copy(xp, empty), _copy(xp, empty))
        return empty, LIState(_copy(xp, state.v), _copy(xp, state.i))
    voltages = xp.astype(xp.stack(vs), dtype)
    if record_states:
        return voltages, LIState(_copy(xp, voltages), xp.astype(xp.stack(is_), dtype))
    return voltages, LIState(xp.astype(vs[-1], dtype), xp.astype(is_[-1], dtype))
