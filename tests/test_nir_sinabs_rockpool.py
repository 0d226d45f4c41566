"""The graphs written for and read from Sinabs and Rockpool (li_core.nir),
without the tools: what the graphs say, read back through their metadata;
the conventions of ``source="sinabs"`` and ``source="rockpool"`` against the
tools' step equations written out here; and the refusals that go with them
(a ``source`` that contradicts the metadata, fields of the wrong shape, a
missing dt, finite thresholds, files declaring more than they store).
tests/test_nir_peers.py runs the tools themselves."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason='nir is not installed: pip install "li-neurons[nir]"')
h5py = pytest.importorskip("h5py", reason="nir's files are HDF5")

from li_core import LIParameters, li_scan  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core.nir import NEVER_FIRES, from_nir, to_nir  # noqa: E402 - after the importorskip above, which skips the module without the library

DT = 1e-3


def _case(*, per_neuron: bool = True, seed: int = 3):
    """Weights [3, 4], bias, parameters with dt*tau_inv in (0.05, 0.6), inputs [T=80, 2, 4]."""
    rng = np.random.default_rng(seed)
    size = 3 if per_neuron else 1
    p = LIParameters(rng.uniform(0.05, 0.6, size) / DT, rng.uniform(0.05, 0.6, size) / DT)
    return rng.normal(size=(3, 4)), rng.normal(size=3), p, rng.normal(size=(80, 2, 4))


def _graph(*maps, neurons, metadata=None):
    nodes = {"input": nir.Input(np.array([4])), **{f"map{k}": m for k, m in enumerate(maps)}}
    nodes |= {f"neuron{k}": n for k, n in enumerate(neurons)} | {"output": nir.Output(np.array([3]))}
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(nodes)), metadata=metadata or {}, type_check=False)


# --- to_nir(target="sinabs" / "rockpool") ------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize("per_neuron", [False, True], ids=["scalar", "per-neuron"])
@pytest.mark.parametrize("target", ["sinabs", "rockpool"])
def test_graphs_for_sinabs_and_rockpool_read_back_through_their_metadata(target, per_neuron, bias):
    """The metadata names the target, so ``from_nir`` without ``source`` reads
    the tool's conventions and gets the model back to round-off."""
    weights, offsets, p, inputs = _case(per_neuron=per_neuron)
    graph = to_nir(weights, p, DT, bias=offsets if bias else None, target=target)
    assert graph.metadata == {"dt": DT, "writer": "li-neurons", "target": target}
    expected, _ = li_scan(inputs @ weights.T + (offsets if bias else 0.0), None, None, p, DT)
    np.testing.assert_allclose(from_nir(graph)(inputs)[0], expected, rtol=1e-10, atol=1e-10)


def test_sinabs_gets_affine_layers_and_a_current_layer_only_where_it_needs_one():
    weights, _, p, _ = _case()
    graph = to_nir(weights, p, DT, target="sinabs")
    assert [type(node).__name__ for node in graph.nodes.values()] == ["Input", "Affine", "LI", "LI", "Output"]
    np.testing.assert_array_equal(graph.nodes["affine"].bias, np.zeros(3))  # its importer reads no Linear
    # ExpLeak decays by exp(-1/tau), tau in steps: the current's decay is 1 - dt*tau_syn_inv
    np.testing.assert_allclose(np.exp(-1.0 / graph.nodes["synapse"].tau), 1 - DT * p.tau_syn_inv, rtol=1e-14)
    np.testing.assert_allclose(np.exp(-1.0 / graph.nodes["li"].tau), 1 - DT * p.tau_mem_inv, rtol=1e-14)
    whole = to_nir(weights, LIParameters(1.0 / DT, p.tau_mem_inv), DT, target="sinabs")  # the current lasts one step
    assert [type(node).__name__ for node in whole.nodes.values()] == ["Input", "Affine", "LI", "Output"]


def test_rockpool_gets_its_dt_from_r_and_a_threshold_it_can_reset_with():
    weights, _, p, _ = _case()
    neuron = to_nir(weights, p, DT, target="rockpool").nodes["li"]
    np.testing.assert_allclose(np.min(neuron.tau_mem / (1 + neuron.r)), DT, rtol=1e-14)  # its importer's dt
    np.testing.assert_allclose(np.exp(-DT / neuron.tau_mem), 1 - DT * p.tau_mem_inv, rtol=1e-14)
    assert np.all(neuron.v_threshold == NEVER_FIRES) and np.all(neuron.w_in == 1)


@pytest.mark.parametrize(
    ("target", "changes", "message"),
    [
        ("sinabs", {"p": LIParameters(v_leak=0.5)}, r"Sinabs's importer requires v_leak = 0 .*p\.v_leak is 0\.5"),
        (
            "sinabs",
            {"p": LIParameters(tau_mem_inv=1000.0)},
            r"Sinabs decays by exp\(-1/tau\) per step \(tau in steps\), which must lie in \(0, 1\).*"
            r"dt\*p\.tau_mem_inv must be < 1, got 1",
        ),
        ("sinabs", {"p": LIParameters(tau_syn_inv=1500.0)}, r"Sinabs .*dt\*p\.tau_syn_inv must be <= 1, got 1\.5"),
        (
            "sinabs",
            {"p": LIParameters(tau_syn_inv=np.array([1000.0, 200.0, 1000.0]))},
            r"Sinabs runs the current as an ExpLeak layer .* 1 for some neurons only \(2 of 3\)",
        ),
        (
            "rockpool",
            {"p": LIParameters(tau_syn_inv=1000.0)},
            r"Rockpool decays by exp\(-dt/tau\) per step, which must lie in \(0, 1\): dt\*p\.tau_syn_inv must be < 1",
        ),
        ("rockpool", {"input_weights": None, "shape": (2, 3)}, r"Rockpool needs each neuron's current scale"),
        ("rockpool", {"p": LIParameters(v_leak=0.5)}, r"Rockpool's importer makes v_leak a bias .* v_leak must be 0"),
    ],
)
def test_what_sinabs_or_rockpool_cannot_run_is_refused(target, changes, message):
    call = {"input_weights": np.ones((3, 2)), "p": LIParameters(), "dt": DT, "target": target} | changes
    with pytest.raises(ValueError, match=message):
        to_nir(**call)


# --- from_nir(source="sinabs" / "rockpool"), against the tools' step equations ------------------------------------


def _exp_leak(inputs, decay, norm_input):
    """Sinabs's ExpLeak: ``v = b v + x`` (``+ (1 - b) x`` with ``norm_input``), the voltage every step."""
    v, out = np.zeros(inputs.shape[1:]), []
    for x in inputs:
        v = decay * v + ((1 - decay) * x if norm_input else x)
        out.append(v)
    return np.array(out)


@pytest.mark.parametrize("norm_input", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_source_sinabs_reads_exp_leak_layers_as_sinabs_runs_them(layers, norm_input):
    rng = np.random.default_rng(4)
    weights, bias, inputs = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=(80, 2, 4))
    taus = [rng.uniform(1.5, 20.0, 3) for _ in range(layers)]  # in steps
    neurons = [nir.LI(tau=tau, r=np.ones(3), v_leak=np.zeros(3)) for tau in taus]
    expected = inputs @ weights.T + bias
    for tau in taus:
        expected = _exp_leak(expected, np.exp(-1.0 / tau), norm_input)
    graph = _graph(nir.Affine(weights, bias), neurons=neurons)
    voltages, _ = from_nir(graph, dt=2e-4, source="sinabs", norm_input=norm_input)(inputs)  # any dt: steps
    np.testing.assert_allclose(voltages, expected, rtol=1e-10, atol=1e-10)


def _rockpool_r(tau, dt):
    return tau * np.exp(-dt / tau) / dt  # what Rockpool's exporter writes


def test_source_rockpool_reads_lif_and_exp_syn_as_rockpool_runs_them():
    rng = np.random.default_rng(5)
    dt = 5e-4
    weights, inputs = rng.normal(size=(3, 4)), rng.normal(size=(80, 2, 4))
    tau_syn, tau_mem = rng.uniform(1e-3, 1e-2, 3), rng.uniform(2e-3, 2e-2, 3)
    a, b = np.exp(-dt / tau_mem), np.exp(-dt / tau_syn)
    isyn, vmem, expected = 0.0, 0.0, []
    for x in inputs @ weights.T:  # LIFTorch.forward, without spikes
        isyn = (isyn + x) * b
        vmem = vmem * a + isyn
        expected.append(vmem)
    lif = nir.CubaLIF(
        tau_syn=tau_syn,
        tau_mem=tau_mem,
        r=_rockpool_r(tau_mem, dt),
        v_leak=np.zeros(3),
        w_in=np.ones(3),
        v_threshold=np.full(3, NEVER_FIRES),
        v_reset=np.zeros(3),
    )
    model = from_nir(_graph(nir.Linear(weights), neurons=[lif]), source="rockpool")  # dt from r: tau W(1/r)
    assert model.dt == pytest.approx(dt, rel=1e-12)
    np.testing.assert_allclose(model(inputs)[0], np.array(expected), rtol=1e-10, atol=1e-10)
    isyn, expected = 0.0, []
    for x in inputs @ weights.T:  # ExpSynTorch.forward
        isyn = (isyn + x) * b
        expected.append(isyn)
    li = nir.LI(tau=tau_syn, r=_rockpool_r(tau_syn, dt), v_leak=np.zeros(3))
    voltages, _ = from_nir(_graph(nir.Linear(weights), neurons=[li]), source="rockpool")(inputs)
    np.testing.assert_allclose(voltages, np.array(expected), rtol=1e-10, atol=1e-10)


# --- refusals ------------------------------------------------------------------------------------------------------


def _lif(threshold, **changes):
    fields = {"tau_syn": np.full(3, 5e-3), "tau_mem": np.full(3, 1e-2), "r": _rockpool_r(np.full(3, 1e-2), DT)}
    fields |= {"v_leak": np.zeros(3), "w_in": np.ones(3), "v_threshold": np.full(3, threshold), "v_reset": np.zeros(3)}
    return nir.CubaLIF(**(fields | changes))


def test_a_threshold_rockpool_writes_reads_as_never_firing_and_others_are_refused():
    for threshold in (NEVER_FIRES, np.inf):
        from_nir(_graph(nir.Linear(np.ones((3, 4))), neurons=[_lif(threshold)]), source="rockpool")
    message = (
        r"v_threshold below 3\.402823e\+38 \(1e\+30 at index \(0,\)\); it spikes.*or at least 3\.402823e\+38 \(the largest "
        r"float32, which to_nir\(target='rockpool'\) writes"
    )
    with pytest.raises(ValueError, match=message):
        from_nir(_graph(nir.Linear(np.ones((3, 4))), neurons=[_lif(1e30)]), source="rockpool")
    with pytest.raises(ValueError, match=r"v_threshold below \+inf .*with v_threshold = \+inf is accepted\)"):
        from_nir(_graph(nir.Linear(np.ones((3, 4))), neurons=[_lif(NEVER_FIRES)]), dt=DT)  # NIR's own meaning


@pytest.mark.parametrize(
    ("target", "source"), [("norse", "norse"), (None, "sinabs"), ("sinabs", "rockpool"), ("rockpool", "norse")]
)
def test_a_source_that_contradicts_the_graphs_metadata_is_refused(target, source):
    weights, _, p, _ = _case()
    graph = to_nir(weights, p, DT, target=target)
    with pytest.raises(
        ValueError, match=rf"from_nir\(source='{source}'\): the graph's metadata says li-neurons wrote it"
    ):
        from_nir(graph, source=source)


def test_neuron_fields_of_the_wrong_shape_are_refused_even_with_the_right_size():
    neuron = nir.CubaLI(
        tau_syn=np.full(3, 5e-3), tau_mem=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3), w_in=np.ones(3)
    )
    for field in ("tau_syn", "tau_mem", "r", "v_leak", "w_in"):  # the right size: 3 values for 3 currents
        setattr(neuron, field, getattr(neuron, field).reshape(3, 1))  # as code editing a read graph can
    message = r"the maps give 3 currents \(shape \(3,\)\), but node 'neuron0' \(nir\.CubaLI\) has fields of shapes tau_syn \(3, 1\)"
    with pytest.raises(ValueError, match=message):
        from_nir(_graph(nir.Linear(np.ones((3, 4))), neurons=[neuron]), dt=DT)


def test_the_missing_dt_message_says_what_each_tool_assumes():
    graph = _graph(nir.Affine(np.ones((3, 4)), np.zeros(3)), neurons=[nir.LI(np.full(3, 4.0), np.ones(3), np.zeros(3))])
    with pytest.raises(
        ValueError, match=r"no dt was given.*Sinabs counts time constants in steps.*Rockpool's r records its dt"
    ):
        from_nir(graph, source="sinabs")


@pytest.mark.parametrize(
    ("neurons", "source", "changes", "message"),
    [
        (
            [nir.LI(np.full(3, 4.0), np.full(3, 2.0), np.zeros(3))],
            "sinabs",
            {},
            r"Sinabs's importer requires r = 1; r is 2",
        ),
        ([_lif(np.inf, w_in=np.full(3, 2.0))], "rockpool", {}, r"Rockpool's importer ignores w_in, which must be 1"),
        ([_lif(np.inf, v_leak=np.full(3, 0.5))], "rockpool", {}, r"Rockpool reads v_leak as a bias .*v_leak must be 0"),
        (
            [_lif(np.inf, r=np.array([5.0, 9.0, 9.0]))],
            "rockpool",
            {"dt": None},
            r"field r gives different steps dt = tau W\(1/r\) for different neurons",
        ),
        ([_lif(np.inf)], "sinabs", {}, r"Sinabs writes its ExpLeak as LI and its LIF as LIF; this node is not read"),
        ([_lif(np.inf)], None, {"norm_input": True}, r"norm_input=True is Sinabs's layer option .* got source=None"),
        ([_lif(np.inf), _lif(np.inf)], "rockpool", {}, r"expected Input -> maps -> one neuron node -> Output"),
    ],
)
def test_what_the_tools_conventions_cannot_mean_is_refused(neurons, source, changes, message):
    with pytest.raises(ValueError, match=message):
        from_nir(_graph(nir.Linear(np.ones((3, 4))), neurons=neurons), source=source, **({"dt": DT} | changes))


def test_norm_input_must_be_a_bool():
    with pytest.raises(TypeError, match=r"norm_input must be True or False, got a builtins\.str"):
        from_nir(
            _graph(neurons=[nir.LI(np.full(3, 4.0), np.ones(3), np.zeros(3))]), dt=DT, source="sinabs", norm_input="yes"
        )


def test_a_file_declaring_more_than_it_stores_is_refused_before_reading(tmp_path, monkeypatch):
    """A few KB declaring a 2 GB weight (unwritten chunks): refused before ``nir.read`` loads it."""
    path = tmp_path / "inflated.nir"
    nir.write(path, to_nir(np.ones((3, 4)), LIParameters(), DT))
    with h5py.File(path, "r+") as file:
        node = file["node/nodes/linear"]
        del node["weight"]
        node.create_dataset("weight", shape=(20_000, 25_000), dtype="float32", chunks=(1000, 1000))

    def read(*_):
        raise AssertionError("nir.read ran on the inflated file")

    monkeypatch.setattr(nir, "read", read)
    message = r"dataset 'node/nodes/linear/weight' declares shape \(20000, 25000\) of float32 \(2,000,000,000 bytes\)"
    with pytest.raises(ValueError, match=message):
        from_nir(path)
