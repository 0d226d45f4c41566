"""Issuing the launches that :mod:`.kernels` describes, with CuPy.

``li_kernels.cu`` is compiled by NVRTC through ``cupy.RawModule``, one module
per dtype with every kernel of that dtype, once per process and device
(CuPy's disk cache keeps the binaries between processes). A launch goes to
the current CuPy device and stream, or to a given device and a stream handle
of another library (torch's current stream). Importing this module does not
import CuPy.
"""

from __future__ import annotations

import functools
import importlib
import pathlib
import sys
from typing import Any

from .kernels import Launch, name_expressions

KERNEL_SOURCE = pathlib.Path(__file__).with_name("li_kernels.cu")
#: options given to NVRTC (and to nvcc by the tests)
OPTIONS = ("--std=c++14",)


def cupy() -> Any:
    """The ``cupy`` module, imported on first use."""
    return sys.modules.get("cupy") or importlib.import_module("cupy")


@functools.cache
def _module(dtype: str) -> Any:
    """The ``cupy.RawModule`` of one dtype name's kernels (compiled on first use)."""
    return cupy().RawModule(code=KERNEL_SOURCE.read_text(), options=OPTIONS, name_expressions=name_expressions(dtype))


@functools.cache
def _function(dtype: str, kernel: str) -> Any:
    return _module(dtype).get_function(kernel)


class _StreamHandle:
    """A raw ``cudaStream_t`` handle behind the CUDA stream protocol."""

    def __init__(self, handle: int) -> None:
        self.handle = handle

    def __cuda_stream__(self) -> tuple[int, int]:
        return 0, self.handle


@functools.lru_cache(maxsize=64)
def _external_stream(device: int, handle: int) -> Any:
    """A CuPy stream object for a stream handle owned by another library."""
    streams = cupy().cuda
    if hasattr(streams.Stream, "from_external"):  # CuPy >= 14
        return streams.Stream.from_external(_StreamHandle(handle))
    return streams.ExternalStream(handle, device)


def launch(launch: Launch, *, device: int | None = None, stream: int | None = None) -> None:
    """Issue ``launch`` on CuPy's current device and stream, or, with
    ``device`` and ``stream``, on that device index and the stream with that
    handle (which another library, e.g. torch, owns)."""
    function = _function(launch.dtype, launch.kernel)
    if device is None:
        function(launch.grid, launch.block, launch.args)
        return
    cuda = cupy().cuda
    with cuda.Device(device), _external_stream(device, 0 if stream is None else stream):
        function(launch.grid, launch.block, launch.args)
