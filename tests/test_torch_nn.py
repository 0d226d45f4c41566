"""The ``nn.Module`` wrappers: Norse-style state handling, trainable time
constants, device/dtype conversion and ``torch.compile``."""

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402 - after the importorskip above, which skips the module without the library

from li_backends.torch_nn import LI, LICell, LILinearCell  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core import LIParameters, LIState, li_feed_forward_step, li_scan, li_step  # noqa: E402 - after the importorskip above, which skips the module without the library


def test_cell_steps_like_the_functional_api_and_starts_at_rest():
    p = LIParameters(150.0, 80.0, 0.5)
    cell = LICell(p)
    xs = torch.randn(5, 3, 4)
    state = None
    expected = None
    for x in xs:
        v, state = cell(x, state)
        expected_v, expected = li_feed_forward_step(x, expected, p)
        torch.testing.assert_close(v, expected_v, rtol=0, atol=0)
    torch.testing.assert_close(state.i, expected.i, rtol=0, atol=0)
    v, _ = cell(xs[0])
    rest = LIState(torch.full((3, 4), 0.5), torch.zeros(3, 4))
    torch.testing.assert_close(v, li_feed_forward_step(xs[0], rest, p)[0])


def test_sequence_module_equals_a_loop_of_cells_and_carries_state():
    layer, cell = LI(), LICell()
    xs = torch.randn(30, 2, 5)
    vs, state = layer(xs[:10])
    more, state = layer(xs[10:], state)
    cell_state = None
    for t, x in enumerate(xs):
        v, cell_state = cell(x, cell_state)
        torch.testing.assert_close(torch.cat([vs, more])[t], v)
    torch.testing.assert_close(state.i, cell_state.i)
    _recorded_vs, recorded = LI(record_states=True)(xs)
    assert recorded.v.shape == recorded.i.shape == xs.shape
    torch.testing.assert_close(recorded.i[-1], cell_state.i)


def test_linear_cell_projects_through_its_weights():
    torch.manual_seed(0)
    cell = LILinearCell(6, 3)
    assert cell.input_weights.shape == (3, 6) and isinstance(cell.input_weights, nn.Parameter)
    spikes = (torch.rand(8, 2, 6) < 0.3).float()
    state = expected = None
    for x in spikes:
        v, state = cell(x, state)
        expected_v, expected = li_step(x, expected, cell.input_weights.detach())
        torch.testing.assert_close(v, expected_v)
    assert v.shape == (2, 3)
    v.sum().backward()
    assert cell.input_weights.grad is not None and cell.input_weights.grad.abs().sum() > 0


def test_train_time_constants_per_neuron_and_scalar():
    torch.manual_seed(0)
    per_neuron = LI(LIParameters(200.0, 100.0, 0.1), train_time_constants=True, size=4)
    names = {name: tuple(p.shape) for name, p in per_neuron.named_parameters()}
    assert names == {"tau_syn_inv": (4,), "tau_mem_inv": (4,)}
    assert torch.equal(per_neuron.tau_syn_inv, torch.full((4,), 200.0)) and per_neuron.v_leak == 0.1
    scalar = LICell(train_time_constants=True)
    assert {name: tuple(p.shape) for name, p in scalar.named_parameters()} == {"tau_syn_inv": (), "tau_mem_inv": ()}
    assert dict(LI().named_parameters()) == {}

    xs = torch.randn(50, 3, 4)
    vs, state = per_neuron(xs)
    (vs.square().mean() + state.i.sum()).backward()
    for parameter in per_neuron.parameters():
        assert parameter.grad.shape == (4,) and torch.all(parameter.grad != 0)
    reference = LIParameters(
        per_neuron.tau_syn_inv.detach().requires_grad_(), per_neuron.tau_mem_inv.detach().requires_grad_(), 0.1
    )
    vs, state = li_scan(xs, None, None, reference)
    (vs.square().mean() + state.i.sum()).backward()
    torch.testing.assert_close(per_neuron.tau_mem_inv.grad, reference.tau_mem_inv.grad)
    torch.testing.assert_close(per_neuron.tau_syn_inv.grad, reference.tau_syn_inv.grad)


def test_linear_cell_trains_per_neuron_constants_and_parameters_as_given():
    cell = LILinearCell(5, 3, train_time_constants=True)
    assert cell.tau_mem_inv.shape == (3,)
    leak = nn.Parameter(torch.zeros(3))
    fixed = torch.full((3,), 150.0)
    custom = LI(LIParameters(fixed, 100.0, leak))
    assert dict(custom.named_parameters()) == {"v_leak": leak}
    assert dict(custom.named_buffers()) == {"tau_syn_inv": fixed}
    vs, _ = custom(torch.randn(20, 2, 3))
    vs.sum().backward()
    assert leak.grad.shape == (3,) and torch.all(leak.grad > 0)


def test_modules_follow_dtype_conversion():
    layer = LI(train_time_constants=True, size=3).double()
    assert layer.tau_mem_inv.dtype == torch.float64
    vs, state = layer(torch.randn(10, 3, dtype=torch.float64))
    assert vs.dtype == state.v.dtype == torch.float64
    with pytest.raises(TypeError, match="dtype"):
        LI(train_time_constants=True, size=3)(torch.randn(10, 3, dtype=torch.float64))
    assert "tau_syn_inv=tensor(3,)" in repr(layer) and "dt=0.001" in repr(layer)


class SmallModel(nn.Module):
    """Linear -> LI over time -> mean voltage, with trainable time constants."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(5, 7)
        self.li = LI(train_time_constants=True, size=7)

    def forward(self, xs):
        vs, state = self.li(self.encoder(xs))
        return vs.mean(0) + state.i


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    model = SmallModel()
    xs = torch.randn(40, 3, 5)
    eager = model(xs)
    eager.square().sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    # fullgraph: li_core's dispatch (validation, selection, logging) must not break the graph
    compiled = torch.compile(model, fullgraph=True)(xs)
    compiled.square().sum().backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    for (name, p), expected in zip(model.named_parameters(), eager_grads):
        torch.testing.assert_close(p.grad, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()), msg=name)
