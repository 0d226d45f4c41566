"""The NumPy backend beyond the shared suite: properties over random shapes
and parameters, and the algebra of the scan (hypothesis); float16 computed in
float32; memory measured with tracemalloc."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from li_core import LIParameters, LIState, li_feed_forward_step, li_scan, reference
from li_core.testing import assert_matches, error_ratio
from li_core.testing.cases import convert, slow_case

shapes = st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple)
rates = st.floats(0.0, 1.0)  # dt * tau_inv, including the edge cases b = 0 and a = 1


@settings(max_examples=60, deadline=None)
@given(
    shape=shapes, steps=st.integers(0, 30), syn=rates, mem=rates, per_neuron=st.booleans(), seed=st.integers(0, 2**16)
)
def test_scan_equals_loop_of_steps_and_reference(shape, steps, syn, mem, per_neuron, seed):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, *shape))
    state = LIState(rng.normal(size=shape), rng.normal(size=shape))
    if per_neuron and shape:
        p = LIParameters(
            rng.uniform(0, 1000, shape[-1:]), rng.uniform(0, 1000, shape[-1:]), rng.normal(size=shape[-1:])
        )
    else:
        p = LIParameters(syn / 1e-3, mem / 1e-3, float(rng.normal()))
    vs, final = li_scan(xs, state, p=p, backend="numpy")
    expected_vs, expected = reference.scan(xs, state, None, p, 1e-3)
    assert_matches(vs, expected_vs, "float64", "numpy scan vs reference")
    # The current is judged on the scale of the whole state: with b = 1 - dt*tau_syn_inv
    # near 0, i is rounding noise of size eps*|j| whichever way b*j is evaluated.
    together = np.concatenate([np.ravel(final.v), np.ravel(final.i)])
    assert_matches(together, np.concatenate([np.ravel(expected.v), np.ravel(expected.i)]), "float64", "final state")
    current = state
    for t in range(steps):
        v, current = li_feed_forward_step(xs[t, ...], current, p, backend="numpy")
        assert_matches(vs[t], v, "float64", f"scan vs step at t={t}")
    assert_matches(final.v, current.v, "float64", "final v vs step loop")


def test_float16_is_computed_in_float32():
    """Slow neurons (dt*tau_inv down to 1e-3): a recurrence carried in float16
    stalls there (increments below half an ulp of v; 3.8x the float16
    tolerance), one carried in float32 is off by the output rounding only."""
    case = slow_case(1e-3)
    half = convert(case, lambda a: a.astype(np.float16))
    vs, state = li_scan(half.xs, half.state, None, half.p, case.dt, backend="numpy")
    assert vs.dtype == state.v.dtype == state.i.dtype == np.float16
    exact = convert(half, lambda a: a.astype(np.float64))
    reference_vs, reference_state = reference.scan(exact.xs, exact.state, None, exact.p, case.dt)
    assert error_ratio(vs, reference_vs, "float16") < 0.1
    assert error_ratio(state.i, reference_state.i, "float16") < 0.1


def _working_memory(steps: int, dtype, record_states: bool = False) -> float:
    """Peak memory of ``li_scan`` beyond the arrays it returns, in buffers of
    the neuron shape and dtype (NumPy reports its data to tracemalloc)."""
    neurons = 10_000
    xs = np.random.default_rng(0).normal(size=(steps, neurons)).astype(dtype)
    state = LIState(np.zeros(neurons, dtype), np.ones(neurons, dtype))
    li_scan(xs[:2], state, backend="numpy")  # warm up outside the measurement
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        vs, final = li_scan(xs, state, p=LIParameters(v_leak=0.5), backend="numpy", record_states=record_states)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    returned = sum(a.nbytes for a in (vs, final.v, final.i))
    return (peak - before - returned) / (neurons * np.dtype(dtype).itemsize)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scan_does_not_allocate_per_step(dtype):
    """Beyond its outputs the scan holds nothing of the neuron shape at any
    moment, however long: a per-step temporary (``j = j + xs[t]``, a
    multiplication without ``out=``) would show as one buffer more at the peak."""
    for steps in (10, 1000):
        assert _working_memory(steps, dtype) < 0.25, steps


def test_scan_working_memory_is_bounded_with_recorded_states_and_float16():
    """Recording states keeps ``j`` and the scratch buffer beside the
    outputs; float16 adds the float32 voltage it carries (3 float32 buffers
    are 6 float16 ones). Neither grows with ``T``."""
    for steps in (10, 1000):
        assert _working_memory(steps, np.float32, record_states=True) < 2.25, steps
        assert _working_memory(steps, np.float16) < 6.25, steps
