"""torch on CUDA through the fused kernels of ``li_backends/cupy/li_kernels.cu``:
the CUDA implementations of ``li_neurons::scan`` and ``li_neurons::scan_backward``.

One launch per direction and sequence: ``li_scan`` forward, the adjoint
``li_scan_backward`` in reverse time (the recurrences of :mod:`.ops`;
float32 compensated, float64 plain, as the kernels' header says). The
kernels run on the tensors' own memory (``data_ptr``), on the device of the
inputs and on torch's current stream there, launched through CuPy, which
compiles them with NVRTC on first use. Inputs are made contiguous first,
except a voltage gradient broadcast along whole axes (the gradient of a sum),
which the adjoint reads in place. A rate (:class:`li_core.rates.Rate`: an
inverse time constant and ``dt``, or a fraction and 1) whose value is a
float or a one-element CPU tensor is passed by value, its fraction formed on
the host as the reference forms it; a value on the device is read through
broadcasting, never expanded, and multiplied by its scale in the kernel.
The adjoint returns each neuron's share of the parameter gradients, with
respect to the fractions and ``v_leak``; the caller sums them to the
parameters' shapes (:func:`li_backends.torch.ops._parameter_gradients`).

The host time of a call is paid on every training step and, for small
sequences, is longer than the kernel: a tensor is copied or expanded only
where its layout needs it, the stream handle is read without making a stream
object, and the launch marshalling caches what depends only on shapes and
dtypes (:mod:`li_backends.cupy.kernels`).

Importing this module imports neither torch nor CuPy.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import Any

from li_backends.cupy import kernels, launcher
from li_backends.cupy.kernels import Memory
from li_core.rates import Rate, fraction

#: set to False to run torch's own loop on CUDA even where the fused kernels
#: can run (the benchmarks time both)
FUSED = True


def _torch() -> Any:
    return sys.modules.get("torch") or importlib.import_module("torch")


@functools.cache
def fused_unavailable() -> str | None:
    """None when torch on CUDA can run the fused kernels here, else why not:
    CuPy cannot be imported (its real error), NVRTC cannot be loaded, there
    is no CUDA device (the ``cupy`` backend's own availability), or the
    kernels torch runs (float32 and float64) do not compile and load. Checked
    once per process; the compiled modules are the ones the launches use."""
    try:
        importlib.import_module("cupy")
    except Exception as exc:  # noqa: BLE001 - the error is the reported reason
        return f"{type(exc).__name__}: {exc}"
    try:
        nvrtc = importlib.import_module("cupy_backends.cuda.libs.nvrtc")
        nvrtc.getVersion()
    except Exception as exc:  # noqa: BLE001 - the error is the reported reason
        return f"NVRTC, which compiles the kernels, cannot be loaded ({type(exc).__name__}: {exc})"
    from li_backends.cupy import CuPyBackend

    reason = CuPyBackend().availability()
    if reason is not None:
        return reason
    try:
        for dtype in _DTYPE_NAMES.values():
            for kernel in kernels.name_expressions(dtype):
                launcher._function(dtype, kernel)
    except Exception as exc:  # noqa: BLE001 - the error is the reported reason
        return f"the fused kernels do not compile here ({type(exc).__name__}: {exc})"
    return None


def active() -> bool:
    """Whether the custom ops run the fused kernels on CUDA tensors (else
    torch's own loop): :data:`FUSED` and :func:`fused_unavailable` is None."""
    return FUSED and fused_unavailable() is None


def _laid_out(tensor: Any, shape: tuple[int, ...]) -> Any:
    """``tensor`` broadcast to ``shape`` and C-contiguous: itself where it is
    already (most calls), else a contiguous copy."""
    if tensor.shape == shape and tensor.is_contiguous():
        return tensor
    return tensor.expand(shape).contiguous()


#: how the launches reach torch tensors
MEMORY = Memory(lambda tensor: tensor.data_ptr(), _laid_out)

#: the kernels' dtype name per torch dtype name: the ops compute in float32 and
#: float64 (the torch backend computes half types in float32)
_DTYPE_NAMES = {"torch.float32": "float32", "torch.float64": "float64"}


def _dtype(xs: Any) -> str:
    """The kernels' dtype name of ``xs`` (float32 or float64)."""
    name = _DTYPE_NAMES.get(str(xs.dtype))
    if name is None:
        raise TypeError(f"xs: the fused CUDA scan computes in float32 and float64, not {xs.dtype}")
    return name


def _rate(name: str, rate: Rate, like: Any) -> Rate:
    """``rate`` for the kernels: a Python float as it is; a one-element CPU
    tensor (a Python float made a tensor) by value, its fraction formed by
    torch on the host (``item`` there is no synchronisation); a tensor on
    the device (and of the dtype) of ``like`` by address, never read on the
    host (so a launch can be captured in a CUDA graph)."""
    t = rate.value
    if isinstance(t, float):
        return rate
    if t.is_cpu and t.numel() == 1:
        return Rate(fraction(rate).item())
    if t.device == like.device:
        if t.dtype != like.dtype:
            raise TypeError(f"{name}: a parameter of dtype {t.dtype} for inputs of dtype {like.dtype}")
        return rate
    raise ValueError(f"{name}: a parameter on {t.device} with shape {tuple(t.shape)} for inputs on {like.device}")


def _rates(a: Rate, d: Rate, v_leak: Any, like: Any) -> tuple[Rate, Rate, Rate]:
    """``(a, d, v_leak)`` for the kernels (see :func:`_rate`)."""
    return _rate("tau_mem_inv", a, like), _rate("tau_syn_inv", d, like), _rate("v_leak", Rate(v_leak), like)


def current_stream(device: Any) -> int:
    """The handle of torch's current stream on ``device``, read directly where
    torch has the raw getter (its CUDA builds), without making a stream object."""
    torch = _torch()
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is not None:
        return raw(device.index)
    return torch.cuda.current_stream(device).cuda_stream


def _issue(launch: kernels.Launch, device: Any) -> None:
    """``launch`` on ``device`` and torch's current stream there."""
    launcher.launch(launch, device=device.index, stream=current_stream(device))


def scan(xs: Any, v0: Any, i0: Any, a: Rate, d: Rate, v_leak: Any, record: bool, keep: bool) -> tuple[Any, Any, Any]:
    """``li_neurons::scan`` on CUDA: ``(voltages [T, ...], currents [T, ...]
    if record else the final i, the j sequence if keep else an empty tensor)``;
    ``v_leak`` a tensor or a float."""
    voltages, _, currents, js = _scan(xs, v0, i0, a, d, v_leak, record, keep, copy=False)
    return voltages, currents, js if keep else xs.new_empty(0)


def scan_with_copy(
    xs: Any, v0: Any, i0: Any, a: Rate, d: Rate, v_leak: Any, record: bool, keep: bool
) -> tuple[Any, Any, Any, Any]:
    """The eager scan on CUDA (:func:`li_backends.torch.ops.scan_eager`):
    ``(voltages, v_out, currents or final i, js or None)``, where the kernel
    also writes ``v_out``, the final voltage (the whole sequence when
    ``record``), into a buffer of its own."""
    return _scan(xs, v0, i0, a, d, v_leak, record, keep, copy=True)


def _scan(
    xs: Any, v0: Any, i0: Any, a: Rate, d: Rate, v_leak: Any, record: bool, keep: bool, copy: bool
) -> tuple[Any, Any, Any, Any]:
    """One ``li_scan`` launch on torch's current stream; every output is
    allocated by torch (its caching allocator), nothing is read on the host."""
    dtype, neurons = _dtype(xs), xs.shape[1:]
    rates = _rates(a, d, v_leak, xs)
    xs, v0, i0 = xs.contiguous(), _laid_out(v0, neurons), _laid_out(i0, neurons)
    empty_like = _torch().empty_like  # (contiguous like its argument, and faster than new_empty)
    voltages = empty_like(xs)
    outputs: dict[str, Any] = {}
    currents = outputs["currents" if record else "i_last"] = empty_like(xs if record else v0)
    v_out = None
    if copy:
        v_out = outputs["voltages_copy" if record else "v_last"] = empty_like(xs if record else v0)
    js = outputs["js"] = empty_like(xs) if keep else None
    _issue(kernels.scan(MEMORY, dtype, xs, v0, i0, rates, voltages, **outputs), xs.device)
    return voltages, v_out, currents, js


def _strides(gv: Any) -> tuple[Any, tuple[int, int] | None]:
    """``gv`` as the adjoint reads it: in place with ``(step, neuron)``
    strides where its neuron axes are all contiguous or all broadcast (any
    step stride), else a contiguous copy (and None)."""
    if all(stride == 0 for size, stride in zip(gv.shape[1:], gv.stride()[1:]) if size > 1):
        return gv, (gv.stride(0), 0)
    if gv[0].is_contiguous():
        return gv, (gv.stride(0), 1)
    return gv.contiguous(), None


def scan_backward(
    gv: Any, gi: Any, a: Rate, d: Rate, v_leak: Any, v0: Any, voltages: Any, js: Any, record: bool
) -> list[Any]:
    """``li_neurons::scan_backward`` on CUDA: ``[dx, dv0, di0]`` plus, when
    ``js`` is given, each neuron's share of ``[dL/da, dL/dd, dL/dv_leak]``
    (with respect to the fractions; tensors of the neuron shape). A ``gi``
    of None is zero (nothing is read). ``dv0`` is always computed (one value
    per neuron)."""
    dtype, neurons = _dtype(gv), gv.shape[1:]
    rates = _rates(a, d, v_leak, gv)
    gv, gv_strides = _strides(gv)
    torch = _torch()
    dx = torch.empty_like(gv, memory_format=torch.contiguous_format)  # (gv may be a broadcast view)
    row = dx[0]
    dv0, di0 = torch.empty_like(row), torch.empty_like(row)
    inputs: dict[str, Any] = {}
    if gi is not None:
        inputs["gis" if record else "gi_last"] = _laid_out(gi, dx.shape if record else neurons)
    shares = None
    if js is not None:
        inputs.update(v0=_laid_out(v0, neurons), voltages=_laid_out(voltages, dx.shape), js=_laid_out(js, dx.shape))
        shares = (torch.empty_like(dv0), torch.empty_like(dv0), torch.empty_like(dv0))
    launch = kernels.scan_backward(
        MEMORY, dtype, gv, rates, dx, gv_strides=gv_strides, dv0=dv0, di0=di0, shares=shares, **inputs
    )
    _issue(launch, dx.device)
    return [dx, dv0, di0, *(shares or ())]
