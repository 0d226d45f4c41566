"""The ``cupy`` backend: registration, availability, and (on a CUDA device)
its results on CuPy arrays against the float64 reference.

Availability is checked in whichever state this machine is in (without CuPy,
or with CuPy and no device) and, through a stand-in module, in the other one.
The GPU tests skip with the backend's own reason when it cannot run here.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import numpy as np
import pytest

import li_core
from li_backends.cupy import CuPyBackend
from li_core import LIParameters, LIState, li_feed_forward_step, li_scan, li_step
from li_core import reference as ref
from li_core.backend import extra_requirements, install_command
from li_core.testing.tolerances import assert_matches


def cupy_import_error() -> str | None:
    try:
        importlib.import_module("cupy")
    except Exception as exc:  # noqa: BLE001 - the error is the reported reason
        return f"{type(exc).__name__}: {exc}"
    return None


UNAVAILABLE = CuPyBackend().availability()
needs_gpu = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"the cupy backend cannot run here: {UNAVAILABLE}")


# --- registration and availability -------------------------------------------------


def test_declared_capabilities():
    backend = li_core.get_backend("cupy")
    assert isinstance(backend, CuPyBackend)
    assert (backend.name, backend.library, backend.priority, backend.extra) == ("cupy", "cupy", 30, "cupy")
    assert backend.dtypes == ("float16", "float32", "float64")
    assert backend.devices == ("cuda",)
    assert backend.autograd is False
    assert backend.install_hint() == install_command("cupy")
    if extra_requirements("cupy"):  # (installed: the hint names the extra's requirements)
        assert '"nvidia-cuda-nvrtc-cu12==12.*"' in backend.install_hint()  # NVRTC compiles the kernels


def test_registering_and_handles_do_not_import_cupy():
    probe = (
        "import sys, numpy, li_core\n"
        "backend = li_core.get_backend('cupy')\n"
        "assert not backend.handles(numpy.zeros(3))\n"
        "assert 'cupy' not in sys.modules, 'cupy was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_listed_with_the_real_reason(fresh_registry):
    (row,) = [row for row in li_core.list_backends() if row.name == "cupy"]
    assert row.distribution == "li-neurons"
    assert row.available is (UNAVAILABLE is None)
    assert row.reason == UNAVAILABLE


@pytest.mark.skipif(cupy_import_error() is None, reason="cupy is installed here")
def test_without_cupy_the_reason_is_the_import_error(fresh_registry):
    reason = cupy_import_error()
    assert CuPyBackend().availability() == reason
    with pytest.raises(li_core.BackendUnavailableError) as raised:
        li_scan(np.zeros((2, 3)), backend="cupy")
    assert reason in str(raised.value)
    assert install_command("cupy") in str(raised.value)


@pytest.mark.skipif(cupy_import_error() is not None, reason="cupy is not installed here")
def test_with_cupy_the_reason_is_no_device_unless_there_is_one():
    if UNAVAILABLE is not None:
        assert UNAVAILABLE.startswith("no CUDA device (")


@pytest.mark.parametrize(
    "device_count, reason",
    [
        (RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"),
         "no CUDA device (RuntimeError: cudaErrorNoDevice: no CUDA-capable device is detected)"),
        (0, "no CUDA device (cupy.cuda.runtime.getDeviceCount() is 0)"),
        (1, None),
    ],
    ids=["runtime error", "zero devices", "one device"],
)  # fmt: skip
def test_availability_with_a_stand_in_cupy(monkeypatch, fresh_registry, device_count, reason):
    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    stand_in = types.ModuleType("cupy")
    stand_in.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=get_device_count))
    monkeypatch.setitem(sys.modules, "cupy", stand_in)
    assert CuPyBackend().availability() == reason
    if reason is not None:
        with pytest.raises(li_core.BackendUnavailableError) as raised:
            li_scan(np.zeros((2, 3)), backend="cupy")
        assert reason in str(raised.value) and install_command("cupy") in str(raised.value)


# --- on a CUDA device ----------------------------------------------------------------


@pytest.fixture
def cupy():
    import cupy

    return cupy


def on_device(cupy, a, dtype):
    return a if isinstance(a, float) else cupy.asarray(np.asarray(a, dtype=dtype))


def rounded(a, dtype):
    return a if a is None or isinstance(a, float) else np.asarray(a, dtype=dtype).astype(np.float64)


@needs_gpu
@pytest.mark.parametrize("record_states", [False, True], ids=["final", "record"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_scan_matches_reference_on_the_gpu(cupy, dtype, record_states):
    """1000 steps, neurons [32, 1000] (125 blocks, the last one partial),
    parameters per neuron, per batch row, and a float."""
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(1000, 32, 1000))
    state = LIState(rng.normal(0, 0.5, (32, 1000)), rng.normal(0, 0.5, (32, 1000)))
    p = LIParameters(rng.uniform(50, 450, 1000), rng.uniform(50, 450, (32, 1)), 0.25)
    vs, out = li_scan(
        on_device(cupy, xs, dtype),
        LIState(on_device(cupy, state.v, dtype), on_device(cupy, state.i, dtype)),
        None,
        LIParameters(*(on_device(cupy, a, dtype) for a in p)),
        backend="cupy",
        record_states=record_states,
    )
    expected_vs, expected = ref.scan(
        rounded(xs, dtype),
        LIState(rounded(state.v, dtype), rounded(state.i, dtype)),
        None,
        LIParameters(*(rounded(a, dtype) for a in p)),
        1e-3,
        record_states,
    )
    for got, want, what in ((vs, expected_vs, "voltages"), (out.v, expected.v, "v"), (out.i, expected.i, "i")):
        assert isinstance(got, cupy.ndarray) and got.dtype == np.dtype(dtype)
        assert_matches(cupy.asnumpy(got), want, dtype, what)
    if record_states:
        assert vs.data.ptr != out.v.data.ptr  # the recorded voltages are a copy


@needs_gpu
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_weighted_step_and_scan_match_reference_on_the_gpu(cupy, dtype):
    rng = np.random.default_rng(1)
    xs, w = rng.normal(size=(50, 8, 64)), rng.normal(0, 0.125, size=(300, 64))
    p = LIParameters(rng.uniform(50, 450, 300), 100.0, rng.uniform(-1, 1, (8, 1)))
    p_gpu = LIParameters(*(on_device(cupy, a, dtype) for a in p))
    p_ref = LIParameters(*(rounded(a, dtype) for a in p))
    vs, state = li_scan(on_device(cupy, xs, dtype), None, on_device(cupy, w, dtype), p_gpu, backend="cupy")
    expected_vs, _ = ref.scan(
        rounded(xs, dtype),
        LIState(p_ref.v_leak + np.zeros((8, 300)), np.zeros((8, 300))),
        rounded(w, dtype),
        p_ref,
        1e-3,
    )
    assert_matches(vs.get(), expected_vs, dtype, "weighted scan: voltages")
    v, step_state = li_step(on_device(cupy, xs[0], dtype), state, on_device(cupy, w, dtype), p_gpu, backend="cupy")
    state_ref = LIState(rounded(state.v.get(), dtype), rounded(state.i.get(), dtype))
    expected_v, _ = ref.step(rounded(xs[0], dtype), state_ref, rounded(w, dtype), p_ref, 1e-3)
    assert_matches(v.get(), expected_v, dtype, "weighted step: v")
    assert v.data.ptr != step_state.v.data.ptr


@needs_gpu
def test_step_non_contiguous_and_fresh_outputs_on_the_gpu(cupy):
    rng = np.random.default_rng(2)
    x = cupy.asarray(rng.normal(size=(600, 40)).astype(np.float32)).T  # [40, 600], transposed
    v = cupy.asarray(rng.normal(size=(40, 1200)).astype(np.float32))[:, ::2]
    i = cupy.asarray(rng.normal(size=(40, 600)).astype(np.float32))
    tau = cupy.asarray(rng.uniform(50, 450, 1200).astype(np.float32))[::2]
    before = [a.copy() for a in (x, v, i, tau)]
    v_new, state = li_feed_forward_step(x, LIState(v, i), LIParameters(tau_mem_inv=tau), backend="cupy")
    x_copy, v_copy, tau_copy = (cupy.ascontiguousarray(a) for a in (x, v, tau))
    again, _ = li_feed_forward_step(x_copy, LIState(v_copy, i), LIParameters(tau_mem_inv=tau_copy), backend="cupy")
    cupy.testing.assert_array_equal(v_new, again)
    for a, b in zip((x, v, i, tau), before):
        cupy.testing.assert_array_equal(a, b)
    v_new[...] = 0
    assert float(cupy.abs(state.v).max()) > 0  # the state's voltage is not the returned one


@needs_gpu
def test_zero_steps_on_the_gpu(cupy):
    v0 = cupy.arange(5, dtype=cupy.float32)
    vs, state = li_scan(cupy.zeros((0, 5), cupy.float32), LIState(v0, cupy.ones(5, cupy.float32)), backend="cupy")
    assert vs.shape == (0, 5)
    cupy.testing.assert_array_equal(state.v, v0)
    assert state.v.data.ptr != v0.data.ptr


@needs_gpu
def test_more_than_2_to_the_31_elements_on_the_gpu(cupy):
    """T*N > 2^31 (float16: 4.3 GB in, 4.3 GB out): the last step is written
    and right, so the kernel's indices do not overflow."""
    free, _ = cupy.cuda.Device().mem_info
    if free < 10 * 2**30:
        pytest.skip(f"needs 10 GiB of free device memory, {free / 2**30:.1f} GiB free")
    neurons, steps = 2**16, 2**15 + 2
    xs = cupy.ones((steps, neurons), dtype=cupy.float16)
    vs, state = li_scan(xs, backend="cupy")
    one = np.ones((steps, 1), dtype=np.float16)
    expected_vs, expected = li_scan(one, backend="numpy")
    np.testing.assert_allclose(cupy.asnumpy(vs[-1]).astype(np.float32), expected_vs[-1, 0], rtol=1e-3)
    np.testing.assert_allclose(cupy.asnumpy(state.i).astype(np.float32), expected.i[0], rtol=1e-3)


@needs_gpu
def test_float16_projection_is_multiplied_in_float32():
    """4096 products of 1e-3 summed: float16 arithmetic stalls near 2 (its spacing
    there is 2e-3); in float32 the sum is 4.096, then rounded once to float16."""
    import cupy

    x = cupy.ones((1, 4096), dtype=cupy.float16)
    w = cupy.full((1, 4096), 1e-3, dtype=cupy.float16)
    got = CuPyBackend().project(x, w)
    want = (np.ones((1, 4096), np.float32) @ np.full((4096, 1), np.float16(1e-3), np.float32)).astype(np.float16)
    assert got.dtype == cupy.float16
    np.testing.assert_array_equal(cupy.asnumpy(got), want)
