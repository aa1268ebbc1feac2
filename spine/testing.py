"""Helpers for testing spine (as ``trio.testing``): a real broker in a child process, free TCP ports.

The test suite, the benchmarks and the latency harness start their brokers with
``BrokerProcess``; a component author can do the same in their own tests::

    from spine.testing import BrokerProcess

    with BrokerProcess(keys_dir, runtime_dir) as broker:   # returns once its sockets are bound
        comp = spine.Component("me", keys_dir=keys_dir, endpoints=broker.ipc,
                               broker_key=broker.public_key)
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from spine.endpoints import Endpoints
from spine.errors import BrokerUnavailable, HarnessError


def free_tcp_base(host: str = "127.0.0.1", count: int = 4, attempts: int = 50) -> int:
    """A port P such that P..P+count-1 were all free on ``host`` a moment ago."""
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind((host, 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        held = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                held.append(s)
                s.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise HarnessError(f"found no {count} consecutive free TCP ports on {host}")


class BrokerProcess:
    """A ``spine broker`` child process; ``start()`` returns once its sockets are bound.

    Its log (stderr) goes to ``log_path``. ``stop()`` sends SIGTERM and waits; the context
    manager always stops it, killing it if it does not exit.
    """

    def __init__(self, keys_dir: Path, runtime_dir: Path, *, tcp_host: str | None = None,
                 tcp_port: int | None = None, log_path: Path | None = None,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.keys_dir = Path(keys_dir)
        self.runtime_dir = Path(runtime_dir)
        self.tcp_host = tcp_host
        self.tcp_port = tcp_port
        self.log_path = Path(log_path) if log_path else self.runtime_dir.parent / "broker.log"
        self.extra_args = extra_args or []
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.public_key: bytes | None = None

    @property
    def ipc(self) -> Endpoints:
        """The broker's ipc endpoints."""
        return Endpoints.ipc(self.runtime_dir)

    @property
    def tcp(self) -> Endpoints | None:
        """The broker's TCP endpoints, if TCP is on."""
        return Endpoints.tcp(self.tcp_host, self.tcp_port) if self.tcp_host else None

    def command(self) -> list[str]:
        """The command line that starts the broker."""
        cmd = [sys.executable, "-m", "spine.broker.main", "--keys-dir", str(self.keys_dir),
               "--runtime-dir", str(self.runtime_dir), "--log-level", "INFO", *self.extra_args]
        if self.tcp_host:
            cmd += ["--tcp", f"{self.tcp_host}:{self.tcp_port}"]
        return cmd

    def start(self, timeout: float = 15.0) -> "BrokerProcess":
        """Start the broker and wait until it says it is ready (BrokerUnavailable if not)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=log,
                                         stdin=subprocess.DEVNULL, env=self.env)
        finally:
            log.close()
        line = self._read_line(timeout)
        if not line.startswith("spine broker ready"):
            self.stop()
            raise BrokerUnavailable(f"broker did not start: {line!r}; see {self.log_path}:\n"
                                    f"{self.log_text()[-2000:]}")
        self.public_key = line.rsplit(" ", 1)[1].encode()
        return self

    def _read_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    return buf.decode(errors="replace") or "<no output before the timeout>"
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    return buf.decode(errors="replace") or "<exited>"
                buf += chunk
        return buf.split(b"\n", 1)[0].decode(errors="replace")

    def log_text(self) -> str:
        """Everything the broker has logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, needle: str, timeout: float = 10.0) -> str:
        """Wait until ``needle`` appears in the broker's log; return the log (HarnessError if not)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if needle in text:
                return text
            if time.monotonic() >= deadline:
                raise HarnessError(f"{needle!r} not in the broker log within {timeout} s")
            time.sleep(0.02)  # polling a file with a deadline; there is no event to wait on

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the broker."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self) -> "BrokerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
