"""Gradients for the conformance suite's gradient checks: through the
autograd of the array library under test (torch and jax), and the float64
yardstick they are compared with, an adjoint of the reference recurrence
written out in NumPy (fast over long scans, and no autograd of its own)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from li_core.arrays import library_name

from .cases import Case

#: the differentiable arguments of a scan, in the order of the gradients
GRADIENT_NAMES = ("inputs", "input_weights", "state.v", "state.i", "p.tau_syn_inv", "p.tau_mem_inv", "p.v_leak")


def _torch_gradients(f: Callable, arguments: Sequence[Any]) -> tuple:
    import torch

    leaves = [a.detach().clone().requires_grad_(True) for a in arguments]
    return torch.autograd.grad(f(*leaves), leaves)


def _jax_gradients(f: Callable, arguments: Sequence[Any]) -> tuple:
    import jax

    return jax.grad(f, argnums=tuple(range(len(arguments))))(*arguments)


def gradient_api(x: Any) -> Callable | None:
    """``gradients(f, arguments)`` for ``x``'s library, or None when unknown."""
    recipes: dict[str | None, Callable] = {"torch": _torch_gradients, "jax": _jax_gradients}
    return recipes.get(library_name(x))


def _reduce_to(gradient: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``gradient`` over the axes that broadcasting added to ``shape``."""
    extra = gradient.ndim - len(shape)
    gradient = gradient.sum(axis=tuple(range(extra))) if extra else gradient
    kept = tuple(k for k, n in enumerate(shape) if n == 1 and gradient.shape[k] != 1)
    return gradient.sum(axis=kept, keepdims=True) if kept else gradient


def reference_gradients(case: Case, seed: np.ndarray, final_i_seed: np.ndarray) -> dict[str, np.ndarray]:
    """Float64 gradients of ``L = sum(seed * vs) + sum(final_i_seed * i_final)``
    for the scan of ``case`` (array parameters), keyed by :data:`GRADIENT_NAMES`
    (``input_weights`` only for a weighted case).

    With ``V_t = dL/dv_t``, ``I_t = dL/di_t`` and ``J_t = dL/dj_t``, the step
    ``j_t = i_{t-1} + x_t``, ``v_t = v_{t-1} + a*((v_leak - v_{t-1}) + j_t)``,
    ``i_t = j_t - d*j_t`` runs backwards as ``J_t = a*V_t + (I_t - d*I_t)``,
    ``V_{t-1} = seed_{t-1} + (V_t - a*V_t)``, ``I_{t-1} = J_t``, and
    ``dL/dx_t = J_t``, ``dL/da = sum V_t*((v_leak - v_{t-1}) + j_t)``,
    ``dL/dd = -sum I_t*j_t``, ``dL/dv_leak = sum a*V_t``.
    """
    xs = np.asarray(case.xs, dtype=np.float64)
    weights = None if case.weights is None else np.asarray(case.weights, dtype=np.float64)
    currents_in = xs if weights is None else xs @ weights.T
    shape = currents_in.shape[1:]
    tau_syn, tau_mem, v_leak = (np.asarray(q, dtype=np.float64) for q in case.p)
    a = np.broadcast_to(case.dt * tau_mem, shape)
    d = np.broadcast_to(case.dt * tau_syn, shape)
    leak = np.broadcast_to(v_leak, shape)

    steps = currents_in.shape[0]
    js, drives = np.empty_like(currents_in), np.empty_like(currents_in)
    v = np.broadcast_to(np.asarray(case.state.v, dtype=np.float64), shape)
    i = np.broadcast_to(np.asarray(case.state.i, dtype=np.float64), shape)
    for t in range(steps):
        j = i + currents_in[t]
        drives[t] = (leak - v) + j
        js[t] = j
        v = v + a * drives[t]
        i = j - d * j

    upstream_v = np.zeros(shape)
    upstream_i = np.asarray(final_i_seed, dtype=np.float64) * np.ones(shape)
    grad_x = np.empty_like(currents_in)
    grad_a, grad_d, grad_leak = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for t in reversed(range(steps)):
        upstream_v = upstream_v + seed[t]
        grad_j = a * upstream_v + (upstream_i - d * upstream_i)
        grad_a += upstream_v * drives[t]
        grad_d -= upstream_i * js[t]
        grad_leak += a * upstream_v
        grad_x[t] = grad_j
        upstream_v = upstream_v - a * upstream_v
        upstream_i = grad_j

    gradients = {
        "inputs": grad_x if weights is None else grad_x @ weights,
        "state.v": _reduce_to(upstream_v, np.shape(case.state.v)),
        "state.i": _reduce_to(upstream_i, np.shape(case.state.i)),
        "p.tau_syn_inv": case.dt * _reduce_to(grad_d, tau_syn.shape),
        "p.tau_mem_inv": case.dt * _reduce_to(grad_a, tau_mem.shape),
        "p.v_leak": _reduce_to(grad_leak, v_leak.shape),
    }
    if weights is not None:
        flat = grad_x.reshape(-1, grad_x.shape[-1])
        gradients["input_weights"] = flat.T @ xs.reshape(-1, xs.shape[-1])
    return gradients
