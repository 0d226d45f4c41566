"""The library's exceptions and warnings."""


class BackendNotFoundError(LookupError):
    """No backend is registered under the requested name."""


class BackendUnavailableError(RuntimeError):
    """The backend is registered but cannot run here (its library is missing,
    there is no device, ...). The message carries the real reason and the
    install command that would fix it."""


class UsageError(Exception):
    """A mistake in a ``li`` command line, found before any work: ``li``
    prints ``li COMMAND: message`` on stderr and exits with status 2."""


class StoreChangedError(RuntimeError):
    """A demo result's Zarr store was replaced (by another run) after the
    result was written: its voltages are no longer there to read."""


class PluginWarning(UserWarning):
    """A backend plugin failed to load or to register, or two plugins claimed
    the same backend name. The other backends keep working."""


class UnstableStepWarning(RuntimeWarning):
    """A rate ``dt*tau_mem_inv`` or ``dt*tau_syn_inv`` outside [0, 2]: above
    2, forward Euler overshoots by more than it decays; below 0, the "decay"
    grows. Either way the voltages grow without bound. Shown once per call
    site (Python's default warning filter)."""
