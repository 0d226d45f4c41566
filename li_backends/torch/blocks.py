"""The block algorithm: for scalar coefficients, the closed form of the
recurrence over blocks of ``L`` steps.

Within a block the response to the inputs is a lower-triangular ``[L, L]``
matrix (one batched matmul for all blocks); the states carried into the
blocks are another block-triangular matmul. A handful of large ops instead of
``2T`` small ones, so it wins where per-op overhead dominates (few neurons per
step). The adjoint is the same system run backwards in time with ``b`` and
``c`` swapped (``lam`` plays ``j`` and ``mu`` plays ``v``), so the backward
reuses the forward.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import torch

#: the block algorithm runs when a step has at most this many neurons, the
#: coefficients are scalars, no parameter needs a gradient, states are not
#: recorded and float32 matmuls are exact (``torch.get_float32_matmul_precision()
#: == "highest"``, i.e. no TF32/bf16 shortcuts)
MAX_NEURONS = 4096
#: it runs over segments of at most this many steps, carrying the state from
#: one to the next (its carry matrix grows with the square of this)
MAX_STEPS = 2048


def applicable(xs: Any, coefficients: tuple, keep: bool, record: bool) -> bool:
    """Whether the block algorithm runs (see :data:`MAX_NEURONS`)."""
    exact = xs.dtype == torch.float64 or torch.get_float32_matmul_precision() == "highest"
    small = xs[0].numel() <= MAX_NEURONS
    return small and exact and not keep and not record and all(t.numel() == 1 for t in coefficients)


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
    entries = [(1.0, 0.0, 1.0)]
    for _ in range(n - 1):
        ck, qk, bk = entries[-1]
        entries.append((c * ck, c * qk + q * bk, b * bk))
    c_k, q_k, b_k = torch.tensor(entries, dtype=torch.float64).unbind(1)
    return torch.stack((torch.stack((c_k, q_k), 1), torch.stack((torch.zeros_like(b_k), b_k), 1)), 1)


def _toeplitz(blocks: Any) -> Any:
    """The lower-triangular block-Toeplitz matrix with ``blocks[k]`` (``[n]`` or
    ``[n, p, q]``) on its ``k``-th block subdiagonal: ``[n*p, n*q]``."""
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


def _scan(x: Any, v0: Any, i0: Any, a: float, b: float, c: float, v_leak: float) -> tuple[Any, Any]:
    """The closed form over blocks for ``x`` ``[T, N]`` and states ``[N]``:
    the voltages ``[T, N]`` and the final current (``c`` is free, so that the
    adjoint can use it too). Runs over segments of at most :data:`MAX_STEPS`
    steps, which bounds the carry matrix."""
    voltages = x.new_empty(x.shape)
    v, i = v0, i0
    for start in range(0, x.shape[0], MAX_STEPS):
        out = voltages[start : start + MAX_STEPS]
        i = _segment(x[start : start + MAX_STEPS], v, i, a, b, c, v_leak, out)
        v = out[-1]
    return voltages, i


def _segment(x: Any, v0: Any, i0: Any, a: float, b: float, c: float, v_leak: float, voltages: Any) -> Any:
    """:func:`_scan` of one segment, written into ``voltages``; returns the
    final current."""
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


def forward(xs: Any, v0: Any, i0: Any, a: Any, d: Any, v_leak: Any):
    """The forward op's outputs from :func:`_scan` (no ``j`` kept). The decays
    ``b = 1 - d`` and ``c = 1 - a`` are formed in float64 from the rates as
    given, so they are exact."""
    a, d = a.item(), d.item()
    steps, shape = xs.shape[0], xs.shape[1:]
    voltages, i_end = _scan(xs.reshape(steps, -1), v0.reshape(-1), i0.reshape(-1), a, 1 - d, 1 - a, v_leak.item())
    return voltages.view(xs.shape), i_end.view(shape), xs.new_empty((0,))


def backward(gv: Any, gi: Any, a: Any, d: Any):
    """The adjoint as a forward scan backwards in time: inputs ``gv`` reversed,
    ``b`` and ``c`` swapped, ``v_init = gi_T``, ``i_init = 0``; its voltages
    reversed are ``dL/dx``, its last voltage is ``dL/di_init`` and its final
    current ``dL/dv_init``."""
    a, d = a.item(), d.item()
    steps, shape = gv.shape[0], gv.shape[1:]
    gi = gi.reshape(-1)
    mu, g_v0 = _scan(gv.flip(0).reshape(steps, -1), gi, gi.new_zeros(gi.shape), a, 1 - a, 1 - d, 0.0)
    return [mu.flip(0).view(gv.shape), g_v0.view(shape), mu[-1].view(shape).clone()]
