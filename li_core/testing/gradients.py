"""Gradients of a scalar function through the autograd of the array library,
for the conformance suite's gradient check (torch and jax)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from li_core.arrays import library_name


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
