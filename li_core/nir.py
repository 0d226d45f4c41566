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
  fully within each step, ``i = 0``) and ``g = r``. ``source=`` reads a
  tool's own conventions instead (Norse 1.1's time constants times ``dt``,
  Sinabs's steps, Rockpool's exponential decays and ``dt`` in ``r``), and a
  graph this library wrote for Sinabs or Rockpool says so in its metadata.
  Every node is validated at load.

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
    import h5py  # nir's file format
    import nir
except ImportError as error:  # the extra is optional; say how to get it
    raise ImportError(f"li_core.nir needs the nir package: {install_command('nir')} ({error})") from error

__all__ = ["NEVER_FIRES", "SOURCES", "TARGETS", "NIRModel", "from_nir", "module_to_nir", "to_nir"]

#: the tools :func:`to_nir` can write for, by the name of their Python package
TARGETS = ("snntorch", "spikingjelly", "norse", "sinabs", "rockpool")
#: the tools whose export conventions :func:`from_nir` can undo (``source=``)
SOURCES = ("norse", "sinabs", "rockpool")
_TOOL = {
    "snntorch": "snnTorch",
    "spikingjelly": "SpikingJelly",
    "norse": "Norse",
    "sinabs": "Sinabs",
    "rockpool": "Rockpool",
}
_SNNTORCH_DT = 1e-4  # snnTorch's importer hard-codes it
_ASSUMED_DT = (
    "snnTorch and SpikingJelly write their graphs for dt = 1e-4 (SpikingJelly unless told otherwise), "
    "Norse for dt = 1e-3; Sinabs counts time constants in steps (any dt gives the same voltages per step); "
    "Rockpool's r records its dt (source='rockpool' reads it); li_core.nir.to_nir records its dt in the metadata"
)
#: the threshold written for a tool whose reset computes ``spikes * threshold`` (``0 * inf`` is NaN): the
#: largest float32, which Rockpool's float32 voltages never exceed; read back as never firing
NEVER_FIRES = float(np.finfo(np.float32).max)
_WRITER = "li-neurons"  # metadata["writer"] of the graphs to_nir writes
_DEFLATE_RATIO = 1032  # deflate (gzip, as nir.write stores datasets) never shrinks data further than this
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
        why = {
            "norse": "'s importer feeds v_leak into the synaptic current too (its LIBoxCell) and starts that current there",
            "sinabs": "'s importer requires v_leak = 0 (its ExpLeak layer has no leak potential)",
            "rockpool": "'s importer makes v_leak a bias added to the voltage every step, which starts at 0, not at "
            "v_leak (and its exporter drops the bias): v_leak must be 0",
        }.get(target, " has no leak potential: its importer requires v_leak = 0")
        raise ValueError(f"{tool}{why}; p.v_leak is {_first_bad(values['v_leak'], values['v_leak'] == 0)}")
    if target == "norse":
        return
    decay = {  # each tool's decay per step, and the rates dt*tau_inv that must stay below 1 (not reach it)
        "sinabs": (
            "exp(-1/tau) per step (tau in steps), which must lie in (0, 1); a current that lasts one step "
            "(dt*p.tau_syn_inv = 1) gets no layer",
            ("tau_mem_inv",),
        ),
        "rockpool": ("exp(-dt/tau) per step, which must lie in (0, 1)", ("tau_mem_inv", "tau_syn_inv")),
    }
    why, below = decay.get(target, ("1 - dt/tau per step, which must lie in [0, 1)", ()))
    for name in ("tau_syn_inv", "tau_mem_inv"):
        fraction = dt * values[name]
        if np.any(fraction >= 1 if name in below else fraction > 1):
            raise ValueError(
                f"{tool} decays by {why}: dt*p.{name} must be {'<' if name in below else '<='} 1, "
                f"got {float(fraction.max()):g}"
            )
        if target == "spikingjelly" and np.any(values[name] != values[name].reshape(-1)[0]):
            raise ValueError(
                f"{tool}'s CUBALIFNode takes one value for all its neurons: p.{name} differs between neurons "
                f"({float(values[name].min()):g} to {float(values[name].max()):g})"
            )
    whole = dt * values["tau_syn_inv"] == 1
    if target == "sinabs" and np.any(whole) and not np.all(whole):
        raise ValueError(
            f"{tool} runs the current as an ExpLeak layer whose decay exp(-1/tau) must lie in (0, 1), or as none "
            f"when dt*p.tau_syn_inv = 1 for every neuron; here it is 1 for some neurons only "
            f"({int(whole.sum())} of {whole.size})"
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

    ``target`` (one of :data:`TARGETS`) writes instead the graph that the
    tool's own importer reads and runs with these numbers, ``a =
    dt*tau_mem_inv`` and ``d = dt*tau_syn_inv``: for ``"norse"`` a ``CubaLIF``
    with ``r = 1``, ``w_in = tau_syn/dt``; for ``"snntorch"`` and
    ``"spikingjelly"`` one with ``r = tau_mem/dt``, ``w_in = tau_syn/dt`` and
    each neuron's weights and bias multiplied by ``a`` (their membrane adds the
    current unscaled); for ``"sinabs"`` ``Affine -> LI -> LI`` (its ExpLeak
    layers, ``tau = -1/ln(1 - d)`` and ``-1/ln(1 - a)`` steps; the first
    only if ``d < 1``) with the weights and bias multiplied by ``a``; for
    ``"rockpool"`` a ``CubaLIF`` with ``tau = -dt/ln(1 - rate)``, ``r =
    tau_mem/dt - 1`` (its importer's ``dt``), ``w_in = 1``, ``v_threshold =``
    :data:`NEVER_FIRES` and the weights and bias multiplied by ``a/(1 - d)``.
    The others get ``v_threshold = +inf``; a weightless population gets the
    diagonal map of its factors; ``metadata`` records ``dt``, the writer and
    the target. A model the tool cannot run (``v_leak != 0``; for snnTorch a
    ``dt`` other than 1e-4; ``dt*tau_inv`` above 1 for snnTorch and
    SpikingJelly, at or above 1 for Rockpool and Sinabs's ``tau_mem_inv``;
    for SpikingJelly per-neuron time constants) raises a ``ValueError`` naming
    the tool's constraint and the parameter.
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
    if target is not None:
        _refuse_for_target(target, values, dt)
        if target != "norse" and weights is None:  # the others need the input scaled: a diagonal map
            if len(neurons) != 1:
                raise ValueError(
                    f"to_nir(target={target!r}): {_TOOL[target]} needs each neuron's current scale in the weights; "
                    f"pass input_weights (neurons of shape {neurons} have no diagonal matrix)"
                )
            weights = np.eye(neurons[0])
    scale, neuron_nodes = _neuron_nodes(target, values, neurons, dt)
    nodes: dict[str, nir.NIRNode] = {}
    if weights is not None:
        weights = scale[:, None] * weights
        offsets = None if offsets is None else scale * offsets
        if target == "sinabs" and offsets is None:  # Sinabs's importer reads Affine, not Linear
            offsets = np.zeros(weights.shape[0])
        nodes["input"] = nir.Input(input_type=np.array(weights.shape[1:]))
        if offsets is None:
            nodes["linear"] = nir.Linear(weight=weights)
        else:
            nodes["affine"] = nir.Affine(weight=weights, bias=offsets)
    else:
        nodes["input"] = nir.Input(input_type=np.array(neurons))
    nodes.update(neuron_nodes, output=nir.Output(np.array(neurons)))
    names = list(nodes)
    metadata = {"dt": dt, "writer": _WRITER, **({} if target is None else {"target": target})}
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(names)), metadata=metadata)


def _neuron_nodes(
    target: str | None, values: dict[str, np.ndarray], neurons: tuple[int, ...], dt: float
) -> tuple[np.ndarray, dict[str, nir.NIRNode]]:
    """The factor for each neuron's input row and the neuron node(s) ``target``'s
    importer runs as the contract's step, with ``a = dt*tau_mem_inv`` and ``d =
    dt*tau_syn_inv`` (checked by :func:`_refuse_for_target`)."""
    tau_syn, tau_mem = 1.0 / values["tau_syn_inv"], 1.0 / values["tau_mem_inv"]
    a, d = dt * values["tau_mem_inv"], dt * values["tau_syn_inv"]
    ones, zeros = np.ones(neurons), np.zeros(neurons)
    if target is None:
        return ones, {
            "li": nir.CubaLI(tau_syn=tau_syn, tau_mem=tau_mem, r=ones, v_leak=values["v_leak"], w_in=tau_syn / dt)
        }
    if target == "sinabs":
        # ExpLeak steps v = exp(-1/tau) v + x: with x = a * input, an ExpLeak of decay 1 - d carries the
        # jumped current j, and one of decay 1 - a the voltage; d = 1 needs no current layer
        def exp_leak(rate: np.ndarray) -> nir.LI:
            return nir.LI(tau=-1.0 / np.log1p(-rate), r=ones, v_leak=zeros)

        layers = {"li": exp_leak(a)} if np.all(d == 1) else {"synapse": exp_leak(d), "li": exp_leak(a)}
        return a, layers
    if target == "rockpool":
        # LIFTorch: isyn += x; vmem *= exp(-dt/tau_mem); isyn *= exp(-dt/tau_syn); vmem += isyn + bias, with
        # dt = min(tau_mem / (1 + r)): decays 1 - a and 1 - d, and x = a/(1 - d) * input
        rock_mem, rock_syn = -dt / np.log1p(-a), -dt / np.log1p(-d)
        neuron = nir.CubaLIF(
            tau_syn=rock_syn,
            tau_mem=rock_mem,
            r=rock_mem / dt - 1.0,
            v_leak=zeros,
            w_in=ones,
            v_threshold=np.full(neurons, NEVER_FIRES),
            v_reset=zeros,
        )
        return a / (1.0 - d), {"li": neuron}
    # snnTorch's and SpikingJelly's membranes add the current with weight 1, not a: r = tau_mem/dt and the input
    # scaled by a; Norse's importer runs NIR's meaning with r = 1
    scale, r = (ones, ones) if target == "norse" else (a, tau_mem / dt)
    neuron = nir.CubaLIF(
        tau_syn=tau_syn,
        tau_mem=tau_mem,
        r=r,
        v_leak=values["v_leak"],
        w_in=tau_syn / dt,
        v_threshold=np.full(neurons, np.inf),
        v_reset=zeros,
    )
    return scale, {"li": neuron}


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


def _refuse_spiking(name: str, node: nir.NIRNode, source: str | None) -> None:
    """A ``CubaLIF``/``LIF`` is a leaky integrator only if it never fires: ``v_threshold = +inf``, or under
    ``source="rockpool"`` (whose reset turns ``+inf`` into NaN) at least :data:`NEVER_FIRES`."""
    if not isinstance(node, (nir.CubaLIF, nir.LIF)):
        return
    threshold = _host(node.v_threshold, f"from_nir: {_kind(name, node)} field v_threshold")
    never = NEVER_FIRES if source == "rockpool" else math.inf
    if not np.all(threshold >= never):
        huge = (
            f", or at least {NEVER_FIRES:.7g} (the largest float32, which to_nir(target='rockpool') writes: "
            f"Rockpool's subtractive reset cannot take +inf)"
            if source == "rockpool"
            else ""
        )
        limit = f"{NEVER_FIRES:.7g}" if source == "rockpool" else "+inf"
        raise ValueError(
            f"from_nir: node {name!r} is a nir.{type(node).__name__} with a v_threshold below {limit} "
            f"({_first_bad(threshold, threshold >= never)}); it spikes, and leaky integrators never do "
            f"(a {type(node).__name__} with v_threshold = +inf{huge} is accepted)"
        )


def _neuron(name: str, node: nir.NIRNode, dt: float, source: str | None) -> tuple[dict, np.ndarray, dict]:
    """NIR's meaning (``source=None``) or Norse's of one neuron node: the contract's
    parameters, each neuron's input gain, and the fields read (to check their shapes)."""
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
    return parameters, gain, fields


def _sinabs(neurons: list[tuple[str, nir.NIRNode]], dt: float, norm_input: bool) -> tuple[dict, np.ndarray, dict]:
    """Sinabs's ``LI`` (its ``ExpLeak``: ``v = b v + x``, ``b = exp(-1/tau)``,
    tau in steps) or ``LI -> LI`` chain (a current of decay ``b1`` feeding a
    voltage of decay ``b2``), as its importer runs them: ``dt*tau_syn_inv = 1 -
    b1`` (1 without a current layer), ``dt*tau_mem_inv = 1 - b2``, input gain
    ``1/(1 - b2)``; with ``norm_input`` each layer adds ``(1 - b)`` times its
    input, and the gain is ``1 - b1`` (1 without a current layer)."""
    fields: dict[str, np.ndarray] = {}
    rates = []
    for name, node in neurons:
        where = f"from_nir(source='sinabs'): {_kind(name, node)}"
        if not isinstance(node, (nir.LI, nir.LIF)):
            raise ValueError(f"{where}: Sinabs writes its ExpLeak as LI and its LIF as LIF; this node is not read")
        tau = _field(name, node, "tau", positive=True)
        for field, required in (("r", 1.0), ("v_leak", 0.0)):
            value = _field(name, node, field)
            if np.any(value != required):
                raise ValueError(
                    f"{where}: Sinabs's importer requires {field} = {required:g}; "
                    f"{field} is {_first_bad(value, value == required)}"
                )
            fields[f"{name}.{field}"] = value
        fields[f"{name}.tau"] = tau
        rates.append(-np.expm1(-1.0 / tau))  # 1 - exp(-1/tau), to round-off for long time constants
    current, membrane = rates[0] if len(rates) == 2 else np.ones(rates[0].shape), rates[-1]
    gain = current if norm_input else 1.0 / membrane
    parameters = {"tau_syn_inv": current / dt, "tau_mem_inv": membrane / dt, "v_leak": np.zeros(membrane.shape)}
    return parameters, gain, fields


def _lambert_w(z: np.ndarray) -> np.ndarray:
    """The principal branch of Lambert's W (``w e^w = z``) for ``z > 0``, by Newton's method."""
    w = np.log1p(z)
    for _ in range(50):
        step = (w * np.exp(w) - z) / (np.exp(w) * (w + 1.0))
        w = w - step
        if np.all(np.abs(step) <= 4 * np.finfo(np.float64).eps * np.maximum(np.abs(w), 1.0)):
            break
    return w


def _rockpool_dt(name: str, node: nir.NIRNode, tau: np.ndarray) -> float:
    """The step Rockpool's exporter wrote into ``r = tau e^(-dt/tau) / dt``: ``dt = tau W(1/r)``."""
    r = _field(name, node, "r")
    if np.any(r <= 0):
        raise ValueError(
            f"from_nir(source='rockpool'): {_kind(name, node)} field r must be > 0 (Rockpool writes "
            f"r = tau e^(-dt/tau) / dt), got {_first_bad(r, r > 0)}; pass dt="
        )
    steps = tau * _lambert_w(1.0 / r)
    if not np.allclose(steps, steps.mean(), rtol=1e-5, atol=0):  # Rockpool writes float32: 1e-7 apart
        raise ValueError(
            f"from_nir(source='rockpool'): {_kind(name, node)} field r gives different steps dt = tau W(1/r) "
            f"for different neurons ({float(steps.min()):g} to {float(steps.max()):g} s); pass dt="
        )
    return float(steps.mean())


def _rockpool(name: str, node: nir.NIRNode, dt: float | None) -> tuple[dict, np.ndarray, dict, float]:
    """Rockpool's ``CubaLIF`` (its ``LIFTorch``: ``isyn += x; vmem *= a; isyn *=
    b; vmem += isyn + bias`` with ``a = exp(-dt/tau_mem)``, ``b =
    exp(-dt/tau_syn)``; ``w_in`` unused; ``v_leak``, its bias, must be 0: its
    voltage starts at 0, not at ``v_leak``) or ``LI`` (its ``ExpSynTorch``: ``v
    = b (v + x)``, ``b = exp(-dt/tau)``), with ``dt`` from ``r`` unless given:
    ``dt*tau_mem_inv = 1 - a``, ``dt*tau_syn_inv = 1 - b`` (1 for ``LI``), input
    gain ``b/(1 - a)`` (``b/(1 - b)``). Also returns ``dt``."""
    where = f"from_nir(source='rockpool'): {_kind(name, node)}"
    if isinstance(node, (nir.LIF, nir.CubaLI)):
        raise ValueError(
            f"{where}: Rockpool writes its LIFTorch as CubaLIF and its ExpSynTorch as LI; this node is not read"
        )
    v_leak = _field(name, node, "v_leak")
    if np.any(v_leak != 0):
        raise ValueError(
            f"{where}: Rockpool reads v_leak as a bias added to a voltage that starts at 0 (LIFTorch), or not at all "
            f"(ExpSynTorch); li-neurons starts at v_leak, so v_leak must be 0, got {_first_bad(v_leak, v_leak == 0)}"
        )
    if isinstance(node, nir.LI):
        tau = _field(name, node, "tau", positive=True)
        dt = _rockpool_dt(name, node, tau) if dt is None else dt
        kept = np.exp(-dt / tau)
        parameters = {"tau_syn_inv": np.full(tau.shape, 1.0 / dt), "tau_mem_inv": (1.0 - kept) / dt, "v_leak": v_leak}
        return parameters, kept / (1.0 - kept), {"tau": tau, "v_leak": v_leak}, dt
    tau_syn, tau_mem = _field(name, node, "tau_syn", positive=True), _field(name, node, "tau_mem", positive=True)
    w_in = _field(name, node, "w_in")
    if np.any(w_in != 1):
        raise ValueError(
            f"{where}: Rockpool's importer ignores w_in, which must be 1; w_in is {_first_bad(w_in, w_in == 1)}"
        )
    dt = _rockpool_dt(name, node, tau_mem) if dt is None else dt
    membrane, kept = -np.expm1(-dt / tau_mem), np.exp(-dt / tau_syn)
    parameters = {"tau_syn_inv": (1.0 - kept) / dt, "tau_mem_inv": membrane / dt, "v_leak": v_leak}
    return parameters, kept / membrane, {"tau_syn": tau_syn, "tau_mem": tau_mem, "v_leak": v_leak, "w_in": w_in}, dt


def _fits(shape: tuple[int, ...], neurons: tuple[int, ...]) -> bool:
    """Whether fields of ``shape`` give one value per neuron of ``neurons`` (not more axes, as ``[3, 1]`` would)."""
    try:
        return np.broadcast_shapes(shape, neurons) == neurons
    except ValueError:
        return False


def _uniform(value: np.ndarray) -> float | np.ndarray:
    """A Python float when every neuron shares the value (the backends' fast path)."""
    flat = value.reshape(-1)
    return float(flat[0]) if flat.size and np.all(flat == flat[0]) else value


def _refuse_inflated(path: str | os.PathLike) -> None:
    """Refuse, before ``nir.read`` loads every dataset whole, a dataset that
    declares more bytes than its stored ones could hold: deflate (how
    ``nir.write`` stores them) shrinks data at most ``_DEFLATE_RATIO``-fold, so
    more is unwritten storage, a fill value that reading would expand in memory."""
    try:
        file = h5py.File(path, "r")
    except Exception:  # noqa: BLE001 - not HDF5: _read's own message says so
        return
    with file:
        datasets: list[tuple[str, h5py.Dataset]] = []
        file.visititems(lambda name, item: datasets.append((name, item)) if isinstance(item, h5py.Dataset) else None)
        for name, dataset in datasets:
            declared, stored = dataset.size * dataset.dtype.itemsize, dataset.id.get_storage_size()
            if declared > _DEFLATE_RATIO * stored + 2**16:
                raise ValueError(
                    f"from_nir: {os.fspath(path)!r}: dataset {name!r} declares shape {dataset.shape} of "
                    f"{dataset.dtype} ({declared:,} bytes) but the file stores {stored:,} bytes of it, more than "
                    f"deflate can expand ({_DEFLATE_RATIO}x); refused before reading it into memory"
                )


def _read(path: str | os.PathLike) -> nir.NIRNode:
    """``nir.read``, with one clear message for a file that is not a NIR graph."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"from_nir: no such file: {os.fspath(path)!r}")
    _refuse_inflated(path)
    try:
        return nir.read(path)
    except Exception as error:  # h5py and nir raise OSError, KeyError, ValueError, ...
        raise ValueError(
            f"from_nir: {os.fspath(path)!r} is not a NIR graph file (nir.read failed: {type(error).__name__}: {error})"
        ) from error


def _graph_dt(graph: nir.NIRNode, source: str | None) -> float | None:
    """The ``dt`` in the graph's metadata; its absence (unless Rockpool's ``r``
    gives it: ``None``) or a value that is not a positive number of seconds is
    a ``ValueError`` saying what to do."""
    metadata = graph.metadata if isinstance(graph.metadata, dict) else {}
    if "dt" not in metadata and source == "rockpool":
        return None
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


def _source(graph: nir.NIRNode, source: str | None, norm_input: bool) -> str | None:
    """The convention to read ``graph`` in: ``source``, or for a graph that
    ``to_nir`` wrote (``metadata["writer"]``) the one its ``target`` implies;
    a ``source`` that contradicts that metadata is refused, as is
    ``norm_input`` outside ``source="sinabs"``."""
    if not isinstance(norm_input, (bool, np.bool_)):
        raise TypeError(f"norm_input must be True or False, got {describe(norm_input)}")
    if norm_input and source != "sinabs":
        raise ValueError(
            f"norm_input=True is Sinabs's layer option (its graphs do not record it): it needs source='sinabs', "
            f"got source={source!r}"
        )
    metadata = graph.metadata if isinstance(graph.metadata, dict) else {}
    if metadata.get("writer") != _WRITER:
        return source
    target = metadata.get("target")
    written: str | None = str(target) if target in ("sinabs", "rockpool") else None  # the others keep NIR's meaning
    if source is not None and source != written:
        meaning = f"in {_TOOL[written]}'s terms" if written else "in NIR's own terms"
        raise ValueError(
            f"from_nir(source={source!r}): the graph's metadata says li-neurons wrote it "
            f"(metadata['writer'] = {_WRITER!r}, metadata['target'] = {target!r}), {meaning}, not {_TOOL[source]}'s; "
            f"read it without source="
        )
    return written


def from_nir(
    graph_or_path: nir.NIRNode | str | os.PathLike,
    dt: float | None = None,
    *,
    source: str | None = None,
    norm_input: bool = False,
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
    writes it), then under ``source="rockpool"`` to the one in ``r``; a graph
    without one needs ``dt`` (there is no default: each tool assumes its
    own). ``source`` reads a tool's own export: ``"norse"`` (Norse 1.1: time
    constants ``tau / dt``, an input that jumps the current by ``r * w_in``
    times itself); ``"sinabs"`` (``LI`` or ``LI -> LI``, tau in steps, as
    its ExpLeak layers run; ``norm_input=True`` for layers that scale their
    input by ``1 - exp(-1/tau)``, which its graphs do not record); and
    ``"rockpool"`` (``CubaLIF`` as its LIFTorch, ``LI`` as its ExpSynTorch
    run; a ``v_threshold`` at or above :data:`NEVER_FIRES` never fires). A
    graph ``to_nir`` wrote is read by its metadata, and a ``source`` that
    contradicts it is refused.
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
    source = _source(graph_or_path, source, norm_input)
    count = len(chain)  # the neuron nodes end the chain
    while count and isinstance(chain[count - 1][1], _NEURONS):
        count -= 1
    maps, neurons = chain[:count], chain[count:]
    sinabs_chain = (
        source == "sinabs" and len(neurons) == 2 and all(isinstance(n, (nir.LI, nir.LIF)) for _, n in neurons)
    )
    if not (len(neurons) == 1 or sinabs_chain) or any(isinstance(node, _NEURONS) for _, node in maps):
        kinds = " -> ".join(["Input", *(type(node).__name__ for _, node in chain), "Output"])
        raise ValueError(
            f"from_nir: expected Input -> maps -> one neuron node -> Output (or Sinabs's LI -> LI, its current "
            f"and membrane layers, with source='sinabs'), got {kinds}"
        )
    for name, node in neurons:
        _refuse_spiking(name, node, source)
    dt = _graph_dt(graph_or_path, source) if dt is None else check_dt(dt)
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None
    gain: np.ndarray | None = None
    for name, node in maps:
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
    if source == "rockpool":
        parameters, neuron_gain, fields, dt = _rockpool(*neurons[0], dt)
    elif source == "sinabs":
        assert dt is not None  # _graph_dt refused its absence
        parameters, neuron_gain, fields = _sinabs(neurons, dt, norm_input)
    else:
        assert dt is not None
        parameters, neuron_gain, fields = _neuron(*neurons[0], dt, source)
    kind = " -> ".join(_kind(*neuron) for neuron in neurons)
    try:
        neuron_shape = np.broadcast_shapes(*(value.shape for value in fields.values()))
    except ValueError:
        shapes = ", ".join(f"{field} {value.shape}" for field, value in fields.items())
        raise ValueError(f"from_nir: {kind} has fields of shapes that do not fit together: {shapes}") from None
    formula = "" if source in ("sinabs", "rockpool") else " r * w_in * dt / tau_syn"
    for field, value in {**parameters, f"the input gain{formula}": neuron_gain}.items():
        _refuse_nonfinite(value, f"from_nir: {kind} gives {field}, which")
    if weights is not None and not _fits(neuron_shape, weights.shape[:1]):
        shapes = ", ".join(f"{field} {value.shape}" for field, value in fields.items() if value.ndim)
        raise ValueError(
            f"from_nir: the maps give {weights.shape[0]} currents (shape {weights.shape[:1]}), but {kind} has "
            f"fields of shapes {shapes}: each must be () or ({weights.shape[0]},)"
        )
    if not np.all(np.abs(neuron_gain - 1.0) <= _ROUNDING):
        if weights is not None:
            weights = neuron_gain.reshape(-1, 1) * weights
        else:
            gain = neuron_gain if gain is None else gain * neuron_gain
        bias = None if bias is None else bias * neuron_gain
    p = LIParameters(*(_uniform(parameters[name]) for name in LIParameters._fields))
    return NIRModel(weights, bias, gain, p, dt)
