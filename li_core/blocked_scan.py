"""Few neurons, long runs: the scan cut into chunks of time that run side by side.

A scan over ``T`` steps of ``n`` neurons pays a fixed overhead per step. When
``n`` is small that overhead is all there is, so the time is cut into ``K``
chunks of ``L`` steps and the chunks are scanned together as ``K * n`` lanes:

1. :func:`chunk_ends` scans every chunk from rest (``v = v_leak``, ``i = 0``):
   ``L`` steps over ``K * n`` lanes, keeping only each chunk's final
   deviation from rest;
2. :func:`carry` walks the ``K`` chunk boundaries (``K`` steps over ``n``
   lanes): a chunk's entering state is rest plus the previous chunk's final
   deviation from rest plus what ``L`` input-free steps make of the previous
   entering state's deviation,
   using the :class:`ChunkTransition` that :func:`chunk_transition` obtains by
   an input-free scan of ``L`` steps;
3. :func:`rescan_chunks` scans every chunk again from its entering state,
   which computes each step exactly as the one-step-at-a-time loop does.

That is about ``3 L + K`` steps instead of ``T``, about ``3.5 sqrt(T)`` with
the chunk length of :func:`chunk_length`. Every recurrence is in increment form,
``v + a*((v_leak - v) + j)`` and ``j - d*j`` with ``a = dt*tau_mem_inv`` and
``d = dt*tau_syn_inv``, and nothing is divided (the contract, docs/contract.md,
section 1). In float32 (and half precision, computed in float32) every state
update of :func:`scan_lanes` and of :func:`carry` is compensated: the state
is a float-float pair whose low part carries the rounding error of each
update (:func:`li_core.float_float.two_sum`), so a slow neuron's small changes are never
absorbed by a large state; the low parts start at 0 in each call and are
dropped at chunk boundaries. float64 runs the plain recurrences. The
derivation, the accuracy argument and the measured crossover are in
``docs/model.md``.

The per-step loop over the lanes is pluggable: every function that runs one
takes a ``lane_scan`` with the signature of a backend's scan without weights,
``lane_scan(xs, state, p, dt, record_states) -> (voltages, state)``, on
time-first ``xs`` of shape ``[steps, *lanes]`` whose state and parameters
broadcast to ``lanes``. The default is :func:`scan_lanes`, written against the
Array API. Everything here is written against the Array API too (no in-place
writes), so it runs on NumPy, PyTorch (with autograd), array-api-strict and
any other compliant library, and the three phases can run where the chunks
live (a chunked library runs phase 1 and 3 per chunk, phase 2 in one place).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import array_api_compat

from .arrays import HALF, dtype_name, namespace
from .float_float import compensated, two_sum
from .reference import rates
from .types import LIParameters, LIState

__all__ = [
    "MAX_BLOCKED_NEURONS",
    "MIN_BLOCKED_STEPS",
    "ChunkTransition",
    "LaneScan",
    "blocked_adjoint",
    "blocked_scan",
    "carry",
    "chunk_ends",
    "chunk_length",
    "chunk_transition",
    "from_chunks",
    "rescan_chunks",
    "scan_lanes",
    "to_chunks",
]

#: ``lane_scan(xs, state, p, dt, record_states) -> (voltages, state)``: a
#: backend's plain scan over time-first ``xs`` ``[steps, *lanes]``, without weights
LaneScan = Callable[[Any, LIState, LIParameters, float, bool], tuple[Any, LIState]]

#: above this many neurons per step the plain loop runs (see :func:`chunk_length`)
MAX_BLOCKED_NEURONS = 512
#: below this many steps the plain loop runs (see :func:`chunk_length`)
MIN_BLOCKED_STEPS = 64
#: chunk length ``L = CHUNK_SCALE * sqrt(T)`` (see :func:`chunk_length`)
CHUNK_SCALE = 0.7
#: a divisor of the step count within this factor of the best chunk length is preferred
CHUNK_SLACK = 1.3


def chunk_length(steps: int, neurons: int) -> int:
    """The chunk length ``L`` for a scan of ``steps`` steps over ``neurons``
    neurons per step, or 0 where the plain loop is faster.

    The blocked scan costs about ``3 L`` steps over ``K * neurons`` lanes,
    ``K = steps // L`` steps over ``neurons`` lanes, and a few passes over the
    data more than the loop. With a fixed cost ``o`` per lane step and ``o_c``
    per carry step, ``3 L o + (T / L) o_c`` is least at
    ``L = sqrt(T o_c / (3 o))``; measured, ``L = CHUNK_SCALE * sqrt(T)``.
    Near that optimum the cost is flat, so a divisor of ``steps`` within a
    factor :data:`CHUNK_SLACK` of it is preferred: then no tail of
    ``T % L`` steps is left to scan and join. The blocked scan wins while the
    per-step overhead dominates the loop, that is up to
    :data:`MAX_BLOCKED_NEURONS` neurons per step; beyond, the loop is close
    to the cost of touching the data and the blocked scan's extra passes make
    it slower. Below :data:`MIN_BLOCKED_STEPS` steps there is nothing to gain.
    """
    if neurons > MAX_BLOCKED_NEURONS or steps < MIN_BLOCKED_STEPS:
        return 0
    best = CHUNK_SCALE * math.sqrt(steps)
    divisors = [n for n in range(math.ceil(best / CHUNK_SLACK), math.floor(best * CHUNK_SLACK) + 1) if steps % n == 0]
    if divisors:
        return min(divisors, key=lambda n: abs(math.log(n / best)))
    return max(1, round(best))


def scan_lanes(
    xs: Any,
    state: LIState,
    p: LIParameters,
    dt: float,
    record_states: bool,
    *,
    keep_voltages: bool = True,
    axis: int = 0,
) -> tuple[Any, LIState]:
    """The default lane scan: the Euler step over time-first ``xs``
    ``[steps, *lanes]`` in increment form, ``j = i + x``,
    ``v = v + a*((v_leak - v) + j)``, ``i = j - d*j``. Returns the voltages
    ``[steps, *lanes]`` and the final state, or with ``record_states`` the
    ``v`` and ``i`` sequences, as a backend's scan does.

    In float32 the state is a float-float pair ``(v, ev)``, ``(i, ei)``, the
    low parts starting at 0 and never returned; each step is, in this order::

        j, ej = two_sum(i, x);   ej = ej + ei
        s     = ((v_leak - v) + j) + (ej - ev)
        v, ev = two_sum(v, s*a + ev)
        i, ei = two_sum(j, ej - j*d)

    Without ``keep_voltages`` (and ``record_states``) only the final state is
    kept and the voltages are None. ``axis`` is where the sequences put the
    time axis: 1 gives :func:`to_chunks` lanes ``[K, steps, *shape]``, which
    is already the time-first order of the whole scan."""
    xp = namespace(xs)
    a, d = rates(p, dt)
    leak = p.v_leak
    v, i = state
    carries = compensated(xs.dtype)
    ev: Any = 0.0
    ei: Any = 0.0
    voltages, currents = [], []
    for t in range(xs.shape[0]):
        if carries:
            j, ej = two_sum(i, xs[t, ...])
            ej = ej + ei
            s = ((leak - v) + j) + (ej - ev)
            v, ev = two_sum(v, s * a + ev)
            i, ei = two_sum(j, ej - j * d)
        else:
            j = i + xs[t, ...]
            v = v + a * ((leak - v) + j)
            i = j - d * j
        if keep_voltages or record_states:
            voltages.append(v)
        if record_states:
            currents.append(i)
    if xs.shape[0] == 0:
        shape = list(xs.shape[1:])
        shape.insert(axis, 0)
        empty = xp.zeros(tuple(shape), dtype=xs.dtype, device=array_api_compat.device(xs))
        if record_states:
            return empty, LIState(xp.asarray(empty, copy=True), xp.asarray(empty, copy=True))
        final = LIState(xp.asarray(state.v, copy=True), xp.asarray(state.i, copy=True))
        return (empty if keep_voltages else None), final
    if record_states:
        stacked = xp.stack(voltages, axis=axis)
        return stacked, LIState(xp.asarray(stacked, copy=True), xp.stack(currents, axis=axis))
    return (xp.stack(voltages, axis=axis) if keep_voltages else None), LIState(v, i)


class ChunkTransition(NamedTuple):
    """What ``L`` input-free steps do to a state's deviation from rest,
    ``u = v - v_leak`` and ``i``, in increment form:
    ``u -> u - v_lost*u + i_to_v*i`` and ``i -> i - i_lost*i``.

    ``v_lost = 1 - c**L`` and ``i_lost = 1 - b**L`` (``c = 1 - a``,
    ``b = 1 - d``) are the fractions of the deviation lost over a chunk and
    ``i_to_v`` is the voltage that a unit current leaves after ``L`` steps;
    all three per neuron, shaped like the broadcast time constants."""

    v_lost: Any
    i_to_v: Any
    i_lost: Any


def chunk_transition(
    p: LIParameters, dt: float, length: int, like: Any, lane_scan: LaneScan | None = None
) -> ChunkTransition:
    """The :class:`ChunkTransition` over ``length`` steps, in the dtype and on
    the device of the array ``like``, from one input-free lane scan of three
    lanes per neuron: from ``v = 0`` towards ``v_leak = 1`` at rate ``a``
    (``1 - c**L``), from ``i = 1`` with ``v_leak = 0`` (``i_to_v``), and from
    ``v = 0`` towards ``v_leak = 1`` at rate ``d`` (``1 - b**L``), each by
    the increments of the scan itself: no power, no closed form, no division."""
    xp = namespace(like)
    device = array_api_compat.device(like)

    def array(value: Any) -> Any:  # parameter arrays already have the dtype and device
        return xp.asarray(value, dtype=like.dtype, device=device) if isinstance(value, (float, list)) else value

    mem, syn = xp.broadcast_arrays(array(p.tau_mem_inv), array(p.tau_syn_inv))
    shape = tuple(mem.shape)
    column = (3,) + (1,) * len(shape)
    lanes = (3, *shape)
    zeros = xp.zeros(lanes, dtype=like.dtype, device=device)
    params = LIParameters(
        tau_syn_inv=syn,
        tau_mem_inv=xp.stack([mem, mem, syn]),
        v_leak=zeros + xp.reshape(array([1.0, 0.0, 1.0]), column),
    )
    start = LIState(zeros, zeros + xp.reshape(array([0.0, 1.0, 0.0]), column))
    no_input = xp.zeros((length, *lanes), dtype=like.dtype, device=device)
    if lane_scan is None:
        _, end = scan_lanes(no_input, start, params, dt, False, keep_voltages=False)
    else:
        _, end = lane_scan(no_input, start, params, dt, False)
    return ChunkTransition(end.v[0, ...], end.v[1, ...], end.v[2, ...])


def to_chunks(xs: Any, length: int) -> Any:
    """The first ``K * length`` steps of time-first ``xs`` ``[T, *shape]``
    (``K = T // length``) as ``[length, K, *shape]``: step ``t`` of chunk
    ``k`` is ``xs[k*length + t]``. Materialised in that order (one copy), so
    each step of the lane scan reads one contiguous block."""
    xp = namespace(xs)
    chunks = xs.shape[0] // length
    shape = xs.shape[1:]
    blocks = xp.reshape(xs[: chunks * length, ...], (chunks, length, math.prod(shape)))
    # the neurons as one axis: the reordering copy then moves whole rows
    lanes = xp.reshape(xp.permute_dims(blocks, (1, 0, 2)), (-1,))
    return xp.reshape(lanes, (length, chunks, *shape))


def from_chunks(ys: Any, chunk_major: bool = False) -> Any:
    """The inverse of :func:`to_chunks`: ``[length, K, *shape]`` (or, with
    ``chunk_major``, ``[K, length, *shape]``) as the time-first
    ``[K * length, *shape]``."""
    xp = namespace(ys)
    steps, shape = ys.shape[0] * ys.shape[1], ys.shape[2:]
    if not chunk_major:
        ys = xp.permute_dims(xp.reshape(ys, (*ys.shape[:2], math.prod(shape))), (1, 0, 2))
    return xp.reshape(ys, (steps, *shape))


def _spread(p: LIParameters, lanes: tuple[int, ...], like: Any) -> LIParameters:
    """Parameter arrays materialised in the lane shape (floats stay floats):
    every operation of a lane step then runs over one contiguous block
    instead of one short row per chunk."""
    xp = namespace(like)
    zeros = xp.zeros(lanes, dtype=like.dtype, device=array_api_compat.device(like))
    return LIParameters(*(value if isinstance(value, float) else value + zeros for value in p))


def chunk_ends(x_chunks: Any, p: LIParameters, dt: float, lane_scan: LaneScan | None = None) -> LIState:
    """Phase 1: the final state of every chunk of ``x_chunks``
    ``[L, K, *shape]`` scanned from rest, as its deviation from rest
    ``(v - v_leak, i)``; an ``LIState`` of ``[K, *shape]`` arrays. ``p``
    broadcasts to ``[K, *shape]``.

    The deviation ``u = v - v_leak`` follows the scan's own recurrence with
    ``v_leak = 0``, ``u + a*((0 - u) + j)``, so it is scanned as such from
    ``(0, 0)``: its end keeps its own precision instead of being rounded
    against ``v_leak`` (where a slow neuron's change per chunk is a few ulps
    of ``v_leak``)."""
    xp = namespace(x_chunks)
    device = array_api_compat.device(x_chunks)
    shape = x_chunks.shape[1:]
    rest = LIState(*(xp.zeros(shape, dtype=x_chunks.dtype, device=device) for _ in range(2)))
    p = p._replace(v_leak=0.0)
    if lane_scan is None:
        return scan_lanes(x_chunks, rest, p, dt, False, keep_voltages=False)[1]
    return lane_scan(x_chunks, rest, p, dt, False)[1]


def carry(ends: LIState, start: LIState, transition: ChunkTransition, v_leak: Any) -> LIState:
    """Phase 2: the state entering each of the ``K`` chunks, ``[K, *shape]``.

    Chunk 0 enters at ``start``; chunk ``k + 1`` enters at chunk ``k``'s
    final deviation from rest (``ends``, from :func:`chunk_ends`) plus what
    the transition makes of chunk ``k``'s entering deviation from rest
    ``u = v - v_leak``. Written as the state plus an increment, like the
    loop's step, so that each chunk rounds the large state once:
    ``v' = v + ((u_end + i_to_v*i) - v_lost*u)`` and
    ``i' = i + (i_end - i_lost*i)``. ``K - 1`` steps over the neurons.

    In float32 the walk is compensated like :func:`scan_lanes`: with the
    low parts ``ev``, ``ei`` (0 at chunk 0) and ``u = (v - v_leak) + ev``::

        v, ev = two_sum(v, (((u_end + i_to_v*i) - v_lost*u) + i_to_v*ei) + ev)
        i, ei = two_sum(i, (i_end - i_lost*i) + (ei - i_lost*ei))

    The entering states are the high parts."""
    xp = namespace(ends.v)
    v, i = start
    carries = compensated(ends.v.dtype)
    ev: Any = 0.0
    ei: Any = 0.0
    entering_v, entering_i = [v], [i]
    for k in range(ends.v.shape[0] - 1):
        u_end, i_end = ends.v[k, ...], ends.i[k, ...]
        if carries:
            u = (v - v_leak) + ev
            v_step = ((u_end + transition.i_to_v * i) - transition.v_lost * u) + transition.i_to_v * ei
            i_step = (i_end - transition.i_lost * i) + (ei - transition.i_lost * ei)
            v, ev = two_sum(v, v_step + ev)
            i, ei = two_sum(i, i_step)
        else:
            v = v + ((u_end + transition.i_to_v * i) - transition.v_lost * (v - v_leak))
            i = i + (i_end - transition.i_lost * i)
        entering_v.append(v)
        entering_i.append(i)
    return LIState(xp.stack(entering_v), xp.stack(entering_i))


def rescan_chunks(
    x_chunks: Any,
    entering: LIState,
    p: LIParameters,
    dt: float,
    record_states: bool,
    lane_scan: LaneScan | None = None,
) -> tuple[Any, LIState]:
    """Phase 3: every chunk of ``x_chunks`` ``[L, K, *shape]`` scanned again
    from its entering state (``[K, *shape]``, from :func:`carry`). Returns
    the voltages as the time-first ``[K * L, *shape]`` sequence and the
    chunks' final states ``[K, *shape]``, or with ``record_states`` the
    time-first ``v`` and ``i`` sequences."""
    if lane_scan is None:  # stacked chunk-major, which is already time-first: no reordering copy
        voltages, final = scan_lanes(x_chunks, entering, p, dt, record_states, axis=1)
    else:
        voltages, final = lane_scan(x_chunks, entering, p, dt, record_states)
    chunk_major = lane_scan is None
    if record_states:
        final = LIState(from_chunks(final.v, chunk_major), from_chunks(final.i, chunk_major))
    return from_chunks(voltages, chunk_major), final


def blocked_scan(
    xs: Any,
    state: LIState,
    w: Any,
    p: LIParameters,
    dt: float,
    record_states: bool = False,
    *,
    lane_scan: LaneScan | None = None,
    length: int | None = None,
) -> tuple[Any, LIState]:
    """A backend's ``scan`` (same arguments, same results) by chunks of time.

    ``xs`` is time-first, projected first as ``xs @ w.T`` when ``w`` is
    given; ``state`` has the neuron shape and ``p`` broadcasts to it.
    ``length`` is the chunk length (default :func:`chunk_length`); with 0, or
    more steps than ``xs`` has, the whole scan is one lane scan. The last
    ``T % length`` steps run as a lane scan from the state the chunks leave.
    float16 and bfloat16 are computed in float32 and returned in their dtype.
    """
    xp = namespace(xs)
    dtype = state.v.dtype  # xs may be a float32 projection of half-precision spikes
    if dtype_name(dtype) in HALF:
        xs, state, w, p = _in_float32(xp, xs, state, w, p)
    if w is not None:
        xs = xp.matmul(xs, xp.matrix_transpose(w))
    scan = lane_scan or scan_lanes
    steps, shape = xs.shape[0], xs.shape[1:]
    if length is None:
        length = chunk_length(steps, math.prod(shape))
    if length <= 0 or length > steps:
        return _cast(xp, dtype, *scan(xs, state, p, dt, record_states))

    chunks = steps // length
    main = chunks * length
    x_chunks = to_chunks(xs, length)
    lanes_p = _spread(p, (chunks, *shape), xs)
    ends = chunk_ends(x_chunks, lanes_p, dt, lane_scan)
    transition = chunk_transition(p, dt, length, xs, lane_scan)
    entering = carry(ends, state, transition, p.v_leak)
    voltages, final = rescan_chunks(x_chunks, entering, lanes_p, dt, record_states, lane_scan)
    last = LIState(final.v[-1, ...], final.i[-1, ...])
    if not record_states:
        final = last
    if main < steps:
        tail, tail_final = scan(xs[main:, ...], last, p, dt, record_states)
        voltages = xp.concat([voltages, tail])
        if record_states:
            final = LIState(xp.concat([final.v, tail_final.v]), xp.concat([final.i, tail_final.i]))
        else:
            final = tail_final
    return _cast(xp, dtype, voltages, final)


def _in_float32(xp: Any, xs: Any, state: LIState, w: Any, p: LIParameters) -> tuple[Any, LIState, Any, LIParameters]:
    """Every array argument in float32 (half precision is computed there)."""

    def each(value: Any) -> Any:
        return value if value is None or isinstance(value, float) else xp.astype(value, xp.float32)

    return each(xs), LIState(each(state.v), each(state.i)), each(w), LIParameters(*(each(q) for q in p))


def _cast(xp: Any, dtype: Any, voltages: Any, state: LIState) -> tuple[Any, LIState]:
    """The results in the caller's dtype (half precision is computed in float32)."""
    if dtype_name(dtype) not in HALF:
        return voltages, state
    return xp.astype(voltages, dtype), LIState(xp.astype(state.v, dtype), xp.astype(state.i, dtype))


def blocked_adjoint(
    gv: Any,
    gi: Any,
    a: Any,
    d: Any,
    record_states: bool,
    need_v0: bool,
    saved: tuple[Any, Any, Any, Any] | None = None,
    *,
    lane_scan: LaneScan | None = None,
    length: int | None = None,
) -> list[Any]:
    """The adjoint of a scan (the gradients of a loss through it), run by
    :func:`blocked_scan` over reversed time.

    ``gv`` ``[T, *shape]`` is the gradient arriving at the voltages, ``gi``
    at the currents (the sequence with ``record_states``, else the final
    one); ``a`` and ``d`` are the rates (:func:`li_core.reference.rates`).
    Returns ``[dx, dv_init, di_init]`` (``dv_init`` zero unless ``need_v0``)
    and, when ``saved = (v_init, voltages, js, v_leak)`` of the forward is
    given, ``[da, dd, dv_leak]`` per neuron (not yet summed to the
    parameters' shapes).

    With ``lam_t``, ``kap_t``, ``mu_t`` the gradients with respect to
    ``v_t``, ``i_t`` and ``j_t``, the adjoint ``lam_t = gv_t + (1 - a)
    lam_{t+1}``, ``kap_t = gi_t + mu_{t+1}``, ``mu_t = a lam_t + (1 - d)
    kap_t`` is, in reversed time ``s = T - 1 - t``, two first-order filters:
    ``a lam = H_a gv`` and ``mu = H_d (a lam + (1 - d) gi)`` with
    ``H_a y_s = (1 - a) H_a y_{s-1} + a y_s`` and ``H_d y_s = (1 - d)
    H_d y_{s-1} + y_s``. The forward scan from rest with ``v_leak = 0`` is
    the same two filters in the other order, ``v = H_a H_d x`` and
    ``i = (1 - d) H_d x``; scalar filters commute, so

        dx (reversed) = v of the scan of reversed gv
                        + i of the scan of reversed gi (or from i = gi, without inputs)

    and ``lam`` is the ``j`` of a scan whose synaptic rate is ``a``, whose
    final current ``lam_0 - a lam_0`` is ``dL/dv_init``. These run as lane
    groups of one blocked scan (``[T, groups, *shape]``, with per-group
    rates), the second only where ``gi`` is not zero, the third only where
    ``dL/dv_init`` or the parameter gradients are wanted:
    ``dL/da = sum_t lam_t ((j_t - v_{t-1}) + v_leak)``,
    ``dL/dd = -sum_t kap_t j_t``, ``dL/dv_leak = a sum_t lam_t``, these sums
    in float64. Every recurrence is the forward scan's
    own, in increment form (compensated in float32, as :func:`scan_lanes`);
    nothing divides."""
    xp = namespace(gv)
    shape = tuple(gv.shape[1:])
    zeros = xp.zeros(shape, dtype=gv.dtype, device=array_api_compat.device(gv))
    rate_a, rate_d = a + zeros, d + zeros
    reversed_gv = xp.flip(gv, axis=0)
    inputs, currents, mem, syn = [reversed_gv], [zeros], [rate_a], [rate_d]
    with_gi = bool(xp.any(gi != 0))
    if with_gi:  # the gradient of the currents, through the synaptic filter only
        inputs.append(xp.flip(gi, axis=0) if record_states else xp.zeros_like(gv))
        currents.append(zeros if record_states else gi + zeros)
        mem.append(rate_a)
        syn.append(rate_d)
    with_lam = need_v0 or saved is not None
    if with_lam:  # lam, filtered at rate a
        inputs.append(reversed_gv)
        currents.append(zeros)
        mem.append(rate_a)
        syn.append(rate_a)
    groups = len(inputs)
    state = LIState(xp.zeros((groups, *shape), dtype=gv.dtype, device=array_api_compat.device(gv)), xp.stack(currents))
    p = LIParameters(tau_syn_inv=xp.stack(syn), tau_mem_inv=xp.stack(mem), v_leak=0.0)
    lanes = inputs[0][:, None, ...] if groups == 1 else xp.stack(inputs, axis=1)
    record = with_gi or saved is not None
    voltages, final = blocked_scan(lanes, state, None, p, 1.0, record, lane_scan=lane_scan, length=length)
    reversed_dx = voltages[:, 0, ...]
    if with_gi:
        reversed_dx = reversed_dx + final.i[:, 1, ...]
    dx = xp.flip(reversed_dx, axis=0)
    dv0 = zeros
    if with_lam:
        dv0 = final.i[-1, -1, ...] if record else final.i[-1, ...]
    grads = [dx, dv0, xp.asarray(dx[0, ...], copy=True)]
    if saved is None:
        return grads
    v0, forward_voltages, js, v_leak = saved
    filtered = final.i[:, -1, ...]  # lam_s - a*lam_s in reversed time: lam_s = that at s - 1 plus gv_s
    lam = xp.flip(xp.concat([reversed_gv[:1, ...], filtered[:-1, ...] + reversed_gv[1:, ...]]), axis=0)
    last_gi = gi[-1:, ...] if record_states else gi[None, ...]
    later = dx[1:, ...] + gi[:-1, ...] if record_states else dx[1:, ...]
    kap = xp.concat([later, last_gi + zeros])
    before = xp.concat([(v0 + zeros)[None, ...], forward_voltages[:-1, ...]])
    drive = (js - before) + v_leak
    sums = (_wide_sum(xp, lam, drive), -_wide_sum(xp, kap, js), _wide_sum(xp, lam))
    return [*grads, sums[0], sums[1], a * sums[2]]


def _wide_sum(xp: Any, *factors: Any) -> Any:
    """``sum_t prod(factors)_t`` over the time axis: the factors' values are
    multiplied and summed in float64 (``T`` terms would round ``log2 T`` times
    in float32) and the sum rounded once to their dtype."""
    product = xp.astype(factors[0], xp.float64)
    for y in factors[1:]:
        product = product * xp.astype(y, xp.float64)
    return xp.astype(xp.sum(product, axis=0), factors[0].dtype)
