"""The ZAP policy (RFC 27) fed hand-built requests: who is admitted, as whom, and the counts."""

from __future__ import annotations

import logging

import pytest
import zmq
from zmq.utils import z85

from spine.protocol import neural_spike_pb2 as pb
from spine.security.whitelist import Entry, Whitelist, add_entry
from spine.security.zap import DOMAIN_MAIN, DOMAIN_PAIRING, ZAP_VERSION, ZapHandler

IPC_PEER = b"localhost:0:0:4573"   # as libzmq reports an ipc peer
TCP_PEER = b"127.0.0.1"


def new_key() -> bytes:
    return zmq.curve_keypair()[0]


def zap_request(key: bytes, address: bytes = TCP_PEER, *, domain: str = DOMAIN_MAIN,
                mechanism: bytes = b"CURVE", request_id: bytes = b"7") -> list[bytes]:
    """The frames libzmq sends to the ZAP handler for a CURVE handshake with ``key``."""
    return [ZAP_VERSION, request_id, domain.encode(), address, b"", mechanism, z85.decode(key)]


def reply(request_id: bytes, code: bytes, text: bytes, user_id: bytes) -> list[bytes]:
    return [ZAP_VERSION, request_id, code, text, user_id, b""]


@pytest.fixture
def keys_dir(tmp_path):
    return tmp_path


@pytest.fixture
def physics_key(keys_dir) -> bytes:
    key = new_key()
    add_entry(keys_dir, Entry(key, "physics", pb.PHYSICS_ENGINE, "ipc"))
    return key


@pytest.fixture
def memory_key(keys_dir) -> bytes:
    key = new_key()
    add_entry(keys_dir, Entry(key, "memory-1", pb.MEMORY_SYSTEM))
    return key


@pytest.fixture
def handler(keys_dir, physics_key, memory_key) -> ZapHandler:
    return ZapHandler(Whitelist(keys_dir))


def test_admitted_key_gets_its_public_key_as_user_id(handler, memory_key):
    assert handler.handle(zap_request(memory_key)) == reply(b"7", b"200", b"OK", memory_key)
    assert handler.stats.allowed == 1
    assert sum(handler.stats.denied.values()) == 0


def test_pinned_key_is_admitted_from_its_pin(handler, physics_key):
    assert handler.handle(zap_request(physics_key, IPC_PEER)) == \
        reply(b"7", b"200", b"OK", physics_key)


def test_unknown_key_is_refused_counted_and_logged_with_key_and_address(handler, caplog):
    stranger = new_key()
    with caplog.at_level(logging.WARNING, logger="spine.security"):
        answer = handler.handle(zap_request(stranger, b"192.0.2.9", request_id=b"9"))
    assert answer[:3] == [ZAP_VERSION, b"9", b"400"] and answer[4] == b""
    assert handler.stats.denied["unknown key"] == 1 and handler.stats.allowed == 0
    assert handler.stats.last_denied == [(stranger.decode(), "192.0.2.9", "unknown key")]
    assert stranger.decode() in caplog.text and "192.0.2.9" in caplog.text


def test_pinned_key_from_another_address_is_refused(handler, physics_key):
    answer = handler.handle(zap_request(physics_key, TCP_PEER))
    assert answer[2] == b"400" and answer[4] == b""
    assert handler.stats.denied["address pin"] == 1 and handler.stats.allowed == 0
    assert "pinned to ipc" in handler.stats.last_denied[-1][2]


@pytest.mark.parametrize("mechanism,credentials", [
    (b"NULL", []),
    (b"PLAIN", [b"user", b"password"]),
    (b"GSSAPI", [b"token"]),
])
def test_non_curve_mechanism_is_refused(handler, mechanism, credentials):
    frames = [ZAP_VERSION, b"1", DOMAIN_MAIN.encode(), TCP_PEER, b"", mechanism, *credentials]
    answer = handler.handle(frames)
    assert answer[2] == b"400" and answer[4] == b""
    assert handler.stats.denied[f"mechanism {mechanism.decode()} refused"] == 1


@pytest.mark.parametrize("credentials", [[], [b"short"], [bytes(32), bytes(32)], [bytes(33)]])
def test_curve_request_with_bad_credentials_is_refused(handler, credentials):
    frames = [ZAP_VERSION, b"1", DOMAIN_MAIN.encode(), TCP_PEER, b"", b"CURVE", *credentials]
    assert handler.handle(frames)[2] == b"400"
    assert handler.stats.allowed == 0


@pytest.mark.parametrize("frames", [
    [],
    [ZAP_VERSION],
    [ZAP_VERSION, b"1", b"spine", TCP_PEER, b""],
    [b"2.0", b"1", b"spine", TCP_PEER, b"", b"CURVE", bytes(32)],
    [b"", b"", b"", b"", b"", b""],
])
def test_malformed_request_gets_no_answer_and_is_counted(handler, frames):
    assert handler.handle(frames) is None
    assert handler.stats.denied["malformed ZAP request"] == 1
    assert handler.stats.allowed == 0


def test_revoked_key_is_refused_even_when_whitelisted(keys_dir, memory_key):
    handler = ZapHandler(Whitelist(keys_dir), is_revoked=lambda key: key == memory_key)
    assert handler.handle(zap_request(memory_key))[2] == b"400"
    assert handler.stats.denied["revoked key"] == 1


def test_pairing_domain_is_refused_without_a_window(handler):
    newcomer = new_key()
    assert handler.handle(zap_request(newcomer, domain=DOMAIN_PAIRING))[2] == b"400"
    assert handler.stats.denied["pairing window closed"] == 1


def test_pairing_domain_asks_the_pairing_policy(keys_dir):
    asked = []

    def policy(key: bytes, address: str) -> bool:
        asked.append((key, address))
        return True

    handler = ZapHandler(Whitelist(keys_dir), pairing_policy=policy)
    newcomer = new_key()
    answer = handler.handle(zap_request(newcomer, b"198.51.100.4", domain=DOMAIN_PAIRING))
    assert answer == reply(b"7", b"200", b"OK", b"pairing:" + newcomer)
    assert asked == [(newcomer, "198.51.100.4")]


def test_whitelisted_key_is_not_admitted_on_the_pairing_domain_by_default(handler, memory_key):
    assert handler.handle(zap_request(memory_key, domain=DOMAIN_PAIRING))[2] == b"400"


def test_a_key_added_to_the_whitelist_is_admitted_after_refresh(keys_dir, handler):
    late = new_key()
    assert handler.handle(zap_request(late))[2] == b"400"
    add_entry(keys_dir, Entry(late, "late", pb.HTTP_CLIENT))
    assert handler.whitelist.refresh()
    assert handler.handle(zap_request(late))[4] == late


def test_last_denied_keeps_the_most_recent_twenty(handler):
    strangers = [new_key() for _ in range(25)]
    for key in strangers:
        handler.handle(zap_request(key))
    assert handler.stats.denied["unknown key"] == 25
    assert [k for k, _, _ in handler.stats.last_denied] == [k.decode() for k in strangers[-20:]]


def test_denial_lines_are_rate_limited_per_address_and_reason_but_all_counted(keys_dir, caplog):
    clock = [0.0]
    handler = ZapHandler(Whitelist(keys_dir), clock=lambda: clock[0])
    burst = handler.log_limiter.burst
    with caplog.at_level(logging.WARNING, logger="spine.security"):
        for i in range(200):  # a new key each time, and a new ipc process: the same peer
            handler.handle(zap_request(new_key(), b"localhost:1000:1000:%d" % i))
        handler.handle(zap_request(new_key(), b"192.0.2.9"))  # another peer still shows
        clock[0] += handler.log_limiter.every_s
        handler.handle(zap_request(new_key(), b"localhost:1000:1000:1"))
    lines = [r.getMessage() for r in caplog.records]
    assert handler.stats.denied["unknown key"] == 202
    assert len(lines) == burst + 2
    assert "192.0.2.9" in lines[burst]
    assert lines[-1].endswith(f"({200 - burst} similar lines suppressed)")
