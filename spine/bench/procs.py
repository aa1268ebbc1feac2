"""The one way the benchmarks start processes: a role in a child process, a ready → go handshake, its result.

A role is a top-level function ``role(link, *args) -> dict | None`` run in its own
child process.  It sets itself up, calls ``link.ready()`` — which blocks until
the coordinator sends the start signal and returns the common start time —
runs, and returns its raw measurements (or None).  The result travels back over
a pipe with the CPU time the process used added as ``cpu_s``; an exception in
the role travels back as its traceback and is raised in the coordinator as
BenchError.  A role that serves until told to stop watches ``link.stop``.

Roles fork by default (``FORK``): cheap, and safe while the coordinator holds no
zmq context, since every role makes its own.  A coordinator that already holds
one (a Component, a socket) starts its roles with ``context=SPAWN``.

Used two ways::

    with RoleProcess("echo", roles.raw_echo, (endpoint,)) as echo:  # ready, started
        ...                                                          # stopped, joined on exit

    proc = RoleProcess("writer", writer_role, (cfg,), stop=stop, live=live)
    proc.wait_ready(60); proc.go(start_ns); result = proc.result(60); proc.close()
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import signal
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable

from spine.bench.realtime import set_fifo
from spine.errors import BenchError

FORK = mp.get_context("fork")
SPAWN = mp.get_context("spawn")

# slots of the shared live-counter array (the harness's progress display)
LIVE_TICKS, LIVE_TICK_MISSES, LIVE_CONTROL, LIVE_CONTROL_MISSES, LIVE_BASELINE = range(5)
LIVE_SLOTS = 5


def new_live_counters(context=FORK):
    """A small shared int64 array the roles bump and the progress display reads (no lock: one writer each)."""
    return context.Array("q", LIVE_SLOTS, lock=False)


def new_stop_event(context=FORK):
    """An event the coordinator sets to end the roles that serve until told (responder, echo server)."""
    return context.Event()


class RoleLink:
    """The role's end of the pipe to the coordinator, plus the stop event and the shared live counters."""

    def __init__(self, name: str, conn: Connection, stop, live) -> None:
        self.name = name
        self._conn = conn
        self.stop = stop
        self.live = live

    def ready(self, timeout_s: float = 60.0) -> int:
        """Tell the coordinator this role is set up; wait for and return the common start time (monotonic ns)."""
        self._conn.send(("ready", None))
        if not self._conn.poll(timeout_s):
            raise BenchError(f"role {self.name} got no start signal from the coordinator within {timeout_s:g} s",
                             reason=BenchError.NO_START_SIGNAL, role=self.name, timeout=timeout_s)
        what, start_ns = self._conn.recv()
        if what != "go":
            raise BenchError(f"role {self.name} expected the start signal from the coordinator, got {what!r}",
                             reason=BenchError.UNEXPECTED, role=self.name)
        return start_ns


def _child(name: str, target: Callable[..., dict | None], conn: Connection, stop, live,
           cpus: tuple[int, ...] | None, rt_priority: int | None, nice: int, args: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    try:
        if cpus:
            os.sched_setaffinity(0, cpus)
        if rt_priority is not None:
            set_fifo(0, rt_priority)  # before the role makes its zmq context: libzmq's threads inherit it
        if nice:
            os.nice(nice)
        if nice >= 19 and hasattr(os, "SCHED_IDLE"):
            # Bulk work: with SCHED_IDLE any normal task preempts it at once on wake-up; at mere
            # nice 19 the kernel may let it finish its time slice (~1.5 ms) first.
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        result = target(RoleLink(name, conn, stop, live), *args)
        result = {} if result is None else result
        usage = resource.getrusage(resource.RUSAGE_SELF)
        result["cpu_s"] = usage.ru_utime + usage.ru_stime
        conn.send(("result", result))
    except BaseException:
        conn.send(("error", f"role {name} failed:\n{traceback.format_exc()}"))
    finally:
        conn.close()


class RoleProcess:
    """A role running in a child process (started at once), driven by the coordinator.

    ``stop`` and ``live`` are shared with other roles when given (the harness's
    phases); by default the role gets a stop event of its own and no counters.
    ``cpus`` pins it, ``rt_priority`` puts it under SCHED_FIFO, ``nice`` ≥ 19
    under SCHED_IDLE (bulk work).  ``context`` is ``FORK`` or ``SPAWN``.
    """

    def __init__(self, name: str, target: Callable[..., dict | None], args: tuple = (), *, stop=None,
                 live=None, cpus: tuple[int, ...] | None = None, rt_priority: int | None = None,
                 nice: int = 0, context=FORK) -> None:
        self.name = name
        self.stop = stop if stop is not None else context.Event()
        self._conn, child_conn = context.Pipe()
        self._proc = context.Process(target=_child, name=f"spine-bench-{name}", daemon=True,
                                     args=(name, target, child_conn, self.stop, live, cpus, rt_priority, nice,
                                           args))
        try:
            self._proc.start()
        except BaseException:
            self._conn.close()
            raise
        finally:
            child_conn.close()

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self._proc.pid is not None
        return self._proc.pid

    def is_alive(self) -> bool:
        """Whether the child process still runs."""
        return self._proc.is_alive()

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

    def begin(self, timeout_s: float = 60.0) -> "RoleProcess":
        """Wait until the role is set up, then let it run at once (start time: now)."""
        self.wait_ready(timeout_s)
        self.go(time.monotonic_ns())
        return self

    def has_result(self, timeout_s: float = 0.0) -> bool:
        """Whether the role has finished and sent something (result or error), waiting up to ``timeout_s``."""
        return self._conn.poll(timeout_s)

    def result(self, timeout_s: float) -> dict:
        """The role's measurements (BenchError if it failed or sent nothing within ``timeout_s``)."""
        return self._expect("result", timeout_s)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the role's process if it still runs."""
        if self._proc.is_alive():
            os.kill(self.pid, sig)

    def close(self, timeout_s: float = 5.0) -> None:
        """Wait for the process to exit, kill it if it does not, and close the pipe.

        It does not set ``stop``: a role that serves until told must be told
        first (the context manager does both).
        """
        if self._proc.is_alive():
            self.signal(signal.SIGCONT)  # in case a stall left it stopped
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._conn.close()

    def __enter__(self) -> "RoleProcess":
        try:
            return self.begin()
        except BaseException:
            self.stop.set()
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.close()
