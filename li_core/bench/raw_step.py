"""The floor of the NumPy step row of ``li bench --workloads host``: the
contract's step written by hand, with no checks, no dispatch and the
per-step fractions given as Python floats."""

from __future__ import annotations

from typing import Any

from ..types import LIState


def raw_step(x: Any, state: LIState, a: float, d: float, v_leak: Any) -> tuple[Any, LIState]:
    """One step with ``a = dt*tau_mem_inv`` and ``d = dt*tau_syn_inv``:
    ``j = i + x``, ``v' = v + a*((v_leak - v) + j)``, ``i' = j - d*j``.
    Returns ``(v', LIState(v', i'))`` with the two distinct voltage arrays
    the contract asks of ``li_feed_forward_step``."""
    j = state.i + x
    v_new = state.v + a * ((v_leak - state.v) + j)
    i_new = j - d * j
    return v_new, LIState(v_new.copy(), i_new)
