"""The processes the core benchmarks start: responders, echo servers, flooders, proxies.

Each role is a top-level function ``role(link, *args)`` run in a spawned process by
:class:`spine.bench.procs.RoleProcess`: it calls ``link.ready()`` once it can serve and
returns when ``link.stop`` is set (or, for the consumer, when it has what it came for).
Components use the real client and their whitelisted keys; baselines use raw pyzmq
sockets with CURVE on, as the spine sockets have.
"""

from __future__ import annotations

import threading
import time

import zmq

from spine.bench.pacing import Pacer
from spine.bench.procs import RoleLink
from spine.client.component import Component
from spine.endpoints import Endpoints
from spine.protocol.envelope import new_spike, request_id_bytes
from spine.protocol.framing import Kind, MsgClass, pack_header
from spine.sockets import tune

POLL_MS = 100


def _component(keys_dir: str, endpoints: Endpoints, name: str, broker_key: bytes) -> Component:
    return Component(name, keys_dir=keys_dir, endpoints=endpoints, broker_key=broker_key).connect(10)


def responder(link: RoleLink, keys_dir: str, endpoints: Endpoints, name: str, broker_key: bytes) -> None:
    """A component that answers every request with its own payload, as ``Component.serve`` does."""
    comp = _component(keys_dir, endpoints, name, broker_key)
    try:
        link.ready()
        while not link.stop.is_set():
            msg = comp.recv(timeout=0.1)
            if msg is not None and msg.kind is Kind.REQUEST:
                comp.reply(msg, msg.spike)
    finally:
        comp.close()


def raw_echo(link: RoleLink, endpoint: str, public: bytes, secret: bytes) -> None:
    """A plain pyzmq ROUTER that sends every message back (CURVE on, no spine)."""
    ctx = zmq.Context()
    sock = tune(ctx.socket(zmq.ROUTER))
    try:
        sock.curve_secretkey, sock.curve_publickey, sock.curve_server = secret, public, 1
        sock.bind(endpoint)
        link.ready()
        while not link.stop.is_set():
            if sock.poll(POLL_MS):
                sock.send_multipart(sock.recv_multipart())
    finally:
        sock.close(0)
        ctx.term()


def flooder(link: RoleLink, keys_dir: str, endpoints: Endpoints, name: str, broker_key: bytes,
            to: str, size: int, sent) -> None:
    """Sends ``size``-byte data messages to ``to`` as fast as the queues take them."""
    comp = _component(keys_dir, endpoints, name, broker_key)
    spike = new_spike(rich_payload={"mime_type": "application/octet-stream", "data": bytes(size)})
    frames = [pack_header(Kind.SEND, to, request_id_bytes(spike), msg_class=MsgClass.BULK,
                          sender=name), spike.SerializeToString()]
    sock = comp.data
    try:
        link.ready()
        while not link.stop.is_set():
            for _ in range(100):
                if not sock.poll(POLL_MS, zmq.POLLOUT):
                    break
                sock.send_multipart(frames)
            else:
                with sent.get_lock():
                    sent.value += 100
    finally:
        comp.close()


def sink(link: RoleLink, keys_dir: str, endpoints: Endpoints, name: str, broker_key: bytes,
         received, rate: float = 0.0) -> None:
    """Reads its data plane, counting messages: as fast as it can, or at most ``rate`` per s
    (a consumer that falls behind, so the data backlog builds up)."""
    comp = _component(keys_dir, endpoints, name, broker_key)
    sock, count = comp.data, 0
    slot_ns, per_slot = 10_000_000, int(rate * 0.01) if rate else 0
    pacer = Pacer(spin_ns=0)
    try:
        link.ready()
        next_slot = time.monotonic_ns() + slot_ns
        while not link.stop.is_set():
            if not sock.poll(POLL_MS):
                continue
            taken = 0
            while not per_slot or taken < per_slot:
                try:
                    sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                count += 1
                taken += 1
                if count % 100 == 0:
                    with received.get_lock():
                        received.value = count
            if per_slot and taken >= per_slot:
                pacer.sleep_until(next_slot)
                next_slot = max(next_slot + slot_ns, time.monotonic_ns())
    finally:
        comp.close()


def proxy(link: RoleLink, front: str, back: str, public: bytes, secret: bytes) -> None:
    """libzmq's C proxy between a ROUTER front and a DEALER back, both CURVE servers."""
    ctx = zmq.Context()
    socks = []
    for kind, endpoint in ((zmq.ROUTER, front), (zmq.DEALER, back)):
        sock = tune(ctx.socket(kind))
        sock.curve_secretkey, sock.curve_publickey, sock.curve_server = secret, public, 1
        sock.bind(endpoint)
        socks.append(sock)

    def run() -> None:
        try:
            zmq.proxy(*socks)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in socks:
                sock.close(0)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        link.ready()
        link.stop.wait()
    finally:
        ctx.term()  # makes zmq.proxy return; the thread closes its sockets
    thread.join()


def producer(link: RoleLink, endpoint: str, keys: tuple[bytes, bytes, bytes], routing_id: bytes,
             to: str, size: int, count: int) -> None:
    """Sends ``count`` messages of ``size`` payload bytes once the coordinator says go (blocking sends)."""
    ctx = zmq.Context()
    sock = tune(ctx.socket(zmq.DEALER))
    public, secret, server = keys
    sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = secret, public, server
    sock.routing_id = routing_id
    sock.connect(endpoint)
    spike = new_spike(rich_payload={"mime_type": "application/octet-stream", "data": bytes(size)})
    payload = spike.SerializeToString()
    frame = zmq.Frame(payload) if size >= 65536 else payload
    header = pack_header(Kind.SEND, to, request_id_bytes(spike), msg_class=MsgClass.BULK)
    try:
        link.ready()
        for _ in range(count):
            if link.stop.is_set():
                break
            sock.send_multipart([header, frame], copy=size < 65536)
        link.stop.wait()
    finally:
        sock.close(0)
        ctx.term()


def consumer(link: RoleLink, endpoint: str, keys: tuple[bytes, bytes, bytes],
             component: tuple[str, str, Endpoints] | None, count: int, timeout_s: float) -> dict:
    """Receives ``count`` messages, giving up ``timeout_s`` after the start signal.

    Returns how many it got and the times (perf_counter) of the first and the last. With
    ``component`` = (name, keys_dir, endpoints) it is a spine component (so the broker can
    route to it); otherwise a raw DEALER connected to ``endpoint``.
    """
    if component is not None:
        name, keys_dir, endpoints = component
        comp = Component(name, keys_dir=keys_dir, endpoints=endpoints, broker_key=keys[2],
                         heartbeat=False).connect(10)
        sock, ctx = comp.data, None
    else:
        ctx = zmq.Context()
        sock = tune(ctx.socket(zmq.DEALER))
        public, secret, server = keys
        sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = secret, public, server
        sock.connect(endpoint)
        comp = None
    got, first = 0, 0.0
    try:
        link.ready()
        give_up = time.monotonic() + timeout_s
        while got < count and not link.stop.is_set() and time.monotonic() < give_up:
            if not sock.poll(POLL_MS):
                continue
            while got < count:
                try:
                    sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                got += 1
                if got == 1:
                    first = time.perf_counter()
        return {"got": got, "first": first, "last": time.perf_counter()}
    finally:
        if comp is not None:
            comp.close()
        else:
            sock.close(0)
            ctx.term()
