"""The per-step fractions as the kernels take them: an inverse time constant
and the step it is taken over, multiplied inside the kernel.

A scan's recurrences use ``a = dt*tau_mem_inv`` and ``d = dt*tau_syn_inv``
(:func:`li_core.reference.rates`). The compiled loops, the CUDA kernels and
torch's loop take each as a :class:`Rate`, ``value*scale``, and form the
product themselves, so that a caller never makes (and autograd never
records) an array of fractions per call, and a backward returns the
gradient with respect to ``value`` directly: ``scale`` times the gradient
with respect to the fraction. The product is the one the reference forms:
a Python float ``value`` is multiplied in double precision (as Python
computes ``dt * tau_inv``) and then rounded to the compute dtype; an array
``value`` is multiplied elementwise in its own dtype, with ``scale``
rounded to that dtype (as NumPy and torch multiply an array by a Python
float). So every path gives the bits it gave when it was handed ``a`` and
``d`` themselves.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .types import LIParameters


class Rate(NamedTuple):
    """A per-step fraction ``value*scale`` per neuron: ``value`` a Python float
    or an array that broadcasts to the neurons, ``scale`` the time step ``dt``
    for an inverse time constant, or 1 for a fraction (or ``v_leak``) given
    as it is."""

    value: Any
    scale: float = 1.0


def scan_rates(p: LIParameters, dt: float) -> tuple[Rate, Rate]:
    """``(a, d)`` of ``p`` and ``dt`` as :class:`Rate` s: the inverse time
    constants with the step ``dt``."""
    return Rate(p.tau_mem_inv, dt), Rate(p.tau_syn_inv, dt)


def fraction(rate: Rate) -> Any:
    """``rate.value * rate.scale`` as the module docstring says: a float for a
    float, an array of the value's dtype for an array (the value itself where
    the scale is 1, since multiplying by 1 is exact)."""
    if rate.scale == 1.0:
        return rate.value
    return rate.value * rate.scale
