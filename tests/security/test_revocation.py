"""Revocation: a permanent list consulted before the whitelist, effective at once."""

from __future__ import annotations

import os
import stat

import pytest
import zmq

from spine.client.component import Component
from spine.errors import BrokerUnavailable, RequestTimeout, WhitelistError
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import new_spike
from spine.security import revocation, rotation, whitelist
from spine.security.keys import load_or_create
from spine.security.revocation import RevocationList, revoke
from spine.security.whitelist import Entry


def key() -> bytes:
    return zmq.curve_keypair()[0]


def admit(keys_dir, name: str, kind: int = pb.MEMORY_SYSTEM) -> bytes:
    public = key()
    whitelist.add_entry(keys_dir, Entry(public, name, kind))
    return public


def test_revoking_moves_the_key_from_the_whitelist_to_the_revocation_list(tmp_path):
    alice, bob = admit(tmp_path, "alice"), admit(tmp_path, "bob")
    records = revoke(tmp_path, "alice")
    assert [(r.public_key, r.name) for r in records] == [(alice, "alice")]
    assert records[0].revoked_at.endswith("+00:00")  # UTC, timezone-aware
    assert [e.public_key for e in whitelist.read_entries(tmp_path)] == [bob]
    assert RevocationList(tmp_path).contains(alice)
    assert not RevocationList(tmp_path).contains(bob)
    path = tmp_path / revocation.FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_revoking_by_key_works_too(tmp_path):
    alice = admit(tmp_path, "alice")
    revoke(tmp_path, alice.decode())
    assert alice in RevocationList(tmp_path)


def test_revoking_a_rotating_identity_revokes_both_keys(tmp_path):
    keys_dir = tmp_path / "keys"
    old = load_or_create(keys_dir, "memory").public
    whitelist.add_entry(keys_dir, Entry(old, "memory", pb.MEMORY_SYSTEM))
    new = rotation.begin(keys_dir, "memory").public_key
    revoke(keys_dir, "memory")
    revoked = RevocationList(keys_dir)
    assert old in revoked and new in revoked
    assert whitelist.read_entries(keys_dir) == []


def test_revoking_twice_says_it_was_already_revoked(tmp_path):
    admit(tmp_path, "alice")
    revoke(tmp_path, "alice")
    with pytest.raises(WhitelistError, match="already revoked"):
        revoke(tmp_path, "alice")


def test_revoking_an_unknown_identity_is_refused(tmp_path):
    with pytest.raises(WhitelistError, match="no whitelist entry named 'ghost'"):
        revoke(tmp_path, "ghost")


def test_revocation_is_permanent_in_a_running_list(tmp_path):
    alice = admit(tmp_path, "alice")
    revoke(tmp_path, "alice")
    live = RevocationList(tmp_path)
    (tmp_path / revocation.FILENAME).unlink()  # deleting the file undoes nothing
    live.refresh()
    assert alice in live
    (tmp_path / revocation.FILENAME).write_text("garbage line\n")
    assert live.refresh() is False
    assert alice in live and live.reload_error and "expected" in live.reload_error


def test_a_new_revocation_is_picked_up_without_a_restart(tmp_path):
    live = RevocationList(tmp_path)
    alice = admit(tmp_path, "alice")
    assert alice not in live
    revoke(tmp_path, "alice")
    assert live.refresh() is True
    assert alice in live


def test_an_oversized_revocation_list_is_refused(tmp_path):
    with open(tmp_path / revocation.FILENAME, "wb") as fh:
        fh.truncate(revocation.MAX_FILE_BYTES + 1)
    with pytest.raises(WhitelistError, match="larger than"):
        revocation.read_records(tmp_path)


def test_a_bad_key_in_the_list_names_its_line(tmp_path):
    (tmp_path / revocation.FILENAME).write_text("# header\nnot-a-key alice 2026-01-01T00:00:00+00:00\n")
    with pytest.raises(WhitelistError, match=r"revoked.txt:2"):
        revocation.read_records(tmp_path)


# ---------------------------------------------------------------- through a real broker

def test_revocation_stops_routing_at_once_and_blocks_reconnection(bus):
    alice = bus.component("alice", heartbeat=False)
    bob = bus.component("bob", kind=pb.REASONING_ENGINE, heartbeat=False)
    carol = bus.component("carol", heartbeat=False)
    alice.send("bob", new_spike(text_data="before"))
    msg = bob.recv(timeout=5)
    assert msg is not None and msg.sender == "alice"

    alice_key = alice.keys.public
    revoke(bus.keys_dir, "alice")
    bus.broker.wait_for_log("alice removed from the whitelist")

    # From now on nothing alice sends is routed, on either plane.
    with pytest.raises(RequestTimeout):
        alice.request("bob", new_spike(text_data="after"), timeout=1.0)
    alice.send("bob", new_spike(text_data="after, one way"))
    bus.broker.wait_for_log("not_whitelisted")
    # Other components are unharmed: carol's message arrives, and alice's never did.
    carol.send("bob", new_spike(text_data="carol"))
    msg = bob.recv(timeout=5)
    assert msg is not None and (msg.sender, msg.spike.text_data) == ("carol", "carol")
    assert bob.recv(timeout=0.2) is None

    # It cannot reconnect, not even if its key is put back into the whitelist by mistake.
    whitelist.add_entry(bus.keys_dir, Entry(alice_key, "alice", pb.MEMORY_SYSTEM))
    bus.broker.wait_for_log("whitelist entry alice ignored: its key")
    with pytest.raises(RequestTimeout):  # its old connection stays cut off, too
        alice.request("bob", new_spike(text_data="still revoked"), timeout=1.0)
    again = Component("alice", keys_dir=bus.keys_dir, endpoints=bus.broker.ipc,
                      broker_key=bus.broker.public_key, heartbeat=False)
    try:
        with pytest.raises(BrokerUnavailable):
            again.connect(timeout=1.5)
    finally:
        again.close()
    assert "reason=revoked key" in bus.broker.log_text()
    assert os.path.exists(bus.keys_dir / revocation.FILENAME)


def test_an_unreadable_revocation_list_at_start_is_refused_not_ignored(tmp_path):
    (tmp_path / revocation.FILENAME).write_text("garbage line\n")
    with pytest.raises(WhitelistError, match=":1:"):
        RevocationList(tmp_path)  # starting with nothing revoked would let revoked keys in
