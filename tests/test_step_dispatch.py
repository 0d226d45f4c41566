"""The public steps' common case (li_core.validation.plain_call, the cached
explicit backend of li_core.selection, the numpy backend's step): the same
bits as the step written out, and every check of the contract
(docs/contract.md), section 5 still made on a warm path."""

import logging
import warnings

import numpy as np
import pytest

from li_backends.numpy import NumPyBackend
from li_core import (
    BackendUnavailableError,
    LIParameters,
    LIState,
    UnstableStepWarning,
    li_feed_forward_step,
    li_step,
)
from li_core.registry import registry

SHAPE = (8, 16)
DT = 1e-3


def _formula(x, state, p, dt):
    """The numpy backend's step as it stood before its dispatch was shortened:
    ``j = i + x``, ``v' = ((v_leak - v) + j)*a + v`` (``j - v`` without a
    leak), ``i' = j*(-d) + j``, each coefficient an array of the compute
    dtype; float16 computed in float32."""
    dtype = state.v.dtype  # (li_step's projection of float16 spikes is float32)
    compute = np.float32 if dtype == np.float16 else dtype

    def coefficient(value):
        return np.asarray(value, dtype=compute)

    v, i, x = (a.astype(compute) for a in (state.v, state.i, x))
    a = coefficient(dt * p.tau_mem_inv) if isinstance(p.tau_mem_inv, float) else dt * coefficient(p.tau_mem_inv)
    d = coefficient(dt * p.tau_syn_inv) if isinstance(p.tau_syn_inv, float) else dt * coefficient(p.tau_syn_inv)
    j = i + x
    leak = p.v_leak
    v_new = j - v if isinstance(leak, float) and leak == 0.0 else (coefficient(leak) - v) + j
    v_new = v_new * a + v
    i_new = j * -d + j
    return v_new.astype(dtype), i_new.astype(dtype)


def _bits(a):
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def _arrays(rng, dtype, *shape):
    return rng.standard_normal(shape).astype(dtype)


def _parameters(rng, kind, dtype):
    if kind == "default":
        return LIParameters()
    if kind == "floats with a leak":
        return LIParameters(tau_syn_inv=317.0, tau_mem_inv=83.5, v_leak=-0.37)
    return LIParameters(
        *(rng.uniform(low, high, SHAPE[-1]).astype(dtype) for low, high in ((50, 400), (20, 300), (-1, 1)))
    )


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("kind", ["default", "floats with a leak", "per-neuron arrays"])
@pytest.mark.parametrize("backend", ["numpy", None])
def test_the_steps_give_the_bits_of_the_formula(dtype, kind, backend):
    rng = np.random.default_rng(7)
    p = _parameters(rng, kind, dtype)
    for _ in range(3):  # (the first call fills the caches, the next ones take the common case)
        x, spikes = _arrays(rng, dtype, *SHAPE), _arrays(rng, dtype, SHAPE[0], 5)
        w = _arrays(rng, dtype, SHAPE[1], 5)
        state = LIState(_arrays(rng, dtype, *SHAPE), _arrays(rng, dtype, *SHAPE))
        before = (state.v.copy(), state.i.copy())
        for out, projected in (
            (li_feed_forward_step(x, state, p, DT, backend=backend), x),
            (li_step(spikes, state, w, p, DT, backend=backend), NumPyBackend._project(spikes, w)),
        ):
            voltage, new = out
            expected = _formula(projected, state, p, DT)
            for got, want in zip((voltage, new.v, new.i), (expected[0], *expected)):
                assert got.dtype == dtype and got.shape == SHAPE
                np.testing.assert_array_equal(_bits(got), _bits(want))
            assert not np.shares_memory(voltage, new.v)  # the two voltages are distinct arrays
        np.testing.assert_array_equal(state.v, before[0])  # nothing written into the state
        np.testing.assert_array_equal(state.i, before[1])


def _warm():
    """One valid call of each step (the caches of the common case filled)."""
    x = np.ones(SHAPE, np.float32)
    state = LIState(x, x)
    li_feed_forward_step(x, state, backend="numpy")
    li_step(x, state, np.eye(SHAPE[1], dtype=np.float32), backend="numpy")
    return x, state


@pytest.mark.parametrize("backend", ["numpy", None])
@pytest.mark.parametrize(
    "change, kind, message",
    [
        ({"v": np.float64}, TypeError, "state.v has dtype float64 but input_tensor has dtype float32"),
        ({"i": np.float16}, TypeError, "state.i has dtype float16 but input_tensor has dtype float32"),
        ({"v": (3, 16)}, ValueError, r"state.v of shape \(3, 16\) does not fit the neuron shape \(8, 16\)"),
        ({"i": (8, 15)}, ValueError, r"state.i of shape \(8, 15\) does not fit the neuron shape \(8, 16\)"),
        ({"v": "masked"}, TypeError, "state.v is a numpy masked array"),
        ({"i": "list"}, TypeError, "state.i must be an array of a supported array library"),
        ({"p": LIParameters(v_leak=float("nan"))}, ValueError, "p.v_leak must be finite, got nan"),
        ({"p": LIParameters(tau_syn_inv=1e39)}, ValueError, "p.tau_syn_inv = 1e[+]39 does not fit"),
        (
            {"p": LIParameters(tau_mem_inv=np.ones(16))},
            TypeError,
            "p.tau_mem_inv has dtype float64 but input_tensor has dtype float32",
        ),
        ({"dt": 0.0}, ValueError, "dt must be finite and > 0, got 0.0"),
        ({"dt": float("nan")}, ValueError, "dt must be finite and > 0, got nan"),
        ({"dt": "1ms"}, TypeError, "dt must be a Python number"),
    ],
)
def test_a_warm_step_still_refuses_what_the_contract_refuses(backend, change, kind, message):
    x, state = _warm()
    v, i = state
    for field, value in change.items():
        if field in ("v", "i"):
            if value == "masked":
                value = np.ma.masked_array(x)
            elif value == "list":
                value = x.tolist()
            elif isinstance(value, tuple):
                value = np.ones(value, np.float32)
            else:
                value = x.astype(value)
            v, i = (value, i) if field == "v" else (v, value)
    p, dt = change.get("p", LIParameters()), change.get("dt", DT)
    with pytest.raises(kind, match=message):
        li_feed_forward_step(x, LIState(v, i), p, dt, backend=backend)
    with pytest.raises(kind, match=message.replace("input_tensor", "input_spikes")):
        li_step(x, LIState(v, i), np.eye(SHAPE[1], dtype=np.float32), p, dt, backend=backend)


@pytest.mark.parametrize(
    "w, kind, message",
    [
        (np.eye(16, dtype=np.float64), TypeError, "input_weights has dtype float64 but input_spikes has dtype float32"),
        (np.eye(16, 17, dtype=np.float32), ValueError, r"input_weights of shape \(16, 17\) need input_spikes"),
        (np.ones((16,), np.float32), ValueError, r"input_weights must be a 2-d \[out, in\] array, got shape \(16,\)"),
        (
            np.eye(15, 16, dtype=np.float32),
            ValueError,
            r"state.v of shape \(8, 16\) does not fit the neuron shape \(8, 15\)",
        ),
        (None, TypeError, "input_weights must be an"),
    ],
)
def test_a_warm_li_step_still_checks_its_weights(w, kind, message):
    x, state = _warm()
    with pytest.raises(kind, match=message):
        li_step(x, state, w, backend="numpy")


def test_a_float_that_fits_float32_but_not_float16_is_refused_for_float16():
    x, state = _warm()
    p = LIParameters(v_leak=70000.0)
    li_feed_forward_step(x, state, p, backend="numpy")  # (fits float32)
    half = LIState(*(a.astype(np.float16) for a in state))
    li_feed_forward_step(x.astype(np.float16), half, backend="numpy")  # (the float16 kind cached)
    with pytest.raises(ValueError, match=r"p\.v_leak = 70000\.0 does not fit the inputs' dtype float16"):
        li_feed_forward_step(x.astype(np.float16), half, p, backend="numpy")


@pytest.mark.parametrize(
    "p, dt, product",
    [
        (LIParameters(tau_mem_inv=2500.0), DT, "dt*tau_mem_inv = 2.5"),
        (LIParameters(tau_syn_inv=-100.0), DT, "dt*tau_syn_inv = -0.1 is negative"),
        (LIParameters(), 0.012, "dt*tau_syn_inv = 2.4"),
    ],
)
def test_a_warm_step_still_warns_of_an_unstable_step_at_the_callers_line(p, dt, product):
    x, state = _warm()
    for function in (
        lambda: li_feed_forward_step(x, state, p, dt, backend="numpy"),
        lambda: li_step(x, state, np.eye(SHAPE[1], dtype=np.float32), p, dt),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            function()
        caught = [w for w in caught if issubclass(w.category, UnstableStepWarning)]
        assert len(caught) == 1 and product in str(caught[0].message)
        assert caught[0].filename == __file__


def test_a_broadcast_state_and_a_plain_tuple_still_work():
    x, _ = _warm()
    rng = np.random.default_rng(3)
    v, i = _arrays(rng, np.float32, 1, SHAPE[1]), _arrays(rng, np.float32, *SHAPE)
    expected = li_feed_forward_step(x, LIState(np.broadcast_to(v, SHAPE).copy(), i), backend="numpy")
    for state in (LIState(v, i), (np.broadcast_to(v, SHAPE).copy(), i)):
        got = li_feed_forward_step(x, state, backend="numpy")
        np.testing.assert_array_equal(_bits(got[0]), _bits(expected[0]))
        np.testing.assert_array_equal(_bits(got[1].i), _bits(expected[1].i))


def test_a_backend_that_does_not_support_the_dtype_is_refused_when_warm():
    class Float64Only(NumPyBackend):
        name = "float64-only"
        dtypes = ("float64",)

    x, state = _warm()
    chosen = Float64Only()
    li_feed_forward_step(x.astype(np.float64), LIState(*(a.astype(np.float64) for a in state)), backend=chosen)
    with pytest.raises(
        TypeError, match="input_tensor has dtype float32, which backend 'float64-only' does not support"
    ):
        li_feed_forward_step(x, state, backend=chosen)


def test_the_named_backend_is_chosen_again_after_the_registry_is_rebuilt(fresh_registry):
    x, state = _warm()
    fresh_registry.reset()
    fresh_registry._availability["numpy"] = "planted: not installed"
    with pytest.raises(BackendUnavailableError, match="planted: not installed"):
        li_feed_forward_step(x, state, backend="numpy")


def test_a_named_backend_that_does_not_handle_the_input_is_refused_when_warm():
    torch = pytest.importorskip("torch")
    _warm()
    t = torch.ones(SHAPE)
    with pytest.raises(TypeError, match="backend 'numpy' \\(chosen by backend=\\) does not handle input_tensor"):
        li_feed_forward_step(t, LIState(t, t), backend="numpy")


def test_a_warm_step_logs_its_backend(caplog):
    x, state = _warm()
    with caplog.at_level(logging.DEBUG, logger="li_core"):
        li_feed_forward_step(x, state, backend="numpy")
        li_step(x, state, np.eye(SHAPE[1], dtype=np.float32), backend="numpy")
    assert [r.getMessage() for r in caplog.records] == [
        "li_feed_forward_step: backend 'numpy' (backend= argument)",
        "li_step: backend 'numpy' (backend= argument)",
    ]


def test_the_coefficients_follow_dt_the_dtype_and_arrays_changed_in_place():
    rng = np.random.default_rng(11)
    p = LIParameters(tau_syn_inv=150.0, tau_mem_inv=90.0, v_leak=0.25)
    per_neuron = LIParameters(*(rng.uniform(50, 300, SHAPE[-1]).astype(np.float32) for _ in range(3)))
    for dtype, q, dt in [
        ("float32", p, DT),
        ("float32", p, 2 * DT),
        ("float64", p, 2 * DT),
        ("float32", per_neuron, DT),
        ("float32", per_neuron, DT),
    ]:
        if q is per_neuron:
            q.tau_mem_inv[:] = rng.uniform(50, 300, SHAPE[-1])  # (in place, between two calls)
        x = _arrays(rng, dtype, *SHAPE)
        state = LIState(_arrays(rng, dtype, *SHAPE), _arrays(rng, dtype, *SHAPE))
        _, new = li_feed_forward_step(x, state, q, dt, backend="numpy")
        want = _formula(x, state, q, dt)
        np.testing.assert_array_equal(_bits(new.v), _bits(want[0]))
        np.testing.assert_array_equal(_bits(new.i), _bits(want[1]))


def _torch_warm():
    torch = pytest.importorskip("torch")
    x = torch.ones(SHAPE)
    li_feed_forward_step(x, LIState(x, x), backend="torch")
    return torch, x


@pytest.mark.parametrize(
    "field, make, kind, message",
    [
        ("v", lambda t: t.to("meta"), ValueError, "state.v is on device meta but input_tensor is on device cpu"),
        ("i", lambda t: t.to_sparse(), TypeError, "state.i is a sparse torch tensor"),
        ("i", lambda t: t.double(), TypeError, "state.i has dtype float64 but input_tensor has dtype float32"),
        ("v", lambda t: t[:3], ValueError, r"state.v of shape \(3, 16\) does not fit the neuron shape \(8, 16\)"),
    ],
)
def test_a_warm_torch_step_still_refuses_what_the_contract_refuses(field, make, kind, message):
    _, x = _torch_warm()
    v, i = x.clone(), x.clone()
    state = LIState(make(v), i) if field == "v" else LIState(v, make(i))
    with pytest.raises(kind, match=message):
        li_feed_forward_step(x, state, backend="torch")


@pytest.mark.parametrize(
    "make, kind, message",
    [
        (lambda w: w.to("meta"), ValueError, "input_weights is on device meta but input_spikes is on device cpu"),
        (lambda w: w.to_sparse(), TypeError, "input_weights is a sparse torch tensor"),
    ],
)
def test_a_warm_torch_li_step_still_checks_its_weights(make, kind, message):
    torch, x = _torch_warm()
    w = torch.eye(SHAPE[1])
    li_step(x, LIState(x, x), w, backend="torch")
    with pytest.raises(kind, match=message):
        li_step(x, LIState(x, x), make(w), backend="torch")
    with pytest.raises(TypeError, match="input_spikes is a sparse torch tensor"):
        li_step(x.to_sparse(), LIState(x, x), w, backend="torch")


def test_a_warm_torch_step_gives_the_backends_numbers():
    torch, _ = _torch_warm()
    generator = torch.Generator().manual_seed(5)
    x, v, i, s = (torch.randn(SHAPE, generator=generator) for _ in range(4))
    w = torch.randn(SHAPE[1], SHAPE[1], generator=generator)
    p = LIParameters(tau_syn_inv=250.0, tau_mem_inv=120.0, v_leak=0.1)
    chosen = registry.get("torch")
    for got, want in (
        (li_feed_forward_step(x, LIState(v, i), p, DT), chosen.feed_forward_step(x, LIState(v, i), p, DT)),
        (li_step(s, LIState(v, i), w, p, DT), chosen.step(s, LIState(v, i), w, p, DT)),
    ):
        assert torch.equal(got[0], want[0]) and torch.equal(got[1].v, want[1].v) and torch.equal(got[1].i, want[1].i)
