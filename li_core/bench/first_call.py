"""The first call in a fresh process: ``import li_core`` and a first tiny
NumPy scan (:data:`SHAPE`, float32, the default backend), timed inside
fresh Python processes with the compiled loops allowed (the default, as a
user's process runs: neither ``LI_NUMBA`` nor ``LI_NUMBA_BACKGROUND`` set)
and with ``LI_NUMBA=0``, interleaved, after one untimed default process that
fills numba's cache if it is cold; medians. What a process does after the
scan is not counted: one that loads the compiled kernels in the background
waits for them at exit (:mod:`li_backends.compiled`)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

#: ``(T, B, N)`` of the first scan
SHAPE = (4, 2, 8)
#: the code each fresh process runs; it prints the seconds from before
#: ``import li_core`` to after the scan (the interpreter's own start is not counted)
SCRIPT = f"""
import time
start = time.perf_counter()
import li_core
import numpy
li_core.li_scan(numpy.zeros({SHAPE}, dtype=numpy.float32))
print(time.perf_counter() - start)
"""

#: the environment variables that switch the compiled loops or their loading
#: in the background: never inherited (the test suite sets the second)
SWITCHES = ("LI_NUMBA", "LI_NUMBA_BACKGROUND")
#: the folder holding this li_core (and its backends): the fresh processes import from it
ROOT = Path(__file__).resolve().parents[2]


def first_call(numba: bool) -> float:
    """Seconds of ``import li_core`` plus a first tiny scan in a fresh
    process, with ``LI_NUMBA`` unset (``numba=True``) or ``LI_NUMBA=0``."""
    env = {key: value for key, value in os.environ.items() if key not in SWITCHES}
    if not numba:
        env["LI_NUMBA"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-c", SCRIPT]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the first-call process failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return float(done.stdout.split()[-1])


def measure(repeats: int) -> dict[str, float | int]:
    """Median seconds of the first call over ``repeats`` interleaved pairs
    of fresh processes: ``default_s`` (``LI_NUMBA`` unset), ``no_numba_s``
    (``LI_NUMBA=0``), ``extra_s`` (their difference) and ``repeats``."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    first_call(numba=True)
    times: dict[str, list[float]] = {"default_s": [], "no_numba_s": []}
    for _ in range(repeats):
        times["default_s"].append(first_call(numba=True))
        times["no_numba_s"].append(first_call(numba=False))
    default, no_numba = (statistics.median(times[key]) for key in ("default_s", "no_numba_s"))
    return {"default_s": default, "no_numba_s": no_numba, "extra_s": default - no_numba, "repeats": repeats}
