"""What a benchmark was measured on: machine, commit, command, GPU name."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from typing import Any

from ..arrays import library_name


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on and how: OS, CPU, core count,
    Python, the date (UTC), the git commit of the code when it runs from a
    checkout, and the command line."""
    from .. import __version__

    return {
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "li_neurons": __version__,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "command": shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
    }


def _commit() -> str | None:
    """The git commit of this package's checkout (with ``+dirty`` for
    uncommitted changes), or None outside a checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(
            ["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def gpu_name(x: Any) -> str | None:
    """The name of the GPU that holds ``x``, or None (CPU, or unknown)."""
    library = library_name(x)
    try:
        if library == "torch" and x.device.type == "cuda":
            return f"{x.device}: {sys.modules['torch'].cuda.get_device_name(x.device)}"
        if library == "cupy":
            name = sys.modules["cupy"].cuda.runtime.getDeviceProperties(x.device.id)["name"]
            return f"cuda:{x.device.id}: {name.decode() if isinstance(name, bytes) else name}"
    except Exception:  # noqa: BLE001 - a label is never worth failing a benchmark
        return None
    return None
