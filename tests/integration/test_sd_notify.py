"""The broker under a stand-in systemd: the test binds NOTIFY_SOCKET and reads what the
broker process says (READY, WATCHDOG pings from its loop, STATUS, RELOADING, STOPPING)."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import time

import pytest

from liveness_support import LiveBus, process_state, wait_until

WATCHDOG_USEC = 400_000  # WatchdogSec=0.4: the broker pings every 0.2 s
PING_PERIOD_S = WATCHDOG_USEC / 2e6
STALL_S = 1.0            # longer than WatchdogSec: systemd would restart the broker


class NotifySocket:
    """systemd's side of the notify protocol: a bound AF_UNIX datagram socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)

    def next(self, timeout: float) -> tuple[float, dict[str, str]] | None:
        """The next datagram as (arrival time, {KEY: value}), or None within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        return time.monotonic(), fields

    def wait_for(self, key: str, timeout: float) -> tuple[float, dict[str, str], list[dict]]:
        """Read until a datagram with ``key``; (its time, it, the datagrams before it)."""
        deadline = time.monotonic() + timeout
        before: list[dict] = []
        while (remaining := deadline - time.monotonic()) > 0:
            got = self.next(remaining)
            if got is None:
                break
            if key in got[1]:
                return got[0], got[1], before
            before.append(got[1])
        raise TimeoutError(f"no {key}= from the broker within {timeout} s; got {before}")

    def drain(self) -> None:
        """Discard what was sent already."""
        while self.next(0.001) is not None:
            pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notified(short_tmp):
    notify = NotifySocket(str(short_tmp / "notify"))
    bus = LiveBus(short_tmp, env={**os.environ, "NOTIFY_SOCKET": notify.path,
                                  "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    try:
        bus.start()
        yield bus, notify
    finally:
        bus.close()
        notify.close()


def test_broker_speaks_sd_notify_and_its_watchdog_pings_stop_while_it_is_stalled(notified):
    bus, notify = notified
    _, ready, before = notify.wait_for("READY", 5)
    assert ready["READY"] == "1" and "components" in ready["STATUS"] and before == []

    pings = [notify.wait_for("WATCHDOG", 2)[0] for _ in range(8)]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert 0.5 * PING_PERIOD_S <= statistics.median(gaps) <= 1.5 * PING_PERIOD_S, gaps

    # a stalled loop sends nothing, so systemd's watchdog would fire
    bus.broker.signal(signal.SIGSTOP)
    try:
        wait_until(lambda: process_state(bus.broker.proc.pid) == "T", 5, "the broker stopping")
        notify.drain()
        last_before = time.monotonic()
        assert notify.next(STALL_S) is None, "a stopped broker sent a notification"
    finally:
        bus.broker.signal(signal.SIGCONT)
    resumed_at, _, _ = notify.wait_for("WATCHDOG", 2)
    assert resumed_at - last_before >= STALL_S

    bus.broker.signal(signal.SIGHUP)
    _, reloading, _ = notify.wait_for("RELOADING", 5)
    assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
    _, ready_again, _ = notify.wait_for("READY", 5)
    assert "STATUS" in ready_again

    bus.broker.signal(signal.SIGTERM)
    _, stopping, _ = notify.wait_for("STOPPING", 5)
    assert stopping["STOPPING"] == "1"
    assert bus.broker.proc.wait(5) == 0
    print(f"\nWATCHDOG=1 every {statistics.median(gaps) * 1000:.0f} ms (median of {len(gaps)}); "
          f"none for {resumed_at - last_before:.2f} s while stopped")
