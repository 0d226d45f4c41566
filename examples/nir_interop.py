"""How li-neurons' NIR graphs and those of other tools read each other.

    python examples/nir_interop.py

Checks, with whichever of snnTorch and Norse are installed (neither is needed
by li-neurons; docs/nir.md explains every difference printed here):

- snnTorch's ``Synaptic`` neuron exported by snnTorch, read by ``from_nir``:
  the same membrane potentials as snnTorch computes;
- li-neurons' ``CubaLI`` graph read by snnTorch and by Norse;
- Norse's export of its leaky integrator (``LICell``) and of a ``LIFCell``
  that never spikes, read by ``from_nir``.
"""

from __future__ import annotations

import importlib.util
import math
import warnings

import numpy as np
import torch

from li_core import LIParameters
from li_core.nir import from_nir, to_nir
from li_core.testing.tolerances import error_ratio

warnings.filterwarnings("ignore", category=DeprecationWarning)  # nirtorch's own deprecations
torch.manual_seed(0)
SPIKES = (torch.rand(300, 4, 5) < 0.3).float()
WEIGHTS = torch.randn(3, 5) / math.sqrt(5)


def attempt(what: str, action) -> object:
    try:
        return action()
    except Exception as error:  # noqa: BLE001 - reporting what another tool does is the point
        print(f"  {what}: {type(error).__name__}: {str(error).splitlines()[0]}")
        return None


def snntorch_checks() -> None:
    import snntorch as snn
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir

    print("snnTorch", snn.__version__)
    linear = torch.nn.Linear(5, 3, bias=False)
    linear.weight.data = WEIGHTS.clone()
    alpha, beta = torch.tensor([0.9, 0.5, 0.99]), torch.tensor([0.8, 0.7, 0.95])
    never = snn.Synaptic(alpha=alpha, beta=beta, threshold=torch.full((3,), math.inf), init_hidden=True)
    graph = export_to_nir(torch.nn.Sequential(linear, never), SPIKES[0, :1], ignore_dims=[0])
    node = graph.nodes["1"]
    print(
        f"  export of Synaptic: {type(node).__name__} with r = tau_mem/dt = {np.round(node.r, 3)}, w_in = tau_syn/dt = {np.round(node.w_in, 3)}"
    )
    simulated = snn.Synaptic(alpha=alpha, beta=beta, threshold=1e30)
    synaptic, membrane = simulated.init_synaptic()
    theirs = []
    with torch.no_grad():
        for x in SPIKES:
            _, synaptic, membrane = simulated(linear(x), synaptic, membrane)
            theirs.append(membrane)
    ours, _ = from_nir(graph, dt=1e-4)(SPIKES)  # snnTorch writes its graphs for dt = 1e-4
    ratio = error_ratio(ours.numpy(), torch.stack(theirs).numpy(), "float32")
    print(f"  from_nir(snnTorch's graph, dt=1e-4) vs snnTorch's membrane: {ratio:.3f} x the float32 tolerance")
    attempt("import_from_nir(li-neurons' CubaLI graph)", lambda: import_from_nir(to_nir(WEIGHTS, LIParameters())))


def norse_checks() -> None:
    import norse
    import norse.torch as norse_torch

    print("Norse", norse.__version__ if hasattr(norse, "__version__") else "")
    readout = norse_torch.SequentialState(torch.nn.Linear(5, 3, bias=False), norse_torch.LICell())
    graph = norse_torch.to_nir(readout, torch.zeros(1, 5))
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    print(f"  to_nir(Linear, LICell): nodes {kinds}")
    attempt("from_nir(Norse's LICell graph)", lambda: from_nir(graph))
    p = norse_torch.LIFParameters(
        tau_syn_inv=torch.full((3,), 200.0),
        tau_mem_inv=torch.full((3,), 100.0),
        v_leak=torch.zeros(3),
        v_th=torch.full((3,), math.inf),
    )
    graph = norse_torch.to_nir(
        norse_torch.SequentialState(torch.nn.Linear(5, 3), norse_torch.LIFCell(p)), torch.zeros(1, 5)
    )
    node = next(node for node in graph.nodes.values() if type(node).__name__ == "CubaLIF")
    print(
        f"  to_nir(LIFCell(tau_syn = 5 ms, tau_mem = 10 ms), dt=1e-3): CubaLIF tau_syn = {float(node.tau_syn[0]):g} s, "
        f"tau_mem = {float(node.tau_mem[0]):g} s, w_in = {float(np.asarray(node.w_in)[0]):g}, r = {float(node.r[0]):g}"
    )
    print("  li-neurons writes: tau_syn = 0.005 s, tau_mem = 0.01 s, w_in = tau_syn/dt = 5, r = 1")
    module = attempt("Norse from_nir(li-neurons' graph)", lambda: norse_torch.from_nir(to_nir(WEIGHTS, LIParameters())))
    if module is not None:
        out, _ = module(SPIKES[0])
        kept = [type(child).__name__ for child in module.children()]
        silent = torch.allclose(out, SPIKES[0] @ WEIGHTS.T)
        print(f"  Norse from_nir(li-neurons' graph): modules {kept}; output is the projection alone: {silent}")


if __name__ == "__main__":
    for name, check in (("snntorch", snntorch_checks), ("norse", norse_checks)):
        if importlib.util.find_spec(name):
            check()
        else:
            print(f"{name} is not installed: skipped")
