"""Facts of the machine this process runs on, for the code that sizes its parallel work."""

from __future__ import annotations

import os

__all__ = ["available_cores"]


def available_cores() -> list[int]:
    """The cores this process may run on (its affinity mask on Linux, else all of them)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))
