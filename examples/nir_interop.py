"""How li-neurons' NIR graphs and those of snnTorch, SpikingJelly, Norse, Sinabs and Rockpool read each other.

    python examples/nir_interop.py [--json PATH]

Prints the matrix of docs/nir.md, for whichever of the tools are installed
(none is needed by li-neurons). For each tool:

- ``to_nir(..., target=tool)``: the graph written for the tool, read by its own
  importer and simulated by it step by step, against ``li_scan``;
- the tool's own export of a neuron that never spikes, read by ``from_nir``,
  against the tool's own simulation;
- ``to_nir(...)`` without a target (NIR's ``CubaLI``), given to the tool's importer.

Errors are the largest absolute difference and its ratio to the float32
tolerance of the contract (a ratio below 1 passes). The matrix, its errors
and ratios (``figures``) and the tools' versions go to docs/results/nir.json
through benchmarks/recording.py (``--json PATH`` stores it elsewhere).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from li_core import LIParameters, li_scan
from li_core.nir import from_nir, to_nir
from li_core.testing.tolerances import error_ratio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from recording import table, write_report

warnings.filterwarnings("ignore", category=DeprecationWarning)  # nirtorch's own deprecations
STEPS, BATCH, INPUTS, NEURONS = 300, 2, 5, 4


def model(dt: float, *, per_neuron: bool, seed: int = 0):
    """Weights, bias, parameters (v_leak = 0: none of the tools has one), spikes and li_scan's voltages."""
    rng = np.random.default_rng(seed)
    size = NEURONS if per_neuron else 1
    tau_syn_inv, tau_mem_inv = rng.uniform(0.05, 0.5, size) / dt, rng.uniform(0.02, 0.2, size) / dt
    p = LIParameters(
        tau_syn_inv if per_neuron else float(tau_syn_inv[0]), tau_mem_inv if per_neuron else float(tau_mem_inv[0]), 0.0
    )
    weights, bias = rng.normal(size=(NEURONS, INPUTS)), rng.normal(size=NEURONS)
    spikes = (rng.random((STEPS, BATCH, INPUTS)) < 0.3).astype(np.float32)
    expected, _ = li_scan(spikes.astype(np.float64) @ weights.T + bias, None, None, p, dt, backend="numpy")
    return weights, bias, p, spikes, expected


def run(step, spikes) -> np.ndarray:
    """The voltages ``step(x) -> v`` gives over a sequence."""
    with torch.no_grad():
        return np.stack([step(torch.as_tensor(x)).detach().double().numpy().copy() for x in spikes])


def compare(ours, theirs) -> dict[str, float]:
    """The largest absolute difference and its ratio to the float32 tolerance."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return {"max error": float(np.abs(ours - theirs).max()), "error / tolerance": error_ratio(ours, theirs, "float32")}


def attempt(action, note: str = "") -> dict[str, float] | str:
    """What ``action`` returns (errors, or what the tool did), or the error it
    raised in one line; ``note`` follows a text result."""
    try:
        result = action()
    except Exception as error:  # noqa: BLE001 - reporting what another tool does is the point
        result = f"{type(error).__name__}: {str(error).splitlines()[0][:90]}"
    return result + note if isinstance(result, str) else result


def cell(result: dict[str, float] | str) -> str:
    if isinstance(result, str):
        return result
    error = f"{result['max error']:.1e}".replace("e-0", "e-")
    return f"{error} ({result['error / tolerance']:.3f})"


# --- snnTorch ----------------------------------------------------------------------------------------------------


def snntorch_row() -> dict[str, dict[str, float] | str]:
    import snntorch as snn
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir

    def ours_in_snntorch() -> str:
        weights, bias, p, spikes, expected = model(1e-4, per_neuron=True)
        module = import_from_nir(to_nir(weights, p, 1e-4, bias=bias, target="snntorch"))
        return compare(run(lambda x: (module(x), module.li.mem)[1], spikes), expected)

    def theirs_in_ours() -> str:
        torch.manual_seed(0)
        linear = torch.nn.Linear(INPUTS, NEURONS)
        alpha, beta = torch.tensor([0.9, 0.5, 0.99, 0.7]), torch.tensor([0.8, 0.7, 0.95, 0.99])
        spikes = (torch.rand(STEPS, BATCH, INPUTS) < 0.3).float()
        never = snn.Synaptic(alpha=alpha, beta=beta, threshold=torch.full((NEURONS,), math.inf), init_hidden=True)
        graph = export_to_nir(torch.nn.Sequential(linear, never), spikes[0, :1], ignore_dims=[0])
        simulated = snn.Synaptic(alpha=alpha, beta=beta, threshold=1e30)  # inf * 0 would make NaNs in its reset
        state = list(simulated.init_synaptic())

        def step(x):
            _, state[0], state[1] = simulated(linear(x), *state)
            return state[1]

        return compare(from_nir(graph, dt=1e-4)(spikes)[0], run(step, spikes))

    plain = to_nir(np.ones((NEURONS, INPUTS)), LIParameters(), 1e-4)
    return {
        "to_nir(target=...) run by the tool": attempt(ours_in_snntorch),
        "the tool's export read by from_nir": attempt(theirs_in_ours),
        "CubaLI (no target) given to the tool": attempt(lambda: str(import_from_nir(plain))),
    }


# --- SpikingJelly ------------------------------------------------------------------------------------------------


def spikingjelly_row() -> dict[str, dict[str, float] | str]:
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir, import_from_nir

    def ours_in_spikingjelly() -> str:
        weights, bias, p, spikes, expected = model(1e-3, per_neuron=False)
        graph = to_nir(weights, p, 1e-3, bias=bias, target="spikingjelly")
        module, state = import_from_nir(graph, dt=graph.metadata["dt"]), [None]

        def step(x):
            _, state[0] = module(x, state[0])
            return state[0]["li"][0]

        return compare(run(step, spikes), expected)

    def theirs_in_ours() -> str:
        torch.manual_seed(0)
        cell = neuron.CUBALIFNode(c_decay=0.8, v_decay=0.95, v_threshold=math.inf, v_reset=0.0)
        net = torch.nn.Sequential(layer.Linear(INPUTS, NEURONS), cell)
        spikes = (torch.rand(STEPS, BATCH, INPUTS) < 0.3).float()
        graph = export_to_nir(net, spikes[0], dt=1e-4)
        functional.reset_net(net)
        return compare(from_nir(graph, dt=1e-4)(spikes)[0], run(lambda x: (net(x), cell.v)[1], spikes))

    plain = to_nir(np.ones((NEURONS, INPUTS)), LIParameters(), 1e-4)
    return {
        "to_nir(target=...) run by the tool": attempt(ours_in_spikingjelly),
        "the tool's export read by from_nir": attempt(theirs_in_ours),
        "CubaLI (no target) given to the tool": attempt(lambda: str(import_from_nir(plain))),
    }


# --- Norse -------------------------------------------------------------------------------------------------------


def norse_row() -> dict[str, dict[str, float] | str]:
    import norse.torch as norse

    def ours_in_norse() -> str:
        weights, bias, p, spikes, expected = model(5e-4, per_neuron=True)
        graph = to_nir(weights, p, 5e-4, bias=bias, target="norse")
        module, state = norse.from_nir(graph, dt=graph.metadata["dt"]), [None]

        def step(x):
            _, state[0] = module(x, state[0])
            return state[0].state["li"][0][1].v

        return compare(run(step, spikes), expected)

    def theirs_in_ours() -> str:
        torch.manual_seed(0)
        p = norse.LIFParameters(
            tau_syn_inv=torch.tensor([200.0, 100.0, 400.0, 50.0]),
            tau_mem_inv=torch.tensor([100.0, 300.0, 50.0, 150.0]),
            v_leak=torch.tensor([0.0, 0.5, -0.3, 0.1]),
            v_th=torch.full((NEURONS,), math.inf),
        )
        net = norse.SequentialState(torch.nn.Linear(INPUTS, NEURONS), norse.LIFCell(p))
        spikes = (torch.rand(STEPS, BATCH, INPUTS) < 0.3).float()
        graph, state = norse.to_nir(net, spikes[0]), [None]

        def step(x):
            _, state[0] = net(x, state[0])
            return state[0][1].v

        return compare(from_nir(graph, dt=1e-3, source="norse")(spikes)[0], run(step, spikes))

    def plain_in_norse() -> str:
        weights = torch.randn(NEURONS, INPUTS)
        module = norse.from_nir(to_nir(weights, LIParameters(), 1e-3))
        kept = [type(child).__name__ for child in module.children()]
        x = torch.ones(1, INPUTS)
        projection = torch.allclose(module(x)[0], x @ weights.T)
        return f"no error: modules {kept}, output is the weighted input alone: {projection}"

    return {
        "to_nir(target=...) run by the tool": attempt(ours_in_norse),
        "the tool's export read by from_nir": attempt(theirs_in_ours),
        "CubaLI (no target) given to the tool": attempt(plain_in_norse),
    }


# --- Sinabs ------------------------------------------------------------------------------------------------------


def sinabs_row() -> dict[str, dict[str, float] | str]:
    import sinabs
    import sinabs.layers as sl

    def simulate(graph, spikes):
        module = sinabs.from_nir(graph, batch_size=BATCH, num_timesteps=STEPS)  # it runs [batch*time, n]
        flat = torch.as_tensor(spikes).transpose(0, 1).reshape(BATCH * STEPS, -1)
        with torch.no_grad():
            return module(flat)[0].reshape(BATCH, STEPS, -1).transpose(0, 1)

    def ours_in_sinabs() -> dict[str, float]:
        weights, bias, p, spikes, expected = model(1e-3, per_neuron=True)
        return compare(simulate(to_nir(weights, p, 1e-3, bias=bias, target="sinabs"), spikes), expected)

    def theirs_in_ours() -> dict[str, float]:
        torch.manual_seed(0)
        current, voltage = sl.ExpLeak(tau_mem=torch.tensor([3.0, 5.0, 7.0, 2.0])), sl.ExpLeak(tau_mem=10.0)
        net = torch.nn.Sequential(torch.nn.Linear(INPUTS, NEURONS), current, voltage)
        spikes = (torch.rand(STEPS, BATCH, INPUTS) < 0.3).float()
        with torch.no_grad():
            theirs = net(spikes.transpose(0, 1)).transpose(0, 1)
        graph = sinabs.to_nir(net, spikes[:1])
        return compare(from_nir(graph, dt=1e-3, source="sinabs")(spikes)[0], theirs)

    plain = to_nir(np.ones((NEURONS, INPUTS)), LIParameters(), 1e-3)
    return {
        "to_nir(target=...) run by the tool": attempt(ours_in_sinabs),
        "the tool's export read by from_nir": attempt(theirs_in_ours),
        "CubaLI (no target) given to the tool": attempt(lambda: str(simulate(plain, np.ones((STEPS, BATCH, INPUTS))))),
    }


# --- Rockpool ----------------------------------------------------------------------------------------------------


def rockpool_row() -> dict[str, dict[str, float] | str]:
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import from_nir as rockpool_from_nir
    from rockpool.nn.modules.torch.nir import to_nir as rockpool_to_nir

    from li_core.nir import NEVER_FIRES

    def ours_in_rockpool() -> dict[str, float]:
        weights, bias, p, spikes, expected = model(1e-3, per_neuron=True)
        module = rockpool_from_nir(to_nir(weights, p, 1e-3, bias=bias, target="rockpool"))
        module.li._record = True  # its LIFTorch then keeps the voltages
        with torch.no_grad():
            module(torch.as_tensor(spikes).transpose(0, 1))
        return compare(module.li._record_dict["vmem"].transpose(0, 1), expected)

    def theirs_in_ours() -> dict[str, float]:
        torch.manual_seed(0)
        tau_mem, tau_syn = torch.tensor([0.01, 0.02, 0.015, 0.03]), torch.tensor([0.005, 0.004, 0.008, 0.002])
        lif = LIFTorch(NEURONS, tau_mem=tau_mem, tau_syn=tau_syn, threshold=NEVER_FIRES, dt=1e-3)
        net = Sequential(LinearTorch((INPUTS, NEURONS), has_bias=True), lif)
        spikes = (torch.rand(STEPS, BATCH, INPUTS) < 0.3).float()
        with torch.no_grad():
            _, _, record = net(spikes.transpose(0, 1), record=True)
        voltages, _ = from_nir(rockpool_to_nir(net), source="rockpool")(spikes)  # dt from r
        return compare(voltages, record["1_LIFTorch"]["vmem"].transpose(0, 1))

    plain = to_nir(np.ones((NEURONS, INPUTS)), LIParameters(), 1e-3)
    return {
        "to_nir(target=...) run by the tool": attempt(ours_in_rockpool),
        "the tool's export read by from_nir": attempt(theirs_in_ours),
        "CubaLI (no target) given to the tool": attempt(lambda: str(rockpool_from_nir(plain))),
    }


#: what each tool exported for the second direction
EXPORTED = {
    "snntorch": "`Synaptic`, `dt=1e-4`",
    "spikingjelly": "`CUBALIFNode`, `dt=1e-4`",
    "norse": "`LIFCell`, `source='norse'`",
    "sinabs": "`ExpLeak -> ExpLeak`, `source='sinabs'`",
    "rockpool": "`LIFTorch`, `source='rockpool'`, dt from `r`",
}
#: how each tool's row is measured
ROWS = {
    "snntorch": snntorch_row,
    "spikingjelly": spikingjelly_row,
    "norse": norse_row,
    "sinabs": sinabs_row,
    "rockpool": rockpool_row,
}
DIRECTIONS = (
    "to_nir(target=...) run by the tool",
    "the tool's export read by from_nir",
    "CubaLI (no target) given to the tool",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None, help="where to store the matrix (default docs/results/nir.json)")
    args = parser.parse_args()
    versions = {"nirtorch": _version("nirtorch"), "nir": _version("nir")}
    figures: dict[str, float] = {}
    rows = []
    for name, row in ROWS.items():
        if importlib.util.find_spec(name) is None:
            print(f"{name} is not installed: skipped")
            continue
        results = row()
        versions[name] = _version(name)
        print(f"{name} {versions[name]}")
        for direction, result in results.items():
            print(f"  {direction:38} {cell(result)}")
            if not isinstance(result, str):
                figures.update({f"{name}, {direction}, {key}": value for key, value in result.items()})
        rows.append([name, *(cell(results[direction]) for direction in DIRECTIONS)])
        rows[-1][2] = f"{EXPORTED[name]}: {rows[-1][2]}"
    settings = {"steps": STEPS, "batch": BATCH, "inputs": INPUTS, "neurons": NEURONS, "versions": versions}
    tables = {"matrix": table(["tool", *DIRECTIONS], rows)}
    print("stored in", write_report("nir", settings, figures, tables, args.json))


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
