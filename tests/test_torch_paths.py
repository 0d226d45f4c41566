"""The torch backend's two scan paths: the eager ``autograd.Function``
(:func:`li_backends.torch.ops.scan_eager`) and the custom op
``li_neurons::scan`` that ``torch.compile`` sees. Both must give the same
results and gradients bit for bit, and both must be right for every
combination of which inputs require grad (checked against autograd through
the float64 reference loop), with every subset of the outputs in the loss."""

import itertools

import pytest

torch = pytest.importorskip("torch")

import li_backends.torch as torch_backend  # noqa: E402 - after the importorskip above, which skips the module without torch
from li_backends import compiled  # noqa: E402 - after the importorskip above, which skips the module without torch
from li_backends.torch import cuda as torch_cuda  # noqa: E402 - after the importorskip above, which skips the module without torch
from li_backends.torch import ops  # noqa: E402 - after the importorskip above, which skips the module without torch
from li_core import LIParameters, LIState, li_scan, reference  # noqa: E402 - after the importorskip above, which skips the module without torch

F64 = torch.float64
#: every input that may require grad: the input, the state, the weights, each parameter
INPUTS = ("xs", "v0", "i0", "w", "tau_syn_inv", "tau_mem_inv", "v_leak")
COMBINATIONS = [c for k in range(1, len(INPUTS) + 1) for c in itertools.combinations(INPUTS, k)]
#: which outputs the loss reads
OUTPUTS = {"all": ("vs", "v", "i"), "vs": ("vs",), "state.v": ("v",), "state.i": ("i",), "state": ("v", "i")}
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: torch.cuda.is_available() is False")


def make_case(steps, batch, inputs, neurons, dtype=F64, device="cpu", seed=0):
    """Leaves ``xs [T, B, in]``, state, weights ``[N, in]`` and per-neuron
    parameters with ``dt*tau_inv`` in (0.05, 0.45), plus loss weights."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, low=-1.0, high=1.0):
        return (torch.rand(*shape, generator=g, dtype=F64) * (high - low) + low).to(dtype).to(device)

    leaves = {
        "xs": rand(steps, batch, inputs),
        "v0": rand(batch, neurons),
        "i0": rand(batch, neurons),
        "w": rand(neurons, inputs),
        "tau_syn_inv": rand(neurons, low=50.0, high=450.0),
        "tau_mem_inv": rand(neurons, low=50.0, high=450.0),
        "v_leak": rand(neurons),
    }
    loss_weights = {"vs": rand(steps, batch, neurons), "v": rand(batch, neurons), "i": rand(batch, neurons)}
    return leaves, loss_weights


def run(leaves, wanted, loss_weights, outputs, record, scan=li_scan):
    """Outputs and the gradients of a weighted sum of ``outputs`` with respect
    to the leaves named in ``wanted`` (fresh leaves, so nothing accumulates)."""
    leaf = {k: v.detach().clone().requires_grad_(k in wanted) for k, v in leaves.items()}
    p = LIParameters(leaf["tau_syn_inv"], leaf["tau_mem_inv"], leaf["v_leak"])
    vs, state = scan(leaf["xs"], LIState(leaf["v0"], leaf["i0"]), leaf["w"], p, record_states=record)
    values = {"vs": vs, "v": state.v, "i": state.i}
    if record:  # the state sequences: weigh their last step like the final state
        values["v"], values["i"] = state.v[-1], state.i[-1]
    loss = sum((values[name] * loss_weights[name]).sum() for name in outputs)
    if not loss.requires_grad:  # (the reference, where no wanted leaf reaches the loss)
        return (vs, state.v, state.i), dict.fromkeys(wanted)
    grads = torch.autograd.grad(loss, [leaf[k] for k in wanted], allow_unused=True)
    return (vs, state.v, state.i), dict(zip(wanted, grads))


def reference_scan(xs, state, w, p, record_states):
    return reference.scan(xs, state, w, p, 1e-3, record_states)


def torch_scan(xs, state, w, p, record_states):
    return li_scan(xs, state, w, p, 1e-3, backend="torch", record_states=record_states)


def compiled_path(monkeypatch):
    """Make the backend take the ``torch.compile`` path (the custom op) in eager mode."""
    monkeypatch.setattr(torch_backend, "tracing", lambda torch: True)


def check_both_paths(monkeypatch, leaves, loss_weights, combinations, outputs, record, exact_reference=True):
    for wanted in combinations:
        eager = run(leaves, wanted, loss_weights, outputs, record, torch_scan)
        with monkeypatch.context() as patch:
            compiled_path(patch)
            op = run(leaves, wanted, loss_weights, outputs, record, torch_scan)
        for a, b in zip(eager[0], op[0]):
            assert torch.equal(a, b), f"{wanted}: the paths' outputs differ"
        for name in wanted:
            ga, gb = eager[1][name], op[1][name]
            assert (ga is None) == (gb is None), f"{wanted}: d/d{name} None on one path only"
            if ga is not None:
                assert torch.equal(ga, gb), f"{wanted}: the paths' d/d{name} differ"
        if not exact_reference:
            continue
        expected = run(leaves, wanted, loss_weights, outputs, record, reference_scan)
        for name in wanted:
            got, want = eager[1][name], expected[1][name]
            if want is None:
                assert got is None or not got.any(), f"{wanted}: d/d{name} should be zero"
                continue
            assert got is not None, f"{wanted}: d/d{name} missing"
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, msg=f"{wanted}: d/d{name} ({outputs})")


@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
def test_every_requires_grad_combination_on_both_paths(monkeypatch, record):
    """Both paths against autograd through the reference loop, for each of
    the 127 combinations of inputs that require grad (e.g. ``v0`` but not
    ``i0``: the gradient of ``v0`` is computed only where it is wanted)."""
    leaves, loss_weights = make_case(6, 2, 3, 4)
    check_both_paths(monkeypatch, leaves, loss_weights, COMBINATIONS, OUTPUTS["all"], record)


@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
@pytest.mark.parametrize("outputs", [k for k in OUTPUTS if k != "all"])
def test_gradients_of_some_outputs_only(monkeypatch, outputs, record):
    """Outputs left out of the loss get no gradient (unmaterialised on the
    eager path): the others' gradients are still exact."""
    leaves, loss_weights = make_case(5, 2, 3, 4, seed=1)
    combinations = [("xs",), ("v0",), ("i0",), ("v0", "tau_mem_inv"), INPUTS]
    check_both_paths(monkeypatch, leaves, loss_weights, combinations, OUTPUTS[outputs], record)


def test_blocked_scan_on_both_paths(monkeypatch):
    """Few neurons over a long run take the time-blocked scan (forward and
    adjoint) on both paths; they agree bit for bit."""
    monkeypatch.setattr(compiled, "ENABLED", False)  # (which would run instead, or their loop while they load)
    leaves, loss_weights = make_case(400, 1, 2, 2, dtype=torch.float32, seed=2)
    assert ops.blocked_length(leaves["xs"][:, :, :2]) > 0
    combinations = [("xs",), ("v0",), ("v0", "i0"), ("xs", "tau_mem_inv"), INPUTS]
    check_both_paths(monkeypatch, leaves, loss_weights, combinations, OUTPUTS["all"], False, exact_reference=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_paths_agree_in_every_dtype(monkeypatch, dtype):
    leaves, loss_weights = make_case(7, 3, 4, 5, dtype=dtype, seed=3)
    check_both_paths(monkeypatch, leaves, loss_weights, [INPUTS, ("xs", "v0")], OUTPUTS["all"], False, False)


def test_float_parameters_on_both_paths(monkeypatch):
    """Python-float parameters (the default) reach the implementations as
    floats on the eager path and as tensors on the op path: same bits."""
    xs = torch.randn(9, 2, 5, dtype=F64, generator=torch.Generator().manual_seed(4), requires_grad=True)
    p = LIParameters(150.0, 90.0, 0.25)
    eager_vs, eager_state = li_scan(xs, None, None, p)
    (g_eager,) = torch.autograd.grad(eager_vs.sum() + eager_state.i.sum(), xs)
    with monkeypatch.context() as patch:
        compiled_path(patch)
        op_vs, op_state = li_scan(xs, None, None, p)
        (g_op,) = torch.autograd.grad(op_vs.sum() + op_state.i.sum(), xs)
    assert torch.equal(eager_vs, op_vs) and torch.equal(eager_state.v, op_state.v)
    assert torch.equal(eager_state.i, op_state.i) and torch.equal(g_eager, g_op)


@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
def test_returned_voltages_and_state_do_not_alias(record):
    """The final voltage comes out of the op in a buffer of its own."""
    xs = torch.randn(4, 2, 3)
    for grad in (False, True):
        vs, state = li_scan(xs.clone().requires_grad_(grad), record_states=record)
        assert vs.data_ptr() != state.v.data_ptr()
        expected = vs.detach().clone()
        with torch.no_grad():
            vs.add_(1.0)
        assert torch.equal(state.v if record else state.v[None], expected if record else expected[-1:])


def test_eager_path_skips_the_custom_op(monkeypatch):
    """Outside ``torch.compile`` no call reaches ``li_neurons::scan`` (its
    dispatch is what the eager path saves)."""
    calls = []
    original = torch_backend._scan_op
    monkeypatch.setattr(torch_backend, "_scan_op", lambda: calls.append(1) or original())
    xs = torch.randn(3, 2, requires_grad=True)
    li_scan(xs)[0].sum().backward()
    assert calls == []
    with monkeypatch.context() as patch:
        compiled_path(patch)
        li_scan(xs)
    assert calls == [1]


@cuda
@pytest.mark.skipif(not torch_cuda.active(), reason="the fused CUDA kernels cannot run here (no CuPy)")
@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
def test_both_paths_on_cuda(monkeypatch, record):
    """On CUDA both paths run the fused kernels: bitwise the same, and the
    gradients within float64 rounding of the reference."""
    leaves, loss_weights = make_case(6, 2, 3, 4, device="cuda", seed=5)
    check_both_paths(monkeypatch, leaves, loss_weights, COMBINATIONS, OUTPUTS["all"], record)


@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
def test_gradients_that_never_arrive_are_not_materialised(monkeypatch, record):
    """The eager backward is given None, not a tensor of zeros, for each
    output the loss leaves out (``set_materialize_grads(False)``: autograd
    would otherwise make a zero tensor per such output and backward), and
    its gradients are still those of the loss."""
    received = []
    real = ops.Scan.backward

    def backward(ctx, *grads):
        received.append(tuple(g is not None for g in grads))
        return real(ctx, *grads)

    monkeypatch.setattr(ops.Scan, "backward", staticmethod(backward))
    xs = torch.randn(6, 2, 3, dtype=F64, generator=torch.Generator().manual_seed(6))
    losses = {  # the outputs (voltages, v_out, currents) each loss reads
        (True, False, False): lambda vs, state: vs.sum(),
        (False, True, False): lambda vs, state: state.v.sum(),
        (False, False, True): lambda vs, state: state.i.sum(),
        (True, False, True): lambda vs, state: (vs * vs).sum() + state.i.sum(),
    }
    for reads, loss in losses.items():
        leaf = xs.clone().requires_grad_()
        (got,) = torch.autograd.grad(loss(*li_scan(leaf, record_states=record)), leaf)
        (want,) = torch.autograd.grad(
            loss(*reference.scan(leaf, LIState(0 * xs[0], 0 * xs[0]), None, LIParameters(), 1e-3, record)), leaf
        )
        assert received.pop() == reads, f"the backward was given zeros for outputs the loss {reads} leaves out"
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
