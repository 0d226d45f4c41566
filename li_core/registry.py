"""The backend registry: a pluggy plugin manager over project ``"li"``.

Built-in backends are registered first, through the same hook as third-party
plugins; then every entry point of the group ``li.backends`` is loaded (unless
``LI_DISABLE_PLUGINS=1``). Failures are contained and reported as
``PluginWarning``s that name the plugin, so one broken plugin never takes the
others down. The registry is built lazily, on first use.
"""

from __future__ import annotations

import importlib
import os
import warnings
from importlib import metadata
from typing import Any, NamedTuple

import pluggy

from . import hookspecs
from .backend import DISTRIBUTION, Backend
from .errors import BackendNotFoundError, PluginWarning

#: plugin modules of the built-in backends, in registration order
BUILTIN_PLUGINS = (
    "li_backends.array_api",
    "li_backends.numpy",
    "li_backends.torch",
    "li_backends.cupy",
    "li_backends.dask",
)


class BackendInfo(NamedTuple):
    """One row of :func:`list_backends`."""

    name: str
    available: bool
    reason: str | None
    version: str | None
    distribution: str
    priority: int
    dtypes: tuple[str, ...]
    devices: tuple[str, ...]
    autograd: bool
    #: a chunked (lazy) backend's block libraries (empty for the others)
    block_libraries: tuple[str, ...] = ()


class _Registered(NamedTuple):
    backend: Backend
    provider: str  # "plugin (distribution)" for messages
    distribution: str


def _plugins_disabled() -> bool:
    return os.environ.get("LI_DISABLE_PLUGINS", "").strip().lower() not in ("", "0", "false", "no")


def _warn(message: str) -> None:
    warnings.warn(message, PluginWarning, stacklevel=4)


class Registry:
    """Registered backends by name, with cached availability."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything; the next use loads the plugins again."""
        self._backends: dict[str, _Registered] | None = None
        self._availability: dict[str, str | None] = {}
        #: automatic choice per array type, filled by li_core.selection
        self.auto_choice: dict[type, Backend] = {}

    @property
    def backends(self) -> dict[str, _Registered]:
        if self._backends is None:
            self._backends = self._load()
        return self._backends

    def _load(self) -> dict[str, _Registered]:
        manager = pluggy.PluginManager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        distributions: dict[str, str] = {}
        for module_name in BUILTIN_PLUGINS:
            self._register(
                manager, distributions, module_name, DISTRIBUTION, lambda m=module_name: importlib.import_module(m)
            )
        if not _plugins_disabled():
            for entry_point in metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
                if entry_point.value in BUILTIN_PLUGINS:
                    continue
                distribution = entry_point.dist.name if entry_point.dist is not None else "unknown distribution"
                self._register(manager, distributions, entry_point.name, distribution, entry_point.load)
        return self._collect(manager, distributions)

    @staticmethod
    def _register(manager: pluggy.PluginManager, distributions: dict, name: str, distribution: str, load: Any) -> None:
        label = f"plugin {name!r} (from {distribution})"
        if manager.has_plugin(name):
            _warn(f"li: {label} skipped: a plugin named {name!r} is already registered")
            return
        try:
            plugin = load()
            manager.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - plugin errors are contained and reported
            _warn(f"li: {label} failed to load and was skipped: {type(exc).__name__}: {exc}")
            return
        distributions[name] = distribution

    @staticmethod
    def _collect(manager: pluggy.PluginManager, distributions: dict) -> dict[str, _Registered]:
        backends: dict[str, _Registered] = {}
        # One plugin at a time, in registration order (built-ins first), so a
        # hook that raises only loses its own backends.
        for impl in manager.hook.li_register_backends.get_hookimpls():
            distribution = distributions[impl.plugin_name]
            provider = f"plugin {impl.plugin_name!r} (from {distribution})"
            try:
                offered = list(impl.function())  # type: ignore[call-overload]  # checked just below
            except Exception as exc:  # noqa: BLE001 - plugin errors are contained and reported
                _warn(f"li: {provider} raised in li_register_backends and was skipped: {type(exc).__name__}: {exc}")
                continue
            for backend in offered:
                if not isinstance(backend, Backend):
                    _warn(f"li: {provider} returned {backend!r}, which is not a li_core.Backend; skipped")
                    continue
                if backend.name in backends:
                    kept = backends[backend.name].provider
                    _warn(
                        f"li: backend {backend.name!r} from {provider} duplicates the one from {kept}; keeping {kept}"
                    )
                    continue
                backends[backend.name] = _Registered(backend, provider, distribution)
        return backends

    def get(self, name: str) -> Backend:
        try:
            return self.backends[name].backend
        except KeyError:
            known = ", ".join(sorted(self.backends)) or "none"
            raise BackendNotFoundError(f"no backend named {name!r}; registered backends: {known}") from None

    def availability(self, backend: Backend) -> str | None:
        """``backend.availability()``, asked once per process; a check that
        raises counts as unavailable with its error as the reason."""
        try:
            return self._availability[backend.name]
        except KeyError:
            pass
        try:
            reason = backend.availability()
        except Exception as exc:  # noqa: BLE001 - plugin errors are contained and reported
            reason = f"availability check raised {type(exc).__name__}: {exc}"
        self._availability[backend.name] = reason
        return reason

    def info(self) -> list[BackendInfo]:
        rows = []
        for name, registered in self.backends.items():
            backend = registered.backend
            reason = self.availability(backend)
            rows.append(
                BackendInfo(
                    name=name,
                    available=reason is None,
                    reason=reason,
                    version=backend.version(),
                    distribution=registered.distribution,
                    priority=backend.priority,
                    dtypes=tuple(backend.dtypes),
                    devices=tuple(backend.devices),
                    autograd=bool(backend.autograd),
                    block_libraries=tuple(backend.block_libraries),
                )
            )
        return rows


registry = Registry()


def list_backends() -> list[BackendInfo]:
    """One record per registered backend: name, availability (and the reason
    when unavailable), library version, providing distribution, priority,
    dtypes, devices, autograd support and, for a chunked (lazy) backend, the
    libraries its blocks may be."""
    return registry.info()


def get_backend(name: str) -> Backend:
    """The registered backend called ``name``; ``BackendNotFoundError`` lists
    the registered names when there is none."""
    return registry.get(name)
