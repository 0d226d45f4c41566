"""The NumPy backend beyond the shared suite: properties over random shapes
and parameters, and the algebra of the scan (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from li_core import LIParameters, LIState, li_feed_forward_step, li_scan, reference
from li_core.testing import assert_matches

shapes = st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple)
rates = st.floats(0.0, 1.0)  # dt * tau_inv, including the edge cases b = 0 and a = 1


@settings(max_examples=60, deadline=None)
@given(
    shape=shapes, steps=st.integers(0, 30), syn=rates, mem=rates, per_neuron=st.booleans(), seed=st.integers(0, 2**16)
)
def test_scan_equals_loop_of_steps_and_reference(shape, steps, syn, mem, per_neuron, seed):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, *shape))
    state = LIState(rng.normal(size=shape), rng.normal(size=shape))
    if per_neuron and shape:
        p = LIParameters(
            rng.uniform(0, 1000, shape[-1:]), rng.uniform(0, 1000, shape[-1:]), rng.normal(size=shape[-1:])
        )
    else:
        p = LIParameters(syn / 1e-3, mem / 1e-3, float(rng.normal()))
    vs, final = li_scan(xs, state, p=p, backend="numpy")
    expected_vs, expected = reference.scan(xs, state, None, p, 1e-3)
    assert_matches(vs, expected_vs, "float64", "numpy scan vs reference")
    # The current is judged on the scale of the whole state: with b = 1 - dt*tau_syn_inv
    # near 0, i is rounding noise of size eps*|j| whichever way b*j is evaluated.
    together = np.concatenate([np.ravel(final.v), np.ravel(final.i)])
    assert_matches(together, np.concatenate([np.ravel(expected.v), np.ravel(expected.i)]), "float64", "final state")
    current = state
    for t in range(steps):
        v, current = li_feed_forward_step(xs[t, ...], current, p, backend="numpy")
        assert_matches(vs[t], v, "float64", f"scan vs step at t={t}")
    assert_matches(final.v, current.v, "float64", "final v vs step loop")


def test_float16_is_computed_in_float32():
    xs = np.random.default_rng(0).normal(size=(2000, 8)).astype(np.float16)
    vs, state = li_scan(xs, backend="numpy")
    assert vs.dtype == state.v.dtype == state.i.dtype == np.float16
    reference_vs, _ = reference.scan(
        xs.astype(np.float64), LIState(np.zeros(8), np.zeros(8)), None, LIParameters(), 1e-3
    )
    assert_matches(vs, reference_vs, "float16", "float16 scan")


def test_scan_does_not_allocate_per_step(monkeypatch):
    """The loop writes into preallocated buffers: no array is created per step."""
    import li_backends.numpy as backend_module

    created = []
    real_np = backend_module._numpy()

    class CountingNumpy:
        def __getattr__(self, name):
            attr = getattr(real_np, name)
            if name in ("empty", "array", "zeros", "empty_like", "copy"):

                def counted(*args, **kwargs):
                    created.append(name)
                    return attr(*args, **kwargs)

                return counted
            return attr

    monkeypatch.setattr(backend_module, "_numpy", lambda: CountingNumpy())
    for steps in (10, 1000):
        created.clear()
        li_scan(np.ones((steps, 4)), backend="numpy")
        assert len(created) <= 6, created
