"""The scan and its adjoint as loops compiled by numba, on flat ``[T, N]`` arrays.

Both kernels cut the ``N`` neurons into contiguous blocks of ``block``
neurons and run the blocks in parallel (``prange``, on up to
``numba.get_num_threads()`` threads); within a block, time runs sequentially
and the innermost loop runs over the block's neurons, so each thread reads
and writes whole rows of its block, step after step, and never waits for
another. A block keeps its state and its rates in arrays of its own, so that
the innermost loop reads one input row and writes one output row (the
compiler vectorises it); whatever else a step records is copied from the
block's arrays afterwards.

Every array is C-contiguous. The initial state has ``N`` elements; the
parameters ``a``, ``d`` and ``v_leak`` are either all ``[N]`` arrays or all
scalars (one compilation each: a scalar costs no memory traffic). The rates
come as inverse time constants with their step (:class:`li_core.rates.Rate`):
each block forms its fractions ``a*a_scale`` and ``d*d_scale`` once, in the
arrays' dtype (a scale of 1 passes a fraction through exactly). A
sequence that is not wanted has no rows. Everything is computed in the
arrays' dtype, float32 or float64, in the increment forms of the contract
(docs/contract.md, section 1), without ``fastmath`` (no fused multiply-add,
no reassociation): the forward runs the operations of the ``numpy``
backend's loop in the same order, so its results are bitwise the same.

float64 runs the plain recurrences. float32 runs them ``compensated``: each
state is a float-float pair, a high part and the rounding error it carries
(``v, ev``; ``i, ei``; ``lam, el``; ``mu, em``), the low parts starting at 0
in each call and never returned. Every state update is the error-free sum
(branch-free, no ordering of its operands assumed)::

    TwoSum(p, q):  s = p + q;  z = s - p;  e = (p - (s - z)) + (q - z);  return s, e

The forward step, in exactly this order (without a leak, ``s`` is
``(j - v) + (ej - ev)``)::

    j, ej = TwoSum(i, x);   ej = ej + ei
    s     = ((v_leak - v) + j) + (ej - ev)
    v, ev = TwoSum(v, s*a + ev)
    i, ei = TwoSum(j, ej - j*d)

and the adjoint step, in reverse time (without current gradients ``gi``,
``kap, ek = mu, em``)::

    kap, ek = TwoSum(mu, gi_t);   ek = ek + em
    lam, el = TwoSum(lam, (gv_t - lam*a) + (el - el*a))
    mu, em  = TwoSum(kap, lam*a + (ek - kap*d))

ending with ``dL/dv_init = (lam - lam*a) + (el - el*a)``. The recorded and
returned numbers (``v``, ``i``, ``j``, ``dL/dx = mu``, the parameter
gradients' terms) are the high parts. Each TwoSum is exact, so only the
products and the sums of small terms round, relative to the increment rather
than to the state: a slow neuron's change is never absorbed.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import types
from numba.extending import overload


def _part(values, lo, hi):  # pragma: no cover - replaced by the overload when compiled
    """``values[lo:hi]`` as an array of the block's own, or the scalar itself."""


def _at(values, k):  # pragma: no cover - replaced by the overload when compiled
    """``values[k]``, or the scalar itself."""


@overload(_part)
def _part_overload(values, lo, hi):
    if isinstance(values, types.Array):
        return lambda values, lo, hi: values[lo:hi].copy()
    return lambda values, lo, hi: values


def _fractions(values, scale, lo, hi):  # pragma: no cover - replaced by the overload when compiled
    """``values[lo:hi]*scale`` as an array of the block's own, or ``values*scale``."""


@overload(_fractions)
def _fractions_overload(values, scale, lo, hi):
    if isinstance(values, types.Array):
        return lambda values, scale, lo, hi: values[lo:hi] * scale
    return lambda values, scale, lo, hi: values * scale


@overload(_at, inline="always")
def _at_overload(values, k):
    if isinstance(values, types.Array):
        return lambda values, k: values[k]
    return lambda values, k: values


#: a block's arrays lie at least this many elements apart (see :func:`_arrays`)
SPACING = 64


@numba.njit(inline="always")
def _arrays(count, n, dtype):  # pragma: no cover
    """``count`` zeroed arrays of ``n`` elements: the rows ``1`` to ``count``
    of one allocation, at least :data:`SPACING` elements apart and as far
    from its ends. A
    vectorised loop checks at run time that the arrays it writes lie more
    than a few vectors away from those it reads, and runs its scalar version
    where they do not: separate small arrays (a few neurons) often lie that
    close together."""
    stride = (n + 2 * SPACING - 1) // SPACING * SPACING
    return np.zeros((count + 2, stride), dtype)


def _drive(leak, v, j):  # pragma: no cover - replaced by the overload when compiled
    """``(v_leak - v) + j``, or ``j - v`` where ``leak`` is None (no leak)."""


@overload(_drive, inline="always")
def _drive_overload(leak, v, j):
    if isinstance(leak, types.NoneType):
        return lambda leak, v, j: j - v
    return lambda leak, v, j: (leak - v) + j


@numba.njit(inline="always")
def _two_sum(p, q):  # pragma: no cover
    """``p + q`` and its rounding error, exactly (TwoSum, branch-free)."""
    s = p + q
    z = s - p
    return s, (p - (s - z)) + (q - z)


@numba.njit(cache=True)
def scan_block(
    xs, v0, i0, a, a_scale, d, d_scale, v_leak, compensated, voltages, currents, js, i_end, v_end, lo, hi
):  # pragma: no cover
    """The forward scan of neurons ``lo`` to ``hi - 1`` with the fractions
    ``a*a_scale`` and ``d*d_scale`` (named ``a`` and ``d`` below). Writes ``v_t`` to
    ``voltages[t]``, ``i_t`` to ``currents[t]`` and ``j_t`` to ``js[t]``
    where those have rows, the final current to ``i_end`` and, where it has
    elements, the final voltage to ``v_end``::

        j_t = i_{t-1} + x_t
        v_t = v_{t-1} + ((v_leak - v_{t-1}) + j_t)*a     (v_leak None: (j_t - v_{t-1})*a)
        i_t = j_t - j_t*d

    plain, or with ``compensated`` in the float-float form of the module's
    docstring (the high parts written).
    """
    record, keep, n = currents.shape[0] > 0, js.shape[0] > 0, hi - lo
    block = _arrays(5, n, v0.dtype)
    v, i, j, ev, ei = block[1, :n], block[2, :n], block[3, :n], block[4, :n], block[5, :n]
    v[:], i[:] = v0[lo:hi], i0[lo:hi]
    rate_v, rate_i = _fractions(a, a_scale, lo, hi), _fractions(d, d_scale, lo, hi)
    leak = _part(v_leak, lo, hi)
    for t in range(xs.shape[0]):
        x_t, v_t = xs[t, lo:hi], voltages[t, lo:hi]
        if compensated:
            for k in range(n):
                j[k], ej = _two_sum(i[k], x_t[k])
                ej = ej + ei[k]
                s = _drive(_at(leak, k), v[k], j[k]) + (ej - ev[k])
                v[k], ev[k] = _two_sum(v[k], s * _at(rate_v, k) + ev[k])
                i[k], ei[k] = _two_sum(j[k], ej - j[k] * _at(rate_i, k))
                v_t[k] = v[k]
        else:
            for k in range(n):
                j[k] = i[k] + x_t[k]
                v[k] = v[k] + _drive(_at(leak, k), v[k], j[k]) * _at(rate_v, k)
                i[k] = j[k] - j[k] * _at(rate_i, k)
                v_t[k] = v[k]
        if record:
            currents[t, lo:hi] = i
        if keep:
            js[t, lo:hi] = j
    i_end[lo:hi] = i
    if v_end.shape[0] > 0:
        v_end[lo:hi] = v


@numba.njit(cache=True)
def scan_backward_block(
    gv, gis, gi_end, a, a_scale, d, d_scale, v0, voltages, js, v_leak, compensated, dx, dv0, da, dd, dv_leak, lo, hi
):  # pragma: no cover
    """The adjoint of neurons ``lo`` to ``hi - 1`` (fractions as in
    :func:`scan_block`), in reverse time from
    ``lam_T = 0`` and ``mu_T = gi_end`` (the gradient of the final current)::

        lam_t = gv_t + (lam_{t+1} - a*lam_{t+1})
        kap_t = gis_t + mu_{t+1}
        mu_t  = a*lam_t + (kap_t - d*kap_t)

    ``gv`` and ``gis`` have ``T`` rows, or one that stands for every step
    (a broadcast gradient), or (``gis`` only) none. Writes ``dL/dx_t = mu_t``
    to ``dx[t]`` and ``dL/dv_init = lam_0 - a*lam_0`` to ``dv0``. Where
    ``js`` has rows (``j_t`` of the forward, with its ``voltages`` and
    ``v0``), also each neuron's share of the parameter gradients, summed over
    time in float64, into ``da``, ``dd`` and ``dv_leak`` (``[N]``)::

        da = sum_t lam_t*((v_leak - v_{t-1}) + j_t),   dd = -sum_t kap_t*j_t,   dv_leak = a*sum_t lam_t

    plain, or with ``compensated`` in the float-float form of the module's
    docstring: ``lam_t``, ``kap_t`` and ``mu_t`` above are the high parts, and
    ``dL/dv_init = (lam_0 - lam_0*a) + (el_0 - el_0*a)``.
    """
    every_v, every_i = 1 if gv.shape[0] > 1 else 0, 1 if gis.shape[0] > 1 else 0
    with_gi, parameters = gis.shape[0] > 0, js.shape[0] > 0
    rate_v, rate_i = _fractions(a, a_scale, lo, hi), _fractions(d, d_scale, lo, hi)
    leak = _part(v_leak, lo, hi)
    n = hi - lo
    block = _arrays(6, n, dx.dtype)
    mu, lam, kap, em, el, ek = block[1, :n], block[2, :n], block[3, :n], block[4, :n], block[5, :n], block[6, :n]
    mu[:] = gi_end[lo:hi]
    shares = n if parameters else 0
    sum_a, sum_d, sum_lam = np.zeros(shares), np.zeros(shares), np.zeros(shares)
    for t in range(dx.shape[0] - 1, -1, -1):
        gv_t, dx_t = gv[t * every_v, lo:hi], dx[t, lo:hi]
        kap[:] = mu
        if compensated:
            ek[:] = em
            if with_gi:
                gi_t = gis[t * every_i, lo:hi]
                for k in range(n):
                    kap[k], e = _two_sum(mu[k], gi_t[k])
                    ek[k] = e + em[k]
            for k in range(n):
                step = (gv_t[k] - lam[k] * _at(rate_v, k)) + (el[k] - el[k] * _at(rate_v, k))
                lam[k], el[k] = _two_sum(lam[k], step)
                step = lam[k] * _at(rate_v, k) + (ek[k] - kap[k] * _at(rate_i, k))
                mu[k], em[k] = _two_sum(kap[k], step)
                dx_t[k] = mu[k]
        else:
            if with_gi:
                gi_t = gis[t * every_i, lo:hi]
                for k in range(n):
                    kap[k] = gi_t[k] + mu[k]
            for k in range(n):
                lam[k] = gv_t[k] + (lam[k] - _at(rate_v, k) * lam[k])
                mu[k] = _at(rate_v, k) * lam[k] + (kap[k] - _at(rate_i, k) * kap[k])
                dx_t[k] = mu[k]
        if parameters:
            j_t = js[t, lo:hi]
            before = voltages[t - 1, lo:hi] if t > 0 else v0[lo:hi]
            for k in range(n):
                drive = (_at(leak, k) - before[k]) + j_t[k]
                sum_a[k] += np.float64(lam[k]) * np.float64(drive)
                sum_d[k] -= np.float64(kap[k]) * np.float64(j_t[k])
                sum_lam[k] += lam[k]
    for k in range(n):
        if compensated:
            dv0[lo + k] = (lam[k] - lam[k] * _at(rate_v, k)) + (el[k] - el[k] * _at(rate_v, k))
        else:
            dv0[lo + k] = lam[k] - _at(rate_v, k) * lam[k]
    for k in range(shares):
        da[lo + k], dd[lo + k], dv_leak[lo + k] = sum_a[k], sum_d[k], _at(rate_v, k) * sum_lam[k]


@numba.njit(parallel=True, cache=True)
def scan(
    xs, v0, i0, a, a_scale, d, d_scale, v_leak, compensated, voltages, currents, js, i_end, v_end, block
):  # pragma: no cover
    """:func:`scan_block` on every block of ``block`` neurons, in parallel."""
    n = xs.shape[1]
    for b in numba.prange((n + block - 1) // block):
        lo, hi = b * block, min(n, (b + 1) * block)
        scan_block(
            xs, v0, i0, a, a_scale, d, d_scale, v_leak, compensated, voltages, currents, js, i_end, v_end, lo, hi
        )


@numba.njit(parallel=True, cache=True)
def scan_backward(
    gv, gis, gi_end, a, a_scale, d, d_scale, v0, voltages, js, v_leak, compensated, dx, dv0, da, dd, dv_leak, block
):  # pragma: no cover
    """:func:`scan_backward_block` on every block of ``block`` neurons, in parallel."""
    n = dx.shape[1]
    for b in numba.prange((n + block - 1) // block):
        lo, hi = b * block, min(n, (b + 1) * block)
        scan_backward_block(
            gv,
            gis,
            gi_end,
            a,
            a_scale,
            d,
            d_scale,
            v0,
            voltages,
            js,
            v_leak,
            compensated,
            dx,
            dv0,
            da,
            dd,
            dv_leak,
            lo,
            hi,
        )
