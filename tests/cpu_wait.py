"""How long the calling thread has waited for a CPU: the part of a measured delay that a busy
machine (other processes) caused, not the code under test. Tests that bound how late the event
loop runs take it away, so they fail for a loop that blocks or computes, not for a loaded host."""

from __future__ import annotations


def waited_for_a_cpu() -> float:
    """Seconds this thread has spent runnable but not running (Linux schedstat; 0 elsewhere)."""
    try:
        with open("/proc/thread-self/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0
