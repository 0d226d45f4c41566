"""Which code path each backend takes: what a stored result records, so that
a figure can tell when the code it measured is no longer the code that runs.

A backend says which path its scans take in :meth:`li_core.Backend.notes`,
the sentence ``li backends`` prints (compiled loops or loops of array
operations, the fused CUDA kernels or torch's own loop, where Dask blocks
run). :func:`backend_paths` records those sentences; :func:`path_of` keeps
what names a path and drops the details that change from machine to machine
without changing the path: text in parentheses (versions, thread counts, the
reason a path is off) and install hints.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..registry import get_backend, list_backends

_PARENTHESES = re.compile(r"\s*\([^()]*\)")


def backend_paths(names: Iterable[str] | None = None) -> dict[str, str]:
    """``{backend: what li backends says about its path}`` for ``names``
    (default: every available backend that says something). An unavailable
    backend is recorded as ``"unavailable"``; one with nothing to say as ``""``."""
    infos = {info.name: info for info in list_backends()}
    if names is None:
        names = [name for name, info in infos.items() if info.available and get_backend(name).notes()]
    paths = {}
    for name in names:
        info = infos.get(name)
        paths[name] = (get_backend(name).notes() or "") if info is not None and info.available else "unavailable"
    return paths


def path_of(note: str) -> str:
    """The path a note names, without parenthesised details and install hints:
    ``"x: compiled loops (numba 0.61, 2 threads)"`` -> ``"x: compiled loops"``."""
    while _PARENTHESES.search(note):
        note = _PARENTHESES.sub("", note)
    clauses = [clause.strip() for clause in note.split(";")]
    return "; ".join(clause for clause in clauses if clause and "pip install" not in clause)


def changed_paths(recorded: dict[str, str]) -> dict[str, tuple[str, str]]:
    """``{backend: (recorded path, path now)}`` for every backend of
    ``recorded`` whose path differs from the one it takes in this process."""
    now = backend_paths(recorded)
    return {
        name: (path_of(recorded[name]), path_of(now[name]))
        for name in recorded
        if path_of(recorded[name]) != path_of(now[name])
    }
