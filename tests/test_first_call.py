"""The first scans of a process, while the compiled loops load in the
background (li_backends.compiled.status): a small scan runs the NumPy or
torch loop meanwhile, with the kernels' numbers bit for bit; a large one
waits for the load; a failed load switches them off with its reason; a
process forked during the load scans without them; and the caller's thread
never imports numba itself.

In-process tests hold the load back by hand: the kernels are loaded (the
test process waits for them, tests/conftest.py), then the module's state is
set back to "loading" until the test releases it."""

import importlib.util
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import li_backends.numpy as numpy_backend
from li_backends import compiled
from li_core import LIParameters, LIState, li_scan
from li_core.blocked_scan import chunk_length

needs_numba = pytest.mark.skipif(
    compiled.unavailable() is not None, reason=f"the compiled loops do not run here: {compiled.unavailable()}"
)


def test_the_compiled_loops_load_wherever_numba_imports():
    """A load that fails switches the compiled loops off, and every test that
    needs them then skips: where numba is installed they must load (the
    warm-up calling a kernel with the wrong arguments, say, is a failure
    here, not a thousand skips)."""
    if importlib.util.find_spec("numba") is None:
        pytest.skip("numba is not installed")
    assert compiled.unavailable() is None


#: few neurons over many steps: the blocked scan's case where the compiled
#: loops are off (so that running it while they load would show), yet small
#: enough for the loop meanwhile
STEPS, NEURONS = 1000, 2


def _bits(array):
    """The bytes of an array: equal only where every value is bitwise equal."""
    return np.ascontiguousarray(array).view(np.uint8)


def _fresh(code, *args):
    """``code`` run with ``args`` in a fresh process that loads the compiled
    loops as a user's would (none of the test session's switches)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LI_NUMBA", "LI_NUMBA_BACKGROUND")}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture
def loading(monkeypatch):
    """The kernels are "loading" until the test sets the returned event (they
    are in fact loaded); records which algorithm each scan ran in
    ``loading.ran``."""
    if compiled.unavailable() is not None:
        pytest.skip(f"the compiled loops do not run here: {compiled.unavailable()}")
    loaded = threading.Event()
    monkeypatch.setattr(compiled, "_loaded", loaded)
    monkeypatch.setattr(compiled, "_loader", threading.current_thread())  # started: no new load
    monkeypatch.delenv("LI_NUMBA_BACKGROUND", raising=False)
    ran = []

    def spy(owner, attribute, label, wrap=lambda f: f):
        real = getattr(owner, attribute)
        monkeypatch.setattr(owner, attribute, wrap(lambda *a, **k: ran.append(label) or real(*a, **k)))

    spy(numpy_backend.NumPyBackend, "loop", "loop", staticmethod)
    spy(numpy_backend, "blocked_scan", "blocked")
    spy(compiled, "_run", "compiled")
    loaded.ran = ran
    loaded.spy = spy
    return loaded


#: the kinds of parameters (each its own kernel): numbers, with and without
#: ``v_leak``, and per-neuron arrays
PARAMETERS = {
    "floats": lambda dtype: LIParameters(),
    "floats with v_leak": lambda dtype: LIParameters(170.0, 90.0, -0.25),
    "per neuron": lambda dtype: LIParameters(
        *(
            np.random.default_rng(3).uniform(low, high, NEURONS).astype(dtype)
            for low, high in ((50, 450), (50, 450), (-1, 1))
        )
    ),
}


@pytest.mark.parametrize("kind", PARAMETERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_while_loading_a_small_numpy_scan_runs_the_loop_with_the_compiled_numbers(loading, dtype, kind):
    assert chunk_length(STEPS, NEURONS) > 0 and compiled.status(STEPS, NEURONS) == "loop"
    xs = np.random.default_rng(1).normal(size=(STEPS, NEURONS)).astype(dtype)
    state = LIState(*np.random.default_rng(2).normal(size=(2, NEURONS)).astype(dtype))
    for record in (False, True):
        loading.ran.clear()
        loading.clear()
        got = li_scan(xs, state, p=PARAMETERS[kind](dtype), backend="numpy", record_states=record)
        assert loading.ran == ["loop"]
        loading.set()
        want = li_scan(xs, state, p=PARAMETERS[kind](dtype), backend="numpy", record_states=record)
        assert loading.ran == ["loop", "compiled"]
        for g, w in zip((got[0], *got[1]), (want[0], *want[1])):
            assert np.array_equal(_bits(g), _bits(w))


def _torch_run(torch, kind, dtype, record):
    """Outputs and gradients (inputs, state, parameter arrays) of a torch
    scan of ``[STEPS, NEURONS]``."""
    rng = np.random.default_rng(1)
    xs, v0, i0 = (torch.from_numpy(rng.normal(size=(STEPS, NEURONS)).astype(dtype)) for _ in range(3))
    p = PARAMETERS[kind](dtype)
    leaves = [t.requires_grad_() for t in (xs, v0[0], i0[0])]
    if kind == "per neuron":
        p = LIParameters(*(torch.from_numpy(r).requires_grad_() for r in p))
        leaves += list(p)
    vs, final = li_scan(leaves[0], LIState(*leaves[1:3]), p=p, backend="torch", record_states=record)
    (vs.sum() + final.i.square().sum() + final.v.sum()).backward()
    return [t.detach().numpy() for t in (vs, final.v, final.i, *(leaf.grad for leaf in leaves))]


@pytest.mark.parametrize("record", [False, True], ids=["final", "record"])
@pytest.mark.parametrize("kind", PARAMETERS)
def test_while_loading_a_small_torch_scan_and_its_backward_run_the_loop_with_the_compiled_numbers(
    loading, kind, record
):
    """float32, whose torch loop runs the kernels' compensated arithmetic."""
    torch = pytest.importorskip("torch")
    from li_backends.torch import loop, ops

    loading.spy(loop, "forward", "loop")
    loading.spy(loop, "backward", "loop adjoint")
    loading.spy(ops, "blocked_scan", "blocked")
    loading.spy(ops, "blocked_adjoint", "blocked adjoint")
    got = _torch_run(torch, kind, "float32", record)
    assert loading.ran == ["loop", "loop adjoint"]
    loading.set()
    want = _torch_run(torch, kind, "float32", record)
    assert loading.ran == ["loop", "loop adjoint", "compiled", "compiled"]
    for g, w in zip(got, want):
        assert np.array_equal(_bits(g), _bits(w))


def test_a_float64_torch_scan_waits_for_the_load(loading):
    """torch's float64 loop (lerp) is not the kernels' arithmetic bit for
    bit: even a small scan waits and runs compiled."""
    torch = pytest.importorskip("torch")
    threading.Timer(0.1, lambda: loading.ran.append("loaded") or loading.set()).start()
    _torch_run(torch, "floats", "float64", False)
    assert loading.ran == ["loaded", "compiled", "compiled"]


def test_a_large_scan_waits_for_the_load_and_runs_compiled(loading, monkeypatch):
    """A scan over :data:`~li_backends.compiled.LOOP_WORK` waits: the
    compiled kernels run after the load has finished, never the loop."""
    monkeypatch.setattr(compiled, "LOOP_WORK", STEPS * (NEURONS + compiled.STEP_WORK) - 1)
    assert compiled.status(STEPS - 1, NEURONS) == "loop"

    def finish():
        loading.ran.append("loaded")
        loading.set()

    timer = threading.Timer(0.2, finish)
    timer.start()
    li_scan(np.ones((STEPS, NEURONS)), backend="numpy")
    timer.join()
    assert loading.ran == ["loaded", "compiled"]
    assert compiled.status(STEPS, NEURONS) == "compiled"


def test_waiting_for_the_load_everywhere_with_the_switch(loading, monkeypatch):
    """``LI_NUMBA_BACKGROUND=0``: even a tiny scan waits and runs compiled."""
    monkeypatch.setenv("LI_NUMBA_BACKGROUND", "0")
    threading.Timer(0.1, lambda: loading.ran.append("loaded") or loading.set()).start()
    li_scan(np.ones((2, 1)), backend="numpy")
    assert loading.ran == ["loaded", "compiled"]


@pytest.fixture
def fresh_load(monkeypatch):
    """The module as in a new process: nothing loaded, nothing started."""
    monkeypatch.setattr(compiled, "_loaded", threading.Event())
    monkeypatch.setattr(compiled, "_loader", None)
    monkeypatch.setattr(compiled, "_load_error", None)


@pytest.mark.parametrize("background", ["1", "0"])
def test_a_failed_load_switches_them_off_with_its_reason(fresh_load, monkeypatch, background):
    """A load that raises (here: the first kernel) leaves the status "off",
    says why, and the scans run the loops of array operations."""
    monkeypatch.setenv("LI_NUMBA_BACKGROUND", background)

    def broken():
        raise OSError("the cache is unreadable")

    monkeypatch.setattr(compiled, "_warm_up", broken)
    xs = np.random.default_rng(0).normal(size=(30, 4))
    vs, _ = li_scan(xs, backend="numpy")  # loading (and failing) meanwhile
    reason = compiled.unavailable()
    assert reason == "the compiled kernels do not load (OSError: the cache is unreadable)"
    assert compiled.status(30, 4) == "off" and reason in compiled.notes("NumPy arrays")
    want, _ = li_scan(xs, backend="numpy")
    assert np.array_equal(_bits(vs), _bits(want))


def test_the_loader_thread_is_not_a_daemon(fresh_load, monkeypatch):
    monkeypatch.setattr(compiled, "_load", lambda: compiled._loaded.set())
    assert compiled.status(1, 1) in ("loop", "compiled")
    compiled._loader.join()
    assert compiled._loader.name == "li-compiled-loader" and not compiled._loader.daemon


#: a fresh process whose ``import numba`` waits at a gate (before running
#: numba's module, where no global lock is held) until released: the first
#: scan must return while numba is still held there, imported by the
#: loader's thread only
GATED = """
import importlib.machinery, os, sys, threading
gate, importers = threading.Event(), []

class Gate:
    def find_spec(self, name, path=None, target=None):
        if name != "numba":
            return None
        importers.append(threading.current_thread().name)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module
        spec.loader.exec_module = lambda module: (gate.wait(60), run(module))
        return spec

sys.meta_path.insert(0, Gate())
import numpy as np
from li_backends import compiled
from li_core import li_scan

xs = np.random.default_rng(0).normal(size=(4, 2, 8)).astype(np.float32)
first = li_scan(xs, backend="numpy")[0]
print("loading after the first scan:", not compiled._loaded.is_set())
if sys.argv[1] == "fork":
    pid = os.fork()
    if pid == 0:
        off = compiled.status(4, 16) == "off" and "forked" in compiled.unavailable()
        os._exit(0 if off and np.array_equal(li_scan(xs, backend="numpy")[0], first) else 3)
    print("child:", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
gate.set()
print("loaded:", compiled.unavailable())
print("numba imported by:", importers)
print("same numbers:", np.array_equal(li_scan(xs, backend="numpy")[0].view(np.uint32), first.view(np.uint32)))
"""


@needs_numba
def test_a_fresh_process_scans_before_numba_has_imported():
    done = _fresh(GATED, "scan")
    assert done.stdout.splitlines() == [
        "loading after the first scan: True",
        "loaded: None",
        "numba imported by: ['li-compiled-loader']",
        "same numbers: True",
    ], done.stderr[-3000:]


@needs_numba
@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_process_forked_during_the_load_scans_without_them():
    """The child of a fork while the loader runs does not wait for a loader
    it does not have, nor use numba: it runs the loop, same numbers."""
    done = _fresh(GATED, "fork")
    assert done.stdout.splitlines()[:2] == ["loading after the first scan: True", "child: 0"], done.stderr[-3000:]


#: after the load, the scans the backends run on float parameters (NumPy,
#: torch forward and backward, float32 and float64) load no further kernel
WARMED = """
import numpy as np
from li_backends import compiled
from li_backends.compiled import kernels
from li_core import li_scan

assert compiled.unavailable() is None
dispatchers = [kernels.scan_block, kernels.scan_backward_block]
before = [list(d.signatures) for d in dispatchers]
for dtype in ("float32", "float64"):
    li_scan(np.ones((3, 2, 4), dtype), backend="numpy")
    try:
        import torch
    except ImportError:
        continue
    xs = torch.ones((3, 2, 4), dtype=getattr(torch, dtype), requires_grad=True)
    vs, final = li_scan(xs, backend="torch")
    (vs.sum() + final.i.sum()).backward()
print([list(d.signatures) for d in dispatchers] == before, sum(len(b) for b in before))
"""


@needs_numba
def test_the_load_takes_the_kernels_the_first_scans_run():
    done = _fresh(WARMED)
    assert done.stdout.split() == ["True", "4"], done.stderr[-3000:]
