"""CPU placement of the harness's processes: pinning and SCHED_FIFO priorities."""

from __future__ import annotations

import os

from spine.errors import HarnessError


def set_fifo(tid: int, priority: int) -> None:
    """Run thread ``tid`` (0: the caller) under SCHED_FIFO at ``priority`` (HarnessError if refused)."""
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        raise HarnessError(f"SCHED_FIFO priority {priority} was refused: run as root, grant CAP_SYS_NICE, "
                           f"or raise the real-time priority limit (ulimit -r {priority})") from None


def _threads(pid: int) -> list[int]:
    return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]


def pin_process(pid: int, cpus: tuple[int, ...]) -> None:
    """Pin every thread of process ``pid`` to ``cpus`` (sched_setaffinity acts on one thread)."""
    for tid in _threads(pid):
        os.sched_setaffinity(tid, cpus)


def fifo_process(pid: int, priority: int) -> None:
    """Put every thread of process ``pid`` under SCHED_FIFO at ``priority`` (threads it starts later inherit it)."""
    for tid in _threads(pid):
        set_fifo(tid, priority)
