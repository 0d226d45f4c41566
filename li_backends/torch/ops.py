"""The custom ops ``li_neurons::scan`` and ``li_neurons::scan_backward``
(``torch.library`` ops, opaque to ``torch.compile``) and their autograd.

They take the per-step decay fractions ``a = dt*tau_mem_inv`` and
``d = dt*tau_syn_inv`` (:func:`li_core.reference.rates`), never the decays
``c = 1 - a`` and ``b = 1 - d``: those are rounded near 1 in float32, which
makes the decay rate of slow neurons wrong by up to eps/a. Each fraction
comes as a :class:`li_core.rates.Rate`, an inverse time constant and its
step ``dt`` (or a fraction and 1), and the kernels form the product: no
array of fractions is made, and autograd records nothing, per call. The
gradients returned for the inverse time constants are those of the
fractions (below) times ``dt``, each summed to its parameter's shape first,
which is the order autograd applied when it recorded ``dt*tau_inv``.

With ``x_t`` the weighted input (all ``T`` steps projected by one matmul
first, so autograd handles the weights), the forward recurrence is, in its
increment form (the contract, docs/contract.md, section 1)::

    j_t = i_{t-1} + x_t,    v_t = v_{t-1} + a*((v_leak - v_{t-1}) + j_t),    i_t = j_t - d*j_t

With ``lam_t``, ``kap_t``, ``mu_t`` the gradients of the loss with respect to
``v_t``, ``i_t`` and ``j_t`` (everything downstream included), and ``gv_t``,
``gi_t`` the gradients arriving at the outputs (``gi`` only at ``T-1``
unless the currents are recorded), the adjoint runs backwards in time from
``lam_T = mu_T = 0``::

    lam_t = gv_t + (lam_{t+1} - a*lam_{t+1})
    kap_t = gi_t + mu_{t+1}
    mu_t  = a*lam_t + (kap_t - d*kap_t)

so that ``dL/dx_t = mu_t``, ``dL/dv_init = lam_0 - a*lam_0``,
``dL/di_init = mu_0`` and, each summed back to its parameter's shape,
``dL/da = sum_t lam_t*((v_leak - v_{t-1}) + j_t)``,
``dL/dd = -sum_t kap_t*j_t``, ``dL/dv_leak = a*sum_t lam_t``. Nothing
divides by ``a``, ``d`` or their complements.

On the CPU, for few neurons per step and long runs
(:func:`li_core.blocked_scan.chunk_length`), both ops run the time-blocked
scan of :mod:`li_core.blocked_scan` with the loop (:mod:`.loop`) as its lane
scan; otherwise the loop. The adjoint runs through the same blocked scan
over reversed time: in ``s = T - 1 - t`` it is two first-order filters,
``a*lam = H_a gv`` and ``mu = H_d (a*lam + (1 - d)*gi)`` with
``H_a y_s = (1 - a)*H_a y_{s-1} + a*y_s`` and
``H_d y_s = (1 - d)*H_d y_{s-1} + y_s``, while the forward scan from rest
with ``v_leak = 0`` computes ``v = H_a H_d x`` and ``i = (1 - d)*H_d x``.
Scalar filters commute, so ``dL/dx`` reversed is the voltage of the forward
scan of reversed ``gv`` plus the current of the forward scan of reversed
``gi``, and ``lam`` is the ``j`` of a forward scan whose synaptic rate is
``a`` (its final current is ``dL/dv_init``); the parameter gradients are
sums over these sequences (:func:`li_core.blocked_scan.blocked_adjoint`).
On CUDA tensors the ops run the fused kernels (:mod:`.cuda`) when CuPy can
launch them. Importing this module registers the ops.

Outside ``torch.compile``'s tracing the backend skips the custom-op
machinery (its dispatch and autograd wrapper cost more than a small scan):
:func:`scan_eager` calls the same implementations through one plain
``torch.autograd.Function``, :class:`Scan`, with the same results and
gradients bit for bit. It takes Python-float rates as they are, returns the
final voltage in a buffer of its own and leaves gradients that never arrive
unmaterialised.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch

from li_backends import compiled
from li_core.blocked_scan import blocked_adjoint, blocked_scan, chunk_length
from li_core.rates import Rate, fraction
from li_core.types import LIParameters, LIState

from . import cuda, loop

#: set to False to run the loop wherever the blocked scan would (the tests and
#: the benchmarks compare both)
BLOCKED = True


def blocked_length(xs):
    """The chunk length of the blocked scan for ``xs`` ``[T, ...]``, or 0
    where the loop runs: off the CPU, where the compiled loops do not run
    only because they are loading (the loop gives their numbers; they may
    have loaded since the caller asked, so not only "loop"), or where
    :func:`li_core.blocked_scan.chunk_length` says the loop is faster."""
    if not BLOCKED or xs.device.type != "cpu":
        return 0
    if xs.dtype in loop.COMPILED_DTYPES and xs.numel() and compiled.status(0, 0) != "off":
        return 0
    return chunk_length(xs.shape[0], math.prod(xs.shape[1:]))


def _blocked_forward(xs, v0, i0, a, d, v_leak, record, keep, length):
    """The forward op's outputs from the blocked scan (fractions ``a``, ``d``
    as tensors); ``j_t = i_{t-1} + x_t`` from the recorded currents when it
    is kept."""
    shape = xs.shape[1:]
    state = LIState(v0.expand(shape), i0.expand(shape))
    p = LIParameters(tau_syn_inv=d, tau_mem_inv=a, v_leak=v_leak)  # with dt = 1 the rates are a and d
    voltages, final = blocked_scan(xs, state, None, p, 1.0, record or keep, lane_scan=loop.lane_scan, length=length)
    if not keep:
        return voltages, final.i, xs.new_empty((0,))
    js = torch.cat([state.i[None], final.i[:-1]]).add_(xs)
    return voltages, final.i if record else final.i[-1].clone(), js


def _scan(xs, v0, i0, a, d, v_leak, record, keep):
    """The forward op with the compiled loops (float32 and float64 on the
    CPU, where numba imports) or torch's own ops, on any device; ``a`` and
    ``d`` are :class:`~li_core.rates.Rate` s, their values and ``v_leak``
    tensors or Python floats (the compiled loops take floats as they are)."""
    if loop.compiled_runs(xs):
        voltages, currents, js, _, _ = loop.compiled_forward(xs, v0, i0, a, d, v_leak, record, keep)
        return voltages, currents, xs.new_empty((0,)) if js is None else js
    with torch.no_grad():
        a, d, v_leak = _fractions(xs.dtype, a, d, v_leak)
        length = blocked_length(xs)
        if length:
            return _blocked_forward(xs, v0, i0, a, d, v_leak, record, keep, length)
        return loop.forward(xs, v0, i0, a, d, v_leak, record, keep)


def _scan_backward(gv, gi, a, d, v_leak, v0, voltages, js, record, need_v0, need_i0=True, compiled=None):
    """The backward op with the compiled loops (as :func:`_scan`) or torch's
    own ops, on any device; rates as in :func:`_scan`, and a ``gi`` of None
    is zero. The parameter gradients are :func:`_parameter_gradients` (None
    for a float); ``dL/di_init`` may be None unless ``need_i0``.
    ``compiled`` is the forward's path where the caller knows it (see
    :func:`_forward`: True, or what the compiled forward kept for its
    adjoint); None or False asks again (the compiled loops may have loaded
    since)."""
    saved = None if js is None else (v0, voltages, js, v_leak)
    with torch.no_grad():  # (a backward runs with grad mode on under create_graph)
        if compiled is None or compiled is False:
            compiled = loop.compiled_runs(gv)
        if compiled is not False:
            kept = None if compiled is True else compiled
            grads = loop.compiled_backward(gv, gi, a, d, record, saved, need_i0, kept)
        else:
            if gi is None:
                gi = torch.zeros_like(gv) if record else gv.new_zeros(gv.shape[1:])
            a_fraction, d_fraction, leak = _fractions(gv.dtype, a, d, v_leak)
            saved = None if saved is None else (v0, voltages, js, leak)
            length = blocked_length(gv)
            if length:
                grads = blocked_adjoint(
                    gv, gi, a_fraction, d_fraction, record, need_v0, saved, lane_scan=loop.lane_scan, length=length
                )
            else:
                grads = loop.backward(gv, gi, a_fraction, d_fraction, record, need_v0, saved)
        if saved is None:
            return grads
        return grads[:3] + _parameter_gradients(grads[3:], a, d, v_leak)


def _parameter_gradients(shares, a, d, v_leak):
    """``[dL/da.value, dL/dd.value, dL/dv_leak]`` from each neuron's share of
    the gradients with respect to the fractions and ``v_leak``: each summed
    to its parameter's shape (where it differs), a rate's then times its
    scale (where that is not 1); None for a Python float, which takes no
    gradient."""
    grads: list = []
    for share, value, scale in zip(shares, (a.value, d.value, v_leak), (a.scale, d.scale, 1.0)):
        if not isinstance(value, torch.Tensor):
            grads.append(None)
            continue
        if share.shape == value.shape:
            grad = share
        elif share.shape[1:] == value.shape:  # (the common case, a batch axis: the reduction sum_to_size runs)
            grad = share.sum(0)
        else:
            grad = share.sum_to_size(value.shape)
        grads.append(grad if scale == 1.0 else grad.mul_(scale))
    return grads


@torch.library.custom_op(
    "li_neurons::scan",
    mutates_args=(),
    schema="(Tensor xs, Tensor v0, Tensor i0, Tensor a, Tensor d, Tensor v_leak, float a_scale, float d_scale,"
    " bool record, bool keep) -> (Tensor, Tensor, Tensor)",
)
def scan(xs, v0, i0, a, d, v_leak, a_scale, d_scale, record, keep):
    """``(voltages [T, ...], currents [T, ...] or final i, j sequence or
    empty)``: the forward recurrence for ``T >= 1``, in the compute dtype,
    with the fractions ``a*a_scale`` and ``d*d_scale``; ``keep`` keeps ``j``
    for parameter gradients."""
    return _scan(xs, v0, i0, Rate(a, a_scale), Rate(d, d_scale), v_leak, record, keep)


@scan.register_kernel("cuda")
def _(xs, v0, i0, a, d, v_leak, a_scale, d_scale, record, keep):
    """On CUDA, the fused kernels (:mod:`.cuda`) where they can run."""
    rates = Rate(a, a_scale), Rate(d, d_scale)
    if cuda.active():
        return cuda.scan(xs, v0, i0, *rates, v_leak, record, keep)
    return _scan(xs, v0, i0, *rates, v_leak, record, keep)


@scan.register_fake
def _(xs, v0, i0, a, d, v_leak, a_scale, d_scale, record, keep):
    currents = torch.empty_like(xs) if record else xs.new_empty(xs.shape[1:])
    return torch.empty_like(xs), currents, torch.empty_like(xs) if keep else xs.new_empty((0,))


@torch.library.custom_op(
    "li_neurons::scan_backward",
    mutates_args=(),
    schema="(Tensor gv, Tensor gi, Tensor a, Tensor d, Tensor v_leak, float a_scale, float d_scale, Tensor? v0,"
    " Tensor? voltages, Tensor? js, bool record, bool need_v0) -> Tensor[]",
)
def scan_backward(gv, gi, a, d, v_leak, a_scale, d_scale, v0, voltages, js, record, need_v0):
    """``[dx, dv0, di0]`` (plus the gradients of ``a``, ``d`` and ``v_leak``,
    :func:`_parameter_gradients`, when ``js`` is given) from the gradients of
    the voltages and of the currents (sequence when ``record``, else final);
    ``dv0`` may be left zero unless ``need_v0``."""
    return _scan_backward(gv, gi, Rate(a, a_scale), Rate(d, d_scale), v_leak, v0, voltages, js, record, need_v0)


@scan_backward.register_kernel("cuda")
def _(gv, gi, a, d, v_leak, a_scale, d_scale, v0, voltages, js, record, need_v0):
    """On CUDA, the fused adjoint (:mod:`.cuda`) where it can run."""
    rates = Rate(a, a_scale), Rate(d, d_scale)
    if cuda.active():
        return _fused_backward(gv, gi, *rates, v_leak, v0, voltages, js, record)
    return _scan_backward(gv, gi, *rates, v_leak, v0, voltages, js, record, need_v0)


@scan_backward.register_fake
def _(gv, gi, a, d, v_leak, a_scale, d_scale, v0, voltages, js, record, need_v0):
    shape = gv.shape[1:]
    grads = [torch.empty_like(gv), gv.new_empty(shape), gv.new_empty(shape)]
    return grads if js is None else grads + [gv.new_empty(p.shape) for p in (a, d, v_leak)]


def _setup_context(ctx, inputs, output):
    _xs, v0, _i0, a, d, v_leak, a_scale, d_scale, record, keep = inputs
    ctx.record, ctx.scales = record, (a_scale, d_scale)
    ctx.save_for_backward(a, d, v_leak, *((v0, output[0], output[2]) if keep else ()))


def _backward(ctx, g_voltages, g_currents, _g_js):
    a, d, v_leak, *saved = ctx.saved_tensors
    v0, voltages, js = saved or (None, None, None)
    need_v0 = ctx.needs_input_grad[1]
    grads = torch.ops.li_neurons.scan_backward(
        g_voltages, g_currents, a, d, v_leak, *ctx.scales, v0, voltages, js, ctx.record, need_v0
    )
    grads += [None] * (6 - len(grads))
    return (*(g if need else None for g, need in zip(grads, ctx.needs_input_grad)), None, None, None, None)


scan.register_autograd(_backward, setup_context=_setup_context)


@functools.lru_cache(maxsize=256)
def _constant(value: float, dtype: torch.dtype) -> torch.Tensor:
    """A float rate as the 0-d CPU tensor the torch implementations take,
    made once per value and dtype (never written to)."""
    return torch.tensor(value, dtype=dtype)


def _fractions(dtype: torch.dtype, a: Rate, d: Rate, v_leak: Any) -> list[torch.Tensor]:
    """The fractions of ``a`` and ``d`` (:func:`li_core.rates.fraction`) and
    ``v_leak`` as the tensors torch's loop and the blocked scan take: a
    float as a 0-d constant (:func:`_constant`), a tensor's product by torch
    (call without autograd: nothing is recorded)."""
    return [v if isinstance(v, torch.Tensor) else _constant(v, dtype) for v in (fraction(a), fraction(d), v_leak)]


def _fused(x: torch.Tensor) -> bool:
    return x.is_cuda and cuda.active()


def _forward(xs, v0, i0, a, d, v_leak, record, keep):
    """``(voltages, v_out, currents or final i, js or None, compiled)``: the
    forward op plus ``v_out``, the final voltage (the whole sequence when
    ``record``) in a buffer of its own. Rates as in :func:`_scan`.
    ``compiled`` is False unless the compiled loops ran; then it is True, or
    with ``keep`` the arrays their adjoint reads (:func:`.loop.compiled_forward`)."""
    if _fused(xs):
        return (*cuda.scan_with_copy(xs, v0, i0, a, d, v_leak, record, keep), False)
    if loop.compiled_runs(xs):
        voltages, currents, js, v_out, kept = loop.compiled_forward(xs, v0, i0, a, d, v_leak, record, keep, True)
        return voltages, voltages.clone() if record else v_out, currents, js, True if kept is None else kept
    voltages, currents, js = _scan(xs, v0, i0, a, d, v_leak, record, keep)
    v_out = voltages.clone() if record else voltages[-1].clone()
    return voltages, v_out, currents, js if keep else None, False


def _voltage_gradient(g_voltages, g_v_out, record, zeros):
    """The gradient reaching the voltage sequence from both voltage outputs
    (either may be None: never materialised), summed as autograd would;
    ``zeros()`` makes a zero sequence."""
    if g_v_out is None:
        return zeros() if g_voltages is None else g_voltages
    if record:
        return g_v_out if g_voltages is None else g_voltages + g_v_out
    gv = zeros() if g_voltages is None else g_voltages.clone(memory_format=torch.contiguous_format)
    gv[-1] += g_v_out
    return gv


def _fused_backward(gv, gi, a, d, v_leak, v0, voltages, js, record):
    """The fused CUDA adjoint (:func:`.cuda.scan_backward`) with the
    parameter gradients of :func:`_parameter_gradients`."""
    grads = cuda.scan_backward(gv, gi, a, d, v_leak, v0, voltages, js, record)
    return grads if js is None else grads[:3] + _parameter_gradients(grads[3:], a, d, v_leak)


def _adjoint(gv, gi, a, d, v_leak, v0, voltages, js, record, need_v0, need_i0, compiled):
    """The backward op for rates as in :func:`_scan`, fused on CUDA, else
    :func:`_scan_backward` (which takes the forward's path ``compiled``)."""
    if _fused(gv):
        return _fused_backward(gv, gi, a, d, v_leak, v0, voltages, js, record)
    return _scan_backward(gv, gi, a, d, v_leak, v0, voltages, js, record, need_v0, need_i0, compiled)


class Scan(torch.autograd.Function):
    """The eager scan: ``(voltages, v_out, currents or final i)`` of
    ``(xs, v0, i0, tau_mem_inv, tau_syn_inv, v_leak, dt, record)`` (see
    :func:`_forward`), with the adjoint of the module docstring as its
    backward, which returns the gradients of the inverse time constants."""

    @staticmethod
    def forward(ctx, xs, v0, i0, tau_mem_inv, tau_syn_inv, v_leak, dt, record):
        ctx.set_materialize_grads(False)
        keep = any(ctx.needs_input_grad[3:6])
        a, d = Rate(tau_mem_inv, dt), Rate(tau_syn_inv, dt)
        voltages, v_out, currents, js, ctx.compiled = _forward(xs, v0, i0, a, d, v_leak, record, keep)
        ctx.record, ctx.dt = record, dt
        parameters = (tau_mem_inv, tau_syn_inv, v_leak)
        ctx.floats = tuple(None if isinstance(p, torch.Tensor) else p for p in parameters)
        tensors = [p if isinstance(p, torch.Tensor) else None for p in parameters]
        ctx.save_for_backward(*tensors, *((v0, voltages, js) if keep else (None, None, None)))
        ctx.shape = voltages.shape
        return voltages, v_out, currents

    @staticmethod
    def backward(ctx, g_voltages, g_v_out, g_currents):
        given = next((g for g in (g_voltages, g_v_out, g_currents) if g is not None), None)
        if given is None:
            return (None,) * 8
        *tensors, v0, voltages, js = ctx.saved_tensors
        tau_mem_inv, tau_syn_inv, v_leak = (f if t is None else t for t, f in zip(tensors, ctx.floats))
        a, d = Rate(tau_mem_inv, ctx.dt), Rate(tau_syn_inv, ctx.dt)
        gv = _voltage_gradient(g_voltages, g_v_out, ctx.record, lambda: given.new_zeros(ctx.shape))
        need = ctx.needs_input_grad
        grads = _adjoint(gv, g_currents, a, d, v_leak, v0, voltages, js, ctx.record, need[1], need[2], ctx.compiled)
        return (*(g if wanted else None for g, wanted in zip(grads, need)), *(None,) * (8 - len(grads)))


def scan_eager(xs, v0, i0, tau_mem_inv, tau_syn_inv, v_leak, dt, record):
    """``(voltages, v_out, currents or final i)`` for ``T >= 1`` in the compute
    dtype, through :class:`Scan` where autograd needs it, else directly.
    ``v_out`` is the final voltage (the sequence when ``record``), distinct
    from ``voltages``; parameters are tensors or Python floats."""
    if torch.is_grad_enabled():
        for t in (xs, v0, i0, tau_mem_inv, tau_syn_inv, v_leak):
            if isinstance(t, torch.Tensor) and t.requires_grad:
                return Scan.apply(xs, v0, i0, tau_mem_inv, tau_syn_inv, v_leak, dt, record)
    a, d = Rate(tau_mem_inv, dt), Rate(tau_syn_inv, dt)
    return _forward(xs, v0, i0, a, d, v_leak, record, False)[:3]
