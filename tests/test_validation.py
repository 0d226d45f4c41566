"""SPEC section 5 details that the per-backend suite does not reach: argument
kinds the core rejects whatever the backend, and the core's defaults."""

import numpy as np
import pytest

from li_core import LIParameters, LIState, li_feed_forward_step, li_scan, li_step

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
    a = li_scan(X, p=LIParameters(200, 100, 0), dt=1)[0]
    b = li_scan(X, p=LIParameters(200.0, 100.0, 0.0), dt=1.0)[0]
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
