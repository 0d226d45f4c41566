"""torch on CUDA takes the fused kernels only where they can run
(``li_backends.torch.cuda.fused_unavailable``): CuPy imports, NVRTC loads, a
CUDA device is there and the kernels compile. Each reason is produced here
for real (an import made to fail, or this machine's own lack of a device),
never by mocking the check into passing."""

from __future__ import annotations

import sys

import pytest

from li_backends.torch import cuda


@pytest.fixture
def fresh():
    """``fused_unavailable`` re-evaluated in the test, and again after it."""
    cuda.fused_unavailable.cache_clear()
    yield cuda.fused_unavailable
    cuda.fused_unavailable.cache_clear()


def cupy_or_skip() -> None:
    try:
        import cupy  # noqa: F401 - imported only to learn whether CuPy imports here
    except Exception as exc:  # noqa: BLE001 - the reason to skip
        pytest.skip(f"CuPy is not importable here ({type(exc).__name__}: {exc})")


def test_without_nvrtc_the_fused_path_is_not_taken(fresh, monkeypatch):
    cupy_or_skip()
    monkeypatch.setitem(sys.modules, "cupy_backends.cuda.libs.nvrtc", None)  # importing NVRTC's bindings fails
    reason = fresh()
    assert reason.startswith("NVRTC, which compiles the kernels, cannot be loaded (ModuleNotFoundError:"), reason
    assert not cuda.active()


def test_without_a_device_the_reason_is_the_cupy_backends(fresh):
    """The cupy backend's own availability is the reason (no CUDA device here);
    where there is a device, the kernels really compile and the path is taken."""
    cupy_or_skip()
    from li_backends.cupy import CuPyBackend

    device_reason = CuPyBackend().availability()
    if device_reason is None:
        assert fresh() is None and cuda.active()
        return
    assert fresh() == device_reason and device_reason.startswith("no CUDA device")
    assert not cuda.active()


def test_kernels_that_do_not_compile_are_a_reason_not_an_error(fresh, monkeypatch):
    """Where compiling fails (here: the real compile, with no device to
    compile for), the error is the reason, and nothing is left cached."""
    cupy_or_skip()
    from li_backends.cupy import CuPyBackend, launcher

    if CuPyBackend().availability() is None:
        pytest.skip("there is a CUDA device here: the kernels compile")
    monkeypatch.setattr(CuPyBackend, "availability", lambda self: None)
    reason = fresh()
    assert reason.startswith("the fused kernels do not compile here ("), reason
    assert launcher._function.cache_info().currsize == 0


def test_the_answer_is_cached(fresh, monkeypatch):
    cupy_or_skip()
    first = fresh()
    monkeypatch.setitem(sys.modules, "cupy_backends.cuda.libs.nvrtc", None)
    assert cuda.fused_unavailable() == first  # not checked (or compiled) again
