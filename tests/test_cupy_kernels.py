"""The CuPy backend's CUDA kernels, checked without a GPU.

1. nvcc compiles every kernel instantiation the backend asks NVRTC for
   (``name_expressions``), with the backend's compiler options, for each GPU
   architecture; where CuPy and NVRTC are installed, NVRTC compiles each
   dtype's module exactly as ``cupy.RawModule`` would (no GPU needed).
2. g++ compiles the same ``li_kernels.cu`` for the host through
   ``tests/cuda_host``. A stand-in for CuPy (NumPy arrays, and a ``RawModule``
   whose kernels are the host build) then runs the backend's own Python code:
   arguments are packed the way CuPy packs them for ``cuLaunchKernel`` and
   checked against each kernel's C parameter list (array element sizes,
   scalar kinds and sizes, C-contiguity), the launch grid is emulated block by
   block and thread by thread, and the results are compared with the float64
   ``li_core.reference``.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest

import li_backends.cupy as cupy_backend
from li_core import LIParameters, LIState
from li_core import reference as ref
from li_core.testing.cases import Case, convert
from li_core.testing.tolerances import assert_matches

HOST_DIR = Path(__file__).with_name("cuda_host")
DTYPES = ("float16", "float32", "float64")
ALL_NAMES = [name for dtype in DTYPES for name in cupy_backend.name_expressions(dtype)]


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


@pytest.mark.parametrize("arch", ["sm_70", "sm_75", "sm_80", "sm_90"])
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
        f'#include "{cupy_backend.KERNEL_SOURCE}"\n'
        f"void* li_kernel(int k) {{ void* const all[] = {{{addresses}}}; return all[k]; }}\n"
    )
    cubin = tmp_path / f"li_kernels_{arch}.cubin"
    command = [nvcc, *cupy_backend.OPTIONS, f"-arch={arch}", "-cubin", "--Werror", "all-warnings", "-o", cubin, source]
    compiled = subprocess.run(command, capture_output=True, text=True, check=False)
    assert compiled.returncode == 0, f"nvcc failed for {arch}:\n{compiled.stdout}{compiled.stderr}"
    symbols = subprocess.run(["nm", "-C", cubin], capture_output=True, text=True, check=True).stdout
    for name in ALL_NAMES:
        assert f" {name}(" in symbols, f"{name} missing from the {arch} cubin:\n{symbols}"


@pytest.fixture(scope="module")
def nvrtc_program():
    """CuPy's NVRTC program class and compiler options (needs CuPy and NVRTC, no GPU)."""
    cupy = pytest.importorskip("cupy", reason="cupy is not installed: cannot compile with NVRTC as CuPy does")
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as exc:  # noqa: BLE001 - the error is the skip reason
        pytest.skip(f"NVRTC is not loadable ({type(exc).__name__}: {exc}); pip install nvidia-cuda-nvrtc-cu12")
    return cupy.cuda.compiler._NVRTCProgram, cupy._core.core.assemble_cupy_compiler_options(cupy_backend.OPTIONS)


@pytest.mark.parametrize("arch", ["sm_70", "sm_80", "sm_90"])
def test_each_dtype_module_compiles_with_nvrtc_as_cupy_does(arch, nvrtc_program):
    """What ``cupy.RawModule`` does on first use, short of loading the module
    onto a device: NVRTC with CuPy's include paths, the backend's options and
    name expressions, and every name expression lowered to a kernel."""
    program, options = nvrtc_program
    for dtype in DTYPES:
        names = cupy_backend.name_expressions(dtype)
        compiled = program(
            cupy_backend.KERNEL_SOURCE.read_text(), "li_kernels.cu", name_expressions=names, method="cubin"
        )
        cubin, lowered = compiled.compile((*options, f"-arch={arch}"))
        assert cubin and sorted(lowered) == sorted(names)
        for name in names:
            assert lowered[name].startswith("_Z7" + name.partition("<")[0]), lowered


# --- 2. the host build, behind a stand-in for CuPy ----------------------------------


@pytest.fixture(scope="session")
def host_library(tmp_path_factory) -> ctypes.CDLL:
    """tests/cuda_host/li_host.cpp (which includes li_kernels.cu) as a shared library."""
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ is not on PATH: cannot build the kernels for the host")
    library = tmp_path_factory.mktemp("cuda_host") / "libli_host.so"
    command = [
        compiler, "-std=c++17", "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
        f"-I{HOST_DIR}", f"-I{cupy_backend.KERNEL_SOURCE.parent}", "-o", str(library), str(HOST_DIR / "li_host.cpp"),
    ]  # fmt: skip
    built = subprocess.run(command, capture_output=True, text=True, check=False)
    assert built.returncode == 0, f"g++ failed:\n{built.stdout}{built.stderr}"
    lib = ctypes.CDLL(str(library))
    lib.li_host_signature.restype = ctypes.c_char_p
    lib.li_host_signature.argtypes = [ctypes.c_char_p]
    lib.li_host_launch.restype = ctypes.c_int
    lib.li_host_launch.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
    return lib


class HostArray(np.ndarray):
    """A NumPy array in the role of a ``cupy.ndarray``, whose ``device`` is a
    context manager (the backend runs on the input's device)."""

    @property
    def device(self):
        return contextlib.nullcontext()


def gpu(a):
    """A HostArray copy of ``a`` (floats stay floats)."""
    return a if a is None or isinstance(a, float) else np.array(a).view(HostArray)


class GuardedMemory:
    """``empty`` for the stand-in: each array is followed by a guard zone of
    sentinel values, checked after every launch, so that a kernel writing
    past the end of an output fails the test."""

    GUARD = 64

    def __init__(self) -> None:
        self.buffers: list[np.ndarray] = []

    def empty(self, shape, dtype) -> np.ndarray:
        size = int(np.prod(shape))
        buffer = np.full(size + self.GUARD, np.nan, dtype=dtype)
        self.buffers.append(buffer)
        return buffer[:size].reshape(shape)

    def empty_like(self, a: np.ndarray) -> np.ndarray:
        return self.empty(a.shape, a.dtype)

    def check(self, name: str) -> None:
        for buffer in self.buffers:
            assert np.isnan(buffer[-self.GUARD :]).all(), f"{name} wrote past the end of an output"


class HostKernel:
    """One kernel of the host build, called like a ``cupy.RawKernel``."""

    def __init__(self, lib: ctypes.CDLL, name: str, memory: GuardedMemory) -> None:
        signature = lib.li_host_signature(name.encode())
        assert signature is not None, f"the host build has no kernel {name!r}"
        self.lib, self.name, self.signature, self.memory = lib, name, signature.decode().split(), memory

    def __call__(self, grid, block, args) -> None:
        assert len(args) == len(self.signature), (
            f"{self.name}: {len(args)} arguments for {len(self.signature)} parameters"
        )
        assert isinstance(grid, tuple) and isinstance(block, tuple) and len(grid) == len(block) == 1, (grid, block)
        assert 1 <= block[0] <= 1024 and grid[0] >= 1, (grid, block)
        values = [self.pack(k, code, arg) for k, (code, arg) in enumerate(zip(self.signature, args))]
        params = (ctypes.c_void_p * len(values))(*(ctypes.addressof(value) for value in values))
        assert self.lib.li_host_launch(self.name.encode(), grid[0], block[0], params) == 0
        self.memory.check(self.name)

    def pack(self, k: int, code: str, arg) -> ctypes.Array:
        """The bytes CuPy passes for ``arg``: an array's data pointer, a NumPy
        scalar's value. Checked against the C parameter (``p4``: pointer to
        4-byte elements, ``f8``: double, ``i8``: long long, ...)."""
        where = f"{self.name} argument {k} (C parameter {code})"
        kind, size = code[0], int(code[1:])
        if kind == "p" and isinstance(arg, np.ndarray):
            assert arg.dtype.itemsize == size, f"{where}: array of {arg.dtype}"
            assert arg.flags.c_contiguous, f"{where}: a non-contiguous array"
            return (ctypes.c_uint64 * 1)(arg.ctypes.data)
        assert isinstance(arg, np.generic), f"{where}: {type(arg).__name__} {arg!r} is not a NumPy scalar"
        if kind == "p":
            assert arg.dtype == np.uint64 and arg == 0, f"{where}: {arg!r} is neither an array nor a null pointer"
        else:
            assert (arg.dtype.kind, arg.dtype.itemsize) == (kind, size), f"{where}: {arg.dtype} scalar"
        return ctypes.create_string_buffer(arg.tobytes(), arg.dtype.itemsize)


class HostRawModule:
    """``cupy.RawModule`` over the host build."""

    def __init__(self, lib: ctypes.CDLL, memory: GuardedMemory, *, code: str, options: tuple, name_expressions) -> None:
        assert code == cupy_backend.KERNEL_SOURCE.read_text()
        assert options == cupy_backend.OPTIONS
        self.lib, self.memory, self.names = lib, memory, tuple(name_expressions)

    def get_function(self, name: str) -> HostKernel:
        assert name in self.names, f"{name!r} is not among the name expressions {self.names}"
        return HostKernel(self.lib, name, self.memory)


@pytest.fixture
def backend(host_library, monkeypatch) -> cupy_backend.CuPyBackend:
    """The cupy backend with the host stand-in in place of CuPy."""
    memory = GuardedMemory()
    host_cupy = types.SimpleNamespace(
        RawModule=lambda **kwargs: HostRawModule(host_library, memory, **kwargs),
        ascontiguousarray=np.ascontiguousarray,
        broadcast_to=np.broadcast_to,
        empty=memory.empty,
        empty_like=memory.empty_like,
        matmul=np.matmul,
    )
    monkeypatch.setattr(cupy_backend, "_cupy", lambda: host_cupy)
    cupy_backend._kernels.cache_clear()
    yield cupy_backend.CuPyBackend()
    cupy_backend._kernels.cache_clear()


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


# Neuron shapes and parameter shapes (None: a Python float), with the number
# of blocks of 256 threads they take: one thread per neuron.
SCAN_CASES = {
    "1000 neurons, 4 blocks, per-neuron": (1000, (1000,), [(1000,), (1000,), (1000,)]),
    "257 neurons, 2 blocks, scalars": (3, (257,), [None, None, None]),
    "256 neurons, 1 full block": (4, (256,), [(256,), None, ()]),
    "[3, 300], trailing and leading axes": (31, (3, 300), [(300,), (3, 1), None]),
    "[2, 3, 5, 7, 11], two runs and gaps": (6, (2, 3, 5, 7, 11), [(2, 1, 5, 1, 11), (1, 3, 1, 7, 1), (2, 1, 1, 1, 1)]),
    "[4, 1, 9], a size-1 axis": (5, (4, 1, 9), [(4, 1, 9), (1, 1, 9), (4, 1, 1)]),
    "one neuron": (7, (1,), [(1,), None, None]),
    "T = 1": (1, (300,), [(300,), (300,), None]),
    "T = 0": (0, (300,), [(300,), None, (300,)]),
}


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
    """SPEC section 4: constant input 1.0 from rest, and the weighted step."""
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
    contiguous = [np.ascontiguousarray(a).view(HostArray) for a in (xs, v, i, tau, leak)]
    p_copy = LIParameters(contiguous[3], 100.0, contiguous[4])
    expected = backend.scan(contiguous[0], LIState(*contiguous[1:3]), None, p_copy, 1e-3, True)
    for a, b in zip((got[0], *got[1]), (expected[0], *expected[1])):
        np.testing.assert_array_equal(a, b)
    step = backend.feed_forward_step(xs[3], LIState(v, i), p, 1e-3)
    step_copy = backend.feed_forward_step(
        np.ascontiguousarray(xs[3]).view(HostArray), LIState(*contiguous[1:3]), p_copy, 1e-3
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
    expanded, (inner0, size0, inner1, size1) = cupy_backend.parameter_layout(shape, neurons)
    values = np.ascontiguousarray(np.broadcast_to(labels, expanded)).ravel()
    n = np.arange(int(np.prod(neurons)), dtype=np.int64)
    read = values[(n // inner0 % size0) * size1 + n // inner1 % size1]
    np.testing.assert_array_equal(read, np.broadcast_to(labels, neurons).ravel())
    if values.size > labels.size:  # gaps were filled in: only with more than two runs
        assert len(cupy_backend._runs(list((1,) * (len(neurons) - len(shape)) + shape), neurons)) > 2


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 1000, 3 * 2**31])
def test_launch_config_covers_every_neuron_once(n):
    (grid,), (block,) = cupy_backend.launch_config(n)
    assert block == cupy_backend.BLOCK == 256
    assert grid * block >= n and (grid - 1) * block < max(n, 1)
