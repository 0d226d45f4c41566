"""The compiled CPU loops (li_backends.compiled, numba): the forward bitwise
equal to the ``numpy`` backend's loop, the torch adjoint against the torch
loop and gradcheck, the slow-neuron case, the switches that turn them off,
and a process where numba does not import."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import li_backends.numpy as numpy_backend
from li_backends import compiled
from li_core import LIParameters, LIState, li_scan, reference
from li_core.rates import Rate
from li_core.testing import assert_matches
from li_core.testing.cases import convert, ladder_case, random_case, slow_case

needs_numba = pytest.mark.skipif(
    compiled.unavailable() is not None, reason=f"the compiled loops do not run here: {compiled.unavailable()}"
)


def _bits(array):
    """The bytes of an array: equal only where every value is bitwise equal
    (signed zeros and NaN payloads included)."""
    return np.ascontiguousarray(array).view(np.uint8)


@pytest.fixture
def kernel_calls(monkeypatch):
    """The names of the kernels that ran (forward ``scan``, ``scan_backward``),
    whether on numba's threads or block by block on the caller's."""
    if compiled.unavailable() is not None:
        pytest.skip(f"the compiled loops do not run here: {compiled.unavailable()}")
    calls = []
    real = compiled._run
    monkeypatch.setattr(compiled, "_run", lambda name, *args: calls.append(name) or real(name, *args))
    return calls


def _numpy_loop(monkeypatch, *args, **kwargs):
    """``li_scan`` on the ``numpy`` backend's loop of ufuncs (compiled loops
    and blocked scan switched off)."""
    with monkeypatch.context() as patch:
        patch.setattr(compiled, "ENABLED", False)
        patch.setattr(numpy_backend, "BLOCKED", False)
        return li_scan(*args, backend="numpy", **kwargs)


def _parameters(kind, dtype, rng, neurons):
    if kind == "floats":
        return LIParameters()
    if kind == "floats with v_leak":
        return LIParameters(170.0, 90.0, -0.25)
    if kind == "one-element arrays":
        return LIParameters(*(np.array([value], dtype) for value in (300.0, 150.0, 0.5)))
    rates = [rng.uniform(1.0, 1000.0, neurons).astype(dtype) for _ in range(2)]  # dt*tau_inv from 1e-3 to 1
    return LIParameters(*rates, rng.normal(size=neurons).astype(dtype))


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["floats", "floats with v_leak", "one-element arrays", "per neuron"])
@pytest.mark.parametrize("record_states", [False, True])
def test_forward_is_bitwise_the_numpy_loop(dtype, kind, record_states, kernel_calls, monkeypatch):
    """Every voltage and current of the compiled scan has the bits of the
    ``numpy`` backend's loop: same operations in the same order, no
    reassociation, no fused multiply-add. With blocks of 16 neurons, 5 x 37
    neurons cut into 12 blocks (the last one short) on every thread."""
    monkeypatch.setattr(compiled, "MAX_BLOCK", 16)
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(257, 5, 37)).astype(dtype)
    state = LIState(rng.normal(size=(5, 37)).astype(dtype), rng.normal(size=(5, 37)).astype(dtype))
    p = _parameters(kind, dtype, rng, 37)
    vs, final = li_scan(xs, state, p=p, backend="numpy", record_states=record_states)
    assert kernel_calls == ["scan"]
    loop_vs, loop_final = _numpy_loop(monkeypatch, xs, state, p=p, record_states=record_states)
    for got, want, what in ((vs, loop_vs, "voltages"), (final.v, loop_final.v, "v"), (final.i, loop_final.i, "i")):
        assert got.dtype == want.dtype == dtype and got.shape == want.shape, what
        assert np.array_equal(_bits(got), _bits(want)), f"{what}: not bitwise equal to the loop"


@needs_numba
def test_forward_with_weights_and_strided_inputs_is_bitwise_the_loop(kernel_calls, monkeypatch):
    """A weighted scan (the projection is shared) and a transposed input (the
    kernel reads a contiguous copy) give the loop's bits too."""
    case = convert(random_case(400, batch=(3,), neurons=6, inputs=5, seed=4), lambda a: a.astype(np.float32))
    strided = np.swapaxes(np.swapaxes(case.xs, 1, 2).copy(), 1, 2)
    assert not strided.flags.c_contiguous
    for xs in (case.xs, strided):
        got = li_scan(xs, case.state, case.weights, case.p, case.dt, backend="numpy")
        want = _numpy_loop(monkeypatch, xs, case.state, case.weights, case.p, case.dt)
        assert all(np.array_equal(_bits(g), _bits(w)) for g, w in zip((got[0], *got[1]), (want[0], *want[1])))
    assert kernel_calls == ["scan", "scan"]


@needs_numba
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_slow_neurons_on_the_compiled_path(dtype, kernel_calls):
    """The conformance suite's slow-neuron case (dt*tau_inv from 1 down to
    1e-4 per neuron, 20,000 steps) matches the float64 reference at the
    dtype's tolerance on the compiled path."""
    case = convert(slow_case(1e-4), lambda a: a.astype(dtype))
    vs, state = li_scan(case.xs, case.state, None, case.p, case.dt, backend="numpy", record_states=True)
    assert kernel_calls == ["scan"]
    exact = convert(case, lambda a: a.astype(np.float64))
    want_vs, want = reference.scan(exact.xs, exact.state, None, exact.p, case.dt, True)
    assert_matches(vs, want_vs, dtype, "slow voltages, compiled")
    assert_matches(state.i, want.i, dtype, "slow currents, compiled")


def test_switches_turn_the_compiled_loops_off(monkeypatch):
    """``LI_NUMBA=0`` and ``ENABLED = False`` each name themselves as the reason
    and leave the scan to the loop, with the same numbers."""
    monkeypatch.setenv("LI_NUMBA", "0")
    assert compiled.unavailable() == "LI_NUMBA=0 is set"
    assert "LI_NUMBA=0" in compiled.notes("NumPy arrays")
    monkeypatch.delenv("LI_NUMBA")
    monkeypatch.setattr(compiled, "ENABLED", False)
    assert compiled.unavailable() == "li_backends.compiled.ENABLED is False"
    ran = []
    real = numpy_backend.NumPyBackend.loop
    monkeypatch.setattr(numpy_backend.NumPyBackend, "loop", staticmethod(lambda *a: ran.append(1) or real(*a)))
    xs = np.random.default_rng(5).normal(size=(30, 4))
    vs, _ = li_scan(xs, backend="numpy")
    assert ran == [1]
    want, _ = reference.scan(xs, LIState(np.zeros(4), np.zeros(4)), None, LIParameters(), 1e-3)
    assert_matches(vs, want, "float64", "loop with the compiled loops off")


def test_without_numba_the_loops_run_and_say_why():
    """In a process where ``import numba`` fails, the scan runs the NumPy
    loop (with the loop's numbers) and the notes give the import error."""
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from li_backends import compiled\n"
        "from li_core import li_scan\n"
        "vs, _ = li_scan(np.ones((3, 2)), backend='numpy')\n"
        "print(vs[:, 0].tolist()); print(compiled.notes('NumPy arrays'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "[0.1, 0.27, 0.487]"  # the contract's known values
    assert "numba does not import (ModuleNotFoundError" in out[1] and "loops of array operations" in out[1]


@needs_numba
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_scans_without_them():
    """numba's OpenMP threads (GNU OpenMP) do not survive a fork: a child
    forked after a parallel scan (as a torch DataLoader worker or a fork
    Pool may be) runs the loop, with the same numbers, instead of being
    terminated by numba."""
    code = (
        "import os, numpy as np\n"
        "from li_backends import compiled\n"
        "from li_core import li_scan\n"
        "x = np.random.default_rng(0).normal(size=(600, 2048)).astype(np.float32)\n"
        "parent = li_scan(x, backend='numpy')[0]\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    same = np.array_equal(li_scan(x, backend='numpy')[0], parent)\n"
        "    os._exit(0 if same and 'forked' in compiled.unavailable() else 3)\n"
        "print(os.waitpid(pid, 0)[1])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    assert out.stdout.split() == ["0"], out.stderr


@needs_numba
def test_conformance_with_the_compiled_loops_off():
    """Where numba is installed the suite's other tests run the compiled
    loops, so the loops they replace are checked here: the whole conformance
    suite on ``numpy`` and ``torch`` with ``LI_NUMBA=0``, in its own process."""
    pytest.importorskip("torch")
    env = {**os.environ, "LI_NUMBA": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "li_core", "check", "numpy", "torch", "-q"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@needs_numba
def test_first_call_in_a_new_process_loads_the_cache():
    """A second process finds the kernels in numba's cache instead of
    compiling them (``cache=True``): nothing is compiled anew."""
    code = (
        "import numpy as np\n"
        "from li_core import li_scan\n"
        "from li_backends.compiled import kernels\n"
        "li_scan(np.ones((3, 2), np.float32), backend='numpy')\n"
        "ran = [kernels.scan, kernels.scan_block]\n"
        "print(sum(sum(k.stats.cache_misses.values()) for k in ran), sum(sum(k.stats.cache_hits.values()) for k in ran))\n"
    )
    for _ in range(2):  # the first may compile, if no earlier test did
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    misses, hits = map(int, out.split())
    assert misses == 0 and hits >= 1  # (the kernels' load takes float64's too)


# --- torch on the CPU ------------------------------------------------------------------


def _torch_gradients(torch, monkeypatch, compiled_loops, dtype, per_neuron, record_states, loss):
    """Voltages and the gradients of every argument of a scan (inputs, state,
    three parameters) through the torch backend, on the compiled loops or
    on the torch loop."""
    gen = torch.Generator().manual_seed(7)
    shape, steps = (3, 11), 300

    def leaf(*size, low=None, high=None):
        values = torch.randn(*size, generator=gen, dtype=torch.float64)
        if low is not None:
            values = low + (high - low) * torch.rand(*size, generator=gen, dtype=torch.float64)
        return values.to(dtype).requires_grad_()

    xs, v0, i0 = leaf(steps, *shape), leaf(*shape), leaf(*shape)
    params = [leaf(11, low=1.0, high=1000.0), leaf(11, low=1.0, high=1000.0), leaf(11)] if per_neuron else []
    p = LIParameters(*params) if per_neuron else LIParameters(170.0, 90.0, 0.25)
    with monkeypatch.context() as patch:
        from li_backends.torch import ops

        patch.setattr(compiled, "ENABLED", compiled_loops)
        patch.setattr(ops, "BLOCKED", False)
        vs, final = li_scan(xs, LIState(v0, i0), p=p, backend="torch", record_states=record_states)
        leaves = [xs, v0, i0, *params]
        return vs.detach(), torch.autograd.grad(loss(vs, final), leaves)


LOSSES = {
    "sum": lambda vs, final: vs.sum(),  # the gradient of the voltages arrives broadcast: one row for every step
    "weighted, with the final state": lambda vs, final: (vs * vs.detach().cos()).sum() + (final.i * final.v).sum(),
}


@needs_numba
@pytest.mark.parametrize("per_neuron", [True, False])
@pytest.mark.parametrize("record_states", [False, True])
@pytest.mark.parametrize("loss", LOSSES)
def test_torch_gradients_match_the_torch_loop(per_neuron, record_states, loss, kernel_calls, monkeypatch):
    """float32 gradients of every argument through the compiled forward and
    adjoint agree with the torch loop's at the float32 tolerance (and the
    voltages too)."""
    torch = pytest.importorskip("torch")
    args = (torch.float32, per_neuron, record_states, LOSSES[loss])
    vs, got = _torch_gradients(torch, monkeypatch, True, *args)
    assert kernel_calls == ["scan", "scan_backward"]
    loop_vs, want = _torch_gradients(torch, monkeypatch, False, *args)
    assert_matches(vs.numpy(), loop_vs.numpy(), "float32", "voltages")
    names = ["inputs", "v0", "i0", "tau_syn_inv", "tau_mem_inv", "v_leak"]
    for name, g, w in zip(names, got, want):
        assert_matches(g.numpy(), w.numpy(), "float32", f"gradient w.r.t. {name}")


@needs_numba
@pytest.mark.parametrize("record_states", [False, True])
def test_torch_gradcheck_on_the_compiled_path(record_states, kernel_calls):
    """float64 gradcheck of every argument (inputs, weights, state,
    per-neuron parameters) on the compiled forward and adjoint."""
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(8)

    def leaf(*size, scale=1.0, offset=0.0):
        return (offset + scale * torch.rand(*size, generator=gen, dtype=torch.float64)).requires_grad_()

    args = (leaf(7, 2, 3), leaf(4, 3), leaf(2, 4), leaf(2, 4), leaf(4, scale=400, offset=50))
    args += (leaf(4, scale=400, offset=50), leaf(4))

    def outputs(xs, w, v0, i0, syn, mem, leak):
        vs, final = li_scan(
            xs, LIState(v0, i0), w, LIParameters(syn, mem, leak), backend="torch", record_states=record_states
        )
        return vs, final.v, final.i

    assert torch.autograd.gradcheck(outputs, args)
    assert set(kernel_calls) == {"scan", "scan_backward"}


@needs_numba
def test_torch_scan_runs_on_the_tensors_memory(kernel_calls):
    """The kernels write into the output tensors themselves: the voltages
    are a fresh contiguous tensor that owns its memory (no copy back)."""
    torch = pytest.importorskip("torch")
    xs = torch.randn(50, 8, 4)
    vs, state = li_scan(xs, backend="torch")
    assert kernel_calls == ["scan"]
    assert vs.is_contiguous() and vs._base is None and state.i._base is None
    want, _ = reference.scan(
        xs.double().numpy(), LIState(np.zeros((8, 4)), np.zeros((8, 4))), None, LIParameters(), 1e-3
    )
    assert_matches(vs.numpy(), want, "float32", "voltages")
    assert math.isclose(float(state.v[0, 0]), float(vs[-1, 0, 0]))


@needs_numba
@pytest.mark.parametrize("rates", ["floats", "per neuron"])
@pytest.mark.parametrize("kernel", ["caller thread", "parallel"])
def test_parameter_gradient_shares_lose_no_small_terms(rates, kernel, kernel_calls, monkeypatch):
    """Each neuron's shares of the parameter gradients are sums over time in
    which many small terms stand beside one large one; the adjoint must not
    drop the small ones (it sums in float64). With ``a = d = 1``, ``j_t = 1``
    and ``v = v_leak = 0`` the adjoint is exact: ``lam_t = gv_t``,
    ``kap_t = gv_{t+1}``, so ``da = dv_leak = sum gv`` and ``dd = -sum_{t>0} gv_t``.
    ``gv`` is 1 at the last step (summed first: time runs backwards) and
    2**-26 at the 1025 others, each below half a unit in the last place of 1
    in float32: a float32 sum stays at 1, the exact one is 1 + 1025 * 2**-26."""
    monkeypatch.setattr(compiled, "MAX_BLOCK", 16)  # 37 neurons: blocks of 16, 16 and 5
    if kernel == "parallel":
        monkeypatch.setattr(compiled, "GRAIN", 64)
    steps, neurons, dtype = 1026, 37, np.float32
    gv = np.full((steps, neurons), 2.0**-26, dtype)
    gv[-1] = 1.0
    one = 1.0 if rates == "floats" else np.ones(neurons, dtype)
    saved = (np.zeros(neurons, dtype), np.zeros((steps, neurons), dtype), np.ones((steps, neurons), dtype), 0.0)
    dx, dv0 = np.empty((steps, neurons), dtype), np.empty(neurons, dtype)
    shares = tuple(np.empty(neurons, dtype) for _ in range(3))
    compiled.scan_backward(gv, None, np.zeros(neurons, dtype), Rate(one), Rate(one), saved, dx, dv0, shares)
    assert kernel_calls == ["scan_backward"]
    # lam_t = gv_t exactly; mu_t = gv_t up to float32's rounding of the
    # compensated increment lam*a + (ek - kap*d), where kap*d is the larger term
    np.testing.assert_allclose(dx, gv, rtol=0, atol=np.finfo(dtype).eps)
    column = gv[:, 0].astype(np.float64)
    exact = {"da": math.fsum(column), "dd": -math.fsum(column[1:]), "dv_leak": math.fsum(column)}
    for (name, want), got in zip(exact.items(), shares):
        assert abs(np.float32(want)) > 1.0  # (the premise: in float32 the exact sum is not 1)
        np.testing.assert_array_equal(got, np.full(neurons, want, dtype), err_msg=f"{name}: small shares were lost")


# --- long runs of slow neurons: the compensated float32 recurrences on every CPU path ---

#: the contract's long runs (slowest dt*tau_inv, steps): plain float32 is 77x
#: and 25x the tolerance there (voltages; gradients up to 146x), compensated
#: at most 0.03x
LONG_RUNS = [(1e-6, 10**6), (1e-9, 100_000)]


def _float32(case):
    return convert(case, lambda a: np.asarray(a, dtype=np.float32))


def _ladder_gradients(torch, monkeypatch, case, dtype, compiled_loops=True):
    """Voltages and the gradients of every argument (inputs, state, the three
    per-neuron parameters) of ``L = sum(w*vs) + sum(g*i_final)`` (random
    ``w``, ``g``: a loss over all steps) on the torch backend, on the
    compiled loops or on torch's own loop (blocked scan off)."""
    rng = np.random.default_rng(5)
    w, g = (torch.tensor(rng.normal(size=shape), dtype=dtype) for shape in (case.xs.shape, case.xs.shape[1:]))
    leaves = [
        torch.tensor(np.asarray(value), dtype=dtype, requires_grad=True) for value in (case.xs, *case.state, *case.p)
    ]
    with monkeypatch.context() as patch:
        from li_backends.torch import ops

        patch.setattr(compiled, "ENABLED", compiled_loops)
        patch.setattr(ops, "BLOCKED", False)
        vs, final = li_scan(leaves[0], LIState(*leaves[1:3]), p=LIParameters(*leaves[3:]), dt=case.dt, backend="torch")
        grads = torch.autograd.grad((vs * w).sum() + (final.i * g).sum(), leaves)
    return [vs.detach(), *grads]


GRADIENT_NAMES = ["voltages", "inputs", "v0", "i0", "tau_syn_inv", "tau_mem_inv", "v_leak"]


def _assert_all_match(got, want, what):
    for name, g, w in zip(GRADIENT_NAMES, got, want):
        assert_matches(g.double().numpy(), w.numpy(), "float32", f"{what}: {name}")


@needs_numba
@pytest.mark.parametrize(("slowest", "steps"), LONG_RUNS)
def test_long_runs_forward_on_the_compiled_path(slowest, steps, kernel_calls):
    """Rates on a ladder from 1 down to ``slowest`` per neuron: the float32
    voltages (every step) and final state of the compiled loop match the
    float64 scan within the float32 tolerance."""
    case = ladder_case(slowest, steps)
    single = _float32(case)
    vs, state = li_scan(single.xs, single.state, None, single.p, case.dt, backend="numpy")
    assert kernel_calls == ["scan"]
    want_vs, want = li_scan(case.xs, case.state, None, case.p, case.dt, backend="numpy")
    assert_matches(vs, want_vs, "float32", "voltages, compiled")
    assert_matches(np.concatenate([state.v, state.i]), np.concatenate([want.v, want.i]), "float32", "final state")


@needs_numba
@pytest.mark.parametrize(("slowest", "steps"), LONG_RUNS)
def test_long_runs_gradients_on_the_compiled_path(slowest, steps, kernel_calls, monkeypatch):
    """The same ladders through torch on the CPU: the float32 compiled
    forward and adjoint give the voltages and every gradient of a loss over
    all steps within the float32 tolerance of float64."""
    torch = pytest.importorskip("torch")
    case = ladder_case(slowest, steps)
    got = _ladder_gradients(torch, monkeypatch, case, torch.float32)
    assert kernel_calls == ["scan", "scan_backward"]
    _assert_all_match(got, _ladder_gradients(torch, monkeypatch, case, torch.float64), "compiled")


def test_long_runs_on_the_loops(monkeypatch):
    """The loops that run without numba, on the absorption ladder (rates
    down to 1e-9): the NumPy loop over 100,000 steps, forward; torch's own
    loop over 10,000 (plain float32 is 2.5x the tolerance there already),
    forward and every gradient."""
    torch = pytest.importorskip("torch")
    case = ladder_case(1e-9, 100_000)
    single = _float32(case)
    vs, state = _numpy_loop(monkeypatch, single.xs, single.state, None, single.p, case.dt)
    want_vs, want = li_scan(case.xs, case.state, None, case.p, case.dt, backend="numpy")
    assert_matches(vs, want_vs, "float32", "voltages, NumPy loop")
    assert_matches(np.concatenate([state.v, state.i]), np.concatenate([want.v, want.i]), "float32", "final state")
    short = ladder_case(1e-9, 10_000)
    got = _ladder_gradients(torch, monkeypatch, short, torch.float32, compiled_loops=False)
    _assert_all_match(got, _ladder_gradients(torch, monkeypatch, short, torch.float64), "torch loop")


@needs_numba
@pytest.mark.parametrize("record_states", [False, True])
def test_torch_loop_is_bitwise_the_compiled_loops(record_states, monkeypatch):
    """torch's own float32 loop runs the compiled kernels' compensated
    operations in their order: voltages and every gradient (a loss over all
    steps and the final state) are bitwise the compiled loops'."""
    torch = pytest.importorskip("torch")
    loss = LOSSES["weighted, with the final state"]
    args = (torch.float32, True, record_states, loss)
    got = _torch_gradients(torch, monkeypatch, True, *args)
    want = _torch_gradients(torch, monkeypatch, False, *args)
    for name, g, w in zip(GRADIENT_NAMES, (got[0], *got[1]), (want[0], *want[1])):
        assert np.array_equal(_bits(g.numpy()), _bits(w.numpy())), f"{name}: not bitwise equal"


@pytest.mark.parametrize("path", ["numpy compiled", "numpy loop", "torch compiled", "torch loop"])
def test_a_non_finite_value_spoils_only_its_own_neuron(path, monkeypatch):
    """An inf or NaN input (or initial voltage) makes its neuron's float32
    voltages non-finite from that step on (TwoSum turns an inf into a NaN
    low part, which the next step carries), and leaves every other neuron's
    numbers bitwise as they are without it."""
    rng = np.random.default_rng(11)
    xs = rng.normal(size=(40, 5)).astype(np.float32)
    v0 = rng.normal(size=5).astype(np.float32)
    spoiled_xs, spoiled_v0 = xs.copy(), v0.copy()
    spoiled_xs[3, 1], spoiled_xs[7, 2], spoiled_v0[4] = np.inf, np.nan, -np.inf
    p = LIParameters(rng.uniform(1, 1000, 5).astype(np.float32), rng.uniform(1, 1000, 5).astype(np.float32), 0.25)
    library, loop_kind = path.split()
    if library == "torch":
        torch = pytest.importorskip("torch")
        from li_backends.torch import ops

        monkeypatch.setattr(ops, "BLOCKED", False)
        p = LIParameters(*(torch.from_numpy(q) if isinstance(q, np.ndarray) else q for q in p))
    if loop_kind == "loop":
        monkeypatch.setattr(compiled, "ENABLED", False)
        monkeypatch.setattr(numpy_backend, "BLOCKED", False)
    elif compiled.unavailable() is not None:
        pytest.skip(f"the compiled loops do not run here: {compiled.unavailable()}")

    def voltages(inputs, start):
        if library == "torch":
            inputs, start = torch.from_numpy(inputs), torch.from_numpy(start)
        vs, _ = li_scan(inputs, LIState(start, start * 0), p=p, backend=library)
        return np.asarray(vs)

    clean, spoiled = voltages(xs, v0), voltages(spoiled_xs, spoiled_v0)
    for neuron, first in ((1, 3), (2, 7), (4, 0)):
        assert np.all(np.isfinite(spoiled[:first, neuron])) and not np.any(np.isfinite(spoiled[first:, neuron]))
    assert np.array_equal(_bits(spoiled[:, [0, 3]]), _bits(clean[:, [0, 3]]))
