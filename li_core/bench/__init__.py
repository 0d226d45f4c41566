"""The timing harness behind ``li bench`` and the scripts in ``benchmarks/``.

Three pieces, usable on their own:

- :func:`measure` times a function: warm-up runs, then ``repeats`` timed runs,
  each ended by a device synchronisation, summarised by median and quartiles;
- :func:`synchronizer` returns that synchronisation for an array of any
  library (a no-op on the CPU, ``torch.cuda.synchronize`` for CUDA tensors,
  the device's ``synchronize`` for CuPy, ``block_until_ready`` for JAX);
- :data:`WORKLOADS` and :func:`run` are the standard workloads and the runner
  that times ``li_scan`` on every available backend next to two yardsticks
  on the same arrays and device: copying the input (the cost of touching the
  data once) and the one-step-at-a-time Python loop of
  :func:`li_core.reference.scan` (what Norse users write by hand).

Inputs are generated once in NumPy with a fixed seed and converted with each
backend's ``asarray``, so every backend times the same numbers.

One module per concern: ``timing`` (measure, synchronise, copy),
``workloads``, ``peers`` (other libraries' columns), ``runner``,
``machine`` (what it ran on), ``paths`` (which code path each backend
took), ``report`` (text) and ``plot``.
"""

from .machine import machine_info
from .paths import backend_paths, changed_paths, path_of
from .plot import plot_results
from .report import RESULT_HEADERS, describe_settings, format_results, format_seconds, format_table, result_table
from .runner import REFERENCE_BACKEND, REFERENCE_MAX_STEPS, Progress, run
from .timing import MAX_SECONDS, Timing, copier, measure, synchronizer
from .workloads import DT, PARAMETERS, WORKLOADS, Workload

__all__ = [
    "DT",
    "MAX_SECONDS",
    "PARAMETERS",
    "REFERENCE_BACKEND",
    "REFERENCE_MAX_STEPS",
    "RESULT_HEADERS",
    "WORKLOADS",
    "Progress",
    "Timing",
    "Workload",
    "backend_paths",
    "changed_paths",
    "copier",
    "describe_settings",
    "format_results",
    "format_seconds",
    "format_table",
    "machine_info",
    "measure",
    "path_of",
    "plot_results",
    "result_table",
    "run",
    "synchronizer",
]
