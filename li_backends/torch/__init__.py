"""The ``torch`` backend: autograd-aware leaky integrators on PyTorch tensors.

The steps are plain torch operations, so autograd flows through them. The scan
is one fused operator with a hand-written adjoint (:mod:`.ops`), computed on
the CPU by one of two algorithms chosen by size: a time loop of in-place ops
(:mod:`.loop`) or, for few neurons per step and long runs, the time-blocked
scan of :mod:`li_core.blocked_scan` (forward and adjoint) with that loop as
its lane scan. Outside ``torch.compile`` a scan goes through one plain
``torch.autograd.Function`` (:func:`.ops.scan_eager`); under it, through the
custom op ``li_neurons::scan``, with the same bits. float16 and bfloat16 are
computed in float32 and returned in their own dtype. Importing this package
does not import torch.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import li_core
from li_core.rates import fraction, scan_rates
from li_core.reference import rates
from li_core.types import LIParameters, LIState


def _torch() -> Any:
    return sys.modules.get("torch") or importlib.import_module("torch")


def _compute_dtype(torch: Any, dtype: Any) -> Any:
    """float32 for the half types, else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _as_compute(dtype: Any, p: LIParameters) -> LIParameters:
    """Parameter tensors in the compute dtype (floats stay floats)."""
    return LIParameters(*(v if isinstance(v, float) else v.to(dtype) for v in p))


_ops_registered = False


def _register_ops() -> None:
    global _ops_registered
    importlib.import_module(__name__ + ".ops")
    _ops_registered = True


def _scan_op() -> Any:
    """``torch.ops.li_neurons.scan``, registered on first use (outside of
    ``torch.compile``'s tracing)."""
    torch = _torch()
    if not _ops_registered:
        torch.compiler.disable(_register_ops)()
    return torch.ops.li_neurons.scan


class TorchBackend(li_core.Backend):
    """Leaky integrators on torch tensors: any device, autograd everywhere."""

    name = "torch"
    library = "torch"
    priority = 20
    extra = "torch"
    dtypes = ("float16", "bfloat16", "float32", "float64")
    devices = ("cpu", "cuda")
    autograd = True

    def notes(self) -> str:
        """Which path a scan takes on CUDA tensors and on the CPU."""
        from li_backends import compiled
        from li_core.backend import install_command

        from . import cuda

        cpu = "; " + compiled.notes("on the CPU, float32 and float64 scans and their backward")
        if not cuda.FUSED:
            return "on CUDA, scans run torch's own loop (the fused kernels are switched off: cuda.FUSED is False)" + cpu
        reason = cuda.fused_unavailable()
        if reason is None:
            return (
                "on CUDA, scans run the fused CUDA kernels of li_backends/cupy (through CuPy, on torch's stream)" + cpu
            )
        return f"on CUDA, scans run torch's own loop ({reason}); for the fused kernels: {install_command('cuda')}" + cpu

    def handles(self, x: Any) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(x, torch.Tensor)

    def asarray(self, array: Any, device: Any = None) -> Any:
        return _torch().tensor(array, device=device or "cpu")

    def to_numpy(self, x: Any) -> Any:
        """Half types come back as float32 (NumPy has no bfloat16)."""
        torch = _torch()
        return x.detach().to(_compute_dtype(torch, x.dtype)).cpu().numpy()

    def feed_forward_step(self, x: Any, state: LIState, p: LIParameters, dt: float) -> tuple[Any, LIState]:
        return self._euler(x, state, p, dt, x.dtype)

    def step(self, x: Any, state: LIState, w: Any, p: LIParameters, dt: float) -> tuple[Any, LIState]:
        return self._euler(self.project(x, w), state, p, dt, x.dtype)

    def project(self, x: Any, w: Any) -> Any:
        """``x @ w.T``; half types are multiplied in float32 (and stay there:
        the step and the scan cast their results back)."""
        torch = _torch()
        compute = _compute_dtype(torch, x.dtype)
        if compute is not x.dtype:
            x, w = x.to(compute), w.to(compute)
        return torch.nn.functional.linear(x, w)

    @staticmethod
    def _euler(x: Any, state: LIState, p: LIParameters, dt: float, dtype: Any) -> tuple[Any, LIState]:
        """``j = i + x``, ``v' = lerp(v, j + v_leak, a)``, ``i' = j - d*j`` in
        the compute dtype of ``dtype``; returns fresh ``dtype`` tensors."""
        torch = _torch()
        compute = _compute_dtype(torch, dtype)
        cast = compute is not dtype  # (else every conversion below would return its tensor: skipped)
        v, i = state
        if cast:
            x, v, i = (t.to(compute) for t in (x, v, i))
            p = _as_compute(compute, p)
        a, d = rates(p, dt)
        j = i + x
        v_new = torch.lerp(v, j if isinstance(p.v_leak, float) and p.v_leak == 0.0 else j + p.v_leak, a)
        i_new = torch.add(j, j, alpha=-d) if isinstance(d, float) else j - d * j
        if cast:
            return v_new.to(dtype), LIState(v_new.to(dtype, copy=True), i_new.to(dtype))
        return v_new, LIState(v_new.clone(), i_new)

    def scan(
        self, xs: Any, state: LIState, w: Any, p: LIParameters, dt: float, record_states: bool
    ) -> tuple[Any, LIState]:
        """The scan on the projected inputs (empty ``T`` returns copies of the
        state): eagerly :func:`.ops.scan_eager`, under ``torch.compile`` the
        ``li_neurons::scan`` op. Nothing is converted whose dtype already fits
        (the core has checked that every array shares the input's dtype and
        device), float parameters stay Python floats, and the kernels form
        the fractions ``dt*tau_inv`` (:mod:`li_core.rates`)."""
        torch = _torch()
        dtype = xs.dtype
        compute = _compute_dtype(torch, dtype)
        cast = compute is not dtype
        if w is not None:
            xs = self.project(xs, w)
        elif cast:
            xs = xs.to(compute)
        if xs.shape[0] == 0:
            empty = xs.new_empty(xs.shape, dtype=dtype)
            if record_states:
                return empty, LIState(empty.clone(), empty.clone())
            return empty, LIState(state.v.clone(), state.i.clone())
        v0, i0 = state
        if cast:
            p, v0, i0 = _as_compute(compute, p), v0.to(compute), i0.to(compute)
        if tracing(torch):
            rates = scan_rates(p, dt)
            voltages, v_out, currents = _compiled_scan(
                torch, compute, xs, v0, i0, *rates, p.v_leak, record=record_states
            )
        else:
            voltages, v_out, currents = _ops().scan_eager(
                xs, v0, i0, p.tau_mem_inv, p.tau_syn_inv, p.v_leak, dt, record_states
            )
        if cast:
            return voltages.to(dtype), LIState(v_out.to(dtype), currents.to(dtype))
        return voltages, LIState(v_out, currents)


def tracing(torch: Any) -> bool:
    """Whether ``torch.compile`` is tracing this call: then a scan is the
    ``li_neurons::scan`` custom op, which it can trace; else the eager path.
    (One name for the choice, so tests can force either path without
    patching ``torch.compiler`` for everyone.)"""
    return torch.compiler.is_compiling()


def _ops() -> Any:
    """:mod:`.ops`, imported (which registers the custom ops) on first use."""
    if not _ops_registered:
        _register_ops()
    return sys.modules[__name__ + ".ops"]


def _compiled_scan(
    torch: Any, compute: Any, xs: Any, v0: Any, i0: Any, a: Any, d: Any, v_leak: Any, *, record: bool
) -> tuple:
    """``(voltages, v_out, currents or final i)`` through the custom op
    ``li_neurons::scan``, which ``torch.compile`` keeps opaque in its graph.
    Its schema takes tensors: a float rate becomes its fraction (formed in
    double precision, as eagerly) with a scale of 1, a float ``v_leak`` a
    0-d tensor."""
    values, scales = [], []
    for rate in (a, d):
        if isinstance(rate.value, torch.Tensor):
            values.append(rate.value)
            scales.append(rate.scale)
        else:
            values.append(torch.tensor(fraction(rate), dtype=compute))
            scales.append(1.0)
    leak = v_leak if isinstance(v_leak, torch.Tensor) else torch.tensor(v_leak, dtype=compute)
    keep = torch.is_grad_enabled() and any(t.requires_grad for t in (*values, leak))
    voltages, currents, _ = _scan_op()(xs, v0, i0, *values, leak, *scales, record, keep)
    return voltages, voltages.clone() if record else voltages[-1].clone(), currents


@li_core.hookimpl
def li_register_backends() -> list[li_core.Backend]:
    return [TorchBackend()]
