"""sd_notify: the test binds its own NOTIFY_SOCKET and reads what the broker side sends."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator

import pytest

from spine.broker.notify import MAX_STATUS_CHARS, SystemdNotify
from spine.errors import ConfigError


class NotifySocket:
    """A bound AF_UNIX datagram socket standing in for systemd's notification socket."""

    def __init__(self, address: str, sock: socket.socket) -> None:
        self.address = address
        self.sock = sock
        sock.settimeout(5.0)

    def receive(self) -> str:
        return self.sock.recv(4096).decode("utf-8")

    def nothing_pending(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096)
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(5.0)
        return False


@pytest.fixture
def path_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    # A short directory: an AF_UNIX path must fit in 108 bytes.
    directory = tempfile.mkdtemp(prefix="spn-")
    address = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    holder = NotifySocket(address, sock)
    try:
        yield holder
    finally:
        holder.sock.close()
        shutil.rmtree(directory)


@pytest.fixture
def abstract_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    name = f"spine-test-notify-{secrets.token_hex(8)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        yield NotifySocket("@" + name, sock)
    finally:
        sock.close()


@pytest.fixture
def no_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


def test_ready_status_stopping_reach_the_socket(path_socket: NotifySocket) -> None:
    with SystemdNotify() as notify:
        assert notify.enabled
        notify.ready()
        notify.status("3 components, 0 degraded")
        notify.stopping()
        assert path_socket.receive() == "READY=1"
        assert path_socket.receive() == "STATUS=3 components, 0 degraded"
        assert path_socket.receive() == "STOPPING=1"


def test_ready_can_carry_a_status(path_socket: NotifySocket) -> None:
    with SystemdNotify() as notify:
        notify.ready("listening")
    assert path_socket.receive() == "READY=1\nSTATUS=listening"


def test_abstract_notify_socket_is_supported(abstract_socket: NotifySocket) -> None:
    with SystemdNotify() as notify:
        notify.ready()
    assert abstract_socket.receive() == "READY=1"


def test_reloading_carries_monotonic_usec(path_socket: NotifySocket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    with SystemdNotify() as notify:
        notify.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = path_socket.receive().split("\n")
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC" and before <= int(value) <= after


def test_status_is_kept_to_one_bounded_line(path_socket: NotifySocket) -> None:
    with SystemdNotify() as notify:
        notify.status("two\nlines\tand  spaces")
        notify.status("x" * 5000)
    assert path_socket.receive() == "STATUS=two lines and spaces"
    long_line = path_socket.receive()
    assert len(long_line) == len("STATUS=") + MAX_STATUS_CHARS


def test_status_is_sent_as_utf8(path_socket: NotifySocket) -> None:
    with SystemdNotify() as notify:
        notify.status("physics ≤ 113 µs")
    assert path_socket.receive() == "STATUS=physics ≤ 113 µs"


def test_everything_is_a_noop_without_notify_socket(no_systemd: None) -> None:
    notify = SystemdNotify()
    assert not notify.enabled
    notify.ready("x")
    notify.status("x")
    notify.reloading()
    notify.stopping()
    assert notify.watchdog_interval is None
    assert not notify.watchdog_due(0.0)
    assert notify.next_watchdog_deadline(0.0) is None
    notify.ping(0.0)
    notify.close()


def test_watchdog_usec_without_notify_socket_is_ignored(
    no_systemd: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    assert SystemdNotify().watchdog_interval is None


def test_watchdog_pings_at_half_the_interval(
    path_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    with SystemdNotify() as notify:
        assert notify.watchdog_interval == 2.0
        assert notify.watchdog_due(100.0), "the first ping is due at once"
        assert notify.next_watchdog_deadline(100.0) == 100.0
        notify.ping(100.0)
        assert path_socket.receive() == "WATCHDOG=1"
        assert not notify.watchdog_due(100.999999)
        assert notify.next_watchdog_deadline(100.5) == 101.0
        assert notify.watchdog_due(101.0)
        assert notify.next_watchdog_deadline(102.0) == 102.0
        notify.ping(101.2)
        assert notify.next_watchdog_deadline(101.2) == pytest.approx(102.2)
        assert path_socket.receive() == "WATCHDOG=1"
        assert path_socket.nothing_pending()


def test_a_loop_that_stops_turning_stops_pinging(
    path_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    with SystemdNotify() as notify:
        sent = 0
        for now in (0.0, 0.25, 0.5, 0.75, 1.0):  # a healthy loop turning every 250 ms
            if notify.watchdog_due(now):
                notify.ping(now)
                sent += 1
        assert sent == 3  # at 0.0, 0.5 and 1.0
        for _ in range(sent):
            assert path_socket.receive() == "WATCHDOG=1"
        # The loop is now stuck: nobody calls ping, so nothing more reaches systemd.
        assert path_socket.nothing_pending()


def test_watchdog_for_another_pid_is_not_ours(
    path_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    with SystemdNotify() as notify:
        assert notify.watchdog_interval is None
        assert not notify.watchdog_due(0.0)
        notify.ping(0.0)
    assert path_socket.nothing_pending()


def test_watchdog_for_our_pid_is_honoured(
    path_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    with SystemdNotify() as notify:
        assert notify.watchdog_interval == 3.0


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5", "9" * 30, "86400000001"])
def test_malformed_watchdog_usec_is_refused(
    path_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", value)
    with pytest.raises(ConfigError, match="WATCHDOG_USEC"):
        SystemdNotify()


def test_malformed_watchdog_pid_is_refused(
    path_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", "me")
    with pytest.raises(ConfigError, match="WATCHDOG_PID"):
        SystemdNotify()


@pytest.mark.parametrize("address", ["relative/path", "vsock:2:1234", "/" + "x" * 200])
def test_unusable_notify_socket_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    with pytest.raises(ConfigError, match="NOTIFY_SOCKET"):
        SystemdNotify()


def test_missing_socket_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent-spine-test/notify")
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    with SystemdNotify() as notify:
        notify.ready()
    assert "cannot reach the systemd notification socket" in caplog.text


def test_recreated_socket_is_reconnected(path_socket: NotifySocket) -> None:
    with SystemdNotify() as notify:
        notify.ready()
        assert path_socket.receive() == "READY=1"
        # systemd re-executes and binds a fresh socket at the same path.
        path_socket.sock.close()
        os.unlink(path_socket.address)
        fresh = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        fresh.bind(path_socket.address)
        path_socket.sock = fresh
        fresh.settimeout(5.0)
        notify.status("after reexec")
        assert path_socket.receive() == "STATUS=after reexec"


def test_close_is_idempotent_and_silences(path_socket: NotifySocket) -> None:
    notify = SystemdNotify()
    notify.close()
    notify.close()
    notify.ready()
    assert not notify.enabled
    assert path_socket.nothing_pending()
