"""sd_notify for the broker: READY, STATUS, STOPPING, RELOADING and a watchdog pacer.

The protocol is spoken by the `sdnotify` package; this module adds what a service needs
around it: reading `WATCHDOG_USEC`/`WATCHDOG_PID`, pacing `WATCHDOG=1` at half the
interval from the caller's own loop (so a stuck loop stops the pings and systemd restarts
the service), keeping STATUS to one line, and reconnecting once if systemd re-created its
socket. Without `NOTIFY_SOCKET` (not under systemd) every method is a cheap no-op.

Typical use in the broker loop::

    notify = SystemdNotify()
    ...bind sockets...
    notify.ready("broker up: 0 components")
    while running:
        timeout = min(deadlines..., notify.next_watchdog_deadline(now)) - now
        ...poll and handle one turn...
        if notify.watchdog_due(now):
            notify.ping(now)
    notify.stopping()
    notify.close()
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from types import TracebackType

import sdnotify

from spine.errors import ConfigError

__all__ = ["SystemdNotify", "MAX_STATUS_CHARS"]

log = logging.getLogger(__name__)

MAX_STATUS_CHARS = 512
"""A STATUS line longer than this is cut (systemctl shows one short line anyway)."""

_MAX_WATCHDOG_USEC = 24 * 3600 * 1_000_000  # a day; systemd's own limits are far lower
_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux


class SystemdNotify:
    """The service side of systemd's notify protocol, for one process.

    Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment when
    constructed. Sending never raises: a failed send is retried once on a fresh socket,
    then logged. An environment that systemd would never produce (a malformed
    `WATCHDOG_USEC`, a relative `NOTIFY_SOCKET`) raises ConfigError.
    """

    def __init__(self, pid: int | None = None) -> None:
        self._pid = os.getpid() if pid is None else pid
        self._address = os.environ.get("NOTIFY_SOCKET") or None
        if self._address is not None:
            _validate_socket_address(self._address)
        self._notifier: sdnotify.SystemdNotifier | None = None
        self._send_failing = False
        self._watchdog_period = _watchdog_period(self._pid) if self._address else None
        self._last_ping: float | None = None
        if self._address is not None:
            self._notifier = self._connect()

    @property
    def enabled(self) -> bool:
        """True when running under a notify-aware supervisor (NOTIFY_SOCKET is set)."""
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """systemd's WatchdogSec in seconds for this process, or None when not watched."""
        return None if self._watchdog_period is None else self._watchdog_period * 2

    def ready(self, status: str | None = None) -> None:
        """READY=1 (optionally with STATUS): send once the sockets are bound, and again
        after a reload has finished."""
        self._send("READY=1" if status is None else f"READY=1\nSTATUS={_one_line(status)}")

    def status(self, line: str) -> None:
        """STATUS=<line>: a one-line summary shown by `systemctl status`."""
        self._send(f"STATUS={_one_line(line)}")

    def stopping(self) -> None:
        """STOPPING=1: the service has begun shutting down."""
        self._send("STOPPING=1")

    def reloading(self) -> None:
        """RELOADING=1 with MONOTONIC_USEC (as Type=notify-reload in systemd ≥ 253 wants).

        Send it on SIGHUP before reloading; call `ready()` when the reload is done.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def watchdog_due(self, now: float) -> bool:
        """True when a WATCHDOG=1 ping is due at `now` (half the interval since the last)."""
        if self._watchdog_period is None:
            return False
        return self._last_ping is None or now >= self._last_ping + self._watchdog_period

    def next_watchdog_deadline(self, now: float) -> float | None:
        """When the next ping is due (`now` if one is due already); None when not watched."""
        if self._watchdog_period is None:
            return None
        if self._last_ping is None:
            return now
        return max(now, self._last_ping + self._watchdog_period)

    def ping(self, now: float) -> None:
        """Send WATCHDOG=1 and restart the pacing from `now`. Call it only from the loop
        whose health it vouches for."""
        if self._watchdog_period is None:
            return
        self._last_ping = now
        self._send("WATCHDOG=1")

    def close(self) -> None:
        """Close the notification socket. Later calls are no-ops."""
        notifier, self._notifier = self._notifier, None
        self._address = None
        self._watchdog_period = None
        if notifier is not None and notifier.socket is not None:
            notifier.socket.close()

    def __enter__(self) -> SystemdNotify:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connect(self) -> sdnotify.SystemdNotifier | None:
        try:
            with warnings.catch_warnings():
                # sdnotify drops (without closing) the socket it could not connect.
                warnings.simplefilter("ignore", ResourceWarning)
                return sdnotify.SystemdNotifier(debug=True)
        except OSError as err:
            log.warning(
                "cannot reach the systemd notification socket %s (%s): READY and watchdog "
                "pings will not be delivered",
                self._address,
                err,
            )
            return None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        # sdnotify encodes as Latin-1; passing UTF-8 bytes as Latin-1 text sends them as-is.
        wire = message.encode("utf-8").decode("latin-1")
        for attempt in (1, 2):
            if self._notifier is None:
                self._notifier = self._connect()
                if self._notifier is None:
                    return
            try:
                self._notifier.notify(wire)
            except OSError as err:
                # systemd may have re-created its socket (daemon-reexec): reconnect once.
                self._drop_notifier()
                if attempt == 2 and not self._send_failing:
                    self._send_failing = True
                    log.warning("sd_notify %r failed: %s", message.split("\n", 1)[0], err)
                continue
            self._send_failing = False
            return

    def _drop_notifier(self) -> None:
        notifier, self._notifier = self._notifier, None
        if notifier is not None and notifier.socket is not None:
            notifier.socket.close()


def _validate_socket_address(address: str) -> None:
    if not address.startswith(("/", "@")):
        raise ConfigError(
            f"NOTIFY_SOCKET={address!r} is neither an absolute AF_UNIX path nor an abstract "
            "'@name'; spine speaks sd_notify over AF_UNIX only"
        )
    if len(address.encode()) > _SUN_PATH_MAX:
        raise ConfigError(
            f"NOTIFY_SOCKET is {len(address.encode())} bytes long; an AF_UNIX address holds "
            f"at most {_SUN_PATH_MAX}"
        )


def _watchdog_period(pid: int) -> float | None:
    """Half of WATCHDOG_USEC in seconds, or None when this process is not watched."""
    raw = os.environ.get("WATCHDOG_USEC")
    if not raw:
        return None
    watched_pid = os.environ.get("WATCHDOG_PID")
    if watched_pid:
        if not watched_pid.isdigit() or len(watched_pid) > 10:
            raise ConfigError(f"WATCHDOG_PID={watched_pid!r} is not a process id")
        if int(watched_pid) != pid:
            return None  # the variables were inherited from a parent that is watched
    if not raw.isdigit() or len(raw) > 19:
        raise ConfigError(f"WATCHDOG_USEC={raw!r} is not a positive number of microseconds")
    usec = int(raw)
    if not 0 < usec <= _MAX_WATCHDOG_USEC:
        raise ConfigError(
            f"WATCHDOG_USEC={usec} is out of range (1 µs to {_MAX_WATCHDOG_USEC} µs)"
        )
    return usec / 2_000_000


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_STATUS_CHARS else line[: MAX_STATUS_CHARS - 1] + "…"
