"""The first call in a fresh process: ``import li_core`` plus a first tiny
scan, with the compiled loops on (numba's cache warm) and off (``LI_NUMBA=0``).

Each timed run is a new Python process, started in the directory that holds
this :mod:`li_core` (so that it imports the same one), that reads the clock,
imports :mod:`li_core`, runs ``li_scan`` on a float32 NumPy array
``[4, 2, 8]`` and reads the clock again: interpreter start-up is not
counted, and neither is anything that happens after the scan returns (a
process that started loading the compiled kernels in the background waits
for them at exit; the whole process's wall time is reported beside). The
two variants alternate, one process each per round, after one untimed round
that fills numba's on-disk cache if it is empty.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: the code each process runs: prints the seconds from before ``import li_core``
#: to the return of the first scan, then why the compiled loops do not run
#: (``None`` where they do; asked after the clock stopped)
FIRST_CALL = """\
import time
start = time.perf_counter()
import numpy as np
import li_core
li_core.li_scan(np.ones((4, 2, 8), np.float32), backend="numpy")
print(time.perf_counter() - start)
from li_backends import compiled
print(compiled.unavailable())
"""

#: the environment variables that switch the compiled loops or their loading,
#: left out of the "compiled loops on" processes (they run as a user's would)
SWITCHES = ("LI_NUMBA", "LI_NUMBA_BACKGROUND")


def _first_call(off: bool) -> tuple[float, float, str]:
    """One fresh process: the seconds of ``import li_core`` plus the first
    scan, the process's own wall time (start to exit), and its answer to
    ``compiled.unavailable()``."""
    env = {name: value for name, value in os.environ.items() if name not in SWITCHES}
    if off:
        env["LI_NUMBA"] = "0"
    root = Path(__file__).resolve().parents[2]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALL], cwd=root, env=env, capture_output=True, text=True, check=True, timeout=600
    )
    process = time.perf_counter() - start
    seconds, reason = done.stdout.splitlines()[-2:]
    return float(seconds), process, reason


def measure(repeats: int = 5) -> dict[str, Any]:
    """Times the first call with the compiled loops on and off in
    ``repeats`` interleaved rounds of fresh processes. Returns the medians
    (``on``, ``off``, in seconds), their difference ``extra = on - off``,
    every run (``on_runs``, ``off_runs``), the medians of the processes'
    wall times (``on_process``, ``off_process``: start-up and exit included),
    and ``compiled``: why the compiled loops did not run in the "on"
    processes (None where they ran)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    compiled = _first_call(off=False)[2]  # untimed: compiles into numba's cache where it is empty
    _first_call(off=True)
    runs: dict[bool, list] = {False: [], True: []}
    for _ in range(repeats):
        for off in (False, True):
            runs[off].append(_first_call(off))
    on, off = (statistics.median(run[0] for run in runs[key]) for key in (False, True))
    return {
        "on": on,
        "off": off,
        "extra": on - off,
        "on_runs": [run[0] for run in runs[False]],
        "off_runs": [run[0] for run in runs[True]],
        "on_process": statistics.median(run[1] for run in runs[False]),
        "off_process": statistics.median(run[1] for run in runs[True]),
        "compiled": None if compiled == "None" else compiled,
    }
