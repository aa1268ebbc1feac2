"""Bootstrap pairing (SEC-04) end to end: a real broker, a real newcomer, real sockets."""

from __future__ import annotations

import argparse
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import zmq

from spine.client.component import Component, Plane
from spine.client.status import fetch_status
from spine.errors import BrokerUnavailable
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.security import whitelist
from spine.security.invite import Invite
from spine.security.keys import load_or_create
from spine.security.pair_cli import run_pair
from spine.testing import BrokerProcess, free_tcp_base

INVITE_RE = re.compile(r"spine1\.[0-9a-f]{64}\.[0-9a-f]{64}")


class FreshBroker:
    """A broker process over ipc and tcp whose key directory starts as the test leaves it."""

    def __init__(self, root: Path, window_s: float = 300.0) -> None:
        self.root = root
        self.keys_dir = root / "keys"
        self.keys_dir.mkdir(mode=0o700, exist_ok=True)
        self.runtime_dir = root / "run"
        config = root / "broker.toml"
        config.write_text(f"[broker]\npairing_window_s = {window_s}\n")
        self.process = BrokerProcess(self.keys_dir, self.runtime_dir, tcp_host="127.0.0.1",
                                     tcp_port=free_tcp_base(), log_path=root / "broker.log",
                                     extra_args=["--config", str(config)])
        self.components: list[Component] = []

    def start(self) -> "FreshBroker":
        self.process.start()
        return self

    def invites(self) -> list[str]:
        return INVITE_RE.findall(self.process.log_text())

    def wait_for_invite(self, count: int = 1) -> str:
        deadline = time.monotonic() + 10
        while len(self.invites()) < count:
            assert time.monotonic() < deadline, "no invite in the broker's log"
            self.process.wait_for_log("PAIRING WINDOW OPEN", timeout=1)
        return self.invites()[count - 1]

    def pair(self, invite: str, name: str, *, kind: str = "MEMORY_SYSTEM", tcp: bool = False,
             keys_dir: Path | None = None) -> int:
        args = argparse.Namespace(
            action="join", invite=invite, name=name, kind=kind,
            keys_dir=keys_dir or self.root / f"newcomer-{name}", runtime_dir=self.runtime_dir,
            tcp=f"127.0.0.1:{self.process.tcp_port}" if tcp else None, timeout=5.0)
        return run_pair(args)

    def admit(self, name: str, kind: int) -> None:
        keys = load_or_create(self.keys_dir, name)
        whitelist.add_entry(self.keys_dir, whitelist.Entry(keys.public, name, kind))

    def component(self, name: str, keys_dir: Path | None = None, **kwargs) -> Component:
        comp = Component(name, keys_dir=keys_dir or self.keys_dir, runtime_dir=self.runtime_dir,
                         **kwargs)
        self.components.append(comp)
        return comp

    def open_window(self, admit: str | None = None) -> int:
        args = argparse.Namespace(action="open", invite="open", name="cli", kind=None,
                                  keys_dir=self.keys_dir, runtime_dir=self.runtime_dir, tcp=None,
                                  timeout=5.0, admit=admit)
        return run_pair(args)

    def pairing_socket_gone(self, timeout: float = 5.0) -> bool:
        path = self.process.ipc.pairing[len("ipc://"):]
        deadline = time.monotonic() + timeout
        while os.path.exists(path):
            if time.monotonic() >= deadline:
                return False
            self.process.wait_for_log("pairing window closed", timeout=1)
            time.sleep(0.02)  # the socket goes CLOSE_GRACE_S after the log line; poll the file
        return True

    def close(self) -> None:
        for comp in self.components:
            comp.close()
        self.process.stop()


@pytest.fixture
def fresh(short_tmp):
    broker = FreshBroker(short_tmp)
    try:
        yield broker
    finally:
        broker.close()


def forged(invite: str, *, token: bytes | None = None, broker_key: bytes | None = None) -> str:
    real = Invite.parse(invite)
    return Invite(broker_key or real.broker_key, token or real.token).text()


def test_fresh_broker_with_empty_whitelist_logs_an_invite(fresh):
    fresh.start()
    invite = Invite.parse(fresh.wait_for_invite())
    assert invite.broker_key == fresh.process.public_key
    assert os.path.exists(fresh.process.ipc.pairing[len("ipc://"):])
    assert len(fresh.invites()) == 1
    assert not any(invite.token.hex() in p.read_text(errors="replace")
                   for p in fresh.keys_dir.rglob("*") if p.is_file())


@pytest.mark.parametrize("tcp", [False, True], ids=["ipc", "tcp"])
def test_newcomer_pairs_then_talks_on_both_planes(fresh, capsys, tcp):
    fresh.start()
    invite = fresh.wait_for_invite()
    assert fresh.pair(invite, "memory-1", tcp=tcp) == 0
    assert "paired memory-1 (MEMORY_SYSTEM)" in capsys.readouterr().out
    newcomer_dir = fresh.root / "newcomer-memory-1"
    assert (newcomer_dir / "broker.key").stat().st_mode & 0o777 == 0o644
    entry = whitelist.Whitelist(fresh.keys_dir).by_name("memory-1")
    assert entry is not None and entry.kind == pb.MEMORY_SYSTEM
    assert fresh.pairing_socket_gone()

    fresh.admit("peer", pb.REASONING_ENGINE)
    peer = fresh.component("peer", broker_key=fresh.process.public_key).connect(timeout=5)
    newcomer = fresh.component("memory-1", keys_dir=newcomer_dir).connect(timeout=5)  # broker.key
    stop = threading.Event()
    server = threading.Thread(target=peer.serve, kwargs={
        "handler": lambda msg: new_spike(text_data=f"hello {msg.sender}"),
        "should_stop": stop.is_set, "poll_s": 0.05})
    server.start()
    try:
        for plane in Plane:
            reply = newcomer.request("peer", new_spike(text_data="hi"), plane=plane, timeout=5)
            assert (reply.sender, reply.spike.text_data) == ("peer", "hello memory-1")
    finally:
        stop.set()
        server.join()


def test_second_use_of_a_token_is_refused(fresh, capsys):
    fresh.start()
    invite = fresh.wait_for_invite()
    assert fresh.pair(invite, "first") == 0
    assert fresh.pairing_socket_gone()
    assert fresh.pair(invite, "second") == 1
    assert "no pairing window is open" in capsys.readouterr().out

    fresh.admit("cli", pb.CLI_CONTROLLER)
    assert fresh.open_window() == 0
    fresh.wait_for_invite(count=2)
    assert fresh.pair(invite, "second") == 1
    assert "the token was already used" in capsys.readouterr().out
    key = load_or_create(fresh.root / "newcomer-second", "second").public.decode()
    log = fresh.process.wait_for_log("the token was already used")
    assert re.search(rf"SECURITY: pairing refused for key {re.escape(key)} from \S+: "
                     r"the token was already used \[failures in window: 1\]", log)
    assert whitelist.Whitelist(fresh.keys_dir).by_name("second") is None
    assert "PAIRING WINDOW OPEN (operator)" in log


def test_token_after_the_window_expired_is_refused(short_tmp, capsys):
    broker = FreshBroker(short_tmp, window_s=1.0).start()
    try:
        invite = broker.wait_for_invite()
        broker.process.wait_for_log("pairing window closed: expired", timeout=10)
        assert broker.pairing_socket_gone()
        assert broker.pair(invite, "late") == 1
        assert "no pairing window is open" in capsys.readouterr().out
        assert whitelist.read_entries(broker.keys_dir) == []
    finally:
        broker.close()


def test_five_wrong_tokens_close_the_window(fresh, capsys):
    fresh.start()
    invite = fresh.wait_for_invite()
    for attempt in range(5):
        assert fresh.pair(forged(invite, token=os.urandom(32)), f"guess{attempt}") == 1
        assert "the proof does not match the token" in capsys.readouterr().out
    log = fresh.process.wait_for_log("pairing window closed: lockout")
    assert log.count("SECURITY: pairing refused for key") == 5
    assert "[failures in window: 5; window closed]" in log
    assert fresh.pairing_socket_gone()
    assert fresh.pair(invite, "honest") == 1  # the real token is of no use any more
    assert whitelist.read_entries(fresh.keys_dir) == []


def test_pairing_while_no_window_is_open_is_refused(fresh, capsys):
    fresh.admit("cli", pb.CLI_CONTROLLER)
    fresh.admit("worker", pb.MEMORY_SYSTEM)
    fresh.start()
    assert fresh.invites() == []
    fake = Invite(fresh.process.public_key, os.urandom(32)).text()
    assert fresh.pair(fake, "intruder") == 1
    assert "no pairing window is open" in capsys.readouterr().out

    # Only a whitelisted CLI_CONTROLLER may open a window, and it is never shown the invite.
    args = argparse.Namespace(action="open", invite="open", name="worker", kind=None,
                              keys_dir=fresh.keys_dir, runtime_dir=fresh.runtime_dir, tcp=None,
                              timeout=5.0)
    assert run_pair(args) == 1
    assert "refused to open a pairing window" in capsys.readouterr().out
    assert fresh.invites() == []
    assert fresh.open_window() == 0
    out = capsys.readouterr().out
    assert "pairing window open" in out and "spine1." not in out
    assert len(fresh.invites()) == 1


def test_wrong_broker_key_in_the_invite_cannot_complete(fresh, capsys):
    fresh.start()
    invite = fresh.wait_for_invite()
    impostor_key, _ = zmq.curve_keypair()
    assert fresh.pair(forged(invite, broker_key=impostor_key), "pinned") == 1
    assert "handshake" in capsys.readouterr().out
    assert not (fresh.root / "newcomer-pinned" / "broker.key").exists()
    assert whitelist.read_entries(fresh.keys_dir) == []
    assert fresh.pair(invite, "pinned") == 0  # the window was not touched


def test_unknown_keys_stay_refused_on_the_main_planes_while_a_window_is_open(fresh):
    fresh.start()
    fresh.wait_for_invite()
    stranger = fresh.component("stranger", keys_dir=fresh.root / "stranger",
                               broker_key=fresh.process.public_key, heartbeat=False)
    with pytest.raises(BrokerUnavailable):
        stranger.connect(timeout=1.0)
    assert "reason=unknown key" in fresh.process.log_text()


def test_a_malformed_pairing_request_is_refused_and_counted(fresh):
    fresh.start()
    fresh.wait_for_invite()
    public, secret = zmq.curve_keypair()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.curve_secretkey, sock.curve_publickey = secret, public
    sock.curve_serverkey = fresh.process.public_key
    try:
        sock.connect(fresh.process.ipc.pairing)
        sock.send_multipart([b"hello", b"broker"])  # not a pairing request
        assert sock.poll(5000)
        protocol, status, text = sock.recv_multipart()
        assert (protocol, status) == (b"spine-pair/1", b"REFUSED")
        assert b"malformed" in text
    finally:
        sock.close()
        ctx.term()
    log = fresh.process.wait_for_log("the pairing request is malformed")
    assert f"SECURITY: pairing refused for key {public.decode()}" in log
    assert "[failures in window: 1]" in log


def test_a_broken_whitelist_never_kills_the_broker(fresh, capsys):
    """A typo in whitelist.txt while a window is open, then SIGHUP with no entries yet: the
    broker refuses the pairing, keeps the last good (empty) state, says where the typo is,
    and serves a good client as soon as the file is fixed."""
    fresh.start()
    invite = fresh.wait_for_invite()
    listed = fresh.keys_dir / whitelist.FILENAME
    listed.write_text("# edited by hand\nnot-a-key memory-1 MEMORY_SYSTEM\n")
    assert fresh.pair(invite, "memory-1") != 0
    assert "whitelist" in capsys.readouterr().out
    assert fresh.process.proc.poll() is None
    fresh.process.wait_for_log(f"{listed}:2")

    fresh.process.signal(signal.SIGHUP)
    fresh.process.wait_for_log("reloaded (SIGHUP): whitelist unchanged, its edit has an error")
    assert fresh.process.proc.poll() is None

    listed.unlink()
    fresh.admit("peer", pb.REASONING_ENGINE)
    fresh.process.wait_for_log("whitelist admits peer")
    peer = fresh.component("peer", broker_key=fresh.process.public_key).connect(timeout=5)
    assert "peer" in str(fetch_status(peer))


def test_an_invite_is_an_administrator_credential_only_when_asked(fresh, capsys):
    fresh.start()
    invite = fresh.wait_for_invite()  # the bootstrap window: every kind but CLI_CONTROLLER
    assert "admitting ORCHESTRATOR, PHYSICS_ENGINE" in fresh.process.log_text()
    assert fresh.pair(invite, "admin", kind="CLI_CONTROLLER") == 1
    assert "does not admit that kind" in capsys.readouterr().out
    assert fresh.pair(invite, "memory-1") == 0
    capsys.readouterr()

    fresh.admit("cli", pb.CLI_CONTROLLER)
    fresh.process.wait_for_log("whitelist admits cli")
    assert fresh.pairing_socket_gone()
    assert fresh.open_window(admit="cli_controller") == 0
    assert "admitting CLI_CONTROLLER;" in capsys.readouterr().out
    assert fresh.pair(fresh.wait_for_invite(2), "admin-2", kind="CLI_CONTROLLER") == 0
    entry = whitelist.Whitelist(fresh.keys_dir).by_name("admin-2")
    assert entry is not None and entry.kind == pb.CLI_CONTROLLER
