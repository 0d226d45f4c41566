"""Every built-in backend runs the shipped conformance suite (unavailable
ones, e.g. cupy without a GPU, are skipped with their reason). Third-party
backends run it through ``li check NAME``. Below it, the suite's own
yardsticks are checked: the float64 reference against values computed with
40 significant digits, the suite's float64 adjoint against autograd
through the reference, and the float64 yardstick of the long runs against
both."""

import numpy as np
import pytest

from li_core import LIParameters, LIState
from li_core import reference as ref
from li_core.backend import DISTRIBUTION
from li_core.registry import registry
from li_core.testing.cases import ladder_case, random_case, slow_case
from li_core.testing.conformance import *  # noqa: F403  (collects the suite's tests here)
from li_core.testing.conformance import parametrize_targets
from li_core.testing.exact import exact_scan
from li_core.testing.gradients import GRADIENT_NAMES, reference_gradients
from li_core.testing.long_runs import long_gradients, long_scan
from li_core.testing.tolerances import assert_matches


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        built_in = [name for name, entry in registry.backends.items() if entry.distribution == DISTRIBUTION]
        parametrize_targets(metafunc, built_in)


def test_float64_reference_is_exact_for_slow_neurons():
    """The yardstick over 20,000 steps with dt*tau_inv down to 1e-4, against
    the same steps carried with 40 significant digits."""
    case = slow_case(1e-4)
    voltages, states = ref.scan(case.xs, case.state, None, case.p, case.dt, True)
    exact_v, exact_i = exact_scan(case.xs, case.state, case.p, case.dt, digits=40)
    assert_matches(voltages, exact_v, "float64", "float64 reference, slow neurons: v")
    assert_matches(states.i, exact_i, "float64", "float64 reference, slow neurons: i")


def test_exact_scan_reproduces_norses_known_values():
    vs, currents = exact_scan(np.ones((10, 1)), LIState(np.zeros(1), np.zeros(1)), LIParameters(), 1e-3)
    np.testing.assert_allclose(vs[:, 0], CONSTANT_V, rtol=1e-15)  # noqa: F405 - from the conformance suite's star import above
    np.testing.assert_allclose(currents[:, 0], CONSTANT_I, rtol=1e-15)  # noqa: F405 - from the conformance suite's star import above


@pytest.mark.parametrize(
    "case",
    [
        random_case(30, (2,), 4, inputs=3, seed=20),
        random_case(25, (3, 2), 5, seed=1)._replace(
            p=LIParameters(np.full((2, 1), 150.0), np.linspace(50.0, 400.0, 5), np.full((3, 2, 5), 0.5))
        ),
        slow_case(1e-2),
    ],
    ids=["weighted", "broadcast parameters", "slow"],
)
def test_reference_adjoint_equals_autograd_through_the_reference(case):
    """The suite's gradient yardstick is the derivative of the reference."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    seed = rng.normal(size=(case.xs.shape[0], *np.shape(case.state.v)))
    final_seed = rng.normal(size=np.shape(case.state.v))
    names = [name for name in GRADIENT_NAMES if name != "input_weights" or case.weights is not None]
    weights = () if case.weights is None else (case.weights,)
    leaves = [
        torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)
        for a in (case.xs, *weights, case.state.v, case.state.i, *case.p)
    ]
    xs, *rest = leaves
    w, (v0, i0, *p) = (rest[0], rest[1:]) if weights else (None, rest)
    vs, state = ref.scan(xs, LIState(v0, i0), w, LIParameters(*p), case.dt, False)
    loss = (vs * torch.tensor(seed)).sum() + (state.i * torch.tensor(final_seed)).sum()
    want = torch.autograd.grad(loss, leaves)
    got = reference_gradients(case, seed, final_seed)
    for name, gradient in zip(names, want):
        assert_matches(got[name], gradient.numpy(), "float64", f"adjoint gradient w.r.t. {name}")


@pytest.mark.parametrize("numba", ["on", "off"])
@pytest.mark.parametrize(
    "case",
    [
        ladder_case(1e-4),
        random_case(300, (3, 2), 5, seed=4)._replace(
            p=LIParameters(np.full((2, 1), 150.0), 90.0, np.linspace(-1.0, 1.0, 5)), state=LIState(np.ones(5), 0.5)
        ),
    ],
    ids=["ladder to 1e-4", "broadcast parameters and state"],
)
def test_long_run_yardstick_equals_the_reference(case, numba, monkeypatch):
    """The float64 voltages and gradients of the long runs (the numpy
    backend's scan, the adjoint as two scans) match the reference and its
    adjoint at the float64 tolerance, with the compiled loops and without."""
    monkeypatch.setenv("LI_NUMBA", "1" if numba == "on" else "0")
    rng = np.random.default_rng(6)
    neurons = case.xs.shape[1:]
    seed, final_seed = rng.normal(size=case.xs.shape), rng.normal(size=neurons)
    voltages, states = long_scan(case, record_states=True)
    want_v, want = ref.scan(case.xs, case.state, None, case.p, case.dt, True)
    assert_matches(voltages, want_v, "float64", "long-run yardstick: v")
    assert_matches(states.i, want.i, "float64", "long-run yardstick: i")
    got, want_gradients = long_gradients(case, seed, final_seed), reference_gradients(case, seed, final_seed)
    assert sorted(got) == sorted(name for name in GRADIENT_NAMES if name != "input_weights")
    for name, gradient in got.items():
        assert np.shape(gradient) == np.shape(want_gradients[name]), name
        assert_matches(gradient, want_gradients[name], "float64", f"long-run yardstick: gradient w.r.t. {name}")
