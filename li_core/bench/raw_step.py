"""The yardstick of the step dispatch: one step written by hand.

The NumPy step of ``li_feed_forward_step`` is measured as a ratio to
:func:`raw_step`, the same contract step as a user would type it with its
fractions precomputed as Python floats, without any check, backend choice or
copy: what the public call's dispatch costs is what it takes beyond this.
"""

from __future__ import annotations

from typing import Any

from ..types import LIState


def raw_step(x: Any, state: LIState, a: float, d: float, v_leak: float) -> LIState:
    """The new state of one forward-Euler step, in the contract's order:
    ``j = i + x``, ``v' = v + a*((v_leak - v) + j)``, ``i' = j - d*j``, with
    ``a = dt*tau_mem_inv`` and ``d = dt*tau_syn_inv`` Python floats (seven
    array operations on NumPy arrays)."""
    v, i = state
    j = i + x
    return LIState(v + a * ((v_leak - v) + j), j - d * j)
