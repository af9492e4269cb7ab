"""CPU time used during a benchmark run, per process group, from Linux's /proc.

A rate on a shared machine moves with its neighbours; CPU seconds per operation move much
less, and adding up every party's share (the service, its S3 server, its database, the load
generator) shows which of them the machine's cores actually went to.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class _Process:
    parent: int
    name: str
    seconds: float  # user + system CPU so far, its own and that of children it reaped


def _processes() -> dict[int, _Process]:
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, _Process] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # The name is between the first "(" and the last ")": it may hold either.
        head, _, rest = text.rpartition(")")
        fields = rest.split()
        found[int(entry.name)] = _Process(
            parent=int(fields[1]),
            name=head.partition("(")[2],
            # utime + stime + cutime + cstime: a child that exits and is reaped (a database
            # backend, a worker) moves its time into its parent's, and stays counted.
            seconds=sum(int(field) for field in fields[11:15]) / tick,
        )
    return found


def tree_cpu(pid: int) -> float | None:
    """CPU seconds used so far by `pid` and its descendants; None without /proc or `pid`."""
    if not (_PROC / str(pid) / "stat").exists():
        return None
    processes = _processes()
    children: dict[int, list[int]] = {}
    for child, process in processes.items():
        children.setdefault(process.parent, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += processes[current].seconds if current in processes else 0.0
        todo.extend(children.get(current, []))
    return total


def named_cpu(name: str) -> float | None:
    """CPU seconds used so far by the processes called `name` (e.g. PostgreSQL's server and
    backends, which are the system's, not our children); None without /proc."""
    if not _PROC.is_dir():
        return None
    return sum(p.seconds for p in _processes().values() if p.name == name)


def own_cpu() -> float:
    """CPU seconds used so far by this process: the load generator's threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds each named source used between `start` and `stop` (None: not measurable)."""

    def __init__(self, sources: Mapping[str, Callable[[], float | None]]) -> None:
        self._sources = dict(sources)
        self._before: dict[str, float | None] = {}
        self.used: dict[str, float | None] = {}

    def start(self) -> None:
        self._before = {name: read() for name, read in self._sources.items()}

    def stop(self) -> dict[str, float | None]:
        for name, read in self._sources.items():
            before, after = self._before.get(name), read()
            self.used[name] = None if before is None or after is None else after - before
        return self.used
