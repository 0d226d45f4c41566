"""The conformance suite: the contract (docs/contract.md), sections 2, 4 and 5
for one backend.

Run it on any registered backend with ``li check NAME`` or
``pytest --pyargs li_core.testing.conformance --li-backend NAME``. Every test
runs once per declared dtype and device of the backend (``target``); what
cannot run here is skipped with the reason.
"""

from __future__ import annotations

import functools

import array_api_compat
import numpy as np
import pytest

from li_core import (
    BackendNotFoundError,
    LIParameters,
    LIState,
    li_feed_forward_step,
    li_scan,
    li_step,
)
from li_core import reference as ref
from li_core.arrays import HALF, dtype_name, library_name

from .cases import Case, convert, ladder_case, random_case, slow_case
from .exact import exact_scan
from .gradients import GRADIENT_NAMES, gradient_api, reference_gradients
from .long_runs import RUNS, long_gradients, long_scan, run_length
from .pytest_plugin import chosen_backends
from .targets import Target, targets_for
from .tolerances import assert_matches


def parametrize_targets(metafunc: pytest.Metafunc, backends: list) -> None:
    """Parametrize ``target`` over ``backends`` x their dtypes x devices,
    narrowed by ``--li-dtype`` / ``--li-device``; impossible pairs are
    skipped with the reason."""
    config = metafunc.config
    found = targets_for(
        backends,
        config.getoption("li_dtype", default=[]) or None,
        config.getoption("li_device", default=[]) or None,
    )
    params = [
        pytest.param(target, id=target.id, marks=[pytest.mark.skip(reason=skip)] if skip else [])
        for target, skip in found
    ]
    metafunc.parametrize("target", params)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        parametrize_targets(metafunc, chosen_backends(metafunc.config))


# --- helpers -----------------------------------------------------------------


def reference_scan(case: Case, record_states: bool = False) -> tuple[np.ndarray, LIState]:
    """The float64 reference on NumPy arrays (no validation: cases are valid)."""
    return ref.scan(case.xs, case.state, case.weights, case.p, case.dt, record_states)


def run_scan(target: Target, case: Case, *, at_rest: bool = False, record_states: bool = False) -> tuple:
    """``li_scan`` of ``case`` on the target (``at_rest``: with ``state=None``)."""
    state = None if at_rest else case.state
    return li_scan(case.xs, state, case.weights, case.p, case.dt, backend=target.backend, record_states=record_states)


def check_scan(target: Target, case: Case, what: str, expected_scan=reference_scan) -> None:
    """Scan ``case`` on the target and compare voltages and final state with
    the float64 ``expected_scan`` (the reference) on the same (rounded) numbers."""
    vs, state = run_scan(target, target.case(case))
    expected_vs, expected = expected_scan(target.rounded(case))
    assert_matches(target.numpy(vs), expected_vs, target.dtype, f"{what}: voltages")
    assert_matches(target.numpy(state.v), expected.v, target.dtype, f"{what}: final v")
    assert_matches(target.numpy(state.i), expected.i, target.dtype, f"{what}: final i")


def check_step(target: Target, case: Case, what: str) -> None:
    """One step on the first input of ``case`` (``li_step`` when it is
    weighted, else ``li_feed_forward_step``) against the reference."""
    given, rounded = target.case(case), target.rounded(case)
    if case.weights is None:
        what = f"feed-forward step, {what}"
        v, state = li_feed_forward_step(given.xs[0, ...], given.state, given.p, case.dt, backend=target.backend)
        expected_v, expected = ref.feed_forward_step(rounded.xs[0, ...], rounded.state, rounded.p, case.dt)
    else:
        what = f"weighted step, {what}"
        v, state = li_step(given.xs[0, ...], given.state, given.weights, given.p, case.dt, backend=target.backend)
        expected_v, expected = ref.step(rounded.xs[0, ...], rounded.state, rounded.weights, rounded.p, case.dt)
    assert_matches(target.numpy(v), expected_v, target.dtype, f"{what}: v")
    assert_matches(target.numpy(state.v), expected.v, target.dtype, f"{what}: state.v")
    assert_matches(target.numpy(state.i), expected.i, target.dtype, f"{what}: state.i")


def sequence(values: list[float], steps_shape: tuple[int, ...] = (1,)) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(len(values), *steps_shape)


def mutable(target: Target, x) -> bool:
    """Whether arrays of this library can be written in place."""
    try:
        x[...] = x
    except (TypeError, ValueError, NotImplementedError, AttributeError):
        return False
    return True


# --- the contract, section 4: known and exact values --------------------------

CONSTANT_V = [0.1, 0.27, 0.487, 0.7335, 0.99631, 1.265607, 1.5341887, 1.79688375, 2.050086511, 2.2913907687]
CONSTANT_I = [0.8, 1.44, 1.952, 2.3616, 2.68928, 2.951424, 3.1611392, 3.32891136, 3.463129088, 3.5705032704]


def test_known_values_constant_input(target: Target) -> None:
    vs, states = li_scan(target.array(np.ones((10, 1))), backend=target.backend, record_states=True)
    assert_matches(target.numpy(vs), sequence(CONSTANT_V), target.dtype, "constant input: v")
    assert_matches(target.numpy(states.i), sequence(CONSTANT_I), target.dtype, "constant input: i")


def test_known_values_impulse(target: Target) -> None:
    xs = target.array(sequence([1.0, 0.0, 0.0, 0.0, 0.0]))
    vs, states = li_scan(xs, backend=target.backend, record_states=True)
    assert_matches(target.numpy(vs), sequence([0.1, 0.17, 0.217, 0.2465, 0.26281]), target.dtype, "impulse: v")
    assert_matches(target.numpy(states.i), sequence([0.8, 0.64, 0.512, 0.4096, 0.32768]), target.dtype, "impulse: i")


def test_known_values_weighted_step(target: Target) -> None:
    weights = target.array([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]])
    spikes = target.array([1.0, 1.0])
    v, state = li_step(spikes, None, weights, backend=target.backend)
    assert_matches(target.numpy(v), [0.3, -0.05, 0.3], target.dtype, "weighted step 0: v")
    assert_matches(target.numpy(state.i), [2.4, -0.4, 2.4], target.dtype, "weighted step 0: i")
    for _ in range(2):
        v, state = li_step(spikes, state, weights, backend=target.backend)
    assert_matches(target.numpy(v), [1.461, -0.2435, 1.461], target.dtype, "weighted step 2: v")


def test_known_values_instant_time_constants(target: Target) -> None:
    xs = np.random.default_rng(1).normal(size=(20, 4))
    p = LIParameters(tau_syn_inv=1000.0, tau_mem_inv=1000.0)
    vs, states = li_scan(target.array(xs), p=p, backend=target.backend, record_states=True)
    assert_matches(target.numpy(vs), target.numpy(target.array(xs)), target.dtype, "tau_inv = 1/dt: v equals input")
    assert_matches(target.numpy(states.i), np.zeros_like(xs), target.dtype, "tau_inv = 1/dt: i stays 0")


EXACT_DT = (1e-3, 2.5e-4, 1.5e-3)


def _exact_case() -> tuple[np.ndarray, LIState, LIParameters]:
    """Inputs ``[12, 2, 3]``, a state and per-neuron parameters with
    ``v_leak != 0``, every number exact in bfloat16 (so no dtype rounds them)."""
    xs = np.random.default_rng(30).choice([-1.0, -0.5, 0.0, 0.25, 1.0, 2.0], size=(12, 2, 3))
    state = LIState(np.array([[0.0, 1.0, -0.5], [0.5, -0.25, 2.0]]), np.array([[0.25, 0.0, -2.0], [1.0, 0.5, 0.0]]))
    p = LIParameters(np.array([200.0, 48.0, 500.0]), np.array([100.0, 384.0, 40.0]), np.array([0.5, -0.25, 1.5]))
    return xs, state, p


def test_exact_values_per_neuron_at_several_dt(target: Target) -> None:
    """The scan and both steps against values derived with exact fractions
    (:mod:`li_core.testing.exact`), with per-neuron parameters, a leak
    potential and three ``dt``: this checks the float64 reference as well."""
    xs, state, p = _exact_case()
    given_xs = target.array(xs)
    given_state = LIState(target.array(state.v), target.array(state.i))
    given_p = LIParameters(*(target.array(q) for q in p))
    identity = target.array(np.eye(3))
    for dt in EXACT_DT:
        want_v, want_i = exact_scan(xs, state, p, dt)
        vs, states = li_scan(given_xs, given_state, None, given_p, dt, backend=target.backend, record_states=True)
        assert_matches(target.numpy(vs), want_v, target.dtype, f"dt={dt}: scan voltages")
        assert_matches(target.numpy(states.i), want_i, target.dtype, f"dt={dt}: scan currents")
        fed, weighted = given_state, given_state
        for t in range(3):
            v, fed = li_feed_forward_step(given_xs[t, ...], fed, given_p, dt, backend=target.backend)
            assert_matches(target.numpy(v), want_v[t], target.dtype, f"dt={dt}: feed-forward step {t}: v")
            assert_matches(target.numpy(fed.i), want_i[t], target.dtype, f"dt={dt}: feed-forward step {t}: i")
            v, weighted = li_step(given_xs[t, ...], weighted, identity, given_p, dt, backend=target.backend)
            assert_matches(target.numpy(v), want_v[t], target.dtype, f"dt={dt}: weighted step {t}: v")
            assert_matches(target.numpy(weighted.i), want_i[t], target.dtype, f"dt={dt}: weighted step {t}: i")


# --- against the float64 reference -------------------------------------------


def test_scan_matches_reference(target: Target) -> None:
    check_scan(target, random_case(1000, (3,), 37, seed=2), "1000-step scan, per-neuron parameters")


def test_weighted_scan_matches_reference(target: Target) -> None:
    check_scan(target, random_case(1000, (2,), 7, inputs=5, seed=3, dt=5e-4), "1000-step weighted scan, dt=5e-4")


def test_slow_neurons_match_reference(target: Target) -> None:
    """``dt*tau_inv`` from 1 down to 1e-4 per neuron, both time constants, in
    one call over 2/(dt*tau_inv) steps of the slowest (in half precision down
    to 1e-2, where the format can resolve the decay at all): the decays
    ``1 - dt*tau_inv`` are rounded near 1, so a recurrence written with them
    drifts in float32."""
    slowest = 1e-2 if target.dtype in HALF else 1e-4
    check_scan(target, slow_case(slowest), f"slow neurons, dt*tau_inv down to {slowest:g}")


def test_half_precision_is_computed_in_float32(target: Target) -> None:
    """Half-precision inputs are computed in at least float32: with
    ``dt*tau_inv`` down to 1e-3 a recurrence carried in half precision stalls
    (each increment is below half a unit in the last place of ``v``), one
    carried in float32 only rounds its outputs."""
    if target.dtype not in HALF:
        pytest.skip(f"{target.dtype} is computed in itself; only half-precision dtypes are widened")
    check_scan(target, slow_case(1e-3), "half precision with dt*tau_inv down to 1e-3")


def test_steps_match_reference(target: Target) -> None:
    for inputs in (None, 6):
        check_step(target, random_case(1, (4,), 9, inputs=inputs, seed=4, dt=2e-3), "dt=2e-3")


def test_scan_equals_loop_of_steps(target: Target) -> None:
    for inputs in (None, 5):
        case = target.case(random_case(40, (2,), 6, inputs=inputs, seed=5, dt=1e-4))
        vs, final = run_scan(target, case)
        state = case.state
        for t in range(40):
            if inputs is None:
                v, state = li_feed_forward_step(case.xs[t, ...], state, case.p, case.dt, backend=target.backend)
            else:
                v, state = li_step(case.xs[t, ...], state, case.weights, case.p, case.dt, backend=target.backend)
            assert_matches(target.numpy(vs[t, ...]), target.numpy(v), target.dtype, f"scan vs step loop at t={t}")
        assert_matches(target.numpy(final.i), target.numpy(state.i), target.dtype, "scan vs step loop: final i")


def test_split_scan_carries_state(target: Target) -> None:
    case = target.case(random_case(60, (2,), 8, seed=6))
    whole, whole_state = run_scan(target, case)
    first, middle = run_scan(target, case._replace(xs=case.xs[:25, ...]))
    second, last = run_scan(target, case._replace(xs=case.xs[25:, ...], state=middle))
    assert_matches(target.numpy(first), target.numpy(whole[:25, ...]), target.dtype, "split scan: first part")
    assert_matches(target.numpy(second), target.numpy(whole[25:, ...]), target.dtype, "split scan: second part")
    assert_matches(target.numpy(last.v), target.numpy(whole_state.v), target.dtype, "split scan: final v")
    assert_matches(target.numpy(last.i), target.numpy(whole_state.i), target.dtype, "split scan: final i")


def test_record_states(target: Target) -> None:
    case = random_case(50, (2,), 5, inputs=3, seed=7)
    vs, states = run_scan(target, target.case(case), record_states=True)
    _, final = run_scan(target, target.case(case))
    expected_vs, expected = reference_scan(target.rounded(case), record_states=True)
    assert tuple(states.v.shape) == tuple(states.i.shape) == (50, 2, 5), f"recorded shapes {states.v.shape}"
    assert_matches(target.numpy(states.v), expected_vs, target.dtype, "record_states: v sequence")
    assert_matches(target.numpy(states.i), expected.i, target.dtype, "record_states: i sequence")
    assert_matches(target.numpy(states.v[-1, ...]), target.numpy(final.v), target.dtype, "record_states: last v row")
    assert_matches(target.numpy(states.i[-1, ...]), target.numpy(final.i), target.dtype, "record_states: last i row")
    np.testing.assert_array_equal(
        target.numpy(states.v), target.numpy(vs), err_msg="record_states: v differs from output"
    )


def test_state_none_is_leak_and_zero_current(target: Target) -> None:
    case = target.case(random_case(30, (2,), 6, inputs=4, seed=8))
    v_start = target.numpy(case.p.v_leak) * np.ones((2, 6))
    explicit = LIState(target.array(v_start), target.array(np.zeros((2, 6))))
    for record in (False, True):
        got = run_scan(target, case, at_rest=True, record_states=record)
        want = run_scan(target, case._replace(state=explicit), record_states=record)
        for a, b, what in ((got[0], want[0], "voltages"), (got[1].v, want[1].v, "v"), (got[1].i, want[1].i, "i")):
            assert_matches(target.numpy(a), target.numpy(b), target.dtype, f"scan state=None: {what}")
    step_none = li_step(case.xs[0, ...], None, case.weights, case.p, case.dt, backend=target.backend)
    step_explicit = li_step(case.xs[0, ...], explicit, case.weights, case.p, case.dt, backend=target.backend)
    assert_matches(target.numpy(step_none[0]), target.numpy(step_explicit[0]), target.dtype, "step state=None: v")
    assert_matches(target.numpy(step_none[1].i), target.numpy(step_explicit[1].i), target.dtype, "step state=None: i")
    x = target.array(np.ones((2, 6)))
    ff_none = li_feed_forward_step(x, None, case.p, case.dt, backend=target.backend)
    ff_explicit = li_feed_forward_step(x, explicit, case.p, case.dt, backend=target.backend)
    assert_matches(target.numpy(ff_none[1].i), target.numpy(ff_explicit[1].i), target.dtype, "ff step state=None")
    assert_matches(target.numpy(ff_none[0]), target.numpy(ff_explicit[0]), target.dtype, "ff step state=None: v")


def test_zero_steps_return_initial_state(target: Target) -> None:
    case = target.case(random_case(0, (2,), 5, inputs=3, seed=9))
    vs, state = run_scan(target, case)
    assert tuple(vs.shape) == (0, 2, 5), f"T=0 voltages have shape {tuple(vs.shape)}"
    assert_matches(target.numpy(state.v), target.numpy(case.state.v), target.dtype, "T=0: v")
    assert_matches(target.numpy(state.i), target.numpy(case.state.i), target.dtype, "T=0: i")
    for at_rest in (False, True):
        vs, states = run_scan(target, case, at_rest=at_rest, record_states=True)
        assert tuple(vs.shape) == tuple(states.v.shape) == tuple(states.i.shape) == (0, 2, 5), (
            f"T=0 record_states{' state=None' if at_rest else ''}: shapes {tuple(states.v.shape)}"
        )
    _, fresh = run_scan(target, case, at_rest=True)
    assert_matches(
        target.numpy(fresh.v), np.broadcast_to(target.numpy(case.p.v_leak), (2, 5)), target.dtype, "T=0 None: v"
    )
    assert_matches(target.numpy(fresh.i), np.zeros((2, 5)), target.dtype, "T=0 None: i")


def test_parameters_and_state_broadcast(target: Target) -> None:
    base = random_case(30, (3, 2), 4, seed=10)
    rng = np.random.default_rng(11)
    variants = {
        "scalar parameters": base._replace(p=LIParameters(150.0, 90.0, -0.5)),
        "per-neuron [N]": base,
        "per-row [2, 1]": base._replace(
            p=LIParameters(rng.uniform(50, 400, (2, 1)), rng.uniform(50, 400, (2, 1)), 0.1)
        ),
        "full [3, 2, N]": base._replace(p=LIParameters(*(rng.uniform(50, 400, (3, 2, 4)) for _ in range(3)))),
        "state [N]": base._replace(state=LIState(rng.normal(size=4), rng.normal(size=4))),
        "mixed float and array": base._replace(p=base.p._replace(tau_syn_inv=300.0)),
    }
    spikes = rng.normal(size=(1, 3, 2, 5))
    weights = rng.normal(0.0, 0.5, size=(4, 5))
    for what, case in variants.items():
        check_scan(target, case, f"broadcasting, {what}")
        check_step(target, case, f"broadcasting, {what}")
        check_step(target, case._replace(xs=spikes, weights=weights), f"broadcasting, {what}")


def _scalar_leak_cases() -> dict[str, Case]:
    """Per-neuron rates beside a scalar ``v_leak``: the default 0.0, which a
    backend may run as a scan without a leak term, and a nonzero float; and
    each rate alone per neuron."""
    base = random_case(40, (2,), 9, seed=24)
    syn, mem = base.p.tau_syn_inv, base.p.tau_mem_inv
    return {
        "per-neuron rates, v_leak = 0.0": base._replace(p=LIParameters(syn, mem, 0.0)),
        "per-neuron rates, v_leak = -0.5": base._replace(p=LIParameters(syn, mem, -0.5)),
        "per-neuron tau_mem_inv, v_leak = 0.0": base._replace(p=LIParameters(tau_mem_inv=mem)),
        "per-neuron tau_syn_inv, v_leak = 0.0": base._replace(p=LIParameters(tau_syn_inv=syn)),
    }


def test_per_neuron_rates_with_a_scalar_leak(target: Target) -> None:
    """Every neuron's own rates are used where ``v_leak`` is a number (a
    path of its own in a backend that skips the leak term)."""
    for what, case in _scalar_leak_cases().items():
        check_scan(target, case, what)
        check_step(target, case, what)


def test_per_neuron_rates_with_a_scalar_leak_gradients(target: Target) -> None:
    """The gradients of the first of those cases, ``v_leak`` a 0-d array of 0."""
    case = _scalar_leak_cases()["per-neuron rates, v_leak = 0.0"]
    check_gradients(target, case._replace(p=case.p._replace(v_leak=np.array(0.0))), "per-neuron rates, v_leak = 0")


def test_non_contiguous_inputs(target: Target) -> None:
    case = random_case(40, (3,), 6, inputs=8, seed=12)
    xp = array_api_compat.array_namespace(target.array(np.zeros(1)))
    wide = np.random.default_rng(13).normal(size=(80, 3, 16))
    strided = target.array(wide)[::2, :, ::2]  # [40, 3, 8], strided in time and neurons
    reversed_axes = np.ascontiguousarray(np.transpose(wide[::2, :, ::2], (2, 1, 0)))
    transposed = xp.permute_dims(target.array(reversed_axes), (2, 1, 0))  # [40, 3, 8], axes permuted
    given = target.case(case)
    assert case.weights is not None
    weights_t = xp.permute_dims(target.array(np.ascontiguousarray(case.weights.T)), (1, 0))
    for xs, what in ((strided, "strided"), (transposed, "transposed")):
        contiguous = target.array(target.numpy(xs))
        a = li_scan(xs, given.state, weights_t, given.p, case.dt, backend=target.backend)
        b = li_scan(contiguous, given.state, given.weights, given.p, case.dt, backend=target.backend)
        assert_matches(target.numpy(a[0]), target.numpy(b[0]), target.dtype, f"{what} inputs and weights")
        c = li_feed_forward_step(xs[0, :, :6], given.state, given.p, case.dt, backend=target.backend)
        d = li_feed_forward_step(contiguous[0, :, :6], given.state, given.p, case.dt, backend=target.backend)
        assert_matches(target.numpy(c[0]), target.numpy(d[0]), target.dtype, f"{what} step input")


# --- no mutation, no aliasing, result kind -----------------------------------


def _snapshot(target: Target, case: Case) -> list[np.ndarray]:
    arrays = [case.xs, case.state.v, case.state.i, *(v for v in case.p if not isinstance(v, float))]
    if case.weights is not None:
        arrays.append(case.weights)
    return [target.numpy(a).copy() for a in arrays]


def test_inputs_are_not_mutated(target: Target) -> None:
    case = target.case(random_case(20, (2,), 5, inputs=4, seed=14))
    before = _snapshot(target, case)
    run_scan(target, case)
    run_scan(target, case, record_states=True)
    li_step(case.xs[0, ...], case.state, case.weights, case.p, case.dt, backend=target.backend)
    ff = case._replace(xs=target.array(np.ones((3, 2, 5))), weights=None)
    before_ff = _snapshot(target, ff)
    li_feed_forward_step(ff.xs[0, ...], ff.state, ff.p, ff.dt, backend=target.backend)
    run_scan(target, ff)
    for old, new in zip(before + before_ff, _snapshot(target, case) + _snapshot(target, ff)):
        np.testing.assert_array_equal(new, old, err_msg="an input was modified")


def test_outputs_do_not_alias(target: Target) -> None:
    """Writing any returned array changes no other returned array and no
    input, for all three functions."""
    case = target.case(random_case(5, (2,), 3, inputs=4, seed=15))
    probe = target.array(np.zeros(3))
    if not mutable(target, probe):
        pytest.skip(f"{library_name(probe)} arrays are immutable, so aliasing cannot be observed")
    current = target.array(np.random.default_rng(15).normal(size=(2, 3)))
    b, xs, st, w, p, dt = target.backend, case.xs, case.state, case.weights, case.p, case.dt
    results = {
        "weighted step": li_step(xs[0, ...], st, w, p, dt, backend=b),
        "weighted step, state=None": li_step(xs[0, ...], None, w, p, dt, backend=b),
        "feed-forward step": li_feed_forward_step(current, st, p, dt, backend=b),
        "feed-forward step, state=None": li_feed_forward_step(current, None, p, dt, backend=b),
        "scan": run_scan(target, case),
        "scan record_states": run_scan(target, case, record_states=True),
        "scan state=None": run_scan(target, case, at_rest=True),
        "scan T=0": run_scan(target, case._replace(xs=xs[:0, ...])),
    }
    inputs = [*_snapshot(target, case), target.numpy(current).copy()]

    def inputs_now() -> list[np.ndarray]:
        return [*_snapshot(target, case), target.numpy(current)]

    for what, (v, state) in results.items():
        outputs = {"voltages": v, "state.v": state.v, "state.i": state.i}
        before = {name: target.numpy(a).copy() for name, a in outputs.items()}
        for name, array in outputs.items():
            if array.shape[0] == 0:
                continue
            array[...] = 12345.0
            for other, other_array in outputs.items():
                if other != name:
                    np.testing.assert_array_equal(
                        target.numpy(other_array), before[other], err_msg=f"{what}: writing {name} changed {other}"
                    )
            for old, new in zip(inputs, inputs_now()):
                np.testing.assert_array_equal(new, old, err_msg=f"{what}: writing {name} changed an input")
            before[name] = target.numpy(array).copy()


def test_results_keep_library_dtype_and_device(target: Target) -> None:
    """Every result is an array of the input's library, dtype and device, in
    every call shape: array or Python-float parameters, ``state=None``,
    ``T = 0``, recorded states."""
    case = target.case(random_case(4, (2,), 3, inputs=5, seed=16))
    b, xs, st, w, p, dt = target.backend, case.xs, case.state, case.weights, case.p, case.dt
    floats = LIParameters(0.2 / dt, 0.1 / dt, 0.25)
    current = xs[0, ..., :3]
    calls = {
        "li_step, array parameters": lambda: li_step(xs[0, ...], st, w, p, dt, backend=b),
        "li_step, Python-float parameters, state=None": lambda: li_step(xs[0, ...], None, w, floats, dt, backend=b),
        "li_feed_forward_step, array parameters, state=None": lambda: li_feed_forward_step(
            current, None, p, dt, backend=b
        ),
        "li_feed_forward_step, Python-float parameters": lambda: li_feed_forward_step(
            current, st, floats, dt, backend=b
        ),
        "li_scan, array parameters": lambda: li_scan(xs, st, w, p, dt, backend=b),
        "li_scan, record_states": lambda: li_scan(xs, st, w, p, dt, backend=b, record_states=True),
        "li_scan, Python-float parameters, state=None": lambda: li_scan(xs, None, w, floats, dt, backend=b),
        "li_scan, all defaults": lambda: li_scan(xs, backend=b),
        "li_scan, T=0": lambda: li_scan(xs[:0, ...], st, w, p, dt, backend=b),
        "li_scan, T=0, Python-float parameters, state=None": lambda: li_scan(
            xs[:0, ...], None, w, floats, dt, backend=b
        ),
        "li_scan, T=0, record_states": lambda: li_scan(xs[:0, ...], st, w, p, dt, backend=b, record_states=True),
    }
    expected_device = _device(xs)
    problems = []
    for what, call in calls.items():
        v, state = call()
        for name, out in (("voltages", v), ("state.v", state.v), ("state.i", state.i)):
            if not b.handles(out):
                problems.append(f"{what}: {name} is {type(out)}, not an array of the backend's library")
            elif dtype_name(out.dtype) != target.dtype:
                problems.append(f"{what}: {name} has dtype {dtype_name(out.dtype)}, expected {target.dtype}")
            elif _device(out) != expected_device:
                problems.append(f"{what}: {name} is on device {_device(out)}, the input on {expected_device}")
    assert not problems, "results of the wrong kind:\n" + "\n".join(problems)


def _device(x):
    return str(array_api_compat.device(x))


def test_large_population(target: Target) -> None:
    check_scan(target, random_case(12, (1,), 70_001, seed=17), "70,001 neurons")
    case = random_case(1, (), 70_001, seed=18)
    given, rounded = target.case(case), target.rounded(case)
    v, state = li_feed_forward_step(given.xs[0, ...], given.state, given.p, case.dt, backend=target.backend)
    expected_v, expected = ref.feed_forward_step(rounded.xs[0, ...], rounded.state, rounded.p, case.dt)
    assert_matches(target.numpy(v), expected_v, target.dtype, "70,001-neuron step: v")
    assert_matches(target.numpy(state.i), expected.i, target.dtype, "70,001-neuron step: i")


# --- the contract, section 5: bad input --------------------------------------


def _bad_calls(target: Target, case: Case):
    """``(what, expected exception, words the message must contain, call)``
    for a valid weighted ``case`` of 6 steps, batch 2, 3 inputs, 4 neurons."""
    b = target.backend
    other_dtype = "float64" if target.dtype != "float64" else "float32"
    other = Target(b, other_dtype, target.device)
    integers = b.asarray(np.ones((6, 2, 3), dtype=np.int32), device=target.device)
    xs, st, w, p, dt = case.xs, case.state, case.weights, case.p, case.dt
    wrong_state = LIState(target.array(np.zeros((2, 5))), st.i)
    yield "list input", TypeError, ["inputs"], lambda: li_scan([[1.0]], backend=b)
    yield "integer input", TypeError, ["inputs", "int32"], lambda: li_scan(integers, backend=b)
    yield (
        "mixed dtypes",
        TypeError,
        ["state.v", other_dtype],
        lambda: li_scan(xs, LIState(other.array(np.zeros((2, 4))), st.i), w, p, dt, backend=b),
    )
    yield (
        "mixed libraries",
        TypeError,
        ["state.i"],
        lambda: li_scan(xs, LIState(st.v, _foreign(target, (2, 4))), w, p, dt, backend=b),
    )
    yield "state shape", ValueError, ["state.v", "(2, 5)"], lambda: li_scan(xs, wrong_state, w, p, dt, backend=b)
    yield (
        "weights shape",
        ValueError,
        ["input_weights", "(4, 2)"],
        lambda: li_scan(xs, None, target.array(np.ones((4, 2))), p, dt, backend=b),
    )
    yield (
        "weights not 2-d",
        ValueError,
        ["input_weights"],
        lambda: li_scan(xs, None, target.array(np.ones(3)), p, dt, backend=b),
    )
    yield "step without weights", TypeError, ["input_weights"], lambda: li_step(xs[0, ...], None, None, backend=b)
    yield (
        "parameter shape",
        ValueError,
        ["p.tau_mem_inv", "(3,)"],
        lambda: li_scan(xs, None, w, p._replace(tau_mem_inv=target.array(np.ones(3) * 100)), dt, backend=b),
    )
    yield "no time axis", ValueError, ["inputs"], lambda: li_scan(target.array(np.ones(())), backend=b)
    yield "dt zero", ValueError, ["dt", "0.0"], lambda: li_scan(xs, None, w, p, 0.0, backend=b)
    yield "dt nan", ValueError, ["dt", "nan"], lambda: li_scan(xs, None, w, p, float("nan"), backend=b)
    yield (
        "dt negative",
        ValueError,
        ["dt", "-0.001"],
        lambda: li_feed_forward_step(xs[0, :, :], None, dt=-0.001, backend=b),
    )
    yield (
        "parameter inf",
        ValueError,
        ["p.v_leak", "inf"],
        lambda: li_scan(xs, None, w, LIParameters(v_leak=float("inf")), dt, backend=b),
    )
    yield (
        "unknown backend",
        BackendNotFoundError,
        ["no-such-backend", "numpy"],
        lambda: li_scan(xs, backend="no-such-backend"),
    )
    if not b.handles(_foreign(target, (6, 4))):
        yield (
            "backend does not handle the arrays",
            TypeError,
            [b.name],
            lambda: li_scan(_foreign(target, (6, 4)), backend=b),
        )


def _foreign(target: Target, shape: tuple[int, ...]):
    """An array of a library that the target's backend accepts neither as its
    input nor beside it (its companions, e.g. NumPy beside Dask arrays), in
    the target's dtype."""
    x = np.zeros(shape, dtype=np.float32 if target.dtype in ("float16", "bfloat16") else target.dtype)
    probe = target.array(np.zeros(1))
    if library_name(probe) != "numpy" and "numpy" not in target.backend.companions(probe):
        return x
    strict = pytest.importorskip("array_api_strict", reason="needs array-api-strict: pip install array-api-strict")
    return strict.asarray(x)


def test_bad_input_raises_before_any_work(target: Target) -> None:
    failures = []
    case = target.case(random_case(6, (2,), 4, inputs=3, seed=19))
    before = _snapshot(target, case)
    for what, kind, words, call in _bad_calls(target, case):
        try:
            call()
        except kind as exc:
            missing = [word for word in words if word not in str(exc)]
            if missing:
                failures.append(f"{what}: message {str(exc)!r} does not mention {missing}")
        except Exception as exc:  # noqa: BLE001 - any other exception is the reported failure
            failures.append(f"{what}: raised {type(exc).__name__} ({exc}), expected {kind.__name__}")
        else:
            failures.append(f"{what}: no error, expected {kind.__name__}")
    assert not failures, "bad input not rejected as the contract, section 5 requires:\n" + "\n".join(failures)
    for old, new in zip(before, _snapshot(target, case)):
        np.testing.assert_array_equal(new, old, err_msg="a rejected call modified its inputs")


def _on_host(target: Target) -> bool:
    return "cpu" in str(target.device).lower()


@pytest.mark.parametrize(
    "field, index, value",
    [("tau_mem_inv", 2, float("nan")), ("tau_syn_inv", 0, float("-inf")), ("v_leak", 3, float("inf"))],
)
def test_nonfinite_array_parameter_is_refused(target: Target, monkeypatch, field, index, value) -> None:
    """A NaN or inf entry of an array parameter is a ``ValueError`` naming the
    parameter and its index: from the call on host arrays, when computed for
    a chunked (lazy) backend, and for device arrays with ``LI_CHECK_FINITE=1``
    (the opt-in, set here)."""
    if _on_host(target):
        monkeypatch.delenv("LI_CHECK_FINITE", raising=False)
    else:
        monkeypatch.setenv("LI_CHECK_FINITE", "1")
    case = target.case(random_case(6, (2,), 4, inputs=3, seed=23))
    values = np.full(4, {"tau_mem_inv": 100.0, "tau_syn_inv": 200.0, "v_leak": 0.0}[field])
    values[index] = value
    p = case.p._replace(**{field: target.array(values)})
    lazy = bool(target.backend.block_libraries)
    with pytest.raises(ValueError, match=rf"p\.{field} must be finite.* at index {index}") as info:
        voltages, _ = li_scan(case.xs, case.state, case.weights, p, case.dt, backend=target.backend)
        assert lazy, "the call returned although a parameter is not finite"
        target.numpy(voltages)  # a chunked backend checks when computing
    assert repr(value) in str(info.value)


# --- gradients, for backends that declare autograd ---------------------------


def _gradient_api(target: Target):
    """The target's gradient API; skips the check where there is none."""
    if not target.backend.autograd:
        pytest.skip(f"backend {target.backend.name!r} does not declare autograd")
    if target.dtype in HALF:
        pytest.skip("gradients are checked in float32 and float64")
    api = gradient_api(target.array(np.zeros(1)))
    if api is None:
        pytest.skip("the suite knows no gradient API for this library (torch and jax are supported)")
    return api


def check_gradients(target: Target, case: Case, what: str, expected_gradients=reference_gradients) -> None:
    """Gradients of ``sum(seed * vs) + sum(final_seed * i_final)`` through the
    target's scan, against the float64 ``expected_gradients`` (the adjoint of
    the reference) on the same (rounded) numbers, at the tolerance of the
    target's dtype."""
    api = _gradient_api(target)
    rng = np.random.default_rng(21)
    neurons = tuple(case.state.v.shape)
    seed = target.array(rng.normal(size=(case.xs.shape[0], *neurons)))
    final_seed = target.array(rng.normal(size=neurons))
    given = target.case(case)
    names = [name for name in GRADIENT_NAMES if name != "input_weights" or case.weights is not None]

    def loss(xs, *rest):
        weights, (v0, i0, tau_syn_inv, tau_mem_inv, v_leak) = (rest[0], rest[1:]) if len(rest) == 6 else (None, rest)
        p = LIParameters(tau_syn_inv, tau_mem_inv, v_leak)
        vs, state = li_scan(xs, LIState(v0, i0), weights, p, case.dt, backend=target.backend)
        return (vs * seed).sum() + (state.i * final_seed).sum()

    weights = () if given.weights is None else (given.weights,)
    got = api(loss, (given.xs, *weights, given.state.v, given.state.i, *given.p))
    want = expected_gradients(target.rounded(case), target.numpy(seed), target.numpy(final_seed))
    for name, gradient in zip(names, got):
        assert_matches(target.numpy(gradient), want[name], target.dtype, f"{what}: gradient w.r.t. {name}")


def test_gradients_match_reference(target: Target) -> None:
    check_gradients(target, random_case(30, (2,), 4, inputs=3, seed=20), "30-step weighted scan")


def test_slow_neuron_gradients_match_reference(target: Target) -> None:
    check_gradients(target, slow_case(1e-4), "slow neurons, dt*tau_inv down to 1e-4")


# --- long runs of slow neurons: absorption -----------------------------------


def long_run(target: Target, name: str) -> tuple[str, Case, bool]:
    """The target's long run ``name`` (shorter where the backend steps in
    Python): what it is, its case and whether it is the full-length one.
    Half precision is held to the slow neurons above, down to 1e-2, where it
    can resolve the decay at all."""
    if target.dtype in HALF:
        pytest.skip(f"{target.dtype} cannot resolve rates below 1e-2 (checked above, down to 1e-2)")
    slowest, steps, full = run_length(name, target.backend.name)
    return f"{name}: dt*tau_inv down to {slowest:g} over {steps:,} steps", ladder_case(slowest, steps), full


@functools.lru_cache(maxsize=2)
def _long_expected(slowest: float, steps: int, dtype: str) -> tuple[np.ndarray, LIState]:
    """The float64 result of a long run rounded to ``dtype`` (kept: every
    backend of a ``li check`` run compares with it)."""
    rounded = convert(ladder_case(slowest, steps), lambda a: np.asarray(a, dtype=dtype).astype(np.float64))
    return long_scan(rounded)


@pytest.mark.parametrize("run", list(RUNS))
def test_long_runs_of_slow_neurons_match_reference(target: Target, run: str) -> None:
    """``dt*tau_inv`` from 1 down to 1e-6 per neuron over 10^6 steps, and
    down to 1e-9 over 100,000: a step changes a slow neuron's ``v`` by less
    than half a unit in its last place in float32, so a plain float32
    recurrence rounds the changes away and drifts; one that carries its
    rounding error keeps the tolerance. Backends that step in Python run
    shorter cases (:data:`li_core.testing.long_runs.RUNS`)."""
    what, case, _ = long_run(target, run)
    slowest, steps, _ = run_length(run, target.backend.name)
    check_scan(target, case, what, lambda _: _long_expected(slowest, steps, target.dtype))


@pytest.mark.parametrize("run", list(RUNS))
def test_long_run_gradients_match_reference(target: Target, run: str) -> None:
    """The gradients (inputs, state, parameters) of a loss over every step of
    the long runs above, against the float64 adjoint."""
    _gradient_api(target)  # (skips before the case is made)
    what, case, full = long_run(target, run)
    check_gradients(target, case, what, long_gradients if full else reference_gradients)
