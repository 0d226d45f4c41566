"""Argument checks and defaults, done once in the core for every backend.

Every check runs before any computation and names the argument with the
offending shape, dtype, device or value (the contract (docs/contract.md),
section 5): ``TypeError`` for what is not a supported floating array of the
input's library (or of a companion library that the backends handling the
input declare, see :meth:`Backend.companions`) and dtype, ``ValueError`` for
shapes, devices and values that do not fit.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import sys
import warnings
from typing import Any, NamedTuple

from .arrays import FLOATING, describe, device, dtype_name, library_name, namespace
from .backend import Backend
from .errors import UnstableStepWarning
from .registry import registry
from .types import LIParameters, LIState

PARAMETER_FIELDS = LIParameters._fields
#: forward Euler of a decay by the fraction ``dt*tau_inv`` per step is stable up to 2
STABLE_FRACTION = 2.0


class Call(NamedTuple):
    """Checked arguments of one call."""

    x: Any
    state: LIState | None
    weights: Any
    p: LIParameters
    dt: float
    argument: str  # the input's argument name, for messages
    library: str
    dtype: str
    neuron_shape: tuple[int, ...]


def _is_real_number(value: Any) -> bool:
    return isinstance(value, (float, int, numbers.Real)) and not isinstance(value, bool)


def check_dt(dt: Any) -> float:
    if type(dt) is float and 0.0 < dt < math.inf:
        return dt
    if not _is_real_number(dt):
        raise TypeError(f"dt must be a Python number, got {describe(dt)}")
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be finite and > 0, got {dt!r}")
    return dt


def _fits(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Does ``shape`` broadcast to ``target`` (without changing ``target``)?"""
    if shape == target:
        return True
    if len(shape) > len(target):
        return False
    return all(s == 1 or s == t for s, t in zip(reversed(shape), reversed(target)))


#: per (array type, dtype) that passed the input checks: (library, dtype name)
_input_kinds: dict[tuple[type, Any], tuple[str, str]] = {}
#: per array type: how to read an array's device (attribute access for torch)
_device_readers: dict[type, Any] = {}


def _tensor_device(x: Any) -> Any:
    return x.device  # (a plain function: torch.compile traces it, not an operator.attrgetter)


def device_of(x: Any, library: str) -> Any:
    """:func:`li_core.arrays.device`, read the cheapest way for ``x``'s type
    (``Tensor.device`` for torch, which is what array-api-compat returns)."""
    kind = type(x)
    reader = _device_readers.get(kind)
    if reader is None:
        if library == "torch":
            reader = _device_readers[kind] = _tensor_device
        else:
            reader = _device_readers[kind] = functools.partial(device, library=library)
    return reader(x)


class _Checker:
    """Compares every array argument with the input: library, dtype, device.
    What depends only on the input's type and dtype is checked once."""

    __slots__ = ("argument", "device", "dtype", "dtype_name", "input", "library", "type")

    def __init__(self, argument: str, x: Any) -> None:
        self.argument = argument
        self.input = x
        self.type = type(x)
        self.dtype = x.dtype if hasattr(x, "dtype") else None
        known = _input_kinds.get((self.type, self.dtype))
        if known is None:
            known = self._check_kind(argument, x)
        self.library, self.dtype_name = known
        self.device = None if self.library == "numpy" else device_of(x, self.library)
        if self.library == "torch":
            _refuse_sparse(argument, x)

    def _check_kind(self, argument: str, x: Any) -> tuple[str, str]:
        """The input's library and dtype name, or the error; remembered per type and dtype."""
        library = library_name(x)
        if library is None:
            raise TypeError(f"{argument} must be an array of a supported array library, got {describe(x)}")
        name = dtype_name(x.dtype)
        if name not in FLOATING:
            _refuse_byte_order(argument, x, library)
            raise TypeError(f"{argument} must have a floating dtype, got {describe(x)}")
        _refuse_masked(argument, x, library)
        _input_kinds[self.type, self.dtype] = library, name
        if library in _PLACED:
            _plain_kinds.setdefault(self.type, {})[self.dtype] = name, _LARGEST[name], _PLACED[library]
        return library, name

    def same_kind(self, name: str, a: Any) -> None:
        if (  # the common case: the input's type, dtype and device
            type(a) is self.type
            and a.dtype == self.dtype
            and (self.library == "numpy" or device_of(a, self.library) == self.device)
        ):
            if self.library == "torch":
                _refuse_sparse(name, a)
            return
        library = library_name(a)
        if library is None:
            raise TypeError(f"{name} must be an array of a supported array library, got {describe(a)}")
        _refuse_masked(name, a, library)
        if library == "torch":
            _refuse_sparse(name, a)
        companion = False
        if library != self.library:
            accepted = companions(self.input)
            if library not in accepted:
                also = f" (or {', '.join(accepted)})" if accepted else ""
                raise TypeError(
                    f"{name} is {describe(a)} but {self.argument} is a {self.library} array; "
                    f"all arrays in one call must come from one library{also}"
                )
            companion = True
        if a.dtype != self.dtype:
            raise TypeError(
                f"{name} has dtype {dtype_name(a.dtype)} but {self.argument} has dtype {self.dtype_name}; "
                "all floating arrays in one call must share one dtype"
            )
        # (traced arrays, e.g. under jax.jit or jax.grad, may report no device; a
        # companion of a chunked array lives where the backend moves its blocks)
        if (
            not companion
            and self.library != "numpy"
            and (where := device(a, library)) != self.device
            and None not in (where, self.device)
        ):
            raise ValueError(f"{name} is on device {where} but {self.argument} is on device {self.device}")


def companions(x: Any) -> tuple[str, ...]:
    """The libraries whose arrays may stand beside the input ``x`` as state,
    weights and parameters: what the registered backends that handle ``x``
    declare (:meth:`Backend.companions`; only asked when a library differs)."""
    accepted: list[str] = []
    for registered in registry.backends.values():
        backend = registered.backend
        if backend.handles(x):
            accepted += [name for name in backend.companions(x) if name not in accepted]
    return tuple(accepted)


def _refuse_sparse(name: str, a: Any) -> None:
    """A sparse torch tensor has no strides for the backends to step through."""
    if a.layout is not sys.modules["torch"].strided:
        raise TypeError(
            f"{name} is a sparse torch tensor (layout {a.layout}): only dense tensors are supported; "
            f"convert it first, e.g. {name}.to_dense()"
        )


def _refuse_byte_order(name: str, a: Any, library: str) -> None:
    """A NumPy float of the other byte order (``>f4`` here) is a float, but
    not one the backends compute in: say so, with the conversion."""
    dtype = a.dtype
    if library == "numpy" and dtype.kind == "f" and not dtype.isnative:
        native = dtype.newbyteorder("=")
        raise TypeError(
            f"{name} has dtype {dtype.str}, a {native.name} in non-native byte order; "
            f"convert it first, e.g. {name}.astype('{native.name}')"
        )


def _refuse_masked(name: str, a: Any, library: str | None) -> None:
    """A NumPy masked array would be scanned with its mask silently dropped."""
    if library == "numpy" and isinstance(a, sys.modules["numpy"].ma.MaskedArray):
        raise TypeError(
            f"{name} is a numpy masked array: masks are not supported; "
            f"fill the masked entries first, e.g. {name}.filled(0.0)"
        )


def _extremes(value: Any) -> tuple[float, float] | None:
    """The smallest and largest entries of a parameter, or None where they
    are not read: a lazy array (a Dask array is never computed here; its
    NumPy companions are), a traced one, an empty one, and an array in
    device memory without the opt-in :data:`CHECK_FINITE_VARIABLE` (reading
    them costs a synchronisation), as :func:`check_finite` decides."""
    if isinstance(value, float):
        return value, value
    library = library_name(value)
    if library == "dask" or _left_unchecked(value, library):
        return None
    if library == "torch":
        if sys.modules["torch"].compiler.is_compiling() or not value.numel():
            return None
        low, high = sys.modules["torch"].aminmax(value.detach())
        return float(low), float(high)
    if library == "numpy":
        return (float(value.min()), float(value.max())) if value.size else None
    xp = namespace(value)
    return (float(xp.min(value)), float(xp.max(value))) if math.prod(value.shape) else None


#: the rates, whose extremes the unstable-step warning reads
RATE_FIELDS = ("tau_syn_inv", "tau_mem_inv")
_NO_EXTREMES: dict[str, tuple[float, float] | None] = {}

#: set to 1 to check array parameters in device memory for non-finite values too
CHECK_FINITE_VARIABLE = "LI_CHECK_FINITE"


def check_finite(name: str, value: Any) -> Any:
    """``value`` when every entry of the array parameter ``name`` is finite,
    else ``ValueError`` naming ``name``, the first offending index and its
    value. Checked in host memory (NumPy, torch on the CPU, any library's
    CPU arrays); in device memory only where ``LI_CHECK_FINITE=1``, since
    reading the answer back costs a synchronisation; not at all while torch
    compiles or jax traces (no device to read). A Dask array is returned
    wrapped so that each block is checked when it is computed (the call
    builds a graph; nothing is computed here)."""
    library = library_name(value)
    if library == "dask":
        return _checked_lazily(name, value)
    if library == "torch" and sys.modules["torch"].compiler.is_compiling():
        return value
    if not _left_unchecked(value, library):
        _check_entries(name, value, library, offset=())
    return value


def _left_unchecked(value: Any, library: str | None) -> bool:
    """Is the array ``value`` traced (no device to read) or in device
    memory without the opt-in :data:`CHECK_FINITE_VARIABLE`?"""
    if library == "numpy":
        return False
    where = value.device if library == "torch" else device(value, library)  # (torch's own attribute is faster)
    return where is None or (not _on_host(where) and os.environ.get(CHECK_FINITE_VARIABLE) != "1")


def _check_entries(name: str, value: Any, library: str | None, offset: tuple[int, ...]) -> None:
    """Refuse the first non-finite entry of ``value`` (a block starting at
    ``offset`` in the parameter ``name``). A sum is finite only where every
    entry is (NaN and inf propagate), and one sum costs a few microseconds
    where an elementwise test costs tens on torch; a sum that overflows is
    looked at entry by entry."""
    if library == "numpy":
        with sys.modules["numpy"].errstate(over="ignore", invalid="ignore"):  # (a sum may overflow: see below)
            total = value.sum()
    elif library == "torch":
        total = value.detach().sum()
    else:
        total = namespace(value).sum(value)
    if math.isfinite(float(total)):
        return
    xp = namespace(value)
    finite = xp.isfinite(value)
    if bool(xp.all(finite)):
        return
    if len(value.shape) == 0:
        raise ValueError(f"{name} must be finite, got {float(value)!r}")
    where = tuple(int(axis[0]) for axis in xp.nonzero(xp.logical_not(finite)))
    index = tuple(start + k for start, k in zip(offset or (0,) * len(where), where))
    entry = value[where]
    bad = float(entry.detach() if library == "torch" else entry)  # (a parameter being trained requires grad)
    at = f" at index {index[0] if len(index) == 1 else index}" if index else ""
    raise ValueError(f"{name} must be finite, got {bad!r}{at}")


def _on_host(where: Any) -> bool:
    """Is the device object or name ``where`` (of any library) the CPU?"""
    kind = getattr(where, "type", None) or getattr(where, "platform", None)
    return "cpu" in str(kind if isinstance(kind, str) else where).lower()


def _checked_lazily(name: str, value: Any) -> Any:
    """The Dask array ``value`` with every block checked (:func:`_check_block`)
    when it is computed."""
    check = functools.partial(_check_block, name=name)
    return value.map_blocks(check, dtype=value.dtype, meta=value._meta, token="li-check-finite")


def _check_block(block: Any, block_info: Any = None, *, name: str) -> Any:
    """A block of a lazy parameter ``name``, checked as :func:`check_finite`
    checks an array (host blocks always, device blocks on request); the
    error names the index in the whole array."""
    library = library_name(block)
    if _left_unchecked(block, library):
        return block
    location = block_info[0]["array-location"] if block_info else ()
    _check_entries(name, block, library, tuple(start for start, _ in location))
    return block


def warn_if_unstable(p: LIParameters, dt: float, known: dict[str, tuple[float, float] | None] = _NO_EXTREMES) -> None:
    """One :class:`UnstableStepWarning` per call site and rate when
    ``dt*tau_mem_inv`` or ``dt*tau_syn_inv`` lies outside [0, 2] for any
    neuron, naming the worst value: Python floats always, arrays where
    :func:`_extremes` reads them (or ``known`` has them already)."""
    for field in ("tau_mem_inv", "tau_syn_inv"):  # (the membrane's first: it is named first when both warn)
        extremes = known[field] if field in known else _extremes(getattr(p, field))
        if extremes is None:
            continue
        low, high = dt * extremes[0], dt * extremes[1]
        if high > STABLE_FRACTION and high - STABLE_FRACTION >= -low:
            message = (
                f"dt*{field} = {high:g} exceeds {STABLE_FRACTION:g}: forward Euler is unstable there and the "
                f"voltages grow without bound; use a smaller dt (at most {STABLE_FRACTION / extremes[1]:g})"
            )
        elif low < 0:
            message = (
                f"dt*{field} = {low:g} is negative: each step grows what it should decay, and the voltages grow "
                f"without bound; {field} (an inverse time constant) must be >= 0"
            )
        else:
            continue
        # (stacklevel: warn_if_unstable <- check_call <- li_scan/li_step <- the caller)
        warnings.warn(message, UnstableStepWarning, stacklevel=4)


#: the largest finite value of each floating dtype: a Python float parameter beyond it does not fit
_LARGEST = {
    "float16": 65504.0,
    "bfloat16": 3.3895313892515355e38,
    "float32": 3.4028234663852886e38,
    "float64": sys.float_info.max,
}


def _refuse_unfit_float(name: str, value: float, dtype: str) -> None:
    """``ValueError`` where the Python float ``value`` of parameter ``name``
    is not finite or does not fit ``dtype`` (it would become inf)."""
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if abs(value) > _LARGEST[dtype]:
        raise ValueError(
            f"{name} = {value!r} does not fit the inputs' dtype {dtype} (largest finite value {_LARGEST[dtype]:g})"
        )


def _check_parameters(
    checker: _Checker, p: Any, neuron_shape: tuple[int, ...]
) -> tuple[LIParameters, dict[str, tuple[float, float] | None]]:
    """The checked parameters, and the extremes of the rate arrays read on
    the way (:func:`_extremes`): finite extremes prove a whole array finite
    (NaN and infinities would be among them), so a host rate array costs
    its two reductions once, for both checks."""
    largest = _LARGEST[checker.dtype_name]
    if (  # the common case: Python floats that fit the dtype (NaN and inf fail the comparisons)
        type(p) is LIParameters
        and type(p[0]) is type(p[1]) is type(p[2]) is float
        and -largest <= p[0] <= largest
        and -largest <= p[1] <= largest
        and -largest <= p[2] <= largest
    ):
        return p, _NO_EXTREMES  # (an immutable record)
    if not isinstance(p, LIParameters):
        if not all(hasattr(p, field) for field in PARAMETER_FIELDS):
            raise TypeError(f"p must be an LIParameters, got {describe(p)}")
        p = LIParameters(*(getattr(p, field) for field in PARAMETER_FIELDS))
    converted = False
    values = list(p)
    extremes: dict[str, tuple[float, float] | None] = {}
    for k, (field, value) in enumerate(zip(PARAMETER_FIELDS, values)):
        name = f"p.{field}"
        if type(value) is float:
            _refuse_unfit_float(name, value, checker.dtype_name)
        elif _is_real_number(value):
            values[k] = float(value)
            converted = True
            _refuse_unfit_float(name, values[k], checker.dtype_name)
        else:
            checker.same_kind(name, value)
            if not _fits(tuple(value.shape), neuron_shape):
                raise ValueError(
                    f"{name} of shape {tuple(value.shape)} does not broadcast to the neuron shape {neuron_shape}"
                )
            if field in RATE_FIELDS:
                extremes[field] = found = _extremes(value)
                if found is not None and math.isfinite(found[0]) and math.isfinite(found[1]):
                    continue
            checked = check_finite(name, value)
            if checked is not value:  # (a lazy array, now checked when computed)
                values[k], converted = checked, True
    return (LIParameters(*values) if converted else p), extremes


#: libraries whose arrays always know their shape (the rest are asked, see :func:`_refuse_unknown_sizes`)
_SIZED = frozenset(("numpy", "torch"))


def _refuse_unknown_sizes(arrays: Any) -> None:
    """``ValueError`` for the first ``(name, array)`` whose shape holds an
    unknown length (NaN or None, as a Dask array has after boolean indexing):
    no shape can be checked, and no graph laid out, until it is computed."""
    for name, a in arrays:
        shape = tuple(getattr(a, "shape", ()))
        if any(length is None or length != length for length in shape):  # (NaN != NaN)
            chunks = getattr(a, "chunks", None)
            where = f"shape {shape}" if chunks is None else f"chunks {chunks}"
            raise ValueError(
                f"{name} has unknown (NaN) sizes, {where}; compute them first: {name} = {name}.compute_chunk_sizes()"
            )


def _same_torch_place(x: Any, v: Any, i: Any, weights: Any) -> bool:
    """Are the torch tensors ``v``, ``i`` and ``weights`` (or None) dense
    and on ``x``'s device, and ``x`` dense?"""
    strided, where = sys.modules["torch"].strided, x.device
    return (
        x.layout is strided
        and v.layout is strided
        and i.layout is strided
        and v.device == where
        and i.device == where
        and (weights is None or (weights.layout is strided and weights.device == where))
    )


#: the libraries of :func:`plain_call`: how to tell that arrays of one type
#: and dtype are in one place and dense (None: always, NumPy)
_PLACED: dict[str, Any] = {"numpy": None, "torch": _same_torch_place}
#: per array type and dtype of those libraries that passed the input checks:
#: the dtype name, its largest finite value and the library's place check
_plain_kinds: dict[type, dict[Any, tuple[str, float, Any]]] = {}


def plain_call(x: Any, state: Any, weights: Any, p: Any, dt: Any) -> str | None:
    """The dtype name of a step whose checks (:func:`check_call`) would pass
    with nothing to convert, broadcast or warn about, else None (the full
    checks then decide). That is a NumPy or torch input of a type and dtype
    seen before; ``state`` an ``LIState`` of two arrays of the input's type,
    dtype, device and exact neuron shape (dense, for torch); ``weights``
    None or such a 2-d array whose second axis is the input's last; ``p`` an
    ``LIParameters`` of three Python floats that fit the dtype with both
    rates ``dt*tau_inv`` in [0, 2]; ``dt`` a finite float > 0."""
    kinds = _plain_kinds.get(type(x))
    if kinds is None or type(state) is not LIState or type(p) is not LIParameters or type(dt) is not float:
        return None
    dtype = x.dtype
    known = kinds.get(dtype)
    if known is None:
        return None
    v, i = state
    kind, shape = type(x), x.shape
    if type(v) is not kind or type(i) is not kind or v.dtype is not dtype or i.dtype is not dtype:
        return None
    if weights is not None:
        w_shape: tuple[int, ...] = weights.shape if type(weights) is kind and weights.dtype is dtype else ()
        if len(w_shape) != 2 or not shape or shape[-1] != w_shape[1]:
            return None
        shape = (*shape[:-1], w_shape[0])
    name, largest, placed = known
    if v.shape != shape or i.shape != shape or (placed is not None and not placed(x, v, i, weights)):
        return None
    tau_syn_inv, tau_mem_inv, v_leak = p
    if (  # (NaN and the infinities fail these comparisons)
        type(tau_syn_inv) is type(tau_mem_inv) is type(v_leak) is float
        and 0.0 < dt < math.inf
        and 0.0 <= dt * tau_syn_inv <= STABLE_FRACTION
        and 0.0 <= dt * tau_mem_inv <= STABLE_FRACTION
        and -largest <= tau_syn_inv <= largest
        and -largest <= tau_mem_inv <= largest
        and -largest <= v_leak <= largest
    ):
        return name
    return None


def check_call(
    argument: str,
    x: Any,
    state: Any,
    weights: Any,
    p: Any,
    dt: Any,
    *,
    time_axis: bool,
    weights_required: bool = False,
) -> Call:
    """Check one call's arguments; ``time_axis`` for scans (``x`` is ``[T, ...]``)."""
    checker = _Checker(argument, x)
    if checker.library not in _SIZED:
        arrays = [(argument, x), ("input_weights", weights)]
        if isinstance(state, tuple) and len(state) == 2:
            arrays += [("state.v", state[0]), ("state.i", state[1])]
        if isinstance(p, tuple) and len(p) == len(PARAMETER_FIELDS):
            arrays += [(f"p.{field}", value) for field, value in zip(PARAMETER_FIELDS, p)]
        _refuse_unknown_sizes(arrays)
    shape = tuple(x.shape)
    if time_axis and len(shape) == 0:
        raise ValueError(f"{argument} must have a leading time axis [T, ...], got a 0-d array")
    if not (type(dt) is float and 0.0 < dt < math.inf):  # (the common case inline: a call costs)
        dt = check_dt(dt)
    neuron_shape = shape[1:] if time_axis else shape
    if weights is None:
        if weights_required:
            raise TypeError("input_weights must be an [out, in] array, got None")
    else:
        checker.same_kind("input_weights", weights)
        w_shape = tuple(weights.shape)
        if len(w_shape) != 2:
            raise ValueError(f"input_weights must be a 2-d [out, in] array, got shape {w_shape}")
        if len(neuron_shape) == 0 or neuron_shape[-1] != w_shape[1]:
            raise ValueError(
                f"input_weights of shape {w_shape} need {argument} whose last axis has size {w_shape[1]}, "
                f"got {argument} of shape {shape}"
            )
        neuron_shape = (*neuron_shape[:-1], w_shape[0])
    if state is not None:
        if not (isinstance(state, tuple) and len(state) == 2):
            raise TypeError(f"state must be an LIState(v, i) or None, got {describe(state)}")
        for field, value in zip(("state.v", "state.i"), state):
            checker.same_kind(field, value)
            if value.shape != neuron_shape and not _fits(tuple(value.shape), neuron_shape):
                raise ValueError(f"{field} of shape {tuple(value.shape)} does not fit the neuron shape {neuron_shape}")
    p, extremes = _check_parameters(checker, p, neuron_shape)
    if not (  # (the common case inline: stable float rates)
        type(p[0]) is type(p[1]) is float
        and 0.0 <= dt * p[0] <= STABLE_FRACTION
        and 0.0 <= dt * p[1] <= STABLE_FRACTION
    ):
        warn_if_unstable(p, dt, extremes)
    return Call._make((x, state, weights, p, dt, argument, checker.library, checker.dtype_name, neuron_shape))


#: per library, zeros of a shape in ``x``'s dtype on its device, made the
#: library's own way (the Array API namespace's costs more than a small scan's
#: work); other libraries go through the namespace
_ZEROS_LIKE = {
    "numpy": lambda x, shape: sys.modules["numpy"].zeros(shape, x.dtype),
    "torch": lambda x, shape: x.new_zeros(shape),
}


def complete_state(call: Call, backend: Backend) -> LIState:
    """The state a backend receives: the caller's, broadcast to the neuron
    shape, or the default ``v = v_leak, i = 0``. Also checks that the backend
    computes in the call's dtype."""
    if call.dtype not in backend.dtypes:
        refuse_dtype(call.argument, call.dtype, backend)
    shape, state = call.neuron_shape, call.state
    if state is None:
        direct = _ZEROS_LIKE.get(call.library)
        if direct is not None and type(call.p.v_leak) is float and call.p.v_leak == 0.0:
            zeros = direct(call.x, shape)
            return LIState(zeros, zeros)  # (one array for both: backends never write into the state)
        xp, where = namespace(call.x), "cpu" if call.library == "numpy" else device_of(call.x, call.library)
        zeros = xp.zeros(shape, dtype=call.x.dtype, device=where)
        v_leak = call.p.v_leak
        if type(v_leak) is float and v_leak == 0.0:
            return LIState(zeros, zeros)  # (one array for both: backends never write into the state)
        voltage = (
            xp.full(shape, v_leak, dtype=call.x.dtype, device=where) if isinstance(v_leak, float) else zeros + v_leak
        )
        return LIState(voltage, zeros)
    v, i = state
    if type(state) is LIState and v.shape == shape and i.shape == shape:
        return state  # the common case: nothing to broadcast
    xp = namespace(call.x)
    return LIState(*(a if tuple(a.shape) == shape else xp.broadcast_to(a, shape) for a in (v, i)))


def refuse_dtype(argument: str, dtype: str, backend: Backend) -> None:
    """``TypeError``: the input ``argument`` has ``dtype``, which ``backend`` does not compute in."""
    raise TypeError(
        f"{argument} has dtype {dtype}, which backend {backend.name!r} does not support "
        f"(it supports {', '.join(backend.dtypes)})"
    )
