"""Exact values of the model, derived with rational arithmetic
(:class:`fractions.Fraction`) from its definition, independently of
:mod:`li_core.reference`: the yardstick's own check."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from li_core.types import LIParameters, LIState


def exact_scan(
    xs: np.ndarray, state: LIState, p: LIParameters, dt: float, *, digits: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The voltages and currents ``[T, *neurons]`` of the Euler steps
    ``j = i + x``, ``v' = v + dt*tau_mem_inv*((v_leak - v) + j)``,
    ``i' = j - dt*tau_syn_inv*j`` over ``xs`` ``[T, *neurons]``, computed
    from the exact binary values of every float (``dt`` included) and
    rounded once to float64 at the end: exactly, or with ``digits``
    significant decimal digits per operation (:class:`decimal.Decimal`, for
    long scans, where exact fractions grow without bound)."""
    if digits is None:
        return _scan(xs, state, p, dt, Fraction)
    with decimal.localcontext(decimal.Context(prec=digits)):
        return _scan(xs, state, p, dt, decimal.Decimal)


def _scan(xs: np.ndarray, state: LIState, p: LIParameters, dt: float, number: Callable[[float], Any]) -> Any:
    shape = xs.shape[1:]
    v0, i0, tau_syn, tau_mem, v_leak = (
        np.broadcast_to(np.asarray(q, dtype=np.float64), shape) for q in (state.v, state.i, *p)
    )
    step = number(dt)
    vs, is_ = np.empty(xs.shape), np.empty(xs.shape)
    for neuron in np.ndindex(shape):
        v, i = number(v0[neuron]), number(i0[neuron])
        a, d, leak = step * number(tau_mem[neuron]), step * number(tau_syn[neuron]), number(v_leak[neuron])
        for t in range(xs.shape[0]):
            at = (t, *neuron)
            j = i + number(xs[at])
            v = v + a * ((leak - v) + j)
            i = j - d * j
            vs[at], is_[at] = float(v), float(i)
    return vs, is_
