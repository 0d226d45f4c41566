"""The ``cupy`` backend: hand-written CUDA kernels on CuPy arrays.

The kernels live in ``li_kernels.cu`` (shared with torch on CUDA), templated
on the element type (float, double, and __half computed in float):

- ``li_step``: the Euler step of the contract (docs/contract.md), section 1,
  fused into one elementwise kernel; the weighted step first projects with
  ``cupy.matmul`` (cuBLAS);
- ``li_scan``: the whole sequence in one launch, one thread per neuron with
  its state in registers, looping over the time-major ``[T, N]`` input so that
  reads and writes are coalesced; the weighted scan projects all ``T`` steps
  with one ``cupy.matmul`` first.

:mod:`.kernels` turns a call into a launch (pointers, parameter structs,
grid) and :mod:`.launcher` issues it. Parameters are read through
broadcasting inside the kernels, never expanded to the neuron shape. The
backend has no autograd (torch on CUDA runs the adjoint kernel). Importing
this module does not import CuPy.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy

import li_core
from li_core.rates import Rate, scan_rates
from li_core.types import LIParameters, LIState

from . import kernels, launcher
from .kernels import Memory


def _address(array: Any) -> int:
    return array.data.ptr


def _laid_out(array: Any, shape: tuple[int, ...]) -> Any:
    cupy = launcher.cupy()
    return cupy.ascontiguousarray(cupy.broadcast_to(array, shape))


#: how the launches reach CuPy arrays
MEMORY = Memory(_address, _laid_out)


def _rates(p: LIParameters, dt: float) -> tuple[Rate, Rate, Rate]:
    """``(a, d, v_leak)`` for the kernels: ``a = dt*tau_mem_inv`` and
    ``d = dt*tau_syn_inv``, each product rounded once in the compute type."""
    return (*scan_rates(p, dt), Rate(p.v_leak))


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
        cupy = launcher.cupy()
        if device is None or device == "cuda":
            return cupy.array(array, copy=True)
        if isinstance(device, str) and device.startswith("cuda:"):
            device = int(device[len("cuda:") :])
        with cupy.cuda.Device(getattr(device, "id", device)):
            return cupy.array(array, copy=True)

    def to_numpy(self, x: Any) -> Any:
        return launcher.cupy().asnumpy(x)

    def project(self, x: Any, w: Any) -> Any:
        """``x @ w.T`` by cuBLAS; float16 is multiplied in float32 and rounded
        once to float16, the kernels' input type."""
        cupy = launcher.cupy()
        if x.dtype == numpy.float16:  # (CuPy's dtypes are NumPy's)
            return cupy.matmul(x.astype(numpy.float32), w.T.astype(numpy.float32)).astype(numpy.float16)
        return cupy.matmul(x, w.T)

    def feed_forward_step(self, x: Any, state: LIState, p: LIParameters, dt: float) -> tuple[Any, LIState]:
        cupy = launcher.cupy()
        shape, dtype = x.shape, x.dtype.name  # (ascontiguousarray may turn a 0-d array 1-d)
        with x.device:
            x, v, i = (cupy.ascontiguousarray(a) for a in (x, state.v, state.i))
            v_new, v_copy, i_new = (cupy.empty(shape, dtype=x.dtype) for _ in range(3))
            launcher.launch(kernels.step(MEMORY, dtype, x, v, i, _rates(p, dt), v_new, v_copy, i_new))
        return v_new, LIState(v_copy, i_new)

    def scan(
        self, xs: Any, state: LIState, w: Any, p: LIParameters, dt: float, record_states: bool
    ) -> tuple[Any, LIState]:
        cupy = launcher.cupy()
        with xs.device:
            if w is not None:
                xs = self.project(xs, w)  # all T steps in one matmul
            xs, v, i = (cupy.ascontiguousarray(a) for a in (xs, state.v, state.i))
            voltages = cupy.empty(xs.shape, dtype=xs.dtype)
            if record_states:
                outputs = {"voltages_copy": cupy.empty_like(voltages), "currents": cupy.empty_like(voltages)}
            else:
                outputs = {"v_last": cupy.empty(xs.shape[1:], dtype=xs.dtype)}
                outputs["i_last"] = cupy.empty_like(outputs["v_last"])
            rates = _rates(p, dt)
            launcher.launch(kernels.scan(MEMORY, xs.dtype.name, xs, v, i, rates, voltages, **outputs))
        if record_states:
            return voltages, LIState(outputs["voltages_copy"], outputs["currents"])
        return voltages, LIState(outputs["v_last"], outputs["i_last"])


@li_core.hookimpl
def li_register_backends() -> list[li_core.Backend]:
    return [CuPyBackend()]
