"""Leaky-integrator neurons on any array framework.

``li_step``, ``li_feed_forward_step`` and ``li_scan`` take arrays of any
supported library and run on the backend chosen for them (see
``li_core.selection``); ``list_backends()`` tells which backends exist here.
"""

from .api import li_feed_forward_step, li_scan, li_step
from .backend import Backend
from .errors import BackendNotFoundError, BackendUnavailableError, PluginWarning, UnstableStepWarning
from .hookspecs import hookimpl
from .registry import BackendInfo, get_backend, list_backends
from .selection import use_backend
from .types import LIParameters, LIState

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendInfo",
    "BackendNotFoundError",
    "BackendUnavailableError",
    "LIParameters",
    "LIState",
    "PluginWarning",
    "UnstableStepWarning",
    "get_backend",
    "hookimpl",
    "li_feed_forward_step",
    "li_scan",
    "li_step",
    "list_backends",
    "use_backend",
]
