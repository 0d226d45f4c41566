"""The contract (docs/contract.md), section 4: when a result matches the
float64 reference.

``y`` matches ``r`` when ``|y - r| <= rtol * (|r| + max|r|)`` elementwise, with
``rtol`` by the result's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

RTOL = {"float16": 1e-2, "bfloat16": 2e-2, "float32": 1e-5, "float64": 1e-11}


def error_ratio(result: Any, reference: Any, dtype: str) -> float:
    """The largest ``|y - r| / (rtol * (|r| + max|r|))``; at most 1 means the
    result matches (0 for empty arrays)."""
    y = np.asarray(result, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if y.shape != r.shape:
        raise AssertionError(f"shape {y.shape} differs from the reference shape {r.shape}")
    if r.size == 0:
        return 0.0
    allowed = RTOL[dtype] * (np.abs(r) + np.abs(r).max())
    excess = np.abs(y - r)
    if not np.all(np.isfinite(y)):
        return float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(excess == 0, 0.0, excess / allowed)
    return float(np.max(ratio))


def assert_matches(result: Any, reference: Any, dtype: str, what: str) -> None:
    """Raise ``AssertionError`` naming ``what`` when ``result`` is outside the
    tolerance of ``reference``."""
    ratio = error_ratio(result, reference, dtype)
    if ratio > 1.0:
        y = np.asarray(result, dtype=np.float64)
        r = np.asarray(reference, dtype=np.float64)
        worst = np.unravel_index(np.argmax(np.abs(y - r)), r.shape)
        raise AssertionError(
            f"{what}: outside the {dtype} tolerance (rtol {RTOL[dtype]:g}) by a factor {ratio:.3g}; "
            f"worst at index {tuple(int(k) for k in worst)}: got {y[worst]!r}, reference {r[worst]!r}"
        )
