"""The processes the core benchmarks start: responders, echo servers, flooders, proxies.

Each role is a top-level function ``role(ready, stop, *args)`` run in a spawned process by
:class:`spine.bench.common.Child`: it sets ``ready`` once it can serve and returns when
``stop`` is set. Components use the real client and their whitelisted keys; baselines use
raw pyzmq sockets with CURVE on, as the spine sockets have.
"""

from __future__ import annotations

import threading
import time

import zmq

from spine.client.component import Component
from spine.endpoints import Endpoints
from spine.protocol.envelope import new_spike, request_id_bytes
from spine.protocol.framing import Kind, MsgClass, pack_header
from spine.sockets import tune

POLL_MS = 100


def _component(keys_dir: str, endpoints: Endpoints, name: str, broker_key: bytes) -> Component:
    return Component(name, keys_dir=keys_dir, endpoints=endpoints, broker_key=broker_key).connect(10)


def responder(ready, stop, keys_dir: str, endpoints: Endpoints, name: str, broker_key: bytes) -> None:
    """A component that answers every request with its own payload, as ``Component.serve`` does."""
    comp = _component(keys_dir, endpoints, name, broker_key)
    ready.set()
    try:
        while not stop.is_set():
            msg = comp.recv(timeout=0.1)
            if msg is not None and msg.kind is Kind.REQUEST:
                comp.reply(msg, msg.spike)
    finally:
        comp.close()


def raw_echo(ready, stop, endpoint: str, public: bytes, secret: bytes) -> None:
    """A plain pyzmq ROUTER that sends every message back (CURVE on, no spine)."""
    ctx = zmq.Context()
    sock = tune(ctx.socket(zmq.ROUTER))
    sock.curve_secretkey, sock.curve_publickey, sock.curve_server = secret, public, 1
    sock.bind(endpoint)
    ready.set()
    try:
        while not stop.is_set():
            if sock.poll(POLL_MS):
                sock.send_multipart(sock.recv_multipart())
    finally:
        sock.close(0)
        ctx.term()


def flooder(ready, stop, keys_dir: str, endpoints: Endpoints, name: str, broker_key: bytes,
            to: str, size: int, sent) -> None:
    """Sends ``size``-byte data messages to ``to`` as fast as the queues take them."""
    comp = _component(keys_dir, endpoints, name, broker_key)
    spike = new_spike(rich_payload={"mime_type": "application/octet-stream", "data": bytes(size)})
    frames = [pack_header(Kind.SEND, to, request_id_bytes(spike), msg_class=MsgClass.BULK,
                          sender=name), spike.SerializeToString()]
    ready.set()
    sock = comp.data
    try:
        while not stop.is_set():
            for _ in range(100):
                if not sock.poll(POLL_MS, zmq.POLLOUT):
                    break
                sock.send_multipart(frames)
            else:
                with sent.get_lock():
                    sent.value += 100
    finally:
        comp.close()


def sink(ready, stop, keys_dir: str, endpoints: Endpoints, name: str, broker_key: bytes,
         received, rate: float = 0.0) -> None:
    """Reads its data plane, counting messages: as fast as it can, or at most ``rate`` per s
    (a consumer that falls behind, so the data backlog builds up)."""
    comp = _component(keys_dir, endpoints, name, broker_key)
    ready.set()
    sock, count = comp.data, 0
    slot, per_slot = 0.01, int(rate * 0.01) if rate else 0
    next_slot = time.monotonic() + slot
    try:
        while not stop.is_set():
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
                time.sleep(max(0.0, next_slot - time.monotonic()))  # pacing, not synchronising
                next_slot = max(next_slot + slot, time.monotonic())
    finally:
        comp.close()


def proxy(ready, stop, front: str, back: str, public: bytes, secret: bytes) -> None:
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
    ready.set()
    stop.wait()
    ctx.term()  # makes zmq.proxy return; the thread closes its sockets
    thread.join()


def producer(ready, stop, endpoint: str, keys: tuple[bytes, bytes, bytes], routing_id: bytes,
             to: str, size: int, count: int, go) -> None:
    """Sends ``count`` messages of ``size`` payload bytes once ``go`` is set (blocking sends)."""
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
    ready.set()
    go.wait()
    try:
        for _ in range(count):
            if stop.is_set():
                break
            sock.send_multipart([header, frame], copy=size < 65536)
        stop.wait()
    finally:
        sock.close(0)
        ctx.term()


def consumer(ready, stop, endpoint: str, keys: tuple[bytes, bytes, bytes],
             component: tuple[str, str, Endpoints] | None, count: int, times) -> None:
    """Receives ``count`` messages; writes the times of the first and the last into ``times``.

    With ``component`` = (name, keys_dir, endpoints) it is a spine component (so the broker
    can route to it); otherwise a raw DEALER connected to ``endpoint``.
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
    ready.set()
    got = 0
    try:
        while got < count and not stop.is_set():
            if not sock.poll(POLL_MS):
                continue
            while got < count:
                try:
                    sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                got += 1
                if got == 1:
                    times[0] = time.perf_counter()
        times[1] = time.perf_counter()
        times[2] = got
    finally:
        if comp is not None:
            comp.close()
        else:
            sock.close(0)
            ctx.term()
