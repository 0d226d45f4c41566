"""Recognising arrays and describing them, without importing heavy libraries.

Like einops' backend detection, nothing here imports torch, cupy or jax just to
check a type: array-api-compat's ``is_*_array`` helpers only look at libraries
already present in ``sys.modules``. Results are cached per Python type, so the
per-call cost is a dictionary lookup.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

FLOATING = ("float16", "bfloat16", "float32", "float64")
HALF = ("float16", "bfloat16")

_library_of_type: dict[type, str | None] = {}
_namespace_of_type: dict[type, Any] = {}
_dtype_names: dict[tuple[type, Any], str] = {}

_KNOWN = (
    ("numpy", array_api_compat.is_numpy_array),
    ("cupy", array_api_compat.is_cupy_array),
    ("torch", array_api_compat.is_torch_array),
    ("jax", array_api_compat.is_jax_array),
    ("dask", array_api_compat.is_dask_array),
)


def library_name(x: Any) -> str | None:
    """The array library ``x`` belongs to (``"numpy"``, ``"torch"``, ...), or
    None when ``x`` is not an Array API array."""
    kind = type(x)
    try:
        return _library_of_type[kind]
    except KeyError:
        pass
    name = None
    if array_api_compat.is_array_api_obj(x):
        name = next((lib for lib, test in _KNOWN if test(x)), None)
        if name is None:
            name = kind.__module__.partition(".")[0]
    _library_of_type[kind] = name
    return name


def namespace(x: Any) -> Any:
    """The Array API namespace of ``x`` (array-api-compat's wrapper where the
    library needs one)."""
    kind = type(x)
    try:
        return _namespace_of_type[kind]
    except KeyError:
        xp = _namespace_of_type[kind] = array_api_compat.array_namespace(x)
        return xp


def dtype_name(dtype: Any) -> str:
    """A library-independent dtype name: ``float32`` for ``numpy.float32``,
    ``torch.float32`` and ``array_api_strict.float32`` alike."""
    key = (type(dtype), dtype)  # the type keeps libraries' dtypes apart (no cross-library ==)
    try:
        return _dtype_names[key]
    except KeyError:
        name = _dtype_names[key] = str(dtype).rsplit(".", 1)[-1]
        return name


def device(x: Any, library: str | None) -> Any:
    """The device of ``x`` (NumPy arrays are always on the CPU)."""
    if library == "numpy":
        return "cpu"
    return array_api_compat.device(x)


def describe(x: Any) -> str:
    """A short description for error messages: library, type, shape, dtype."""
    library = library_name(x)
    if library is None:
        return f"a {type(x).__module__}.{type(x).__qualname__} object"
    return f"a {library} array of shape {tuple(x.shape)} and dtype {dtype_name(x.dtype)}"
