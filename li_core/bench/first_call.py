"""The first call in a fresh process: ``import li_core`` plus a first tiny
scan, with the compiled loops on (numba's cache warm) and off (``LI_NUMBA=0``).

Each timed run is a new Python process that reads the clock, imports
:mod:`li_core`, runs ``li_scan`` on a float32 NumPy array ``[4, 2, 8]`` and
reads the clock again: interpreter start-up is not counted, and neither is
anything that happens after the scan returns (a process that started loading
the compiled kernels in the background waits for them at exit). The two
variants alternate, one process each per round, after one untimed round that
fills numba's on-disk cache if it is empty.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
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


def _first_call(off: bool) -> tuple[float, str]:
    """One fresh process: the seconds of ``import li_core`` plus the first
    scan, and its answer to ``compiled.unavailable()``."""
    env = {name: value for name, value in os.environ.items() if name not in SWITCHES}
    if off:
        env["LI_NUMBA"] = "0"
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALL], env=env, capture_output=True, text=True, check=True, timeout=600
    )
    seconds, reason = done.stdout.splitlines()[-2:]
    return float(seconds), reason


def measure(repeats: int = 5) -> dict[str, Any]:
    """Times the first call with the compiled loops on and off in
    ``repeats`` interleaved rounds of fresh processes. Returns the medians
    (``on``, ``off``, in seconds), their difference ``extra = on - off``,
    every run (``on_runs``, ``off_runs``), and ``compiled``: why the compiled
    loops did not run in the "on" processes (None where they ran)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    _, compiled = _first_call(off=False)  # untimed: compiles into numba's cache where it is empty
    _first_call(off=True)
    on_runs, off_runs = [], []
    for _ in range(repeats):
        on_runs.append(_first_call(off=False)[0])
        off_runs.append(_first_call(off=True)[0])
    on, off = statistics.median(on_runs), statistics.median(off_runs)
    return {
        "on": on,
        "off": off,
        "extra": on - off,
        "on_runs": on_runs,
        "off_runs": off_runs,
        "compiled": None if compiled == "None" else compiled,
    }
