"""The conformance suite has teeth: each deliberately wrong backend below (the
NumPy backend with one thing changed) makes it fail, at the check that names
the defect, and the correct one passes every check. Outcomes are read from
pytest's reports by check name, so this works from any directory."""

import numpy as np
import pytest

from li_backends.numpy import NumPyBackend
from li_core import LIParameters, LIState
from li_core.testing.runner import run_conformance


class Outcomes:
    """A pytest plugin recording ``check[target]`` names by outcome."""

    def __init__(self) -> None:
        self.failed: set[str] = set()
        self.passed: set[str] = set()

    def pytest_runtest_logreport(self, report) -> None:
        name = report.nodeid.rpartition("::")[2]
        if report.failed:
            self.failed.add(name)
        elif report.passed and report.when == "call":
            self.passed.add(name)


def run(backend, capsys, dtypes=("float32",)) -> tuple[int, Outcomes, str]:
    """The suite on ``backend``; without the long runs for a :class:`StepLoop`
    (a loop of single steps, each a call of its own, cannot carry a rounding
    error from step to step: in float32 it is the plain recurrence that the
    long runs fail, as the last test here shows, and it would take them
    10^6 Python-level steps)."""
    outcomes = Outcomes()
    args = ["-q", "-k", "not long_run"] if isinstance(backend, StepLoop) else ["-q"]
    code = run_conformance([backend], dtypes=dtypes, pytest_args=args, plugins=[outcomes])
    return code, outcomes, capsys.readouterr().out


class Correct(NumPyBackend):
    name = "correct"


class StepLoop(Correct):
    """Scans by looping over its own ``feed_forward_step`` (correct as such:
    the defects built on it change only the step)."""

    def scan(self, xs, state, w, p, dt, record_states):
        if w is not None:
            xs = xs @ w.T
        vs, currents = [], []
        for t in range(xs.shape[0]):
            v, state = self.feed_forward_step(xs[t], state, p, dt)
            vs.append(v)
            currents.append(state.i)
        if not vs:
            empty = np.zeros((0, *state.v.shape), xs.dtype)
            final = LIState(empty.copy(), empty.copy()) if record_states else LIState(state.v.copy(), state.i.copy())
            return empty, final
        out = np.stack(vs)
        if record_states:
            return out, LIState(out.copy(), np.stack(currents))
        return out, LIState(state.v.copy(), state.i.copy())


# --- defects of the model ---------------------------------------------------------------------


class DelayedInput(StepLoop):
    """The pre-2022 ordering: the voltage sees the current before the input jump."""

    name = "delayed-input"

    def feed_forward_step(self, x, state, p, dt):
        v_new = state.v + dt * p.tau_mem_inv * ((p.v_leak - state.v) + state.i)
        j = state.i + x
        return v_new, LIState(v_new.copy(), j - dt * p.tau_syn_inv * j)


class IgnoresLeak(Correct):
    name = "ignores-leak"

    def scan(self, xs, state, w, p, dt, record_states):
        return super().scan(xs, state, w, p._replace(v_leak=0.0), dt, record_states)


class IgnoresDt(Correct):
    """Always steps by the default dt = 1 ms."""

    name = "ignores-dt"

    def feed_forward_step(self, x, state, p, dt):
        return super().feed_forward_step(x, state, p, 1e-3)

    def scan(self, xs, state, w, p, dt, record_states):
        return super().scan(xs, state, w, p, 1e-3, record_states)


class NoPerNeuronBroadcast(Correct):
    """Uses the first neuron's parameters for every neuron."""

    name = "no-broadcast"

    def scan(self, xs, state, w, p, dt, record_states):
        first = LIParameters(*(v if isinstance(v, float) else float(np.ravel(v)[0]) for v in p))
        return super().scan(xs, state, w, first, dt, record_states)


class StepsTakeFirstRowParameters(Correct):
    """Its steps (not its scan) take parameters of more than one dimension,
    ``[B, 1]`` or full-shape, from their first row."""

    name = "steps-first-row"

    def feed_forward_step(self, x, state, p, dt):
        first = (q if isinstance(q, float) or q.ndim < 2 else q.reshape(-1, q.shape[-1])[0] for q in p)
        return super().feed_forward_step(x, state, LIParameters(*first), dt)


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


class EmptyScanForgetsCurrent(Correct):
    """``T = 0`` returns a zero current instead of the initial one."""

    name = "empty-scan-zero-current"

    def scan(self, xs, state, w, p, dt, record_states):
        vs, final = super().scan(xs, state, w, p, dt, record_states)
        if xs.shape[0] == 0 and not record_states:
            final = LIState(final.v, np.zeros_like(final.i))
        return vs, final


# --- defects of numerics -----------------------------------------------------------------------


class DecayForm(StepLoop):
    """The coefficient form ``c*v + a*(j + v_leak)``, ``i = b*j``, whose
    ``c = 1 - a`` and ``b = 1 - d`` are rounded near 1."""

    name = "decay-form"

    def feed_forward_step(self, x, state, p, dt):
        a = dt * p.tau_mem_inv
        b, c = 1 - dt * p.tau_syn_inv, 1 - a
        j = state.i + x
        v_new = c * state.v + a * (j + p.v_leak)
        return v_new, LIState(v_new.copy(), b * j)


class NativeHalf(StepLoop):
    """Computes float16 in float16, carrying the state in it between steps."""

    name = "native-half"

    def feed_forward_step(self, x, state, p, dt):
        j = state.i + x.astype(state.i.dtype)  # the weighted step projects in float32
        v_new = state.v + dt * p.tau_mem_inv * ((p.v_leak - state.v) + j)
        return v_new, LIState(v_new.copy(), j - dt * p.tau_syn_inv * j)


# --- defects of the API contract ---------------------------------------------------------------


class MutatesInput(Correct):
    name = "mutates-input"

    def scan(self, xs, state, w, p, dt, record_states):
        vs, final = super().scan(xs, state, w, p, dt, record_states)
        if state.i.flags.writeable and not record_states:
            state.i[...] = final.i  # carries the state by overwriting the caller's
        return vs, final


class AliasesState(Correct):
    """The feed-forward step returns its voltage as the new state's ``v``."""

    name = "aliases-state"

    def feed_forward_step(self, x, state, p, dt):
        v, new = super().feed_forward_step(x, state, p, dt)
        return v, LIState(v, new.i)


class WeightedStepAliasesState(Correct):
    """Only the weighted step returns the new state's ``v`` as the voltage."""

    name = "weighted-step-aliases"

    def step(self, x, state, w, p, dt):
        _, new = super().step(x, state, w, p, dt)
        return new.v, new


class WrongDtype(Correct):
    name = "wrong-dtype"

    def scan(self, xs, state, w, p, dt, record_states):
        vs, final = super().scan(xs, state, w, p, dt, record_states)
        return vs.astype(np.float64), final


class PythonFloatsAsFloat64(Correct):
    """Its steps turn Python-float parameters into float64 NumPy scalars,
    which promote float32 results to float64."""

    name = "float-parameters-float64"

    def feed_forward_step(self, x, state, p, dt):
        promoted = (np.float64(q) if isinstance(q, float) else q for q in p)
        return super().feed_forward_step(x, state, LIParameters(*promoted), dt)


class EmptyScanInFloat64(Correct):
    """``T = 0`` returns a float64 empty sequence."""

    name = "empty-scan-float64"

    def scan(self, xs, state, w, p, dt, record_states):
        if xs.shape[0] > 0:
            return super().scan(xs, state, w, p, dt, record_states)
        empty = np.zeros((0, *state.v.shape))
        final = LIState(empty.copy(), empty.copy()) if record_states else LIState(state.v.copy(), state.i.copy())
        return empty, final


DEFECTS = [
    (DelayedInput(), "float32", "test_known_values_constant_input"),
    (IgnoresLeak(), "float32", "test_scan_matches_reference"),
    (IgnoresDt(), "float32", "test_exact_values_per_neuron_at_several_dt"),
    (NoPerNeuronBroadcast(), "float32", "test_scan_matches_reference"),
    (StepsTakeFirstRowParameters(), "float32", "test_parameters_and_state_broadcast"),
    (DropsLastStep(), "float32", "test_scan_matches_reference"),
    (EmptyScanForgetsCurrent(), "float32", "test_zero_steps_return_initial_state"),
    (DecayForm(), "float32", "test_slow_neurons_match_reference"),
    (NativeHalf(), "float16", "test_half_precision_is_computed_in_float32"),
    (MutatesInput(), "float32", "test_inputs_are_not_mutated"),
    (AliasesState(), "float32", "test_outputs_do_not_alias"),
    (WeightedStepAliasesState(), "float32", "test_outputs_do_not_alias"),
    (WrongDtype(), "float32", "test_results_keep_library_dtype_and_device"),
    (PythonFloatsAsFloat64(), "float32", "test_results_keep_library_dtype_and_device"),
    (EmptyScanInFloat64(), "float32", "test_results_keep_library_dtype_and_device"),
]


def test_a_correct_backend_passes(capsys):
    code, outcomes, out = run(Correct(), capsys, dtypes=("float16", "float32", "float64"))
    assert code == 0, out
    assert not outcomes.failed, out
    for check in ("test_slow_neurons_match_reference", "test_exact_values_per_neuron_at_several_dt"):
        for dtype in ("float16", "float32", "float64"):
            assert f"{check}[correct-{dtype}-cpu]" in outcomes.passed, out
    assert "test_half_precision_is_computed_in_float32[correct-float16-cpu]" in outcomes.passed, out


def test_the_step_loop_the_defects_build_on_is_correct(capsys):
    code, outcomes, out = run(StepLoop(), capsys, dtypes=("float32", "float64"))
    assert code == 0 and not outcomes.failed, out


@pytest.mark.parametrize(("backend", "dtype", "caught_by"), DEFECTS, ids=[backend.name for backend, _, _ in DEFECTS])
def test_each_planted_defect_is_caught(backend, dtype, caught_by, capsys):
    code, outcomes, out = run(backend, capsys, dtypes=(dtype,))
    assert code == 1, out
    assert f"{caught_by}[{backend.name}-{dtype}-cpu]" in outcomes.failed, out


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
    code, outcomes, out = run(Correct(), capsys)
    assert code == 1
    assert "test_bad_input_raises_before_any_work[correct-float32-cpu]" in outcomes.failed, out


class ScalarLeakFirstRate(Correct):
    """Where ``v_leak`` is the float 0.0 (a scan without a leak term), every
    neuron takes the first neuron's ``tau_mem_inv``; no other check sees it."""

    name = "scalar-leak-first-rate"

    def scan(self, xs, state, w, p, dt, record_states):
        if isinstance(p.v_leak, float) and p.v_leak == 0.0 and not isinstance(p.tau_mem_inv, float):
            p = p._replace(tau_mem_inv=float(np.ravel(p.tau_mem_inv)[0]))
        return super().scan(xs, state, w, p, dt, record_states)


def test_per_neuron_rates_beside_a_scalar_leak_are_checked(capsys):
    code, outcomes, out = run(ScalarLeakFirstRate(), capsys)
    assert code == 1, out
    assert outcomes.failed == {"test_per_neuron_rates_with_a_scalar_leak[scalar-leak-first-rate-float32-cpu]"}, out


class PlainFloat32(Correct):
    """Runs the compiled loop without carrying its rounding error: the plain
    float32 recurrence that every fast path ran before, which rounds a slow
    neuron's small changes away."""

    name = "plain-float32"

    def scan(self, *args):
        from li_backends import compiled

        saved = compiled.compensated
        compiled.compensated = lambda dtype: False
        try:
            return super().scan(*args)
        finally:
            compiled.compensated = saved


def test_the_long_runs_catch_a_plain_float32_loop(capsys):
    """Both long runs (rates to 1e-6 over 10^6 steps, absorption) fail the
    plain float32 loop and pass the compensated one; float64 stays plain and
    passes."""
    from li_backends import compiled

    if compiled.unavailable():
        pytest.skip(f"the planted defect is in the compiled loop, which does not run here: {compiled.unavailable()}")
    outcomes = Outcomes()
    args = ["-q", "-k", "test_long_runs_of_slow_neurons_match_reference"]
    code = run_conformance(
        [PlainFloat32(), Correct()], dtypes=("float32", "float64"), pytest_args=args, plugins=[outcomes]
    )
    out = capsys.readouterr().out
    assert code == 1, out
    for run in ("rates to 1e-6", "absorption"):
        assert f"test_long_runs_of_slow_neurons_match_reference[plain-float32-float32-cpu-{run}]" in outcomes.failed, (
            out
        )
        for backend, dtype in (("plain-float32", "float64"), ("correct", "float32"), ("correct", "float64")):
            assert f"test_long_runs_of_slow_neurons_match_reference[{backend}-{dtype}-cpu-{run}]" in outcomes.passed, (
                out
            )
