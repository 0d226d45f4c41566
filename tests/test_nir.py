"""NIR export and import (li_core.nir): the exported graph's fields, round
trips that reproduce ``li_scan`` on every backend (also through ``nir.write``
and ``nir.read``), graphs from other tools (``r``, ``w_in``, ``Scale``,
``Affine``, ``LI``, torch tensors, Norse's conventions), the graphs written
for other tools, and every refusal. tests/test_nir_peers.py runs the other
tools themselves."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason='nir is not installed: pip install "li-neurons[nir]"')

from li_core import LIParameters, LIState, li_scan  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core.nir import from_nir, module_to_nir, to_nir  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core.testing.cases import convert, random_case  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core.testing.tolerances import assert_matches  # noqa: E402 - after the importorskip above, which skips the module without the library


def _library(name: str):
    """``(to_array(numpy_array, dtype), to_numpy(array))`` for one array library."""
    if name == "numpy":
        return (lambda a, dtype: np.asarray(a, dtype=dtype)), np.asarray
    if name == "torch":
        torch = pytest.importorskip("torch")
        return (lambda a, dtype: torch.as_tensor(np.asarray(a, dtype=dtype))), (lambda x: x.detach().numpy())
    if name == "array_api_strict":
        xp = pytest.importorskip("array_api_strict")
        return (lambda a, dtype: xp.asarray(np.asarray(a, dtype=dtype))), np.from_dlpack
    jnp = pytest.importorskip("jax.numpy")
    return (lambda a, dtype: jnp.asarray(np.asarray(a, dtype=dtype))), np.asarray


LIBRARIES = [
    ("numpy", "float64"),
    ("numpy", "float32"),
    ("torch", "float64"),
    ("torch", "float32"),
    ("array_api_strict", "float64"),
    ("array_api_strict", "float32"),
    ("jax", "float32"),  # JAX computes in float32 unless x64 is enabled
]


def _reference(case, xs=None, weights=None):
    """The float64 NumPy ``li_scan`` of a case, the yardstick."""
    xs = case.xs if xs is None else xs
    return li_scan(xs, case.state, case.weights if weights is None else weights, case.p, case.dt, backend="numpy")


@pytest.mark.parametrize("via_file", [False, True], ids=["graph", "file"])
@pytest.mark.parametrize(("library", "dtype"), LIBRARIES, ids=[f"{lib}-{dt}" for lib, dt in LIBRARIES])
def test_export_then_import_reproduces_li_scan(library, dtype, via_file, tmp_path):
    to_array, to_numpy = _library(library)
    case = random_case(1000, batch=(3,), neurons=7, inputs=5, seed=1)
    arrays = convert(case, lambda a: to_array(a, dtype))
    graph = to_nir(arrays.weights, arrays.p, case.dt)
    if via_file:
        nir.write(tmp_path / "readout.nir", graph)
        graph = tmp_path / "readout.nir"
    model = from_nir(graph)
    voltages, state = model(arrays.xs, arrays.state)
    expected, expected_state = _reference(case)
    assert type(voltages) is type(arrays.xs) and str(voltages.dtype).endswith(dtype)
    assert_matches(to_numpy(voltages), expected, dtype, f"{library} {dtype} voltages")
    assert_matches(to_numpy(state.i), expected_state.i, dtype, f"{library} {dtype} final current")
    if dtype == "float64":  # the weights come back bit for bit, the time constants to the last bit or so
        np.testing.assert_array_equal(model.input_weights, case.weights)
        for name, value in zip(LIParameters._fields, case.p):
            np.testing.assert_allclose(getattr(model.p, name), value, rtol=4e-16, err_msg=name)


def test_exported_graph_has_the_documented_fields():
    weights = np.arange(6.0).reshape(3, 2)
    graph = to_nir(weights, LIParameters(), dt=1e-3)
    assert list(graph.nodes) == ["input", "linear", "li", "output"]
    assert graph.edges == [("input", "linear"), ("linear", "li"), ("li", "output")]
    assert graph.metadata == {"dt": 1e-3, "writer": "li-neurons"}
    np.testing.assert_array_equal(graph.nodes["input"].input_type["input"], [2])
    np.testing.assert_array_equal(graph.nodes["output"].output_type["output"], [3])
    np.testing.assert_array_equal(graph.nodes["linear"].weight, weights)
    li = graph.nodes["li"]
    assert isinstance(li, nir.CubaLI)
    np.testing.assert_allclose(li.tau_syn, [0.005] * 3, rtol=1e-15)  # 1/tau_syn_inv, seconds
    np.testing.assert_allclose(li.tau_mem, [0.01] * 3, rtol=1e-15)
    np.testing.assert_array_equal(li.r, [1.0] * 3)
    np.testing.assert_array_equal(li.v_leak, [0.0] * 3)
    np.testing.assert_allclose(li.w_in, [5.0] * 3, rtol=1e-15)  # tau_syn / dt
    with_bias = to_nir(weights, LIParameters(), dt=1e-4, bias=np.array([1.0, 2.0, 3.0]))
    assert isinstance(with_bias.nodes["affine"], nir.Affine)
    np.testing.assert_allclose(with_bias.nodes["li"].w_in, [50.0] * 3, rtol=1e-15)


def _cuba_li_euler(currents, tau_syn, tau_mem, r, w_in, v_leak, dt):
    """NIR's CubaLI, ``tau_syn dI/dt = -I + w_in S``, ``tau_mem dv/dt =
    (v_leak - v) + r I``, stepped as the contract orders it: ``S`` held for
    ``dt`` jumps ``I`` first, then ``v`` and ``I`` take one Euler step."""
    current = np.zeros(currents.shape[1:])
    voltage = np.broadcast_to(v_leak, currents.shape[1:]).astype(np.float64)
    voltages = []
    for s in currents:
        current = current + dt / tau_syn * w_in * s
        voltage = voltage + dt / tau_mem * ((v_leak - voltage) + r * current)
        current = current - dt / tau_syn * current
        voltages.append(voltage)
    return np.stack(voltages)


def _chain_graph(*maps, neuron):
    names = [f"map{k}" for k in range(len(maps))]
    nodes = {"input": nir.Input(np.array([4])), **dict(zip(names, maps)), "neuron": neuron, "output": nir.Output([3])}
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(order)), type_check=False)


def test_r_w_in_scale_and_affine_of_other_tools_are_honoured():
    rng = np.random.default_rng(2)
    dt = 1e-3
    tau_syn, tau_mem = rng.uniform(2e-3, 2e-2, 3), rng.uniform(5e-3, 5e-2, 3)
    r, w_in, v_leak = rng.uniform(0.5, 2.0, 3), rng.uniform(0.5, 8.0, 3), rng.normal(size=3)
    weights, bias = rng.normal(size=(3, 4)), rng.normal(size=3)
    scale_in, scale_out = rng.uniform(0.5, 1.5, 4), rng.uniform(0.5, 1.5, 3)
    spikes = (rng.random((300, 2, 4)) < 0.2).astype(np.float64)
    neuron = nir.CubaLI(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak, w_in=w_in)
    graph = _chain_graph(nir.Scale(scale_in), nir.Affine(weights, bias), nir.Scale(scale_out), neuron=neuron)
    currents = scale_out * ((spikes * scale_in) @ weights.T + bias)
    expected = _cuba_li_euler(currents, tau_syn, tau_mem, r, w_in, v_leak, dt)
    voltages, state = from_nir(graph, dt=dt)(spikes)
    np.testing.assert_allclose(voltages, expected, rtol=1e-11, atol=1e-11 * np.abs(expected).max())
    assert state.v.shape == (2, 3)


def test_nir_li_node_is_the_current_free_limit():
    """``tau dv/dt = (v_leak - v) + r I`` with ``I`` held for a step: the
    leaky integrator whose current decays fully within one step."""
    rng = np.random.default_rng(3)
    dt, tau, r, v_leak = 1e-3, rng.uniform(5e-3, 5e-2, 3), rng.uniform(0.5, 2.0, 3), rng.normal(size=3)
    weights = rng.normal(size=(3, 4))
    inputs = rng.normal(size=(200, 4))
    graph = _chain_graph(nir.Linear(weights), neuron=nir.LI(tau=tau, r=r, v_leak=v_leak))
    model = from_nir(graph, dt=dt)
    voltages, state = model(inputs)
    expected, voltage = [], v_leak.copy()
    for current in inputs @ weights.T:
        voltage = voltage + dt / tau * ((v_leak - voltage) + r * current)
        expected.append(voltage)
    np.testing.assert_allclose(voltages, np.stack(expected), rtol=1e-11, atol=1e-12)
    assert model.p.tau_syn_inv == 1.0 / dt
    np.testing.assert_allclose(state.i, 0.0, atol=1e-12)


def test_spiking_nodes_with_an_infinite_threshold_are_leaky_integrators():
    rng = np.random.default_rng(4)
    tau_syn, tau_mem, v_leak = np.full(3, 5e-3), np.full(3, 1e-2), rng.normal(size=3)
    cuba = {"tau_syn": tau_syn, "tau_mem": tau_mem, "r": np.ones(3), "v_leak": v_leak, "w_in": np.full(3, 5.0)}
    inputs = rng.normal(size=(50, 4))
    weights = rng.normal(size=(3, 4))
    li = from_nir(_chain_graph(nir.Linear(weights), neuron=nir.CubaLI(**cuba)), dt=1e-3)(inputs)[0]
    lif = nir.CubaLIF(**cuba, v_threshold=np.full(3, np.inf), v_reset=np.zeros(3))
    np.testing.assert_array_equal(from_nir(_chain_graph(nir.Linear(weights), neuron=lif), dt=1e-3)(inputs)[0], li)
    spiking = nir.CubaLIF(**cuba, v_threshold=np.ones(3), v_reset=np.zeros(3))
    with pytest.raises(ValueError, match=r"nir\.CubaLIF with a v_threshold below \+inf"):
        from_nir(_chain_graph(nir.Linear(weights), neuron=spiking), dt=1e-3)


def test_weightless_graphs_keep_the_neuron_shape():
    rng = np.random.default_rng(5)
    p = LIParameters(rng.uniform(100, 300, (2, 3)), 100.0, rng.normal(size=(2, 3)))
    graph = to_nir(None, p, 1e-3)
    assert list(graph.nodes) == ["input", "li", "output"]
    inputs = rng.normal(size=(40, 5, 2, 3))
    voltages, _ = from_nir(graph)(inputs)
    expected, _ = li_scan(inputs, None, None, p, 1e-3)
    np.testing.assert_allclose(voltages, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="pass shape="):
        to_nir(None, LIParameters())
    shaped = to_nir(None, LIParameters(), shape=4)
    np.testing.assert_array_equal(shaped.nodes["li"].tau_syn.shape, (4,))


def test_bias_is_a_constant_input_current():
    rng = np.random.default_rng(6)
    weights, bias = rng.normal(size=(3, 4)), rng.normal(size=3)
    spikes = (rng.random((100, 4)) < 0.3).astype(np.float64)
    voltages, _ = from_nir(to_nir(weights, LIParameters(), 1e-3, bias=bias))(spikes)
    expected, _ = li_scan(spikes @ weights.T + bias, None, None, LIParameters(), 1e-3)
    np.testing.assert_allclose(voltages, expected, rtol=1e-12, atol=1e-12)


def test_dt_comes_from_the_graph_unless_given():
    rng = np.random.default_rng(7)
    weights = rng.normal(size=(3, 4))
    inputs = rng.normal(size=(80, 4))
    graph = to_nir(weights, LIParameters(), dt=1e-4)
    assert from_nir(graph).dt == 1e-4
    # another dt: inputs held for a step ten times as long jump the current ten times as much
    voltages, _ = from_nir(graph, dt=1e-3)(inputs)
    expected, _ = li_scan(inputs, None, 10.0 * weights, LIParameters(), 1e-3)
    np.testing.assert_allclose(voltages, expected, rtol=1e-12, atol=1e-12)
    del graph.metadata["dt"]  # no silent default: each tool assumes its own
    with pytest.raises(ValueError, match=r"no time step.*pass dt=.*1e-4.*Norse for dt = 1e-3"):
        from_nir(graph)
    assert from_nir(graph, dt=1e-3).dt == 1e-3


@pytest.mark.parametrize(
    ("node", "kind"),
    [
        (nir.Threshold(np.ones(3)), "nir.Threshold"),
        (nir.Delay(np.ones(3)), "nir.Delay"),
        (nir.LIF(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)), "nir.LIF"),
    ],
)
def test_unsupported_nodes_are_named(node, kind):
    graph = _chain_graph(nir.Linear(np.ones((3, 4))), neuron=node)
    with pytest.raises(ValueError, match=kind):
        from_nir(graph, dt=1e-3)


def test_graphs_that_are_not_one_chain_are_refused():
    li = nir.CubaLI(tau_syn=np.ones(4), tau_mem=np.ones(4), r=np.ones(4), v_leak=np.zeros(4))
    branching = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([4])), "a": li, "b": nir.Scale(np.ones(4)), "output": nir.Output([4])},
        edges=[("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")],
        type_check=False,
    )
    with pytest.raises(ValueError, match="without branches or loops"):
        from_nir(branching)
    with pytest.raises(ValueError, match="one neuron node"):
        from_nir(_chain_graph(nir.Linear(np.ones((4, 4))), neuron=nir.Scale(np.ones(4))))
    with pytest.raises(TypeError, match="graph_or_path"):
        from_nir({"nodes": {}})
    li3 = _cuba()
    nodes = {"input": nir.Input(np.array([3])), "li": li3, "output": nir.Output(np.array([3]))}
    for edges, message in [
        ([("input", "li"), ("li", "out")], r"the edge \('li', 'out'\) names a node the graph does not have"),
        ([("input", "li")], r"node 'li' leads to \[\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt=1e-3)
    two_inputs = {"in1": nir.Input(np.array([3])), **nodes}
    with pytest.raises(ValueError, match="exactly one Input node, found 2"):
        from_nir(nir.NIRGraph(nodes=two_inputs, edges=[("in1", "li"), ("li", "output")], type_check=False), dt=1e-3)
    spare = {**nodes, "spare": nir.Scale(np.ones(3))}
    edges = [("input", "li"), ("li", "output")]
    with pytest.raises(ValueError, match=r"nodes \['spare'\] are not on the chain from Input to Output"):
        from_nir(nir.NIRGraph(nodes=spare, edges=edges, type_check=False), dt=1e-3)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="input_weights must be a matrix"):
        to_nir(np.ones(3))
    with pytest.raises(ValueError, match="bias must have shape"):
        to_nir(np.ones((3, 2)), bias=np.ones(2))
    with pytest.raises(ValueError, match=r"p\.tau_mem_inv must be finite and > 0"):
        to_nir(np.ones((3, 2)), LIParameters(tau_mem_inv=0.0))
    with pytest.raises(ValueError, match=r"p\.v_leak has shape \(4,\)"):
        to_nir(np.ones((3, 2)), LIParameters(v_leak=np.zeros(4)))
    with pytest.raises(ValueError, match="dt must be finite"):
        to_nir(np.ones((3, 2)), dt=-1.0)
    with pytest.raises(TypeError, match="inputs must be an array"):
        from_nir(to_nir(np.ones((3, 2))))([[1.0, 2.0]])


def test_single_neuron_node():
    li = nir.CubaLI(tau_syn=np.full(2, 5e-3), tau_mem=np.full(2, 1e-2), r=np.ones(2), v_leak=np.zeros(2))
    inputs = np.ones((10, 2))
    voltages, _ = from_nir(li, dt=1e-3)(inputs)  # w_in = 1, dt = 1 ms: the current jumps by dt/tau_syn = 0.2 per step
    expected, _ = li_scan(0.2 * inputs, None, None, LIParameters(), 1e-3)
    np.testing.assert_allclose(voltages, expected, rtol=1e-12)


# --- the torch modules -------------------------------------------------------------------------------------------


def test_torch_modules_export_their_weights_and_parameters():
    torch = pytest.importorskip("torch")
    from li_backends.torch_nn import LI, LILinearCell

    torch.manual_seed(0)
    cell = LILinearCell(5, 3, LIParameters(150.0, 80.0, 0.2), dt=5e-4, train_time_constants=True)
    spikes = (torch.rand(60, 2, 5) < 0.3).float()
    state, expected = None, []
    with torch.no_grad():
        for x in spikes:
            v, state = cell(x, state)
            expected.append(v)
    voltages, _ = from_nir(module_to_nir(cell))(spikes)
    torch.testing.assert_close(voltages, torch.stack(expected), rtol=1e-5, atol=1e-6)
    layer = LI(LIParameters(torch.linspace(100, 300, 4), 90.0, 0.0), dt=1e-3)
    graph = module_to_nir(layer)  # the neuron shape comes from the per-neuron tau_syn_inv
    np.testing.assert_array_equal(graph.nodes["li"].tau_syn.shape, (4,))
    with pytest.raises(ValueError, match="pass shape="):
        module_to_nir(LI())
    assert module_to_nir(LI(), shape=(2, 3)).nodes["li"].tau_mem.shape == (2, 3)


def test_torch_modules_have_to_nir():
    """``to_nir()`` on ``LILinearCell``, ``LI`` and ``LICell`` (a method calling ``module_to_nir``)."""
    pytest.importorskip("torch")
    from li_backends.torch_nn import LI, LICell, LILinearCell

    cell = LILinearCell(5, 3)
    np.testing.assert_array_equal(cell.to_nir().nodes["linear"].weight, cell.input_weights.detach().numpy())
    assert LI().to_nir(shape=4).nodes["li"].tau_syn.shape == (4,)
    assert LICell(dt=1e-4).to_nir(shape=4).metadata == {"dt": 1e-4, "writer": "li-neurons"}
    for target in ("snntorch", "spikingjelly", "norse"):  # the target reaches to_nir
        assert isinstance(LILinearCell(5, 3, dt=1e-4).to_nir(target=target).nodes["li"], nir.CubaLIF)
    with pytest.raises(ValueError, match="snnTorch's importer fixes dt = 1e-4"):
        LI(dt=1e-3).to_nir(shape=4, target="snntorch")


def test_initial_state_is_this_librarys_state():
    """``state`` is an ``LIState`` whose ``i`` is ``r * I`` (NIR's current times
    ``r``), and the input still reaches the neurons scaled by ``r * w_in * dt / tau_syn``."""
    li = nir.CubaLI(tau_syn=np.full(2, 5e-3), tau_mem=np.full(2, 1e-2), r=np.full(2, 2.0), v_leak=np.zeros(2))
    model = from_nir(li, dt=1e-3)
    start = LIState(np.array([0.5, -0.5]), np.array([1.0, 2.0]))
    inputs = np.random.default_rng(8).normal(size=(20, 2))
    voltages, state = model(inputs, start)
    # g = r * w_in * dt / tau_syn = 2 * 1 * 1e-3 / 5e-3 = 0.4
    expected, expected_state = li_scan(0.4 * inputs, start, None, LIParameters(), 1e-3)
    np.testing.assert_allclose(voltages, expected, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(state.i, expected_state.i, rtol=1e-14, atol=1e-15)


def test_a_bias_is_carried_through_a_later_map():
    """``Affine(w1, b1) -> Linear(w2)``: the neurons see ``w2 @ (w1 @ x + b1)``."""
    rng = np.random.default_rng(9)
    w1, b1, w2 = rng.normal(size=(4, 4)), rng.normal(size=4), rng.normal(size=(3, 4))
    neuron = nir.CubaLI(tau_syn=np.full(3, 5e-3), tau_mem=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3), w_in=5.0)
    inputs = rng.normal(size=(30, 4))
    model = from_nir(_chain_graph(nir.Affine(w1, b1), nir.Linear(w2), neuron=neuron), dt=1e-3)
    np.testing.assert_allclose(model.bias, w2 @ b1, rtol=1e-14)
    expected, _ = li_scan((inputs @ w1.T + b1) @ w2.T, None, None, LIParameters(), 1e-3)
    np.testing.assert_allclose(model(inputs)[0], expected, rtol=1e-12, atol=1e-12)


def test_torch_tensors_in_a_graph_are_read():
    """Norse's and Rockpool's graphs hold torch tensors, some requiring grad."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    fields = {"tau_syn": rng.uniform(2e-3, 2e-2, 3), "tau_mem": rng.uniform(5e-3, 5e-2, 3), "r": rng.uniform(0.5, 2, 3)}
    fields |= {"v_leak": rng.normal(size=3), "w_in": rng.uniform(1, 8, 3)}
    weights = rng.normal(size=(3, 4))
    as_numpy = _chain_graph(nir.Linear(weights), neuron=nir.CubaLI(**fields))
    neuron = nir.CubaLI(**fields)
    trained = {
        name: torch.tensor(value, requires_grad=True) for name, value in fields.items()
    }  # (nir's checks refuse these)
    linear = nir.Linear(torch.tensor(weights, requires_grad=True))
    as_torch = _chain_graph(linear, neuron=_mutated(neuron, **trained))
    inputs = rng.normal(size=(40, 4))
    np.testing.assert_array_equal(from_nir(as_torch, dt=1e-3)(inputs)[0], from_nir(as_numpy, dt=1e-3)(inputs)[0])


# --- graphs written for other tools (their importers run in tests/test_nir_peers.py) -----------------------------


def _per_neuron_case(dt: float, *, uniform: bool = False):
    rng = np.random.default_rng(11)
    size = 1 if uniform else 3
    p = LIParameters(rng.uniform(0.05, 0.5, size) / dt, rng.uniform(0.02, 0.2, size) / dt, 0.0)
    return rng.normal(size=(3, 4)), rng.normal(size=3), p, rng.normal(size=(100, 2, 4))


@pytest.mark.parametrize(("target", "dt"), [("snntorch", 1e-4), ("spikingjelly", 1e-3), ("norse", 5e-4)])
def test_graphs_for_other_tools_describe_the_same_model(target, dt):
    """NIR's own reading (this library's ``from_nir``) of a graph written for a
    tool gives the model back: the conventions differ, the model does not."""
    weights, bias, p, inputs = _per_neuron_case(dt, uniform=target == "spikingjelly")
    graph = to_nir(weights, p, dt, bias=bias, target=target)
    neuron = graph.nodes["li"]
    assert isinstance(neuron, nir.CubaLIF) and np.all(np.isposinf(neuron.v_threshold))
    assert graph.metadata == {"dt": dt, "writer": "li-neurons", "target": target}
    tau_mem = 1.0 / np.broadcast_to(p.tau_mem_inv, (3,))
    expected_r = np.ones(3) if target == "norse" else tau_mem / dt
    np.testing.assert_allclose(neuron.r, expected_r, rtol=1e-15)
    np.testing.assert_allclose(neuron.w_in, neuron.tau_syn / dt, rtol=1e-15)
    scale = 1.0 if target == "norse" else dt / tau_mem  # their membrane adds the current unscaled
    np.testing.assert_allclose(
        graph.nodes["affine"].weight, scale[..., None] * weights if target != "norse" else weights
    )
    np.testing.assert_allclose(graph.nodes["affine"].bias, scale * bias, rtol=1e-15)
    voltages, _ = from_nir(graph)(inputs)
    expected, _ = li_scan(inputs @ weights.T + bias, None, None, p, dt)
    np.testing.assert_allclose(voltages, expected, rtol=1e-11, atol=1e-11 * np.abs(expected).max())


def test_a_weightless_population_gets_the_diagonal_of_the_current_scale():
    p = LIParameters(2000.0, np.array([500.0, 1000.0, 2000.0]), 0.0)
    graph = to_nir(None, p, 1e-4, target="snntorch")
    assert list(graph.nodes) == ["input", "linear", "li", "output"]
    np.testing.assert_allclose(graph.nodes["linear"].weight, np.diag([0.05, 0.1, 0.2]), rtol=1e-15)
    inputs = np.random.default_rng(12).normal(size=(50, 3))
    expected, _ = li_scan(inputs, None, None, p, 1e-4)
    np.testing.assert_allclose(from_nir(graph)(inputs)[0], expected, rtol=1e-11, atol=1e-12)
    assert list(to_nir(None, p, 1e-4, target="norse").nodes) == ["input", "li", "output"]


@pytest.mark.parametrize(
    ("target", "arguments", "message"),
    [
        ("snntorch", {"dt": 1e-3}, r"snnTorch's importer fixes dt = 1e-4 s, got dt=0.001"),
        ("snntorch", {"p": LIParameters(v_leak=0.5)}, r"snnTorch has no leak potential.*p\.v_leak is 0\.5"),
        ("spikingjelly", {"p": LIParameters(v_leak=np.array([0, 0, -1.0]))}, r"SpikingJelly has no leak.*-1\.0 at"),
        ("norse", {"p": LIParameters(v_leak=0.5)}, r"Norse's importer feeds v_leak into the synaptic current"),
        ("snntorch", {"p": LIParameters(tau_syn_inv=2e4)}, r"snnTorch decays by 1 - dt/tau.*dt\*p\.tau_syn_inv"),
        ("spikingjelly", {"p": LIParameters(tau_mem_inv=2e4)}, r"SpikingJelly decays.*dt\*p\.tau_mem_inv.*got 2"),
        (
            "spikingjelly",
            {"p": LIParameters(tau_mem_inv=np.array([100.0, 200.0, 100.0]))},
            r"SpikingJelly's CUBALIFNode takes one value.*p\.tau_mem_inv differs between neurons \(100 to 200\)",
        ),
        (
            "snntorch",
            {"input_weights": None, "shape": (2, 3)},
            r"snnTorch needs each neuron.s current scale.*pass input_weights",
        ),
        (
            "loihi",
            {},
            r"target must be None or one of 'snntorch', 'spikingjelly', 'norse', 'sinabs', 'rockpool', got 'loihi'",
        ),
    ],
)
def test_what_a_tool_cannot_run_is_refused(target, arguments, message):
    call = {"input_weights": np.ones((3, 2)), "p": LIParameters(), "dt": 1e-4, "target": target} | arguments
    with pytest.raises(ValueError, match=message):
        to_nir(call.pop("input_weights"), **call)


# --- validation ----------------------------------------------------------------------------------------------------


def _cuba(**changes):
    fields = {"tau_syn": np.full(3, 5e-3), "tau_mem": np.full(3, 1e-2), "r": np.ones(3), "v_leak": np.zeros(3)}
    return nir.CubaLI(**(fields | {"w_in": np.full(3, 5.0)} | changes))


def _mutated(node, **fields):
    """A node changed after nir's own checks ran (as code that edits a read graph does)."""
    for name, value in fields.items():
        setattr(node, name, value)
    return node


_GOOD = nir.Linear(np.ones((3, 4)))


@pytest.mark.parametrize(
    ("maps", "neuron", "message"),
    [
        (
            [_GOOD],
            _cuba(tau_mem=np.array([1e-2, -1e-2, 1e-2])),
            r"'neuron' \(nir\.CubaLI\) field tau_mem must be finite and > 0, got -0\.01 at index \(1,\)",
        ),
        ([_GOOD], _cuba(tau_syn=np.zeros(3)), r"'neuron' \(nir\.CubaLI\) field tau_syn must be finite and > 0"),
        ([_GOOD], _cuba(tau_mem=np.full(3, np.inf)), r"field tau_mem must be finite and > 0, got inf"),
        (
            [_GOOD],
            _cuba(tau_mem=np.full(3, 1e-320)),
            r"'neuron' \(nir\.CubaLI\) gives tau_mem_inv, which must be finite",
        ),
        (
            [_GOOD],
            _cuba(tau_syn=np.full(3, 1e-300), w_in=np.full(3, 1e20)),
            r"gives the input gain r \* w_in \* dt / tau_syn, which must be",
        ),
        (
            [_GOOD],
            _cuba(w_in=np.array([5.0, np.nan, 5.0])),
            r"'neuron' \(nir\.CubaLI\) field w_in must be finite, got nan",
        ),
        ([_GOOD], _cuba(r=np.array([1.0, 1.0, np.inf])), r"field r must be finite, got inf at index \(2,\)"),
        ([_GOOD], _cuba(v_leak=np.full(3, np.nan)), r"field v_leak must be finite"),
        (
            [_GOOD],
            nir.LI(tau=-np.ones(3), r=np.ones(3), v_leak=np.zeros(3)),
            r"\(nir\.LI\) field tau must be finite and > 0",
        ),
        ([nir.Linear(np.full((3, 4), np.nan))], _cuba(), r"'map0' \(nir\.Linear\) field weight must be finite"),
        (
            [nir.Affine(np.ones((3, 4)), np.array([0, np.inf, 0]))],
            _cuba(),
            r"'map0' \(nir\.Affine\) field bias must be finite",
        ),
        (
            [nir.Affine(np.ones((3, 4)), np.ones(2))],
            _cuba(),
            r"'map0' \(nir\.Affine\) field bias has shape \(2,\), but its weight \(3, 4\) gives 3",
        ),
        ([nir.Scale(np.array([1, np.nan, 1, 1])), _GOOD], _cuba(), r"'map0' \(nir\.Scale\) field scale must be finite"),
        (
            [_GOOD, nir.Scale(np.ones(4))],
            _cuba(),
            r"'map1' \(nir\.Scale\) field scale has shape \(4,\), but the node before gives 3",
        ),
        (
            [_GOOD, nir.Linear(np.ones((3, 2)))],
            _cuba(),
            r"'map1' \(nir\.Linear\) field weight of shape \(3, 2\) takes 2 values, but the node before gives 3",
        ),
        (
            [_GOOD],
            _mutated(_cuba(), tau_mem=np.full(4, 1e-2)),
            r"'neuron' \(nir\.CubaLI\) has fields of shapes that do not fit together",
        ),
        (
            [nir.Linear(np.ones((2, 4)))],
            _cuba(),
            r"the maps give 2 currents \(shape \(2,\)\), but node 'neuron' \(nir\.CubaLI\) has fields of shapes",
        ),
        (
            [_GOOD],
            _mutated(_cuba(), w_in=np.array(["a", "b", "c"])),
            r"'neuron' \(nir\.CubaLI\) field w_in must be a number or an array of numbers",
        ),
    ],
)
def test_invalid_nodes_are_refused_naming_node_and_field(maps, neuron, message):
    with pytest.raises(ValueError, match=message):
        from_nir(_chain_graph(*maps, neuron=neuron), dt=1e-3)


@pytest.mark.parametrize("value", ["1ms", -1e-3, 0.0, float("nan"), float("inf"), True, [1e-3, 2e-3]])
def test_a_metadata_dt_that_is_not_a_positive_number_is_refused(value, tmp_path):
    graph = to_nir(np.ones((3, 2)), LIParameters(), 1e-3)
    graph.metadata["dt"] = value
    message = r"metadata\['dt'\] is .*, not a positive number of seconds; pass dt="
    with pytest.raises(ValueError, match=message):
        from_nir(graph)
    assert from_nir(graph, dt=1e-3).dt == 1e-3  # an explicit dt is used instead
    if isinstance(value, str):  # and the same from a file
        nir.write(tmp_path / "g.nir", graph)
        with pytest.raises(ValueError, match=message):
            from_nir(tmp_path / "g.nir")


def test_a_file_that_is_not_a_nir_graph_gets_one_message(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "other.h5", "w") as file:
        file["data"] = np.ones(3)
    (tmp_path / "notes.txt").write_text("not HDF5")
    for path in (tmp_path / "other.h5", tmp_path / "notes.txt", tmp_path):
        with pytest.raises(ValueError, match=r"from_nir: '.*' is not a NIR graph file \(nir\.read failed: "):
            from_nir(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        from_nir(tmp_path / "missing.nir")


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            {"input_weights": np.array([[1.0, np.nan]] * 3)},
            ValueError,
            r"input_weights must be finite, got nan at index \(0, 1\)",
        ),
        ({"bias": np.array([0, np.inf, 0])}, ValueError, r"bias must be finite, got inf at index \(1,\)"),
        ({"p": LIParameters(v_leak=np.array([0, 0, np.nan]))}, ValueError, r"p\.v_leak must be finite, got nan"),
        ({"p": LIParameters(tau_syn_inv=-1.0)}, ValueError, r"p\.tau_syn_inv must be finite and > 0, got -1\.0"),
        ({"input_weights": np.ones((3, 2)) + 1j}, TypeError, r"input_weights must be real, got .*complex"),
        ({"bias": np.ones(3, dtype=np.complex64)}, TypeError, r"bias must be real"),
    ],
)
def test_to_nir_refuses_what_from_nir_refuses(arguments, error, message):
    call = {"input_weights": np.ones((3, 2)), "p": LIParameters(), "dt": 1e-3} | arguments
    with pytest.raises(error, match=message):
        to_nir(call.pop("input_weights"), **call)


def test_complex_torch_weights_are_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"input_weights must be real, got .*complex"):
        to_nir(torch.ones(3, 2, dtype=torch.complex64))


def test_source_norse_undoes_norses_conventions():
    """Norse 1.1 writes ``tau = dt * tau_true`` and ``w_in = 1`` (the input jumps
    the current by itself, as here); ``source="norse"`` reads that back."""
    rng = np.random.default_rng(13)
    dt = 1e-3
    p = LIParameters(rng.uniform(100, 400, 3), rng.uniform(50, 200, 3), rng.normal(size=3))
    written = nir.CubaLIF(
        tau_syn=dt / p.tau_syn_inv,
        tau_mem=dt / p.tau_mem_inv,
        r=np.ones(3),
        v_leak=p.v_leak,
        v_threshold=np.full(3, np.inf),
        w_in=np.ones(3),
    )
    weights, inputs = rng.normal(size=(3, 4)), rng.normal(size=(60, 2, 4))
    expected, _ = li_scan(inputs, None, weights, p, dt)
    model = from_nir(_chain_graph(nir.Linear(weights), neuron=written), dt=dt, source="norse")
    np.testing.assert_allclose(model(inputs)[0], expected, rtol=1e-11, atol=1e-12)
    box = nir.LI(tau=dt / p.tau_mem_inv, r=np.ones(3), v_leak=p.v_leak)  # its LIBoxCell
    voltages, _ = from_nir(_chain_graph(nir.Linear(weights), neuron=box), dt=dt, source="norse")(inputs)
    expected, _ = li_scan(inputs, None, weights, LIParameters(1.0 / dt, p.tau_mem_inv, p.v_leak), dt)
    np.testing.assert_allclose(voltages, expected, rtol=1e-11, atol=1e-12)
    with pytest.raises(ValueError, match=r"source must be None or one of 'norse', 'sinabs', 'rockpool', got 'lava'"):
        from_nir(_chain_graph(nir.Linear(weights), neuron=written), dt=dt, source="lava")


# --- boundaries ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "threshold", [np.full(3, -np.inf), np.array([np.inf, -np.inf, np.inf])], ids=["-inf", "one neuron -inf"]
)
@pytest.mark.parametrize("kind", ["CubaLIF", "LIF"])
def test_a_threshold_of_minus_inf_is_refused(kind, threshold):
    """Only ``v_threshold = +inf`` is a neuron that never spikes; at ``-inf``
    it spikes on every step, which no leaky integrator does."""
    cuba = {"tau_syn": np.full(3, 5e-3), "tau_mem": np.full(3, 1e-2), "w_in": np.ones(3)}
    fields = {"r": np.ones(3), "v_leak": np.zeros(3), "v_threshold": threshold}
    neuron = (
        nir.CubaLIF(**cuba, **fields, v_reset=np.zeros(3))
        if kind == "CubaLIF"
        else nir.LIF(tau=cuba["tau_mem"], **fields)
    )
    with pytest.raises(ValueError, match=rf"'neuron'.*nir\.{kind}.*v_threshold"):
        from_nir(_chain_graph(nir.Linear(np.ones((3, 4))), neuron=neuron), dt=1e-3)


@pytest.mark.parametrize(("target", "dt"), [("snntorch", 1e-4), ("spikingjelly", 1e-3)])
@pytest.mark.parametrize("field", ["tau_syn_inv", "tau_mem_inv"])
def test_a_tool_that_decays_by_1_minus_dt_over_tau_takes_dt_tau_inv_of_1(target, dt, field):
    """``dt*tau_inv = 1`` (the state forgets everything in one step) is the
    largest these tools run: written, and read back as the same model; the
    next float above is refused."""
    limit = 1.0 / dt
    assert dt * limit == 1.0
    weights = np.random.default_rng(14).normal(size=(3, 4))
    p = LIParameters()._replace(**{field: limit})
    graph = to_nir(weights, p, dt, target=target)
    inputs = np.random.default_rng(15).normal(size=(20, 4))
    expected, _ = li_scan(inputs, None, weights, p, dt)
    np.testing.assert_allclose(from_nir(graph)(inputs)[0], expected, rtol=1e-11, atol=1e-12)
    above = p._replace(**{field: np.nextafter(limit, np.inf)})
    with pytest.raises(ValueError, match=rf"dt\*p\.{field} must be <= 1"):
        to_nir(weights, above, dt, target=target)
