"""Whether this process was forked from one that had other threads running.

A thread pool does not survive a fork: the child has one thread, while the
pool's state (GNU OpenMP's, for one, which torch's CPU operations and numba's
parallel loops both start) says that the parent's threads are there, and the
child's first parallel loop waits for them forever. Before every fork, the
parent counts its threads (``/proc/self/task``; where the system does not
say, it assumes more than one); a child forked from a process with more than
one thread, or from such a child, is marked, so that code that would start a
thread pool runs on the calling thread instead (:func:`forked_from_threads`).
Recorded from the moment :mod:`li_core` is imported.
"""

from __future__ import annotations

import os

_threads_at_fork = 1
_forked_from_threads = False


def _thread_count() -> int:
    """This process's threads (2 where the system does not say: assume a pool)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 2


def _before_fork() -> None:
    global _threads_at_fork
    _threads_at_fork = _thread_count()


def _after_fork_in_child() -> None:
    global _forked_from_threads
    _forked_from_threads = _forked_from_threads or _threads_at_fork > 1


def forked_from_threads() -> bool:
    """Was this process (or an ancestor since :mod:`li_core` was imported)
    forked while other threads ran in its parent?"""
    return _forked_from_threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
