"""The ``array_api`` backend: the pure Array API reference, for any compliant
array library (array-api-strict, JAX, Dask, ...) that no faster backend
handles. It is the numerical yardstick the other backends are checked against.
"""

from __future__ import annotations

import sys
from typing import Any

import array_api_compat

import li_core
from li_core import reference


class ArrayAPIBackend(li_core.Backend):
    """Runs ``li_core.reference`` on any Array API array."""

    name = "array_api"
    library = "array_api_compat"
    priority = 0
    dtypes = ("float16", "float32", "float64")
    devices = ("cpu",)

    def version(self) -> str | None:
        return array_api_compat.__version__

    def handles(self, x: Any) -> bool:
        return array_api_compat.is_array_api_obj(x)

    def asarray(self, array: Any, device: Any = None) -> Any:
        """array-api-strict arrays where that library is installed and has
        the dtype (the strictest test of the reference), else NumPy arrays."""
        try:
            import array_api_strict

            return array_api_strict.asarray(array, copy=True)
        except (ImportError, TypeError):
            return array_api_compat.array_namespace(array).asarray(array, copy=True)

    def to_numpy(self, x: Any) -> Any:
        numpy = sys.modules.get("numpy") or __import__("numpy")
        return numpy.from_dlpack(x) if not isinstance(x, numpy.ndarray) else numpy.asarray(x)

    feed_forward_step = staticmethod(reference.feed_forward_step)
    step = staticmethod(reference.step)
    scan = staticmethod(reference.scan)


@li_core.hookimpl
def li_register_backends() -> list[li_core.Backend]:
    return [ArrayAPIBackend()]
