"""NIR between li-neurons and the tools themselves: snnTorch, SpikingJelly
and Norse (each skips, saying why, where the tool is absent).

Both directions run in the other tool's own loop:

- ``to_nir(..., target=tool)`` read by the tool's importer and simulated by
  it gives ``li_scan``'s voltages within the float32 tolerance;
- each tool's own export of a neuron that never spikes, read by ``from_nir``,
  gives that tool's own simulation within the float32 tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason='nir is not installed: pip install "li-neurons[nir]"')
torch = pytest.importorskip("torch", reason="the NIR importers of other tools run on torch")

from li_core import LIParameters, li_scan  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core.nir import from_nir, to_nir  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core.testing.tolerances import assert_matches  # noqa: E402 - after the importorskip above, which skips the module without the library

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # nirtorch's own deprecations

STEPS, BATCH, INPUTS, NEURONS = 300, 2, 5, 4


def _tool(module: str, pip: str):
    """Import one of the tool's modules, or skip saying how to install it."""
    return pytest.importorskip(module, reason=f"{pip} is not installed: pip install --no-deps {pip}")


def _model(seed: int, dt: float, *, per_neuron: bool):
    """Weights, bias, parameters (v_leak = 0: none of the tools has one) and input spikes."""
    rng = np.random.default_rng(seed)
    size = NEURONS if per_neuron else 1
    # dt*tau_inv between 0.02 and 0.5: fast and slow neurons in a few hundred steps
    tau_syn_inv = rng.uniform(0.05, 0.5, size) / dt
    tau_mem_inv = rng.uniform(0.02, 0.2, size) / dt
    p = LIParameters(
        tau_syn_inv if per_neuron else float(tau_syn_inv[0]), tau_mem_inv if per_neuron else float(tau_mem_inv[0]), 0.0
    )
    weights, bias = rng.normal(size=(NEURONS, INPUTS)), rng.normal(size=NEURONS)
    spikes = (rng.random((STEPS, BATCH, INPUTS)) < 0.3).astype(np.float32)
    expected, _ = li_scan(spikes.astype(np.float64) @ weights.T + bias, None, None, p, dt, backend="numpy")
    return weights, bias, p, spikes, expected


def _run(step, spikes: np.ndarray) -> np.ndarray:
    """The voltages ``step(x) -> v`` gives over a sequence, step by step without gradients."""
    with torch.no_grad():
        return np.stack([step(torch.from_numpy(x)).detach().double().numpy().copy() for x in spikes])


# --- li-neurons -> tool ------------------------------------------------------------------------------------------


def test_snntorch_runs_our_export():
    import_nir = _tool("snntorch.import_nir", "snntorch==1.0.0")
    dt = 1e-4  # snnTorch's importer fixes it
    weights, bias, p, spikes, expected = _model(1, dt, per_neuron=True)
    module = import_nir.import_from_nir(to_nir(weights, p, dt, bias=bias, target="snntorch"))

    def step(x):
        module(x)
        return module.li.mem  # its Synaptic neuron keeps the state (init_hidden=True)

    assert_matches(_run(step, spikes), expected, "float32", "snnTorch running to_nir(target='snntorch')")


def test_spikingjelly_runs_our_export():
    sj = _tool("spikingjelly.activation_based.nir_exchange", "spikingjelly==2.0.0")
    dt = 1e-3  # its importer takes dt; the graph records ours
    weights, bias, p, spikes, expected = _model(2, dt, per_neuron=False)
    graph = to_nir(weights, p, dt, bias=bias, target="spikingjelly")
    module = sj.import_from_nir(graph, dt=graph.metadata["dt"])
    state = None

    def step(x):
        nonlocal state
        _, state = module(x, state)
        return state["li"][0]  # CUBALIFNode's state (v, c)

    assert_matches(_run(step, spikes), expected, "float32", "SpikingJelly running to_nir(target='spikingjelly')")


def test_norse_runs_our_export():
    norse = _tool("norse.torch", "norse==1.1.0")
    dt = 5e-4  # its importer takes dt (default 1e-3)
    weights, bias, p, spikes, expected = _model(3, dt, per_neuron=True)
    graph = to_nir(weights, p, dt, bias=bias, target="norse")
    module = norse.from_nir(graph, dt=graph.metadata["dt"])
    state = None

    def step(x):
        nonlocal state
        _, state = module(x, state)
        return state.state["li"][0][1].v  # its CubaLIF's (synapse, membrane) states

    assert_matches(_run(step, spikes), expected, "float32", "Norse running to_nir(target='norse')")


# --- tool -> li-neurons ------------------------------------------------------------------------------------------


def _spikes(seed: int) -> torch.Tensor:
    return (torch.rand(STEPS, BATCH, INPUTS, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def test_snntorchs_export_runs_like_snntorch():
    """snnTorch's ``Synaptic`` (``syn = alpha*syn + x``, ``mem = beta*mem + syn``)
    exported by snnTorch as a ``CubaLIF`` (``r = tau_mem/dt``, ``w_in =
    tau_syn/dt``, its fixed ``dt = 1e-4``) with a threshold never reached:
    read with that ``dt``, it gives snnTorch's membrane potentials."""
    snn = _tool("snntorch", "snntorch==1.0.0")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    linear = torch.nn.Linear(INPUTS, NEURONS)
    alpha, beta = torch.tensor([0.9, 0.5, 0.99, 0.7]), torch.tensor([0.8, 0.7, 0.95, 0.99])
    spikes = _spikes(4)
    exported = snn.Synaptic(alpha=alpha, beta=beta, threshold=torch.full((NEURONS,), math.inf), init_hidden=True)
    graph = export_to_nir(torch.nn.Sequential(linear, exported), spikes[0, :1], ignore_dims=[0])
    simulated = snn.Synaptic(alpha=alpha, beta=beta, threshold=1e30)  # inf * 0 would make NaNs in its reset
    synaptic, membrane = simulated.init_synaptic()

    def step(x):
        nonlocal synaptic, membrane
        _, synaptic, membrane = simulated(linear(x), synaptic, membrane)
        return membrane

    voltages, _ = from_nir(graph, dt=1e-4)(spikes)
    assert_matches(voltages.numpy(), _run(step, spikes.numpy()), "float32", "snnTorch's Synaptic via from_nir")


def test_spikingjellys_export_runs_like_spikingjelly():
    """SpikingJelly's ``CUBALIFNode`` (``c = c_decay*c + x``, ``v = v_decay*v +
    c``), exported by SpikingJelly with snnTorch's conventions at its dt."""
    _tool("spikingjelly.activation_based.nir_exchange", "spikingjelly==2.0.0")
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    torch.manual_seed(0)
    cell = neuron.CUBALIFNode(c_decay=0.8, v_decay=0.95, v_threshold=math.inf, v_reset=0.0)
    net = torch.nn.Sequential(layer.Linear(INPUTS, NEURONS), cell)
    spikes = _spikes(5)
    dt = 1e-4
    graph = export_to_nir(net, spikes[0], dt=dt)
    functional.reset_net(net)

    def step(x):
        net(x)
        return cell.v

    voltages, _ = from_nir(graph, dt=dt)(spikes)
    assert_matches(voltages.numpy(), _run(step, spikes.numpy()), "float32", "SpikingJelly's CUBALIFNode via from_nir")


def _norse_parameters(norse):
    return norse.LIFParameters(
        tau_syn_inv=torch.tensor([200.0, 100.0, 400.0, 50.0]),
        tau_mem_inv=torch.tensor([100.0, 300.0, 50.0, 150.0]),
        v_leak=torch.tensor([0.0, 0.5, -0.3, 0.1]),
        v_th=torch.full((NEURONS,), math.inf),
    )


def test_norses_lifcell_export_runs_like_norse():
    """Norse 1.1 writes its ``LIFCell`` as a ``CubaLIF`` with ``tau = dt/tau_inv``
    and ``w_in = 1``, its fields torch tensors;
    ``source="norse"`` undoes that, and a cell that never spikes runs as Norse runs it."""
    norse = _tool("norse.torch", "norse==1.1.0")
    torch.manual_seed(0)
    dt = 1e-3
    model = norse.SequentialState(torch.nn.Linear(INPUTS, NEURONS), norse.LIFCell(_norse_parameters(norse), dt=dt))
    spikes = _spikes(6)
    graph = norse.to_nir(model, spikes[0], dt=dt)
    assert isinstance(graph.nodes["0"].weight, torch.Tensor)  # what from_nir crashed on before
    state = None

    def step(x):
        nonlocal state
        _, state = model(x, state)
        return state[1].v

    voltages, _ = from_nir(graph, dt=dt, source="norse")(spikes)
    assert_matches(voltages.numpy(), _run(step, spikes.numpy()), "float32", "Norse's LIFCell via from_nir")


def test_norses_liboxcell_export_runs_like_norse():
    """Norse's current-free ``LIBoxCell`` comes out as NIR's ``LI`` (``tau = dt/tau_mem_inv``)."""
    norse = _tool("norse.torch", "norse==1.1.0")
    torch.manual_seed(0)
    dt = 1e-3
    box = norse.LIBoxCell(
        norse.LIBoxParameters(
            tau_mem_inv=torch.tensor([100.0, 300.0, 50.0, 150.0]), v_leak=torch.tensor([0.0, 0.5, -0.3, 0.1])
        ),
        dt=dt,
    )
    model = norse.SequentialState(torch.nn.Linear(INPUTS, NEURONS), box)
    spikes = _spikes(7)
    graph = norse.to_nir(model, spikes[0], dt=dt)
    state = None

    def step(x):
        nonlocal state
        voltage, state = model(x, state)
        return voltage

    voltages, _ = from_nir(graph, dt=dt, source="norse")(spikes)
    assert_matches(voltages.numpy(), _run(step, spikes.numpy()), "float32", "Norse's LIBoxCell via from_nir")
