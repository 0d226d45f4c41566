"""What the conformance suite runs against: one backend, dtype and device."""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from li_core.backend import Backend
from li_core.registry import registry
from li_core.types import LIState

from .cases import Case, convert


class Target(NamedTuple):
    """A backend under test with one of its dtypes and devices."""

    backend: Backend
    dtype: str
    device: Any

    @property
    def id(self) -> str:
        return f"{self.backend.name}-{self.dtype}-{self.device}"

    def array(self, values: Any) -> Any:
        """A new array of the backend's library in the target dtype and device."""
        values = np.asarray(values, dtype=np.float64)
        if self.dtype == "bfloat16":
            x = self.backend.asarray(values.astype(np.float32), device=self.device)
            return array_api_compat.array_namespace(x).astype(x, library_dtype(x, "bfloat16"))
        return self.backend.asarray(values.astype(self.dtype), device=self.device)

    def numpy(self, x: Any) -> np.ndarray:
        """``x`` as a float64 NumPy array."""
        xp = array_api_compat.array_namespace(x)
        if self.dtype == "bfloat16":
            x = xp.astype(x, library_dtype(x, "float32"))
        return np.asarray(self.backend.to_numpy(x), dtype=np.float64)

    def case(self, case: Case) -> Case:
        return convert(case, self.array)

    def rounded(self, case: Case) -> Case:
        """The case as the backend sees it (rounded to the target dtype), in float64."""
        return convert(case, lambda a: self.numpy(self.array(a)))

    def state_numpy(self, state: LIState) -> LIState:
        return LIState(self.numpy(state.v), self.numpy(state.i))


def library_dtype(x: Any, name: str) -> Any:
    """The dtype called ``name`` in ``x``'s library."""
    xp = array_api_compat.array_namespace(x)
    found = getattr(xp, name, None)
    if found is None:
        module = sys.modules[type(x).__module__.partition(".")[0]]
        found = getattr(module, name)
    return found


def device_usable(backend: Backend, device: Any) -> str | None:
    """None when the backend can put an array on ``device``, else why not."""
    try:
        backend.asarray(np.zeros(1, dtype=np.float32), device=device)
    except Exception as exc:  # noqa: BLE001 - the error is the reported reason
        return f"device {device!r} is not usable here: {type(exc).__name__}: {exc}"
    return None


def targets_for(backends: list[Backend | str], dtypes: list[str] | None, devices: list[str] | None) -> list[Any]:
    """``(target, skip reason or None)`` pairs for every backend x dtype x device."""
    out = []
    for choice in backends:
        backend = registry.get(choice) if isinstance(choice, str) else choice
        reason = registry.availability(backend) if isinstance(choice, str) else backend.availability()
        for device in devices or backend.devices:
            why = reason or (
                f"backend {backend.name!r} does not declare device {device!r}"
                if device not in backend.devices
                else None
            )
            if why is None:
                why = device_usable(backend, device)
            for dtype in dtypes or backend.dtypes:
                skip = why or (
                    f"backend {backend.name!r} does not declare dtype {dtype}" if dtype not in backend.dtypes else None
                )
                out.append((Target(backend, dtype, device), skip))
    return out
