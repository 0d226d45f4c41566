"""A scan in a process forked from a multi-threaded one (a torch DataLoader
worker, a fork Pool) finishes: no thread pool is entered that the fork broke."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")

#: the child scans [200, 8, 4096] float32 (big enough for the parallel
#: kernels) and must be done within the deadline; the parent reports
#: "done <status>" or "hung" (and kills it)
CHILD = """
import os, sys, time
import numpy as np
import torch
from li_core import li_scan

x = np.random.default_rng(0).random((200, 8, 4096), dtype=np.float32)
expected = None
if sys.argv[1] == "torch-first":
    torch.from_numpy(x).mul(2).sum()  # starts torch's OpenMP threads in the parent
else:
    expected = li_scan(x, backend="numpy")[0]
    torch.from_numpy(x).mul(2).sum()
pid = os.fork()
if pid == 0:
    vs = li_scan(x, backend="numpy")[0]
    same = expected is None or bool(np.allclose(vs, expected, rtol=1e-6, atol=1e-6))
    os._exit(0 if same else 3)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print("done", os.waitstatus_to_exitcode(status))
        sys.exit(0)
    time.sleep(0.05)
os.kill(pid, 9)
os.waitpid(pid, 0)
print("hung")
"""


@pytest.mark.parametrize("order", ["torch-first", "scan-first"])
def test_a_child_forked_after_torch_threads_ran_finishes_its_scan(order):
    pytest.importorskip("torch")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, order], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.stdout.split() == ["done", "0"], (done.stdout, done.stderr[-2000:])


def test_the_mark_follows_the_thread_count_at_fork(monkeypatch):
    """The child is marked only where its parent had other threads."""
    from li_core import forking

    for threads, marked in ((1, False), (3, True)):
        monkeypatch.setattr(forking, "_forked_from_threads", False)
        monkeypatch.setattr(forking, "_thread_count", lambda threads=threads: threads)
        forking._before_fork()
        forking._after_fork_in_child()
        assert forking.forked_from_threads() is marked
