"""The ``torch`` backend: autograd-aware leaky integrators on PyTorch tensors.

The steps are plain torch operations, so autograd flows through them. The scan
is one fused operator, ``torch.ops.li_neurons.scan`` (a ``torch.library``
custom op, opaque to ``torch.compile``), with a hand-written adjoint,
``torch.ops.li_neurons.scan_backward``. With ``x_t`` the weighted input
(all ``T`` steps projected by one matmul first, so autograd handles the
weights), ``a = dt*tau_mem_inv``, ``b = 1 - dt*tau_syn_inv``, ``c = 1 - a``:

    forward:   j_t = i_{t-1} + x_t,   v_t = c*v_{t-1} + a*(j_t + v_leak),   i_t = b*j_t
    backward:  lam_t = gv_t + c*lam_{t+1},   kap_t = gi_t + mu_{t+1},   mu_t = a*lam_t + b*kap_t

(``lam``, ``kap``, ``mu``: the gradients of the loss with respect to ``v_t``,
``i_t`` and ``j_t``), so ``dL/dx_t = mu_t``, ``dL/dv_init = c*lam_0``,
``dL/di_init = mu_0``, ``dL/da = sum_t lam_t*(j_t + v_leak - v_{t-1})``,
``dL/db = sum_t kap_t*j_t`` and ``dL/dv_leak = a*sum_t lam_t``, each summed
back to its parameter's shape. Nothing divides by ``a`` or ``b``.

Two algorithms compute both directions, chosen by size:

- *loop*: a time loop of two in-place ops per step (``j`` update, ``lerp``
  into the output) on preallocated buffers; any parameter shapes. On the CPU
  the neurons are cut into pieces small enough for each op to run on one
  thread, and the pieces run on worker threads of their own, so no op waits
  at a thread barrier. It is the only path that computes parameter
  gradients; only then does the forward keep the ``j`` sequence (and the
  backward the voltages) for them.
- *block*: for scalar coefficients, the closed form of the recurrence over
  blocks of ``L`` steps. Within a block the response to the inputs is a
  lower-triangular ``[L, L]`` matrix (one batched matmul for all blocks); the
  states carried into the blocks are another block-triangular matmul. A
  handful of large ops instead of ``2T`` small ones, so it wins where
  per-op overhead dominates (few neurons per step). The adjoint is the same
  system run backwards in time with ``b`` and ``c`` swapped (``lam`` plays
  ``j`` and ``mu`` plays ``v``), so the backward reuses the forward.

float16 and bfloat16 are computed in float32 and returned in their own dtype.
Importing this module does not import torch.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib
import math
import sys
from typing import Any, NamedTuple

import li_core
from li_core.reference import scan_coefficients
from li_core.types import LIParameters, LIState

#: the block path runs when a step has at most this many neurons, the
#: coefficients are scalars, no parameter needs a gradient, states are not
#: recorded and float32 matmuls are exact (``torch.get_float32_matmul_precision()
#: == "highest"``, i.e. no TF32/bf16 shortcuts)
BLOCK_MAX_NEURONS = 4096
#: on the CPU the loop path runs on pieces of at most this many neurons, so that
#: every per-step op stays within torch's parallel grain size (32768) and runs
#: on one thread: a thread barrier per op stalls whenever another process holds
#: a core. Pieces run on worker threads of their own (one per torch thread).
LOOP_CHUNK = 32768
#: ... and the neurons are cut into one piece per torch thread as long as each
#: piece keeps at least this many neurons
LOOP_MIN_PIECE = 16384
#: the block path runs over segments of at most this many steps, carrying the
#: state from one to the next (its carry matrix grows with the square of this)
BLOCK_MAX_STEPS = 2048


def _torch() -> Any:
    return sys.modules.get("torch") or importlib.import_module("torch")


def _compute_dtype(torch: Any, dtype: Any) -> Any:
    """float32 for the half types, else ``dtype``."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _as_compute(dtype: Any, p: LIParameters) -> LIParameters:
    """Parameter tensors in the compute dtype (floats stay floats)."""
    return LIParameters(*(v if isinstance(v, float) else v.to(dtype) for v in p))


# --------------------------------------------------------------------------
# forward and backward kernels (no autograd; compute dtype)


def _scalar(t: Any) -> Any:
    """A one-element coefficient as a Python float, else the tensor itself."""
    return t.item() if t.numel() == 1 else t


def _is_zero(t: Any) -> bool:
    return t.numel() == 1 and t.item() == 0.0


def _axpy(torch: Any, x: Any, alpha: Any, y: Any, out: Any) -> Any:
    """``out = x + alpha*y`` for a float or tensor ``alpha``."""
    if isinstance(alpha, float):
        return torch.add(x, y, alpha=alpha, out=out)
    return torch.addcmul(x, y, alpha, out=out)


def _use_block(xs: Any, coefficients: tuple, keep: bool, record: bool) -> bool:
    """See :data:`BLOCK_MAX_NEURONS`."""
    torch = _torch()
    exact = xs.dtype == torch.float64 or torch.get_float32_matmul_precision() == "highest"
    small = xs[0].numel() <= BLOCK_MAX_NEURONS
    return small and exact and not keep and not record and all(t.numel() == 1 for t in coefficients)


def _pieces(shape: tuple, limit: int) -> list[tuple]:
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
        per_thread = math.ceil(math.prod(shape) / _torch().get_num_threads())
        limit = min(LOOP_CHUNK, max(LOOP_MIN_PIECE, per_thread))

    def piece(t: Any, index: tuple) -> Any:
        if t is None or t.dim() == 0:
            return t
        if t.dim() > len(shape):
            return t[(slice(None), *index)]
        return t.expand(shape)[index]

    return [[piece(t, index) for t in tensors] for index in _pieces(tuple(shape), limit)]


def _each(work: Any, pieces: list[list]) -> None:
    """``work(*piece)`` for every piece, without autograd; several pieces run
    on worker threads (as many as torch's intra-op threads). The pieces are
    independent, so a thread never waits for another until the end."""
    torch = _torch()

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


def _loop_forward(xs: Any, v0: Any, i0: Any, a: Any, b: Any, v_leak: Any, record: bool, keep: bool):
    """Time loop of in-place ops, piece by piece of the neurons (see
    :data:`LOOP_CHUNK`): ``j`` lives in one buffer (or in the kept ``[T, ...]``
    sequence), ``v_t = lerp(v_{t-1}, j_t + v_leak, a)`` is written straight
    into the output."""
    shape = xs.shape[1:]
    voltages = xs.new_empty(xs.shape)
    js = xs.new_empty(xs.shape) if keep else None
    currents = xs.new_empty(xs.shape) if record else None
    i_end = xs.new_empty(shape)
    leak = None if _is_zero(v_leak) else v_leak
    _each(_forward_piece, _cut(shape, xs, v0, i0, a, b, leak, voltages, js, currents, i_end))
    return voltages, currents if record else i_end, xs.new_empty((0,)) if js is None else js


def _forward_piece(x, v, i, a, b, leak, voltages, js, currents, i_end) -> None:
    """Coefficients are tensors (multiplied as such: a Python scalar operand
    would be wrapped in a new tensor at every step) and, where they are one
    number, floats for ``alpha`` and ``lerp`` weights."""
    torch = _torch()
    weight, decay = _scalar(a), _scalar(b)
    j = x.new_empty(x.shape[1:]) if js is None else None
    drive = x.new_empty(x.shape[1:]) if leak is not None else None  # j_t + v_leak
    for t, (x_t, v_t) in enumerate(zip(x.unbind(0), voltages.unbind(0))):
        j_t = j if js is None else js[t]
        if t == 0:
            torch.add(i, x_t, out=j_t)
        else:
            _axpy(torch, x_t, decay, j, out=j_t)  # i_{t-1} + x_t = b*j_{t-1} + x_t
        torch.lerp(v, j_t if leak is None else torch.add(j_t, leak, out=drive), weight, out=v_t)
        if currents is not None:
            torch.mul(j_t, b, out=currents[t])
        v, j = v_t, j_t
    torch.mul(j, b, out=i_end)


def _loop_backward(gv: Any, gi: Any, a: Any, b: Any, record: bool, need_v0: bool, saved: tuple | None):
    """The adjoint recurrence in reverse time, piece by piece of the neurons;
    ``saved`` is ``(v0, voltages, js, v_leak)`` when parameter gradients are
    wanted. When neither they nor ``dL/dv_init`` are, it carries ``a*lam``
    instead of ``lam`` (``a*lam_t = lerp(a*lam_{t+1}, gv_t, a)``,
    ``mu_t = a*lam_t + b*kap_t``): two ops per step instead of three."""
    shape = gv.shape[1:]
    gx = gv.new_empty(gv.shape)
    g_v0 = gv.new_zeros(shape)
    v0 = voltages = js = v_leak = g_a = g_b = lam_sum = None
    if saved is not None:
        v0, voltages, js, v_leak = saved
        g_a, g_b, lam_sum = (gv.new_zeros(shape) for _ in range(3))
    scaled = saved is None and not need_v0
    pieces = _cut(shape, gv, gi, a, b, gx, g_v0, v0, voltages, js, v_leak, g_a, g_b, lam_sum)
    _each(functools.partial(_backward_piece, record, scaled), pieces)
    grads = [gx, g_v0, gx[0].clone()]
    if saved is not None:
        grads += [g_a, g_b, lam_sum * a]
    return grads


def _backward_piece(record, scaled, gv, gi, a, b, gx, g_v0, v0, voltages, js, leak, g_a, g_b, lam_sum) -> None:
    """Coefficients as in :func:`_forward_piece`."""
    torch = _torch()
    weight, decay = _scalar(a), _scalar(b)
    c = 1 - weight
    lam = gv.new_zeros(gv.shape[1:])
    kap = gv.new_empty(gv.shape[1:])
    drive = gv.new_empty(gv.shape[1:]) if js is not None else None
    last = gv.shape[0] - 1
    for t in range(last, -1, -1):
        if scaled:
            torch.lerp(lam, gv[t], weight, out=lam)
        else:
            _axpy(torch, gv[t], c, lam, out=lam)  # lam_t = gv_t + c*lam_{t+1}
        if t == last:
            kap.copy_(gi[t] if record else gi)
        elif record:
            torch.add(gx[t + 1], gi[t], out=kap)
        else:
            kap = gx[t + 1]  # kap_t = mu_{t+1}
        mu = gx[t]
        if scaled:
            _axpy(torch, lam, decay, kap, out=mu)
        else:
            torch.mul(kap, b, out=mu)
            _axpy(torch, mu, weight, lam, out=mu)  # mu_t = a*lam_t + b*kap_t
        if js is not None:
            torch.sub(js[t], voltages[t - 1] if t else v0, out=drive)
            drive.add_(leak)  # j_t + v_leak - v_{t-1}
            g_a.addcmul_(lam, drive)
            g_b.addcmul_(kap, js[t])
            lam_sum.add_(lam)
    if not scaled:
        torch.mul(lam, c, out=g_v0)


class _Blocks(NamedTuple):
    """The closed form over blocks of ``L`` steps (see :func:`_block_matrices`)."""

    m_v: Any  # [L, L]: voltages from the block's inputs, (A^(tau-r) B)[0]
    p_v: Any  # [L, 2]: voltages from the state entering the block, A^(tau+1)[0]
    ends: Any  # [2, L]: the state leaving the block from its inputs, A^(L-1-r) B
    b_powers: Any  # [L+1]: b^k
    carry: Any  # [2(K+1), 2(K+1)]: the states entering the blocks from [s_0; ends @ x_k]


def _powers(c: float, q: float, b: float, n: int) -> Any:
    """``[[c, q], [0, b]]**k`` for ``k = 0 .. n-1``, ``[n, 2, 2]`` float64, by
    repeated multiplication (no division)."""
    torch = _torch()
    entries = [(1.0, 0.0, 1.0)]
    for _ in range(n - 1):
        ck, qk, bk = entries[-1]
        entries.append((c * ck, c * qk + q * bk, b * bk))
    ck, qk, bk = torch.tensor(entries, dtype=torch.float64).unbind(1)
    return torch.stack((torch.stack((ck, qk), 1), torch.stack((torch.zeros_like(bk), bk), 1)), 1)


def _toeplitz(blocks: Any) -> Any:
    """The lower-triangular block-Toeplitz matrix with ``blocks[k]`` (``[n]`` or
    ``[n, p, q]``) on its ``k``-th block subdiagonal: ``[n*p, n*q]``."""
    torch = _torch()
    n = blocks.shape[0]
    lag = torch.arange(n)[:, None] - torch.arange(n)[None, :]
    full = blocks[lag.clamp(min=0)] * (lag >= 0).reshape(n, n, *(1,) * (blocks.dim() - 1))
    return full if blocks.dim() == 1 else full.transpose(1, 2).reshape(n * blocks.shape[1], n * blocks.shape[2])


@functools.lru_cache(maxsize=64)
def _block_matrices(a: float, b: float, c: float, length: int, blocks: int, dtype: Any, device: Any) -> _Blocks:
    """For the shifted state ``s = (v - v_leak, i)`` one step is
    ``s_t = A s_{t-1} + B x_t`` with ``A = [[c, a], [0, b]]`` and ``B = (a, b)``.
    Within a block ``s_tau = A^(tau+1) s_in + sum_{r<=tau} A^(tau-r) B x_r``; the
    state entering block ``k`` is ``sum_{m<=k} (A^L)^(k-m) z_m`` with
    ``z_0 = s_0`` and ``z_{m+1} = ends @ x_m``. Built in float64; entries that
    are subnormal in ``dtype`` are flushed to zero (they would slow matmuls)."""
    torch = _torch()
    powers = _powers(c, a, b, length + 1)  # A^k
    response = powers[:length] @ torch.tensor([a, b], dtype=torch.float64)  # [L, 2]: A^k B
    outer = powers[length]
    built = _Blocks(
        m_v=_toeplitz(response[:, 0]),
        p_v=powers[1:, 0, :],
        ends=response.flip(0).T,
        b_powers=powers[:, 1, 1],
        carry=_toeplitz(_powers(outer[0, 0].item(), outer[0, 1].item(), outer[1, 1].item(), blocks + 1)),
    )
    tiny = torch.finfo(dtype).tiny
    return _Blocks(*(torch.where(t.abs() < tiny, 0.0, t).to(dtype=dtype, device=device) for t in built))


def _block_length(steps: int) -> int:
    """``L ~ (8T)^(1/3)`` balances the in-block matmul (``~2L`` flops per
    element) against the carry matmul (``~8T/L^2``)."""
    return max(1, min(steps, round((8 * steps) ** (1 / 3))))


def _block_scan(x: Any, v0: Any, i0: Any, a: float, b: float, c: float, v_leak: float) -> tuple[Any, Any]:
    """The closed form over blocks for ``x`` ``[T, N]`` and states ``[N]``:
    the voltages ``[T, N]`` and the final current (``c`` is free, so that the
    adjoint can use it too). Runs over segments of at most
    :data:`BLOCK_MAX_STEPS` steps, which bounds the carry matrix."""
    voltages = x.new_empty(x.shape)
    v, i = v0, i0
    for start in range(0, x.shape[0], BLOCK_MAX_STEPS):
        out = voltages[start : start + BLOCK_MAX_STEPS]
        i = _block_segment(x[start : start + BLOCK_MAX_STEPS], v, i, a, b, c, v_leak, out)
        v = out[-1]
    return voltages, i


def _block_segment(x: Any, v0: Any, i0: Any, a: float, b: float, c: float, v_leak: float, voltages: Any) -> Any:
    """:func:`_block_scan` of one segment, written into ``voltages``; returns
    the final current."""
    torch = _torch()
    steps, n = x.shape
    length = _block_length(steps)
    blocks, rest = divmod(steps, length)
    mats = _block_matrices(a, b, c, length, blocks, x.dtype, x.device)
    full = x[: blocks * length].view(blocks, length, n)
    z = x.new_empty(blocks + 1, 2, n)
    torch.sub(v0, v_leak, out=z[0, 0])
    z[0, 1] = i0
    torch.bmm(mats.ends.expand(blocks, 2, length), full, out=z[1:])
    entering = torch.mm(mats.carry, z.view(-1, n)).view(blocks + 1, 2, n)
    out = voltages[: blocks * length].view(blocks, length, n)
    torch.bmm(mats.p_v.expand(blocks, length, 2), entering[:blocks], out=out)
    out.baddbmm_(mats.m_v.expand(blocks, length, length), full)
    i_end = entering[blocks, 1]
    if rest:
        tail, out = x[blocks * length :], voltages[blocks * length :]
        torch.mm(mats.p_v[:rest], entering[blocks], out=out)
        out.addmm_(mats.m_v[:rest, :rest], tail)
        i_end = torch.addmv(i_end * mats.b_powers[rest], tail.T, mats.ends[1, length - rest :])
    if v_leak != 0.0:
        voltages += v_leak
    return i_end


def _block_forward(xs: Any, v0: Any, i0: Any, a: Any, b: Any, v_leak: Any):
    """The forward op's outputs from :func:`_block_scan` (no ``j`` kept)."""
    a, b = a.item(), b.item()
    steps, shape = xs.shape[0], xs.shape[1:]
    voltages, i_end = _block_scan(xs.reshape(steps, -1), v0.reshape(-1), i0.reshape(-1), a, b, 1 - a, v_leak.item())
    return voltages.view(xs.shape), i_end.view(shape), xs.new_empty((0,))


def _block_backward(gv: Any, gi: Any, a: Any, b: Any):
    """The adjoint as a forward scan backwards in time: inputs ``gv`` reversed,
    ``b`` and ``c`` swapped, ``v_init = gi_T``, ``i_init = 0``; its voltages
    reversed are ``dL/dx``, its last voltage is ``dL/di_init`` and its final
    current ``dL/dv_init``."""
    a, b = a.item(), b.item()
    steps, shape = gv.shape[0], gv.shape[1:]
    gi = gi.reshape(-1)
    mu, g_v0 = _block_scan(gv.flip(0).reshape(steps, -1), gi, gi.new_zeros(gi.shape), a, 1 - a, b, 0.0)
    return [mu.flip(0).view(gv.shape), g_v0.view(shape), mu[-1].view(shape).clone()]


# --------------------------------------------------------------------------
# the custom ops


_registered = False


def _scan_op() -> Any:
    """``torch.ops.li_neurons.scan``, registered on first use (outside of
    ``torch.compile``'s tracing)."""
    torch = _torch()
    if not _registered:
        torch.compiler.disable(_register_ops)()
    return torch.ops.li_neurons.scan


def _register_ops() -> None:
    """Register ``li_neurons::scan`` and its adjoint ``li_neurons::scan_backward``."""
    global _registered
    if _registered:
        return
    torch = _torch()

    @torch.library.custom_op(
        "li_neurons::scan",
        mutates_args=(),
        schema="(Tensor xs, Tensor v0, Tensor i0, Tensor a, Tensor b, Tensor v_leak, bool record, bool keep)"
        " -> (Tensor, Tensor, Tensor)",
    )
    def scan(xs, v0, i0, a, b, v_leak, record, keep):
        """``(voltages [T, ...], currents [T, ...] or final i, j sequence or
        empty)``: the forward recurrence for ``T >= 1``, in the compute dtype;
        ``keep`` keeps ``j`` for parameter gradients."""
        with torch.no_grad():
            if _use_block(xs, (a, b, v_leak), keep, record):
                return _block_forward(xs, v0, i0, a, b, v_leak)
            return _loop_forward(xs, v0, i0, a, b, v_leak, record, keep)

    @scan.register_fake
    def _(xs, v0, i0, a, b, v_leak, record, keep):
        currents = torch.empty_like(xs) if record else xs.new_empty(xs.shape[1:])
        return torch.empty_like(xs), currents, torch.empty_like(xs) if keep else xs.new_empty((0,))

    @torch.library.custom_op(
        "li_neurons::scan_backward",
        mutates_args=(),
        schema="(Tensor gv, Tensor gi, Tensor a, Tensor b, Tensor v_leak, Tensor? v0, Tensor? voltages,"
        " Tensor? js, bool record, bool need_v0) -> Tensor[]",
    )
    def scan_backward(gv, gi, a, b, v_leak, v0, voltages, js, record, need_v0):
        """``[dx, dv0, di0]`` (plus ``[da, db, dv_leak]`` summed to the
        parameters' shapes when ``js`` is given) from the gradients of the
        voltages and of the currents (sequence when ``record``, else final);
        ``dv0`` may be left zero unless ``need_v0``."""
        with torch.no_grad():
            if js is None:
                if _use_block(gv, (a, b, v_leak), False, record):
                    return _block_backward(gv, gi, a, b)
                return _loop_backward(gv, gi, a, b, record, need_v0, None)
            grads = _loop_backward(gv, gi, a, b, record, need_v0, (v0, voltages, js, v_leak))
            return grads[:3] + [g.sum_to_size(p.shape) for g, p in zip(grads[3:], (a, b, v_leak))]

    @scan_backward.register_fake
    def _(gv, gi, a, b, v_leak, v0, voltages, js, record, need_v0):
        shape = gv.shape[1:]
        grads = [torch.empty_like(gv), gv.new_empty(shape), gv.new_empty(shape)]
        return grads if js is None else grads + [gv.new_empty(p.shape) for p in (a, b, v_leak)]

    def setup_context(ctx, inputs, output):
        _xs, v0, _i0, a, b, v_leak, record, keep = inputs
        ctx.record = record
        ctx.save_for_backward(a, b, v_leak, *((v0, output[0], output[2]) if keep else ()))

    def backward(ctx, g_voltages, g_currents, _g_js):
        a, b, v_leak, *saved = ctx.saved_tensors
        v0, voltages, js = saved or (None, None, None)
        need_v0 = ctx.needs_input_grad[1]
        grads = torch.ops.li_neurons.scan_backward(
            g_voltages, g_currents, a, b, v_leak, v0, voltages, js, ctx.record, need_v0
        )
        grads += [None] * (6 - len(grads))
        return (*(g if need else None for g, need in zip(grads, ctx.needs_input_grad)), None, None)

    scan.register_autograd(backward, setup_context=setup_context)
    _registered = True


# --------------------------------------------------------------------------
# the backend


class TorchBackend(li_core.Backend):
    """Leaky integrators on torch tensors: any device, autograd everywhere."""

    name = "torch"
    library = "torch"
    priority = 20
    extra = "torch"
    dtypes = ("float16", "bfloat16", "float32", "float64")
    devices = ("cpu", "cuda")
    autograd = True

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
        return torch.nn.functional.linear(x.to(compute), w.to(compute))

    @staticmethod
    def _euler(x: Any, state: LIState, p: LIParameters, dt: float, dtype: Any) -> tuple[Any, LIState]:
        """``j = i + x``, ``v' = lerp(v, j + v_leak, a)``, ``i' = b*j`` in the
        compute dtype of ``dtype``; returns fresh ``dtype`` tensors."""
        torch = _torch()
        compute = _compute_dtype(torch, dtype)
        x, v, i = (t.to(compute) for t in (x, *state))
        p = _as_compute(compute, p)
        a, b, _ = scan_coefficients(p, dt)
        j = i + x
        v_new = torch.lerp(v, j if isinstance(p.v_leak, float) and p.v_leak == 0.0 else j + p.v_leak, a)
        return v_new.to(dtype), LIState(v_new.to(dtype, copy=True), (j * b).to(dtype))

    def scan(
        self, xs: Any, state: LIState, w: Any, p: LIParameters, dt: float, record_states: bool
    ) -> tuple[Any, LIState]:
        """The fused ``li_neurons::scan`` op on the projected inputs (empty
        ``T`` returns copies of the state)."""
        torch = _torch()
        dtype = xs.dtype
        compute = _compute_dtype(torch, dtype)
        xs = xs.to(compute) if w is None else self.project(xs, w)
        if xs.shape[0] == 0:
            empty = xs.new_empty(xs.shape, dtype=dtype)
            if record_states:
                return empty, LIState(empty.clone(), empty.clone())
            return empty, LIState(state.v.clone(), state.i.clone())
        p = _as_compute(compute, p)
        a, b, _ = scan_coefficients(p, dt)
        coefficients = [t if isinstance(t, torch.Tensor) else torch.tensor(t, dtype=compute) for t in (a, b, p.v_leak)]
        keep = torch.is_grad_enabled() and any(t.requires_grad for t in coefficients)
        v0, i0 = (t.to(compute) for t in state)
        voltages, currents, _ = _scan_op()(xs, v0, i0, *coefficients, record_states, keep)
        if record_states:
            return voltages.to(dtype), LIState(voltages.to(dtype, copy=True), currents.to(dtype))
        return voltages.to(dtype), LIState(voltages[-1].to(dtype, copy=True), currents.to(dtype))


@li_core.hookimpl
def li_register_backends() -> list[li_core.Backend]:
    return [TorchBackend()]
