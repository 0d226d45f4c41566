"""The conformance suite has teeth: each deliberately wrong backend below makes
it fail, at the check that names the defect, and a correct one passes."""

import numpy as np
import pytest

from li_backends.numpy import NumPyBackend
from li_core import LIParameters, LIState
from li_core.testing.runner import run_conformance


class Correct(NumPyBackend):
    name = "correct"


class DelayedInput(Correct):
    """The pre-2022 ordering: the voltage sees the current before the input jump."""

    name = "delayed-input"

    def feed_forward_step(self, x, state, p, dt):
        v_new = state.v + dt * p.tau_mem_inv * ((p.v_leak - state.v) + state.i)
        j = state.i + x
        return v_new, LIState(v_new.copy(), j - dt * p.tau_syn_inv * j)

    def scan(self, xs, state, w, p, dt, record_states):
        if w is not None:
            xs = xs @ w.T
        vs, is_ = [], []
        for t in range(xs.shape[0]):
            v, state = self.feed_forward_step(xs[t], state, p, dt)
            vs.append(v)
            is_.append(state.i)
        out = np.stack(vs) if vs else np.zeros((0, *state.v.shape), xs.dtype)
        if record_states:
            return out, LIState(out.copy(), np.stack(is_) if is_ else out.copy())
        return out, LIState(state.v.copy(), state.i.copy())


class IgnoresLeak(Correct):
    name = "ignores-leak"

    def scan(self, xs, state, w, p, dt, record_states):
        return super().scan(xs, state, w, p._replace(v_leak=0.0), dt, record_states)


class NoPerNeuronBroadcast(Correct):
    """Uses the first neuron's parameters for every neuron."""

    name = "no-broadcast"

    def scan(self, xs, state, w, p, dt, record_states):
        first = LIParameters(*(v if isinstance(v, float) else float(np.ravel(v)[0]) for v in p))
        return super().scan(xs, state, w, first, dt, record_states)


class MutatesInput(Correct):
    name = "mutates-input"

    def scan(self, xs, state, w, p, dt, record_states):
        vs, final = super().scan(xs, state, w, p, dt, record_states)
        if state.i.flags.writeable and not record_states:
            state.i[...] = final.i  # carries the state by overwriting the caller's
        return vs, final


class AliasesState(Correct):
    name = "aliases-state"

    def feed_forward_step(self, x, state, p, dt):
        v, new = super().feed_forward_step(x, state, p, dt)
        return v, LIState(v, new.i)


class WrongDtype(Correct):
    name = "wrong-dtype"

    def scan(self, xs, state, w, p, dt, record_states):
        vs, final = super().scan(xs, state, w, p, dt, record_states)
        return vs.astype(np.float64), final


class DropsLastStep(Correct):
    """Runs T-1 steps and repeats the last voltage to keep the shape."""

    name = "drops-last-step"

    def scan(self, xs, state, w, p, dt, record_states):
        if xs.shape[0] < 2:
            return super().scan(xs, state, w, p, dt, record_states)
        vs, final = super().scan(xs[:-1], state, w, p, dt, record_states)
        vs = np.concatenate([vs, vs[-1:]])
        if record_states:
            final = LIState(vs.copy(), np.concatenate([final.i, final.i[-1:]]))
        return vs, final


def run(backend, capsys, dtypes=("float32",)):
    code = run_conformance([backend], dtypes=dtypes, pytest_args=["-q"])
    return code, capsys.readouterr().out


def test_a_correct_backend_passes(capsys):
    code, out = run(Correct(), capsys, dtypes=("float32", "float64"))
    assert code == 0, out
    assert " passed" in out and "failed" not in out


@pytest.mark.parametrize(
    "backend, caught_by",
    [
        (DelayedInput(), "test_known_values_constant_input"),
        (IgnoresLeak(), "test_scan_matches_reference"),
        (NoPerNeuronBroadcast(), "test_scan_matches_reference"),
        (MutatesInput(), "test_inputs_are_not_mutated"),
        (AliasesState(), "test_outputs_do_not_alias"),
        (WrongDtype(), "test_results_keep_library_dtype_and_device"),
        (DropsLastStep(), "test_scan_matches_reference"),
    ],
    ids=lambda v: v.name if hasattr(v, "name") else v,
)
def test_each_planted_defect_is_caught(backend, caught_by, capsys):
    code, out = run(backend, capsys)
    assert code == 1, out
    assert f"FAILED li_core/testing/conformance.py::{caught_by}[{backend.name}-float32-cpu]" in out, out


def test_unraised_errors_are_caught(capsys, monkeypatch):
    """With the core's argument checks switched off, bad input gets through
    (or fails in the wrong way) and the suite says so."""
    import li_core.api
    from li_core.validation import Call

    def unchecked(argument, x, state, weights, p, dt, *, time_axis, weights_required=False):
        from li_core.arrays import dtype_name, library_name

        shape = tuple(x.shape)[1:] if time_axis and x.ndim else tuple(x.shape)
        if weights is not None and hasattr(weights, "shape") and len(weights.shape) == 2:
            shape = (*shape[:-1], weights.shape[0])
        return Call(x, state, weights, p, dt, argument, library_name(x) or "numpy", dtype_name(x.dtype), shape)

    monkeypatch.setattr(li_core.api, "check_call", unchecked)
    code, out = run(Correct(), capsys)
    assert code == 1
    assert "FAILED li_core/testing/conformance.py::test_bad_input_raises_before_any_work[correct-float32-cpu]" in out
