"""The contract (docs/contract.md), section 5: details that the per-backend suite does not reach: argument
kinds the core rejects whatever the backend, and the core's defaults."""

import warnings

import numpy as np
import pytest

from li_core import LIParameters, LIState, UnstableStepWarning, li_feed_forward_step, li_scan, li_step

X = np.ones((4, 3), dtype=np.float32)


@pytest.mark.parametrize(
    "kwargs, kind, words",
    [
        ({"p": (200.0, 100.0)}, TypeError, ["p must be an LIParameters", "tuple"]),
        ({"p": LIParameters(tau_mem_inv="fast")}, TypeError, ["p.tau_mem_inv", "str"]),
        ({"p": LIParameters(tau_syn_inv=float("nan"))}, ValueError, ["p.tau_syn_inv", "nan"]),
        ({"p": LIParameters(v_leak=np.zeros(3, dtype=np.float64))}, TypeError, ["p.v_leak", "float64", "float32"]),
        ({"p": LIParameters(v_leak=np.zeros(3, dtype=np.int64))}, TypeError, ["p.v_leak", "int64"]),
        ({"state": np.zeros(3, dtype=np.float32)}, TypeError, ["state must be an LIState"]),
        ({"state": LIState(np.zeros(3, dtype=np.float32), [0.0, 0.0, 0.0])}, TypeError, ["state.i", "list"]),
        ({"dt": "1ms"}, TypeError, ["dt", "str"]),
        ({"dt": float("inf")}, ValueError, ["dt", "inf"]),
        ({"dt": True}, TypeError, ["dt"]),
        ({"record_states": 1}, TypeError, ["record_states"]),
        ({"backend": 3}, TypeError, ["backend must be a backend name"]),
    ],
)
def test_bad_arguments_name_themselves(kwargs, kind, words):
    with pytest.raises(kind) as info:
        li_scan(X, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_integer_parameters_and_dt_are_accepted_as_floats():
    a = li_scan(X, p=LIParameters(2, 1, 0), dt=1)[0]
    b = li_scan(X, p=LIParameters(2.0, 1.0, 0.0), dt=1.0)[0]
    np.testing.assert_array_equal(a, b)


def test_parameters_from_any_named_record_are_accepted():
    from collections import namedtuple

    Norse = namedtuple("Norse", "tau_syn_inv tau_mem_inv v_leak")
    a = li_scan(X, p=Norse(300.0, 50.0, 0.5))[0]
    b = li_scan(X, p=LIParameters(300.0, 50.0, 0.5))[0]
    np.testing.assert_array_equal(a, b)


def test_state_none_gives_v_leak_and_zero_in_the_input_dtype():
    p = LIParameters(v_leak=np.array([0.5, -1.0, 2.0], dtype=np.float32))
    vs, state = li_scan(X[:0], None, p=p)
    assert vs.shape == (0, 3) and vs.dtype == np.float32
    np.testing.assert_array_equal(state.v, [0.5, -1.0, 2.0])
    np.testing.assert_array_equal(state.i, [0.0, 0.0, 0.0])
    assert state.v.dtype == state.i.dtype == np.float32


def test_arrays_on_different_devices_are_rejected():
    torch = pytest.importorskip("torch")
    x = torch.ones(2, 3)
    state = LIState(torch.zeros(3, device="meta"), torch.zeros(3))
    with pytest.raises(ValueError, match=r"state.v is on device meta but input_tensor is on device cpu"):
        li_feed_forward_step(x, state, backend="array_api")


def test_weights_with_zero_dimensional_input_are_rejected():
    with pytest.raises(ValueError, match=r"input_weights of shape \(2, 3\).*shape \(\)"):
        li_step(np.float32(1.0) * np.ones((), dtype=np.float32), None, np.ones((2, 3), dtype=np.float32))


@pytest.mark.parametrize(
    "state, weights, p",
    [
        (None, None, LIParameters()),
        (LIState(np.ma.masked_array(np.zeros(3, np.float32)), np.zeros(3, np.float32)), None, LIParameters()),
        (None, None, LIParameters(tau_mem_inv=np.ma.masked_array(np.ones(3, np.float32)))),
    ],
    ids=["inputs", "state.v", "p.tau_mem_inv"],
)
def test_masked_arrays_are_refused_with_the_fix(request, state, weights, p):
    """A masked array would be scanned with its mask dropped: refused, naming the argument."""
    name = request.node.callspec.id
    xs = np.ma.masked_array(X, mask=X > 0) if name == "inputs" else X
    with pytest.raises(TypeError) as info:
        li_scan(xs, state, weights, p)
    assert f"{name} is a numpy masked array" in str(info.value)
    assert ".filled(" in str(info.value)


def _unstable_warnings(call) -> list:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, UnstableStepWarning)]


@pytest.mark.parametrize(
    "p, product",
    [
        (LIParameters(tau_mem_inv=2500.0), "dt*tau_mem_inv = 2.5"),
        (LIParameters(tau_syn_inv=np.array([100.0, 3000.0, 200.0], np.float32)), "dt*tau_syn_inv = 3"),
    ],
)
def test_unstable_euler_warns_naming_the_product_at_the_callers_line(p, product):
    for function in (
        lambda: li_scan(X, p=p),
        lambda: li_feed_forward_step(X[0], None, p),
        lambda: li_step(X[0], None, np.eye(3, dtype=np.float32), p),
    ):
        caught = _unstable_warnings(function)
        assert len(caught) == 1
        assert product in str(caught[0].message)
        assert caught[0].filename == __file__  # points at the user's call, not into li_core


def test_unstable_warning_is_shown_once_per_call_site():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own default: once per location
        for _ in range(5):
            li_scan(X, p=LIParameters(tau_mem_inv=5000.0))
    assert len([w for w in caught if issubclass(w.category, UnstableStepWarning)]) == 1


@pytest.mark.parametrize("tau_inv", [1000.0, 2000.0])
def test_stable_limit_and_known_value_do_not_warn(tau_inv):
    """dt*tau_inv = 1 is a known value of the model and 2 is the stability limit itself."""
    assert _unstable_warnings(lambda: li_scan(X, p=LIParameters(tau_inv, tau_inv))) == []
