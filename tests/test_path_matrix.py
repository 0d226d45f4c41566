"""The path matrix: every internal path a scan takes on a CPU, crossed with
the parameter kinds, record on and off and (torch) which inputs require grad,
forward and adjoint.

Paths, each set through the switch the backends read (test ids name it):

- ``loop``: the loop of array operations (``LI_NUMBA=0``, blocked scan off);
- ``blocked``: the time-blocked scan (``compiled.ENABLED = False``; 72 steps
  of 39 neurons, which the blocking rule blocks);
- ``compiled-caller``: the compiled block function on the caller's thread,
  blocks of ``MAX_BLOCK = 16`` neurons;
- ``compiled-parallel``: the parallel kernels (``GRAIN`` lowered below the
  scan's size), blocks of 16: 39 neurons end in a short block of 7, a
  multiple of neither the block nor ``ALIGN``.

Each runs the ``numpy`` backend's scan and the ``torch`` backend's scan and
adjoint, the latter on both its paths (the eager ``autograd.Function`` and
the custom op that ``torch.compile`` sees). Promises checked: the compiled
forward has the NumPy loop's bits (docs/model.md), the parallel kernels the
caller-thread kernel's bits, torch's two paths the same bits; every path is
within its dtype's tolerance of the float64 reference (forward) and of
autograd through it (gradients). A spy checks that each path ran the code it
is named after."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import li_backends.numpy as numpy_backend
from li_backends import compiled
from li_core import LIParameters, LIState, li_scan, reference
from li_core.testing.tolerances import assert_matches

STEPS, BATCH, NEURONS, INPUTS, DT = 72, 3, 13, 5, 1e-3
#: MAX_BLOCK on the compiled paths: 3 x 13 = 39 neurons are blocks of 16, 16 and 7
BLOCK = 16
#: GRAIN on the parallel path: far below 72 x 39 neuron-steps
SMALL_GRAIN = 64
FIELDS = LIParameters._fields
#: the floats a parameter takes where it is not per neuron
FLOATS = {"tau_syn_inv": 170.0, "tau_mem_inv": 90.0, "v_leak": 0.0}
#: kind -> (the parameters given per neuron [N], the float v_leak where it is not)
KINDS = {
    "floats": ((), 0.0),
    "floats-leak": ((), -0.25),
    "syn_N": (("tau_syn_inv",), 0.0),
    "mem_N": (("tau_mem_inv",), 0.0),
    "leak_N": (("v_leak",), None),
    "rates_N": (("tau_syn_inv", "tau_mem_inv"), 0.0),  # per-neuron rates, v_leak the default float 0.0
    "rates_N-leak": (("tau_syn_inv", "tau_mem_inv"), -0.25),
    "all_N": (FIELDS, None),
}
try:
    import torch
except ImportError:  # the torch tests skip
    torch = None
PATHS = ["loop", "blocked", "compiled-caller", "compiled-parallel"]
RECORD = pytest.mark.parametrize("record", [False, True], ids=["final", "record"])


def _case() -> dict[str, np.ndarray]:
    """Every array of the matrix, float64: unweighted inputs ``xs`` for
    NumPy, inputs ``spikes`` and weights ``w`` for torch, the state and
    per-neuron parameters (``dt*tau_inv`` from 1e-3 to 1)."""
    rng = np.random.default_rng(31)
    return {
        "xs": rng.normal(size=(STEPS, BATCH, NEURONS)),
        "spikes": rng.normal(size=(STEPS, BATCH, INPUTS)),
        "w": rng.normal(0.0, 0.5, size=(NEURONS, INPUTS)),
        "v0": rng.normal(size=(BATCH, NEURONS)),
        "i0": rng.normal(size=(BATCH, NEURONS)),
        "tau_syn_inv": rng.uniform(1.0, 1000.0, NEURONS),
        "tau_mem_inv": rng.uniform(1.0, 1000.0, NEURONS),
        "v_leak": rng.normal(size=NEURONS),
    }


CASE = _case()


def parameters(kind: str, to_array) -> LIParameters:
    """The parameters of ``kind``: per-neuron ones through ``to_array``, the others floats."""
    per_neuron, leak = KINDS[kind]
    floats = FLOATS if leak is None else {**FLOATS, "v_leak": leak}
    return LIParameters(*(to_array(CASE[name]) if name in per_neuron else floats[name] for name in FIELDS))


def enter(path: str, patch: pytest.MonkeyPatch, backend_module) -> None:
    """Switch to ``path``; ``backend_module`` has the ``BLOCKED`` switch
    (``li_backends.numpy`` or ``li_backends.torch.ops``)."""
    if path.startswith("compiled") and compiled.unavailable() is not None:
        pytest.skip(f"the compiled loops do not run here: {compiled.unavailable()}")
    if path == "loop":
        patch.setenv("LI_NUMBA", "0")
        patch.setattr(backend_module, "BLOCKED", False)
    elif path == "blocked":
        patch.setattr(compiled, "ENABLED", False)
        patch.setattr(backend_module, "BLOCKED", True)
    else:
        patch.setattr(compiled, "MAX_BLOCK", BLOCK)
        if path == "compiled-parallel":
            patch.setattr(compiled, "GRAIN", SMALL_GRAIN)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """torch on one thread while the matrix runs: on arrays this small its
    intra-op thread barriers, not the arithmetic, take the time (no path
    depends on it: these arrays are one piece of the torch loop either way)."""
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def ran(monkeypatch) -> list[str]:
    """The implementations that ran: the compiled kernels by name (``scan``
    and ``scan_backward`` are the parallel kernels, ``*_block`` the
    caller-thread ones), ``blocked``/``blocked adjoint`` and the loops."""
    names: list[str] = []

    def spy(owner, attribute: str, label: str, wrap=lambda f: f) -> None:
        real = getattr(owner, attribute)
        monkeypatch.setattr(owner, attribute, wrap(lambda *a, **k: names.append(label) or real(*a, **k)))

    spy(numpy_backend.NumPyBackend, "loop", "loop", staticmethod)
    spy(numpy_backend, "blocked_scan", "blocked")
    if torch is not None:
        from li_backends.torch import loop, ops

        spy(loop, "forward", "loop")
        spy(loop, "backward", "loop adjoint")
        spy(ops, "blocked_scan", "blocked")
        spy(ops, "blocked_adjoint", "blocked adjoint")
    if compiled.unavailable() is None:
        kernels = compiled._kernels()

        class Kernels:  # what compiled._run looks up, recorded (the kernels' own globals stay as they are)
            def __getattr__(self, name):
                names.append(name)
                return getattr(kernels, name)

        monkeypatch.setattr(compiled, "_kernels", Kernels)
    return names


#: what each path runs: forward (both backends), adjoint (torch)
RUNS = {
    "loop": ({"loop"}, {"loop adjoint"}),
    "blocked": ({"blocked", "loop"}, {"blocked adjoint", "loop"}),
    "compiled-caller": ({"scan_block"}, {"scan_backward_block"}),
    "compiled-parallel": ({"scan"}, {"scan_backward"}),
}


def _bits(array) -> np.ndarray:
    """The bytes of an array: equal only where every value is bitwise equal."""
    return np.ascontiguousarray(array).view(np.uint8)


# --- numpy: the forward ------------------------------------------------------------------------------------


def _numpy_scan(kind: str, record: bool, dtype: str):
    def cast(a):
        return np.asarray(a, dtype=dtype)

    state = LIState(cast(CASE["v0"]), cast(CASE["i0"]))
    vs, final = li_scan(
        cast(CASE["xs"]), state, None, parameters(kind, cast), DT, backend="numpy", record_states=record
    )
    return vs, final.v, final.i


def _numpy_reference(kind: str, record: bool, dtype: str):
    """The float64 reference on the inputs rounded to ``dtype``."""

    def rounded(a):
        return np.asarray(a, dtype=dtype).astype(np.float64)

    state = LIState(rounded(CASE["v0"]), rounded(CASE["i0"]))
    vs, final = reference.scan(rounded(CASE["xs"]), state, None, parameters(kind, rounded), DT, record)
    return vs, final.v, final.i


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@RECORD
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", PATHS)
def test_numpy_scan(path, kind, record, dtype, ran, monkeypatch):
    """Each path within the tolerance of the reference; the compiled
    kernels (either) bit for bit the NumPy loop."""
    with monkeypatch.context() as patch:
        enter(path, patch, numpy_backend)
        got = _numpy_scan(kind, record, dtype)
    assert set(ran) == RUNS[path][0], f"{path} ran {sorted(set(ran))}"
    for name, value, want in zip(("voltages", "v", "i"), got, _numpy_reference(kind, record, dtype)):
        assert value.dtype == dtype
        assert_matches(value, want, dtype, f"numpy {path}, {kind}: {name}")
    if path.startswith("compiled"):
        with monkeypatch.context() as patch:
            enter("loop", patch, numpy_backend)
            loop = _numpy_scan(kind, record, dtype)
        for name, value, want in zip(("voltages", "v", "i"), got, loop):
            assert np.array_equal(_bits(value), _bits(want)), f"numpy {path}, {kind}: {name} not the loop's bits"


# --- torch: forward and adjoint ----------------------------------------------------------------------------

#: the torch leaves besides the tensor parameters
STATE_LEAVES = ("xs", "v0", "i0", "w")


def _leaves(kind: str, dtype: str) -> dict:
    """The leaves of the torch case in ``dtype``: inputs, state, weights and
    the parameters that are tensors in ``kind``."""
    per_neuron, _ = KINDS[kind]
    names = {"xs": "spikes", "v0": "v0", "i0": "i0", "w": "w", **{name: name for name in per_neuron}}
    return {leaf: torch.tensor(CASE[source]).to(getattr(torch, dtype)) for leaf, source in names.items()}


def _loss_weights(record: bool) -> dict:
    g = torch.Generator().manual_seed(32)
    state_shape = (STEPS, BATCH, NEURONS) if record else (BATCH, NEURONS)
    return {
        "vs": torch.randn(STEPS, BATCH, NEURONS, generator=g, dtype=torch.float64),
        "v": torch.randn(*state_shape, generator=g, dtype=torch.float64),
        "i": torch.randn(*state_shape, generator=g, dtype=torch.float64),
    }


LOSSES = ("weighted", "sum of voltages")


def _run(scan, leaves: dict, kind: str, wanted: tuple, record: bool, loss: str):
    """Outputs ``(vs, v, i)`` and the gradients of ``loss`` with respect to
    the leaves in ``wanted`` (fresh leaves: nothing accumulates). The
    weighted loss reads every output; the sum of the voltages arrives as a
    broadcast gradient, with none at the state."""
    leaf = {k: v.detach().clone().requires_grad_(k in wanted) for k, v in leaves.items()}
    p = parameters(kind, lambda _: None)._replace(**{k: v for k, v in leaf.items() if k in FIELDS})
    vs, state = scan(leaf["xs"], LIState(leaf["v0"], leaf["i0"]), leaf["w"], p, record)
    if loss == "weighted":
        weights = {k: w.to(vs.dtype) for k, w in _loss_weights(record).items()}
        total = (vs * weights["vs"]).sum() + (state.v * weights["v"]).sum() + (state.i * weights["i"]).sum()
    else:
        total = vs.sum()
    grads = torch.autograd.grad(total, [leaf[k] for k in wanted])
    return tuple(t.detach() for t in (vs, state.v, state.i)), dict(zip(wanted, grads))


def _torch_scan(xs, state, w, p, record):
    return li_scan(xs, state, w, p, DT, backend="torch", record_states=record)


def _reference_scan(xs, state, w, p, record):
    return reference.scan(xs, state, w, p, DT, record)


@functools.cache
def _torch_reference(kind: str, record: bool, dtype: str, loss: str):
    """Outputs and the gradients of every leaf through the float64 reference,
    on the leaves rounded to ``dtype`` (autograd through the reference loop)."""
    leaves = {k: v.to(torch.float64) for k, v in _leaves(kind, dtype).items()}
    return _run(_reference_scan, leaves, kind, tuple(leaves), record, loss)


def _combinations(names: tuple, dtype: str, path: str) -> list[tuple]:
    """Each leaf alone and all together; in float64 also all but one. Each
    flag the backward reads (``needs_input_grad`` per input, any parameter)
    is so set once with every other unset and unset once with every other
    set (all 127 combinations, on the default path, are in
    tests/test_torch_paths.py). The parallel kernels, whose flags are the
    caller-thread kernel's, take each leaf alone and all (their many thread
    starts are most of the matrix's time)."""
    alone = [(name,) for name in names]
    wide = dtype == "float64" and path != "compiled-parallel"
    all_but_one = [tuple(n for n in names if n != name) for name in names] if wide else []
    return alone + all_but_one + [names]


def _custom_op_path(patch: pytest.MonkeyPatch) -> None:
    """The backend takes the ``torch.compile`` path (the custom op) in eager mode."""
    import li_backends.torch as torch_backend

    patch.setattr(torch_backend, "tracing", lambda torch: True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@RECORD
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", PATHS)
def test_torch_scan_and_adjoint(path, kind, record, dtype, ran, monkeypatch):
    """On each path, for every combination of leaves that require grad (in
    float32: each alone and all), the eager path and the custom op give the
    same bits, and outputs and gradients are within the tolerance of the
    reference; for all leaves also with the loss ``vs.sum()``."""
    pytest.importorskip("torch")
    from li_backends.torch import ops

    leaves = _leaves(kind, dtype)
    names = tuple(leaves)
    with monkeypatch.context() as patch:
        enter(path, patch, ops)
        runs = [(wanted, "weighted") for wanted in _combinations(names, dtype, path)] + [(names, "sum of voltages")]
        for wanted, loss in runs:
            what = f"torch {path}, {kind}, d/d{wanted}, {loss} loss"
            eager = _run(_torch_scan, leaves, kind, wanted, record, loss)
            with monkeypatch.context() as op_path:
                _custom_op_path(op_path)
                op = _run(_torch_scan, leaves, kind, wanted, record, loss)
            want_outputs, want_grads = _torch_reference(kind, record, dtype, loss)
            for name, a, b, want in zip(("voltages", "v", "i"), eager[0], op[0], want_outputs):
                assert_matches(a.numpy(), want.numpy(), dtype, f"{what}: {name}")
                assert torch.equal(a, b), f"{what}: {name} differs between the eager path and the custom op"
            for name in wanted:
                for mode, got in (("eager", eager), ("custom op", op)):
                    assert_matches(got[1][name].numpy(), want_grads[name].numpy(), dtype, f"{what}, {mode}: d/d{name}")
                assert torch.equal(eager[1][name], op[1][name]), f"{what}: d/d{name} differs between the two paths"
    forward, adjoint = RUNS[path]
    assert set(ran) == forward | adjoint, f"{path} ran {sorted(set(ran))}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@RECORD
@pytest.mark.parametrize("kind", KINDS)
def test_parallel_kernels_give_the_caller_threads_bits(kind, record, dtype, monkeypatch):
    """Forward and adjoint of every leaf on the parallel kernels have the
    caller-thread kernel's bits (each neuron's numbers are the same either way)."""
    pytest.importorskip("torch")
    from li_backends.torch import ops

    leaves = _leaves(kind, dtype)
    results = []
    for path in ("compiled-caller", "compiled-parallel"):
        with monkeypatch.context() as patch:
            enter(path, patch, ops)
            results.append(_run(_torch_scan, leaves, kind, tuple(leaves), record, "weighted"))
    (caller, caller_grads), (parallel, parallel_grads) = results
    for name, a, b in zip(("voltages", "v", "i"), caller, parallel):
        assert torch.equal(a, b), f"{kind}: {name} of the parallel kernel differs from the caller-thread kernel's"
    for name in leaves:
        assert torch.equal(caller_grads[name], parallel_grads[name]), f"{kind}: d/d{name} differs"


def test_parallel_kernels_at_the_shipped_thresholds(ran, monkeypatch):
    """The shipped ``GRAIN``, ``MAX_BLOCK`` and ``ALIGN``, unpatched: 256
    steps of 2050 neurons are above the thread threshold, and 2050 is a
    multiple of neither ``ALIGN`` nor the block (on two threads, blocks of
    1040 and 1010). Per-neuron rates with ``v_leak = 0.0``: the NumPy
    forward has the loop's bits, the torch gradients match the float64
    adjoint of the reference."""
    if compiled.unavailable() is not None:
        pytest.skip(f"the compiled loops do not run here: {compiled.unavailable()}")
    torch = pytest.importorskip("torch")
    from li_core.testing.cases import random_case
    from li_core.testing.gradients import reference_gradients

    case = random_case(256, (2,), 1025, seed=33)
    case = case._replace(p=case.p._replace(v_leak=0.0))
    assert case.xs[0].size * case.xs.shape[0] >= 2 * compiled.GRAIN and case.xs[0].size % compiled.ALIGN
    vs, final = li_scan(case.xs, case.state, None, case.p, case.dt, backend="numpy")
    assert ran == ["scan"]
    with monkeypatch.context() as patch:
        enter("loop", patch, numpy_backend)
        want_vs, want = li_scan(case.xs, case.state, None, case.p, case.dt, backend="numpy")
    assert all(np.array_equal(_bits(g), _bits(w)) for g, w in ((vs, want_vs), (final.v, want.v), (final.i, want.i)))
    ran.clear()
    rng = np.random.default_rng(34)
    seed, final_seed = rng.normal(size=case.xs.shape), rng.normal(size=case.xs.shape[1:])
    names = ("inputs", "state.v", "state.i", "p.tau_syn_inv", "p.tau_mem_inv")
    leaves = [torch.tensor(a, requires_grad=True) for a in (case.xs, *case.state, *case.p[:2])]
    xs, v0, i0, syn, mem = leaves
    vs, final = li_scan(xs, LIState(v0, i0), None, LIParameters(syn, mem, 0.0), case.dt, backend="torch")
    loss = (vs * torch.tensor(seed)).sum() + (final.i * torch.tensor(final_seed)).sum()
    expected = reference_gradients(case, seed, final_seed)
    for name, got in zip(names, torch.autograd.grad(loss, leaves)):
        assert_matches(got.numpy(), expected[name], "float64", f"2050 neurons, d/d{name}")
    assert ran == ["scan", "scan_backward"]
