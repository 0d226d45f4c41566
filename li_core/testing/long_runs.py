"""The float64 yardstick of the long runs (10^5 and 10^6 steps), where the
Array API reference, one Python-level step at a time, would take minutes.

Both the voltages and the gradients come from the ``numpy`` backend's
float64 scan (the compiled loop where numba is installed, else its
time-blocked scan): the forward directly, the gradients through the adjoint
written as two scans over reversed time (:func:`long_gradients`). float64 runs these recurrences plain, and the suite's
other cases hold that scan to the reference itself within the float64
tolerance; tests/test_conformance.py holds this yardstick to the reference
and its adjoint on a 20,000-step run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from li_core.reference import rates
from li_core.types import LIParameters, LIState

from .cases import Case
from .gradients import _reduce_to

#: the long runs of the contract, section 4, by name: the slowest
#: ``dt*tau_inv`` and the steps at full length, and for backends that step in
#: Python (:data:`STEPWISE_BACKENDS`). Those compute float32 plainly, as the
#: model is written: they run a rung of the ladder that plain float32 holds
#: (rates down to 1e-4) and absorption for as long as it stays within the
#: tolerance (2,000 steps: 0.51 of it, 1.0 at 4,000)
RUNS = {"rates to 1e-6": ((1e-6, 10**6), (1e-4, 10**4)), "absorption": ((1e-9, 100_000), (1e-9, 2_000))}
#: backends too slow for 10^6 steps: the Array API reference, one Python-level step at a time
STEPWISE_BACKENDS = frozenset({"array_api"})


def run_length(name: str, backend: str) -> tuple[float, int, bool]:
    """The slowest rate and the steps of the long run ``name`` for the backend
    called ``backend``, and whether that is the full-length run."""
    full = backend not in STEPWISE_BACKENDS
    slowest, steps = RUNS[name][0 if full else 1]
    return slowest, steps, full


def _numpy_scan(xs: np.ndarray, state: LIState, p: LIParameters, dt: float, record_states: bool) -> tuple:
    """The ``numpy`` backend's scan, without weights (a lane scan)."""
    from li_backends.numpy import NumPyBackend

    return NumPyBackend().scan(xs, state, None, p, dt, record_states)


def _float64(case: Case) -> tuple[np.ndarray, LIState, LIParameters]:
    """The unweighted case's inputs, state (broadcast to the neurons) and
    parameters as float64 NumPy arrays (floats stay floats)."""
    if case.weights is not None:
        raise ValueError("long runs are unweighted: the case has input_weights")
    xs = np.asarray(case.xs, dtype=np.float64)
    shape = xs.shape[1:]
    state = LIState(*(np.broadcast_to(np.asarray(s, dtype=np.float64), shape).copy() for s in case.state))
    p = LIParameters(*(q if isinstance(q, float) else np.asarray(q, dtype=np.float64) for q in case.p))
    return xs, state, p


def long_scan(case: Case, record_states: bool = False) -> tuple[np.ndarray, LIState]:
    """The float64 voltages and final state (or with ``record_states`` the
    ``v`` and ``i`` sequences) of the unweighted ``case``."""
    xs, state, p = _float64(case)
    return _numpy_scan(xs, state, p, case.dt, record_states)


def _filtered(inputs: np.ndarray, start: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """``y_s = (y_{s-1} - rate*y_{s-1}) + inputs_s`` with ``y_{-1} - rate*y_{-1}
    = start``: the current ``j`` of a scan whose synaptic rate is ``rate``
    (recovered from its recorded currents as the scan forms it, ``i + x``)."""
    zero = np.zeros_like(start)
    p = LIParameters(tau_syn_inv=rate, tau_mem_inv=rate, v_leak=0.0)
    _, states = _numpy_scan(inputs, LIState(zero, start), p, 1.0, True)
    return np.concatenate([start[None, ...], states.i[:-1, ...]]) + inputs


def long_gradients(case: Case, seed: Any, final_i_seed: Any) -> dict[str, np.ndarray]:
    """Float64 gradients of ``L = sum(seed * vs) + sum(final_i_seed * i_final)``
    for the unweighted ``case``, keyed like
    :func:`li_core.testing.gradients.reference_gradients`.

    In reversed time ``s = T - 1 - t`` the adjoint (``lam``, ``kap``, ``mu``
    the gradients with respect to ``v_t``, ``i_t`` and ``j_t``) is two
    first-order filters, each the current of a scan:
    ``lam_s = (lam_{s-1} - a*lam_{s-1}) + gv_s`` from ``lam_{-1} = 0``, and
    ``mu_s = (mu_{s-1} - d*mu_{s-1}) + a*lam_s`` where ``mu_{-1} - d*mu_{-1}``
    stands for ``gi - d*gi``, the final current's gradient (``kap_s =
    mu_{s-1}``). Then ``dL/dx_t = mu_t``, ``dL/dv_init = lam_0 - a*lam_0``,
    ``dL/di_init = mu_0``, ``dL/da = sum_t lam_t*((v_leak - v_{t-1}) + j_t)``,
    ``dL/dd = -sum_t kap_t*j_t`` and ``dL/dv_leak = a*sum_t lam_t``."""
    xs, state, p = _float64(case)
    shape = xs.shape[1:]
    voltages, states = _numpy_scan(xs, state, p, case.dt, True)
    js = np.concatenate([state.i[None, ...], states.i[:-1, ...]]) + xs  # j_t = i_{t-1} + x_t
    a, d = (np.broadcast_to(np.asarray(r, dtype=np.float64), shape).copy() for r in rates(p, case.dt))
    v_leak = np.broadcast_to(np.asarray(p.v_leak, dtype=np.float64), shape)
    gv = np.ascontiguousarray(np.asarray(seed, dtype=np.float64)[::-1])
    gi = np.broadcast_to(np.asarray(final_i_seed, dtype=np.float64), shape)
    lam = _filtered(gv, np.zeros(shape), a)
    mu = _filtered(a * lam, gi - d * gi, d)
    lam, mu = lam[::-1], mu[::-1]  # in forward time
    kap = np.concatenate([mu[1:, ...], gi[None, ...]])
    before = np.concatenate([state.v[None, ...], voltages[:-1, ...]])
    drives = (v_leak - before) + js
    return {
        "inputs": mu,
        "state.v": _reduce_to(lam[0] - a * lam[0], np.shape(case.state.v)),
        "state.i": _reduce_to(mu[0], np.shape(case.state.i)),
        "p.tau_syn_inv": case.dt * _reduce_to(-np.sum(kap * js, axis=0), np.shape(case.p.tau_syn_inv)),
        "p.tau_mem_inv": case.dt * _reduce_to(np.sum(lam * drives, axis=0), np.shape(case.p.tau_mem_inv)),
        "p.v_leak": _reduce_to(a * np.sum(lam, axis=0), np.shape(case.p.v_leak)),
    }
