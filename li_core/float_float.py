"""The compensated (float-float) float32 recurrences, step by step on
preallocated buffers, for loops of ``out=`` operations: NumPy's ufuncs and
torch's ops (``xp`` is the ``numpy`` or the ``torch`` module; both spell
``add``, ``subtract`` and ``multiply`` the same way).

Each state is a pair, its high part and the rounding error it carries; the
low parts start at 0 when a step function is made and are never returned.
:func:`compensated` says which dtypes run this way (float32) and
:func:`two_sum` is the error-free sum on any Array API arrays (the blocked
scan's lanes and carries use it). Every state update is the error-free sum
:func:`two_sum_into`, so a slow
neuron's change is never absorbed by its state. The operations are those of
the compiled kernels (``li_backends.compiled.kernels``), in the same order
and without fused multiply-adds, so the loops and the kernels give the same
bits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .arrays import dtype_name

__all__ = ["adjoint_step", "compensated", "forward_step", "two_sum", "two_sum_into"]


def two_sum(p: Any, q: Any) -> tuple[Any, Any]:
    """Knuth's TwoSum: ``(s, e)`` with ``s = fl(p + q)`` and ``s + e = p + q``
    exactly, whichever of ``p`` and ``q`` is larger (6 operations, no
    branch)."""
    s = p + q
    z = s - p
    return s, (p - (s - z)) + (q - z)


def compensated(dtype: Any) -> bool:
    """Whether recurrences in ``dtype`` carry their rounding error: float32
    (half precision is computed there); float64 runs them plain."""
    return dtype_name(dtype) == "float32"


def two_sum_into(xp: Any, p: Any, q: Any, s: Any, e: Any, z: Any) -> None:
    """``s = p + q`` and its rounding error ``e``, exactly (TwoSum:
    ``z = s - p``, ``e = (p - (s - z)) + (q - z)``, no ordering of ``p`` and
    ``q`` assumed). ``s``, ``e`` and ``z`` are buffers, none of them ``p``
    or ``q`` nor each other."""
    xp.add(p, q, out=s)
    xp.subtract(s, p, out=z)
    xp.subtract(s, z, out=e)
    xp.subtract(p, e, out=e)
    xp.subtract(q, z, out=z)
    xp.add(e, z, out=e)


def forward_step(xp: Any, like: Any, a: Any, d: Any, leak: Any) -> Callable[..., None]:
    """A step function ``step(x, v, i, v_out, j_out, i_out)`` of the scan with
    rates ``a``, ``d`` and ``leak`` (None: no leak), buffers shaped like
    ``like``. It writes the high parts of ``v_t``, ``j_t`` and ``i_t`` from
    ``x_t``, ``v_{t-1}`` and ``i_{t-1}``, carrying ``ev`` and ``ei``::

        j, ej = TwoSum(i, x);   ej = ej + ei
        s     = ((v_leak - v) + j) + (ej - ev)      (without a leak: (j - v) + (ej - ev))
        v, ev = TwoSum(v, s*a + ev)
        i, ei = TwoSum(j, ej - j*d)

    ``v_out`` is not ``v``, ``j_out`` neither ``i`` nor ``x``, ``i_out`` not
    ``j_out`` (it may be ``i``). Four work buffers: ``ev``, ``ei`` (which
    holds ``ej`` within a step), the increment and TwoSum's scratch."""
    low_v, low_i, q, z = (xp.zeros_like(like) for _ in range(4))

    def step(x: Any, v: Any, i: Any, v_out: Any, j_out: Any, i_out: Any) -> None:
        two_sum_into(xp, i, x, j_out, q, z)
        xp.add(q, low_i, out=low_i)  # ej = ej + ei, in ei's buffer
        if leak is not None:
            xp.subtract(leak, v, out=q)
            xp.add(q, j_out, out=q)
        else:
            xp.subtract(j_out, v, out=q)
        xp.subtract(low_i, low_v, out=z)
        xp.add(q, z, out=q)  # s
        xp.multiply(q, a, out=q)
        xp.add(q, low_v, out=q)
        two_sum_into(xp, v, q, v_out, low_v, z)
        xp.multiply(j_out, d, out=q)
        xp.subtract(low_i, q, out=q)
        two_sum_into(xp, j_out, q, i_out, low_i, z)

    return step


def adjoint_step(xp: Any, like: Any, a: Any, d: Any) -> tuple[Callable[..., Any], Callable[[Any], None]]:
    """The adjoint of :func:`forward_step` in reverse time, from
    ``lam = 0``: ``step(gv_t, gi_t, mu, mu_out)`` writes the high part of
    ``mu_t = dL/dx_t`` into ``mu_out`` from ``mu = mu_{t+1}`` (``gi_t`` None:
    no current gradient at ``t``) and returns the high parts
    ``(lam_t, kap_t)`` (buffers of its own, valid until the next step),
    carrying ``el``, ``em`` and ``ek``::

        kap, ek = TwoSum(mu, gi_t);   ek = ek + em       (gi_t None: kap, ek = mu, em)
        lam, el = TwoSum(lam, (gv_t - lam*a) + (el - el*a))
        mu, em  = TwoSum(kap, lam*a + (ek - kap*d))

    ``mu_out`` is neither ``mu`` nor ``gi_t``. The second function writes
    ``dL/dv_init = (lam - lam*a) + (el - el*a)`` into its argument after
    the last step."""
    lam, lam_next, kap, low_l, low_m, low_k, q, z = (xp.zeros_like(like) for _ in range(8))
    state = [lam, lam_next]

    def decayed(lam: Any, first: Any, out: Any) -> None:
        """``out = (first - lam*a) + (el - el*a)``, through ``q`` and ``z``."""
        xp.multiply(lam, a, out=q)
        xp.subtract(first, q, out=q)
        xp.multiply(low_l, a, out=z)
        xp.subtract(low_l, z, out=z)
        xp.add(q, z, out=out)

    def step(gv: Any, gi: Any, mu: Any, mu_out: Any) -> tuple[Any, Any]:
        lam, lam_next = state
        carried, low = (mu, low_m) if gi is None else (kap, low_k)
        if gi is not None:
            two_sum_into(xp, mu, gi, kap, low_k, z)
            xp.add(low_k, low_m, out=low_k)
        decayed(lam, gv, q)
        two_sum_into(xp, lam, q, lam_next, low_l, z)
        xp.multiply(carried, d, out=q)
        xp.subtract(low, q, out=q)
        xp.multiply(lam_next, a, out=z)
        xp.add(z, q, out=q)
        two_sum_into(xp, carried, q, mu_out, low_m, z)
        state[:] = lam_next, lam
        return lam_next, carried

    def initial_voltage(out: Any) -> None:
        decayed(state[0], state[0], out)

    return step, initial_voltage
