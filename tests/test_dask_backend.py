"""The ``dask`` backend: lazy results, NumPy companions, the block backends
chosen by li_core's selection, the scan parallel over time against the NumPy
backend, and Zarr output out of core under a ``dask.distributed.LocalCluster``.
The conformance suite runs on it through tests/test_conformance.py
(``li check dask``)."""

from __future__ import annotations

import logging
import re
import resource
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="the dask backend needs dask[array]: pip install li-neurons[dask]")
import dask  # noqa: E402 - after the importorskip above, which skips the module without the library

import li_core  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_backends.dask import DaskBackend  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core import LIParameters, LIState, UnstableStepWarning, li_feed_forward_step, li_scan, li_step  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core import reference as ref  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core.testing.tolerances import assert_matches, error_ratio  # noqa: E402 - after the importorskip above, which skips the module without the library

DT = 1e-3


def refuse_to_compute(*args, **kwargs):
    raise AssertionError("something was computed inside the call")


def per_neuron(rng, neurons, dtype="float64"):
    return LIParameters(
        rng.uniform(50, 400, neurons).astype(dtype),
        rng.uniform(50, 400, neurons).astype(dtype),
        rng.uniform(-1, 1, neurons).astype(dtype),
    )


def ladder_case(slowest_decade, steps, dtype, seed=0):
    """Per-neuron ``dt*tau_inv`` on a half-decade ladder from 1 down to
    ``10**-slowest_decade``, the membrane rates ascending where the synaptic
    ones descend, plus a neuron slow and one fast in both; random inputs of
    mean 0.5, a random state and leak."""
    rng = np.random.default_rng(seed)
    ladder = np.logspace(0, -slowest_decade, 2 * slowest_decade + 1)
    bottom = 10.0**-slowest_decade
    mem = np.concatenate([ladder, ladder[::-1], [bottom, 1.0]])
    syn = np.concatenate([ladder[::-1], ladder, [bottom, 1.0]])
    neurons = mem.size
    xs = rng.normal(0.5, 1.0, size=(steps, neurons)).astype(dtype)
    p = LIParameters((syn / DT).astype(dtype), (mem / DT).astype(dtype), rng.uniform(-1, 1, neurons).astype(dtype))
    state = LIState(*(rng.normal(size=neurons).astype(dtype) for _ in range(2)))
    return xs, state, p


def as_float64(xs, state, p):
    return (
        xs.astype(np.float64),
        LIState(*(a.astype(np.float64) for a in state)),
        LIParameters(*(a.astype(np.float64) for a in p)),
    )


# -- lazy results ---------------------------------------------------------------------------


def test_nothing_is_computed_inside_the_calls():
    rng = np.random.default_rng(0)
    xs = da.from_array(rng.normal(size=(40, 3, 8)), chunks=(10, 2, 4))
    weights = rng.normal(size=(5, 8))
    lazy_p = LIParameters(da.from_array(rng.uniform(50, 400, 8), chunks=4), 100.0, rng.uniform(-1, 1, 8))
    with dask.config.set(scheduler=refuse_to_compute):
        results = [
            li_scan(xs, None, None, lazy_p),
            li_scan(xs, None, None, lazy_p, record_states=True),
            li_scan(xs, None, weights),
            li_scan(xs, None, weights, record_states=True),
            li_scan(xs[:0], None, None, lazy_p),
            li_step(xs[0], None, weights),
            li_feed_forward_step(xs[0], None, lazy_p),
        ]
        with pytest.raises(AssertionError, match="computed inside"):
            results[0][0].compute()  # the guard works
    for voltages, state in results:
        for array in (voltages, state.v, state.i):
            assert isinstance(array, da.Array), f"{type(array)} is not a Dask array"


def test_unstable_lazy_parameters_are_not_computed_but_numpy_companions_are_checked():
    xs = da.ones((10, 4), chunks=5)
    unstable = da.full((4,), 3000.0, chunks=2)  # dt*tau_mem_inv = 3
    with dask.config.set(scheduler=refuse_to_compute):
        li_scan(xs, p=LIParameters(tau_mem_inv=unstable))
    with pytest.warns(UnstableStepWarning, match="tau_mem_inv"):
        li_scan(xs, p=LIParameters(tau_mem_inv=np.full(4, 3000.0)))


# -- companions -----------------------------------------------------------------------------


def test_numpy_state_weights_and_parameters_beside_dask_inputs():
    rng = np.random.default_rng(1)
    spikes = rng.normal(size=(30, 2, 6))
    weights = rng.normal(size=(5, 6))
    state = LIState(rng.normal(size=(2, 5)), rng.normal(size=(2, 5)))
    p = per_neuron(rng, 5)
    want_v, want = ref.scan(spikes, state, weights, p, DT)
    as_dask = DaskBackend().asarray
    all_dask = (as_dask(spikes), LIState(*map(as_dask, state)), as_dask(weights), LIParameters(*map(as_dask, p)))
    for what, (xs, st, w, q) in {
        "numpy companions": (as_dask(spikes), state, weights, p),
        "all dask": all_dask,
    }.items():
        voltages, final = dask.compute(*li_scan(xs, st, w, q, DT))
        assert_matches(voltages, want_v, "float64", f"{what}: voltages")
        assert_matches(final.i, want.i, "float64", f"{what}: final i")


def test_other_libraries_and_dtypes_are_still_refused():
    array_api_strict = pytest.importorskip("array_api_strict")
    xs = da.ones((10, 4), chunks=5)
    with pytest.raises(TypeError, match=r"state\.i .*array_api_strict.* \(or numpy\)"):
        li_scan(xs, LIState(np.zeros(4), array_api_strict.zeros(4, dtype=array_api_strict.float64)))
    with pytest.raises(TypeError, match=r"p\.v_leak has dtype float32"):
        li_scan(xs, p=LIParameters(v_leak=np.zeros(4, dtype=np.float32)))
    with pytest.raises(ValueError, match=r"input_weights of shape \(3, 5\)"):
        li_scan(xs, None, np.ones((3, 5)))


def test_companions_declared_by_the_backend():
    backend = li_core.get_backend("dask")
    assert backend.companions(da.ones(3)) == ("numpy",)
    assert li_core.get_backend("numpy").companions(np.ones(3)) == ()
    info = next(info for info in li_core.list_backends() if info.name == "dask")
    assert info.block_libraries == ("numpy", "cupy") and info.autograd is False


# -- the graph: one matmul, block backends, time chunks side by side -------------------------


def layer_names(array):
    return list(array.__dask_graph__().layers)


def test_weights_project_all_steps_in_one_matmul():
    rng = np.random.default_rng(2)
    xs = da.from_array(rng.normal(size=(40, 3, 6)), chunks=(10, 3, 6))
    voltages, states = li_scan(xs, None, rng.normal(size=(4, 6)), record_states=True)
    names = {name for array in (voltages, *states) for name in layer_names(array)}
    assert len([name for name in names if name.startswith("matmul")]) == 1, names


class Recording(li_core.get_backend("numpy").__class__):
    """A NumPy backend that counts the blocks it computed."""

    def __init__(self, name, priority):
        self.name, self.priority, self.calls = name, priority, 0

    def scan(self, *args):
        self.calls += 1
        return super().scan(*args)

    def feed_forward_step(self, *args):
        self.calls += 1
        return super().feed_forward_step(*args)


@pytest.fixture
def preferred(fresh_registry, monkeypatch):
    """A third-party backend for NumPy arrays, preferred over ``numpy`` (priority 50)."""
    spy = Recording("preferred", 50)
    backends = dict(fresh_registry.backends)
    backends[spy.name] = backends["numpy"]._replace(backend=spy, provider="test preferred")
    monkeypatch.setattr(fresh_registry, "_backends", backends)
    return spy


def test_blocks_run_on_the_backend_li_core_selects(preferred, monkeypatch):
    xs = da.from_array(np.random.default_rng(3).normal(size=(20, 8)), chunks=(5, 4))  # 4 x 2 blocks
    with dask.config.set(scheduler="sync"):
        dask.compute(*li_scan(xs))
        assert preferred.calls > 8, "the preferred third-party backend did not compute the blocks"
        li_feed_forward_step(xs[0], None)[0].compute()
        calls = preferred.calls
        monkeypatch.setenv("LI_BACKEND", "numpy")
        with li_core.use_backend("dask"):  # chooses dask for the Dask array, not for its blocks
            dask.compute(*li_scan(xs))
    assert preferred.calls == calls, "LI_BACKEND=numpy was not honoured for the blocks"


def test_time_chunks_do_not_run_one_after_another():
    xs = da.from_array(np.random.default_rng(4).normal(size=(60, 4)), chunks=(10, 2))
    voltages, _ = li_scan(xs)
    graph = dict(voltages.__dask_graph__())
    rescans = {key for key in graph if key[0].startswith("li-chunk-scan-")}
    assert len(rescans) == 12  # 6 time chunks x 2 neuron blocks
    last = max(rescans, key=lambda key: key[1:])
    pending, seen = [last], set()
    while pending:
        for dependency in dask.core.get_dependencies(graph, pending.pop()):
            if dependency not in seen:
                seen.add(dependency)
                pending.append(dependency)
    assert not seen & rescans, "the last time chunk waits for the scans of earlier chunks"


# -- accuracy against the NumPy backend ------------------------------------------------------


def scan_both(xs, state, p, chunks):
    want_v, want = li_scan(xs, state, None, p, DT, backend="numpy")
    got_v, got = dask.compute(*li_scan(da.from_array(xs, chunks=chunks), state, None, p, DT))
    return (got_v, got), (want_v, want)


def test_100_time_chunks_of_100000_steps_float64_rates_1e9_to_1():
    xs, state, p = ladder_case(9, 100_000, "float64")
    (got_v, got), (want_v, want) = scan_both(xs, state, p, (1000, -1))
    assert_matches(got_v, want_v, "float64", "voltages")
    assert_matches(got.v, want.v, "float64", "final v")
    assert_matches(got.i, want.i, "float64", "final i")


def test_100_time_chunks_of_100000_steps_float32_rates_1e4_to_1():
    xs, state, p = ladder_case(4, 100_000, "float32")
    (got_v, got), (want_v, want) = scan_both(xs, state, p, (1000, -1))
    assert_matches(got_v, want_v, "float32", "voltages")
    assert_matches(got.v, want.v, "float32", "final v")
    assert_matches(got.i, want.i, "float32", "final i")


def per_neuron_ratio(got, want, dtype):
    """The largest error of any neuron as a multiple of the tolerance
    relative to that neuron's own largest value (stricter than the contract,
    whose ``max|r|`` is the largest value of all neurons)."""
    return max(error_ratio(got[:, n], want[:, n], dtype) for n in range(want.shape[1]))


@pytest.mark.parametrize("chunk", [100, 10_000])
def test_float32_time_chunks_absorb_nothing_with_rates_down_to_1e9(chunk):
    """The absorption case: rates down to 1e-9 over 100,000 steps, float32
    against the float64 ``numpy`` backend. Plain float32 recurrences were
    20.8 times the tolerance with 10,000-step chunks (each chunk's scan
    rounding away a slow neuron's changes); the compensated chunk scans, the
    chunk ends kept as deviations from rest and the compensated carry over
    1,000 boundaries keep every neuron within a small fraction of its own
    tolerance (about 0.01)."""
    xs, state, p = ladder_case(9, 100_000, "float32")
    got_v, got = dask.compute(*li_scan(da.from_array(xs, chunks=(chunk, -1)), state, None, p, DT))
    exact_xs, exact_state, exact_p = as_float64(xs, state, p)
    exact_v, exact = li_scan(exact_xs, exact_state, None, exact_p, DT, backend="numpy")
    assert per_neuron_ratio(got_v, exact_v, "float32") <= 0.05
    assert_matches(got.v, exact.v, "float32", "final v")
    assert_matches(got.i, exact.i, "float32", "final i")


def test_a_longer_last_time_chunk_is_kept():
    """Time chunks of one length but the last, which may be shorter or
    longer: a longer one is scanned as it is, not rechunked."""
    rng = np.random.default_rng(6)
    xs = rng.normal(size=(40, 3))
    state = LIState(rng.normal(size=3), rng.normal(size=3))
    p = per_neuron(rng, 3)
    voltages, final = li_scan(da.from_array(xs, chunks=((10, 10, 20), 3)), state, None, p, DT)
    assert voltages.chunks[0] == (10, 10, 20)
    want_v, want = ref.scan(xs, state, None, p, DT)
    got_v, got = dask.compute(voltages, final)
    assert_matches(got_v, want_v, "float64", "voltages")
    assert_matches(got.i, want.i, "float64", "final i")


@pytest.mark.parametrize(
    "chunks",
    [(1, 3), (7, 2), ((5, 20, 3, 12), 4), (40, -1)],
    ids=["one-step chunks", "last chunk shorter", "irregular", "one chunk"],
)
def test_chunkings_match_the_numpy_backend(chunks):
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(40, 6))
    state = LIState(rng.normal(size=6), rng.normal(size=6))
    p = per_neuron(rng, 6)
    (got_v, got), (want_v, want) = scan_both(xs, state, p, chunks)
    assert_matches(got_v, want_v, "float64", f"chunks {chunks}: voltages")
    assert_matches(got.i, want.i, "float64", f"chunks {chunks}: final i")
    recorded_v, recorded = dask.compute(
        *li_scan(da.from_array(xs, chunks=chunks), state, None, p, DT, record_states=True)
    )
    want_seq = li_scan(xs, state, None, p, DT, record_states=True)[1]
    assert_matches(recorded.i, want_seq.i, "float64", f"chunks {chunks}: recorded i")
    np.testing.assert_array_equal(recorded.v, recorded_v)


def test_float16_is_computed_in_float32():
    xs, state, p = ladder_case(2, 2000, "float16")
    want_v, _ = li_scan(xs, state, None, p, DT, backend="numpy")
    got_v = li_scan(da.from_array(xs, chunks=(100, -1)), state, None, p, DT)[0]
    assert got_v.dtype == np.float16
    assert_matches(got_v.compute(), want_v, "float16", "float16 voltages")


# -- out of core -----------------------------------------------------------------------------


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_to_zarr_streams_results_larger_than_the_worker_memory_limit(tmp_path):
    """128 MiB of voltages, 4x the 32 MiB limit of each of two worker
    processes on 127.0.0.1, written to Zarr, re-read and checked on a slice.
    At this scale a Python worker alone (~110 MiB) is over the limit, so the
    thresholds that act on the whole process (pause, terminate) are off and
    the one on the data a worker holds (spill to disk beyond 60 %) is on;
    what each worker's peak memory grew by must stay under the limit."""
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("zarr")
    limit = 32 * 2**20
    steps, neurons, inputs = 4096, 8192, 64
    config = {"distributed.worker.memory.pause": False, "distributed.worker.memory.terminate": False}
    with (
        dask.config.set(config),
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            memory_limit=limit,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        spikes = (da.random.default_rng(0).random((steps, inputs), chunks=(256, inputs)) < 0.05).astype("float32")
        weights = da.random.default_rng(1).standard_normal((neurons, inputs), chunks=(1024, inputs)).astype("float32")
        voltages, _ = li_scan(spikes, None, weights)
        assert voltages.nbytes >= 4 * limit
        before = client.run(peak_rss_bytes)
        voltages.to_zarr(str(tmp_path / "v.zarr"))
        after = client.run(peak_rss_bytes)
        spikes_np, weights_np = dask.compute(spikes, weights[1000:1100])
    grown = {worker: after[worker] - before[worker] for worker in before}
    assert all(growth < limit for growth in grown.values()), f"peak memory grew by {grown} bytes"
    stored = da.from_zarr(str(tmp_path / "v.zarr"))
    assert stored.shape == (steps, neurons)
    want, _ = li_scan(spikes_np, None, weights_np, backend="numpy")
    assert_matches(np.asarray(stored[:, 1000:1100]), want, "float32", "re-read slice")


# -- what users see --------------------------------------------------------------------------


def test_li_demo_streams_into_a_zarr_store_with_a_progress_bar(capsys, tmp_path):
    from li_core import cli

    store = tmp_path / "v.zarr"
    arguments = ["demo", "-o", str(tmp_path / "d.png"), "--neurons", "40", "--inputs", "30", "--steps", "600"]
    assert cli.main([*arguments, "--backend", "dask", "--store", str(store)]) == 0
    lazy = capsys.readouterr()
    assert cli.main([*arguments, "--backend", "numpy"]) == 0
    in_memory = capsys.readouterr().out
    assert "li demo:" in lazy.err and "100%" in lazy.err, "no progress bar on stderr"
    assert f"into the Zarr store {store}" in lazy.out
    spikes, weights = li_core.demo.make_inputs(40, 30, 600)
    want, _ = li_scan(spikes, None, weights)
    assert_matches(np.asarray(da.from_zarr(str(store))), want, "float32", "the demo's store")
    assert re.findall("voltage: .*", lazy.out) == re.findall("voltage: .*", in_memory), "other statistics than numpy's"


def test_li_backends_shows_the_block_libraries_and_no_autograd(capsys):
    from li_core import cli

    assert cli.main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-1] == "blocks"
    row = next(line.split() for line in lines if line.startswith("dask "))
    assert row[-3:] == ["no", "numpy,", "cupy"], row


# -- registration ----------------------------------------------------------------------------


def test_registering_imports_no_dask():
    code = "import sys, li_core\nli_core.list_backends\nfrom li_core.registry import registry\nregistry.backends\nprint([m for m in ('dask', 'distributed', 'zarr') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


# -- bad input -------------------------------------------------------------------------------


def test_a_nonfinite_lazy_parameter_raises_when_computed_naming_its_index():
    """The call builds the graph (nothing is computed); computing raises,
    with the index in the whole parameter, not in its block."""
    tau = np.full(8, 100.0)
    tau[6] = np.nan
    xs = da.ones((10, 8), chunks=(5, 4))
    with dask.config.set(scheduler=refuse_to_compute):
        voltages, _ = li_scan(xs, p=LIParameters(tau_syn_inv=da.from_array(tau, chunks=4)))
    with pytest.raises(ValueError, match=r"^p\.tau_syn_inv must be finite, got nan at index 6$"):
        voltages.compute()
    with pytest.raises(ValueError, match=r"p\.tau_syn_inv must be finite, got nan at index 6"):
        li_scan(xs, p=LIParameters(tau_syn_inv=tau))  # a NumPy companion: checked in the call


@pytest.mark.parametrize("weighted", [False, True])
def test_unknown_time_chunk_sizes_are_refused_naming_the_argument(weighted):
    """Boolean indexing of the time steps leaves chunks of unknown (NaN) length."""
    rng = np.random.default_rng(0)
    xs = da.from_array(rng.normal(size=(20, 6)), chunks=(5, 3))
    unknown = xs[xs[:, 0] > 0]
    with pytest.raises(ValueError) as info:
        li_scan(unknown, None, rng.normal(size=(4, 6)) if weighted else None)
    message = str(info.value)
    assert message.startswith("inputs has unknown (NaN) sizes, chunks ((nan, nan, nan, nan), (3, 3))")
    assert "inputs.compute_chunk_sizes()" in message
    voltages, _ = li_scan(unknown.compute_chunk_sizes(), None, rng.normal(size=(4, 6)) if weighted else None)
    assert voltages.shape[0] == int((xs[:, 0] > 0).sum().compute())


@pytest.mark.parametrize("argument", ["input_weights", "state.v", "state.i", "p.tau_mem_inv"])
def test_unknown_sizes_of_any_argument_are_refused_naming_it(argument):
    """Weights, state and parameters with unknown (NaN) lengths are refused by
    name, with the fix, before any graph is built."""
    rng = np.random.default_rng(0)
    xs = da.from_array(rng.normal(size=(8, 3, 6)), chunks=(4, 3, 6))
    arrays = {
        "input_weights": da.from_array(rng.normal(size=(4, 6)), chunks=(2, 6)),
        "state.v": da.from_array(rng.normal(size=(3, 4)), chunks=(3, 2)),
        "state.i": da.from_array(rng.normal(size=(3, 4)), chunks=(3, 2)),
        "p.tau_mem_inv": da.from_array(rng.uniform(50, 150, size=4), chunks=2),
    }
    known = arrays[argument]
    arrays[argument] = known[known[:, 0] > -np.inf] if known.ndim > 1 else known[known > 0]
    with pytest.raises(ValueError) as info:
        li_scan(
            xs,
            LIState(arrays["state.v"], arrays["state.i"]),
            arrays["input_weights"],
            LIParameters(tau_mem_inv=arrays["p.tau_mem_inv"]),
        )
    message = str(info.value)
    assert message.startswith(f"{argument} has unknown (NaN) sizes")
    assert f"{argument} = {argument}.compute_chunk_sizes()" in message
