"""torch on CUDA through the fused kernels (``li_backends/torch/cuda.py``).

Without a GPU, the bridge's own code (contiguity, rates by value or by
address, output allocation, the launch marshalling, the broadcast voltage
gradient read in place, the parameter gradients summed with
``sum_to_size``) runs on CPU tensors against the host build of the kernels
(``tests/cuda_host``), through the real launcher with a stand-in for CuPy,
and is compared with torch autograd through a loop of Euler steps. On a CUDA
device, the fused path is compared with torch's own path on the CPU (values
and gradients), on a side stream and on the tensor's own device.
"""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")

from cuda_host import host  # noqa: E402 - after the importorskip above, which skips the module without the library

from li_backends.cupy import kernels  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_backends.torch import cuda, ops  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core.rates import Rate  # noqa: E402 - after the importorskip above, which skips the module without the library
from li_core.testing.tolerances import error_ratio  # noqa: E402 - after the importorskip above, which skips the module without the library

CUDA_REASON = (
    "no CUDA device: torch.cuda.is_available() is False"
    if not torch.cuda.is_available()
    else (f"CuPy is not importable ({cuda.fused_unavailable()})" if cuda.fused_unavailable() else None)
)
needs_gpu = pytest.mark.skipif(CUDA_REASON is not None, reason=f"the fused CUDA path cannot run here: {CUDA_REASON}")


@pytest.fixture(scope="session")
def host_library(tmp_path_factory):
    return host.session_library(tmp_path_factory)


@pytest.fixture
def on_host(host_library, monkeypatch):
    """The bridge launching on the host build (CPU tensors; torch's current
    stream stands in as handle 77); yields the stand-in's Placement."""
    monkeypatch.setattr(cuda, "current_stream", lambda device: 77)
    with host.cupy_on_host(host_library) as (_memory, placement):
        yield placement


# --- cases ------------------------------------------------------------------------------


#: the time step of the cases' inverse time constants
DT = 1e-3


def random_rates(rng, shapes, dtype, device="cpu"):
    """(tau_mem_inv, tau_syn_inv, v_leak) as tensors: None means a 0-d CPU
    tensor (a Python float made a tensor), else a tensor of that shape on
    ``device``; ``dt*tau_inv`` lies in [0.05, 0.45]."""
    lows, highs = (0.05 / DT, 0.05 / DT, -1.0), (0.45 / DT, 0.45 / DT, 1.0)
    rates = []
    for shape, low, high in zip(shapes, lows, highs):
        if shape is None:
            rates.append(torch.tensor(float(rng.uniform(low, high)), dtype=dtype))
        else:
            rates.append(torch.tensor(rng.uniform(low, high, size=shape), dtype=dtype, device=device))
    return rates


def as_rates(tau_mem_inv, tau_syn_inv, v_leak):
    """The bridge's arguments: the inverse time constants as Rates with the step DT."""
    return Rate(tau_mem_inv, DT), Rate(tau_syn_inv, DT), v_leak


def euler_loop(xs, v0, i0, tau_mem_inv, tau_syn_inv, v_leak):
    """The contract's Euler steps in torch ops: ``(voltages, currents, js)``."""
    a, d = DT * tau_mem_inv, DT * tau_syn_inv
    v, i, vs, currents, js = v0, i0, [], [], []
    for x in xs.unbind(0):
        j = i + x
        v = v + a * ((v_leak - v) + j)
        i = j - d * j
        vs.append(v)
        currents.append(i)
        js.append(j)
    return torch.stack(vs), torch.stack(currents), torch.stack(js)


def check(got, expected, dtype, what):
    ratio = error_ratio(got.detach().double().cpu().numpy(), expected.detach().double().cpu().numpy(), dtype)
    assert ratio <= 1.0, f"{what}: error / tolerance {ratio:.3g}"


RATE_SHAPES = {
    "[N] rates": ((37,), [(70,), (70,), (70,)]),
    "[B, 1], full and 0-d CPU rates": ((1,), [(3, 1), (3, 70), None]),
    "float rates, [N] v_leak": ((16,), [None, None, (70,)]),
}


# --- the bridge on the host build ----------------------------------------------------


@pytest.mark.parametrize("keep", [False, True], ids=["no-js", "js"])
@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", RATE_SHAPES, ids=list(RATE_SHAPES))
def test_scan_matches_the_euler_loop(on_host, case, dtype, record, keep):
    (steps,), shapes = RATE_SHAPES[case]
    rng = np.random.default_rng(1)
    xs = torch.tensor(rng.normal(size=(steps, 3, 70)), dtype=dtype)
    v0, i0 = (torch.tensor(rng.normal(size=(3, 70)), dtype=dtype) for _ in range(2))
    a, d, v_leak = random_rates(rng, shapes, dtype)
    voltages, currents, js = cuda.scan(xs, v0, i0, *as_rates(a, d, v_leak), record, keep)
    expected = euler_loop(*(t.double() for t in (xs, v0, i0, a, d, v_leak)))
    name = str(dtype).removeprefix("torch.")
    check(voltages, expected[0], name, "voltages")
    check(currents, expected[1] if record else expected[1][-1], name, "currents")
    if keep:
        check(js, expected[2], name, "js")
    else:
        assert js.shape == (0,)
    assert all(t.dtype == dtype for t in (voltages, currents, js))
    assert on_host.launches == [(f"li_scan<{kernels.C_TYPES[name]}>", None, None)]


@pytest.mark.parametrize("parameters", [False, True], ids=["inputs", "parameters"])
@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", RATE_SHAPES, ids=list(RATE_SHAPES))
def test_scan_backward_matches_autograd(on_host, case, dtype, record, parameters):
    """``[dx, dv0, di0]`` (and the parameter gradients, summed to each
    parameter's shape and scaled by ``dt`` as the torch ops do, 0-d CPU
    parameters included) against autograd through the Euler loop."""
    (steps,), shapes = RATE_SHAPES[case]
    rng = np.random.default_rng(2)
    name = str(dtype).removeprefix("torch.")
    xs = torch.tensor(rng.normal(size=(steps, 3, 70)), dtype=dtype)
    v0, i0 = (torch.tensor(rng.normal(size=(3, 70)), dtype=dtype) for _ in range(2))
    rates = random_rates(rng, shapes, dtype)
    gv = torch.tensor(rng.normal(size=(steps, 3, 70)), dtype=dtype)
    gi = torch.tensor(rng.normal(size=(steps, 3, 70) if record else (3, 70)), dtype=dtype)

    leaves = [t.double().requires_grad_() for t in (xs, v0, i0, *rates)]
    vs, currents, _ = euler_loop(*leaves)
    loss = (gv.double() * vs).sum() + (gi.double() * (currents if record else currents[-1])).sum()
    expected = torch.autograd.grad(loss, leaves)

    voltages, _, js = cuda.scan(xs, v0, i0, *as_rates(*rates), record, parameters)
    saved = (v0, voltages, js) if parameters else (None, None, None)
    grads = ops._fused_backward(gv, gi, *as_rates(*rates), *saved, record)
    assert len(grads) == (6 if parameters else 3)
    for got, want, what in zip(grads, expected, ("dx", "dv0", "di0", "dtau_mem_inv", "dtau_syn_inv", "dv_leak")):
        assert got.shape == want.shape and got.dtype == dtype, (what, got.shape, got.dtype)
        check(got, want, name, what)


@pytest.mark.parametrize("gradient", ["sum", "sum over time", "sliced"])
def test_scan_backward_reads_broadcast_voltage_gradients_in_place(on_host, gradient):
    """The gradient of ``vs.sum()`` is one number broadcast to every element,
    that of ``vs.sum(0)`` is broadcast over time: both are read in place (the
    bridge passes their strides); a sliced gradient is made contiguous."""
    rng = np.random.default_rng(3)
    rates = random_rates(rng, [(70,), (3, 1), None], torch.float64)
    xs = torch.tensor(rng.normal(size=(21, 3, 70)))
    v0, i0 = torch.zeros(3, 70), torch.zeros(3, 70)
    full = torch.tensor(rng.normal(size=(21, 3, 140)))
    gv = {
        "sum": torch.tensor(0.5, dtype=torch.float64).expand(21, 3, 70),
        "sum over time": torch.tensor(rng.normal(size=(3, 70))).expand(21, 3, 70),
        "sliced": full[:, :, ::2],
    }[gradient]
    assert cuda._strides(gv)[1] == {"sum": (0, 0), "sum over time": (0, 1), "sliced": None}[gradient]
    rates = as_rates(*rates)
    voltages, _, js = cuda.scan(xs, v0.double(), i0.double(), *rates, False, True)
    got = cuda.scan_backward(gv, torch.zeros(3, 70, dtype=torch.float64), *rates, v0.double(), voltages, js, False)
    expected = cuda.scan_backward(
        gv.contiguous(), torch.zeros(3, 70, dtype=torch.float64), *rates, v0.double(), voltages, js, False
    )
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_non_contiguous_inputs_give_the_same_numbers(on_host):
    rng = np.random.default_rng(4)
    xs = torch.tensor(rng.normal(size=(9, 70, 3))).transpose(1, 2)
    v0 = torch.tensor(rng.normal(size=(3, 140)))[:, ::2]
    i0 = torch.tensor(rng.normal(size=70)).expand(3, 70)
    a, d, v_leak = random_rates(rng, [(70,), None, (3, 1)], torch.float64)
    a = torch.tensor(rng.uniform(50, 450, size=140))[::2]
    got = cuda.scan(xs, v0, i0, *as_rates(a, d, v_leak), True, True)
    contiguous = (xs.contiguous(), v0.contiguous(), i0.contiguous())
    expected = cuda.scan(*contiguous, *as_rates(a.contiguous(), d, v_leak), True, True)
    for x, y in zip(got, expected):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def aten_calls(fn):
    """The aten ops that ``fn()`` runs (after decompositions), in order."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Recorder(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.calls.append(str(func.overloadpacket.__name__))
            return func(*args, **(kwargs or {}))

    with Recorder() as recorder:
        fn()
    return recorder.calls


def test_laid_out_tensors_are_read_in_place(on_host):
    """On contiguous inputs, 0-d CPU fractions and the broadcast gradient of a
    sum, each call only allocates its outputs and reads the fractions'
    values: no copy, expand or fill runs on the host for the kernels (each
    would be a launch and an allocation on CUDA)."""
    rng = np.random.default_rng(10)
    xs = torch.tensor(rng.normal(size=(6, 3, 70)), dtype=torch.float32)
    v0, i0 = torch.zeros(3, 70), torch.zeros(3, 70)
    a, d, v_leak = (torch.tensor(value) for value in (0.1, 0.2, 0.3))
    rates = (Rate(a), Rate(d), v_leak)  # (fractions: a scale of 1)
    forward = aten_calls(lambda: cuda.scan(xs, v0, i0, *rates, False, False))
    assert sorted(forward) == ["_local_scalar_dense"] * 3 + ["empty_like"] * 2 + ["new_empty"], forward
    gv = torch.tensor(1.0).expand(6, 3, 70)
    backward = aten_calls(lambda: cuda.scan_backward(gv, i0, *rates, None, None, None, False))
    assert not [call for call in backward if call not in ("_local_scalar_dense", "empty_like", "select")], backward
    assert backward.count("empty_like") == 3, backward


def test_a_missing_current_gradient_reads_as_zero(on_host):
    """``gi=None`` (the currents' gradient that autograd need not
    materialise) gives what a zero gradient gives."""
    rng = np.random.default_rng(11)
    xs = torch.tensor(rng.normal(size=(9, 2, 70)))
    v0, i0 = torch.zeros(2, 70, dtype=torch.float64), torch.zeros(2, 70, dtype=torch.float64)
    rates = as_rates(*random_rates(rng, [(70,), None, (2, 1)], torch.float64))
    voltages, _, js = cuda.scan(xs, v0, i0, *rates, True, True)
    gv = torch.tensor(rng.normal(size=(9, 2, 70)))
    for record in (False, True):
        zero = torch.zeros_like(xs if record else v0)
        got = cuda.scan_backward(gv, None, *rates, v0, voltages, js, record)
        expected = cuda.scan_backward(gv, zero, *rates, v0, voltages, js, record)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_launches_go_to_the_inputs_device_and_torchs_current_stream(host_library, monkeypatch):
    """``_issue`` asks for torch's current stream on the inputs' device and
    launches there, on that device index (not device 0)."""
    asked = []

    def current_stream(device):
        asked.append(device)
        return 4242

    monkeypatch.setattr(cuda, "current_stream", current_stream)
    device = types.SimpleNamespace(type="cuda", index=3)
    x = torch.zeros(2, 5)
    with host.cupy_on_host(host_library) as (_memory, placement):
        rates = (Rate(0.1), Rate(0.2), Rate(0.0))
        launch = kernels.scan(cuda.MEMORY, "float32", x, x[0], x[0], rates, torch.empty(2, 5), v_last=torch.empty(5))
        cuda._issue(launch, device)
    assert asked == [device]
    assert placement.launches == [("li_scan<float>", 3, 4242)]


def test_current_stream_reads_the_raw_handle_of_the_devices_stream(monkeypatch):
    """torch's raw getter, by device index, where torch has it (CUDA builds);
    else the handle of ``torch.cuda.current_stream(device)``."""
    device = types.SimpleNamespace(type="cuda", index=2)
    monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", lambda index: 1000 + index, raising=False)
    assert cuda.current_stream(device) == 1002
    monkeypatch.delattr(torch._C, "_cuda_getCurrentRawStream")
    monkeypatch.setattr(torch.cuda, "current_stream", lambda d: types.SimpleNamespace(cuda_stream=7 * d.index))
    assert cuda.current_stream(device) == 14


def test_rates_by_value_or_by_address():
    """A float, or a one-element CPU tensor, goes by value, its fraction formed
    as torch forms ``dt * tau_inv`` (in the tensor's dtype); a device tensor
    goes by address with its scale, for the kernel to multiply."""
    like = torch.empty(2, 3, device="meta")
    a, d, v_leak = cuda._rates(
        Rate(torch.tensor(0.25)), Rate(torch.empty(3, device="meta"), DT), torch.tensor([0.5]), like
    )
    assert a == Rate(0.25) and v_leak == Rate(0.5)
    assert isinstance(d.value, torch.Tensor) and d.value.device.type == "meta" and d.scale == DT
    tau = torch.tensor(173.3)
    assert cuda._rates(Rate(tau, DT), Rate(0.25, DT), 0.0, like)[:2] == (Rate((DT * tau).item()), Rate(0.25, DT))
    # a one-element CPU rate goes by value whatever the inputs' device (as on CUDA)
    assert cuda._rates(Rate(torch.tensor(0.25)), Rate(torch.ones(1)), torch.tensor(0.0), torch.empty(2, 3)) == (
        Rate(0.25),
        Rate(1.0),
        Rate(0.0),
    )
    with pytest.raises(ValueError, match="tau_mem_inv: a parameter on cpu with shape \\(3,\\)"):
        cuda._rates(Rate(torch.ones(3)), Rate(torch.tensor(0.1)), torch.tensor(0.0), like)
    with pytest.raises(TypeError, match=r"tau_syn_inv: a parameter of dtype torch\.float64"):
        cuda._rates(Rate(torch.tensor(0.1)), Rate(torch.empty(3, dtype=torch.float64, device="meta")), 0.0, like)
    for dtype in (torch.bfloat16, torch.float16):
        with pytest.raises(TypeError, match="xs: the fused CUDA scan computes in float32 and float64, not"):
            cuda._dtype(torch.zeros(2, dtype=dtype))


def test_fused_unavailable_reports_the_import_error(monkeypatch):
    cuda.fused_unavailable.cache_clear()
    try:
        monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
        reason = cuda.fused_unavailable()
        assert reason == "ModuleNotFoundError: import of cupy halted; None in sys.modules"
    finally:
        cuda.fused_unavailable.cache_clear()


def test_active_needs_cupy_and_the_switch(monkeypatch):
    monkeypatch.setattr(cuda, "fused_unavailable", lambda: None)
    assert cuda.active()
    monkeypatch.setattr(cuda, "FUSED", False)
    assert not cuda.active()
    monkeypatch.setattr(cuda, "FUSED", True)
    monkeypatch.setattr(cuda, "fused_unavailable", lambda: "ModuleNotFoundError: No module named 'cupy'")
    assert not cuda.active()


def test_importing_the_bridge_imports_neither_torch_nor_cupy():
    probe = (
        "import sys\n"
        "import li_backends.torch.cuda\n"
        "assert 'torch' not in sys.modules and 'cupy' not in sys.modules, sorted(sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --- on a CUDA device ------------------------------------------------------------------


def cuda_case(seed, steps, batch, neurons, dtype):
    rng = np.random.default_rng(seed)
    make = lambda *shape: torch.tensor(rng.normal(size=shape), dtype=dtype, device="cuda")  # noqa: E731 - a one-line factory, clearer as a lambda beside its uses
    xs, v0, i0 = make(steps, batch, neurons), make(batch, neurons), make(batch, neurons)
    a, d, v_leak = random_rates(rng, [(neurons,), (batch, 1), None], dtype, device="cuda")
    return xs, v0, i0, a, d, v_leak


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_fused_matches_torchs_path_on_the_cpu(dtype):
    """The fused kernels on CUDA against the same op on the CPU (torch's own
    loop), 1000 steps, several blocks: voltages, currents, and every gradient."""
    name = str(dtype).removeprefix("torch.")
    xs, v0, i0, a, d, v_leak = cuda_case(5, 1000, 4, 300, dtype)
    voltages, currents, js = cuda.scan(xs, v0, i0, *as_rates(a, d, v_leak), True, True)
    expected = euler_loop(*(t.double().cpu() for t in (xs, v0, i0, a, d, v_leak)))
    for got, want, what in zip((voltages, currents, js), expected, ("voltages", "currents", "js")):
        assert got.device.type == "cuda"
        check(got, want, name, what)
    gv, gi = torch.randn_like(xs), torch.randn_like(xs)
    grads = ops._fused_backward(gv, gi, *as_rates(a, d, v_leak), v0, voltages, js, True)
    leaves = [t.detach().double().cpu().requires_grad_() for t in (xs, v0, i0, a, d, v_leak)]
    vs, cs, _ = euler_loop(*leaves)
    wanted = torch.autograd.grad((gv.double().cpu() * vs).sum() + (gi.double().cpu() * cs).sum(), leaves)
    for got, want, what in zip(grads, wanted, ("dx", "dv0", "di0", "dtau_mem_inv", "dtau_syn_inv", "dv_leak")):
        assert got.device.type == "cuda", what
        check(got, want, name, what)


@needs_gpu
def test_li_scan_training_on_cuda_matches_the_cpu():
    """Through the public API (and so the custom op's CUDA kernel where the
    torch backend registers it): values and gradients on CUDA equal the CPU's."""
    from li_core import LIParameters, LIState, li_scan

    rng = np.random.default_rng(6)
    xs = torch.tensor(rng.normal(size=(300, 8, 200)), dtype=torch.float32)
    tau = torch.tensor(rng.uniform(50, 450, size=200), dtype=torch.float32)
    results = []
    for device in ("cpu", "cuda"):
        # (copies: on the CPU, .to("cpu") would return xs and tau themselves and make them the leaves)
        x = xs.to(device, copy=True).requires_grad_()
        t = tau.to(device, copy=True).requires_grad_()
        state = LIState(torch.zeros(8, 200, device=device), torch.zeros(8, 200, device=device))
        vs, final = li_scan(x, state, p=LIParameters(tau_mem_inv=t), backend="torch")
        (vs.sum() + final.i.square().sum()).backward()
        results.append([r.detach().cpu() for r in (vs, final.i, x.grad, t.grad)])
    for got, want, what in zip(results[1], results[0], ("voltages", "i", "dx", "dtau_mem_inv")):
        check(got, want.double(), "float32", what)


@needs_gpu
def test_runs_on_torchs_current_stream():
    """Launched on a side stream that is current, the kernel is ordered after
    the work queued there before it (a slow fill of the input)."""
    xs, v0, i0, a, d, v_leak = cuda_case(7, 200, 4, 1000, torch.float32)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(10_000_000)  # keeps the side stream busy
        xs.fill_(1.0)
        voltages, _, _ = cuda.scan(xs, v0, i0, a, d, v_leak, False, False)
    side.synchronize()
    expected = euler_loop(*(t.double().cpu() for t in (xs, v0, i0, a, d, v_leak)))[0]
    check(voltages, expected, "float32", "voltages after the fill")


@needs_gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_runs_on_the_tensors_own_device():
    xs, v0, i0, a, d, v_leak = (t.to("cuda:1") for t in cuda_case(8, 50, 2, 300, torch.float32))
    voltages, _, _ = cuda.scan(xs, v0, i0, a, d, v_leak, False, False)
    assert voltages.device == torch.device("cuda:1")
    expected = euler_loop(*(t.double().cpu() for t in (xs, v0, i0, a, d, v_leak)))[0]
    check(voltages, expected, "float32", "voltages on cuda:1")


@pytest.mark.parametrize("parameters", [False, True], ids=["inputs", "parameters"])
@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
def test_outputs_have_the_shapes_and_dtypes_the_ops_declare(on_host, record, parameters):
    """What torch.compile plans with (the ops' fake implementations) is what
    the fused path returns, for every output of both ops."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    rng = np.random.default_rng(9)
    xs = torch.tensor(rng.normal(size=(5, 3, 70)), dtype=torch.float32)
    v0, i0 = torch.zeros(3, 70), torch.zeros(3, 70)
    rates = random_rates(rng, [(70,), (3, 1), None], torch.float32)
    got = cuda.scan(xs, v0, i0, *as_rates(*rates), record, parameters)
    saved = (v0, got[0], got[2]) if parameters else (None, None, None)
    grads = ops._fused_backward(torch.ones_like(xs), torch.ones_like(got[1]), *as_rates(*rates), *saved, record)
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        fake = [mode.from_tensor(t) if t is not None else None for t in (xs, v0, i0, *rates, *saved)]
        declared = torch.ops.li_neurons.scan(*fake[:6], DT, DT, record, parameters)
        gradients = (mode.from_tensor(torch.ones_like(xs)), mode.from_tensor(torch.ones_like(got[1])))
        declared_grads = torch.ops.li_neurons.scan_backward(*gradients, *fake[3:6], DT, DT, *fake[6:], record, True)
    for real, planned in zip([*got, *grads], [*declared, *declared_grads]):
        assert (tuple(real.shape), real.dtype) == (tuple(planned.shape), planned.dtype)
    assert len(grads) == len(declared_grads)


# --- the eager path's use of the bridge (host build) ---------------------------------


@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
def test_scan_with_copy_writes_the_final_voltage_into_its_own_buffer(on_host, record):
    """The kernel writes ``v_out`` (the final voltage, or the whole sequence
    when recording) besides the voltages; Python-float rates give the bits
    of their 0-d tensors."""
    rng = np.random.default_rng(21)
    xs = torch.tensor(rng.normal(size=(7, 2, 70)), dtype=torch.float32)
    v0, i0 = (torch.tensor(rng.normal(size=(2, 70)), dtype=torch.float32) for _ in range(2))
    floats = (200.0, 100.0, 0.3)
    voltages, v_out, currents, js = cuda.scan_with_copy(xs, v0, i0, *as_rates(*floats), record, False)
    assert js is None and v_out.data_ptr() != voltages.data_ptr()
    assert torch.equal(v_out, voltages if record else voltages[-1])
    fractions = [torch.tensor(DT * f, dtype=torch.float32) for f in floats[:2]]
    expected = cuda.scan(xs, v0, i0, Rate(fractions[0]), Rate(fractions[1]), torch.tensor(floats[2]), record, False)
    assert torch.equal(voltages, expected[0]) and torch.equal(currents, expected[1])


@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
def test_the_eager_path_through_the_kernels_matches_the_euler_loop(on_host, monkeypatch, record):
    """``ops.Scan`` with the fused kernels (here their host build): values and
    gradients for inputs, state and per-neuron or float parameters, with the
    final voltage and the sequence both in the loss."""
    monkeypatch.setattr(ops, "_fused", lambda x: True)
    rng = np.random.default_rng(22)
    xs = torch.tensor(rng.normal(size=(8, 2, 70)), requires_grad=True)
    v0, i0 = (torch.tensor(rng.normal(size=(2, 70)), requires_grad=True) for _ in range(2))
    a = torch.tensor(rng.uniform(50, 450, size=70), requires_grad=True)
    for d, v_leak in ((100.0, 0.25), (torch.tensor(rng.uniform(50, 450, size=70), requires_grad=True), 0.0)):
        leaves = [t for t in (xs, v0, i0, a, d) if isinstance(t, torch.Tensor)]
        voltages, v_out, currents = ops.scan_eager(xs, v0, i0, a, d, v_leak, DT, record)
        loss = (voltages * 1.5).sum() + (v_out * 0.5).sum() + (currents * 0.25).sum()
        got = torch.autograd.grad(loss, leaves)
        vs, cs, _ = euler_loop(xs, v0, i0, a, d, v_leak)
        tail = (vs, cs) if record else (vs[-1], cs[-1])
        want_loss = (vs * 1.5).sum() + (tail[0] * 0.5).sum() + (tail[1] * 0.25).sum()
        want = torch.autograd.grad(want_loss, leaves)
        torch.testing.assert_close(voltages, vs)
        for name, g, w in zip(("xs", "v0", "i0", "a", "d"), got, want):
            torch.testing.assert_close(g, w, msg=name)
