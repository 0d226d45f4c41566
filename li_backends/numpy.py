"""The ``numpy`` backend: in-place NumPy ufuncs on preallocated buffers.

The scan's loop allocates its outputs and its work buffers once (one
scratch buffer, which ends as the final voltage, and in float32 five more)
and then runs the recurrences of the contract (docs/contract.md), section 1
in their increment forms with ``out=`` ufuncs, so no step allocates: plain
in float64, and in float32 compensated (each state carries its rounding
error: :func:`li_core.float_float.forward_step`, operation for operation
the compiled kernels', which give the same bits); with
weights, all ``T`` steps are projected by one matmul first. For few neurons per step and long runs
(:func:`li_core.blocked_scan.chunk_length`) the scan runs the time-blocked
scan of :mod:`li_core.blocked_scan` with that loop as its lane scan: each of
its phases allocates the loop's buffers once, for all chunks. float16 is
computed in float32 (its state carried in float32 buffers) and stored back
in float16.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import li_core
from li_backends import compiled
from li_core import float_float
from li_core.blocked_scan import blocked_scan, chunk_length
from li_core.float_float import compensated
from li_core.rates import scan_rates
from li_core.reference import rates
from li_core.types import LIParameters, LIState


def _numpy() -> Any:
    return sys.modules.get("numpy") or __import__("numpy")


def _compute_dtype(np: Any, dtype: Any) -> Any:
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _has_leak(v_leak: Any) -> bool:
    """Whether the scan adds ``v_leak`` (not where it is the float 0.0)."""
    return not (isinstance(v_leak, float) and v_leak == 0.0)


def _as_compute(np: Any, dtype: Any, p: LIParameters) -> LIParameters:
    """Parameter arrays in the compute dtype (floats stay floats)."""
    return LIParameters(*(v if isinstance(v, float) else np.asarray(v, dtype=dtype) for v in p))


#: float coefficients as 0-d arrays, per (value, sign, dtype): see :func:`_constant`
_constants: dict = {}


def _constant(np: Any, value: Any, dtype: Any) -> Any:
    """A Python-float coefficient as a read-only 0-d array of ``dtype``
    (kept for the next call), an array coefficient as it is. NumPy converts
    a Python number on every operation, which costs more than an operation
    on 2,048 elements; the 0-d array gives the same results, the number
    being rounded to ``dtype`` either way."""
    if type(value) is not float:
        return value
    key = (value, math.copysign(1.0, value), dtype)  # (0.0 == -0.0, and they differ)
    constant = _constants.get(key)
    if constant is None:
        if len(_constants) >= 1024:
            _constants.clear()
        constant = _constants[key] = np.asarray(value, dtype=dtype)
        constant.flags.writeable = False
    return constant


def _step(x: Any, v: Any, i: Any, p: LIParameters, dt: float, dtype: Any) -> tuple[Any, Any]:
    """One step in ``dtype`` (that of ``v`` and ``i``), in new arrays:
    ``j = i + x``, ``v' = v + a*((v_leak - v) + j)``, ``i' = j - d*j``."""
    a, minus_d, leak = _coefficients(p, dt, dtype)
    j = i + x
    if leak is None:
        v_new = j - v  # (0 - v) + j, but for the sign of a zero that v + a*(...) drops
    else:
        v_new = leak - v
        v_new += j
    v_new *= a
    v_new += v  # v' = v + a*((v_leak - v) + j)
    i_new = j * minus_d
    i_new += j  # i' = j - d*j
    return v_new, i_new


#: :func:`_coefficients` of recent parameter records, per ``id(p)``: ``(p, dt, dtype, coefficients)``
_recent: dict[int, tuple[LIParameters, float, Any, tuple[Any, Any, Any]]] = {}


def _coefficients(p: LIParameters, dt: float, dtype: Any) -> tuple[Any, Any, Any]:
    """``(a, -d, v_leak)`` of :func:`li_core.reference.rates` for the step in
    ``dtype``, floats as :func:`_constant`'s 0-d arrays; ``v_leak`` None
    where it is the float 0.0. A record of floats is remembered (and holds
    its ``id``), so a loop over time with one ``p`` and ``dt`` forms them
    once; arrays may change in place and are taken as they are each time."""
    recent = _recent.get(id(p))
    if recent is not None and recent[0] is p and recent[1] == dt and recent[2] is dtype:
        return recent[3]
    np = _numpy()
    a, d = rates(p, dt)
    leak = _constant(np, p.v_leak, dtype) if _has_leak(p.v_leak) else None
    coefficients = (_constant(np, a, dtype), _constant(np, -d, dtype), leak)
    if type(p[0]) is type(p[1]) is type(p[2]) is float:
        if len(_recent) >= 64:
            _recent.clear()
        _recent[id(p)] = (p, dt, dtype, coefficients)
    return coefficients


class NumPyBackend(li_core.Backend):
    """Leaky integrators on NumPy arrays, CPU."""

    name = "numpy"
    library = "numpy"
    priority = 10
    dtypes = ("float16", "float32", "float64")
    devices = ("cpu",)

    def notes(self) -> str:
        """Which loop the scans take."""
        return compiled.notes("float32 and float64 scans") + "; float16 scans run the NumPy loop"

    def handles(self, x: Any) -> bool:
        np = sys.modules.get("numpy")
        return np is not None and isinstance(x, (np.ndarray, np.generic))

    def asarray(self, array: Any, device: Any = None) -> Any:
        if device not in (None, "cpu"):
            raise ValueError(f"the numpy backend only has device 'cpu', got device={device!r}")
        return _numpy().array(array, copy=True)

    def to_numpy(self, x: Any) -> Any:
        return _numpy().asarray(x)

    def feed_forward_step(self, x: Any, state: LIState, p: LIParameters, dt: float) -> tuple[Any, LIState]:
        v, i = state
        dtype = v.dtype  # x may be a float32 projection of float16 spikes
        if dtype.char != "e":
            v_new, i_new = _step(x, v, i, p, dt, dtype)
            return v_new, LIState(v_new.copy(), i_new)
        np = _numpy()
        compute = np.dtype(np.float32)
        v_new, i_new = _step(
            x.astype(compute, copy=False),
            v.astype(compute),
            i.astype(compute),
            _as_compute(np, compute, p),
            dt,
            compute,
        )
        return v_new.astype(dtype), LIState(v_new.astype(dtype), i_new.astype(dtype))

    def step(self, x: Any, state: LIState, w: Any, p: LIParameters, dt: float) -> tuple[Any, LIState]:
        return self.feed_forward_step(self._project(x, w), state, p, dt)

    @staticmethod
    def _project(x: Any, w: Any) -> Any:
        """``x @ w.T``; float16 is multiplied in float32 (and kept there:
        the step casts its results back)."""
        np = _numpy()
        compute = _compute_dtype(np, x.dtype)
        x, w = x.astype(compute, copy=False), w.astype(compute, copy=False)
        if x.ndim <= 2:
            return np.matmul(x, w.T)
        # one 2-d GEMM, not a batch of small ones
        rows = math.prod(x.shape[:-1])  # (not -1: with no inputs, x has no elements to infer it from)
        return np.matmul(x.reshape(rows, x.shape[-1]), w.T).reshape(*x.shape[:-1], w.shape[0])

    def scan(
        self, xs: Any, state: LIState, w: Any, p: LIParameters, dt: float, record_states: bool
    ) -> tuple[Any, LIState]:
        dtype = xs.dtype
        if w is not None:
            xs = self._project(xs, w)  # all T steps in one matmul
        path = compiled.status(xs.shape[0], xs.size // xs.shape[0]) if dtype in COMPILED_DTYPES and xs.size else "off"
        if path == "compiled":
            return self.compiled(xs, state, p, dt, record_states)
        length = chunk_length(xs.shape[0], math.prod(xs.shape[1:])) if BLOCKED and path == "off" else 0
        if not length:
            return self.loop(xs, state, p, dt, record_states, dtype)
        shape = xs.shape[1:]
        state = LIState(*(_numpy().broadcast_to(s, shape) for s in state))
        return blocked_scan(xs, state, None, p, dt, record_states, lane_scan=self.loop, length=length)

    @staticmethod
    def compiled(xs: Any, state: LIState, p: LIParameters, dt: float, record_states: bool) -> tuple[Any, LIState]:
        """The scan of (projected) float32 or float64 ``xs`` (``T >= 1``,
        at least one neuron) by the compiled loop, :func:`li_backends.compiled.scan`,
        which computes exactly what :meth:`loop` does."""
        np = _numpy()
        p = _as_compute(np, xs.dtype, p)
        voltages = np.empty(xs.shape, dtype=xs.dtype)
        currents = np.empty(xs.shape, dtype=xs.dtype) if record_states else None
        i_end = np.empty(xs.shape[1:], dtype=xs.dtype)
        v_end = None if record_states else np.empty(xs.shape[1:], dtype=xs.dtype)
        leak = p.v_leak if _has_leak(p.v_leak) else None
        compiled.scan(xs, state.v, state.i, *scan_rates(p, dt), leak, voltages, currents, None, i_end, v_end)
        if currents is not None:
            return voltages, LIState(voltages.copy(), currents)
        return voltages, LIState(v_end, i_end)

    @staticmethod
    def loop(
        xs: Any, state: LIState, p: LIParameters, dt: float, record_states: bool, dtype: Any = None
    ) -> tuple[Any, LIState]:
        """The scan of (projected) ``xs`` one step at a time, in place;
        results in ``dtype`` (default: that of ``xs``; the scan asks for
        float16 where a float32 projection stands for float16 inputs)."""
        np = _numpy()
        dtype = xs.dtype if dtype is None else dtype
        compute = _compute_dtype(np, dtype)
        steps, shape = xs.shape[0], xs.shape[1:]
        p = _as_compute(np, compute, p)
        a, d = rates(p, dt)
        leak = p.v_leak if _has_leak(p.v_leak) else None

        voltages = np.empty((steps, *shape), dtype=dtype)
        currents = np.empty((steps, *shape), dtype=dtype) if record_states else None
        current = np.array(np.broadcast_to(state.i, shape), dtype=compute)  # our own buffer
        scratch = np.empty(shape, dtype=compute)
        if compensated(compute):  # float-float, operation for operation the compiled kernels' (same bits)
            j, carried = np.empty(shape, compute), float_float.forward_step(np, current, a, d, leak)

            def step(x: Any, previous: Any, v: Any) -> None:
                carried(x, previous, current, v, j, current)

        else:
            step = _plain_step(np, current, scratch, a, d, leak)
        # float16 keeps its voltage in two float32 buffers, in turns (a step
        # reads one and writes the other); otherwise the previous voltage is
        # the last output row (first: the caller's, read only)
        staging = None
        if compute != dtype:
            staging = (np.array(np.broadcast_to(state.v, shape), dtype=compute), np.empty(shape, compute))
        previous = staging[0] if staging is not None else np.broadcast_to(state.v, shape)
        for t in range(steps):
            v = staging[(t + 1) % 2] if staging is not None else voltages[t, ...]
            step(xs[t, ...], previous, v)
            if staging is not None:
                voltages[t, ...] = v
            if currents is not None:
                currents[t, ...] = current
            previous = v
        if record_states:
            return voltages, LIState(voltages.copy(), currents)
        if staging is not None:
            return voltages, LIState(previous.astype(dtype), current.astype(dtype))
        np.copyto(scratch, previous)  # the scratch buffer becomes the final voltage
        return voltages, LIState(scratch, current)


def _plain_step(np: Any, current: Any, scratch: Any, a: Any, d: Any, leak: Any) -> Any:
    """The plain step of :meth:`NumPyBackend.loop` (float64): ``step(x_t,
    v_{t-1}, out)`` writes ``v_t`` into ``out`` (not ``v_{t-1}``'s buffer)
    and turns ``current`` from ``i_{t-1}`` into ``i_t``, through ``j_t`` in
    place; ``scratch`` is its one work buffer (free between steps)."""
    j = current

    def step(x: Any, previous: Any, v: Any) -> None:
        np.add(j, x, out=j)  # j_t = i_{t-1} + x_t
        if leak is not None:
            np.subtract(leak, previous, out=scratch)
            np.add(scratch, j, out=scratch)
        else:
            np.subtract(j, previous, out=scratch)  # (0 - v) + j, exactly
        np.multiply(scratch, a, out=scratch)
        np.add(previous, scratch, out=v)  # v_t = v_{t-1} + a*((v_leak - v_{t-1}) + j_t)
        np.multiply(j, d, out=scratch)
        np.subtract(j, scratch, out=j)  # i_t = j_t - d*j_t

    return step


#: the dtypes whose scans run the compiled loops where they can (numba has no
#: float16 on the CPU: float16 runs the loop, in float32)
COMPILED_DTYPES = ("float32", "float64")
#: set to False to run the loop wherever the blocked scan would (the tests and
#: the benchmarks compare both)
BLOCKED = True


@li_core.hookimpl
def li_register_backends() -> list[li_core.Backend]:
    return [NumPyBackend()]
