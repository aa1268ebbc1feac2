"""Key rotation, make-before-break, under steady request traffic through a real broker."""

from __future__ import annotations

import argparse
import threading

import pytest

from spine.client.key_switch import rotation_pending, switch_keys
from spine.errors import KeyFileError, SpineError
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.client.component import Plane
from spine.protocol.framing import Kind, MsgClass
from spine.security import rotation, whitelist
from spine.security.keys import load_keypair
from spine.security.lifecycle_cli import run_rotate

REQUESTS_BEFORE = 30
REQUESTS_AFTER = 30
PLANES = (Plane.CONTROL, Plane.DATA)


class Traffic:
    """A component that sends requests one after another and counts what came back."""

    def __init__(self, comp, to: str) -> None:
        self.comp, self.to = comp, to
        self.sent = self.answered = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.progress = threading.Condition()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.sent += 1
            try:
                # Both planes; class BULK has no age limit, so a busy test machine cannot make
                # the receiver drop a request as stale (temporal coherence): a loss is a loss.
                reply = self.comp.request(self.to, new_spike(text_data=str(self.sent)), timeout=5,
                                          plane=PLANES[self.sent % 2], msg_class=MsgClass.BULK)
                assert reply.spike.text_data == f"done {self.sent}"
            except (SpineError, AssertionError) as exc:
                self.errors.append(f"request {self.sent}: {exc!r}")
                return
            with self.progress:
                self.answered += 1
                self.progress.notify_all()

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: self.answered >= count or self.errors, timeout)
        assert not self.errors, self.errors


def test_rotation_under_steady_request_traffic_loses_nothing(bus):
    bus.component("echo", kind=pb.REASONING_ENGINE)
    memory = bus.component("memory")
    client = bus.component("client")
    old_key = memory.keys.public
    echo_stop = threading.Event()
    echo = threading.Thread(target=bus.components[0].serve, kwargs={
        "handler": lambda msg: new_spike(text_data=f"echo {msg.spike.text_data}"),
        "should_stop": echo_stop.is_set, "poll_s": 0.05})
    echo.start()

    state = {"comp": memory, "own_requests": 0, "switched": threading.Event(), "error": None}
    stop = threading.Event()

    def handler(msg):
        return new_spike(text_data=f"done {msg.spike.text_data}")

    def memory_loop() -> None:
        comp = memory
        try:
            while not stop.is_set():
                if rotation_pending(comp):
                    comp = state["comp"] = switch_keys(comp, handler)
                    bus.components.append(comp)
                    state["switched"].set()
                # The rotating component's own requests go on throughout, too.
                reply = comp.request("echo", new_spike(text_data="own"), timeout=5,
                                     msg_class=MsgClass.BULK)
                assert reply.spike.text_data == "echo own"
                state["own_requests"] += 1
                while (msg := comp.recv(timeout=0.002)) is not None:
                    if msg.kind is Kind.REQUEST:
                        comp.reply(msg, handler(msg))
        except Exception as exc:  # reported by the main thread
            state["error"] = exc

    server = threading.Thread(target=memory_loop)
    traffic = Traffic(client, "memory")
    server.start()
    traffic.thread.start()
    try:
        traffic.wait_for(REQUESTS_BEFORE)
        entry = rotation.begin(bus.keys_dir, "memory")
        assert entry.rotating and entry.public_key != old_key
        assert state["switched"].wait(20), state["error"]
        bus.broker.wait_for_log("memory connected with its new key")
        traffic.wait_for(traffic.answered + REQUESTS_AFTER)
    finally:
        traffic.stop.set()
        traffic.thread.join()
        stop.set()
        server.join()
        echo_stop.set()
        echo.join()
    assert state["error"] is None, state["error"]
    assert not traffic.errors, traffic.errors
    assert traffic.answered == traffic.sent  # every request of the client got its reply
    assert state["own_requests"] > 0

    entries = [e for e in whitelist.read_entries(bus.keys_dir) if e.name == "memory"]
    assert [(e.public_key, e.rotating) for e in entries] == [(entry.public_key, False)]
    assert load_keypair(bus.keys_dir, "memory").public == entry.public_key
    assert state["comp"].keys.public == entry.public_key
    assert not rotation.pending(bus.keys_dir, "memory")
    assert not list(rotation.staging_dir(bus.keys_dir).iterdir())  # old secret deleted
    assert bus.broker.log_text().count("memory connected with its new key") == 1


def test_the_old_key_is_kept_until_the_new_one_is_seen(bus):
    memory = bus.component("memory", connect=False, heartbeat=False)
    old_key = memory.keys.public
    entry = rotation.begin(bus.keys_dir, "memory")
    assert rotation.begin(bus.keys_dir, "memory") == entry  # running it again changes nothing
    both = {e.public_key: e.rotating for e in whitelist.read_entries(bus.keys_dir)
            if e.name == "memory"}
    assert both == {old_key: False, entry.public_key: True}
    memory.connect(timeout=5)  # the old key still gets in during the rotation
    assert rotation.promote(bus.keys_dir, old_key) is None  # seeing the old key promotes nothing
    assert whitelist.Whitelist(bus.keys_dir).lookup(old_key) is not None


def test_switching_without_a_staged_key_is_refused(bus):
    memory = bus.component("memory", heartbeat=False)
    with pytest.raises(KeyFileError, match="spine keys rotate memory"):
        switch_keys(memory, lambda msg: None)


def test_rotating_an_identity_that_is_not_whitelisted_is_refused(bus):
    with pytest.raises(SpineError, match="only an admitted identity can rotate"):
        rotation.begin(bus.keys_dir, "nobody")


def test_offline_rotation_takes_effect_when_the_component_next_connects(bus, capsys):
    memory = bus.component("memory", heartbeat=False)
    old_key = memory.keys.public
    memory.close()
    args = argparse.Namespace(name="memory", keys_dir=bus.keys_dir, offline=True, wait=None)
    assert run_rotate(args) == 0
    assert "from its next start" in capsys.readouterr().out
    new_key = load_keypair(bus.keys_dir, "memory").public
    assert new_key != old_key
    assert rotation.begin(bus.keys_dir, "memory").public_key == new_key  # a rerun keeps it
    restarted = bus.component("memory", admit=False, heartbeat=False)
    assert restarted.keys.public == new_key
    bus.broker.wait_for_log("memory connected with its new key")
    entries = [e for e in whitelist.read_entries(bus.keys_dir) if e.name == "memory"]
    assert [(e.public_key, e.rotating) for e in entries] == [(new_key, False)]


def test_a_broken_whitelist_at_promotion_keeps_both_keys_and_the_broker(bus, capsys):
    memory = bus.component("memory", heartbeat=False)
    memory.close()
    args = argparse.Namespace(name="memory", keys_dir=bus.keys_dir, offline=True, wait=None)
    assert run_rotate(args) == 0
    new_key = load_keypair(bus.keys_dir, "memory").public
    bus.broker.wait_for_log(f"whitelist admits the next key {new_key.decode()} of memory")
    listed = bus.keys_dir / whitelist.FILENAME
    with listed.open("a") as fh:
        fh.write("a typo\n")
    bus.broker.wait_for_log("whitelist edit ignored")

    restarted = bus.component("memory", admit=False, heartbeat=False)
    bus.broker.wait_for_log("memory connected with its new key but the whitelist cannot be")
    reply = restarted.request_broker("status")
    assert bus.broker.proc.poll() is None and reply is not None
