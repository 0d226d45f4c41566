"""The time-blocked scan (li_core.blocked_scan) against the float64 reference
and against the one-step-at-a-time loop, on NumPy, PyTorch (CPU) and
array-api-strict arrays."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from li_core import LIParameters, LIState, get_backend, reference
from li_core.blocked_scan import (
    MAX_BLOCKED_NEURONS,
    MIN_BLOCKED_STEPS,
    blocked_adjoint,
    blocked_scan,
    chunk_length,
    chunk_transition,
    from_chunks,
    scan_lanes,
    to_chunks,
    two_sum,
)
from li_core.testing.cases import Case, convert, random_case, slow_case
from li_core.testing.tolerances import RTOL, assert_matches, error_ratio


def _numpy_array(dtype: str):
    return lambda a: np.array(a, dtype=dtype)


def _torch_array(dtype: str):
    torch = pytest.importorskip("torch")
    return lambda a: torch.tensor(a, dtype=getattr(torch, dtype))


def _strict_array(dtype: str):
    strict = pytest.importorskip("array_api_strict")
    return lambda a: strict.asarray(np.asarray(a, dtype=dtype))


LIBRARIES = {"numpy": _numpy_array, "torch": _torch_array, "array_api_strict": _strict_array}


def to_numpy(x):
    if type(x).__module__.startswith("torch"):
        return x.detach().numpy()
    return np.from_dlpack(x) if not isinstance(x, np.ndarray) else x


def run(case: Case, library: str, dtype: str, record_states: bool = False, **options):
    """``blocked_scan`` on ``case`` converted to ``library`` arrays of ``dtype``;
    the results as NumPy arrays."""
    c = convert(case, LIBRARIES[library](dtype))
    voltages, state = blocked_scan(c.xs, c.state, c.weights, c.p, c.dt, record_states, **options)
    assert voltages.dtype == c.xs.dtype and state.v.dtype == c.xs.dtype and state.i.dtype == c.xs.dtype
    return to_numpy(voltages), LIState(to_numpy(state.v), to_numpy(state.i))


def _case(steps: int) -> Case:
    return random_case(steps, batch=(3,), neurons=5, seed=steps)


def _slow_case() -> Case:
    return slow_case(1e-4)


def _weighted_case() -> Case:
    return random_case(300, batch=(2,), neurons=4, inputs=6, seed=3)


@functools.cache
def reference_of(make, *args, record_states: bool = False):
    """The float64 reference scan of the case ``make(*args)`` (cached: the slow case takes a while)."""
    c = make(*args)
    return reference.scan(c.xs, c.state, c.weights, c.p, c.dt, record_states)


def assert_result_matches(result, expected, dtype: str, what: str) -> None:
    voltages, state = result
    assert_matches(voltages, expected[0], dtype, f"{what}: voltages")
    assert_matches(state.v, expected[1].v, dtype, f"{what}: state.v")
    assert_matches(state.i, expected[1].i, dtype, f"{what}: state.i")


# (steps, chunk length): T a multiple of L, T not a multiple, one chunk and a
# tail, T < L, T = L, T = 1, T = 0
SHAPES = [(600, 30), (601, 37), (50, 30), (20, 30), (30, 30), (1, 1), (1, 5), (0, 4)]


@pytest.mark.parametrize("library", sorted(LIBRARIES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("steps", "length"), SHAPES)
@pytest.mark.parametrize("record_states", [False, True])
def test_matches_the_reference(library, dtype, steps, length, record_states):
    expected = reference_of(_case, steps, record_states=record_states)
    result = run(_case(steps), library, dtype, record_states, length=length)
    assert_result_matches(result, expected, dtype, f"{library} {dtype} T={steps} L={length}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("steps", "length"), SHAPES)
def test_blocked_and_loop_agree(dtype, steps, length):
    """The same inputs forced through the loop (length 0) and through the
    chunks agree within the tolerance of the dtype, and both match the reference."""
    case = _case(steps)
    loop = run(case, "numpy", dtype, True, length=0)
    blocked = run(case, "numpy", dtype, True, length=length)
    assert_result_matches(blocked, loop, dtype, f"blocked against loop, {dtype} T={steps} L={length}")
    assert_result_matches(loop, reference_of(_case, steps, record_states=True), dtype, "loop")


@pytest.mark.parametrize("library", sorted(LIBRARIES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("length", [None, 2, 150, 1000])
def test_slow_neurons(library, dtype, length):
    """dt*tau_inv from 1 down to 1e-4 per neuron, over 2/1e-4 steps. The
    chunk transition of slow neurons is close to the identity: float32 stays
    within tolerance only with its complement form and with the carry written
    as state plus increment (either mistake is 3 times the tolerance with
    10,000 chunks of 2 steps)."""
    result = run(_slow_case(), library, dtype, length=length)
    assert_result_matches(result, reference_of(_slow_case), dtype, f"{library} {dtype} slow neurons, L={length}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weights_are_projected_first(dtype):
    result = run(_weighted_case(), "numpy", dtype, True, length=16)
    assert_result_matches(result, reference_of(_weighted_case, record_states=True), dtype, "weighted")


@pytest.mark.parametrize(
    ("tau_syn_inv", "tau_mem_inv", "v_leak"),
    [
        (200.0, 100.0, 0.0),  # floats, no leak
        (200.0, np.linspace(50, 450, 5), 0.5),  # per neuron, a float leak
        (np.linspace(50, 450, 3)[:, None], 100.0, np.linspace(-1, 1, 5)),  # per batch row and per neuron
        (1000.0, 1000.0, -0.25),  # rates of one: b = 0, c = 0
    ],
)
@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_parameter_shapes(tau_syn_inv, tau_mem_inv, v_leak, library):
    base = _case(401)
    case = base._replace(p=LIParameters(tau_syn_inv, tau_mem_inv, v_leak))
    expected = reference.scan(case.xs, case.state, None, case.p, case.dt, True)
    assert_result_matches(run(case, library, "float32", True, length=20), expected, "float32", "parameters")


def test_rates_of_one_copy_the_input():
    """tau_syn_inv = tau_mem_inv = 1/dt: v equals the input at every step (up
    to the rounding of ``v + ((0 - v) + x)``) and i stays exactly 0; nothing
    may divide by ``b = 0``."""
    xs = np.random.default_rng(0).normal(size=(100, 3))
    state = LIState(np.zeros(3), np.zeros(3))
    voltages, final = blocked_scan(xs, state, None, LIParameters(1000.0, 1000.0, 0.0), 1e-3, length=9)
    assert_matches(voltages, xs, "float64", "v with rates of one")
    np.testing.assert_array_equal(final.i, np.zeros(3))


def test_half_precision_is_computed_in_float32():
    case = _case(300)
    expected = reference_of(_case, 300)
    result = run(case, "numpy", "float16", length=17)
    assert_result_matches(result, expected, "float16", "float16")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_chunk_transition_is_accurate_relative_to_itself(dtype):
    """``1 - c**L`` and ``1 - b**L`` to a few ulps relative to their own size,
    even where they are tiny: rounded through ``c**L`` near 1 they would be
    off by ``eps / (a*L)`` relative."""
    rates = np.array([1e-5, 1e-4, 1e-3, 0.1, 0.5, 1.0])
    dt, length = 1e-3, 12
    p = LIParameters(tau_syn_inv=np.array(rates[::-1] / dt, dtype=dtype), tau_mem_inv=np.array(rates / dt, dtype=dtype))
    transition = chunk_transition(p, dt, length, np.zeros(1, dtype=dtype))
    a, d = rates, rates[::-1]
    with np.errstate(divide="ignore"):  # log1p(-1) = -inf: a rate of one forgets everything
        expected_v_lost = -np.expm1(length * np.log1p(-a))
        expected_i_lost = -np.expm1(length * np.log1p(-d))
    bound = 8 * length * np.finfo(dtype).eps
    np.testing.assert_allclose(transition.v_lost, expected_v_lost, rtol=bound, atol=0)
    np.testing.assert_allclose(transition.i_lost, expected_i_lost, rtol=bound, atol=0)
    # i_to_v: the voltage a unit current leaves after L input-free steps (the loop in float64)
    _, end = reference.scan(
        np.zeros((length, 6)), LIState(np.zeros(6), np.ones(6)), None, LIParameters(d / dt, a / dt, 0.0), dt
    )
    np.testing.assert_allclose(transition.i_to_v, end.v, rtol=bound, atol=0)


def test_a_backend_scan_plugs_in_as_the_lane_scan():
    """A backend's own loop (here the NumPy backend's scan without weights)
    runs every lane scan, over ``[L, K, *shape]`` lanes, and gives the same
    numbers as the default."""
    numpy_backend = get_backend("numpy")
    seen = []

    def lanes(xs, state, p, dt, record_states):
        seen.append(xs.shape)
        return numpy_backend.scan(xs, state, None, p, dt, record_states)

    case = _case(605)
    expected = reference_of(_case, 605, record_states=True)
    for record_states in (False, True):
        seen.clear()
        c = convert(case, _numpy_array("float32"))
        result = blocked_scan(c.xs, c.state, None, c.p, c.dt, record_states, lane_scan=lanes, length=40)
        assert_result_matches(
            result, expected if record_states else (expected[0], _last(expected[1])), "float32", "plugged"
        )
        # the chunks from rest, the transition (3 lanes per neuron), the chunks again, the 5-step tail
        assert seen == [(40, 15, 3, 5), (40, 3, 5), (40, 15, 3, 5), (5, 3, 5)]


def _last(state: LIState) -> LIState:
    return LIState(state.v[-1], state.i[-1])


def test_inputs_are_not_modified_and_outputs_do_not_alias():
    case = convert(_case(300), _numpy_array("float32"))
    before = [a.copy() for a in (case.xs, case.state.v, case.state.i, *case.p)]
    voltages, state = blocked_scan(case.xs, case.state, None, case.p, case.dt, True, length=16)
    for original, now in zip(before, (case.xs, case.state.v, case.state.i, *case.p)):
        np.testing.assert_array_equal(original, now)
    assert not np.shares_memory(voltages, state.v) and not np.shares_memory(voltages, state.i)
    v, final = blocked_scan(case.xs, case.state, None, case.p, case.dt, False, length=16)
    assert not np.shares_memory(v, final.v) and not np.shares_memory(final.v, final.i)


def test_non_contiguous_inputs():
    case = convert(_case(300), _numpy_array("float64"))
    strided = np.ascontiguousarray(np.swapaxes(case.xs, 0, 1)).swapaxes(0, 1)
    assert not strided.flags["C_CONTIGUOUS"]
    expected = blocked_scan(case.xs, case.state, None, case.p, case.dt, length=16)
    result = blocked_scan(strided, case.state, None, case.p, case.dt, length=16)
    np.testing.assert_array_equal(result[0], expected[0])


def test_torch_gradients_flow_through_the_chunks():
    """Every step is an Array API operation, so autograd differentiates the
    blocked scan; its gradients equal those of the loop."""
    torch = pytest.importorskip("torch")
    case = convert(_case(120), lambda a: torch.tensor(a, requires_grad=True))

    def gradients(length):
        voltages, state = blocked_scan(case.xs, case.state, None, case.p, case.dt, length=length)
        (voltages.square().sum() + state.i.sum()).backward()
        leaves = (case.xs, case.state.v, case.state.i, *case.p)
        grads = [leaf.grad.clone() for leaf in leaves]
        for leaf in leaves:
            leaf.grad = None
        return grads

    for loop, blocked in zip(gradients(0), gradients(11)):
        torch.testing.assert_close(blocked, loop, rtol=RTOL["float64"], atol=RTOL["float64"] * loop.abs().max().item())


def test_chunks_round_trip():
    xs = np.arange(2 * 7 * 3).reshape(14, 3)
    chunks = to_chunks(xs, 4)
    assert chunks.shape == (4, 3, 3) and chunks.flags["C_CONTIGUOUS"]
    assert chunks[1, 2, 0] == xs[2 * 4 + 1, 0]
    np.testing.assert_array_equal(from_chunks(chunks), xs[:12])
    np.testing.assert_array_equal(from_chunks(np.swapaxes(chunks, 0, 1), chunk_major=True), xs[:12])


def test_default_lane_scan_is_the_loop():
    case = _case(50)
    voltages, final = scan_lanes(case.xs, case.state, case.p, case.dt, False)
    expected = reference_of(_case, 50)
    np.testing.assert_allclose(voltages, expected[0], rtol=1e-13)
    np.testing.assert_allclose(final.i, expected[1].i, rtol=1e-13)


def test_chunk_length_rule():
    assert chunk_length(MIN_BLOCKED_STEPS - 1, 1) == 0
    assert chunk_length(10**5, MAX_BLOCKED_NEURONS + 1) == 0
    for steps in (100, 1000, 20000, 100000, 100003, 10**6):
        length = chunk_length(steps, 16)
        assert 0.5 * math.sqrt(steps) <= length <= math.sqrt(steps), (steps, length)
    # a divisor near the optimum leaves no tail; a prime leaves one
    assert 100000 % chunk_length(100000, 16) == 0 and 20000 % chunk_length(20000, 256) == 0
    assert 100003 % chunk_length(100003, 16) != 0


# -- compensated float32: the absorption case ------------------------------------------------


def _ladder(slowest_decade: int, steps: int) -> Case:
    """Per-neuron ``dt*tau_inv`` on a half-decade ladder from 1 down to
    ``10**-slowest_decade``, the membrane rates ascending where the synaptic
    ones descend, plus a neuron slow and one fast in both; random inputs of
    mean 0.5, a random state and leak."""
    rng = np.random.default_rng(0)
    ladder = np.logspace(0, -slowest_decade, 2 * slowest_decade + 1)
    bottom = 10.0**-slowest_decade
    mem = np.concatenate([ladder, ladder[::-1], [bottom, 1.0]])
    syn = np.concatenate([ladder[::-1], ladder, [bottom, 1.0]])
    dt = 1e-3
    xs = rng.normal(0.5, 1.0, size=(steps, mem.size))
    p = LIParameters(syn / dt, mem / dt, rng.uniform(-1, 1, mem.size))
    state = LIState(*(rng.normal(size=mem.size) for _ in range(2)))
    return Case(xs, None, state, p, dt)


def per_neuron_ratio(got, want) -> float:
    """The largest float32 error of any neuron as a multiple of the tolerance
    relative to that neuron's own largest value (stricter than the contract,
    whose ``max|r|`` is the largest value of all neurons)."""
    return max(error_ratio(got[:, n], want[:, n], "float32") for n in range(want.shape[1]))


def test_two_sum_is_exact_whichever_operand_is_larger():
    rng = np.random.default_rng(0)
    p = (rng.normal(size=1000) * 10.0 ** rng.integers(-8, 8, 1000)).astype(np.float32)
    q = (rng.normal(size=1000) * 10.0 ** rng.integers(-8, 8, 1000)).astype(np.float32)
    s, e = two_sum(p, q)
    assert s.dtype == e.dtype == np.float32
    np.testing.assert_array_equal(s, p + q)
    # float32 sums and errors are exact in float64: s + e is p + q to the last bit
    np.testing.assert_array_equal(s.astype(np.float64) + e.astype(np.float64), p.astype(np.float64) + q)


def test_float32_lane_scan_absorbs_nothing():
    """Rates down to 1e-9 over 30,000 steps: the plain float32 loop rounds
    away a slow neuron's change at every step, 21 times the tolerance; the
    compensated one is within about 0.004 of it."""
    case = _ladder(9, 30_000)
    expected = reference_of(_ladder, 9, 30_000)
    c = convert(case, _numpy_array("float32"))
    voltages, final = scan_lanes(c.xs, c.state, c.p, c.dt, False)
    assert error_ratio(voltages, expected[0], "float32") <= 0.05
    assert_matches(final.i, expected[1].i, "float32", "final i")


@pytest.mark.parametrize("length", [None, 10])
def test_float32_chunk_ends_and_carries_absorb_nothing(length):
    """Rates down to 1e-9 over 100,000 steps through the chunks, the default
    length (452 chunks) and 10-step chunks (10,000 carry steps). Each neuron
    stays within 0.05 of its own tolerance (about 0.01 measured): a plain
    float32 carry walk is 5.9 times it with 10-step chunks and 0.6 with the
    default, chunk ends rounded against ``v_leak`` 4.2 and 0.2."""
    case = _ladder(9, 100_000)
    expected = reference_of(_ladder, 9, 100_000)
    voltages, final = run(case, "numpy", "float32", length=length)
    assert per_neuron_ratio(voltages, expected[0]) <= 0.05
    assert_matches(final.v, expected[1].v, "float32", "final v")
    assert_matches(final.i, expected[1].i, "float32", "final i")


def _adjoint(case: Case, dtype: str) -> list[np.ndarray]:
    """``blocked_adjoint`` of a random weighted sum of the voltages of ``case``
    in ``dtype``, with the parameter gradients, through the default chunks."""
    c = convert(case, _numpy_array(dtype))
    voltages, recorded = blocked_scan(c.xs, c.state, None, c.p, c.dt, True)
    js = np.concatenate([c.state.i[None], recorded.i[:-1]]) + c.xs
    a, d = reference.rates(c.p, c.dt)
    gv = np.random.default_rng(1).normal(size=c.xs.shape).astype(dtype)
    saved = (c.state.v, voltages, js, c.p.v_leak)
    return blocked_adjoint(gv, np.zeros_like(c.state.i), a, d, False, True, saved)


def test_float32_adjoint_absorbs_nothing():
    """The adjoint on the absorption case (rates down to 1e-9 over 100,000
    steps), float32 against float64: every gradient within 0.05 of the
    tolerance (about 0.01 measured). With plain float32 lane scans ``dx`` is
    0.36 of it; with the parameter-gradient sums in float32, ``dd`` and
    ``dv_leak`` are 1.2 and 1.1 times it."""
    case = _ladder(9, 100_000)
    names = ("dx", "dv_init", "di_init", "da", "dd", "dv_leak")
    for name, got, want in zip(names, _adjoint(case, "float32"), _adjoint(case, "float64")):
        assert got.dtype == np.float32
        assert error_ratio(got, want, "float32") <= 0.05, name
