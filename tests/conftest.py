"""Fixtures shared by the integration tests: a real broker process and real components."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from spine.client.component import Component
from spine.protocol import neural_spike_pb2 as pb
from spine.security.keys import load_or_create
from spine.security.whitelist import Entry, add_entry
from spine.testing import BrokerProcess, free_tcp_base


class Bus:
    """A broker child process over ipc and tcp, with a key directory and a component factory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.keys_dir = root / "keys"
        self.runtime_dir = root / "run"
        self.broker = BrokerProcess(self.keys_dir, self.runtime_dir, tcp_host="127.0.0.1",
                                    tcp_port=free_tcp_base(), log_path=root / "broker.log")
        self.components: list[Component] = []

    def admit(self, name: str, kind: int = pb.MEMORY_SYSTEM, source: str | None = None,
              keys_dir: Path | None = None) -> bytes:
        """Create (or load) the identity ``name`` and whitelist it; return its public key."""
        keys = load_or_create(keys_dir or self.keys_dir, name)
        add_entry(self.keys_dir, Entry(keys.public, name, kind, source), replace=True)
        return keys.public

    def admit_and_wait(self, name: str, kind: int = pb.MEMORY_SYSTEM) -> bytes:
        """Whitelist ``name`` and wait until the running broker has read the edit."""
        public = self.admit(name, kind)
        self.broker.wait_for_log(f"whitelist admits {name}\n")
        return public

    def component(self, name: str, *, kind: int = pb.MEMORY_SYSTEM, tcp: bool = False,
                  admit: bool = True, connect: bool = True, **kwargs) -> Component:
        """A component of this bus, whitelisted and connected unless told otherwise."""
        if admit:
            self.admit(name, kind)
        comp = Component(name, keys_dir=kwargs.pop("keys_dir", self.keys_dir),
                         endpoints=self.broker.tcp if tcp else self.broker.ipc,
                         broker_key=kwargs.pop("broker_key", self.broker.public_key), **kwargs)
        self.components.append(comp)
        if connect:
            comp.connect(timeout=kwargs.get("timeout", 5.0))
        return comp

    def close(self) -> None:
        for comp in self.components:
            comp.close()
        self.broker.stop()


@pytest.fixture
def short_tmp():
    """A short temporary directory (ipc paths must fit in 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="spine-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bus(short_tmp):
    """A running broker (ipc and tcp) with its key directory; stopped after the test."""
    bus = Bus(short_tmp)
    bus.keys_dir.mkdir(mode=0o700)
    bus.broker.start()
    try:
        yield bus
    finally:
        bus.close()
