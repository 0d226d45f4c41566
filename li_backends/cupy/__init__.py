"""The ``cupy`` backend: hand-written CUDA kernels on CuPy arrays.

The kernels live in ``li_kernels.cu``, templated on the element type (float,
double, and __half computed in float), and are compiled by NVRTC through
``cupy.RawModule``, once per process and dtype (CuPy's disk cache keeps the
binaries between processes):

- ``li_step``: the Euler step of SPEC section 1, fused into one elementwise
  kernel; the weighted step first projects with ``cupy.matmul`` (cuBLAS);
- ``li_scan``: the whole sequence in one launch, one thread per neuron with
  its state in registers, looping over the time-major ``[T, N]`` input so that
  reads and writes are coalesced; the weighted scan projects all ``T`` steps
  with one ``cupy.matmul`` first.

Parameters are read through broadcasting inside the kernels (see
``parameter_layout``), never expanded to the neuron shape. Importing this
module does not import CuPy.
"""

from __future__ import annotations

import functools
import importlib
import math
import pathlib
import sys
from typing import Any

import numpy

import li_core
from li_core.types import LIParameters, LIState

KERNEL_SOURCE = pathlib.Path(__file__).with_name("li_kernels.cu")
#: options given to NVRTC (and to nvcc by the tests)
OPTIONS = ("--std=c++14",)
#: threads per block; the grid has ceil(N / BLOCK) blocks
BLOCK = 256
#: the kernels' element type per dtype
C_TYPES = {"float16": "__half", "float32": "float", "float64": "double"}
#: the kernels' arithmetic (and scalar argument) type per dtype
COMPUTE_TYPES = {"float16": numpy.float32, "float32": numpy.float32, "float64": numpy.float64}
#: a null pointer argument (8 zero bytes): an output the kernel does not write
NULL = numpy.uint64(0)


def _cupy() -> Any:
    return sys.modules.get("cupy") or importlib.import_module("cupy")


def name_expressions(dtype: str) -> tuple[str, str]:
    """The kernel instantiations for one dtype name: ``(step, scan)``."""
    c_type = C_TYPES[dtype]
    return f"li_step<{c_type}>", f"li_scan<{c_type}>"


def launch_config(n: int) -> tuple[tuple[int], tuple[int]]:
    """``(grid, block)`` for ``n`` neurons, one thread each (at least one block)."""
    return (max(1, -(-n // BLOCK)),), (BLOCK,)


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


@functools.cache
def _kernels(dtype: str) -> tuple[Any, Any]:
    """The ``(step, scan)`` kernels for one dtype name, compiled once."""
    names = name_expressions(dtype)
    module = _cupy().RawModule(code=KERNEL_SOURCE.read_text(), options=OPTIONS, name_expressions=names)
    return module.get_function(names[0]), module.get_function(names[1])


class CuPyBackend(li_core.Backend):
    """Leaky integrators on CuPy arrays, on CUDA devices, in raw CUDA kernels."""

    name = "cupy"
    library = "cupy"
    priority = 30
    extra = "cupy"
    dtypes = ("float16", "float32", "float64")
    devices = ("cuda",)
    autograd = False

    def availability(self) -> str | None:
        """The real import error without CuPy; "no CUDA device" (with the
        runtime's own words) where CuPy finds none."""
        try:
            cupy = importlib.import_module("cupy")
        except Exception as exc:  # noqa: BLE001 - the error is the reported reason
            return f"{type(exc).__name__}: {exc}"
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # noqa: BLE001 - no driver, or a driver too old for CuPy's runtime
            return f"no CUDA device ({type(exc).__name__}: {exc})"
        if count == 0:
            return "no CUDA device (cupy.cuda.runtime.getDeviceCount() is 0)"
        return None

    def handles(self, x: Any) -> bool:
        cupy = sys.modules.get("cupy")
        return cupy is not None and isinstance(x, cupy.ndarray)

    def asarray(self, array: Any, device: Any = None) -> Any:
        """A CuPy copy of ``array`` on ``device``: None (the current device),
        a device id, a ``cupy.cuda.Device``, ``"cuda"`` or ``"cuda:N"``."""
        cupy = _cupy()
        if device is None or device == "cuda":
            return cupy.array(array, copy=True)
        if isinstance(device, str) and device.startswith("cuda:"):
            device = int(device[len("cuda:") :])
        with cupy.cuda.Device(getattr(device, "id", device)):
            return cupy.array(array, copy=True)

    def to_numpy(self, x: Any) -> Any:
        return _cupy().asnumpy(x)

    def project(self, x: Any, w: Any) -> Any:
        """``x @ w.T`` by cuBLAS."""
        return _cupy().matmul(x, w.T)

    def feed_forward_step(self, x: Any, state: LIState, p: LIParameters, dt: float) -> tuple[Any, LIState]:
        cupy = _cupy()
        shape, dtype = x.shape, x.dtype.name  # (ascontiguousarray may turn a 0-d array 1-d)
        compute = COMPUTE_TYPES[dtype]
        with x.device:
            x, v, i = (cupy.ascontiguousarray(a) for a in (x, state.v, state.i))
            v_new, v_copy, i_new = (cupy.empty(shape, dtype=x.dtype) for _ in range(3))
            grid, block = launch_config(x.size)
            parameters = _parameters(cupy, p, shape, compute)
            outputs = (v_new, v_copy, i_new)
            _kernels(dtype)[0](grid, block, (x, v, i, *parameters, compute(dt), *outputs, numpy.int64(x.size)))
        return v_new, LIState(v_copy, i_new)

    def scan(
        self, xs: Any, state: LIState, w: Any, p: LIParameters, dt: float, record_states: bool
    ) -> tuple[Any, LIState]:
        cupy = _cupy()
        with xs.device:
            if w is not None:
                xs = self.project(xs, w)  # all T steps in one matmul
            xs, v, i = (cupy.ascontiguousarray(a) for a in (xs, state.v, state.i))
            dtype = xs.dtype.name
            compute = COMPUTE_TYPES[dtype]
            steps, neurons = xs.shape[0], xs.shape[1:]
            n = math.prod(neurons)
            voltages = cupy.empty(xs.shape, dtype=xs.dtype)
            if record_states:
                voltages_copy, currents = cupy.empty_like(voltages), cupy.empty_like(voltages)
                v_last = i_last = NULL
            else:
                voltages_copy = currents = NULL
                v_last, i_last = cupy.empty(neurons, dtype=xs.dtype), cupy.empty(neurons, dtype=xs.dtype)
            grid, block = launch_config(n)
            parameters = _parameters(cupy, p, neurons, compute)
            outputs = (voltages, voltages_copy, currents, v_last, i_last)
            _kernels(dtype)[1](
                grid, block, (xs, v, i, *parameters, compute(dt), *outputs, numpy.int64(steps), numpy.int64(n))
            )
        if record_states:
            return voltages, LIState(voltages_copy, currents)
        return voltages, LIState(v_last, i_last)


def _parameters(cupy: Any, p: LIParameters, neurons: tuple[int, ...], compute: Any) -> list[Any]:
    """The kernel arguments of the three parameters, six each (see
    ``li_kernels.cu``): ``values, scalar, inner0, size0, inner1, size1``."""
    arguments: list[Any] = []
    for value in (p.tau_syn_inv, p.tau_mem_inv, p.v_leak):
        if isinstance(value, float):
            arguments += [NULL, compute(value), *(numpy.int64(1),) * 4]
        else:
            shape, layout = parameter_layout(tuple(value.shape), neurons)
            values = cupy.ascontiguousarray(cupy.broadcast_to(value, shape))
            arguments += [values, compute(0), *map(numpy.int64, layout)]
    return arguments


@li_core.hookimpl
def li_register_backends() -> list[li_core.Backend]:
    return [CuPyBackend()]
