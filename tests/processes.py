"""Which processes are alive, from /proc (psutil is not a dependency): a process's
descendants, and the members of a process group, for tests that check nothing is left."""

from __future__ import annotations

import os
from pathlib import Path
import time


def _stat(pid: int) -> tuple[str, int, int] | None:
    """State, parent pid and process group of ``pid``; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return fields[0], int(fields[1]), int(fields[2])


def _all() -> dict[int, tuple[str, int, int]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None and stat[0] != "Z":  # zombies are dead
            found[int(entry)] = stat
    return found


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def children(pid: int) -> set[int]:
    """The live processes ``pid`` started itself."""
    return {p for p, (_, ppid, _) in _all().items() if ppid == pid}


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children ...)."""
    table = _all()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, (_, ppid, _) in table.items() if ppid in frontier and p not in found}
        found |= frontier
    return found


def group(pgid: int) -> set[int]:
    """Every live process of process group ``pgid``."""
    return {p for p, (_, _, group_id) in _all().items() if group_id == pgid}


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    """Wait up to ``timeout`` for ``pids`` to end; those still alive."""
    deadline = time.monotonic() + timeout
    while (left := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
