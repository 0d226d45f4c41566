"""The kernels of ``li_backends/cupy/li_kernels.cu`` on the CPU, behind a
stand-in for CuPy, for tests without a GPU.

``build`` compiles ``li_host.cpp`` (the kernels through ``cuda_host.h``) with
g++ into a shared library. :func:`stand_in_cupy` is a namespace with the few
CuPy functions the backend and the launcher call: arrays are NumPy arrays
(:class:`HostArray`, whose ``data.ptr`` is their address, as on a
``cupy.ndarray``), ``RawModule`` hands out kernels of the host build, and
``cuda.Device`` / ``cuda.Stream.from_external`` record which device and
stream each launch went to. A kernel call packs its arguments the way CuPy
passes them to ``cuLaunchKernel`` and checks each against the C parameter
list (scalar kinds and sizes, pointers as 8-byte addresses, structs passed by
value with the C struct's size); every output array has a guard zone that
must be untouched after the launch.
"""

from __future__ import annotations

import contextlib
import ctypes
import pathlib
import shutil
import subprocess
import types
from typing import Any

import numpy as np
import pytest

from li_backends.cupy import launcher

HOST_DIR = pathlib.Path(__file__).parent
KERNEL_DIR = launcher.KERNEL_SOURCE.parent
#: -ffp-contract=off: no fused multiply-add where the GPU rounds each
#: operation (g++ contracts by default where the target has FMA, as on aarch64)
FLAGS = ("-std=c++17", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", "-ffp-contract=off")


def compiler() -> str | None:
    return shutil.which("g++")


def build(source: pathlib.Path, library: pathlib.Path, *, includes=(), optimise: str = "-O2") -> ctypes.CDLL:
    """``source`` compiled by g++ into ``library`` and loaded; ``includes``
    come before the kernel source's own directory."""
    include_flags = [f"-I{path}" for path in (*includes, HOST_DIR, KERNEL_DIR)]
    command = [compiler() or "g++", *FLAGS, optimise, *include_flags, "-o", str(library), str(source)]
    built = subprocess.run(command, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise AssertionError(f"g++ failed:\n{built.stdout}{built.stderr}")
    return ctypes.CDLL(str(library))


def host_library(directory: pathlib.Path) -> ctypes.CDLL:
    """``li_host.cpp`` built in ``directory``, with its C functions typed."""
    lib = build(HOST_DIR / "li_host.cpp", directory / "libli_host.so")
    lib.li_host_signature.restype = ctypes.c_char_p
    lib.li_host_signature.argtypes = [ctypes.c_char_p]
    lib.li_host_launch.restype = ctypes.c_int
    lib.li_host_launch.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
    return lib


_LIBRARIES: list[ctypes.CDLL] = []


def require_compiler() -> None:
    """Skip the calling test where g++ is missing."""
    if compiler() is None:
        pytest.skip("g++ is not on PATH: cannot build the kernels for the host")


def session_library(tmp_path_factory: Any) -> ctypes.CDLL:
    """The host build for a pytest session: built on first use (in a
    directory of ``tmp_path_factory``), then shared by every test file;
    skips without g++."""
    require_compiler()
    if not _LIBRARIES:
        _LIBRARIES.append(host_library(tmp_path_factory.mktemp("cuda_host")))
    return _LIBRARIES[0]


class HostArray(np.ndarray):
    """A NumPy array in the role of a ``cupy.ndarray``: its ``device`` is a
    context manager and ``data.ptr`` its address (C-contiguous arrays only,
    as the kernels read them)."""

    @property
    def device(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()

    @property
    def data(self) -> Any:  # type: ignore[override]  # numpy's data is a buffer; CuPy's, which this stand-in imitates, is a pointer holder
        assert self.flags.c_contiguous, f"the address of a non-contiguous array {self.shape} {self.strides}"
        return types.SimpleNamespace(ptr=self.ctypes.data)


def host(a: Any) -> Any:
    """``a`` as a HostArray (floats and None pass through)."""
    return a if a is None or isinstance(a, float) else np.asarray(a).view(HostArray)


class GuardedMemory:
    """Allocation for the stand-in: each array is followed by a guard zone of
    sentinel values, checked after every launch, so that a kernel writing past
    the end of an output fails the test."""

    GUARD = 64

    def __init__(self) -> None:
        self.buffers: list[np.ndarray] = []

    def empty(self, shape, dtype) -> HostArray:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        size = int(np.prod(shape))
        buffer = np.full(size + self.GUARD, np.nan, dtype=dtype)
        self.buffers.append(buffer)
        return buffer[:size].reshape(shape).view(HostArray)

    def empty_like(self, a: np.ndarray) -> HostArray:
        return self.empty(a.shape, a.dtype)

    def check(self, name: str) -> None:
        for buffer in self.buffers:
            assert np.isnan(buffer[-self.GUARD :]).all(), f"{name} wrote past the end of an output"


def pack(where: str, code: str, arg: Any) -> ctypes.Array:
    """The bytes CuPy passes for ``arg`` (a NumPy scalar, or a one-element
    NumPy array passed by value), checked against the C parameter ``code``:
    ``p4`` a pointer to 4-byte elements, ``f8`` a double, ``i8`` a long long,
    ``s48`` a 48-byte struct."""
    kind, size = code[0], int(code[1:])
    if kind == "s":
        assert isinstance(arg, np.ndarray) and arg.size == 1, f"{where}: {type(arg).__name__} is not a struct"
        assert arg.dtype.itemsize == size, f"{where}: a {arg.dtype.itemsize}-byte struct {arg.dtype}"
        return ctypes.create_string_buffer(arg.tobytes(), size)
    assert isinstance(arg, np.generic), f"{where}: {type(arg).__name__} {arg!r} is not a NumPy scalar"
    if kind == "p":
        assert arg.dtype == np.uint64, f"{where}: {arg!r} is not an address"
    else:
        assert (arg.dtype.kind, arg.dtype.itemsize) == (kind, size), f"{where}: {arg.dtype} scalar"
    return ctypes.create_string_buffer(arg.tobytes(), arg.dtype.itemsize)


def packed(name: str, signature: list[str], args: tuple) -> tuple[ctypes.Array, list]:
    """``cuLaunchKernel``'s ``kernelParams`` for ``args`` (and the buffers
    they point to, to keep alive)."""
    assert len(args) == len(signature), f"{name}: {len(args)} arguments for {len(signature)} parameters"
    values = [
        pack(f"{name} argument {k} (C parameter {code})", code, arg)
        for k, (code, arg) in enumerate(zip(signature, args))
    ]
    return (ctypes.c_void_p * len(values))(*(ctypes.addressof(value) for value in values)), values


class Placement:
    """The device and stream a stand-in launch goes to, and every launch made."""

    def __init__(self) -> None:
        self.device: int | None = None
        self.stream: int | None = None
        self.launches: list[tuple[str, int | None, int | None]] = []

    def on(self, attribute: str, value: int) -> Setting:
        return Setting(self, attribute, value)


class Setting:
    """A reusable context manager that sets one attribute of a Placement (as
    entering a ``cupy.cuda.Device`` or a CuPy stream makes it current)."""

    def __init__(self, placement: Placement, attribute: str, value: int) -> None:
        self.placement, self.attribute, self.value = placement, attribute, value
        self.before: list[int | None] = []

    def __enter__(self) -> Setting:
        self.before.append(getattr(self.placement, self.attribute))
        setattr(self.placement, self.attribute, self.value)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(self.placement, self.attribute, self.before.pop())


class HostKernel:
    """One kernel of the host build, called like a ``cupy.RawKernel``."""

    def __init__(self, lib: ctypes.CDLL, name: str, memory: GuardedMemory, placement: Placement) -> None:
        signature = lib.li_host_signature(name.encode())
        assert signature is not None, f"the host build has no kernel {name!r}"
        self.lib, self.name, self.signature = lib, name, signature.decode().split()
        self.memory, self.placement = memory, placement

    def __call__(self, grid, block, args) -> None:
        assert isinstance(grid, tuple) and isinstance(block, tuple) and len(grid) == len(block) == 1, (grid, block)
        assert 1 <= block[0] <= 1024 and grid[0] >= 1, (grid, block)
        params, _buffers = packed(self.name, self.signature, args)
        assert self.lib.li_host_launch(self.name.encode(), grid[0], block[0], params) == 0
        self.placement.launches.append((self.name, self.placement.device, self.placement.stream))
        self.memory.check(self.name)


class HostRawModule:
    """``cupy.RawModule`` over the host build."""

    def __init__(self, lib, memory, placement, *, code: str, options: tuple, name_expressions) -> None:
        assert code == launcher.KERNEL_SOURCE.read_text()
        assert options == launcher.OPTIONS
        self.lib, self.memory, self.placement, self.names = lib, memory, placement, tuple(name_expressions)

    def get_function(self, name: str) -> HostKernel:
        assert name in self.names, f"{name!r} is not among the name expressions {self.names}"
        return HostKernel(self.lib, name, self.memory, self.placement)


def stand_in_cupy(lib: ctypes.CDLL, memory: GuardedMemory, placement: Placement) -> types.SimpleNamespace:
    """The parts of CuPy that the backend and the launcher use, on the host."""

    def external(stream: Any) -> Any:
        return placement.on("stream", stream.__cuda_stream__()[1])

    def contiguous(a):
        return np.ascontiguousarray(a).view(HostArray)

    return types.SimpleNamespace(
        RawModule=lambda **kwargs: HostRawModule(lib, memory, placement, **kwargs),
        ascontiguousarray=contiguous,
        broadcast_to=np.broadcast_to,
        empty=memory.empty,
        empty_like=memory.empty_like,
        matmul=lambda a, b: np.matmul(a, b).view(HostArray),
        cuda=types.SimpleNamespace(
            Device=lambda device: placement.on("device", device),
            Stream=types.SimpleNamespace(from_external=external),
        ),
    )


@contextlib.contextmanager
def cupy_on_host(lib: ctypes.CDLL):
    """The launcher (and so the cupy backend) running on the host build, with
    fresh kernel caches before and after; yields ``(memory, placement)``."""
    memory, placement = GuardedMemory(), Placement()
    caches = (launcher._module, launcher._function, launcher._external_stream)
    for cache in caches:
        cache.cache_clear()
    saved = launcher.cupy
    launcher.cupy = lambda: stand_in_cupy(lib, memory, placement)  # type: ignore[assignment]  # the test swaps the module's cupy() for the host stand-in and restores it
    try:
        yield memory, placement
    finally:
        launcher.cupy = saved  # type: ignore[assignment]  # the test swaps the module's cupy() for the host stand-in and restores it
        for cache in caches:
            cache.cache_clear()
