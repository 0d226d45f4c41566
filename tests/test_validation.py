"""The contract (docs/contract.md), section 5: details that the per-backend suite does not reach: argument
kinds the core rejects whatever the backend, and the core's defaults."""

import re
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


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("tau_inv, warns", [(4.0, False), (np.nextafter(4.0, 5.0), True)])
def test_unstable_limit_for_array_parameters(library, tau_inv, warns):
    """Array parameters take their own branch (the largest entry): exactly
    dt*tau_inv = 2 is the limit itself and does not warn, just above it does."""
    values = np.array([1.0, tau_inv, 2.0])
    xs = np.ones((3, 3))
    if library == "torch":
        torch = pytest.importorskip("torch")
        values, xs = torch.from_numpy(values), torch.from_numpy(xs)
    stable = values * 0 + 1  # dt*tau_inv = 0.5 for the other time constant
    for field in ("tau_mem_inv", "tau_syn_inv"):
        p = LIParameters(stable, stable)._replace(**{field: values})
        caught = _unstable_warnings(lambda p=p: li_scan(xs, p=p, dt=0.5))
        assert len(caught) == warns, (field, [str(w.message) for w in caught])


# -- non-finite array parameters -------------------------------------------------------------------


@pytest.mark.parametrize("field", ["tau_mem_inv", "tau_syn_inv", "v_leak"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_nonfinite_numpy_parameter_is_refused_naming_it_and_its_index(field, bad):
    values = np.full((2, 3), 100.0, dtype=np.float32)
    values[1, 2] = bad
    state = LIState(np.zeros(3, np.float32), np.zeros(3, np.float32))
    p = LIParameters()._replace(**{field: values})
    xs = np.ones((4, 2, 3), dtype=np.float32)
    before = [xs.copy(), values.copy(), state.v.copy()]
    for call in (lambda: li_scan(xs, state, None, p), lambda: li_feed_forward_step(xs[0], None, p)):
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == f"p.{field} must be finite, got {bad!r} at index (1, 2)"
    for old, new in zip(before, [xs, values, state.v]):
        np.testing.assert_array_equal(new, old)  # nothing was changed


def test_a_nonfinite_torch_parameter_is_refused_also_when_it_requires_grad():
    torch = pytest.importorskip("torch")
    v_leak = torch.tensor([0.0, 0.0, float("nan"), 0.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"^p\.v_leak must be finite, got nan at index 2$"):
        li_scan(torch.ones(5, 4), p=LIParameters(v_leak=v_leak))


def test_a_parameter_whose_sum_overflows_is_finite():
    """The check sums first; a sum that overflows (float16 here) must not be taken for a non-finite entry."""
    tau = np.full(8, 60000.0, dtype=np.float16)  # finite; their float16 sum is inf
    assert not np.isfinite(tau.sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnstableStepWarning)
        voltages, _ = li_scan(np.zeros((2, 8), np.float16), p=LIParameters(tau_mem_inv=tau), dt=1e-5)
    assert voltages.shape == (2, 8)


def test_device_arrays_are_checked_only_on_request(monkeypatch):
    """Which arrays are on the host is read from the device of any library;
    a device array (a CUDA torch tensor, where there is one) passes
    unchecked unless LI_CHECK_FINITE=1."""
    from li_core.validation import _on_host

    assert _on_host("cpu") and _on_host(type("Device", (), {"type": "cpu"})())
    assert _on_host(type("JaxDevice", (), {"platform": "cpu"})())
    assert not _on_host("cuda:0") and not _on_host(type("Device", (), {"type": "cuda"})())
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device for torch: the opt-in on device arrays is not exercised here")
    p = LIParameters(v_leak=torch.tensor([0.0, float("inf")], device="cuda"))
    xs = torch.ones(3, 2, device="cuda")
    monkeypatch.delenv("LI_CHECK_FINITE", raising=False)
    voltages, _ = li_scan(xs, p=p)
    assert not torch.isfinite(voltages[:, 1]).any() and torch.isfinite(voltages[:, 0]).all()
    monkeypatch.setenv("LI_CHECK_FINITE", "1")
    with pytest.raises(ValueError, match=r"p\.v_leak must be finite, got inf at index 1"):
        li_scan(xs, p=p)


@pytest.mark.parametrize("opt_in", [False, True], ids=["default", "LI_CHECK_FINITE=1"])
def test_device_arrays_are_checked_on_request_with_a_stand_in_device(monkeypatch, opt_in):
    """The device branch on any machine: array-api-strict's ``device1`` is
    a device that is not the host (as CUDA memory is). Unchecked by default
    (the scan runs, with a non-finite neuron); with ``LI_CHECK_FINITE=1`` the
    parameter is refused, naming it and the index, before any work."""
    xp = pytest.importorskip("array_api_strict")
    from li_core.registry import get_backend

    device = xp.Device("device1")
    p = LIParameters(v_leak=xp.asarray([0.0, float("inf"), 0.0], device=device))
    xs = xp.ones((4, 3), device=device)
    if opt_in:
        monkeypatch.setenv("LI_CHECK_FINITE", "1")
    else:
        monkeypatch.delenv("LI_CHECK_FINITE", raising=False)
    backend = get_backend("array_api")
    scans = []
    real = backend.scan
    monkeypatch.setattr(type(backend), "scan", staticmethod(lambda *args: scans.append(1) or real(*args)))
    if not opt_in:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # (inf - inf)
            voltages, _ = li_scan(xs, p=p, backend="array_api")
        finite = np.isfinite(np.asarray(xp.asarray(voltages, device=xp.Device("CPU_DEVICE"))))
        assert finite[:, 0].all() and not finite[:, 1].any() and scans == [1]
        return
    with pytest.raises(ValueError, match=r"^p\.v_leak must be finite, got inf at index 1$"):
        li_scan(xs, p=p, backend="array_api")
    assert scans == []


# -- rates outside [0, 2] and floats that do not fit the dtype ------------------------------------


@pytest.mark.parametrize("library", ["float", "numpy", "torch"])
@pytest.mark.parametrize("field", ["tau_mem_inv", "tau_syn_inv"])
def test_a_negative_rate_warns_naming_it_and_the_worst_value(library, field):
    """dt*tau_inv < 0 grows v (or i) each step: |v| reached 8.6e15 without a word."""
    values: object = -5000.0
    xs = np.ones((3, 3))
    if library != "float":
        values = np.array([100.0, -5000.0, -20.0])
    if library == "torch":
        torch = pytest.importorskip("torch")
        values, xs = torch.from_numpy(values), torch.from_numpy(xs)
    caught = _unstable_warnings(lambda: li_scan(xs, p=LIParameters()._replace(**{field: values})))
    assert len(caught) == 1
    assert f"dt*{field} = -5 is negative" in str(caught[0].message)
    assert caught[0].filename == __file__


def test_the_worst_of_a_too_large_and_a_negative_rate_is_named():
    values = np.array([-500.0, 4000.0])  # dt*tau_inv: -0.5 (0.5 outside), 4 (2 outside)
    caught = _unstable_warnings(lambda: li_scan(np.ones((2, 2)), p=LIParameters(tau_mem_inv=values)))
    assert len(caught) == 1 and "dt*tau_mem_inv = 4 exceeds 2" in str(caught[0].message)


def test_a_rate_of_zero_does_not_warn():
    assert _unstable_warnings(lambda: li_scan(X, p=LIParameters(0.0, 0.0))) == []


@pytest.mark.parametrize(
    "dtype, field, value",
    [("float32", "v_leak", 1e39), ("float32", "tau_mem_inv", -1e39), ("float16", "v_leak", 70000.0)],
)
def test_a_python_float_that_does_not_fit_the_dtype_is_refused(dtype, field, value):
    """float32(1e39) is inf: the output would be all NaN."""
    xs = np.ones((3, 2), dtype)
    with pytest.raises(
        ValueError, match=rf"^p\.{field} = {re.escape(repr(value))} does not fit the inputs' dtype {dtype}"
    ):
        li_scan(xs, p=LIParameters()._replace(**{field: value}))
    li_scan(xs.astype(np.float64), p=LIParameters(v_leak=1e39))  # (fits float64)


# -- arrays the core refuses clearly ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_nonfinite_0d_array_parameter_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match=rf"^p\.tau_mem_inv must be finite, got {bad!r}$"):
        li_scan(X, p=LIParameters(tau_mem_inv=np.array(bad, np.float32)))


def test_a_sparse_torch_tensor_is_refused_naming_the_argument():
    torch = pytest.importorskip("torch")
    dense = torch.ones(4, 3)
    sparse = dense.to_sparse()
    with pytest.raises(TypeError, match=r"^inputs is a sparse torch tensor \(layout torch.sparse_coo\)"):
        li_scan(sparse)
    li_scan(dense)  # (a dense one of the same type and dtype passed before: the kinds are remembered)
    with pytest.raises(TypeError, match=r"^inputs is a sparse torch tensor"):
        li_scan(sparse)
    with pytest.raises(TypeError, match=r"^p\.v_leak is a sparse torch tensor.*p\.v_leak\.to_dense\(\)"):
        li_scan(dense, p=LIParameters(v_leak=torch.zeros(3).to_sparse()))


def test_a_big_endian_float_is_refused_with_the_conversion():
    with pytest.raises(
        TypeError, match=r"^inputs has dtype >f4, a float32 in non-native byte order.*astype\('float32'\)"
    ):
        li_scan(X.astype(">f4"))


def test_a_float16_parameter_whose_sum_overflows_prints_no_warning():
    tau = np.full(8, 60000.0, dtype=np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (a RuntimeWarning from the finite check fails)
        warnings.simplefilter("ignore", UnstableStepWarning)
        li_scan(np.zeros((2, 8), np.float16), p=LIParameters(tau_mem_inv=tau), dt=1e-5)


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_weights_without_inputs_give_the_neuron_shape(library):
    """[4, 0] weights on [T, 2, 3, 0] inputs: zero current into [2, 3, 4] neurons."""
    xs, w = np.ones((5, 2, 3, 0), np.float32), np.ones((4, 0), np.float32)
    if library == "torch":
        torch = pytest.importorskip("torch")
        xs, w = torch.from_numpy(xs), torch.from_numpy(w)
    voltages, state = li_scan(xs, None, w)
    assert tuple(voltages.shape) == (5, 2, 3, 4) and tuple(state.v.shape) == (2, 3, 4)
    assert float(abs(voltages).max()) == 0.0


def test_a_nonfinite_dask_parameter_raises_when_computed_also_for_no_steps():
    dask_array = pytest.importorskip("dask.array")
    bad = dask_array.from_array(np.array([100.0, np.nan, 100.0]), chunks=2)
    _, state = li_scan(dask_array.ones((0, 3), chunks=(1, 2)), p=LIParameters(tau_mem_inv=bad))
    with pytest.raises(ValueError, match=r"p\.tau_mem_inv must be finite, got nan at index 1"):
        state.v.compute()
