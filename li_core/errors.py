"""Exceptions raised when a backend cannot be used."""


class BackendNotFoundError(LookupError):
    """No backend is registered under the requested name."""


class BackendUnavailableError(RuntimeError):
    """The backend is registered but cannot run here (its library is missing,
    there is no device, ...). The message carries the real reason and the
    install command that would fix it."""


class PluginWarning(UserWarning):
    """A backend plugin failed to load or to register, or two plugins claimed
    the same backend name. The other backends keep working."""


class UnstableStepWarning(RuntimeWarning):
    """``dt*tau_mem_inv`` or ``dt*tau_syn_inv`` exceeds 2: forward Euler then
    overshoots by more than it decays, and the voltages grow without bound.
    Shown once per call site (Python's default warning filter)."""
