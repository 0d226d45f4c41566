"""The kernels form the per-step fractions ``dt*tau_inv`` themselves
(:mod:`li_core.rates`): a scan hands them the inverse time constants and
``dt``, records no autograd node for the fractions, and its backward returns
the gradients of the inverse time constants directly.

The promise is that nothing changes in the numbers: each path gives, bit for
bit, what it gives when handed the fractions formed outside (``dt*tau_inv``
by torch, with autograd chaining the product's gradient, which is how every
scan ran before), forward and every gradient. (The fused CUDA kernels' host
build is checked the same way in tests/test_torch_cuda_bridge.py.)"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

from li_backends import compiled  # noqa: E402 - after the importorskip above, which skips the module without torch
from li_backends.torch import ops  # noqa: E402 - after the importorskip above, which skips the module without torch
from li_core import LIParameters, li_scan  # noqa: E402 - after the importorskip above, which skips the module without torch
from li_core.rates import Rate, fraction  # noqa: E402 - after the importorskip above, which skips the module without torch

DT = 1e-3
STEPS, BATCH, NEURONS = 40, 3, 11
#: kind -> (tau_mem_inv, tau_syn_inv, v_leak) as shapes (None: a Python float, (): a 0-d tensor)
KINDS = {
    "per neuron": ((NEURONS,), (NEURONS,), (NEURONS,)),
    "broadcast": ((BATCH, 1), (1, NEURONS), (BATCH, NEURONS)),
    "0-d tensors": ((), (), ()),
    "float and tensor": (None, (NEURONS,), None),
    "tensor and float": ((), None, (NEURONS,)),
}


def enter(path: str, monkeypatch) -> None:
    if path == "compiled":
        if compiled.unavailable() is not None:
            pytest.skip(f"the compiled loops do not run here: {compiled.unavailable()}")
    else:
        monkeypatch.setattr(compiled, "ENABLED", False)
        monkeypatch.setattr(ops, "BLOCKED", path == "blocked")


def parameters(kind: str, dtype, rng) -> list:
    """Inverse time constants from 1 to 1000 per second (and a leak), per ``KINDS``."""
    values = []
    for shape, (low, high) in zip(KINDS[kind], ((1.0, 1000.0), (1.0, 1000.0), (-0.5, 0.5))):
        if shape is None:
            values.append(float(rng.uniform(low, high)))
        else:
            values.append(torch.tensor(rng.uniform(low, high, size=shape), dtype=dtype, requires_grad=True))
    return values


@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ["compiled", "loop", "blocked"])
def test_fractions_formed_inside_give_the_bits_of_fractions_formed_outside(path, kind, dtype, record, monkeypatch):
    enter(path, monkeypatch)
    rng = np.random.default_rng(5)
    steps = 400 if path == "blocked" else STEPS  # (long enough for the blocking rule to block 33 neurons)
    xs = torch.tensor(rng.normal(size=(steps, BATCH, NEURONS)), dtype=dtype, requires_grad=True)
    v0, i0 = (torch.tensor(rng.normal(size=(BATCH, NEURONS)), dtype=dtype, requires_grad=True) for _ in range(2))
    tau_mem_inv, tau_syn_inv, v_leak = parameters(kind, dtype, rng)
    if path == "blocked":
        assert ops.blocked_length(xs) > 0
    leaves = [t for t in (xs, v0, i0, tau_mem_inv, tau_syn_inv, v_leak) if isinstance(t, torch.Tensor)]
    weights = [torch.tensor(rng.normal(size=shape), dtype=dtype) for shape in (xs.shape, xs.shape)]

    def run(*rates):
        """The outputs and the gradients of a weighted sum of them."""
        voltages, v_out, currents = ops.scan_eager(xs, v0, i0, *rates, record)
        loss = (voltages * weights[0]).sum() + v_out.sum() * 0.5
        loss = loss + (currents * (weights[1] if record else weights[1][-1])).sum()
        return [voltages, v_out, currents, *torch.autograd.grad(loss, leaves)]

    inside = run(tau_mem_inv, tau_syn_inv, v_leak, DT)
    outside = run(DT * tau_mem_inv, DT * tau_syn_inv, v_leak, 1.0)  # (autograd records the products)
    for name, got, want in zip(
        ["voltages", "v_out", "currents", *(f"d{k}" for k in range(len(leaves)))], inside, outside
    ):
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert torch.equal(got, want), f"{name}: differs by {(got - want).abs().max().item():.3g}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["per neuron", "0-d arrays", "float and array"])
def test_the_compiled_loops_form_the_fractions_of_numpy(kind, dtype):
    """NumPy's ``dt*tau_inv`` (the scale rounded to the array's dtype) is what
    the compiled kernels form from a rate."""
    if compiled.unavailable() is not None:
        pytest.skip(f"the compiled loops do not run here: {compiled.unavailable()}")
    rng = np.random.default_rng(6)
    xs = rng.normal(size=(STEPS, BATCH, NEURONS)).astype(dtype)
    v0 = rng.normal(size=(BATCH, NEURONS)).astype(dtype)
    tau = {
        "per neuron": rng.uniform(1.0, 1000.0, NEURONS).astype(dtype),
        "0-d arrays": np.asarray(rng.uniform(1.0, 1000.0), dtype=dtype),
        "float and array": rng.uniform(1.0, 1000.0, NEURONS).astype(dtype),
    }[kind]
    syn = 321.7 if kind == "float and array" else (tau * dtype(0.37)).astype(dtype)

    def run(a: Rate, d: Rate):
        voltages, i_end = np.empty_like(xs), np.empty_like(v0)
        compiled.scan(xs, v0, v0, a, d, None, voltages, None, None, i_end)
        return voltages, i_end

    inside = run(Rate(tau, DT), Rate(syn, DT))
    outside = run(Rate(DT * tau), Rate(fraction(Rate(syn, DT))))
    for got, want in zip(inside, outside):
        np.testing.assert_array_equal(got, want)


def test_no_fraction_is_recorded_per_call():
    """The scan's autograd node takes the inverse time constants themselves:
    between it and their leaves there is no multiplication by ``dt``."""
    taus = [torch.full((NEURONS,), value, requires_grad=True) for value in (200.0, 100.0)]
    xs = torch.randn(STEPS, BATCH, NEURONS, requires_grad=True)
    voltages, _ = li_scan(xs, None, None, LIParameters(*taus), DT, backend="torch")
    inputs = [node for node, _ in voltages.grad_fn.next_functions if node is not None]
    names = sorted(type(node).__name__ for node in inputs)
    assert names == ["AccumulateGrad"] * 3, names
    assert {id(node.variable) for node in inputs} == {id(t) for t in (xs, *taus)}
