"""The state and parameter records of a leaky integrator.

Both are plain ``NamedTuple`` records, so they unpack, compare and print like
tuples and work with any array library. ``LIParameters`` defaults are Python
floats: importing this module imports no array library.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class LIState(NamedTuple):
    """State of a population of leaky integrators.

    ``v`` is the membrane voltage and ``i`` the synaptic current, arrays of the
    neuron shape (or, from ``li_scan(..., record_states=True)``, whole
    time-first sequences ``[T, *neurons]``).
    """

    v: Any
    i: Any


class LIParameters(NamedTuple):
    """Parameters of a leaky integrator.

    Each field is a Python float or an array (of the input's library, dtype and
    device) that broadcasts to the neuron shape, e.g. per-neuron time
    constants.

    ``tau_syn_inv``: inverse synaptic time constant in 1/s (default 200, i.e. 5 ms).
    ``tau_mem_inv``: inverse membrane time constant in 1/s (default 100, i.e. 10 ms).
    ``v_leak``: leak (resting) potential (default 0).
    """

    tau_syn_inv: Any = 200.0
    tau_mem_inv: Any = 100.0
    v_leak: Any = 0.0
