"""Exchanging leaky integrators with other tools through NIR.

NIR (the Neuromorphic Intermediate Representation, the ``nir`` package:
the ``nir`` extra) describes a population of these neurons as
a ``CubaLI`` node in continuous time,

    tau_syn * dI/dt = -I + w_in * S,        tau_mem * dv/dt = (v_leak - v) + r * I,

where ``S`` is the node's input, held constant over each time step of length
``dt``. The discrete step of the contract (docs/contract.md, section 1) is this
model with ``tau_syn = 1/tau_syn_inv``, ``tau_mem = 1/tau_mem_inv`` and a
current jump of ``g * S`` per step, where ``g = r * w_in * dt / tau_syn``, our
current ``i`` being ``r * I``. So:

- :func:`to_nir` writes ``r = 1`` and ``w_in = tau_syn / dt`` (``g = 1``: the
  input jumps the current by exactly the weighted input, as in ``li_step``);
- :func:`from_nir` honours any ``r`` and ``w_in`` by scaling each neuron's
  input by ``g``; for NIR's current-free ``LI`` node (``tau dv/dt =
  (v_leak - v) + r*I``) it uses ``tau_syn_inv = 1/dt`` (the current decays
  fully within each step, ``i = 0``) and ``g = r``.

docs/nir.md derives this mapping and lists what other tools do differently.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np

from .api import li_scan
from .arrays import describe, device, library_name, namespace
from .backend import Backend, install_command
from .registry import get_backend, list_backends
from .types import LIParameters, LIState
from .validation import check_dt

try:
    import nir
except ImportError as error:  # the extra is optional; say how to get it
    raise ImportError(f"li_core.nir needs the nir package: {install_command('nir')} ({error})") from error

__all__ = ["NIRModel", "from_nir", "module_to_nir", "to_nir"]

_PREPROCESSING = (nir.Linear, nir.Affine, nir.Scale)
_NEURONS = (nir.CubaLI, nir.LI, nir.CubaLIF, nir.LIF)
_SUPPORTED = "Input, Linear, Affine, Scale, CubaLI, LI (and CubaLIF/LIF whose v_threshold is +inf), Output"
_ROUNDING = 8 * np.finfo(np.float64).eps  # a gain this close to 1 is 1 up to the round-off of tau_syn/dt * dt/tau_syn


def _host(x: Any, argument: str) -> np.ndarray:
    """``x`` (a Python number or an array of any supported library) as a float64 NumPy array."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return np.asarray(float(x))
    if isinstance(x, np.ndarray):
        return x.astype(np.float64)
    if library_name(x) is None:
        raise TypeError(f"{argument} must be a number or an array, got {describe(x)}")
    backends = sorted((get_backend(info.name) for info in list_backends() if info.available), key=lambda b: -b.priority)
    owner = next((b for b in backends if b.handles(x)), None)
    if owner is None:
        raise TypeError(f"{argument}: no available backend reads {describe(x)}")
    return np.asarray(owner.to_numpy(x), dtype=np.float64)


def _neuron_parameters(p: LIParameters, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    values = {}
    for name, value in zip(LIParameters._fields, p):
        array = _host(value, f"p.{name}")
        try:
            values[name] = np.broadcast_to(array, shape).copy()
        except ValueError:
            raise ValueError(
                f"p.{name} has shape {array.shape}, which does not broadcast to the neurons {shape}"
            ) from None
    for name in ("tau_syn_inv", "tau_mem_inv"):
        if not (np.all(np.isfinite(values[name])) and np.all(values[name] > 0)):
            raise ValueError(f"p.{name} must be finite and > 0 to be written as a time constant, got {values[name]}")
    return values


def to_nir(
    input_weights: Any,
    p: LIParameters = LIParameters(),
    dt: float = 0.001,
    *,
    bias: Any = None,
    shape: int | tuple[int, ...] | None = None,
) -> nir.NIRGraph:
    """The NIR graph ``Input -> Linear -> CubaLI -> Output`` of leaky integrators
    driven through ``input_weights`` ``[out, in]`` (``Affine`` when ``bias``
    ``[out]`` is given: a constant input current added every step).

    ``input_weights=None`` gives ``Input -> CubaLI -> Output`` for neurons of
    ``shape`` (default: the shape the per-neuron parameters broadcast to).
    Weights and parameters may be arrays of any supported library. The
    ``CubaLI`` node has ``tau_syn = 1/tau_syn_inv``, ``tau_mem = 1/tau_mem_inv``,
    ``v_leak``, ``r = 1`` and ``w_in = tau_syn/dt``, so that a simulator
    holding the input for ``dt`` jumps the current by the weighted input each
    step; the graph's metadata records ``dt``.
    """
    dt = check_dt(dt)
    nodes: dict[str, nir.NIRNode] = {}
    if input_weights is not None:
        weights = _host(input_weights, "input_weights")
        if weights.ndim != 2:
            raise ValueError(f"input_weights must be a matrix [out, in], got shape {weights.shape}")
        if shape is not None and tuple(np.atleast_1d(shape)) != weights.shape[:1]:
            raise ValueError(f"shape {shape} contradicts input_weights of shape {weights.shape} ([out, in])")
        neurons: tuple[int, ...] = weights.shape[:1]
        input_shape: tuple[int, ...] = weights.shape[1:]
        if bias is None:
            nodes["linear"] = nir.Linear(weight=weights)
        else:
            offsets = _host(bias, "bias")
            if offsets.shape != neurons:
                raise ValueError(f"bias must have shape {neurons} (one per output neuron), got {offsets.shape}")
            nodes["affine"] = nir.Affine(weight=weights, bias=offsets)
    else:
        if bias is not None:
            raise ValueError("bias needs input_weights (a bias without weights is an Affine node with no matrix)")
        if shape is None:
            shape = np.broadcast_shapes(*(_host(value, f"p.{name}").shape for name, value in zip(p._fields, p)))
            if shape == ():
                raise ValueError("without input_weights, pass shape= (the neuron shape): the parameters are scalars")
        neurons = input_shape = tuple(int(n) for n in np.atleast_1d(shape))
    values = _neuron_parameters(p, neurons)
    tau_syn = 1.0 / values["tau_syn_inv"]
    nodes["li"] = nir.CubaLI(
        tau_syn=tau_syn,
        tau_mem=1.0 / values["tau_mem_inv"],
        r=np.ones(neurons),
        v_leak=values["v_leak"],
        w_in=tau_syn / dt,
    )
    nodes = {"input": nir.Input(input_type=np.array(input_shape)), **nodes, "output": nir.Output(np.array(neurons))}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(names)), metadata={"dt": dt})


def module_to_nir(module: Any, *, shape: int | tuple[int, ...] | None = None) -> nir.NIRGraph:
    """:func:`to_nir` for a module that has ``p`` and ``dt`` (and, like
    ``LILinearCell``, ``input_weights``): the ``torch.nn`` modules of
    ``li_backends.torch_nn``. Weightless modules (``LI``, ``LICell``) need
    ``shape`` unless their parameters are per-neuron tensors."""
    return to_nir(getattr(module, "input_weights", None), module.p, module.dt, shape=shape)


class NIRModel:
    """Leaky integrators read from a NIR graph, run by ``li_scan``.

    ``model(inputs, state=None, *, backend=None, record_states=False)`` takes
    time-first ``inputs`` ``[T, *batch, *input_shape]`` of any supported
    library and returns ``(voltages [T, *batch, *neurons], state)`` in that
    library, dtype and device. The input map the graph applies before the
    neurons (weights, bias, elementwise gain) is folded into
    ``input_weights`` ``[out, in]`` (or ``None``), ``bias`` and ``gain``
    (NumPy arrays or ``None``); ``p`` holds Python floats where a parameter is
    the same for every neuron, else NumPy arrays. The state is this library's
    ``LIState``: ``v`` is NIR's ``v`` and ``i`` is ``r * I``.
    """

    def __init__(
        self,
        input_weights: np.ndarray | None,
        bias: np.ndarray | None,
        gain: np.ndarray | None,
        p: LIParameters,
        dt: float,
    ) -> None:
        self.input_weights, self.bias, self.gain, self.p, self.dt = input_weights, bias, gain, p, dt

    def __repr__(self) -> str:
        def show(value: Any) -> str:
            return "None" if value is None else f"{value:g}" if isinstance(value, float) else f"array{value.shape}"

        p = ", ".join(f"{name}={show(value)}" for name, value in zip(LIParameters._fields, self.p))
        return (
            f"NIRModel(input_weights={show(self.input_weights)}, bias={show(self.bias)}, gain={show(self.gain)}, "
            f"p=LIParameters({p}), dt={self.dt:g})"
        )

    def __call__(
        self,
        inputs: Any,
        state: LIState | None = None,
        *,
        backend: str | Backend | None = None,
        record_states: bool = False,
    ) -> tuple[Any, LIState]:
        library = library_name(inputs)
        if library is None:
            raise TypeError(f"inputs must be an array of a supported library, got {describe(inputs)}")
        xp, where, dtype = namespace(inputs), device(inputs, library), inputs.dtype

        def like_inputs(value: Any) -> Any:
            return value if value is None or isinstance(value, float) else xp.asarray(value, dtype=dtype, device=where)

        p = LIParameters(*(like_inputs(value) for value in self.p))
        weights, bias, gain = (like_inputs(value) for value in (self.input_weights, self.bias, self.gain))
        if weights is not None and bias is None:  # li_scan projects all steps at once
            return li_scan(inputs, state, weights, p, self.dt, backend=backend, record_states=record_states)
        currents = inputs @ weights.T if weights is not None else inputs
        if gain is not None:
            currents = currents * gain
        if bias is not None:
            currents = currents + bias
        return li_scan(currents, state, None, p, self.dt, backend=backend, record_states=record_states)


def _refuse_unsupported(nodes: dict[str, nir.NIRNode]) -> None:
    for name, node in nodes.items():
        if not isinstance(node, (nir.Input, nir.Output, *_PREPROCESSING, *_NEURONS)):
            kind = f"a nir.{type(node).__name__}" if isinstance(node, nir.NIRNode) else f"{node!r}, not a NIR node"
            raise ValueError(
                f"from_nir: node {name!r} is {kind}, which li-neurons cannot run (supported: {_SUPPORTED})"
            )


def _chain(graph: nir.NIRGraph) -> list[tuple[str, nir.NIRNode]]:
    """The nodes between the graph's one ``Input`` and its ``Output``, in
    order; anything but a single unbranched chain of supported nodes is refused."""
    _refuse_unsupported(graph.nodes)
    successors: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for source, target in graph.edges:
        successors[source].append(target)
    starts = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(starts) != 1:
        raise ValueError(f"from_nir: the graph must have exactly one Input node, found {len(starts)}")
    chain = [starts[0]]
    while not isinstance(graph.nodes[chain[-1]], nir.Output):
        following = successors[chain[-1]]
        if len(following) != 1 or following[0] in chain:
            raise ValueError(
                f"from_nir: node {chain[-1]!r} leads to {following}; li-neurons runs one chain "
                f"Input -> maps -> neurons -> Output without branches or loops"
            )
        chain.append(following[0])
    if len(chain) != len(graph.nodes):
        unused = sorted(set(graph.nodes) - set(chain))
        raise ValueError(f"from_nir: nodes {unused} are not on the chain from Input to Output")
    return [(name, graph.nodes[name]) for name in chain[1:-1]]


def _neuron(name: str, node: nir.NIRNode, dt: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The contract's parameters of a neuron node and its per-neuron input gain."""
    if isinstance(node, (nir.CubaLIF, nir.LIF)) and not np.all(np.isposinf(node.v_threshold)):
        raise ValueError(
            f"from_nir: node {name!r} is a nir.{type(node).__name__} with a finite v_threshold; it spikes, "
            f"and leaky integrators never do (a {type(node).__name__} with v_threshold = +inf is accepted)"
        )
    as_float = {field: np.asarray(getattr(node, field), dtype=np.float64) for field in ("r", "v_leak")}
    if isinstance(node, (nir.CubaLI, nir.CubaLIF)):
        tau_syn = np.asarray(node.tau_syn, dtype=np.float64)
        parameters = {"tau_syn_inv": 1.0 / tau_syn, "tau_mem_inv": 1.0 / np.asarray(node.tau_mem, dtype=np.float64)}
        gain = as_float["r"] * np.asarray(node.w_in, dtype=np.float64) * dt / tau_syn
    else:  # nir.LI / nir.LIF: no synaptic current, so it decays fully within each step
        tau = np.asarray(node.tau, dtype=np.float64)
        parameters = {"tau_syn_inv": np.full(tau.shape, 1.0 / dt), "tau_mem_inv": 1.0 / tau}
        gain = as_float["r"]
    parameters["v_leak"] = as_float["v_leak"]
    for field, value in parameters.items():
        if not np.all(np.isfinite(value)):
            raise ValueError(
                f"from_nir: node {name!r} gives a non-finite {field} ({value}); time constants must be > 0"
            )
    return parameters, gain


def _uniform(value: np.ndarray) -> float | np.ndarray:
    """A Python float when every neuron shares the value (the backends' fast path)."""
    flat = value.reshape(-1)
    return float(flat[0]) if flat.size and np.all(flat == flat[0]) else value


def from_nir(graph_or_path: nir.NIRNode | str | os.PathLike, dt: float | None = None) -> NIRModel:
    """A model that runs a NIR graph of leaky integrators with ``li_scan``.

    ``graph_or_path`` is a ``nir.NIRGraph`` (or a single neuron node) or the
    path of a file written by ``nir.write``. The graph is one chain
    ``Input -> [Linear | Affine | Scale]* -> CubaLI | LI -> Output``; any other
    node raises a ``ValueError`` naming its type. ``r`` and ``w_in`` are
    honoured: each neuron's input is scaled by ``r * w_in * dt / tau_syn``
    (``r`` for ``LI``). ``dt`` defaults to the ``dt`` recorded in the graph's
    metadata (``to_nir`` writes it), else 0.001.
    """
    if isinstance(graph_or_path, (str, os.PathLike)):
        graph_or_path = nir.read(graph_or_path)
    if not isinstance(graph_or_path, nir.NIRNode):
        raise TypeError(
            f"graph_or_path must be a nir.NIRGraph, a NIR node or a file path, got {describe(graph_or_path)}"
        )
    if isinstance(graph_or_path, nir.NIRGraph):
        chain = _chain(graph_or_path)
    else:
        chain = [(type(graph_or_path).__name__, graph_or_path)]
        _refuse_unsupported(dict(chain))
    if dt is None:
        metadata = graph_or_path.metadata if isinstance(graph_or_path.metadata, dict) else {}
        dt = float(metadata["dt"]) if "dt" in metadata else 0.001
    dt = check_dt(dt)

    weights: np.ndarray | None = None
    bias: np.ndarray | None = None
    gain: np.ndarray | None = None
    neurons = [(name, node) for name, node in chain if isinstance(node, _NEURONS)]
    if len(neurons) != 1 or not isinstance(chain[-1][1], _NEURONS):
        kinds = " -> ".join(["Input", *(type(node).__name__ for _, node in chain), "Output"])
        raise ValueError(f"from_nir: expected Input -> maps -> one neuron node -> Output, got {kinds}")
    for name, node in chain[:-1]:
        if isinstance(node, nir.Scale):
            scale = np.asarray(node.scale, dtype=np.float64)
            if weights is None:
                gain = scale if gain is None else gain * scale
            else:
                weights = scale.reshape(-1, 1) * weights
            bias = None if bias is None else bias * scale
        else:  # Linear or Affine
            matrix = np.asarray(node.weight, dtype=np.float64)
            if matrix.ndim != 2:
                raise ValueError(f"from_nir: node {name!r} has a weight of shape {matrix.shape}, not a matrix")
            if weights is None:
                weights = matrix if gain is None else matrix * gain.reshape(1, -1)
                gain = None
            else:
                weights = matrix @ weights
            bias = None if bias is None else matrix @ bias
            if isinstance(node, nir.Affine):
                offset = np.asarray(node.bias, dtype=np.float64)
                bias = offset if bias is None else bias + offset
    parameters, neuron_gain = _neuron(*neurons[0], dt)
    if not np.all(np.abs(neuron_gain - 1.0) <= _ROUNDING):
        if weights is not None:
            weights = neuron_gain.reshape(-1, 1) * weights
        else:
            gain = neuron_gain if gain is None else gain * neuron_gain
        bias = None if bias is None else bias * neuron_gain
    if weights is not None and weights.shape[0] != parameters["v_leak"].reshape(-1).shape[0]:
        raise ValueError(
            f"from_nir: the maps give {weights.shape[0]} currents, but node {neurons[0][0]!r} "
            f"has {parameters['v_leak'].size} neurons"
        )
    p = LIParameters(*(_uniform(parameters[name]) for name in LIParameters._fields))
    return NIRModel(weights, bias, gain, p, dt)
