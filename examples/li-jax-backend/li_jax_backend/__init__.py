"""A JAX backend for li-neurons: a third-party plugin in miniature.

The step is a jitted function; the scan is ``jax.lax.scan`` over time inside
one jitted function, carrying its state in float64. JAX is imported only when the backend is first asked to
run or to report its availability, never at registration. float64 needs JAX's
x64 mode: the backend switches it on when it first runs (and says so in
``availability``'s docstring), as the li contract requires float64 support.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

import li_core
from li_core import LIParameters, LIState
from li_core.reference import rates


@cache
def _kernels() -> tuple[Any, Any, Any]:
    """The jitted step and scan, and ``jax.numpy``, built once (this is where
    jax is imported and x64 mode switched on)."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    # The increment forms of the contract (docs/contract.md), section 1, with
    # the rates (a, d) = (dt*tau_mem_inv, dt*tau_syn_inv): the decays 1 - a
    # and 1 - d would be rounded near 1 in float32 and drift slow neurons.
    def euler(x, v, i, a, d, v_leak):
        j = i + x
        return v + a * ((v_leak - v) + j), j - d * j

    @jax.jit
    def step(x, v, i, a, d, v_leak):
        v_new, i_new = euler(x, v, i, a, d, v_leak)
        return v_new, LIState(v_new, i_new)  # JAX arrays are immutable: sharing is not aliasing

    # Long runs of slow neurons: in float32 a change below half an ulp of v
    # would be rounded away at every step (absorption), so the scan carries
    # its state in float64 (x64 mode is on) and rounds only what it returns.
    # Autodiff through the casts gives float64 adjoints too. (A kernel
    # without cheap float64 would carry a float-float state instead, as the
    # built-in backends' float32 loops do.)
    @jax.jit
    def scan(xs, v, i, a, d, v_leak):
        dtype = xs.dtype

        # (the parameters widened once, outside the loop, so that their
        # gradients too are summed over time in float64)
        wide_a, wide_d, wide_leak = (jnp.asarray(value, jnp.float64) for value in (a, d, v_leak))

        def one(carry, x):
            v, i = euler(x.astype(jnp.float64), *carry, wide_a, wide_d, wide_leak)
            return (v, i), (v.astype(dtype), i.astype(dtype))

        wide = (jnp.asarray(v, jnp.float64), jnp.asarray(i, jnp.float64))
        (v, i), (vs, is_) = jax.lax.scan(one, wide, xs)
        return vs, is_, v.astype(dtype), i.astype(dtype)

    return step, scan, jnp


class JaxBackend(li_core.Backend):
    """Leaky integrators on JAX arrays (CPU or any device JAX runs on)."""

    name = "jax"
    library = "jax"
    priority = 20
    dtypes = ("float32", "float64")
    devices = ("cpu",)
    autograd = True

    def availability(self) -> str | None:
        """Importing JAX (and switching on x64 mode for float64)."""
        try:
            _kernels()
        except Exception as exc:  # noqa: BLE001 - the import error is the reported reason
            return f"{type(exc).__name__}: {exc}"
        return None

    def install_hint(self) -> str:
        return 'pip install ./examples/li-jax-backend "jax>=0.4.30" (from a checkout of li-neurons)'

    def handles(self, x: Any) -> bool:
        jax = sys.modules.get("jax")
        return jax is not None and isinstance(x, jax.Array)

    def asarray(self, array: Any, device: Any = None) -> Any:
        import jax

        _kernels()  # x64 mode first, or float64 data would be truncated
        if device not in (None, "cpu"):
            raise ValueError(f"the example jax backend runs on 'cpu' only, got device={device!r}")
        return jax.device_put(array, jax.devices("cpu")[0])

    def to_numpy(self, x: Any) -> Any:
        import numpy

        return numpy.array(x)

    def feed_forward_step(self, x: Any, state: LIState, p: LIParameters, dt: float) -> tuple[Any, LIState]:
        step, _, _ = _kernels()
        return step(x, state.v, state.i, *rates(p, dt), p.v_leak)

    def scan(
        self, xs: Any, state: LIState, w: Any, p: LIParameters, dt: float, record_states: bool
    ) -> tuple[Any, LIState]:
        _, scan, jnp = _kernels()
        if w is not None:
            xs = jnp.matmul(xs, w.T)  # all T steps in one matmul
        vs, is_, v, i = scan(xs, state.v, state.i, *rates(p, dt), p.v_leak)
        return vs, (LIState(vs, is_) if record_states else LIState(v, i))


@li_core.hookimpl
def li_register_backends() -> list[li_core.Backend]:
    return [JaxBackend()]
