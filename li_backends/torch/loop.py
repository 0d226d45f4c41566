"""The loop algorithm: a time loop of in-place ops on preallocated buffers,
forward and adjoint, for any parameter shapes.

On the CPU the neurons are cut into pieces small enough for each op to run on
one thread, and the pieces run on worker threads of their own, so no op waits
at a thread barrier. It is the only algorithm that computes parameter
gradients; only then does the forward keep the ``j`` sequence (and the
backward the voltages) for them. Where the compiled loops of
:mod:`li_backends.compiled` run (float32 and float64 on the CPU, with
numba), :func:`compiled_forward` and :func:`compiled_backward` run them on
the tensors' memory instead. Every decay is written in its increment
form (``y - a*y``, or ``lerp``, which computes ``start + w*(end - start)``
for ``|w| < 0.5`` and ``end - (end - start)*(1 - w)`` otherwise, where
``1 - w`` is exact), so ``1 - a`` and ``1 - d`` are never rounded; the
recurrences are documented in :mod:`li_backends.torch.ops`. float64 runs
them plain; float32 (and the half types, computed in it) runs them
compensated, each state carrying its rounding error
(:mod:`li_core.float_float`, the compiled kernels' operations in their
order, so the two give the same bits), with the parameter gradients summed
in float64.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import math
from typing import Any

import torch

from li_backends import compiled
from li_core import float_float
from li_core.float_float import compensated
from li_core.rates import Rate
from li_core.reference import rates
from li_core.types import LIParameters, LIState

#: on the CPU the loop runs on pieces of at most this many neurons, so that
#: every per-step op stays within torch's parallel grain size (32768) and runs
#: on one thread: a thread barrier per op stalls whenever another process holds
#: a core. Pieces run on worker threads of their own (one per torch thread).
CHUNK = 32768
#: ... and the neurons are cut into one piece per torch thread as long as each
#: piece keeps at least this many neurons
MIN_PIECE = 16384


def _scalar(t: Any) -> Any:
    """A one-element coefficient as a Python float, else the tensor itself."""
    return t.item() if t.numel() == 1 else t


def _is_zero(t: Any) -> bool:
    return t.numel() == 1 and t.item() == 0.0


def _axpy(x: Any, alpha: Any, y: Any, out: Any) -> Any:
    """``out = x + alpha*y`` for a float or tensor ``alpha``."""
    if isinstance(alpha, float):
        return torch.add(x, y, alpha=alpha, out=out)
    return torch.addcmul(x, y, alpha, out=out)


def _pieces(shape: tuple, limit: float) -> list[tuple]:
    """Index tuples that cut an array of ``shape`` into views of at most
    ``limit`` elements (whole rows of the trailing axes where possible)."""
    if not shape or math.prod(shape) <= limit:
        return [()]
    inner = math.prod(shape[1:])
    if inner <= limit:
        count = math.ceil(shape[0] / (limit // inner))
        rows = math.ceil(shape[0] / count)  # as even as possible
        return [(slice(k, k + rows),) for k in range(0, shape[0], rows)]
    return [(k, *rest) for k in range(shape[0]) for rest in _pieces(shape[1:], limit)]


def _cut(shape: tuple, *tensors: Any) -> list[list]:
    """Per piece (see :func:`_pieces`; one piece off the CPU), the pieces of
    ``tensors``: time sequences ``[T, *shape]``, neuron arrays broadcasting to
    ``shape``, or 0-d tensors and None (passed through)."""
    limit = math.inf
    if tensors[0].device.type == "cpu":
        per_thread = math.ceil(math.prod(shape) / torch.get_num_threads())
        limit = min(CHUNK, max(MIN_PIECE, per_thread))

    def piece(t: Any, index: tuple) -> Any:
        if t is None or t.dim() == 0:
            return t
        if t.dim() > len(shape):
            every_step = (slice(None), *index)
            return t[every_step]
        return t.expand(shape)[index]

    return [[piece(t, index) for t in tensors] for index in _pieces(tuple(shape), limit)]


def _each(work: Any, pieces: list[list]) -> None:
    """``work(*piece)`` for every piece, without autograd; several pieces run
    on worker threads (as many as torch's intra-op threads). The pieces are
    independent, so a thread never waits for another until the end."""

    def run(piece: list) -> None:
        with torch.no_grad():  # grad mode is per thread
            work(*piece)

    workers = min(len(pieces), torch.get_num_threads())
    if workers <= 1:
        for piece in pieces:
            run(piece)
        return
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, pieces))


def forward(xs: Any, v0: Any, i0: Any, a: Any, d: Any, v_leak: Any, record: bool, keep: bool):
    """The forward op's outputs, piece by piece of the neurons (see
    :data:`CHUNK`): ``j_t = i_{t-1} + x_t``, ``v_t = lerp(v_{t-1}, j_t +
    v_leak, a)`` written straight into the output, ``i_t = j_t - d*j_t``.
    Three ops per step: ``j`` and ``i`` take turns in the final-current
    output unless the ``j`` sequence is kept or the currents recorded."""
    shape = xs.shape[1:]
    voltages = xs.new_empty(xs.shape)
    js = xs.new_empty(xs.shape) if keep else None
    currents = xs.new_empty(xs.shape) if record else None
    i_end = xs.new_empty(shape)
    leak = None if _is_zero(v_leak) else v_leak
    _each(_forward_piece, _cut(shape, xs, v0, i0, a, d, leak, voltages, js, currents, i_end))
    return voltages, currents if record else i_end, xs.new_empty((0,)) if js is None else js


#: the dtypes the compiled loops compute in
COMPILED_DTYPES = (torch.float32, torch.float64)


def compiled_runs(xs: Any) -> bool:
    """Whether the compiled loops run for the time sequence ``xs`` (``T >=
    1``): a float32 or float64 CPU tensor with at least one neuron, where
    :func:`li_backends.compiled.status` says they are loaded (or waits for
    them: float64, whose loop's lerp is not the kernels' arithmetic, and a
    scan too large for the loop meanwhile)."""
    if xs.dtype not in COMPILED_DTYPES or not xs.is_cpu or xs.numel() == 0:
        return False
    return compiled.status(xs.shape[0], xs.numel() // xs.shape[0], exact_loop=compensated(xs.dtype)) == "compiled"


def _array(t: Any) -> Any:
    """The NumPy view of a CPU tensor's memory (no copy)."""
    return (t.detach() if t.requires_grad else t).numpy()


def _value(value: Any) -> Any:
    """A parameter for the kernels: a Python float as it is, a tensor as its NumPy view."""
    return value if isinstance(value, float) else _array(value)


def _rate(rate: Rate) -> Rate:
    """A rate for the kernels: its value as :func:`_value` makes it."""
    return rate if isinstance(rate.value, float) else Rate(_array(rate.value), rate.scale)


def compiled_forward(
    xs: Any, v0: Any, i0: Any, a: Rate, d: Rate, v_leak: Any, record: bool, keep: bool, final_voltage: bool = False
):
    """:func:`forward`'s outputs from :func:`li_backends.compiled.scan`,
    written straight into the output tensors (see :func:`compiled_runs`);
    the rates are :class:`~li_core.rates.Rate` s of tensors or Python floats
    (the kernels form the fractions), ``v_leak`` a tensor or a float.
    Returns ``(voltages, currents or final i, js, v_end, kept)``: the ``j``
    sequence is None unless ``keep``; ``v_end`` the final voltage in a
    buffer of its own with ``final_voltage`` (and not ``record``), else
    None; ``kept`` (with ``keep``, else None) what the adjoint reads again,
    as the kernels read it (:class:`li_backends.compiled.Prepared`), for
    :func:`compiled_backward`."""
    xs = xs.contiguous()
    voltages = torch.empty_like(xs)
    currents = torch.empty_like(xs) if record else None
    js = torch.empty_like(xs) if keep else None
    shape = xs.shape[1:]
    i_end = xs.new_empty(shape)
    v_end = xs.new_empty(shape) if final_voltage and not record else None
    no_leak = v_leak == 0.0 if isinstance(v_leak, float) else _is_zero(v_leak)
    state = _array(v0)  # (the default state is one tensor for both)
    kept = compiled.scan(
        _array(xs),
        state,
        state if i0 is v0 else _array(i0),
        _rate(a),
        _rate(d),
        None if no_leak else _value(v_leak),
        _array(voltages),
        None if currents is None else _array(currents),
        None if js is None else _array(js),
        _array(i_end),
        None if v_end is None else _array(v_end),
    )
    return voltages, i_end if currents is None else currents, js, v_end, kept


def compiled_backward(
    gv: Any, gi: Any, a: Rate, d: Rate, record: bool, saved: tuple | None, need_i0: bool = True, kept: Any = None
):
    """:func:`backward`'s gradients from
    :func:`li_backends.compiled.scan_backward` (``dL/dv_init`` always; the
    parameter gradients per neuron, with respect to the fractions); rates as
    in :func:`compiled_forward`, ``v_leak`` in ``saved`` a tensor or a
    Python float, and a ``gi`` of None is zero. ``dL/di_init`` (a copy of
    ``dL/dx_0``) is None unless ``need_i0``. ``kept``, where the forward
    gave it (:func:`compiled_forward`), stands for ``saved`` and the rates
    as the kernels read them."""
    shape = gv.shape[1:]
    gx = torch.empty(gv.shape, dtype=gv.dtype)
    g_v0 = gv.new_empty(shape)
    shares = None if saved is None else gv.new_empty((3, *shape))  # (one buffer, three rows)
    if kept is not None or saved is None:  # (nothing the kernels read again to view)
        arrays, rates = None, (a, d)
    else:
        arrays, rates = (*(_array(t) for t in saved[:3]), _value(saved[3])), (_rate(a), _rate(d))
    compiled.scan_backward(
        _array(gv),
        _array(gi) if record and gi is not None else None,
        0.0 if record or gi is None else _array(gi),
        *rates,
        arrays,
        _array(gx),
        _array(g_v0),
        None if shares is None else tuple(_array(shares)),
        kept,
    )
    return [gx, g_v0, gx[0].clone() if need_i0 else None, *(() if shares is None else shares.unbind(0))]


def lane_scan(xs: Any, state: LIState, p: LIParameters, dt: float, record_states: bool) -> tuple[Any, LIState]:
    """:func:`forward` as the lane scan of :mod:`li_core.blocked_scan`: the
    voltages and the final state (or, with ``record_states``, the ``v`` and
    ``i`` sequences) of time-first ``xs`` ``[steps, *lanes]``."""
    shape = xs.shape[1:]

    def tensor(value: Any) -> Any:
        return value if isinstance(value, torch.Tensor) else xs.new_tensor(value)

    a, d = rates(p, dt)
    v0, i0 = (tensor(s).expand(shape) for s in state)
    voltages, currents, _ = forward(xs, v0, i0, tensor(a), tensor(d), tensor(p.v_leak), record_states, False)
    return voltages, LIState(voltages if record_states else voltages[-1], currents)


def _forward_piece(x, v, i, a, d, leak, voltages, js, currents, i_end) -> None:
    """Coefficients are tensors (multiplied as such: a Python scalar operand
    would be wrapped in a new tensor at every step) and, where they are one
    number, floats for ``alpha`` and ``lerp`` weights. float32 runs the
    compensated step of :func:`li_core.float_float.forward_step` (the
    compiled kernels' operations), float64 the plain one."""
    i_seq = itertools.repeat(i_end) if currents is None else currents.unbind(0)
    if compensated(x.dtype):
        j_seq = itertools.repeat(x.new_empty(x.shape[1:])) if js is None else js.unbind(0)
        step = float_float.forward_step(torch, i_end, a, d, leak)
        for x_t, v_t, j_t, i_t in zip(x.unbind(0), voltages.unbind(0), j_seq, i_seq):
            step(x_t, v, i, v_t, j_t, i_t)
            v, i = v_t, i_t
        return
    weight, fraction = _scalar(a), _scalar(d)
    j_seq = itertools.repeat(i_end) if js is None else js.unbind(0)
    drive: Any = x.new_empty(x.shape[1:]) if leak is not None else None  # j_t + v_leak
    for x_t, v_t, j_t, i_t in zip(x.unbind(0), voltages.unbind(0), j_seq, i_seq):
        torch.add(i, x_t, out=j_t)
        torch.lerp(v, j_t if leak is None else torch.add(j_t, leak, out=drive), weight, out=v_t)
        _decay(j_t, fraction, out=i_t)  # i_t = j_t - d*j_t
        v, i = v_t, i_t


def _decay(y: Any, fraction: Any, out: Any) -> Any:
    """``out = y - fraction*y`` for a float or tensor ``fraction``: the
    increment form, which never rounds ``1 - fraction``."""
    if isinstance(fraction, float):
        return torch.add(y, y, alpha=-fraction, out=out)
    return torch.addcmul(y, y, fraction, value=-1, out=out)


def backward(gv: Any, gi: Any, a: Any, d: Any, record: bool, need_v0: bool, saved: tuple | None):
    """The adjoint recurrence in reverse time, piece by piece of the neurons;
    ``saved`` is ``(v0, voltages, js, v_leak)`` when parameter gradients are
    wanted (then the result has ``[da, dd, dv_leak]`` per neuron after
    ``[dx, dv0, di0]``). When neither they nor ``dL/dv_init`` are, it carries
    ``s_t = a*lam_t = lerp(s_{t+1}, gv_t, a)`` instead of ``lam``, one op less
    per step."""
    shape = gv.shape[1:]
    gx = gv.new_empty(gv.shape)
    g_v0 = gv.new_zeros(shape)
    v0 = voltages = js = v_leak = None
    shares: list = []
    if saved is not None:
        v0, voltages, js, v_leak = saved
        shares = [gv.new_zeros(shape, dtype=torch.float64) for _ in range(3)]  # summed in float64
    scaled = saved is None and not need_v0 and not compensated(gv.dtype)
    pieces = _cut(shape, gv, gi, a, d, gx, g_v0, v0, voltages, js, v_leak, *(shares or (None,) * 3))
    _each(functools.partial(_backward_piece, record, scaled), pieces)
    grads = [gx, g_v0, gx[0].clone()]
    if shares:
        grads += [share.to(gv.dtype) for share in (*shares[:2], shares[2] * a)]
    return grads


def _backward_piece(record, scaled, gv, gi, a, d, gx, g_v0, v0, voltages, js, leak, g_a, g_d, lam_sum) -> None:
    """Coefficients as in :func:`_forward_piece`; ``lam`` is ``a*lam`` when
    ``scaled``. float32 runs :func:`_compensated_backward_piece`."""
    if compensated(gv.dtype):
        _compensated_backward_piece(record, gv, gi, a, d, gx, g_v0, v0, voltages, js, leak, g_a, g_d, lam_sum)
        return
    weight, fraction = _scalar(a), _scalar(d)
    gv_seq, gx_seq = gv.unbind(0), gx.unbind(0)
    gi_seq: Any = gi.unbind(0) if record else None
    lam = gv.new_zeros(gv.shape[1:])
    kap_sum = gv.new_empty(gv.shape[1:]) if record else None
    if js is not None:
        js_seq, before = js.unbind(0), (v0, *voltages.unbind(0)[:-1])  # j_t, v_{t-1}
        drive = gv.new_empty(gv.shape[1:])
    last = gv.shape[0] - 1
    for t in range(last, -1, -1):
        if scaled:
            torch.lerp(lam, gv_seq[t], weight, out=lam)  # a*lam_t = lerp(a*lam_{t+1}, gv_t, a)
        else:
            _decay(lam, weight, out=lam)
            lam.add_(gv_seq[t])  # lam_t = gv_t + (lam_{t+1} - a*lam_{t+1})
        if t == last:
            kap = gi_seq[t] if record else gi
        elif record:
            kap = torch.add(gx_seq[t + 1], gi_seq[t], out=kap_sum)
        else:
            kap = gx_seq[t + 1]  # kap_t = mu_{t+1}
        mu = _decay(kap, fraction, out=gx_seq[t])
        if scaled:
            mu.add_(lam)
        else:
            _axpy(mu, weight, lam, out=mu)  # mu_t = a*lam_t + (kap_t - d*kap_t)
        if js is not None:
            torch.sub(js_seq[t], before[t], out=drive)
            drive.add_(leak)  # j_t + v_leak - v_{t-1}
            g_a.addcmul_(lam, drive)
            g_d.addcmul_(kap, js_seq[t], value=-1)
            lam_sum.add_(lam)
    if not scaled:
        _decay(lam, weight, out=g_v0)


def _compensated_backward_piece(record, gv, gi, a, d, gx, g_v0, v0, voltages, js, leak, g_a, g_d, lam_sum) -> None:
    """The float32 adjoint, :func:`li_core.float_float.adjoint_step` from
    ``mu_T = 0`` with the recorded currents' gradients ``gi`` (``[T, ...]``),
    else from ``mu_T = gi``, the final current's; the parameter shares are
    summed from the high parts, as in :func:`_backward_piece`, each term
    widened to float64 in a buffer of its own first (an op on mixed dtypes
    would allocate the widened copies at every step)."""
    step, initial_voltage = float_float.adjoint_step(torch, gv[0], a, d)
    gv_seq, gx_seq = gv.unbind(0), gx.unbind(0)
    if js is not None:
        js_seq, before = js.unbind(0), (v0, *voltages.unbind(0)[:-1])  # j_t, v_{t-1}
        drive = gv.new_empty(gv.shape[1:])
        wide_lam, wide_drive, wide_kap, wide_j = g_a.new_empty((4, *gv.shape[1:])).unbind(0)
    mu = torch.zeros_like(gv[0]) if record else gi.expand(gv.shape[1:])
    for t in range(gv.shape[0] - 1, -1, -1):
        lam, kap = step(gv_seq[t], gi[t] if record else None, mu, gx_seq[t])
        mu = gx_seq[t]
        if js is not None:
            torch.sub(leak, before[t], out=drive)
            drive.add_(js_seq[t])  # (v_leak - v_{t-1}) + j_t, as the compiled adjoint
            for wide, term in ((wide_lam, lam), (wide_drive, drive), (wide_kap, kap), (wide_j, js_seq[t])):
                wide.copy_(term)
            g_a.addcmul_(wide_lam, wide_drive)
            g_d.addcmul_(wide_kap, wide_j, value=-1)
            lam_sum.add_(wide_lam)
    initial_voltage(g_v0)
