"""NIR between li-neurons and the tools themselves: snnTorch, SpikingJelly,
Norse, Sinabs and Rockpool (each skips, saying why, where the tool is absent;
CI installs them all).

Both directions run in the other tool's own loop:

- ``to_nir(..., target=tool)`` read by the tool's importer and simulated by
  it gives ``li_scan``'s voltages within the float32 tolerance;
- each tool's own export of a neuron that never spikes, read by ``from_nir``,
  gives that tool's own simulation within the float32 tolerance;
- ``to_nir(...)`` without a target (NIR's ``CubaLI``) given to each tool's
  importer does what docs/nir.md says it does.
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


# --- Sinabs ------------------------------------------------------------------------------------------------------


def _sinabs_voltages(graph, spikes: np.ndarray) -> np.ndarray:
    """Sinabs's importer and simulation: layers on ``[batch*time, n]``, the last ExpLeak's output its voltage."""
    sinabs = _tool("sinabs", "sinabs==3.1.3")
    steps, batch = spikes.shape[:2]
    module = sinabs.from_nir(graph, batch_size=batch, num_timesteps=steps)
    flat = torch.from_numpy(spikes).transpose(0, 1).reshape(batch * steps, -1)
    with torch.no_grad():
        voltages, _ = module(flat)  # nirtorch's executor returns (output, state)
    return voltages.reshape(batch, steps, -1).transpose(0, 1).double().numpy()


def test_sinabs_runs_our_export_without_a_current_layer():
    """``dt*tau_syn_inv = 1`` (the current lasts one step): one ExpLeak layer."""
    weights, offsets, _, spikes, _ = _model(9, 1e-3, per_neuron=True)
    p = LIParameters(1e3, np.array([100.0, 50.0, 200.0, 20.0]))
    expected, _ = li_scan(spikes.astype(np.float64) @ weights.T + offsets, None, None, p, 1e-3, backend="numpy")
    graph = to_nir(weights, p, 1e-3, bias=offsets, target="sinabs")
    assert [type(node).__name__ for node in graph.nodes.values()] == ["Input", "Affine", "LI", "Output"]
    assert_matches(_sinabs_voltages(graph, spikes), expected, "float32", "Sinabs running one ExpLeak layer")


@pytest.mark.parametrize("norm_input", [False, True])
@pytest.mark.parametrize("layers", [1, 2], ids=["ExpLeak", "ExpLeak-ExpLeak"])
def test_sinabs_export_runs_like_sinabs(layers, norm_input):
    """Sinabs's ``Linear -> ExpLeak`` (and ``-> ExpLeak``, a current and a
    voltage) exports as ``Affine -> LI [-> LI]`` with tau in steps and no
    ``norm_input``: ``source="sinabs"`` with the layers' ``norm_input`` reads it."""
    sl = _tool("sinabs.layers", "sinabs==3.1.3")
    import sinabs

    torch.manual_seed(0)
    taus = [torch.tensor([3.0, 5.0, 7.0, 2.0]), torch.tensor(10.0)][:layers]
    net = torch.nn.Sequential(
        torch.nn.Linear(INPUTS, NEURONS), *(sl.ExpLeak(tau_mem=tau, norm_input=norm_input) for tau in taus)
    )
    spikes = _spikes(10)
    with torch.no_grad():  # before exporting: the export runs the net, which keeps its state
        theirs = net(spikes.transpose(0, 1)).transpose(0, 1)  # Sinabs is batch-first
    graph = sinabs.to_nir(net, spikes[:1])
    voltages, _ = from_nir(graph, dt=1e-3, source="sinabs", norm_input=norm_input)(spikes)
    assert_matches(voltages.numpy(), theirs.double().numpy(), "float32", f"Sinabs's {layers} ExpLeak via from_nir")


# --- Rockpool ----------------------------------------------------------------------------------------------------


def _rockpool_voltages(graph, spikes: np.ndarray) -> np.ndarray:
    """Rockpool's importer and simulation; its LIFTorch records its voltages when asked (``_record``)."""
    rockpool_nir = _tool("rockpool.nn.modules.torch.nir", "rockpool==3.1.0")
    module = rockpool_nir.from_nir(graph)
    module.li._record = True
    with torch.no_grad():
        module(torch.from_numpy(spikes).transpose(0, 1))  # batch-first
    return module.li._record_dict["vmem"].transpose(0, 1).double().numpy()


#: tool -> (the seed of its case, how it runs a graph)
RUNNERS = {"sinabs": (8, _sinabs_voltages), "rockpool": (11, _rockpool_voltages)}


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize(("dt", "per_neuron"), [(1e-3, True), (1e-4, False)])
@pytest.mark.parametrize("tool", RUNNERS)
def test_the_tool_runs_our_export(tool, dt, per_neuron, bias):
    """``to_nir(target=tool)`` run by the tool. Sinabs: two ExpLeak layers
    (current and voltage), time constants in steps, Affine weights scaled by
    dt*tau_mem_inv. Rockpool: LIFTorch with time constants exp(-dt/tau) =
    1 - dt*tau_inv, its dt from ``r``, the largest float32 as threshold."""
    seed, run = RUNNERS[tool]
    weights, offsets, p, spikes, expected = _model(seed, dt, per_neuron=per_neuron)
    if not bias:
        expected, _ = li_scan(spikes.astype(np.float64) @ weights.T, None, None, p, dt, backend="numpy")
    graph = to_nir(weights, p, dt, bias=offsets if bias else None, target=tool)
    assert_matches(run(graph, spikes), expected, "float32", f"{tool} running to_nir(target={tool!r})")


def test_torch_modules_export_for_sinabs_and_rockpool():
    """``LILinearCell(...).to_nir(target=...)`` runs in both tools as the module runs."""
    from li_backends.torch_nn import LILinearCell

    torch.manual_seed(0)
    p = LIParameters(torch.tensor([200.0, 300.0, 150.0, 400.0]), torch.tensor([100.0, 50.0, 120.0, 80.0]))
    cell = LILinearCell(INPUTS, NEURONS, p=p, dt=1e-3)
    spikes = _spikes(12)
    state, expected = None, []
    with torch.no_grad():
        for x in spikes:
            v, state = cell(x, state)
            expected.append(v.double().numpy())
    ours = {"sinabs": _sinabs_voltages, "rockpool": _rockpool_voltages}
    for target, run in ours.items():
        _tool(target, f"{target}==3.1.{3 if target == 'sinabs' else 0}")
        voltages = run(cell.to_nir(target=target), spikes.numpy())
        assert_matches(voltages, np.array(expected), "float32", f"{target} running LILinearCell.to_nir(target=...)")


def test_rockpool_export_runs_like_rockpool():
    """Rockpool's ``LinearTorch -> LIFTorch`` (threshold the largest float32:
    +inf makes its own voltages NaN) exports as ``Affine -> CubaLIF`` with
    ``r = tau_mem e^(-dt/tau_mem) / dt`` and no dt; ``source="rockpool"``
    recovers dt from ``r``. Its ``ExpSynTorch`` comes out as ``LI``."""
    _tool("rockpool.nn.modules.torch.nir", "rockpool==3.1.0")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import ExpSynTorch, LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir as rockpool_to_nir

    from li_core.nir import NEVER_FIRES

    torch.manual_seed(0)
    dt, spikes = 1e-3, _spikes(13)
    tau_mem, tau_syn = torch.tensor([0.01, 0.02, 0.015, 0.03]), torch.tensor([0.005, 0.004, 0.008, 0.002])
    lif = LIFTorch(NEURONS, tau_mem=tau_mem, tau_syn=tau_syn, threshold=NEVER_FIRES, dt=dt)
    net = Sequential(LinearTorch((INPUTS, NEURONS), has_bias=True), lif)
    with torch.no_grad():
        _, _, record = net(spikes.transpose(0, 1), record=True)
    graph = rockpool_to_nir(net)
    model = from_nir(graph, source="rockpool")
    assert model.dt == pytest.approx(dt, rel=1e-6)  # Rockpool's r is float32
    theirs = record["1_LIFTorch"]["vmem"].transpose(0, 1).double().numpy()
    assert_matches(model(spikes)[0].numpy(), theirs, "float32", "Rockpool's LIFTorch via from_nir")
    net = Sequential(LinearTorch((INPUTS, NEURONS)), ExpSynTorch(NEURONS, tau=tau_syn, dt=dt))
    with torch.no_grad():
        theirs, _, _ = net(spikes.transpose(0, 1))
    voltages, _ = from_nir(rockpool_to_nir(net), source="rockpool")(spikes)
    expected = theirs.transpose(0, 1).double().numpy()
    assert_matches(voltages.numpy(), expected, "float32", "Rockpool's ExpSynTorch via from_nir")


# --- a plain CubaLI (no target) given to each tool: what docs/nir.md's third column says --------------------------


def _plain():
    return to_nir(torch.randn(NEURONS, INPUTS).numpy(), LIParameters(), 1e-3)


def test_snntorch_and_spikingjelly_refuse_a_plain_cubali():
    for module, pip in (
        ("snntorch.import_nir", "snntorch==1.0.0"),
        ("spikingjelly.activation_based.nir_exchange", "spikingjelly==2.0.0"),
    ):
        importer = _tool(module, pip)
        with pytest.raises(ValueError, match=r"Unknown node type .*CubaLI"):
            importer.import_from_nir(_plain())


def test_norse_drops_a_plain_cubali_without_a_word():
    norse = _tool("norse.torch", "norse==1.1.0")
    graph = _plain()
    module = norse.from_nir(graph)
    x = torch.ones(1, INPUTS)
    output, _ = module(x)
    weights = torch.as_tensor(graph.nodes["linear"].weight, dtype=torch.float32)
    torch.testing.assert_close(output, x @ weights.T)  # the projection alone: no dynamics


def test_sinabs_refuses_a_plain_cubali_or_runs_its_projection_alone():
    _tool("sinabs", "sinabs==3.1.3")
    with pytest.raises(KeyError, match="linear"):  # its importer reads Affine, not Linear
        _sinabs_voltages(_plain(), np.ones((3, BATCH, INPUTS), dtype=np.float32))
    weights, bias = np.ones((NEURONS, INPUTS)), np.arange(NEURONS, dtype=np.float64)
    graph = to_nir(weights, LIParameters(), 1e-3, bias=bias)
    voltages = _sinabs_voltages(graph, np.ones((3, BATCH, INPUTS), dtype=np.float32))
    np.testing.assert_allclose(voltages, np.broadcast_to(INPUTS + bias, voltages.shape))  # CubaLI skipped


def test_rockpool_refuses_a_plain_cubali():
    rockpool_nir = _tool("rockpool.nn.modules.torch.nir", "rockpool==3.1.0")
    with pytest.raises(NotImplementedError, match="CubaLI"):
        rockpool_nir.from_nir(_plain())
