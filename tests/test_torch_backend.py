"""The torch backend beyond the shared conformance suite: both scan
algorithms (the loop and the time-blocked scan) against the float64 reference and the known values of the
contract (docs/contract.md, section 4), slow neurons in float32, the fused
op's gradients (gradcheck, and against autograd through a loop of steps),
what the backward saves and allocates, half precision, lazy import, and CUDA."""

import math
import subprocess
import sys
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import li_backends.torch as torch_backend  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_backends import compiled  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_backends.torch import loop, ops  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core import (  # noqa: E402 - after the importorskip above, which skips the module without the library
    LIParameters,
    LIState,
    float_float,
    get_backend,
    li_feed_forward_step,
    li_scan,
    li_step,
    reference,
)
from li_core.testing import assert_matches  # noqa: E402 - after the importorskip above, which skips the module without the library

DT = 1e-3
F64 = torch.float64
DTYPES = ["float32", "float64", "float16", "bfloat16"]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: torch.cuda.is_available() is False")


def numpy64(x):
    """A tensor (any dtype or device), float or None as float64 NumPy / float."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(F64).numpy()
    return x


def reference_scan(xs, state, w=None, p=LIParameters(), record_states=False):
    """``li_core.reference.scan`` in float64 on the values the backend saw."""
    p = LIParameters(*map(numpy64, p))
    if state is None:
        shape = xs.shape[1:-1] + w.shape[:1] if w is not None else xs.shape[1:]
        state = LIState(np.broadcast_to(p.v_leak, shape), np.zeros(shape))
    state = LIState(*map(numpy64, state))
    return reference.scan(numpy64(xs), state, numpy64(w), p, DT, record_states)


def random_case(steps, shape, dtype="float64", per_neuron=True, seed=0, device="cpu"):
    """Inputs, a state and parameters (per neuron along the last axis, or floats)."""
    gen = torch.Generator().manual_seed(seed)
    n = shape[-1]

    def make(*size, low=None, high=None):
        if low is None:
            values = torch.randn(*size, generator=gen, dtype=F64)
        else:
            values = low + (high - low) * torch.rand(*size, generator=gen, dtype=F64)
        return values.to(device=device, dtype=getattr(torch, dtype))

    xs = make(steps, *shape)
    state = LIState(make(*shape), make(*shape))
    if per_neuron:
        p = LIParameters(make(n, low=50.0, high=400.0), make(n, low=50.0, high=400.0), make(n))
    else:
        p = LIParameters(170.0, 90.0, 0.25)
    return xs, state, p


def forced_length(steps, neurons):
    """A chunk length for any number of steps and neurons (the automatic rule
    leaves short runs and many neurons to the loop)."""
    return max(1, round(0.7 * math.sqrt(steps)))


def force(monkeypatch, algorithm, small_pieces=True, length=forced_length):
    """Force one scan algorithm on the CPU, ``loop`` or ``blocked`` (with
    chunks of ``length(steps, neurons)`` steps); with ``small_pieces`` the
    loop (also as the blocked scan's lane scan) runs on pieces of at most 4
    neurons, so that cutting the neurons is tested. Returns the set of
    algorithms that ran, forward and backward. (The compiled loops, which
    would run instead of both, are switched off: tests/test_compiled.py.)"""
    monkeypatch.setattr(compiled, "ENABLED", False)
    monkeypatch.setattr(ops, "BLOCKED", algorithm == "blocked")
    monkeypatch.setattr(ops, "chunk_length", length)
    if small_pieces:
        monkeypatch.setattr(loop, "CHUNK", 4)
    ran = set()
    real = ops.blocked_length

    def spy(xs):
        chosen = real(xs)
        ran.add("blocked" if chosen else "loop")
        return chosen

    monkeypatch.setattr(ops, "blocked_length", spy)
    return ran


@pytest.fixture(params=["loop", "blocked"])
def algorithm(request, monkeypatch):
    """Forces one scan algorithm (see :func:`force`) and records which ran."""
    request.node.ran = force(monkeypatch, request.param)
    return request.param


def assert_ran(request, algorithm):
    assert request.node.ran == {algorithm}, f"expected the {algorithm} path, ran {request.node.ran}"


# ---------------------------------------------------------------------------
# the backend object and lazy import


def test_registering_and_handles_do_not_import_torch():
    code = (
        "import sys, numpy, li_core, li_backends.torch\n"
        "from li_core.registry import registry\n"
        "backend = registry.backends['torch'].backend\n"
        "assert not backend.handles(numpy.zeros(3))\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_backend_declarations_and_conversions():
    backend = get_backend("torch")
    assert isinstance(backend, torch_backend.TorchBackend)
    assert (backend.name, backend.priority, backend.extra, backend.autograd) == ("torch", 20, "torch", True)
    assert backend.dtypes == ("float16", "bfloat16", "float32", "float64")
    assert backend.devices == ("cpu", "cuda")
    assert backend.availability() is None
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = backend.asarray(array)
    assert backend.handles(x) and not backend.handles(array)
    assert x.dtype == torch.float32 and x.device.type == "cpu"
    array[0, 0] = 99.0
    assert x[0, 0] == 0.0  # a copy
    half = x.to(torch.bfloat16).requires_grad_()
    back = backend.to_numpy(half)
    assert back.dtype == np.float32 and np.array_equal(back, np.arange(6, dtype=np.float32).reshape(2, 3))


def test_automatic_choice_for_tensors_is_torch():
    from li_core.selection import select

    assert select(None, torch.zeros(2), "inputs", "li_scan").name == "torch"


# ---------------------------------------------------------------------------
# the contract's known values (section 4), on both algorithms and on the steps

CONSTANT_V = [0.1, 0.27, 0.487, 0.7335, 0.99631, 1.265607, 1.5341887, 1.79688375, 2.050086511, 2.2913907687]
CONSTANT_I = [0.8, 1.44, 1.952, 2.3616, 2.68928, 2.951424, 3.1611392, 3.32891136, 3.463129088, 3.5705032704]


def test_known_values_constant_input_and_impulse(algorithm, request):
    xs = torch.ones(10, 1, dtype=F64)
    vs, state = li_scan(xs, backend="torch")
    np.testing.assert_allclose(vs[:, 0], CONSTANT_V, rtol=1e-12)
    np.testing.assert_allclose(state.i, CONSTANT_I[-1:], rtol=1e-12)
    impulse = torch.tensor([[1.0], [0.0], [0.0], [0.0], [0.0]], dtype=F64)
    vs, state = li_scan(impulse, backend="torch")
    np.testing.assert_allclose(vs[:, 0], [0.1, 0.17, 0.217, 0.2465, 0.26281], rtol=1e-12)
    np.testing.assert_allclose(state.i, [0.32768], rtol=1e-12)
    assert_ran(request, algorithm)
    _, recorded = li_scan(xs, backend="torch", record_states=True)
    np.testing.assert_allclose(recorded.i[:, 0], CONSTANT_I, rtol=1e-12)


def test_known_values_weighted_step_scan_and_steps(algorithm, request):
    w = torch.tensor([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]], dtype=F64)
    xs = torch.ones(3, 2, dtype=F64)
    vs, _ = li_scan(xs, None, w, backend="torch")
    np.testing.assert_allclose(vs[0], [0.3, -0.05, 0.3], rtol=1e-12)
    np.testing.assert_allclose(vs[2], [1.461, -0.2435, 1.461], rtol=1e-12)
    assert_ran(request, algorithm)
    v, state = li_step(xs[0], None, w, backend="torch")
    np.testing.assert_allclose(v, [0.3, -0.05, 0.3], rtol=1e-12)
    np.testing.assert_allclose(state.i, [2.4, -0.4, 2.4], rtol=1e-12)
    for x in xs[1:]:
        v, state = li_step(x, state, w, backend="torch")
    np.testing.assert_allclose(v, [1.461, -0.2435, 1.461], rtol=1e-12)


def test_known_values_instant_time_constants(algorithm, request):
    """tau_syn_inv = tau_mem_inv = 1/dt: b = 0 and a = 1, v follows the input."""
    xs = torch.randn(50, 4, dtype=F64)
    p = LIParameters(1000.0, 1000.0, 0.0)
    vs, state = li_scan(xs, p=p, backend="torch", record_states=True)
    np.testing.assert_allclose(vs, xs, rtol=1e-12, atol=1e-15)
    assert torch.all(state.i == 0)
    v, state = li_feed_forward_step(xs[0], None, p, backend="torch")
    np.testing.assert_allclose(v, xs[0], rtol=1e-12)
    assert torch.all(state.i == 0)


# ---------------------------------------------------------------------------
# against the float64 reference over long sequences


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("per_neuron", [True, False], ids=["per-neuron", "scalar"])
def test_scan_matches_reference(dtype, per_neuron, algorithm, request):
    xs, state, p = random_case(1200, (3, 5), dtype, per_neuron)
    vs, final = li_scan(xs, state, p=p, backend="torch")
    expected_vs, expected = reference_scan(xs, state, p=p)
    assert vs.dtype == final.v.dtype == final.i.dtype == xs.dtype
    assert_matches(numpy64(vs), expected_vs, dtype, f"{dtype} voltages")
    assert_matches(numpy64(final.v), expected.v, dtype, f"{dtype} final v")
    assert_matches(numpy64(final.i), expected.i, dtype, f"{dtype} final i")
    assert_ran(request, algorithm)


@pytest.mark.parametrize("dtype", DTYPES)
def test_weighted_scan_and_steps_match_reference(dtype, algorithm):
    xs, state, p = random_case(1000, (2, 6), dtype)
    gen = torch.Generator().manual_seed(1)
    w = (torch.randn(6, 6, generator=gen, dtype=F64) / 3).to(xs.dtype)
    vs, final = li_scan(xs, state, w, p, backend="torch")
    expected_vs, expected = reference_scan(xs, state, w, p)
    assert_matches(numpy64(vs), expected_vs, dtype, f"{dtype} weighted voltages")
    assert_matches(numpy64(final.i), expected.i, dtype, f"{dtype} weighted final i")
    step_state = state
    for t in range(len(xs)):
        v, step_state = li_step(xs[t], step_state, w, p, backend="torch")
    assert v.dtype == xs.dtype
    assert_matches(numpy64(v), expected_vs[-1], dtype, f"{dtype} li_step loop")
    assert_matches(numpy64(step_state.i), expected.i, dtype, f"{dtype} li_step loop final i")


@pytest.mark.parametrize("per_neuron", [True, False], ids=["per-neuron", "scalar"])
def test_scan_equals_loop_of_steps(per_neuron, algorithm):
    xs, state, p = random_case(300, (4, 3), "float64", per_neuron)
    vs, final = li_scan(xs, state, p=p, backend="torch")
    current = state
    for t in range(len(xs)):
        v, current = li_feed_forward_step(xs[t], current, p, backend="torch")
        assert_matches(vs[t].numpy(), v.numpy(), "float64", f"scan vs steps at t={t}")
    assert_matches(final.v.numpy(), current.v.numpy(), "float64", "final v")
    assert_matches(final.i.numpy(), current.i.numpy(), "float64", "final i")


@pytest.mark.parametrize("steps", [1, 2, 7, 64, 300])
def test_split_scan_equals_one_scan(steps, algorithm):
    xs, state, p = random_case(steps + 37, (3, 4), "float64", per_neuron=False)
    whole, end = li_scan(xs, state, p=p, backend="torch")
    first, middle = li_scan(xs[:steps], state, p=p, backend="torch")
    second, split_end = li_scan(xs[steps:], middle, p=p, backend="torch")
    assert_matches(torch.cat([first, second]).numpy(), whole.numpy(), "float64", "split voltages")
    assert_matches(split_end.i.numpy(), end.i.numpy(), "float64", "split final i")


def test_record_states(algorithm):
    xs, state, p = random_case(200, (2, 3), "float64")
    vs, recorded = li_scan(xs, state, p=p, backend="torch", record_states=True)
    expected_vs, expected = reference_scan(xs, state, p=p, record_states=True)
    assert recorded.v.shape == recorded.i.shape == xs.shape
    assert_matches(vs.numpy(), expected_vs, "float64", "voltages")
    assert_matches(recorded.i.numpy(), expected.i, "float64", "recorded currents")
    assert torch.equal(recorded.v, vs) and recorded.v.data_ptr() != vs.data_ptr()
    _, final = li_scan(xs, state, p=p, backend="torch")
    assert torch.equal(final.i, recorded.i[-1]) and torch.equal(final.v, recorded.v[-1])


def test_state_none_starts_at_leak_with_zero_current(algorithm):
    xs, _, p = random_case(40, (2, 5), "float64")
    rest = LIState(p.v_leak.expand(2, 5), torch.zeros(2, 5, dtype=F64))
    for a, b in zip(li_scan(xs, None, p=p, backend="torch"), li_scan(xs, rest, p=p, backend="torch")):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    v, _state = li_feed_forward_step(xs[0], None, p, backend="torch")
    torch.testing.assert_close(v, li_feed_forward_step(xs[0], rest, p, backend="torch")[0], rtol=0, atol=0)


@pytest.mark.parametrize("record_states", [False, True])
def test_zero_steps(record_states):
    state = LIState(torch.randn(2, 3, requires_grad=True), torch.randn(2, 3))
    vs, final = li_scan(torch.zeros(0, 2, 3), state, backend="torch", record_states=record_states)
    assert vs.shape == (0, 2, 3) and vs.dtype == torch.float32
    if record_states:
        assert final.v.shape == final.i.shape == (0, 2, 3)
    else:
        assert torch.equal(final.v, state.v) and torch.equal(final.i, state.i)
        assert final.v.data_ptr() != state.v.data_ptr() and final.i.data_ptr() != state.i.data_ptr()
        final.v.sum().backward()
        assert torch.equal(state.v.grad, torch.ones(2, 3))
    w = torch.randn(3, 4)
    vs, final = li_scan(torch.zeros(0, 2, 4), None, w, backend="torch")
    assert vs.shape == (0, 2, 3) and final.v.shape == (2, 3)


def test_non_contiguous_inputs_give_the_same_numbers(algorithm):
    xs, state, p = random_case(100, (6, 4), "float64", per_neuron=False)
    transposed = xs.transpose(1, 2).contiguous().transpose(1, 2)  # same values, other strides
    every_other = torch.randn(100, 6, 8, dtype=F64)[..., ::2]
    spikes = torch.randn(50, 6, 5, dtype=F64)
    w = torch.randn(4, 5, dtype=F64)
    w_transposed = w.t().contiguous().t()
    assert not (transposed.is_contiguous() or every_other.is_contiguous() or w_transposed.is_contiguous())
    for strided, contiguous in (
        (li_scan(transposed, state, p=p, backend="torch"), li_scan(xs, state, p=p, backend="torch")),
        (li_scan(every_other, None, backend="torch"), li_scan(every_other.contiguous(), None, backend="torch")),
        (li_scan(spikes, None, w_transposed, backend="torch"), li_scan(spikes, None, w, backend="torch")),
    ):
        for y, z in zip(strided, contiguous):
            torch.testing.assert_close(y, z, rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------------
# slow neurons in float32: the decays 1 - a and 1 - d are never rounded

SLOWEST = 1e-4  # the smallest dt*tau_inv the contract covers


def slow_case(dtype, per_neuron, seed=0):
    """``2/SLOWEST`` steps of inputs with mean 0.5 (a steady state is where a
    mis-rounded decay shows most). Per neuron: ``dt*tau_inv`` log-spaced from
    1 down to ``SLOWEST``, membrane ascending where synapse descends, and one
    neuron slow in both; else both rates ``SLOWEST``."""
    gen = torch.Generator().manual_seed(seed)
    rates = torch.logspace(0, math.log10(SLOWEST), 9, dtype=F64)
    n = 10 if per_neuron else 3
    steps = round(2 / SLOWEST)
    xs = 0.5 + torch.randn(steps, 2, n, generator=gen, dtype=F64)
    state = LIState(*torch.randn(2, 2, n, generator=gen, dtype=F64))
    if per_neuron:
        syn, mem = torch.cat([rates, rates[-1:]]), torch.cat([rates.flip(0), rates[-1:]])
        p = LIParameters(syn / DT, mem / DT, torch.rand(n, generator=gen, dtype=F64) - 0.5)
    else:
        p = LIParameters(SLOWEST / DT, SLOWEST / DT, 0.3)
    to = getattr(torch, dtype)
    return (
        xs.to(to),
        LIState(*(t.to(to) for t in state)),
        LIParameters(*(q if isinstance(q, float) else q.to(to) for q in p)),
    )


def slow_gradients(case, upstream, trained):
    """The gradients of ``sum(vs*upstream) + sum(final i)`` with respect to
    the inputs, the initial state and (when ``trained``) the parameters."""
    xs, state, p = case
    arguments = [xs, *state, *((p.tau_syn_inv, p.tau_mem_inv, p.v_leak) if trained else ())]
    arguments = [t.detach().requires_grad_() for t in arguments]
    xs, v0, i0, *params = arguments
    vs, final = li_scan(xs, LIState(v0, i0), p=LIParameters(*params) if trained else p, backend="torch")
    loss = (vs.double() * upstream).sum() + final.i.double().sum()
    return torch.autograd.grad(loss, arguments)


@pytest.mark.parametrize("per_neuron", [True, False], ids=["per-neuron", "scalar"])
@pytest.mark.parametrize("algorithm_name", ["loop", "blocked"])
def test_slow_neurons_in_float32(algorithm_name, per_neuron, monkeypatch):
    """``dt*tau_inv`` down to 1e-4 over 2e4 steps: float32 voltages and final
    state within the float32 tolerance of the float64 reference, and float32
    gradients within it of the float64 ones (the trained parameters' too).
    The blocked path runs with the automatic chunk length."""
    ran = force(monkeypatch, algorithm_name, small_pieces=False, length=ops.chunk_length)
    xs, state, p = case = slow_case("float32", per_neuron)
    vs, final = li_scan(xs, state, p=p, backend="torch")
    expected_vs, expected = reference_scan(xs, state, p=p)
    assert_matches(numpy64(vs), expected_vs, "float32", "slow voltages")
    assert_matches(numpy64(final.v), expected.v, "float32", "slow final v")
    assert_matches(numpy64(final.i), expected.i, "float32", "slow final i")
    upstream = 0.5 + torch.randn(xs.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    exact_case = (xs.double(), LIState(*(t.double() for t in state)), LIParameters(*map(in_float64, p)))
    names = ["xs", "v0", "i0", "tau_syn_inv", "tau_mem_inv", "v_leak"]
    for trained in (False, True) if per_neuron else (False,):
        got, exact = slow_gradients(case, upstream, trained), slow_gradients(exact_case, upstream, trained)
        for name, g, e in zip(names, got, exact):
            assert_matches(numpy64(g), e.numpy(), "float32", f"slow {name} gradient (trained: {trained})")
    assert ran == {algorithm_name}


def test_slow_neurons_through_steps_in_float32():
    """A loop of ``li_feed_forward_step`` calls over the same slow case ends
    within the float32 tolerance of the float64 reference."""
    xs, state, p = slow_case("float32", per_neuron=True)
    _, expected = reference_scan(xs, state, p=p)
    for x in xs:
        _, state = li_feed_forward_step(x, state, p, backend="torch")
    assert_matches(numpy64(state.v), expected.v, "float32", "slow final v through steps")
    assert_matches(numpy64(state.i), expected.i, "float32", "slow final i through steps")


def in_float64(value):
    """A parameter in float64 (floats stay floats)."""
    return value if isinstance(value, float) else value.double()


#: (steps, chunk length): T a multiple of L, T not a multiple, one chunk and a
#: tail, T < L, T = 1
FORCED_SHAPES = [(600, 30), (601, 37), (50, 30), (20, 30), (1, 1), (1, 5)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("steps", "length"), FORCED_SHAPES)
@pytest.mark.parametrize("record_states", [False, True])
def test_loop_and_blocked_agree(dtype, steps, length, record_states, monkeypatch):
    """Both algorithms, forced in turn on the same inputs, give the same
    voltages, final state or recorded states, and gradients of the inputs,
    the initial state and the per-neuron parameters, within the dtype's
    tolerance (and the float64 reference's)."""
    xs, state, p = random_case(steps, (3, 5), dtype, per_neuron=True, seed=steps)
    upstream = torch.randn(xs.shape, generator=torch.Generator().manual_seed(2), dtype=F64)
    results = {}
    for name in ("loop", "blocked"):
        with monkeypatch.context() as patch:
            ran = force(patch, name, small_pieces=False, length=lambda steps, neurons: length)
            arguments = [t.detach().requires_grad_() for t in (xs, *state, *p)]
            vs, final = li_scan(
                arguments[0],
                LIState(*arguments[1:3]),
                p=LIParameters(*arguments[3:]),
                backend="torch",
                record_states=record_states,
            )
            loss = (vs.double() * upstream).sum() + (final.i.double() * upstream.flip(0)[-final.i.shape[0] :]).sum()
            results[name] = (vs, *final, *torch.autograd.grad(loss, arguments))
            assert ran == {name}
    expected_vs, expected = reference_scan(xs, state, p=p, record_states=record_states)
    assert_matches(numpy64(results["blocked"][0]), expected_vs, dtype, "blocked voltages vs reference")
    assert_matches(numpy64(results["blocked"][2]), expected.i, dtype, "blocked currents vs reference")
    names = ["voltages", "v", "i", "dx", "dv0", "di0", "d tau_syn_inv", "d tau_mem_inv", "d v_leak"]
    for what, a, b in zip(names, results["loop"], results["blocked"]):
        assert_matches(numpy64(b), numpy64(a), dtype, f"blocked vs loop {what}, T={steps} L={length}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loop_and_blocked_agree_on_slow_neurons(dtype, monkeypatch):
    """Slow neurons (float32 and float64), per-neuron parameters, through the
    automatic chunk length: the same voltages, final state and gradients."""
    xs, state, p = slow_case(dtype, per_neuron=True)
    upstream = torch.randn(xs.shape, generator=torch.Generator().manual_seed(2), dtype=F64)
    results = {}
    for name in ("loop", "blocked"):
        with monkeypatch.context() as patch:
            ran = force(patch, name, small_pieces=False, length=ops.chunk_length)
            vs, final = li_scan(xs, state, p=p, backend="torch")
            results[name] = (vs, *final, *slow_gradients((xs, state, p), upstream, trained=True))
            assert ran == {name}
    names = ["voltages", "final v", "final i", "dx", "dv0", "di0", "d tau_syn_inv", "d tau_mem_inv", "d v_leak"]
    for what, a, b in zip(names, results["loop"], results["blocked"]):
        assert_matches(numpy64(a), numpy64(b), dtype, f"loop vs blocked {what}")


@pytest.mark.parametrize("weight", [0.0, 1e-4, 0.3, 0.4999, 0.5, 0.75, 0.9999, 1.0])
def test_lerp_is_accurate_at_every_weight(weight):
    """The loop's ``v`` and adjoint recurrences rely on ``torch.lerp`` never
    forming ``1 - weight`` inexactly: within one rounding of the exact value
    for weights below and above 0.5, as a float and as a tensor."""
    gen = torch.Generator().manual_seed(0)
    start, end = torch.randn(2, 10_000, generator=gen)
    w = torch.tensor(weight)
    exact = start.double() + w.double() * (end.double() - start.double())
    scale = torch.finfo(torch.float32).eps * (exact.abs() + start.abs().double() + end.abs().double())
    for result in (torch.lerp(start, end, w.item()), torch.lerp(start, end, w)):
        assert torch.all((result.double() - exact).abs() <= scale)


# ---------------------------------------------------------------------------
# no mutation, no aliasing


def storages(*tensors):
    return [t.untyped_storage().data_ptr() for t in tensors]


@pytest.mark.parametrize("dtype", ["float64", "float16"])
@pytest.mark.parametrize("record_states", [False, True])
def test_no_mutation_and_no_aliasing(dtype, record_states, algorithm):
    xs, state, p = random_case(30, (2, 3), dtype)
    w = torch.randn(3, 3, dtype=F64).to(xs.dtype)
    arguments = [xs, *state, w, *p]
    before = [a.clone() for a in arguments]
    for vs, final in (
        li_scan(xs, state, None, p, backend="torch", record_states=record_states),
        li_scan(xs, state, w, p, backend="torch", record_states=record_states),
    ):
        out = storages(vs, *final)
        assert len(set(out)) == 3 and not set(out) & set(storages(*arguments))
    steps = (li_feed_forward_step(xs[0], state, p, backend="torch"), li_step(xs[0], state, w, p, backend="torch"))
    for v, step_state in steps:
        out = storages(v, *step_state)
        assert len(set(out)) == 3 and not set(out) & set(storages(*arguments))
        v.add_(1)
        assert not torch.equal(v, step_state.v)
    for a, b in zip(arguments, before):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------
# gradients


def scan_outputs(record_states):
    """A function of (xs, w, v0, i0, tau_syn_inv, tau_mem_inv, v_leak) returning
    every differentiable output of the scan."""

    def f(xs, w, v0, i0, syn, mem, leak):
        p = LIParameters(syn, mem, leak)
        vs, state = li_scan(xs, LIState(v0, i0), w, p, backend="torch", record_states=record_states)
        return vs, state.v, state.i

    return f


def gradcheck_arguments(steps=6, per_neuron=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    batch, inputs, n = 2, 3, 4
    size = (n,) if per_neuron else ()
    arguments = [
        torch.randn(steps, batch, inputs, generator=gen, dtype=F64),
        torch.randn(n, inputs, generator=gen, dtype=F64),
        torch.randn(batch, n, generator=gen, dtype=F64),
        torch.randn(batch, n, generator=gen, dtype=F64),
        100 + 300 * torch.rand(size, generator=gen, dtype=F64),
        50 + 150 * torch.rand((1, *size), generator=gen, dtype=F64),
        torch.randn(size, generator=gen, dtype=F64),
    ]
    return [a.requires_grad_() for a in arguments]


@pytest.mark.parametrize("record_states", [False, True])
@pytest.mark.parametrize("per_neuron", [True, False], ids=["per-neuron", "0-d"])
def test_scan_gradcheck_all_arguments(record_states, per_neuron, algorithm):
    assert torch.autograd.gradcheck(scan_outputs(record_states), gradcheck_arguments(per_neuron=per_neuron))


@pytest.mark.parametrize("record_states", [False, True])
@pytest.mark.parametrize("v0_grad", [True, False], ids=["v0-grad", "v0-fixed"])
def test_scan_gradcheck_with_float_parameters(record_states, v0_grad, algorithm, request):
    """Only inputs, weights and state carry gradients (the fast backwards;
    without a gradient for v0 the loop carries a*lam)."""
    xs, w, v0, i0, *_ = gradcheck_arguments(steps=11)  # chunks of 2 and a remainder
    v0.requires_grad_(v0_grad)

    def f(xs, w, i0, *v0_):
        return scan_outputs(record_states)(xs, w, *(v0_ or (v0,)), i0, 170.0, 90.0, 0.3)

    assert torch.autograd.gradcheck(f, (xs, w, i0, v0) if v0_grad else (xs, w, i0))
    assert_ran(request, algorithm)


def test_gradcheck_at_b_zero_and_a_one(algorithm):
    """dt*tau_syn_inv = dt*tau_mem_inv = 1: nothing may divide by b or a."""
    arguments = gradcheck_arguments()
    arguments[4] = torch.full((4,), 1000.0, dtype=F64, requires_grad=True)
    arguments[5] = torch.full((1, 4), 1000.0, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(scan_outputs(False), arguments)
    xs, w, v0, i0, *_ = arguments
    assert torch.autograd.gradcheck(lambda *a: scan_outputs(False)(*a, 1000.0, 1000.0, 0.0), (xs, w, v0, i0))


def test_steps_gradcheck():
    xs, w, v0, i0, syn, mem, leak = gradcheck_arguments()

    def step(x, w, v0, i0, syn, mem, leak):
        v, state = li_step(x, LIState(v0, i0), w, LIParameters(syn, mem, leak), backend="torch")
        return v, state.v, state.i

    def feed_forward(x, v0, i0, syn, mem, leak):
        v, state = li_feed_forward_step(x, LIState(v0, i0), LIParameters(syn, mem, leak), backend="torch")
        return v, state.v, state.i

    assert torch.autograd.gradcheck(step, (xs[0], w, v0, i0, syn, mem, leak))
    current = torch.randn(2, 4, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(feed_forward, (current, v0, i0, syn, mem, leak))


@pytest.mark.parametrize("record_states", [False, True])
@pytest.mark.parametrize("per_neuron", [True, False], ids=["per-neuron", "0-d"])
def test_scan_gradients_equal_autograd_through_a_loop_of_steps(record_states, per_neuron, algorithm):
    arguments = gradcheck_arguments(steps=150, per_neuron=per_neuron, seed=3)
    xs, w, v0, i0, syn, mem, leak = arguments
    outputs = scan_outputs(record_states)(*arguments)
    gen = torch.Generator().manual_seed(4)
    upstream = [torch.randn(o.shape, generator=gen, dtype=F64) for o in outputs]
    ours = torch.autograd.grad(outputs, arguments, upstream)

    vs, is_ = [], []
    state = LIState(v0, i0)
    for x in xs:
        v, state = li_step(x, state, w, LIParameters(syn, mem, leak), backend="torch")
        vs.append(v)
        is_.append(state.i)
    loop = (torch.stack(vs), *((torch.stack(vs), torch.stack(is_)) if record_states else state))
    theirs = torch.autograd.grad(loop, arguments, upstream)
    for name, a, b in zip(["xs", "w", "v0", "i0", "tau_syn_inv", "tau_mem_inv", "v_leak"], ours, theirs):
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9 * float(b.abs().max()), msg=name)


def test_backward_saves_only_what_it_needs():
    def saved(vs):
        return [t for t in vs.grad_fn.saved_tensors if t is not None]

    xs = torch.randn(50, 8, requires_grad=True)
    vs, _ = li_scan(xs, backend="torch")
    assert all(t.dim() == 0 for t in saved(vs))  # the coefficients at most, nothing per step
    fixed = LIParameters(torch.full((8,), 150.0), torch.full((8,), 80.0), 0.0)
    vs, _ = li_scan(xs, p=fixed, backend="torch")
    assert all(t.dim() <= 1 for t in saved(vs))  # per-neuron coefficients only
    trained = LIParameters(200.0, torch.full((8,), 80.0, requires_grad=True), 0.0)
    vs, _ = li_scan(xs, p=trained, backend="torch")
    assert sum(t.shape == xs.shape for t in saved(vs)) == 2  # the voltages and j


def allocating_ops(run):
    """How many ops that ``run()`` calls on this thread allocate CPU memory
    (the profiler's memory events, attributed to the op that allocated:
    out-of-place results, factory functions and internal temporaries alike)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as profile:
        run()
    return sum(1 for e in profile.events() if e.name != "[memory]" and e.self_cpu_memory_usage > 0)


def loop_allocations(steps, trained):
    """:func:`allocating_ops` of a loop scan's forward and backward (one piece
    of neurons, so everything runs on this thread)."""
    xs = torch.randn(steps, 3, 4, requires_grad=True)
    mem = torch.full((4,), 90.0, requires_grad=trained)

    def run():
        vs, final = li_scan(xs, p=LIParameters(200.0, mem, 0.5), backend="torch")
        (vs.sum() + final.i.sum()).backward()

    return allocating_ops(run)


@pytest.mark.parametrize("trained", [False, True], ids=["fixed", "trained"])
def test_loop_allocates_nothing_per_step(trained, monkeypatch):
    """Forward and backward allocate as often for 10 steps as for 300: the
    loop writes into preallocated buffers (the loop itself: the compiled
    loops, which allocate nothing per step by construction, are off)."""
    monkeypatch.setattr(compiled, "ENABLED", False)
    monkeypatch.setattr(ops, "BLOCKED", False)
    loop_allocations(2, trained)  # (a first call makes the float rates' constants, once per process)
    assert loop_allocations(10, trained) == loop_allocations(300, trained) > 0


@pytest.mark.parametrize("trained", [False, True], ids=["fixed", "trained"])
def test_allocation_count_sees_a_per_step_allocation(trained, monkeypatch):
    """The count above fails a loop whose error-free sums (float32 runs the
    compensated loop) allocate at every step."""
    monkeypatch.setattr(compiled, "ENABLED", False)
    monkeypatch.setattr(ops, "BLOCKED", False)
    monkeypatch.setattr(float_float, "two_sum_into", lambda xp, p, q, s, e, z: (s.copy_(p + q), e.zero_()))
    assert loop_allocations(300, trained) - loop_allocations(10, trained) >= 290


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_gradients_flow(dtype, algorithm):
    xs, state, _ = random_case(100, (2, 3), dtype)
    xs.requires_grad_()
    mem = torch.full((3,), 100.0, dtype=xs.dtype, requires_grad=True)
    vs, final = li_scan(xs, state, p=LIParameters(200.0, mem, 0.0), backend="torch")
    (vs.float().sum() + final.i.float().sum()).backward()
    assert xs.grad.dtype == mem.grad.dtype == xs.dtype
    exact = xs.detach().double().requires_grad_()
    exact_mem = mem.detach().double().requires_grad_()
    exact_state = LIState(*(s.double() for s in state))
    vs, final = li_scan(exact, exact_state, p=LIParameters(200.0, exact_mem, 0.0), backend="torch")
    (vs.sum() + final.i.sum()).backward()
    assert_matches(numpy64(xs.grad), exact.grad.numpy(), dtype, "input gradient")
    assert_matches(numpy64(mem.grad), exact_mem.grad.numpy(), dtype, "tau_mem_inv gradient")


def test_blocked_path_for_few_neurons_and_long_runs(monkeypatch):
    """The automatic choice on the CPU without the compiled loops: the
    blocked scan for few neurons per step over many steps (per-neuron,
    trained parameters and recorded states included), forward and backward;
    the loop for many neurons or few steps."""
    monkeypatch.setattr(compiled, "ENABLED", False)
    ran = []
    real = ops.blocked_length

    def used(xs, **kwargs):
        ran.clear()
        ops.blocked_length = lambda t: ran.append("blocked" if real(t) else "loop") or real(t)
        try:
            vs, final = li_scan(xs, backend="torch", **kwargs)
            if vs.requires_grad:
                (vs.sum() + final.i.sum()).backward()
        finally:
            ops.blocked_length = real
        return set(ran)

    from li_core.blocked_scan import MAX_BLOCKED_NEURONS, MIN_BLOCKED_STEPS

    long = torch.randn(2000, 2, 8)
    assert used(long) == {"blocked"}
    assert used(long.requires_grad_(), p=LIParameters(torch.full((8,), 150.0, requires_grad=True))) == {"blocked"}
    assert used(long, record_states=True) == {"blocked"}
    assert used(torch.randn(2000, MAX_BLOCKED_NEURONS + 1)) == {"loop"}
    assert used(torch.randn(MIN_BLOCKED_STEPS - 1, 8)) == {"loop"}
    assert ops.chunk_length(2000, 16) > 0


def test_single_neuron_without_axes(algorithm, request):
    """Inputs ``[T]``: the neuron shape is ``()``."""
    xs = torch.randn(200, dtype=F64)
    vs, final = li_scan(xs, backend="torch")
    expected_vs, expected = reference_scan(xs, None)
    assert vs.shape == (200,) and final.v.shape == final.i.shape == ()
    assert_matches(vs.numpy(), expected_vs, "float64", "voltages")
    assert_matches(final.i.numpy(), expected.i, "float64", "final i")
    assert_ran(request, algorithm)


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_fused_scan_compiles_without_graph_breaks():
    """The custom op composes with torch.compile(fullgraph=True), forward and backward."""
    backend = get_backend("torch")
    xs, state, p = random_case(30, (2, 4), "float32")
    xs.requires_grad_()
    mem = p.tau_mem_inv.requires_grad_()

    def loss(xs, mem):
        vs, final = backend.scan(xs * 2, state, None, LIParameters(p.tau_syn_inv, mem, p.v_leak), DT, False)
        return vs.square().sum() + final.i.sum()

    eager = torch.autograd.grad(loss(xs, mem), (xs, mem))
    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    for a, b in zip(torch.autograd.grad(compiled(xs, mem), (xs, mem)), eager):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()))


def test_pieces_run_on_worker_threads_without_autograd(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    ran = []
    loop._each(lambda k: ran.append((k, threading.get_ident(), torch.is_grad_enabled())), [[0], [1], [2]])
    assert sorted(k for k, _, _ in ran) == [0, 1, 2]
    assert threading.get_ident() not in {thread for _, thread, _ in ran}
    assert not any(grad for _, _, grad in ran)


# ---------------------------------------------------------------------------
# CUDA


@cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("per_neuron", [True, False], ids=["per-neuron", "scalar"])
def test_cuda_scan_and_step_match_reference(dtype, per_neuron, algorithm):
    xs, state, p = random_case(1000, (4, 8), dtype, per_neuron, device="cuda")
    vs, final = li_scan(xs, state, p=p, backend="torch")
    assert vs.device.type == final.v.device.type == final.i.device.type == "cuda"
    expected_vs, expected = reference_scan(xs, state, p=p)
    assert_matches(numpy64(vs), expected_vs, dtype, f"cuda {dtype} voltages")
    assert_matches(numpy64(final.i), expected.i, dtype, f"cuda {dtype} final i")
    v, _step_state = li_feed_forward_step(xs[0], state, p, backend="torch")
    on_host = LIState(*map(numpy64, state)), LIParameters(*map(numpy64, p))
    expected_v, _ = reference.feed_forward_step(numpy64(xs[0]), *on_host, DT)
    assert v.device.type == "cuda"
    assert_matches(numpy64(v), expected_v, dtype, f"cuda {dtype} step")


@cuda
@pytest.mark.parametrize("per_neuron", [True, False], ids=["per-neuron", "0-d"])
def test_cuda_gradients_equal_cpu(per_neuron, algorithm):
    arguments = gradcheck_arguments(steps=40, per_neuron=per_neuron)
    on_gpu = [a.detach().cuda().requires_grad_() for a in arguments]
    for record_states in (False, True):
        f = scan_outputs(record_states)
        cpu_out, gpu_out = f(*arguments), f(*on_gpu)
        upstream = [torch.ones_like(o) for o in cpu_out]
        cpu = torch.autograd.grad(cpu_out, arguments, upstream)
        gpu = torch.autograd.grad(gpu_out, on_gpu, [u.cuda() for u in upstream])
        for a, b in zip(cpu, gpu):
            assert b.device.type == "cuda"
            torch.testing.assert_close(b.cpu(), a, rtol=1e-10, atol=1e-10)
