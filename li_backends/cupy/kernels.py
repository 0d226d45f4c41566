"""The Python side of a launch of the kernels in ``li_kernels.cu``: kernel
names, grids, parameter structs and argument tuples.

This module computes nothing on arrays and imports no array library: an
array reaches a kernel as the address of its first element (through a
:class:`Memory` of the caller's library), a number as a NumPy scalar and a
parameter as the bytes of the C ``Parameter<T>`` struct in a one-element
NumPy array, which CuPy passes by value. The CuPy backend and torch on CUDA
launch what it returns on their own arrays; the tests launch it on host
builds of the same kernels on NumPy memory.

A launch is built on every call of a scan, so its host time adds to every
training step: what depends only on dtypes and shapes is computed once
(kernel names, parameter layouts, the struct of a float parameter).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy

from li_core.rates import Rate

#: threads per block: small blocks spread a grid of few neurons (one thread
#: each) over every multiprocessor; the grid has ceil(N / BLOCK) blocks
BLOCK = 64
#: the most threads per block the kernels are compiled for (LI_MAX_BLOCK)
MAX_BLOCK = 256
#: the kernels' element type per dtype name
C_TYPES = {"float16": "__half", "float32": "float", "float64": "double"}
#: the kernels' arithmetic type (of scalars, rates and parameter-gradient
#: shares) per dtype name
COMPUTE_TYPES = {"float16": numpy.float32, "float32": numpy.float32, "float64": numpy.float64}
#: the kernels by role, as templates of their name expressions
KERNELS = {"step": "li_step<{}>", "scan": "li_scan<{}>", "backward": "li_scan_backward<{}>"}
#: a null pointer: an output the kernel does not write, an input it does not read
NULL = numpy.uint64(0)


class Memory(NamedTuple):
    """How the marshalling reaches one array library's memory."""

    #: the device address of a C-contiguous array's first element
    address: Callable[[Any], int]
    #: an array broadcast to a shape and made C-contiguous (a copy only where needed)
    laid_out: Callable[[Any, tuple[int, ...]], Any]


class Launch(NamedTuple):
    """One kernel launch: ``kernel`` (a name expression of the ``dtype``
    module) on a 1-d ``grid`` of ``block`` threads with ``args`` as
    ``cuLaunchKernel`` takes them. ``keep`` holds the arrays made for the
    launch (laid-out parameters) until it has been issued."""

    dtype: str
    kernel: str
    grid: tuple[int]
    block: tuple[int]
    args: tuple[Any, ...]
    keep: tuple[Any, ...] = ()


def name_expressions(dtype: str) -> tuple[str, ...]:
    """Every kernel instantiation for one dtype name, in ``KERNELS`` order."""
    return tuple(template.format(C_TYPES[dtype]) for template in KERNELS.values())


def launch_config(n: int) -> tuple[tuple[int], tuple[int]]:
    """``(grid, block)`` for ``n`` neurons, one thread each (at least one block)."""
    if not 1 <= BLOCK <= MAX_BLOCK:
        raise ValueError(f"BLOCK: {BLOCK} threads per block; the kernels take 1 to {MAX_BLOCK}")
    return (max(1, -(-n // BLOCK)),), (BLOCK,)


@functools.cache
def parameter_dtype(dtype: str) -> numpy.dtype:
    """The NumPy layout of the C ``Parameter<T>`` for one dtype name: the
    values pointer, ``scalar`` and ``scale`` in the compute type, and the two
    runs ``inner0, size0, inner1, size1``, aligned as a C compiler aligns them."""
    compute = COMPUTE_TYPES[dtype]
    fields = [("values", numpy.uint64), ("scalar", compute), ("scale", compute)]
    fields += [(name, numpy.int64) for name in ("inner0", "size0", "inner1", "size1")]
    return numpy.dtype(fields, align=True)


def _runs(shape: list[int], neurons: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """The runs of consecutive neuron axes along which the parameter is not
    broadcast, innermost first, as ``(first_axis, last_axis, inner, size)``."""
    runs: list[tuple[int, int, int, int]] = []
    inner, previous_kept = 1, False
    for axis in reversed(range(len(neurons))):
        size = neurons[axis]
        if size == 1:  # neither breaks nor extends a run
            continue
        kept = shape[axis] != 1
        if kept and previous_kept:
            _, last, run_inner, run_size = runs[-1]
            runs[-1] = (axis, last, run_inner, run_size * size)
        elif kept:
            runs.append((axis, axis, inner, size))
        previous_kept = kept
        inner *= size
    return runs


@functools.lru_cache(maxsize=256)
def parameter_layout(shape: tuple[int, ...], neurons: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """How the kernels read a parameter of ``shape`` that broadcasts to the
    neuron shape ``neurons``.

    Returns the shape to broadcast the parameter to before making it
    contiguous (its own shape padded with leading 1s; where its kept axes
    would form more than two runs, the gaps between the innermost runs are
    filled in) and ``(inner0, size0, inner1, size1)``: run 0 (outer) and run 1
    (inner) of kept axes, run r with ``size_r`` elements advancing every
    ``inner_r`` flat neuron indices (an absent run is ``(1, 1)``). Neuron ``n``
    reads element ``(n // inner0 % size0) * size1 + n // inner1 % size1``.
    """
    padded = [1] * (len(neurons) - len(shape)) + list(shape)
    runs = _runs(padded, neurons)
    while len(runs) > 2:  # fill the gap between the two innermost runs
        for axis in range(runs[1][1] + 1, runs[0][0]):
            padded[axis] = neurons[axis]
        runs = _runs(padded, neurons)
    layout = [value for run in reversed(runs) for value in run[2:]]
    return tuple(padded), (1, 1) * (2 - len(runs)) + tuple(layout)


def _struct(dtype: str, fields: tuple) -> numpy.ndarray:
    """The bytes of a ``Parameter<T>`` with these field values, as a
    one-element array of opaque bytes: CuPy passes any one-element array by
    value, and takes the address of an opaque one several times faster than
    that of a structured one (whose ``__array_interface__`` lists every field).
    NumPy rounds each Python float to its field's type, to nearest."""
    layout = parameter_dtype(dtype)
    return numpy.array([fields], dtype=layout).view(numpy.dtype((numpy.void, layout.itemsize)))


@functools.lru_cache(maxsize=1024)
def _constant_struct(dtype: str, value: float) -> numpy.ndarray:
    """The read-only struct of a parameter that every neuron reads as ``value``
    (a scan's float parameters repeat from call to call)."""
    struct = _struct(dtype, (0, value, 0.0, 1, 1, 1, 1))
    struct.flags.writeable = False
    return struct


def parameter(memory: Memory, dtype: str, rate: Rate, neurons: tuple[int, ...]) -> tuple[numpy.ndarray, Any]:
    """The ``Parameter<T>`` struct of ``rate`` for neurons of shape
    ``neurons`` (see :func:`_struct`), and the laid-out array it points to
    (None for a float).

    A float is multiplied by its scale here, in double precision, and then
    rounded to the compute type, as Python and the reference compute
    ``dt * tau_inv``; an array is multiplied by the kernel, in the compute type."""
    if isinstance(rate.value, float):
        return _constant_struct(dtype, rate.value * rate.scale), None
    shape, layout = parameter_layout(tuple(rate.value.shape), neurons)
    values = memory.laid_out(rate.value, shape)
    return _struct(dtype, (memory.address(values), 0.0, rate.scale, *layout)), values


def _pointer(memory: Memory, array: Any) -> numpy.uint64:
    return NULL if array is None else numpy.uint64(memory.address(array))


@functools.cache
def kernel_name(role: str, dtype: str) -> str:
    """The name expression of the ``role`` kernel (a key of ``KERNELS``) for one dtype name."""
    return KERNELS[role].format(C_TYPES[dtype])


def _common(
    memory: Memory, dtype: str, role: str, rates: tuple[Rate, Rate, Rate], neurons: tuple[int, ...]
) -> tuple[str, tuple[int], tuple[int], list[numpy.ndarray], tuple[Any, ...]]:
    """What every launch has: the kernel name, grid and block, the parameter
    structs of ``(a, d, v_leak)`` and the arrays they point to."""
    (a, a_values), (d, d_values), (v_leak, v_leak_values) = (parameter(memory, dtype, rate, neurons) for rate in rates)
    grid, block = launch_config(math.prod(neurons))
    return kernel_name(role, dtype), grid, block, [a, d, v_leak], (a_values, d_values, v_leak_values)


def step(
    memory: Memory, dtype: str, x: Any, v: Any, i: Any, rates: tuple[Rate, Rate, Rate], v_new: Any, v_copy: Any,
    i_new: Any,
) -> Launch:  # fmt: skip
    """``li_step<T>``: one Euler step of the neurons of ``x``'s shape;
    ``rates`` are ``(a, d, v_leak)``."""
    neurons = tuple(x.shape)
    n = math.prod(neurons)
    kernel, grid, block, structs, keep = _common(memory, dtype, "step", rates, neurons)
    inputs = [_pointer(memory, array) for array in (x, v, i)]
    outputs = [_pointer(memory, array) for array in (v_new, v_copy, i_new)]
    args = (*inputs, *structs, *outputs, numpy.int64(n))
    return Launch(dtype, kernel, grid, block, args, (*keep, x, v, i, v_new, v_copy, i_new))


def scan(
    memory: Memory, dtype: str, xs: Any, v0: Any, i0: Any, rates: tuple[Rate, Rate, Rate], voltages: Any, *,
    voltages_copy: Any = None, currents: Any = None, js: Any = None, v_last: Any = None, i_last: Any = None,
) -> Launch:  # fmt: skip
    """``li_scan<T>`` over the time-first ``xs`` ``[T, *neurons]``; ``rates``
    are ``(a, d, v_leak)``; an output left None is not written."""
    steps, neurons = xs.shape[0], tuple(xs.shape[1:])
    n = math.prod(neurons)
    kernel, grid, block, structs, keep = _common(memory, dtype, "scan", rates, neurons)
    inputs = [_pointer(memory, array) for array in (xs, v0, i0)]
    outputs = [_pointer(memory, array) for array in (voltages, voltages_copy, currents, js, v_last, i_last)]
    args = (*inputs, *structs, *outputs, numpy.int64(steps), numpy.int64(n))
    arrays = (xs, v0, i0, voltages, voltages_copy, currents, js, v_last, i_last)
    return Launch(dtype, kernel, grid, block, args, (*keep, *arrays))


def scan_backward(
    memory: Memory, dtype: str, gv: Any, rates: tuple[Rate, Rate, Rate], dx: Any, *,
    gv_strides: tuple[int, int] | None = None, gis: Any = None, gi_last: Any = None, v0: Any = None,
    voltages: Any = None, js: Any = None, dv0: Any = None, di0: Any = None, shares: tuple[Any, Any, Any] | None = None,
) -> Launch:  # fmt: skip
    """``li_scan_backward<T>`` from the voltages' gradient ``gv``
    ``[T, *neurons]`` and the currents' (``gis`` ``[T, *neurons]`` and/or the
    final current's ``gi_last``; None is zero) into ``dx`` (and ``dv0``,
    ``di0`` where given). ``gv`` is C-contiguous unless ``gv_strides`` says
    otherwise: ``(step, neuron)`` elements such that neuron ``n`` at step
    ``t`` reads element ``t*step + n*neuron`` from ``gv``'s address (0 for a
    broadcast axis). With ``js`` (then ``v0`` and ``voltages`` too) it writes
    each neuron's share of ``(dL/da, dL/dd, dL/dv_leak)`` into ``shares``,
    three arrays of the neuron shape in the compute type."""
    steps, neurons = dx.shape[0], tuple(dx.shape[1:])  # (gv may be broadcast)
    n = math.prod(neurons)
    step, neuron = (n, 1) if gv_strides is None else gv_strides
    if (js is None) != (shares is None) or (js is not None and (v0 is None or voltages is None)):
        raise ValueError("scan_backward: js, v0, voltages and shares come together (parameter gradients)")
    kernel, grid, block, structs, keep = _common(memory, dtype, "backward", rates, neurons)
    inputs = [_pointer(memory, gv), numpy.int64(step), numpy.int64(neuron), _pointer(memory, gis)]
    inputs.append(_pointer(memory, gi_last))
    saved = [_pointer(memory, array) for array in (v0, voltages, js)]
    outputs = [_pointer(memory, array) for array in (dx, dv0, di0, *(shares or (None, None, None)))]
    args = (*inputs, *structs, *saved, *outputs, numpy.int64(steps), numpy.int64(n))
    arrays = (gv, gis, gi_last, v0, voltages, js, dx, dv0, di0, *(shares or ()))
    return Launch(dtype, kernel, grid, block, args, (*keep, *arrays))
