"""The plugin hook through which every backend, built in or not, is registered.

A distribution advertises a plugin module under the entry-point group
``li.backends`` (``[project.entry-points."li.backends"] name = "module"``);
that module implements :func:`li_register_backends` decorated with
``li_core.hookimpl``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

PROJECT = "li"
ENTRY_POINT_GROUP = "li.backends"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def li_register_backends() -> Iterable:  # type: ignore[empty-body]  # a hookspec has no body
    """Return the backends this plugin provides: an iterable of
    ``li_core.Backend`` instances.

    Contract:

    - Must be cheap and must not import the backends' array libraries (torch,
      cupy, jax, ...). Those imports happen when a backend is first asked to
      run or to report ``availability()``.
    - Each backend has a unique lowercase ``name``. If a name is already taken
      (built-ins register first), the later backend is skipped with a warning
      naming both providers.
    - Raising here is contained: the plugin's backends are skipped with a
      warning naming the plugin and the error; every other backend keeps
      working. Objects that are not ``Backend`` instances are skipped the
      same way.
    - A backend receives validated arguments with defaults filled in (see
      ``li_core.Backend``) and must honour the contract (docs/contract.md),
      which ``li check NAME`` verifies.
    """
