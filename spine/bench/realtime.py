"""Real-time placement for the benchmarks: SCHED_FIFO priorities, CPU pinning, PM QoS.

These are the knobs a real-time deployment turns (systemd's
``CPUSchedulingPolicy=fifo`` / ``CPUSchedulingPriority=`` / ``CPUAffinity=``,
tuned's latency-performance profile for PM QoS); the benchmarks offer them so
a run can show the bus on a host configured that way, next to the default.
"""

from __future__ import annotations

import os
import struct

from spine.errors import HarnessError

CPU_DMA_LATENCY = "/dev/cpu_dma_latency"


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


class FifoScope:
    """SCHED_FIFO at ``priority`` for the calling thread (and what it forks) until ``close``, then the old policy."""

    def __init__(self, priority: int) -> None:
        self._policy = os.sched_getscheduler(0)
        self._param = os.sched_getparam(0)
        set_fifo(0, priority)

    def close(self) -> None:
        """Put the calling thread back under the policy it had."""
        os.sched_setscheduler(0, self._policy, self._param)

    def __enter__(self) -> "FifoScope":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PmQos:
    """Hold /dev/cpu_dma_latency at 0 µs while open: idle CPUs poll instead of halting (root only).

    The kernel keeps the request only while the file stays open, so closing
    it (or the process exiting) restores the machine's default.
    """

    def __init__(self) -> None:
        try:
            self._fd = os.open(CPU_DMA_LATENCY, os.O_WRONLY)
        except OSError as exc:
            raise HarnessError(f"cannot hold {CPU_DMA_LATENCY} ({exc.strerror}): run as root, "
                               f"or leave out --pm-qos") from None
        os.write(self._fd, struct.pack("i", 0))

    def close(self) -> None:
        """Drop the request."""
        os.close(self._fd)

    def __enter__(self) -> "PmQos":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
