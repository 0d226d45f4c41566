"""What the benchmark scripts in this folder share: interleaved medians and the stored report.

A script imports this module (``benchmarks/`` is on ``sys.path`` when it runs
as ``python benchmarks/NAME.py``) and ends with :func:`write_report`, which
stores one JSON file, by default under ``docs/results/``:

``machine``
    :func:`li_core.bench.machine_info` (OS, CPU, cores, Python, date, git
    commit), with ``command`` the exact command line that reproduces the file.
``settings``
    what the script was asked to do (repeats, clock, threads, sizes).
``paths``
    :func:`li_core.bench.backend_paths`: the path each backend's scans took
    (what ``li backends`` says: compiled loops or not, fused CUDA or not), so
    that ``tests/test_figures.py`` notices a result the code has outrun.
``figures``
    every number the docs may quote, by name: times in seconds, ratios and
    fractions of a tolerance as plain numbers.
``tables``
    ready-made tables (``headers`` and ``rows`` of strings) that the docs
    render with the ``{li-results-table}`` directive of ``docs/_ext/li_docs.py``.

``tests/test_figures.py`` checks that every figure a page quotes is in such
a file; CONTRIBUTING.md says how a page quotes one.
"""

from __future__ import annotations

import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from li_core.bench import backend_paths, machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
CLOCKS: dict[str, Callable[[], float]] = {"process": time.process_time, "wall": time.perf_counter}


def medians(
    fns: dict[str, Callable[[], object]], repeats: int, clock: Callable[[], float], number: int = 1
) -> dict[str, float]:
    """The median seconds per call of each of ``fns``, timed in interleaved
    rounds (one call of each per round, so a change of the machine's load
    hits them all alike) after one warm-up call each; a timing covers
    ``number`` calls in a row, for calls too short for the clock."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            for _ in range(number):
                fn()
            times[name].append((clock() - start) / number)
    return {name: statistics.median(ts) for name, ts in times.items()}


def command_line() -> str:
    """The command that ran this script, as it is typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_name = str(script.relative_to(ROOT))
    except ValueError:
        script_name = str(script)
    return shlex.join(["python", script_name, *sys.argv[1:]])


def table(headers: list[str], rows: list[list[Any]]) -> dict[str, list[Any]]:
    """A stored table: every cell as the string the docs show."""
    return {"headers": headers, "rows": [[str(cell) for cell in row] for row in rows]}


def ms(seconds: float) -> str:
    """Milliseconds with two significant digits at least (``0.003 ms``, ``94 ms``)."""
    value = seconds * 1e3
    return f"{value:.2g} ms" if value < 10 else f"{value:.0f} ms"


def write_report(
    name: str,
    settings: dict[str, Any],
    figures: dict[str, float],
    tables: dict[str, Any],
    path: str | None = None,
    backends: Sequence[str] | None = None,
) -> Path:
    """Store the report as ``docs/results/NAME.json`` (or ``path``) and return
    where, with the paths of the ``backends`` it measured (default: every
    available backend that names its path)."""
    machine = machine_info()
    machine["command"] = command_line()
    report = {
        "machine": machine,
        "paths": backend_paths(backends),
        "settings": settings,
        "figures": figures,
        "tables": tables,
    }
    target = Path(path) if path else RESULTS / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return target
