"""Random test cases, generated once in NumPy float64 so that every backend
sees the same numbers (converted with its own ``asarray``)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from li_core.types import LIParameters, LIState


class Case(NamedTuple):
    """Inputs ``xs`` ``[T, *batch, n_in]`` (through ``weights`` ``[n_out, n_in]``
    when weighted, else ``n_in == n_out``), an initial state and per-neuron
    parameters of shape ``[n_out]``, all float64 NumPy."""

    xs: np.ndarray
    weights: np.ndarray | None
    state: LIState
    p: LIParameters
    dt: float


def random_case(
    steps: int,
    batch: tuple[int, ...] = (3,),
    neurons: int = 17,
    inputs: int | None = None,
    *,
    seed: int = 0,
    per_neuron: bool = True,
    dt: float = 1e-3,
) -> Case:
    """A random case; ``inputs`` set means a weighted case with that many inputs.

    Time constants are drawn so that ``dt*tau_inv`` lies in (0.05, 0.45), the
    range of realistic, stable forward-Euler models, whatever ``dt``.
    """
    rng = np.random.default_rng(seed)
    n_in = neurons if inputs is None else inputs
    xs = rng.normal(0.0, 1.0, size=(steps, *batch, n_in))
    weights = None if inputs is None else rng.normal(0.0, 1.0 / np.sqrt(n_in), size=(neurons, n_in))
    shape = (*batch, neurons)
    state = LIState(rng.normal(0.0, 0.5, size=shape), rng.normal(0.0, 0.5, size=shape))
    if per_neuron:
        p = LIParameters(
            tau_syn_inv=rng.uniform(0.05, 0.45, size=neurons) / dt,
            tau_mem_inv=rng.uniform(0.05, 0.45, size=neurons) / dt,
            v_leak=rng.uniform(-1.0, 1.0, size=neurons),
        )
    else:
        p = LIParameters(0.2 / dt, 0.1 / dt, 0.25)
    return Case(xs, weights, state, p, dt)


def slow_case(slowest: float, *, seed: int = 0, dt: float = 1e-4) -> Case:
    """Slow neurons and synapses: per-neuron ``dt*tau_inv`` on a half-decade
    ladder from 1 down to ``slowest``, the membrane rates ascending where the
    synaptic ones descend (so fast meets slow), plus one neuron slow in both;
    a batch of 2 over ``ceil(2/slowest)`` steps of random inputs with mean 0.5.

    The positive mean drives every neuron towards a steady state, the part a
    mis-rounded decay rate (``1 - dt*tau_inv`` rounded near 1) shifts most.
    """
    rng = np.random.default_rng(seed)
    decades = -math.log10(slowest)
    ladder = np.logspace(0.0, -decades, round(2 * decades) + 1)
    mem, syn = np.append(ladder, slowest), np.append(ladder[::-1], slowest)
    neurons, steps = mem.size, math.ceil(2.0 / slowest)
    xs = rng.normal(0.5, 1.0, size=(steps, 2, neurons))
    state = LIState(rng.normal(0.0, 0.5, size=(2, neurons)), rng.normal(0.0, 0.5, size=(2, neurons)))
    p = LIParameters(tau_syn_inv=syn / dt, tau_mem_inv=mem / dt, v_leak=rng.uniform(-1.0, 1.0, size=neurons))
    return Case(xs, None, state, p, dt)


def ladder_case(slowest: float, steps: int | None = None, *, seed: int = 0, dt: float = 1e-4) -> Case:
    """Long runs of slow neurons: per-neuron ``dt*tau_inv`` on a decade ladder
    from 1 down to ``slowest``, the membrane rates ascending where the
    synaptic ones descend, plus one neuron slow in both; one batch row over
    ``steps`` (default ``ceil(1/slowest)``) steps of random inputs with mean
    0.5, from a random state with a random ``v_leak`` per neuron.

    A step moves a slow neuron's ``v`` by about ``slowest`` times its drive,
    far below half a unit in the last place of ``v`` in float32 when
    ``slowest`` is 1e-6 or less: a plain float32 recurrence rounds those
    changes away (absorption) and drifts, one that carries its rounding
    error does not.
    """
    rng = np.random.default_rng(seed)
    ladder = np.logspace(0.0, math.log10(slowest), round(-math.log10(slowest)) + 1)
    mem, syn = np.append(ladder, slowest), np.append(ladder[::-1], slowest)
    neurons, steps = mem.size, math.ceil(1.0 / slowest) if steps is None else steps
    xs = rng.normal(0.5, 1.0, size=(steps, 1, neurons))
    state = LIState(rng.normal(0.0, 0.5, size=(1, neurons)), rng.normal(0.0, 0.5, size=(1, neurons)))
    p = LIParameters(tau_syn_inv=syn / dt, tau_mem_inv=mem / dt, v_leak=rng.uniform(-1.0, 1.0, size=neurons))
    return Case(xs, None, state, p, dt)


def convert(case: Case, to_array: Any) -> Case:
    """The case with every array passed through ``to_array`` (floats kept)."""

    def each(value: Any) -> Any:
        return value if value is None or isinstance(value, float) else to_array(value)

    return Case(
        each(case.xs),
        each(case.weights),
        LIState(each(case.state.v), each(case.state.i)),
        LIParameters(*(each(value) for value in case.p)),
        case.dt,
    )
