"""The modules of ``li_backends.torch_nn`` check a call in full only when
something the checks read has changed since the last call that passed them:
every such change is caught on the next call, bad inputs are refused on every
call, and the numbers are the functional API's, bit for bit."""

import copy
import io
import math
import re
import warnings

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402 - after the importorskip above, which skips the module without the library

from li_backends.torch_nn import LI, LICell, LILinearCell, recheck  # noqa: E402 - after the importorskip above
from li_core import (  # noqa: E402 - after the importorskip above, which skips the module without the library
    LIParameters,
    LIState,
    UnstableStepWarning,
    li_feed_forward_step,
    li_scan,
    li_step,
)

N = 8


def layer():
    return LI(train_time_constants=True, size=N), torch.randn(4, 2, N)


def cell():
    return LICell(train_time_constants=True, size=N), torch.randn(2, N)


def linear():
    return LILinearCell(5, N, train_time_constants=True), torch.randn(2, 5)


MODULES = pytest.mark.parametrize("make", [layer, cell, linear], ids=["LI", "LICell", "LILinearCell"])
#: the input's argument name in the functional API each module's errors come from
ARGUMENT = {LI: "inputs", LICell: "input_tensor", LILinearCell: "input_spikes"}


def warmed(make, calls=20):
    """A module and an input, after ``calls`` good calls (the last check remembered)."""
    torch.manual_seed(0)
    module, x = make()
    for _ in range(calls):
        module(x)
    return module, x


def unstable_warnings(module, x):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module(x)
    return [str(w.message) for w in caught if issubclass(w.category, UnstableStepWarning)]


@MODULES
def test_a_parameter_made_nan_in_place_is_refused_on_the_next_call(make):
    module, x = warmed(make)
    with torch.no_grad():
        module.tau_mem_inv.fill_(math.nan)
    for _ in range(2):
        with pytest.raises(ValueError, match=r"p\.tau_mem_inv must be finite, got nan at index 0"):
            module(x)
    with torch.no_grad():
        module.tau_mem_inv.fill_(100.0)
    assert torch.isfinite(module(x)[0]).all()


def test_an_optimizer_step_and_load_state_dict_are_seen():
    module, x = warmed(layer)
    optimizer = torch.optim.SGD(module.parameters(), lr=1.0)
    module.tau_syn_inv.grad = torch.full((N,), math.inf)
    optimizer.step()
    with pytest.raises(ValueError, match=r"p\.tau_syn_inv must be finite, got -inf"):
        module(x)
    module.load_state_dict({"tau_syn_inv": torch.full((N,), 200.0), "tau_mem_inv": torch.full((N,), 100.0)})
    module(x)
    module.load_state_dict({"tau_syn_inv": torch.full((N,), math.nan), "tau_mem_inv": torch.full((N,), 100.0)})
    with pytest.raises(ValueError, match=r"p\.tau_syn_inv must be finite"):
        module(x)


def test_a_buffer_changed_in_place_is_refused():
    torch.manual_seed(0)
    buffer = torch.full((N,), 200.0)
    module, x = LI(LIParameters(buffer, 100.0, 0.0)), torch.randn(3, N)
    module(x)
    buffer[3] = math.nan
    with pytest.raises(ValueError, match=r"p\.tau_syn_inv must be finite, got nan at index 3"):
        module(x)


@MODULES
def test_a_parameter_made_unstable_warns_once_on_the_next_call(make):
    module, x = warmed(make)
    assert unstable_warnings(module, x) == []
    with torch.no_grad():
        module.tau_mem_inv[2] = 5000.0
    assert unstable_warnings(module, x) == [
        "dt*tau_mem_inv = 5 exceeds 2: forward Euler is unstable there and the voltages grow without bound; "
        "use a smaller dt (at most 0.0004)"
    ]
    assert unstable_warnings(module, x) == []  # once per change, not per call
    with torch.no_grad():
        module.tau_mem_inv[2] = 6000.0
    assert len(unstable_warnings(module, x)) == 1
    module.dt = 1e-4
    assert unstable_warnings(module, x) == []
    module.dt = 1e-3
    assert len(unstable_warnings(module, x)) == 1


@MODULES
def test_a_converted_module_takes_its_new_dtype_and_refuses_the_old(make):
    module, x = warmed(make)
    module.double()
    out, state = module(x.double())
    assert out.dtype == state.i.dtype == torch.float64
    first = r"input_weights" if isinstance(module, LILinearCell) else r"p\.tau_syn_inv"
    with pytest.raises(TypeError, match=rf"{first} has dtype float64 but {ARGUMENT[type(module)]} has dtype float32"):
        module(x)
    module.float()
    module(x)
    module.to(torch.float64)
    with pytest.raises(TypeError, match="has dtype float64 but"):
        module(x)


def test_a_module_moved_by_torch_load_is_checked_again():
    module, x = LI(LIParameters(200.0, 100.0, torch.zeros(N)), train_time_constants=True, size=N), torch.randn(4, N)
    tensors = [*module.parameters(), *module.buffers()]  # (every field a tensor: a float is a new object when loaded)
    with torch.no_grad():
        for tensor in tensors:
            tensor.mul_(1.0)  # (version 1: what torch.load gives its tensors, so the versions agree)
    module(x)
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, map_location="meta", weights_only=False)
    assert [t._version for t in (*loaded.parameters(), *loaded.buffers())] == [t._version for t in tensors]
    with pytest.raises(ValueError, match=r"p\.tau_syn_inv is on device meta but inputs is on device cpu"):
        loaded(x)
    copied = copy.deepcopy(module)
    with torch.no_grad():
        copied.tau_mem_inv.fill_(math.nan)
    with pytest.raises(ValueError, match=r"p\.tau_mem_inv must be finite"):
        copied(x)
    module(x)


@MODULES
def test_a_reassigned_parameter_is_checked_again(make):
    module, x = warmed(make)
    module.tau_mem_inv = nn.Parameter(torch.full((N,), math.nan))  # (version 0, like the one it replaces)
    with pytest.raises(ValueError, match=r"p\.tau_mem_inv must be finite"):
        module(x)
    module.tau_mem_inv = nn.Parameter(torch.full((3,), 100.0))
    with pytest.raises(ValueError, match=r"p\.tau_mem_inv of shape \(3,\) does not broadcast"):
        module(x)
    module.tau_mem_inv = nn.Parameter(torch.full((N,), 100.0))
    module(x)
    module.v_leak = math.inf
    with pytest.raises(ValueError, match=r"p\.v_leak must be finite, got inf"):
        module(x)
    module.v_leak = 0.0
    module(x)
    module.dt = -1.0
    with pytest.raises(ValueError, match=r"dt must be finite and > 0, got -1\.0"):
        module(x)


def test_reassigned_weights_are_checked_again():
    module, x = warmed(linear)
    module.input_weights = nn.Parameter(torch.randn(N, 4))
    with pytest.raises(
        ValueError, match=r"input_weights of shape \(8, 4\) need input_spikes whose last axis has size 4"
    ):
        module(x)
    module.register_parameter("input_weights", nn.Parameter(torch.randn(N, 5, dtype=torch.float64)))
    with pytest.raises(TypeError, match="input_weights has dtype float64 but input_spikes has dtype float32"):
        module(x)


def bad_calls(module, x):
    """Per call the functional API refuses: the good call it differs from in
    one property (so that only that property tells them apart), its own
    arguments, its error and message."""
    name = ARGUMENT[type(module)]
    first = "input_weights" if name == "input_spikes" else "p.tau_syn_inv"  # (the first array checked)
    good = module(x)[1]
    neurons = tuple(good.v.shape)
    return {
        "input dtype": ((x,), (x.double(),), TypeError, f"{first} has dtype float32 but {name} has dtype float64"),
        "input shape": ((x,), (torch.randn(*x.shape[:-1], 3),), ValueError, f"{first} of shape"),
        "input layout": ((x,), (x.to_sparse(),), TypeError, f"{name} is a sparse torch tensor"),
        "input type": ((x,), (x.numpy(),), TypeError, "all arrays in one call must come from one library"),
        "state dtype": ((x, good), (x, LIState(good.v.double(), good.i)), TypeError, "state.v has dtype float64"),
        "state device": ((x, good), (x, LIState(good.v, good.i.to("meta"))), ValueError, "state.i is on device meta"),
        "state shape": ((x, good), (x, LIState(good.v, torch.zeros(*neurons[:-1], 3))), ValueError, "state.i of shape"),
        "state type": ((x, good), (x, (good.v, good.i, good.i)), TypeError, "state must be an LIState(v, i) or None"),
    }


@MODULES
def test_a_bad_input_or_state_is_refused_on_every_call(make):
    module, x = warmed(make)
    for good, bad, error, message in bad_calls(module, x).values():
        for _ in range(2):
            for _ in range(3):  # good calls (the last check remembered), then the bad one
                module(*good)
            for _ in range(2):
                with pytest.raises(error, match=re.escape(message)):
                    module(*bad)


def functional(module, x, state):
    """The functional API's call for ``module``."""
    if isinstance(module, LI):
        return li_scan(x, state, None, module.p, module.dt, backend="torch", record_states=module.record_states)
    if isinstance(module, LICell):
        return li_feed_forward_step(x, state, module.p, module.dt, backend="torch")
    return li_step(x, state, module.input_weights, module.p, module.dt, backend="torch")


def outputs_and_gradients(module, call, x):
    """Four calls carrying the state (the last two remembered), and the
    gradients of their outputs with respect to the input and every parameter."""
    x = x.clone().requires_grad_()
    total, state = 0.0, None
    for k in range(4):
        out, state = call(module, x * (k + 1), state)
        total = total + out.square().sum() + state.i.sum()
    module.zero_grad()
    total.backward()
    return [total.detach(), state.v.detach(), x.grad] + [p.grad.clone() for p in module.parameters()]


@MODULES
def test_numbers_and_gradients_are_the_functional_apis_bit_for_bit(make):
    module, x = warmed(make, calls=3)
    with torch.no_grad():
        module.tau_mem_inv.mul_(torch.linspace(0.5, 1.5, N))
    got = outputs_and_gradients(module, lambda m, a, s: m(a, s), x)
    expected = outputs_and_gradients(module, functional, x)
    assert len(got) == len(expected) == 3 + len(list(module.parameters()))
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


def test_record_states_and_the_resting_state_as_before():
    torch.manual_seed(0)
    module, x = LI(LIParameters(150.0, 80.0, 0.3), record_states=True), torch.randn(6, 2, 3)
    for _ in range(3):
        vs, states = module(x)
        expected_vs, expected = li_scan(x, None, None, module.p, record_states=True)
        assert torch.equal(vs, expected_vs) and torch.equal(states.i, expected.i)
        assert vs.requires_grad  # Norse's resting voltage: a leaf that requires grad
    module.record_states = 1
    with pytest.raises(TypeError, match="record_states must be True or False, got 1"):
        module(x)


def test_recheck_sees_writes_through_data():
    model = nn.Sequential(nn.Linear(N, N), LI(train_time_constants=True, size=N))
    xs = torch.randn(4, 2, N)
    model(xs)
    model[1].tau_syn_inv.data.clamp_(max=-1.0)  # moves no version counter
    recheck(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model(xs)
    assert [str(w.message) for w in caught] == [
        "dt*tau_syn_inv = -0.001 is negative: each step grows what it should decay, and the voltages grow without "
        "bound; tau_syn_inv (an inverse time constant) must be >= 0"
    ]
    model[1].tau_mem_inv.data = torch.full((N,), math.nan)
    recheck(model[1])
    with pytest.raises(ValueError, match=r"p\.tau_mem_inv must be finite"):
        model(xs)
