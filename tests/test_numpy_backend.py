"""The NumPy backend beyond the shared suite: properties over random shapes
and parameters, and the algebra of the scan (hypothesis); float16 computed in
float32; memory measured with tracemalloc; the loop and the time-blocked
scan forced on the same inputs."""

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import li_backends.numpy as numpy_backend
from li_backends import compiled
from li_core import LIParameters, LIState, li_feed_forward_step, li_scan, reference
from li_core.blocked_scan import chunk_length
from li_core.testing import assert_matches, error_ratio
from li_core.testing.cases import convert, random_case, slow_case

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


@pytest.fixture
def numpy_loop(monkeypatch):
    """The ``numpy`` backend's own loop: the compiled loops switched off."""
    monkeypatch.setattr(compiled, "ENABLED", False)


@pytest.mark.parametrize(("dtype", "buffers"), [(np.float32, 5), (np.float64, 0)])
def test_scan_does_not_allocate_per_step(dtype, buffers, numpy_loop):
    """Beyond its outputs the scan holds only its work buffers, the same
    number however long: none in float64 (its two end as the final state),
    five in float32 (the compensated loop's ``j``, the low parts ``ei`` and
    ``ev``, the increment and TwoSum's scratch). A per-step temporary (``j = j + xs[t]``, a
    multiplication without ``out=``) would show as one buffer more at the peak.
    (The loop of ufuncs; the compiled loops' block arrays are numba's, which
    tracemalloc does not see.)"""
    for steps in (10, 1000):
        assert buffers <= _working_memory(steps, dtype) < buffers + 0.25, steps


def test_scan_working_memory_is_bounded_with_recorded_states_and_float16(numpy_loop):
    """Recording states keeps the current and the scratch buffer beside the
    outputs (2 + 5 in float32); float16 is computed in float32: those 7
    and the voltage it carries in two buffers are 9 float32 buffers, 18
    float16 ones. Neither grows with ``T``."""
    for steps in (10, 1000):
        assert _working_memory(steps, np.float32, record_states=True) < 7.25, steps
        assert _working_memory(steps, np.float16) < 18.25, steps


def _forced(monkeypatch, blocked: bool, length: int = 0) -> list:
    """The ``numpy`` backend's scan forced onto the loop or onto the blocked
    scan with chunks of ``length`` steps; returns the chunk lengths it ran."""
    ran: list = []
    monkeypatch.setattr(compiled, "ENABLED", False)
    monkeypatch.setattr(numpy_backend, "BLOCKED", blocked)
    if length:
        monkeypatch.setattr(numpy_backend, "chunk_length", lambda steps, neurons: length)
    real = numpy_backend.blocked_scan

    def spy(*args, **kwargs):
        ran.append(kwargs["length"])
        return real(*args, **kwargs)

    monkeypatch.setattr(numpy_backend, "blocked_scan", spy)
    return ran


#: (steps, chunk length): T a multiple of L, T not a multiple, one chunk and a
#: tail, T < L, T = 1
FORCED_SHAPES = [(600, 30), (601, 37), (50, 30), (20, 30), (1, 1), (1, 5)]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize(("steps", "length"), FORCED_SHAPES)
@pytest.mark.parametrize("record_states", [False, True])
def test_loop_and_blocked_agree(dtype, steps, length, record_states, monkeypatch):
    """The same inputs forced through the loop and through the blocked scan
    (with per-neuron parameters and weights) agree within the dtype's
    tolerance, and both match the float64 reference."""
    case = convert(random_case(steps, batch=(3,), neurons=5, inputs=4, seed=steps), lambda a: a.astype(dtype))
    results = {}
    for blocked in (False, True):
        with monkeypatch.context() as patch:
            ran = _forced(patch, blocked, length)
            results[blocked] = li_scan(
                case.xs, case.state, case.weights, case.p, case.dt, record_states=record_states, backend="numpy"
            )
            assert ran == ([length] if blocked else [])
    exact = convert(case, lambda a: a.astype(np.float64))
    expected = reference.scan(exact.xs, exact.state, exact.weights, exact.p, case.dt, record_states)
    name = np.dtype(dtype).name
    for (loop_vs, loop_state), (vs, state) in ((results[False], results[True]), (expected, results[True])):
        assert vs.dtype == state.v.dtype == state.i.dtype == dtype
        assert_matches(vs, loop_vs, name, f"voltages T={steps} L={length}")
        assert_matches(state.v, loop_state.v, name, f"v T={steps} L={length}")
        assert_matches(state.i, loop_state.i, name, f"i T={steps} L={length}")


def test_slow_neuron_case_runs_blocked(monkeypatch):
    """The conformance suite's slow-neuron case (20,000 steps of 20 neurons)
    takes the blocked path with the automatic chunk length and matches the
    float64 reference in float32."""
    case = convert(slow_case(1e-4), lambda a: a.astype(np.float32))
    ran = _forced(monkeypatch, True)
    vs, state = li_scan(case.xs, case.state, None, case.p, case.dt, backend="numpy")
    assert ran == [chunk_length(*case.xs.shape[:1], math.prod(case.xs.shape[1:]))] and ran[0] > 0
    exact = convert(case, lambda a: a.astype(np.float64))
    expected_vs, expected = reference.scan(exact.xs, exact.state, None, exact.p, case.dt)
    assert_matches(vs, expected_vs, "float32", "slow voltages, blocked")
    assert_matches(state.i, expected.i, "float32", "slow final i, blocked")


def _blocked_working_memory(steps: int, record_states: bool = False) -> float:
    """Peak memory of the blocked path beyond the arrays it returns, in
    multiples of the input (16 neurons)."""
    xs = np.random.default_rng(0).normal(size=(steps, 16)).astype(np.float32)
    assert chunk_length(steps, 16) > 0
    li_scan(xs[:200], backend="numpy")  # warm up outside the measurement
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        vs, final = li_scan(xs, p=LIParameters(v_leak=0.5), backend="numpy", record_states=record_states)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    returned = sum(a.nbytes for a in (vs, final.v, final.i))
    return (peak - before - returned) / xs.nbytes


def test_blocked_scan_working_memory_is_bounded(numpy_loop):
    """The blocked path holds the input reordered into chunks and the chunks'
    voltages before they are put back in time order: two copies of the
    input (three with the recorded currents), whatever ``T``. Its lane scan
    is the backend's loop (:func:`test_scan_does_not_allocate_per_step`),
    which allocates its buffers once per phase, for all chunks."""
    for steps in (20_000, 100_000):
        assert _blocked_working_memory(steps) < 2.2, steps
        assert _blocked_working_memory(steps, record_states=True) < 3.2, steps


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_is_bitwise_the_contract_increments_for_each_signed_zero(dtype):
    """The step, which multiplies by its float coefficients as cached 0-d
    arrays, has the bits of the increment forms computed with Python
    floats, call after call, for coefficients that differ only in the sign
    of a zero (``-d`` is -0.0 for ``tau_syn_inv = 0.0`` and +0.0 for -0.0:
    a cache that took them for one number would return the other's)."""
    values = np.array([0.0, -0.0, 1.5, -2.25, 1e-30], dtype)
    x, i = (np.repeat(values, 5).reshape(5, 5), np.tile(values, 5).reshape(5, 5))
    v = np.full((5, 5), 0.5, dtype)
    for syn, leak in [(0.0, 0.0), (-0.0, 0.0), (0.0, -0.0), (100.0, 0.25), (-0.0, -0.0)]:
        p = LIParameters(syn, 200.0, leak)
        got_v, got = li_feed_forward_step(x, LIState(v, i), p, backend="numpy")
        a, d = 1e-3 * 200.0, 1e-3 * syn
        j = i + x
        want_v = v + ((leak - v) + j) * a
        want_i = j + j * -d
        for g, w in ((got_v, want_v), (got.v, want_v), (got.i, want_i)):
            assert g.dtype == dtype and g.tobytes() == w.tobytes(), (syn, leak)
