"""The CUDA kernels of ``li_kernels.cu``, checked without a GPU.

1. nvcc compiles every kernel instantiation that the launches name
   (``kernels.name_expressions``: step, scan and the adjoint
   ``li_scan_backward``), with the launcher's compiler options, for each GPU
   architecture; where CuPy and NVRTC are installed, NVRTC compiles each
   dtype's module exactly as ``cupy.RawModule`` would (no GPU needed).
2. g++ compiles the same ``li_kernels.cu`` for the host through
   ``tests/cuda_host``. A stand-in for CuPy (``tests/cuda_host/host.py``) then
   runs the backend's own Python code and the launcher: arguments are packed
   the way CuPy packs them for ``cuLaunchKernel`` and checked against each
   kernel's C parameter list, the launch grid is emulated block by block and
   thread by thread, and the results are compared with the float64
   ``li_core.reference``.
3. The adjoint kernel, launched through ``kernels.scan_backward`` on NumPy
   memory, against torch autograd through a loop of Euler steps, in float64
   and float32; and every planted sign flip in its arithmetic fails that check.
4. The compensated float (and __half) arithmetic: the conformance suite's
   long runs of slow neurons (rates to 1e-6 over 10^6 steps, to 1e-9 over
   100,000), forward and gradients, against the float64 yardstick; and in
   float32 the host build equals the compiled CPU loop bit for bit.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from cuda_host import host

import li_backends.cupy as cupy_backend
from li_backends.cupy import kernels, launcher
from li_core import LIParameters, LIState
from li_core import reference as ref
from li_core.testing.cases import Case, convert, ladder_case
from li_core.testing.long_runs import RUNS, long_gradients, long_scan
from li_core.testing.tolerances import assert_matches, error_ratio

DTYPES = ("float16", "float32", "float64")
ALL_NAMES = [name for dtype in DTYPES for name in kernels.name_expressions(dtype)]


# --- 1. nvcc, per architecture --------------------------------------------------


@pytest.fixture(scope="module")
def nvcc() -> str:
    path = shutil.which("nvcc")
    if path is None:
        pytest.skip("nvcc is not on PATH: cannot compile the CUDA kernels")
    return path


@pytest.fixture(scope="module")
def nvcc_arches(nvcc: str) -> tuple[str, set[str]]:
    """nvcc's version line and the architectures it compiles for."""
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=True).stdout
    listed = subprocess.run([nvcc, "--list-gpu-arch"], capture_output=True, text=True, check=True).stdout
    release = re.search(r"release [\d.]+", version)
    return (release.group(0) if release else "unknown release"), set(listed.split())


ARCHES = ["sm_75", "sm_80", "sm_90"]


@pytest.mark.parametrize("arch", ARCHES)
def test_every_instantiation_compiles_with_nvcc(arch, nvcc, nvcc_arches, tmp_path):
    release, supported = nvcc_arches
    virtual = arch.replace("sm_", "compute_")
    if virtual not in supported:
        lowest = min(supported, key=lambda a: int(a.split("_")[1]))
        pytest.skip(f"nvcc {release} does not support {arch} (lowest in nvcc --list-gpu-arch: {lowest})")
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) is missing: cannot list the compiled kernels")
    # NVRTC instantiates the name expressions; for nvcc, taking their addresses does.
    source = tmp_path / "instantiate.cu"
    addresses = ", ".join(f"(void*)&{name}" for name in ALL_NAMES)
    source.write_text(
        f'#include "{launcher.KERNEL_SOURCE}"\n'
        f"void* li_kernel(int k) {{ void* const all[] = {{{addresses}}}; return all[k]; }}\n"
    )
    cubin = tmp_path / f"li_kernels_{arch}.cubin"
    command = [nvcc, *launcher.OPTIONS, f"-arch={arch}", "-cubin", "--Werror", "all-warnings", "-o", cubin, source]
    compiled = subprocess.run(command, capture_output=True, text=True, check=False)
    assert compiled.returncode == 0, f"nvcc failed for {arch}:\n{compiled.stdout}{compiled.stderr}"
    symbols = subprocess.run(["nm", "-C", cubin], capture_output=True, text=True, check=True).stdout
    for name in ALL_NAMES:
        assert f" {name}(" in symbols, f"{name} missing from the {arch} cubin:\n{symbols}"


def test_the_compensated_kernels_have_no_fused_multiply_add(nvcc, tmp_path):
    """nvcc contracts ``x*y + z`` into one FMA by default, which rounds once
    where the compensated arithmetic (and the compiled CPU loop) rounds the
    product on its own: the float and __half kernels' PTX has no FMA."""
    names = [name for dtype in ("float16", "float32") for name in kernels.name_expressions(dtype)]
    source = tmp_path / "compensated.cu"
    addresses = ", ".join(f"(void*)&{name}" for name in names)
    source.write_text(f'#include "{launcher.KERNEL_SOURCE}"\nvoid* li_kernel[] = {{{addresses}}};\n')
    ptx = tmp_path / "compensated.ptx"
    command = [nvcc, *launcher.OPTIONS, f"-arch={ARCHES[-1]}", "-ptx", "-o", ptx, source]
    compiled = subprocess.run(command, capture_output=True, text=True, check=False)
    assert compiled.returncode == 0, f"nvcc failed:\n{compiled.stdout}{compiled.stderr}"
    text = ptx.read_text()
    assert text.count(".entry") == len(names), text[:2000]
    fused = [line.strip() for line in text.splitlines() if re.match(r"\s*fma\.", line)]
    assert not fused, f"fused multiply-adds in the compensated kernels: {fused[:5]}"


@pytest.fixture(scope="module")
def nvrtc_program():
    """CuPy's NVRTC program class and compiler options (needs CuPy and NVRTC, no GPU)."""
    cupy = pytest.importorskip("cupy", reason="cupy is not installed: cannot compile with NVRTC as CuPy does")
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as exc:  # noqa: BLE001 - the error is the skip reason
        pytest.skip(f"NVRTC is not loadable ({type(exc).__name__}: {exc}); pip install nvidia-cuda-nvrtc-cu12")
    return cupy.cuda.compiler._NVRTCProgram, cupy._core.core.assemble_cupy_compiler_options(launcher.OPTIONS)


@pytest.mark.parametrize("arch", ARCHES[-1:])  # nvcc covers the others; this is CuPy's path
def test_each_dtype_module_compiles_with_nvrtc_as_cupy_does(arch, nvrtc_program):
    """What ``cupy.RawModule`` does on first use, short of loading the module
    onto a device: NVRTC with CuPy's include paths, the backend's options and
    name expressions, and every name expression lowered to a kernel."""
    program, options = nvrtc_program
    for dtype in DTYPES:
        names = kernels.name_expressions(dtype)
        compiled = program(launcher.KERNEL_SOURCE.read_text(), "li_kernels.cu", name_expressions=names, method="cubin")
        cubin, lowered = compiled.compile((*options, f"-arch={arch}"))
        assert cubin and sorted(lowered) == sorted(names)
        for name in names:
            base = name.partition("<")[0]
            assert lowered[name].startswith(f"_Z{len(base)}{base}"), lowered


# --- 2. the host build, behind a stand-in for CuPy ----------------------------------


@pytest.fixture(scope="session")
def host_library(tmp_path_factory):
    """tests/cuda_host/li_host.cpp (which includes li_kernels.cu) as a shared library, built once."""
    return host.session_library(tmp_path_factory)


@pytest.fixture
def backend(host_library):
    """The cupy backend with the host stand-in in place of CuPy."""
    with host.cupy_on_host(host_library):
        yield cupy_backend.CuPyBackend()


gpu = host.host


# --- cases --------------------------------------------------------------------------


def parameters(rng, neurons: tuple[int, ...], shapes) -> LIParameters:
    """Random parameters: a Python float where the shape is None, else an array of that shape."""
    lows, highs = (50.0, 50.0, -1.0), (450.0, 450.0, 1.0)
    return LIParameters(
        *(
            float(rng.uniform(low, high)) if shape is None else rng.uniform(low, high, size=shape)
            for shape, low, high in zip(shapes, lows, highs)
        )
    )


def random_scan_case(seed, steps, neurons, shapes, inputs=None):
    """Float64 inputs ``[steps, *neurons]`` (or ``[steps, *batch, inputs]`` with weights), state and parameters."""
    rng = np.random.default_rng(seed)
    weights = None
    if inputs is None:
        xs = rng.normal(size=(steps, *neurons))
    else:
        xs = rng.normal(size=(steps, *neurons[:-1], inputs))
        weights = rng.normal(0.0, 1.0 / np.sqrt(inputs), size=(neurons[-1], inputs))
    state = LIState(rng.normal(0.0, 0.5, size=neurons), rng.normal(0.0, 0.5, size=neurons))
    return xs, state, weights, parameters(rng, neurons, shapes)


def rounded(a, dtype):
    """``a`` in ``dtype`` (as the backend sees it), back in float64."""
    return a if a is None or isinstance(a, float) else np.asarray(a, dtype=dtype).astype(np.float64)


def on_host(a, dtype):
    return a if a is None or isinstance(a, float) else gpu(np.asarray(a, dtype=dtype))


def run_scan(backend, dtype, xs, state, weights, p, dt=1e-3, record_states=False):
    """The backend's scan on ``dtype`` copies, and the float64 reference on the same rounded numbers."""
    case = Case(xs, weights, state, p, dt)
    given = convert(case, lambda a: on_host(a, dtype))
    same = convert(case, lambda a: rounded(a, dtype))
    got = backend.scan(given.xs, given.state, given.weights, given.p, dt, record_states)
    expected = ref.scan(same.xs, same.state, same.weights, same.p, dt, record_states)
    return got, expected


def check(got, expected, dtype, what):
    (vs, state), (expected_vs, expected_state) = got, expected
    for result in (vs, state.v, state.i):
        assert result.dtype == np.dtype(dtype), f"{what}: dtype {result.dtype}"
    assert_matches(vs, expected_vs, dtype, f"{what}: voltages")
    assert_matches(state.v, expected_state.v, dtype, f"{what}: state.v")
    assert_matches(state.i, expected_state.i, dtype, f"{what}: state.i")


# Steps, neuron shapes and parameter shapes (None: a Python float), with the
# number of blocks of kernels.BLOCK = 64 threads they take (one thread per
# neuron) and how the steps fall into the scan's load groups (32 steps for
# float and __half, 16 for double: ``Tuning<T>::scan_group``).
SCAN_CASES = {
    "1000 steps (whole groups and 8), 1000 neurons, 16 blocks, per-neuron": (
        1000,
        (1000,),
        [(1000,), (1000,), (1000,)],
    ),
    "65 steps (2 groups and 1; 4 and 1), 130 neurons, 3 blocks": (65, (130,), [(130,), None, (130,)]),
    "257 neurons, 5 blocks, scalars": (3, (257,), [None, None, None]),
    "32 steps (whole groups), 256 neurons, 4 full blocks": (32, (256,), [(256,), None, ()]),
    "[3, 300], trailing and leading axes": (31, (3, 300), [(300,), (3, 1), None]),
    "[2, 3, 5, 7, 11], two runs and gaps": (6, (2, 3, 5, 7, 11), [(2, 1, 5, 1, 11), (1, 3, 1, 7, 1), (2, 1, 1, 1, 1)]),
    "[4, 1, 9], a size-1 axis": (17, (4, 1, 9), [(4, 1, 9), (1, 1, 9), (4, 1, 1)]),
    "one neuron": (7, (1,), [(1,), None, None]),
    "T = 1": (1, (300,), [(300,), (300,), None]),
    "T = 0": (0, (300,), [(300,), None, (300,)]),
}


def test_scan_cases_cover_every_way_steps_fall_into_load_groups():
    """For the look-ahead the kernel source declares for each element size,
    some case has several groups and a remainder, some only whole groups, and
    some fewer steps than a group (a retuning must keep the cases covering it)."""
    source = launcher.KERNEL_SOURCE.read_text()
    found = re.search(r"scan_group = sizeof\(T\) == 8 \? (\d+) : (\d+);", source)
    assert found, "Tuning<T>::scan_group not found in li_kernels.cu"
    for group in map(int, found.groups()):
        ways = {(steps // group > 1 and steps % group > 0, steps % group == 0 < steps, 0 < steps < group)
                for steps, _, _ in SCAN_CASES.values()}  # fmt: skip
        assert {(True, False, False), (False, True, False), (False, False, True)} <= ways, group


@pytest.mark.parametrize("record_states", [False, True], ids=["final", "record"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SCAN_CASES, ids=list(SCAN_CASES))
def test_scan_matches_reference(backend, case, dtype, record_states):
    steps, neurons, shapes = SCAN_CASES[case]
    xs, state, _, p = random_scan_case(1, steps, neurons, shapes)
    got, expected = run_scan(backend, dtype, xs, state, None, p, record_states=record_states)
    check(got, expected, dtype, case)
    assert got[0].shape == (steps, *neurons)
    assert got[1].v.shape == ((steps, *neurons) if record_states else neurons)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("record_states", [False, True], ids=["final", "record"])
def test_weighted_scan_matches_reference(backend, dtype, record_states):
    xs, state, weights, p = random_scan_case(2, 47, (4, 130), [(130,), (4, 1), None], inputs=33)
    got, expected = run_scan(backend, dtype, xs, state, weights, p, record_states=record_states)
    check(got, expected, dtype, "weighted scan")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("neurons", [(), (1,), (700,), (3, 257)], ids=str)
def test_feed_forward_step_matches_reference(backend, dtype, neurons):
    rng = np.random.default_rng(3)
    x, v, i = (rng.normal(size=neurons) for _ in range(3))
    shapes = [neurons, neurons[-1:], None]
    p = parameters(rng, neurons, shapes)
    v_new, state = backend.feed_forward_step(
        on_host(x, dtype),
        LIState(on_host(v, dtype), on_host(i, dtype)),
        LIParameters(*(on_host(a, dtype) for a in p)),
        1e-3,
    )
    expected, expected_state = ref.feed_forward_step(
        rounded(x, dtype),
        LIState(rounded(v, dtype), rounded(i, dtype)),
        LIParameters(*(rounded(a, dtype) for a in p)),
        1e-3,
    )
    check((v_new, state), (expected, expected_state), dtype, "feed-forward step")
    assert v_new.shape == neurons and v_new is not state.v


@pytest.mark.parametrize("dtype", DTYPES)
def test_weighted_step_matches_reference(backend, dtype):
    rng = np.random.default_rng(4)
    x, weights = rng.normal(size=(5, 40)), rng.normal(0.0, 0.2, size=(300, 40))
    v, i = rng.normal(size=(5, 300)), rng.normal(size=(5, 300))
    p = parameters(rng, (5, 300), [(300,), None, (5, 1)])
    got = backend.step(
        on_host(x, dtype), LIState(on_host(v, dtype), on_host(i, dtype)), on_host(weights, dtype),
        LIParameters(*(on_host(a, dtype) for a in p)), 1e-3,
    )  # fmt: skip
    expected = ref.step(
        rounded(x, dtype), LIState(rounded(v, dtype), rounded(i, dtype)), rounded(weights, dtype),
        LIParameters(*(rounded(a, dtype) for a in p)), 1e-3,
    )  # fmt: skip
    check(got, expected, dtype, "weighted step")


def test_known_values(backend):
    """The contract (docs/contract.md), section 4: constant input 1.0 from rest, and the weighted step."""
    zero = LIState(gpu(np.zeros(1)), gpu(np.zeros(1)))
    vs, states = backend.scan(gpu(np.ones((10, 1))), zero, None, LIParameters(), 1e-3, True)
    expected_v = [0.1, 0.27, 0.487, 0.7335, 0.99631, 1.265607, 1.5341887, 1.79688375, 2.050086511, 2.2913907687]
    expected_i = [0.8, 1.44, 1.952, 2.3616, 2.68928, 2.951424, 3.1611392, 3.32891136, 3.463129088, 3.5705032704]
    np.testing.assert_allclose(vs[:, 0], expected_v, rtol=1e-12)
    np.testing.assert_allclose(states.i[:, 0], expected_i, rtol=1e-12)

    weights = gpu(np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]]))
    state = LIState(gpu(np.zeros(3)), gpu(np.zeros(3)))
    for _ in range(3):
        v, state = backend.step(gpu(np.ones(2)), state, weights, LIParameters(), 1e-3)
    np.testing.assert_allclose(v, [1.461, -0.2435, 1.461], rtol=1e-12)


def test_zero_steps_return_the_initial_state_as_new_arrays(backend):
    v0, i0 = gpu(np.arange(4.0)), gpu(np.ones(4))
    vs, state = backend.scan(gpu(np.zeros((0, 4))), LIState(v0, i0), None, LIParameters(), 1e-3, False)
    assert vs.shape == (0, 4)
    np.testing.assert_array_equal(state.v, v0)
    np.testing.assert_array_equal(state.i, i0)
    assert not np.shares_memory(state.v, v0) and not np.shares_memory(state.i, i0)
    vs, states = backend.scan(gpu(np.zeros((0, 4))), LIState(v0, i0), None, LIParameters(), 1e-3, True)
    assert vs.shape == states.v.shape == states.i.shape == (0, 4)


@pytest.mark.parametrize("record_states", [False, True], ids=["final", "record"])
def test_outputs_are_fresh_and_inputs_untouched(backend, record_states):
    xs, state, _, p = random_scan_case(5, 8, (2, 9), [(9,), None, (2, 1)])
    xs, state, p = gpu(xs), LIState(gpu(state.v), gpu(state.i)), LIParameters(*map(gpu, p))
    before = [np.array(a) for a in (xs, state.v, state.i, p.tau_syn_inv, p.v_leak)]
    vs, out = backend.scan(xs, state, None, p, 1e-3, record_states)
    for a, b in zip((xs, state.v, state.i, p.tau_syn_inv, p.v_leak), before):
        np.testing.assert_array_equal(a, b)
    outputs = (vs, out.v, out.i)
    for k, a in enumerate(outputs):
        for b in (*outputs[:k], xs, state.v, state.i):
            assert not np.shares_memory(a, b)
    np.testing.assert_array_equal(out.v, vs if record_states else vs[-1])

    v, out = backend.feed_forward_step(xs[0], state, p, 1e-3)
    assert not np.shares_memory(v, out.v) and not np.shares_memory(v, out.i)
    np.testing.assert_array_equal(v, out.v)


def test_non_contiguous_arguments_give_the_same_numbers(backend):
    """Transposed inputs, strided state and parameters, and broadcast state
    views (as the core passes them) match contiguous copies."""
    rng = np.random.default_rng(6)
    xs = gpu(rng.normal(size=(12, 40, 30))).transpose(0, 2, 1)  # [12, 30, 40], strided
    v = gpu(rng.normal(size=(30, 80)))[:, ::2]
    i = np.broadcast_to(gpu(rng.normal(size=40)), (30, 40))
    tau = gpu(rng.uniform(50, 450, size=80))[::2]
    leak = gpu(rng.normal(size=(1, 30))).T  # [30, 1]
    p = LIParameters(tau, 100.0, leak)
    got = backend.scan(xs, LIState(v, i), None, p, 1e-3, True)
    contiguous = [np.ascontiguousarray(a).view(host.HostArray) for a in (xs, v, i, tau, leak)]
    p_copy = LIParameters(contiguous[3], 100.0, contiguous[4])
    expected = backend.scan(contiguous[0], LIState(*contiguous[1:3]), None, p_copy, 1e-3, True)
    for a, b in zip((got[0], *got[1]), (expected[0], *expected[1])):
        np.testing.assert_array_equal(a, b)
    step = backend.feed_forward_step(xs[3], LIState(v, i), p, 1e-3)
    step_copy = backend.feed_forward_step(
        np.ascontiguousarray(xs[3]).view(host.HostArray), LIState(*contiguous[1:3]), p_copy, 1e-3
    )
    for a, b in zip((step[0], *step[1]), (step_copy[0], *step_copy[1])):
        np.testing.assert_array_equal(a, b)


# --- the pure helpers -------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, neurons",
    [
        ((), (3, 4)),
        ((4,), (3, 4)),
        ((3, 1), (3, 4)),
        ((3, 4), (3, 4)),
        ((2, 1, 4), (2, 3, 4)),
        ((1, 3, 1), (2, 3, 4)),
        ((2, 1, 4, 1, 6), (2, 3, 4, 5, 6)),
        ((2, 1, 4, 1, 6, 1, 3), (2, 3, 4, 2, 6, 2, 3)),
        ((5, 1, 1, 7), (5, 1, 3, 7)),
        ((1,), ()),
        ((), ()),
    ],
    ids=str,
)
def test_parameter_layout_reads_the_broadcast_element(shape, neurons):
    """The index formula of li_kernels.cu, applied to the layout, picks the
    element NumPy's broadcasting picks, and never from a full-size copy when
    the kept axes form at most two runs."""
    if len(shape) > len(neurons):
        neurons = (1,) * (len(shape) - len(neurons)) + neurons
    labels = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    expanded, (inner0, size0, inner1, size1) = kernels.parameter_layout(shape, neurons)
    values = np.ascontiguousarray(np.broadcast_to(labels, expanded)).ravel()
    n = np.arange(int(np.prod(neurons)), dtype=np.int64)
    read = values[(n // inner0 % size0) * size1 + n // inner1 % size1]
    np.testing.assert_array_equal(read, np.broadcast_to(labels, neurons).ravel())
    if values.size > labels.size:  # gaps were filled in: only with more than two runs
        assert len(kernels._runs(list((1,) * (len(neurons) - len(shape)) + shape), neurons)) > 2


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 1000, 3 * 2**31])
def test_launch_config_covers_every_neuron_once(n):
    (grid,), (block,) = kernels.launch_config(n)
    assert block == kernels.BLOCK
    assert grid * block >= n and (grid - 1) * block < max(n, 1)


def test_blocks_stay_within_the_kernels_launch_bounds(monkeypatch):
    """The kernels are compiled for at most LI_MAX_BLOCK threads per block (a
    larger block would fail to launch); the launches never ask for more."""
    source = launcher.KERNEL_SOURCE.read_text()
    assert f"#define LI_MAX_BLOCK {kernels.MAX_BLOCK}\n" in source
    assert kernels.BLOCK <= kernels.MAX_BLOCK
    monkeypatch.setattr(kernels, "BLOCK", kernels.MAX_BLOCK + 32)
    with pytest.raises(ValueError, match="BLOCK: 288 threads per block; the kernels take 1 to 256"):
        kernels.launch_config(1000)


# --- more on the kernels' numbers -------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_parameter_struct_has_the_c_layout_size(host_library, dtype):
    """``Parameter<T>`` as the kernels declare it (the 4th parameter of every
    kernel) is as large as the NumPy layout the launches pass by value."""
    for name in kernels.name_expressions(dtype):
        codes = host_library.li_host_signature(name.encode()).decode().split()
        structs = [code for code in codes if code.startswith("s")]
        assert structs == [f"s{kernels.parameter_dtype(dtype).itemsize}"] * 3, (name, codes)


@pytest.mark.parametrize("dtype", DTYPES)
def test_parameter_structs_carry_their_fields_as_opaque_bytes(dtype):
    """A struct is passed as one element of opaque bytes (which CuPy reads
    faster than a structured array): the bytes are the fields in the C
    layout. A float parameter's struct is made once per value and read-only
    (shared by every launch); an array parameter's points at the laid-out
    values with the run layout."""
    layout = kernels.parameter_dtype(dtype)
    memory = kernels.Memory(lambda a: a.ctypes.data, lambda a, shape: np.ascontiguousarray(np.broadcast_to(a, shape)))
    struct, values = kernels.parameter(memory, dtype, kernels.Rate(100.0, 1e-3), (4, 5))
    assert values is None and struct.shape == (1,) and struct.dtype == np.dtype((np.void, layout.itemsize))
    fields = struct.view(layout)[0]
    assert fields["values"] == 0 and fields["scalar"] == kernels.COMPUTE_TYPES[dtype](100.0 * 1e-3)
    assert kernels.parameter(memory, dtype, kernels.Rate(0.1), (7,))[0] is struct  # the same product, cached
    assert not struct.flags.writeable
    tau = np.arange(5.0, dtype=dtype)
    struct, values = kernels.parameter(memory, dtype, kernels.Rate(tau, 1e-3), (4, 5))
    fields = struct.view(layout)[0]
    assert values.shape == (1, 5) and fields["values"] == values.ctypes.data
    assert fields["scale"] == kernels.COMPUTE_TYPES[dtype](1e-3)
    assert [int(fields[name]) for name in ("inner0", "size0", "inner1", "size1")] == [1, 1, 1, 5]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_slow_neurons_keep_the_tolerance(backend, dtype):
    """dt*tau_inv from 1 down to 1e-4, mixed per neuron, over 2/(1e-4) steps:
    the increment forms hold the tolerance in float32, where ``(1 - a)*v``
    would not (its decay is off by up to eps/a)."""
    rates = np.geomspace(1e-4, 1.0, 12)
    rng = np.random.default_rng(7)
    xs = rng.normal(1.0, 0.5, size=(20_000, 2, 12))
    state = LIState(rng.normal(size=(2, 12)), rng.normal(size=(2, 12)))
    p = LIParameters(rates[::-1] / 1e-3, rates / 1e-3, 0.5)
    got, expected = run_scan(backend, dtype, xs, state, None, p, record_states=True)
    check(got, expected, dtype, "slow neurons")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("as_array", [False, True], ids=["floats", "arrays"])
def test_rates_of_one_pass_the_input_straight_through(backend, dtype, as_array):
    """tau_syn_inv = tau_mem_inv = 1/dt (the contract, section 4): i stays
    exactly 0 and v follows the input, with the rates as floats or arrays."""
    xs = np.random.default_rng(8).normal(size=(40, 70)).astype(dtype)
    tau = np.full(70, 1000.0, dtype=dtype) if as_array else 1000.0
    zero = LIState(gpu(np.zeros(70, dtype)), gpu(np.zeros(70, dtype)))
    vs, states = backend.scan(gpu(xs), zero, None, LIParameters(gpu(tau), gpu(tau), 0.0), 1e-3, True)
    np.testing.assert_array_equal(states.i, 0.0)
    np.testing.assert_allclose(vs, xs, rtol=0, atol=4 * np.finfo(dtype).eps * np.abs(xs).max())


# --- 3. the adjoint kernel against torch autograd ----------------------------------


def numpy_memory() -> kernels.Memory:
    """How the launches reach NumPy arrays (the host build's memory)."""

    def address(a: np.ndarray) -> int:
        assert a.flags.c_contiguous, f"the address of a non-contiguous array {a.shape} {a.strides}"
        return a.ctypes.data

    return kernels.Memory(address, lambda a, shape: np.ascontiguousarray(np.broadcast_to(a, shape)))


def run_on_host(lib, launch: kernels.Launch) -> None:
    """Issue ``launch`` on the host build, its arguments checked as the stand-in checks them."""
    signature = lib.li_host_signature(launch.kernel.encode()).decode().split()
    params, _buffers = host.packed(launch.kernel, signature, launch.args)
    assert lib.li_host_launch(launch.kernel.encode(), launch.grid[0], launch.block[0], params) == 0


class AdjointCase:
    """Random float64 inputs, state, rates and output gradients for one case:
    ``shapes`` gives ``(a, d, v_leak)`` each as None (a float) or an array shape."""

    def __init__(self, seed: int, steps: int, neurons: tuple[int, ...], shapes, record: bool) -> None:
        rng = np.random.default_rng(seed)
        self.steps, self.neurons, self.record = steps, neurons, record
        self.xs = rng.normal(size=(steps, *neurons))
        self.v0, self.i0 = rng.normal(0.0, 0.5, size=neurons), rng.normal(0.0, 0.5, size=neurons)
        lows, highs = (0.05, 0.05, -1.0), (0.45, 0.45, 1.0)
        self.rates = [
            float(rng.uniform(low, high)) if shape is None else rng.uniform(low, high, size=shape)
            for shape, low, high in zip(shapes, lows, highs)
        ]
        self.gv = rng.normal(size=(steps, *neurons))
        self.gi = rng.normal(size=(steps, *neurons) if record else neurons)

    def rounded(self, dtype: str) -> AdjointCase:
        """The case with every array rounded to ``dtype`` (in float64)."""
        copy = AdjointCase.__new__(AdjointCase)
        copy.__dict__.update(self.__dict__)
        for name in ("xs", "v0", "i0", "gv", "gi"):
            setattr(copy, name, getattr(self, name).astype(dtype).astype(np.float64))
        copy.rates = [r if isinstance(r, float) else r.astype(dtype).astype(np.float64) for r in self.rates]
        return copy


NAMES = ("dx", "dv0", "di0", "da", "dd", "dv_leak")


def autograd_gradients(case: AdjointCase, parameters: bool) -> dict[str, np.ndarray]:
    """The gradients of ``sum(gv*v) + sum(gi*i)`` (``i`` the recorded
    currents or the final one) by torch autograd through a loop of Euler steps
    in float64, in the contract's order."""
    torch = pytest.importorskip("torch", reason="torch is not installed: no autograd reference")
    leaf = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)  # noqa: E731 - a one-line factory, clearer as a lambda beside its uses
    xs, v0, i0 = leaf(case.xs), leaf(case.v0), leaf(case.i0)
    a, d, v_leak = (r if isinstance(r, float) else leaf(r) for r in case.rates)
    v, i, vs, currents = v0, i0, [], []
    for t in range(case.steps):
        j = i + xs[t]
        v = v + a * ((v_leak - v) + j)
        i = j - d * j
        vs.append(v)
        currents.append(i)
    loss = (torch.tensor(case.gv) * torch.stack(vs)).sum()
    loss = loss + (torch.tensor(case.gi) * (torch.stack(currents) if case.record else i)).sum()
    wanted = [xs, v0, i0] + ([a, d, v_leak] if parameters else [])
    grads = torch.autograd.grad(loss, [w for w in wanted if isinstance(w, torch.Tensor)])
    found = iter(grads)
    return {name: next(found).numpy() for name, w in zip(NAMES, wanted) if isinstance(w, torch.Tensor)}


def kernel_gradients(run, case: AdjointCase, dtype: str, parameters: bool) -> dict[str, np.ndarray]:
    """The same gradients from ``li_scan`` (keeping ``j``) and
    ``li_scan_backward`` launched by ``run``, on ``dtype`` copies; each
    parameter's per-neuron shares summed to its shape here, as a caller does."""
    memory, compute = numpy_memory(), kernels.COMPUTE_TYPES[dtype]
    typed = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731 - a one-line factory, clearer as a lambda beside its uses
    xs, v0, i0 = typed(case.xs), typed(case.v0), typed(case.i0)
    rates = tuple(kernels.Rate(r if isinstance(r, float) else typed(r)) for r in case.rates)
    voltages, js = np.empty_like(xs), np.empty_like(xs)
    i_last = np.empty_like(v0)
    run(kernels.scan(memory, dtype, xs, v0, i0, rates, voltages, js=js, i_last=i_last))
    dx, dv0, di0 = np.full_like(xs, np.nan), np.full_like(v0, np.nan), np.full_like(v0, np.nan)
    shares = tuple(np.full(case.neurons, np.nan, dtype=compute) for _ in range(3)) if parameters else None
    gradients = {"gis": typed(case.gi)} if case.record else {"gi_last": typed(case.gi)}
    saved = {"v0": v0, "voltages": voltages, "js": js} if parameters else {}
    run(
        kernels.scan_backward(
            memory, dtype, typed(case.gv), rates, dx, dv0=dv0, di0=di0, shares=shares, **gradients, **saved
        )
    )
    found = {"dx": dx, "dv0": dv0, "di0": di0}
    for name, rate, share in zip(NAMES[3:], case.rates, shares or ()):
        if not isinstance(rate, float):
            axes = tuple(range(len(case.neurons) - rate.ndim)) + tuple(
                len(case.neurons) - rate.ndim + k for k, size in enumerate(rate.shape) if size == 1
            )
            found[name] = share.sum(axis=axes, keepdims=True).reshape(rate.shape)
    return {name: np.asarray(value, dtype=np.float64) for name, value in found.items()}


def adjoint_error(run, case: AdjointCase, dtype: str, parameters: bool) -> dict[str, float]:
    """Per gradient, the kernel's error against autograd divided by the
    contract's tolerance for ``dtype`` (at most 1 passes)."""
    got = kernel_gradients(run, case, dtype, parameters)
    expected = autograd_gradients(case.rounded(dtype), parameters)
    assert sorted(got) == sorted(expected)
    return {name: error_ratio(got[name], expected[name], dtype) for name in expected}


# Steps (falling into the adjoint's load groups of 4 in several ways), neuron
# shapes (several blocks of 64 threads), and the shapes of (a, d, v_leak):
# None for a float, () for a 0-d array, [N], [B, 1] and full.
ADJOINT_CASES = {
    "T=37 (9 groups and 1), 150 neurons in 3 blocks, [N] rates": (37, (150,), [(150,), (150,), (150,)]),
    "T=1, [B, N] = [3, 70] in 4 blocks, [B, 1] and full rates": (1, (3, 70), [(3, 1), (3, 70), (70,)]),
    "T=16 (4 whole groups), [3, 70], [N], [B, 1], 0-d": (16, (3, 70), [(70,), (3, 1), ()]),
    "T=30 (7 groups and 2), [3, 70], float rates and a full v_leak": (30, (3, 70), [None, None, (3, 70)]),
}


@pytest.mark.parametrize("parameters", [False, True], ids=["inputs", "parameters"])
@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ADJOINT_CASES, ids=list(ADJOINT_CASES))
def test_li_scan_backward_matches_autograd(host_library, case, dtype, record, parameters):
    steps, neurons, shapes = ADJOINT_CASES[case]
    errors = adjoint_error(
        lambda launch: run_on_host(host_library, launch),
        AdjointCase(11, steps, neurons, shapes, record),
        dtype,
        parameters,
    )
    assert max(errors.values()) <= 1.0, f"{case}, {dtype}: error / tolerance per gradient {errors}"
    assert len(errors) == 3 + (3 - shapes.count(None) if parameters else 0)


def test_li_scan_backward_without_v0_and_i0_outputs(host_library):
    """``dv0`` and ``di0`` are optional outputs: left out, nothing is written
    to them and ``dx`` is unchanged."""
    case = AdjointCase(12, 21, (70,), [None, None, None], record=False)
    memory = numpy_memory()
    rates = tuple(kernels.Rate(r) for r in case.rates)
    dx = np.empty_like(case.xs)
    run_on_host(host_library, kernels.scan_backward(memory, "float64", case.gv, rates, dx, gi_last=case.gi))
    expected = autograd_gradients(case, parameters=False)
    assert error_ratio(dx, expected["dx"], "float64") <= 1.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "broadcast, strides",
    [((), (0, 0)), ((3, 70), (0, 1)), ((37, 1, 1), (1, 0))],
    ids=["scalar", "over time", "over neurons"],
)
def test_li_scan_backward_reads_a_broadcast_voltage_gradient(host_library, dtype, broadcast, strides):
    """The gradient of ``vs.sum()`` (one number broadcast to every element)
    and gradients broadcast over time or over the neurons are read in place
    through ``gv_strides``, not copied, with the same result."""
    case = AdjointCase(14, 37, (3, 70), [(70,), (3, 1), None], record=False)
    base = np.random.default_rng(15).normal(size=broadcast).astype(dtype)
    case.gv = np.broadcast_to(base, case.xs.shape).astype(np.float64)
    expected = autograd_gradients(case.rounded(dtype), parameters=True)
    memory = numpy_memory()
    typed = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731 - a one-line factory, clearer as a lambda beside its uses
    xs, v0, i0 = typed(case.xs), typed(case.v0), typed(case.i0)
    rates = tuple(kernels.Rate(r if isinstance(r, float) else typed(r)) for r in case.rates)
    voltages, js = np.empty_like(xs), np.empty_like(xs)
    run_on_host(host_library, kernels.scan(memory, dtype, xs, v0, i0, rates, voltages, js=js, v_last=np.empty_like(v0)))
    dx, dv0, di0 = np.empty_like(xs), np.empty_like(v0), np.empty_like(v0)
    shares = tuple(np.empty(case.neurons, dtype=kernels.COMPUTE_TYPES[dtype]) for _ in range(3))
    launch = kernels.scan_backward(
        memory, dtype, base, rates, dx, gv_strides=strides, gi_last=typed(case.gi), v0=v0, voltages=voltages, js=js,
        dv0=dv0, di0=di0, shares=shares,
    )  # fmt: skip
    run_on_host(host_library, launch)
    got = {"dx": dx, "dv0": dv0, "di0": di0, "da": shares[0].sum(axis=0), "dd": shares[1].sum(axis=1, keepdims=True)}
    for name, value in got.items():
        assert error_ratio(value, expected[name], dtype) <= 1.0, name


def test_scan_backward_refuses_half_the_parameter_inputs():
    memory, rates = numpy_memory(), (kernels.Rate(0.1), kernels.Rate(0.2), kernels.Rate(0.0))
    gv = np.zeros((3, 4))
    with pytest.raises(ValueError, match="js, v0, voltages and shares come together"):
        kernels.scan_backward(memory, "float64", gv, rates, np.empty_like(gv), js=np.zeros((3, 4)))


# --- planted defects: a sign flipped in the adjoint's arithmetic ------------------------

# (text in li_scan_backward, its replacement, which occurrence): each flips one sign.
SIGN_FLIPS = [
    ("lam = in.gv + (lam - rate_v * lam);", "lam = in.gv - (lam - rate_v * lam);", 0),
    ("lam = in.gv + (lam - rate_v * lam);", "lam = in.gv + (lam + rate_v * lam);", 0),
    ("kap = in.gi + mu;", "kap = in.gi - mu;", 0),
    ("mu = rate_v * lam + (kap - rate_i * kap);", "mu = -rate_v * lam + (kap - rate_i * kap);", 0),
    ("mu = rate_v * lam + (kap - rate_i * kap);", "mu = rate_v * lam - (kap - rate_i * kap);", 0),
    ("mu = rate_v * lam + (kap - rate_i * kap);", "mu = rate_v * lam + (kap + rate_i * kap);", 0),
    (
        "sum_a += mul_rn(double(lam), double((leak - in.v_prev) + in.j));",
        "sum_a -= mul_rn(double(lam), double((leak - in.v_prev) + in.j));",
        0,
    ),
    (
        "sum_a += mul_rn(double(lam), double((leak - in.v_prev) + in.j));",
        "sum_a += mul_rn(double(lam), double((leak + in.v_prev) + in.j));",
        0,
    ),
    (
        "sum_a += mul_rn(double(lam), double((leak - in.v_prev) + in.j));",
        "sum_a += mul_rn(double(lam), double((leak - in.v_prev) - in.j));",
        0,
    ),
    ("sum_d += mul_rn(double(kap), double(in.j));", "sum_d -= mul_rn(double(kap), double(in.j));", 0),
    ("sum_lam += double(lam);", "sum_lam -= double(lam);", 0),
    (
        "C mu = gi_last != nullptr ? load(gi_last, n) : C(0)",
        "C mu = gi_last != nullptr ? -load(gi_last, n) : C(0)",
        0,
    ),
    ("store(dv0, n, lam - rate_v * lam);", "store(dv0, n, lam + rate_v * lam);", 0),
    ("dd[n] = C(-sum_d);", "dd[n] = C(sum_d);", 0),
    ("dv_leak[n] = C(double(rate_v) * sum_lam);", "dv_leak[n] = C(-double(rate_v) * sum_lam);", 0),
]


def backward_kernel_text(source: str) -> tuple[int, int]:
    """Where ``li_scan_backward``'s definition starts and ends in the source."""
    start = re.search(r"__global__ void (\w+ )?li_scan_backward\(", source).start()
    return start, len(source)


def planted(source: str, old: str, new: str, occurrence: int) -> str:
    start, end = backward_kernel_text(source)
    body = source[start:end]
    places = [m.start() for m in re.finditer(re.escape(old), body)]
    assert len(places) > occurrence, f"{old!r} occurs {len(places)} times in li_scan_backward"
    at = places[occurrence]
    return source[:start] + body[:at] + new + body[at + len(old) :]


@pytest.fixture(scope="session")
def mutants(tmp_path_factory):
    """One host library with a copy of li_kernels.cu per sign flip, each in
    its own namespace, exposing ``li_scan_backward<double>`` of copy k as
    ``li_mutant_launch(k, ...)``."""
    host.require_compiler()
    directory = tmp_path_factory.mktemp("mutants")
    source = launcher.KERNEL_SOURCE.read_text()
    unit = ['#include "cuda_host.h"']
    for k, flip in enumerate(SIGN_FLIPS):
        (directory / f"mutant{k}.cu").write_text(planted(source, *flip))
        unit.append(f'namespace mutant{k} {{\n#include "mutant{k}.cu"\n}}')
    cases = "\n".join(
        f"    case {k}: launch(&mutant{k}::li_scan_backward<double>, grid, block, args); return 0;"
        for k in range(len(SIGN_FLIPS))
    )
    unit.append(
        'extern "C" int li_mutant_launch(int k, unsigned grid, unsigned block, void** args) {\n'
        f"    switch (k) {{\n{cases}\n    }}\n    return -1;\n}}\n"
    )
    (directory / "mutants.cpp").write_text("\n".join(unit))
    return host.build(directory / "mutants.cpp", directory / "libmutants.so", includes=[directory], optimise="-O0")


@pytest.mark.parametrize("k", range(len(SIGN_FLIPS)), ids=[f"{old} -> {new} #{n}" for old, new, n in SIGN_FLIPS])
def test_each_sign_flip_in_li_scan_backward_fails_the_autograd_check(host_library, mutants, k):
    """The float64 adjoint check above, with ``li_scan_backward<double>``
    taken from a copy with one sign flipped, finds the flip in at least one of
    a recorded and a final-current case with parameter gradients."""
    signature = host_library.li_host_signature(b"li_scan_backward<double>").decode().split()

    def run(launch: kernels.Launch) -> None:
        if launch.kernel != "li_scan_backward<double>":
            return run_on_host(host_library, launch)
        params, _buffers = host.packed(launch.kernel, signature, launch.args)
        assert mutants.li_mutant_launch(k, launch.grid[0], launch.block[0], params) == 0

    steps, neurons, shapes = ADJOINT_CASES["T=37 (9 groups and 1), 150 neurons in 3 blocks, [N] rates"]
    worst = max(
        max(adjoint_error(run, AdjointCase(13, steps, neurons, shapes, record), "float64", True).values())
        for record in (False, True)
    )
    assert worst > 1.0, f"the flip {SIGN_FLIPS[k][:2]} went unnoticed (error / tolerance {worst:.3g})"


# --- 4. compensated float: long runs, and the compiled loop bit for bit -----------------


def long_run_kernels(lib, case: Case, dtype: str, gv: np.ndarray, gi: np.ndarray) -> dict[str, np.ndarray]:
    """``li_scan`` and ``li_scan_backward`` of the unweighted ``case`` on the
    host build in ``dtype``, with the rates ``a = dt*tau_mem_inv`` and
    ``d = dt*tau_syn_inv`` rounded to ``dtype``: the voltages, currents and
    ``j``, and the gradients of ``sum(gv*v) + sum(gi*i_final)`` (those of
    ``a``, ``d`` and ``v_leak`` summed over the batch rows)."""
    memory, compute = numpy_memory(), kernels.COMPUTE_TYPES[dtype]
    typed = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731 - a one-line factory, clearer as a lambda beside its uses
    xs, v0, i0 = typed(case.xs), typed(case.state.v), typed(case.state.i)
    rates = tuple(kernels.Rate(typed(r)) for r in (case.dt * case.p.tau_mem_inv, case.dt * case.p.tau_syn_inv))
    rates = (*rates, kernels.Rate(typed(case.p.v_leak)))
    out = {name: np.empty_like(xs) for name in ("voltages", "currents", "js")}
    run_on_host(
        lib, kernels.scan(memory, dtype, xs, v0, i0, rates, out["voltages"], currents=out["currents"], js=out["js"])
    )
    dx, dv0, di0 = np.empty_like(xs), np.empty_like(v0), np.empty_like(v0)
    shares = tuple(np.empty(v0.shape, dtype=compute) for _ in range(3))
    launch = kernels.scan_backward(
        memory, dtype, typed(gv), rates, dx, gi_last=typed(gi), v0=v0, voltages=out["voltages"], js=out["js"],
        dv0=dv0, di0=di0, shares=shares,
    )  # fmt: skip
    run_on_host(lib, launch)
    sums = [share.sum(axis=0) for share in shares]  # over the batch rows, to the parameters' shape [N]
    return {**out, "dx": dx, "dv0": dv0, "di0": di0, "da": sums[0], "dd": sums[1], "dv_leak": sums[2]}


def as_rates(case: Case, dtype: str) -> Case:
    """The case as the kernels see it in ``dtype``, in float64: every array
    rounded, the rates ``dt*tau_inv`` rounded as the kernels get them, with
    ``dt = 1`` so that the yardstick uses them as they are."""
    rounded = lambda a: np.asarray(a, dtype=dtype).astype(np.float64)  # noqa: E731 - a one-line factory, clearer as a lambda beside its uses
    p = LIParameters(*(rounded(case.dt * r) for r in case.p[:2]), rounded(case.p.v_leak))
    return Case(rounded(case.xs), None, LIState(*map(rounded, case.state)), p, 1.0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("run", list(RUNS))
def test_long_runs_keep_the_tolerance(host_library, run, dtype):
    """Per-neuron rates from 1 down to 1e-6 over 10^6 steps, and down to 1e-9
    over 100,000 (the conformance suite's long runs): the voltages, currents
    and every gradient of a loss over all steps within the dtype's tolerance
    of the float64 yardstick. A plain float recurrence rounds a slow
    neuron's changes away and misses it by 24 to 77 times."""
    slowest, steps = RUNS[run][0]
    case = ladder_case(slowest, steps)
    rng = np.random.default_rng(27)
    gv, gi = rng.normal(size=case.xs.shape), rng.normal(size=case.state.v.shape)
    got = long_run_kernels(host_library, case, dtype, gv, gi)
    exact = as_rates(case, dtype)
    rounded = lambda a: np.asarray(a, dtype=dtype).astype(np.float64)  # noqa: E731 - a one-line factory, clearer as a lambda beside its uses
    voltages, states = long_scan(exact, record_states=True)
    want = long_gradients(exact, rounded(gv), rounded(gi))
    expected = {
        "voltages": voltages, "currents": states.i, "dx": want["inputs"], "dv0": want["state.v"],
        "di0": want["state.i"], "da": want["p.tau_mem_inv"], "dd": want["p.tau_syn_inv"], "dv_leak": want["p.v_leak"],
    }  # fmt: skip
    errors = {name: error_ratio(got[name], value, dtype) for name, value in expected.items()}
    assert max(errors.values()) <= 1.0, f"{run}, {dtype}: error / tolerance {errors}"


def test_float_equals_the_compiled_loop_bit_for_bit(host_library):
    """The float kernels and the compiled CPU loops run the same compensated
    arithmetic in the same order: voltages, currents, ``j``, ``dL/dx`` and
    ``dL/dv_init`` are bitwise equal, and the parameter shares (both summed
    in double) equal after rounding to float."""
    compiled = pytest.importorskip("li_backends.compiled")
    if compiled.unavailable():
        pytest.skip(f"the compiled loops do not run here: {compiled.unavailable()}")
    case = ladder_case(1e-6, 30_000)
    case = case._replace(
        xs=np.concatenate([case.xs] * 3, axis=1), state=LIState(*(np.tile(s, (3, 1)) for s in case.state))
    )
    rng = np.random.default_rng(28)
    gv, gi = rng.normal(size=case.xs.shape), rng.normal(size=case.state.v.shape)
    got = long_run_kernels(host_library, case, "float32", gv, gi)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731 - a one-line factory, clearer as a lambda beside its uses
    a, d, v_leak = f32(case.dt * case.p.tau_mem_inv), f32(case.dt * case.p.tau_syn_inv), f32(case.p.v_leak)
    xs, v0, i0 = f32(case.xs), f32(case.state.v), f32(case.state.i)
    want = {name: np.empty_like(xs) for name in ("voltages", "currents", "js")}
    a, d = kernels.Rate(a), kernels.Rate(d)  # (fractions: a scale of 1)
    compiled.scan(xs, v0, i0, a, d, v_leak, want["voltages"], want["currents"], want["js"], np.empty_like(v0))
    dx, dv0 = np.empty_like(xs), np.empty_like(v0)
    shares = tuple(np.empty(v0.shape) for _ in range(3))
    saved = (v0, want["voltages"], want["js"], v_leak)
    compiled.scan_backward(f32(gv), None, f32(gi), a, d, saved, dx, dv0, shares)
    want.update(dx=dx, dv0=dv0, di0=dx[0], **{k: f32(v).sum(axis=0) for k, v in zip(("da", "dd", "dv_leak"), shares)})
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=f"{name}: the host build and the compiled loop differ")
