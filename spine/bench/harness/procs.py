"""Role processes of the harness: start, handshake (ready → go), collect results, always clean up.

A role is a function ``role(link, *args) -> dict`` run in its own forked
process.  It sets itself up, calls ``link.ready()`` — which blocks until the
coordinator sends the common start time — runs, and returns its raw
measurements, which travel back over a pipe with the CPU time the process
used added as ``cpu_s``.  Forking is safe because the
coordinator holds no zmq context; every role makes its own.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable

from spine.bench.realtime import set_fifo
from spine.errors import BenchError

_CTX = mp.get_context("fork")

# slots of the shared live-counter array (progress display)
LIVE_TICKS, LIVE_TICK_MISSES, LIVE_CONTROL, LIVE_CONTROL_MISSES, LIVE_BASELINE = range(5)
LIVE_SLOTS = 5


def new_live_counters():
    """A small shared int64 array the roles bump and the progress display reads (no lock: one writer each)."""
    return _CTX.Array("q", LIVE_SLOTS, lock=False)


def new_stop_event():
    """An event the coordinator sets to end the roles that serve until told (responder, echo server)."""
    return _CTX.Event()


class RoleLink:
    """The role's end of the pipe to the coordinator, plus the shared stop event and live counters."""

    def __init__(self, conn: Connection, stop, live) -> None:
        self._conn = conn
        self.stop = stop
        self.live = live

    def ready(self, timeout_s: float = 60.0) -> int:
        """Tell the coordinator this role is set up; wait for and return the common start time (monotonic ns)."""
        self._conn.send(("ready", None))
        if not self._conn.poll(timeout_s):
            raise BenchError(f"no start signal from the coordinator within {timeout_s:g} s",
                             reason=BenchError.NO_START_SIGNAL, timeout=timeout_s)
        what, start_ns = self._conn.recv()
        if what != "go":
            raise BenchError(f"expected the start signal from the coordinator, got {what!r}",
                             reason=BenchError.UNEXPECTED)
        return start_ns


def _child(name: str, target: Callable[..., dict], conn: Connection, stop, live,
           cpus: tuple[int, ...] | None, rt_priority: int | None, args: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    try:
        if cpus:
            os.sched_setaffinity(0, cpus)
        if rt_priority is not None:
            set_fifo(0, rt_priority)  # before the role makes its zmq context: libzmq's threads inherit it
        result = target(RoleLink(conn, stop, live), *args)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        result["cpu_s"] = usage.ru_utime + usage.ru_stime
        conn.send(("result", result))
    except BaseException:
        conn.send(("error", f"role {name} failed:\n{traceback.format_exc()}"))
    finally:
        conn.close()


class RoleProcess:
    """A role running in a child process, driven by the coordinator."""

    def __init__(self, name: str, target: Callable[..., dict], args: tuple, *, stop, live,
                 cpus: tuple[int, ...] | None = None, rt_priority: int | None = None) -> None:
        self.name = name
        self._conn, child_conn = _CTX.Pipe()
        self._proc = _CTX.Process(target=_child, name=f"spine-loop-{name}", daemon=True,
                                  args=(name, target, child_conn, stop, live, cpus, rt_priority, args))
        self._proc.start()
        child_conn.close()

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self._proc.pid is not None
        return self._proc.pid

    def _expect(self, what: str, timeout_s: float) -> Any:
        if not self._conn.poll(timeout_s):
            state = "exited" if not self._proc.is_alive() else "is still running"
            raise BenchError(f"role {self.name} sent no {what} within {timeout_s:g} s (it {state})",
                             reason=BenchError.NOT_READY if what == "ready" else BenchError.NO_RESULT,
                             role=self.name, timeout=timeout_s)
        try:
            kind, payload = self._conn.recv()
        except EOFError:
            raise BenchError(f"role {self.name} exited (code {self._proc.exitcode}) before its {what}",
                             reason=BenchError.EXITED, role=self.name) from None
        if kind == "error":
            raise BenchError(payload, reason=BenchError.ROLE_FAILED, role=self.name)
        if kind != what:
            raise BenchError(f"role {self.name} sent {kind!r} where {what!r} was expected",
                             reason=BenchError.UNEXPECTED, role=self.name)
        return payload

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until the role is set up (BenchError if it fails or takes longer than ``timeout_s``)."""
        self._expect("ready", timeout_s)

    def go(self, start_ns: int) -> None:
        """Send the common start time."""
        self._conn.send(("go", start_ns))

    def has_result(self) -> bool:
        """Whether the role has finished and sent something (result or error)."""
        return self._conn.poll(0)

    def result(self, timeout_s: float) -> dict:
        """The role's measurements (BenchError if it failed or sent nothing within ``timeout_s``)."""
        return self._expect("result", timeout_s)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the role's process if it still runs."""
        if self._proc.is_alive():
            os.kill(self.pid, sig)

    def close(self, timeout_s: float = 5.0) -> None:
        """Wait for the process to exit, kill it if it does not, and close the pipe."""
        if self._proc.is_alive():
            self.signal(signal.SIGCONT)  # in case a stall left it stopped
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()
