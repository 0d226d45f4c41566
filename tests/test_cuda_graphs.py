"""CUDA graphs over the fused CUDA path: ``torch.cuda.make_graphed_callables``
and ``torch.compile(mode="reduce-overhead")`` over the ``li_backends.torch_nn``
modules capture the kernels (no host synchronisation, torch's allocator,
torch's current stream) and replay the same numbers as eager mode.

Without a CUDA GPU and CuPy these tests skip with the reason; the CPU part
(float rates reach the kernels as Python numbers, never read from the device)
runs everywhere."""

import pytest

torch = pytest.importorskip("torch")

from li_backends.torch import cuda as torch_cuda  # noqa: E402 - after the importorskip above, which skips the module without torch
from li_backends.torch_nn import LI, LILinearCell  # noqa: E402 - after the importorskip above, which skips the module without torch
from li_core import LIParameters  # noqa: E402 - after the importorskip above, which skips the module without torch
from li_core.rates import Rate  # noqa: E402 - after the importorskip above, which skips the module without torch

needs_fused_cuda = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: torch.cuda.is_available() is False"),
    pytest.mark.skipif(
        torch.cuda.is_available() and not torch_cuda.active(),
        reason=f"the fused CUDA kernels cannot run here: {torch_cuda.fused_unavailable() or 'cuda.FUSED is False'}",
    ),
]


def test_float_rates_are_passed_by_value():
    """A Python float (or a 0-d CPU tensor) becomes a kernel argument on the
    host; a device tensor is passed by address and never read (an ``item()``
    on it would synchronise, which a graph capture forbids)."""
    assert torch_cuda._rate("a", Rate(0.25), torch.zeros(1)).value == 0.25
    assert torch_cuda._rate("a", Rate(torch.tensor(0.5)), torch.zeros(1)).value == 0.5

    class DeviceTensor:  # a stand-in for a CUDA tensor: reading its value fails
        is_cpu = False
        device = "cuda:0"
        dtype = torch.float32

        def item(self):
            raise AssertionError("read on the host")

        def numel(self):
            return 1

    like = DeviceTensor()
    rate = torch_cuda._rate("a", Rate(like, 1e-3), like)
    assert rate.value is like and rate.scale == 1e-3


class Voltages(torch.nn.Module):
    """The voltages of an LI layer (make_graphed_callables takes tensors out)."""

    def __init__(self, li):
        super().__init__()
        self.li = li

    def forward(self, a):
        return self.li(a)[0]


def _modules(device):
    torch.manual_seed(0)
    p = LIParameters(torch.full((64,), 120.0), torch.full((64,), 220.0), torch.zeros(64))
    return LI(p, train_time_constants=True).to(device)


@needs_fused_cuda[0]
@needs_fused_cuda[1]
def test_make_graphed_callables_matches_eager():
    """A graphed training step (forward and backward captured) gives the
    eager step's voltages and gradients."""
    module = _modules("cuda")
    x = torch.randn(50, 8, 64, device="cuda", requires_grad=True)
    eager_vs, _ = module(x)
    eager_vs.sum().backward()
    eager = [t.grad.clone() for t in (x, *module.parameters())]
    x.grad = None
    module.zero_grad(set_to_none=True)

    graphed = torch.cuda.make_graphed_callables(Voltages(module), (x,))  # (a module: its parameters get grads)
    for _ in range(3):  # replays
        x.grad = None
        module.zero_grad(set_to_none=True)
        vs = graphed(x)
        vs.sum().backward()
    torch.cuda.synchronize()
    assert torch.equal(vs, eager_vs)
    for got, want in zip((x.grad, *(p.grad for p in module.parameters())), eager):
        assert torch.equal(got, want)


@needs_fused_cuda[0]
@needs_fused_cuda[1]
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_reduce_overhead_compile_matches_eager(training):
    """``torch.compile(mode="reduce-overhead")`` (CUDA graphs under
    ``torch.compile``) over the LI module and the LILinearCell step."""
    module = _modules("cuda")
    x = torch.randn(40, 4, 64, device="cuda", requires_grad=training)
    compiled = torch.compile(module, mode="reduce-overhead", fullgraph=True)
    with torch.set_grad_enabled(training):
        eager_vs, eager_state = module(x)
        for _ in range(3):  # warm-up, record, replay
            vs, state = compiled(x)
            got = [vs.clone(), state.v.clone(), state.i.clone()]
    assert all(torch.equal(a, b) for a, b in zip(got, (eager_vs, eager_state.v, eager_state.i)))
    if training:
        (eager_g,) = torch.autograd.grad(eager_vs.sum(), x)
        (got_g,) = torch.autograd.grad(compiled(x)[0].sum(), x)
        assert torch.equal(got_g, eager_g)
    cell = LILinearCell(64, 32).to("cuda")
    step = torch.compile(cell, mode="reduce-overhead", fullgraph=True)
    inputs = torch.randn(4, 64, device="cuda")
    with torch.no_grad():
        want = cell(inputs)[0]
        for _ in range(3):
            have = step(inputs)[0].clone()
    assert torch.equal(have, want)
