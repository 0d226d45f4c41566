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
  for another tool (``target=``) it writes the ``CubaLIF`` that tool's
  importer reads and runs with the same numbers;
- :func:`from_nir` honours any ``r`` and ``w_in`` by scaling each neuron's
  input by ``g``; for NIR's current-free ``LI`` node (``tau dv/dt =
  (v_leak - v) + r*I``) it uses ``tau_syn_inv = 1/dt`` (the current decays
  fully within each step, ``i = 0``) and ``g = r``. ``source="norse"`` first
  undoes Norse 1.1's export conventions. Every node is validated at load.

docs/nir.md derives this mapping and lists what each tool does differently.
"""

from __future__ import annotations

import itertools
import math
import numbers
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

__all__ = ["SOURCES", "TARGETS", "NIRModel", "from_nir", "module_to_nir", "to_nir"]

#: the tools :func:`to_nir` can write for, by the name of their Python package
TARGETS = ("snntorch", "spikingjelly", "norse")
#: the tools whose export conventions :func:`from_nir` can undo (``source=``)
SOURCES = ("norse",)
_TOOL = {"snntorch": "snnTorch", "spikingjelly": "SpikingJelly", "norse": "Norse"}
_SNNTORCH_DT = 1e-4  # snnTorch's importer hard-codes it
_ASSUMED_DT = (
    "snnTorch and SpikingJelly write their graphs for dt = 1e-4 (SpikingJelly unless told otherwise), "
    "Norse for dt = 1e-3; li_core.nir.to_nir records its dt in the metadata"
)
_PREPROCESSING = (nir.Linear, nir.Affine, nir.Scale)
_NEURONS = (nir.CubaLI, nir.LI, nir.CubaLIF, nir.LIF)
_SUPPORTED = "Input, Linear, Affine, Scale, CubaLI, LI (and CubaLIF/LIF whose v_threshold is +inf), Output"
_ROUNDING = 8 * np.finfo(np.float64).eps  # a gain this close to 1 is 1 up to the round-off of tau_syn/dt * dt/tau_syn


def _host(x: Any, argument: str) -> np.ndarray:
    """``x`` (a Python number, a sequence or an array of any supported library,
    a torch tensor that requires grad included) as a float64 NumPy array;
    complex values are refused rather than cut to their real part."""
    if "complex" in str(getattr(x, "dtype", "")) or isinstance(x, complex):
        raise TypeError(f"{argument} must be real, got {describe(x)}")
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return np.asarray(float(x))
    if isinstance(x, (np.ndarray, np.generic, list, tuple)):
        try:
            return np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{argument} must be a number or an array of numbers, got {describe(x)}") from None
    if library_name(x) is None:
        raise TypeError(f"{argument} must be a number or an array, got {describe(x)}")
    backends = sorted((get_backend(info.name) for info in list_backends() if info.available), key=lambda b: -b.priority)
    owner = next((b for b in backends if b.handles(x)), None)
    if owner is None:
        raise TypeError(f"{argument}: no available backend reads {describe(x)}")
    return np.asarray(owner.to_numpy(x), dtype=np.float64)


def _first_bad(array: np.ndarray, good: np.ndarray) -> str:
    """The first entry where ``good`` is false, as ``value at index (k, ...)``."""
    index = tuple(int(k) for k in np.argwhere(~good)[0])
    return f"{float(array[index])!r} at index {index}" if index else repr(float(array[()]))


def _refuse_nonfinite(array: np.ndarray, what: str, *, positive: bool = False) -> None:
    good = np.isfinite(array) & (array > 0) if positive else np.isfinite(array)
    if not np.all(good):
        raise ValueError(f"{what} must be finite{' and > 0' if positive else ''}, got {_first_bad(array, good)}")


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
        _refuse_nonfinite(values[name], f"p.{name}", positive=name != "v_leak")
    return values


def _refuse_for_target(target: str, values: dict[str, np.ndarray], dt: float) -> None:
    """The ``ValueError`` for a model that ``target``'s importer cannot run."""
    tool = f"to_nir(target={target!r}): {_TOOL[target]}"
    if target == "snntorch" and not math.isclose(dt, _SNNTORCH_DT, rel_tol=1e-12):
        raise ValueError(
            f"{tool}'s importer fixes dt = 1e-4 s, got dt={dt!r}; simulate at dt=1e-4, or export for "
            f"'spikingjelly' or 'norse', whose importers take a dt"
        )
    if np.any(values["v_leak"] != 0):
        why = (
            "'s importer feeds v_leak into the synaptic current too (its LIBoxCell) and starts that current there"
            if target == "norse"
            else " has no leak potential: its importer requires v_leak = 0"
        )
        raise ValueError(f"{tool}{why}; p.v_leak is {_first_bad(values['v_leak'], values['v_leak'] == 0)}")
    if target == "norse":
        return
    for name in ("tau_syn_inv", "tau_mem_inv"):
        fraction = dt * values[name]
        if np.any(fraction > 1):
            raise ValueError(
                f"{tool} decays by 1 - dt/tau per step, which must lie in [0, 1): dt*p.{name} must be <= 1, "
                f"got {float(fraction.max()):g}"
            )
        if target == "spikingjelly" and np.any(values[name] != values[name].reshape(-1)[0]):
            raise ValueError(
                f"{tool}'s CUBALIFNode takes one value for all its neurons: p.{name} differs between neurons "
                f"({float(values[name].min()):g} to {float(values[name].max()):g})"
            )


def to_nir(
    input_weights: Any,
    p: LIParameters = LIParameters(),
    dt: float = 0.001,
    *,
    bias: Any = None,
    shape: int | tuple[int, ...] | None = None,
    target: str | None = None,
) -> nir.NIRGraph:
    """The NIR graph ``Input -> Linear -> CubaLI -> Output`` of leaky integrators
    driven through ``input_weights`` ``[out, in]`` (``Affine`` when ``bias``
    ``[out]`` is given: a constant input current added every step).

    ``input_weights=None`` gives ``Input -> CubaLI -> Output`` for neurons of
    ``shape`` (default: the shape the per-neuron parameters broadcast to).
    Weights and parameters may be real arrays of any supported library, and
    must be finite. The ``CubaLI`` node has ``tau_syn = 1/tau_syn_inv``,
    ``tau_mem = 1/tau_mem_inv``, ``v_leak``, ``r = 1`` and ``w_in =
    tau_syn/dt``, so that a simulator holding the input for ``dt`` jumps the
    current by the weighted input each step; the graph's metadata records ``dt``.

    ``target`` (one of :data:`TARGETS`) writes instead a ``CubaLIF`` with
    ``v_threshold = +inf`` that the tool's own importer reads and runs with
    these numbers: for ``"norse"`` with ``r = 1`` and ``w_in = tau_syn/dt``;
    for ``"snntorch"`` and ``"spikingjelly"`` with ``r = tau_mem/dt``, ``w_in
    = tau_syn/dt`` and each neuron's weights and bias multiplied by
    ``dt*tau_mem_inv`` (their membrane adds the current unscaled; a weightless
    population gets the diagonal ``Linear`` of these factors). A model the
    tool cannot run (``v_leak != 0``; for snnTorch a ``dt`` other than 1e-4;
    for snnTorch and SpikingJelly ``dt*tau_inv > 1``; for SpikingJelly
    per-neuron time constants) raises a ``ValueError`` naming the tool's
    constraint and the parameter.
    """
    dt = check_dt(dt)
    if target is not None and target not in TARGETS:
        raise ValueError(f"target must be None or one of {', '.join(map(repr, TARGETS))}, got {target!r}")
    weights: np.ndarray | None = None
    offsets: np.ndarray | None = None
    if input_weights is not None:
        weights = _host(input_weights, "input_weights")
        if weights.ndim != 2:
            raise ValueError(f"input_weights must be a matrix [out, in], got shape {weights.shape}")
        _refuse_nonfinite(weights, "input_weights")
        if shape is not None and tuple(np.atleast_1d(shape)) != weights.shape[:1]:
            raise ValueError(f"shape {shape} contradicts input_weights of shape {weights.shape} ([out, in])")
        neurons: tuple[int, ...] = weights.shape[:1]
        if bias is not None:
            offsets = _host(bias, "bias")
            if offsets.shape != neurons:
                raise ValueError(f"bias must have shape {neurons} (one per output neuron), got {offsets.shape}")
            _refuse_nonfinite(offsets, "bias")
    else:
        if bias is not None:
            raise ValueError("bias needs input_weights (a bias without weights is an Affine node with no matrix)")
        if shape is None:
            shape = np.broadcast_shapes(*(_host(value, f"p.{name}").shape for name, value in zip(p._fields, p)))
            if shape == ():
                raise ValueError("without input_weights, pass shape= (the neuron shape): the parameters are scalars")
        neurons = tuple(int(n) for n in np.atleast_1d(shape))
    values = _neuron_parameters(p, neurons)
    tau_syn, tau_mem = 1.0 / values["tau_syn_inv"], 1.0 / values["tau_mem_inv"]
    neuron: nir.NIRNode
    if target is None:
        neuron = nir.CubaLI(
            tau_syn=tau_syn, tau_mem=tau_mem, r=np.ones(neurons), v_leak=values["v_leak"], w_in=tau_syn / dt
        )
    else:
        _refuse_for_target(target, values, dt)
        r = np.ones(neurons)
        if target != "norse":  # their membrane adds the current with weight 1, not dt*tau_mem_inv
            if weights is None:
                if len(neurons) != 1:
                    raise ValueError(
                        f"to_nir(target={target!r}): {_TOOL[target]} needs the current scale dt*tau_mem_inv in "
                        f"the weights; pass input_weights (neurons of shape {neurons} have no diagonal matrix)"
                    )
                weights = np.eye(neurons[0])
            scale = dt * values["tau_mem_inv"]
            weights = scale[:, None] * weights
            offsets = None if offsets is None else scale * offsets
            r = tau_mem / dt
        neuron = nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=r,
            v_leak=values["v_leak"],
            w_in=tau_syn / dt,
            v_threshold=np.full(neurons, np.inf),
            v_reset=np.zeros(neurons),
        )
    nodes: dict[str, nir.NIRNode] = {}
    if weights is not None:
        nodes["input"] = nir.Input(input_type=np.array(weights.shape[1:]))
        if offsets is None:
            nodes["linear"] = nir.Linear(weight=weights)
        else:
            nodes["affine"] = nir.Affine(weight=weights, bias=offsets)
    else:
        nodes["input"] = nir.Input(input_type=np.array(neurons))
    nodes.update(li=neuron, output=nir.Output(np.array(neurons)))
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(names)), metadata={"dt": dt})


def module_to_nir(
    module: Any, *, shape: int | tuple[int, ...] | None = None, target: str | None = None
) -> nir.NIRGraph:
    """:func:`to_nir` for a module that has ``p`` and ``dt`` (and, like
    ``LILinearCell``, ``input_weights``): the ``torch.nn`` modules of
    ``li_backends.torch_nn``. Weightless modules (``LI``, ``LICell``) need
    ``shape`` unless their parameters are per-neuron tensors. ``target``:
    see :func:`to_nir`."""
    return to_nir(getattr(module, "input_weights", None), module.p, module.dt, shape=shape, target=target)


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


def _kind(name: str, node: Any) -> str:
    return f"node {name!r} (nir.{type(node).__name__})"


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
        if source not in successors or target not in successors:
            raise ValueError(f"from_nir: the edge {(source, target)} names a node the graph does not have")
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


def _field(name: str, node: Any, field: str, *, positive: bool = False) -> np.ndarray:
    """A node's field as a finite float64 NumPy array (a torch tensor, even one
    that requires grad, is detached and copied); ``positive`` for time constants."""
    what = f"from_nir: {_kind(name, node)} field {field}"
    try:
        value = _host(getattr(node, field), what)
    except TypeError as error:
        raise ValueError(str(error)) from None
    _refuse_nonfinite(value, what, positive=positive)
    return value


def _neuron(name: str, node: nir.NIRNode, dt: float, source: str | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The contract's parameters of a neuron node and its per-neuron input gain,
    every field checked (finite, time constants > 0, shapes that broadcast)."""
    kind = _kind(name, node)
    if isinstance(node, (nir.CubaLIF, nir.LIF)):
        threshold = _host(node.v_threshold, f"from_nir: {kind} field v_threshold")
        if not np.all(np.isposinf(threshold)):
            raise ValueError(
                f"from_nir: node {name!r} is a nir.{type(node).__name__} with a finite v_threshold; it spikes, "
                f"and leaky integrators never do (a {type(node).__name__} with v_threshold = +inf is accepted)"
            )
    r, v_leak = _field(name, node, "r"), _field(name, node, "v_leak")
    # Norse 1.1 writes tau = dt * tau_true (dt/tau_inv) and means the input to jump the current by r * w_in * S
    stretch = 1.0 / dt if source == "norse" else 1.0
    with np.errstate(over="ignore"):  # an overflow (1/tau for a subnormal tau) is refused below
        if isinstance(node, (nir.CubaLI, nir.CubaLIF)):
            tau_syn = _field(name, node, "tau_syn", positive=True) * stretch
            tau_mem = _field(name, node, "tau_mem", positive=True) * stretch
            w_in = _field(name, node, "w_in")
            parameters = {"tau_syn_inv": 1.0 / tau_syn, "tau_mem_inv": 1.0 / tau_mem}
            gain = r * w_in if source == "norse" else r * w_in * dt / tau_syn
            fields = {"tau_syn": tau_syn, "tau_mem": tau_mem, "r": r, "v_leak": v_leak, "w_in": w_in}
        else:  # nir.LI / nir.LIF: no synaptic current, so it decays fully within each step
            tau = _field(name, node, "tau", positive=True) * stretch
            parameters = {"tau_syn_inv": np.full(tau.shape, 1.0 / dt), "tau_mem_inv": 1.0 / tau}
            gain = r
            fields = {"tau": tau, "r": r, "v_leak": v_leak}
    parameters["v_leak"] = v_leak
    try:
        np.broadcast_shapes(*(value.shape for value in fields.values()))
    except ValueError:
        shapes = ", ".join(f"{field} {value.shape}" for field, value in fields.items())
        raise ValueError(f"from_nir: {kind} has fields of shapes that do not fit together: {shapes}") from None
    for field, value in {**parameters, "the input gain r * w_in * dt / tau_syn": gain}.items():
        _refuse_nonfinite(value, f"from_nir: {kind} gives {field}, which")
    return parameters, gain


def _uniform(value: np.ndarray) -> float | np.ndarray:
    """A Python float when every neuron shares the value (the backends' fast path)."""
    flat = value.reshape(-1)
    return float(flat[0]) if flat.size and np.all(flat == flat[0]) else value


def _read(path: str | os.PathLike) -> nir.NIRNode:
    """``nir.read``, with one clear message for a file that is not a NIR graph."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"from_nir: no such file: {os.fspath(path)!r}")
    try:
        return nir.read(path)
    except Exception as error:  # h5py and nir raise OSError, KeyError, ValueError, ...
        raise ValueError(
            f"from_nir: {os.fspath(path)!r} is not a NIR graph file (nir.read failed: {type(error).__name__}: {error})"
        ) from error


def _graph_dt(graph: nir.NIRNode) -> float:
    """The ``dt`` in the graph's metadata; its absence or a value that is not a
    positive number of seconds is a ``ValueError`` saying what to do."""
    metadata = graph.metadata if isinstance(graph.metadata, dict) else {}
    if "dt" not in metadata:
        raise ValueError(
            f"from_nir: the graph records no time step (metadata['dt']) and no dt was given: pass dt=, "
            f"the step (in seconds) the graph was written for ({_ASSUMED_DT})"
        )
    value = metadata["dt"]
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    number = isinstance(value, (numbers.Real, np.floating)) and not isinstance(value, (bool, np.bool_))
    if number and math.isfinite(float(value)) and float(value) > 0:
        return float(value)
    raise ValueError(
        f"from_nir: the graph's metadata['dt'] is {value!r}, not a positive number of seconds; pass dt= to set the step"
    )


def from_nir(
    graph_or_path: nir.NIRNode | str | os.PathLike, dt: float | None = None, *, source: str | None = None
) -> NIRModel:
    """A model that runs a NIR graph of leaky integrators with ``li_scan``.

    ``graph_or_path`` is a ``nir.NIRGraph`` (or a single neuron node) or the
    path of a file written by ``nir.write``. The graph is one chain
    ``Input -> [Linear | Affine | Scale]* -> CubaLI | LI -> Output``; any other
    node raises a ``ValueError`` naming its type. Fields may be NumPy arrays or
    torch tensors (detached). Every node is validated: time constants finite
    and > 0; ``w_in``, ``r``, ``v_leak``, weights, biases and scales finite and
    of fitting shapes; each refusal is a ``ValueError`` naming the node and
    the field. ``r`` and ``w_in`` are honoured: each neuron's input is scaled
    by ``r * w_in * dt / tau_syn`` (``r`` for ``LI``).

    ``dt`` defaults to the ``dt`` recorded in the graph's metadata (``to_nir``
    writes it); a graph without one needs ``dt`` (there is no default: each
    tool assumes its own). ``source="norse"`` reads a graph written by Norse
    1.1's ``to_nir``: time constants ``tau / dt`` and an input that jumps the
    current by ``r * w_in`` times itself.
    """
    if source is not None and source not in SOURCES:
        raise ValueError(f"source must be None or one of {', '.join(map(repr, SOURCES))}, got {source!r}")
    if isinstance(graph_or_path, (str, os.PathLike)):
        graph_or_path = _read(graph_or_path)
    if not isinstance(graph_or_path, nir.NIRNode):
        raise TypeError(
            f"graph_or_path must be a nir.NIRGraph, a NIR node or a file path, got {describe(graph_or_path)}"
        )
    if isinstance(graph_or_path, nir.NIRGraph):
        chain = _chain(graph_or_path)
    else:
        chain = [(type(graph_or_path).__name__, graph_or_path)]
        _refuse_unsupported(dict(chain))
    neurons = [(name, node) for name, node in chain if isinstance(node, _NEURONS)]
    if len(neurons) != 1 or not isinstance(chain[-1][1], _NEURONS):
        kinds = " -> ".join(["Input", *(type(node).__name__ for _, node in chain), "Output"])
        raise ValueError(f"from_nir: expected Input -> maps -> one neuron node -> Output, got {kinds}")
    dt = _graph_dt(graph_or_path) if dt is None else check_dt(dt)
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None
    gain: np.ndarray | None = None
    for name, node in chain[:-1]:
        if isinstance(node, nir.Scale):
            scale = _field(name, node, "scale")
            if weights is not None and scale.shape not in ((), (weights.shape[0],)):
                raise ValueError(
                    f"from_nir: {_kind(name, node)} field scale has shape {scale.shape}, "
                    f"but the node before gives {weights.shape[0]} values"
                )
            if weights is None:
                gain = scale if gain is None else gain * scale
            else:
                weights = scale.reshape(-1, 1) * weights
            bias = None if bias is None else bias * scale
            continue
        matrix = _field(name, node, "weight")  # Linear or Affine
        if matrix.ndim != 2:
            raise ValueError(f"from_nir: {_kind(name, node)} field weight has shape {matrix.shape}, not a matrix")
        given = weights.shape[0] if weights is not None else None if gain is None or gain.ndim == 0 else gain.size
        if given is not None and matrix.shape[1] != given:
            raise ValueError(
                f"from_nir: {_kind(name, node)} field weight of shape {matrix.shape} takes "
                f"{matrix.shape[1]} values, but the node before gives {given}"
            )
        if weights is None:
            weights = matrix if gain is None else matrix * gain.reshape(1, -1)
            gain = None
        else:
            weights = matrix @ weights
        bias = None if bias is None else matrix @ bias
        if isinstance(node, nir.Affine):
            offset = _field(name, node, "bias")
            if offset.shape != matrix.shape[:1]:
                raise ValueError(
                    f"from_nir: {_kind(name, node)} field bias has shape {offset.shape}, "
                    f"but its weight {matrix.shape} gives {matrix.shape[0]} values"
                )
            bias = offset if bias is None else bias + offset
    parameters, neuron_gain = _neuron(*neurons[0], dt, source)
    if weights is not None:
        counts = {field: value.size for field, value in parameters.items() if value.ndim}
        wrong = {field: count for field, count in counts.items() if count != weights.shape[0]}
        if wrong:
            raise ValueError(
                f"from_nir: the maps give {weights.shape[0]} currents, but {_kind(*neurons[0])} "
                f"has {', '.join(f'{count} values of {field}' for field, count in wrong.items())}"
            )
    if not np.all(np.abs(neuron_gain - 1.0) <= _ROUNDING):
        if weights is not None:
            weights = neuron_gain.reshape(-1, 1) * weights
        else:
            gain = neuron_gain if gain is None else gain * neuron_gain
        bias = None if bias is None else bias * neuron_gain
    p = LIParameters(*(_uniform(parameters[name]) for name in LIParameters._fields))
    return NIRModel(weights, bias, gain, p, dt)
