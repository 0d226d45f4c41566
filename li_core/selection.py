"""Choosing the backend for a call.

First match wins:

1. ``backend=`` on the call (a name or a ``Backend`` object);
2. ``with use_backend(...)`` (context-local, so threads and asyncio tasks do
   not see each other's choice);
3. ``LI_BACKEND``: a comma-separated preference list, the first listed backend
   that is available and handles the arrays (for a chunked array such as
   Dask's: the first listed chunked backend; the list also chooses the
   backend of its blocks);
4. automatically: the available backend with the highest priority that
   handles the input's array type.

An explicit choice (1 or 2) never falls back: an unknown, unavailable or
unsuitable backend raises. A debug line on the ``li_core`` logger names the
backend each call used and why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from .arrays import describe
from .backend import Backend
from .errors import BackendUnavailableError
from .registry import registry

logger = logging.getLogger("li_core")

_context_choice: ContextVar[Backend | None] = ContextVar("li_backend", default=None)
_warned_unknown: set[str] = set()

ENVIRONMENT_VARIABLE = "LI_BACKEND"


def _environment_preference() -> str | None:
    """``LI_BACKEND``, read at every call. ``os.environ.get`` of an unset name
    costs microseconds (it raises and catches a KeyError inside), so CPython's
    backing mapping is asked directly when it is there."""
    data = getattr(os.environ, "_data", None)
    if data is None or _encoded_name is None:
        return os.environ.get(ENVIRONMENT_VARIABLE)
    value = data.get(_encoded_name)
    return None if value is None else os.environ.decodevalue(value)


_encoded_name = getattr(os.environ, "encodekey", lambda name: None)(ENVIRONMENT_VARIABLE)


def _debug_enabled() -> bool:
    """Whether to log the choice. Not while ``torch.compile`` traces: the
    compiled code runs none of this Python per call, and dynamo cannot trace
    ``Logger`` methods (each would break the graph of every compiled model)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.compiler.is_compiling():
        return False
    return logger.isEnabledFor(logging.DEBUG)


def resolve(backend: str | Backend) -> Backend:
    """The backend object for a name or an object (``BackendNotFoundError``
    for unknown names)."""
    if isinstance(backend, Backend):
        return backend
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a backend name or a li_core.Backend, got {type(backend).__name__}")
    return registry.get(backend)


@contextlib.contextmanager
def use_backend(backend: str | Backend) -> Iterator[Backend]:
    """Run every call inside the ``with`` block on ``backend`` (unless a call
    names its own). The name is checked on entry."""
    chosen = resolve(backend)
    token = _context_choice.set(chosen)
    try:
        yield chosen
    finally:
        _context_choice.reset(token)


def _check_explicit(backend: Backend, x: Any, argument: str, how: str) -> Backend:
    reason = registry.availability(backend)
    if reason is not None:
        hint = backend.install_hint()
        fix = f"; to install it: {hint}" if hint else ""
        raise BackendUnavailableError(f"backend {backend.name!r} ({how}) is unavailable: {reason}{fix}")
    if not backend.handles(x):
        raise TypeError(f"backend {backend.name!r} ({how}) does not handle {argument}, {describe(x)}")
    return backend


def _from_environment(preference: str, x: Any, argument: str) -> Backend | None:
    """The first backend listed in ``preference`` that is available and
    handles ``x``. A chunked array (one whose automatic choice is a chunked
    backend, e.g. Dask's) is computed by a listed backend only where that
    backend is chunked too: the list chooses the backend of its blocks."""
    chunked = None
    for name in (part.strip() for part in preference.split(",")):
        if not name:
            continue
        if name not in registry.backends:
            if name not in _warned_unknown:
                _warned_unknown.add(name)
                warnings.warn(f"LI_BACKEND names {name!r}, which is not a registered backend; ignored", stacklevel=4)
            continue
        backend = registry.backends[name].backend
        if registry.availability(backend) is None and backend.handles(x):
            if not backend.block_libraries:
                if chunked is None:
                    chunked = bool(_automatic(x, argument).block_libraries)
                if chunked:
                    continue
            return backend
    return None


def _automatic(x: Any, argument: str) -> Backend:
    kind = type(x)
    backend = registry.auto_choice.get(kind)
    if backend is None:
        candidates = sorted(
            (registered.backend for registered in registry.backends.values()),
            key=lambda b: -b.priority,
        )
        # handles() first: it is cheap and never imports a library.
        backend = next(
            (b for b in candidates if b.handles(x) and registry.availability(b) is None),
            None,
        )
        if backend is None:
            raise TypeError(f"no available backend handles {argument}, {describe(x)}")
        registry.auto_choice[kind] = backend
    return backend


#: backends named by ``backend=`` that passed their checks, per (name, input
#: type), and the registry's automatic choices they were made beside: a
#: registry rebuilt (``registry.reset()``) has new ones, and the names are
#: checked again
_named: tuple[dict[type, Backend], dict[tuple[str, type], Backend]] = ({}, {})


def _by_name(name: str, x: Any, argument: str) -> Backend:
    """:func:`_check_explicit` of a backend name, once per input type (a
    backend's ``handles`` depends on the type and its availability is asked
    once per registry)."""
    global _named
    made_beside, checked = _named
    if made_beside is not registry.auto_choice:
        _named = made_beside, checked = registry.auto_choice, {}
    key = (name, type(x))
    backend = checked.get(key)
    if backend is None:
        backend = checked[key] = _check_explicit(resolve(name), x, argument, "chosen by backend=")
    return backend


def select(explicit: str | Backend | None, x: Any, argument: str, operation: str) -> Backend:
    """The backend for one call on input ``x`` (named ``argument`` in errors)."""
    if type(explicit) is str:
        backend, why = _by_name(explicit, x, argument), "backend= argument"
    elif explicit is not None:
        backend, why = _check_explicit(resolve(explicit), x, argument, "chosen by backend="), "backend= argument"
    elif (chosen := _context_choice.get()) is not None:
        backend, why = _check_explicit(chosen, x, argument, "chosen by use_backend()"), "use_backend() context"
    elif (preference := _environment_preference()) and (
        found := _from_environment(preference, x, argument)
    ) is not None:
        backend, why = found, f"LI_BACKEND={preference}"
    else:
        backend, why = _automatic(x, argument), f"automatic choice for {type(x).__module__}.{type(x).__name__}"
    if _debug_enabled():
        logger.debug("%s: backend %r (%s)", operation, backend.name, why)
    return backend
