"""The component API: what a component author uses to talk through the broker.

A :class:`Component` holds its persistent identity (keys in the key directory) and two
DEALER connections to the broker, one per plane, so control frames never queue behind
data frames. Nothing here blocks unless asked to: ``send`` is non-blocking, ``recv`` and
``request`` take timeouts, and the sockets are exposed for a caller's own poll loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, Iterable, Sequence

import zmq
from zmq.backend import Socket as _RawSocket

from spine import paths
from spine.client.liveliness import STUCK_AFTER_S, Liveliness, LoopWatch
from spine.endpoints import Endpoints
from spine.errors import (BrokerUnavailable, EnvelopeError, RefusalReason, RequestTimeout,
                          RoutingError, SendFailed, SpineError, UnknownRecipient)
from spine.protocol import envelope
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.framing import (BROKER, HEADER_SIZE, Header, Kind, MsgClass, pack_header,
                                    unpack_header)
from spine.resilience.coherence import (CoherenceChecker, CoherenceLimits, MessageClass,
                                        spike_created_ns)
from spine.resilience.guard import CircuitBreaker
from spine.resilience.reliable_send import ReliableSender
from spine.security import keys as keyfiles
from spine.sockets import curve_client, tune

log = logging.getLogger("spine.client")

BROKER_KEY_NAME = "broker"
COPY_THRESHOLD = 65536
_NO_REQUEST = b""  # a request id no reply carries: waiting on it only fills the inbox  # payloads from this size on are sent without copying
# The per-message path uses plain ints and the backend's send: pyzmq's enum flags and its
# Python-level send wrapper cost more than the rest of a send.
_NOBLOCK, _SNDMORE = int(zmq.NOBLOCK), int(zmq.SNDMORE)
_NOBLOCK_SNDMORE = _NOBLOCK | _SNDMORE
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)
_send = _RawSocket.send
CONTROL_IO, DATA_IO = 1, 2  # ZMQ_AFFINITY bitmasks: I/O thread 0 and I/O thread 1
REPLY_CACHE_SIZE = 4096
_COHERENCE_CLASS = {MsgClass.CONTROL: MessageClass.CONTROL,
                    MsgClass.COGNITIVE: MessageClass.COGNITIVE}


class Plane(str, Enum):
    """The two broker connections of a component."""

    CONTROL = "control"
    DATA = "data"


class Message:
    """One message received from the bus: its routing header and its payload frame.

    A plain class with slots rather than a frozen dataclass: one is built per
    message received, on the hot path of every component.
    """

    __slots__ = ("plane", "header", "payload", "topic", "_spike")

    def __init__(self, plane: Plane, header: Header, payload: bytes, topic: str | None = None) -> None:
        self.plane = plane
        self.header = header
        self.payload = payload
        self.topic = topic  # set for events received by subscription
        self._spike: pb.NeuralSpike | None = None

    def __repr__(self) -> str:
        return (f"Message(plane={self.plane.value}, kind={self.header.kind.name}, sender={self.header.sender!r}, "
                f"recipient={self.header.recipient!r}, {len(self.payload)} bytes"
                + (f", topic={self.topic!r})" if self.topic is not None else ")"))

    @property
    def sender(self) -> str:
        """The authenticated instance name the broker stamped (never self-declared)."""
        return self.header.sender

    @property
    def kind(self) -> Kind:
        """SEND, REQUEST, REPLY, ERROR, PUBLISH, ..."""
        return self.header.kind

    @property
    def request_id(self) -> bytes:
        """The 16-byte request id, used to match replies and discard duplicates."""
        return self.header.request_id

    @property
    def spike(self) -> pb.NeuralSpike:
        """The payload parsed and validated as a NeuralSpike (EnvelopeError if it is not one); parsed once."""
        spike = self._spike
        if spike is None:
            spike = self._spike = envelope.decode(self.payload)
        return spike

    def refusal(self) -> RoutingError | None:
        """For an ERROR (the broker refused something this component sent): the exception
        it stands for, with its reason as data (e.g. RecipientQueueFull); else None."""
        return _refusal_error(self) if self.header.kind is Kind.ERROR else None


@dataclass
class ClientCounters:
    """What a component has sent, received and dropped."""

    sent: int = 0
    received: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        """Count one dropped message."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def _stamp_ids(spike: pb.NeuralSpike) -> bytes:
    if not spike.request_id:
        spike.request_id = envelope.new_uuid4_text()
    if not spike.timestamp:
        spike.timestamp = envelope.now_ms()
    return envelope.request_id_bytes(spike)


class Component:
    """A component's connection to the spine broker, under its persistent CURVE identity.

    ``name`` is the instance name in the broker's whitelist; its keys are loaded from
    ``keys_dir`` (and created there if missing, INF-03). The broker's public key is read from
    ``broker.key`` in the same directory unless ``broker_key`` is given.
    """

    def __init__(self, name: str, *, keys_dir: str | Path | None = None,
                 runtime_dir: str | Path | None = None, endpoints: Endpoints | None = None,
                 broker_key: bytes | None = None, hwm: int = 10_000,
                 coherence: CoherenceChecker | None = None, heartbeat: bool = True,
                 context: zmq.Context | None = None, liveliness: Liveliness | None = None,
                 stuck_after_s: float = STUCK_AFTER_S) -> None:
        self.name = keyfiles.check_name(name)
        self.keys_dir = paths.keys_dir(keys_dir)
        self.endpoints = endpoints or Endpoints.ipc(paths.runtime_dir(runtime_dir))
        self.keys = keyfiles.load_or_create(self.keys_dir, name)
        if broker_key is None:
            broker_file = keyfiles.public_path(self.keys_dir, BROKER_KEY_NAME)
            if not broker_file.exists():
                raise BrokerUnavailable(
                    f"no broker public key at {broker_file}: copy the broker's broker.key there, "
                    "or pair this component ('spine pair INVITE ...')")
            broker_key = keyfiles.load_public(broker_file)
        self.broker_key = keyfiles.check_public_key(broker_key)
        self.counters = ClientCounters()
        # what the heartbeat may claim (spine.client.liveliness): $SPINE_LIVELINESS by default
        self.loop_watch = LoopWatch(liveliness or Liveliness.from_env(), time.monotonic(),
                                    stuck_after_s)
        self.coherence = coherence or CoherenceChecker(CoherenceLimits.from_env())
        self._own_context = context is None
        self._ctx = context or zmq.Context(io_threads=2)
        self._hwm = hwm
        self._inbox: deque[Message] = deque()
        # keyed by (sender, request id): another sender reusing an id is a new request
        self._replies: OrderedDict[tuple[str, bytes], tuple[Plane, bytes]] = OrderedDict()
        self._sub: zmq.Socket | None = None
        self._closed = False
        self.control = self._dealer(self.endpoints.control, max_bytes=None, io_thread=CONTROL_IO)
        self.data = self._dealer(self.endpoints.data, max_bytes=None, io_thread=DATA_IO)
        self._sockets = {Plane.CONTROL: self.control, Plane.DATA: self.data}
        self._make_pollers()
        self._reliable = ReliableSender(self.data)
        self._heartbeat = None
        self._want_heartbeat = heartbeat

    def _dealer(self, endpoint: str, *, max_bytes: int | None, io_thread: int) -> zmq.Socket:
        sock = tune(self._ctx.socket(zmq.DEALER), hwm=self._hwm, max_bytes=max_bytes)
        sock.setsockopt(zmq.AFFINITY, io_thread)  # own I/O thread: data never delays control
        sock.setsockopt(zmq.ROUTING_ID, self.name.encode())
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)  # exponential backoff to 2 s
        curve_client(sock, self.keys, self.broker_key)
        sock.connect(endpoint)
        return sock

    # ---------------------------------------------------------------- lifecycle

    def connect(self, timeout: float = 5.0) -> "Component":
        """Say hello on both planes and wait for the broker's answers (BrokerUnavailable if none).

        The broker answers only a whitelisted key that reached it with the right broker key.
        libzmq does not retry a connection whose authentication failed, so each second
        without an answer the connections are made anew: a key whitelisted meanwhile gets in.
        """
        deadline = time.monotonic() + timeout
        instances: list[str] = []
        for plane in Plane:
            wait = 0.2
            while True:
                try:
                    hello = self.request_broker(
                        "hello", plane=plane,
                        timeout=max(0.01, min(wait, deadline - time.monotonic())))
                    instances.append(_broker_instance(hello))
                    break
                except RequestTimeout:
                    if time.monotonic() >= deadline:
                        raise BrokerUnavailable(
                            f"the broker did not answer {self.name!r} on {self._endpoint(plane)} "
                            f"within {timeout:g} s: is it running, is this component's public key "
                            f"{self.keys.public.decode()} in its whitelist, and is "
                            f"{keyfiles.public_path(self.keys_dir, BROKER_KEY_NAME)} the broker's "
                            "key?") from None
                    self._renew(plane)
                    wait = min(2 * wait, 1.0)
        if self._want_heartbeat and self._heartbeat is None:
            from spine.client.heartbeat import HeartbeatThread
            # the instance greeted first: a heartbeat answered by another one means a restart
            self._heartbeat = HeartbeatThread(self, broker_instance=instances[0] or None)
            self._heartbeat.start()
        return self

    def _renew(self, plane: Plane) -> None:
        """Replace the connection of ``plane`` with a new one (after a refused handshake)."""
        old = self._sockets[plane]
        old.close(linger=0)
        sock = self._dealer(self._endpoint(plane), max_bytes=None,
                            io_thread=CONTROL_IO if plane is Plane.CONTROL else DATA_IO)
        self._sockets[plane] = sock
        if plane is Plane.CONTROL:
            self.control = sock
        else:
            self.data = sock
            self._reliable = ReliableSender(sock)
        self._make_pollers()

    def close(self) -> None:
        """Stop the heartbeat thread and close every socket (LINGER 0)."""
        if self._closed:
            return
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        for sock in (self.control, self.data, self._sub):
            if sock is not None:
                sock.close(linger=0)
        if self._own_context:
            self._ctx.term()

    def __enter__(self) -> "Component":
        return self.connect()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def broker_alive(self) -> bool:
        """False once broker heartbeats have stopped for 3 s (True without a heartbeat thread)."""
        return self._heartbeat is None or self._heartbeat.broker_alive

    def _endpoint(self, plane: Plane) -> str:
        return self.endpoints.control if plane is Plane.CONTROL else self.endpoints.data

    # ---------------------------------------------------------------- sending

    def send(self, to: str, spike: pb.NeuralSpike, *, plane: Plane = Plane.DATA,
             kind: Kind = Kind.SEND, msg_class: MsgClass | None = None,
             reliable: bool = False) -> None:
        """Send one message to the instance ``to`` without waiting for anything.

        A full queue raises SendFailed at once; with ``reliable`` the send is retried after
        10, 20 and 30 ms first (SPEC §5), which may block for up to 60 ms.
        """
        request_id = _stamp_ids(spike)
        self._send_raw(plane, kind, to, request_id, spike.SerializeToString(),
                       msg_class if msg_class is not None else _default_class(plane),
                       reliable=reliable)

    def send_bytes(self, to: str, request_id: bytes, payload: bytes, *,
                   plane: Plane = Plane.DATA, kind: Kind = Kind.SEND,
                   msg_class: MsgClass = MsgClass.BULK) -> None:
        """Send an already serialised NeuralSpike (the fast path of a tight loop)."""
        self._send_raw(plane, kind, to, request_id, payload, msg_class)

    def _send_raw(self, plane: Plane, kind: Kind, to: str, request_id: bytes, payload,
                  msg_class: MsgClass, *, reliable: bool = False) -> None:
        header = pack_header(kind, to, request_id, msg_class=msg_class, sender=self.name)
        self.loop_watch.ran(time.monotonic())
        if self._heartbeat is not None and self._heartbeat.rejoin_needed():
            self._rejoin()
        sock = self._sockets[plane]
        if reliable and plane is Plane.DATA:
            if not self._reliable.send([header, payload]):
                raise SendFailed(f"send to {to!r} failed: the data queue stayed full through "
                                 "3 retries (10, 20, 30 ms)")
        else:
            try:
                _send(sock, header, _NOBLOCK_SNDMORE)
            except zmq.Again:
                raise SendFailed(f"send to {to!r} failed: the {plane.value} queue to the broker "
                                 f"is full ({self._hwm} messages); the broker is slow or gone") from None
            _send(sock, payload, 0, len(payload) < COPY_THRESHOLD)
        self.counters.sent += 1

    def publish(self, topic: str, spike: pb.NeuralSpike,
                msg_class: MsgClass = MsgClass.TELEMETRY) -> None:
        """Broadcast on the event socket (fire-and-forget: slow subscribers lose messages)."""
        self.send(topic, spike, plane=Plane.DATA, kind=Kind.PUBLISH, msg_class=msg_class)

    def reply(self, request: Message, spike: pb.NeuralSpike) -> None:
        """Answer ``request`` on its plane; the reply is kept to answer a retried duplicate."""
        spike.request_id = request.spike.request_id
        if not spike.timestamp:
            spike.timestamp = envelope.now_ms()
        payload = spike.SerializeToString()
        self._send_raw(request.plane, Kind.REPLY, request.sender, request.request_id, payload,
                       request.header.msg_class)
        self._replies[(request.sender, request.request_id)] = (request.plane, payload)
        if len(self._replies) > REPLY_CACHE_SIZE:
            self._replies.popitem(last=False)

    # ---------------------------------------------------------------- receiving

    def request(self, to: str, spike: pb.NeuralSpike, *, timeout: float = 1.0,
                plane: Plane = Plane.CONTROL, msg_class: MsgClass | None = None,
                retries: int = 0, breaker: CircuitBreaker | None = None) -> Message:
        """Send a REQUEST and wait for the REPLY with the same request_id.

        On timeout it is resent with the same request_id up to ``retries`` times (the
        receiver discards duplicates), then RequestTimeout. A broker refusal raises
        RoutingError at once, except an unknown recipient while attempts are left (after a
        broker restart it may not have rejoined yet): that attempt is waited out and resent. With a ``breaker`` (calls to an
        unreliable dependency such as an external agent) the whole exchange runs through it:
        while it is open, CircuitOpenError is raised and nothing is sent.
        """
        if breaker is not None:
            return breaker.call(self.request, to, spike, timeout=timeout, plane=plane,
                                msg_class=msg_class, retries=retries)
        request_id = _stamp_ids(spike)
        payload = spike.SerializeToString()
        cls = msg_class if msg_class is not None else _default_class(plane)
        for attempt in range(retries + 1):
            if attempt:  # a resend is a new transmission: fresh for the receiver's coherence check
                spike.timestamp = envelope.now_ms()
                payload = spike.SerializeToString()
            self._send_raw(plane, Kind.REQUEST, to, request_id, payload, cls)
            attempt_deadline = time.monotonic() + timeout
            try:
                reply = self._await_reply(plane, request_id, attempt_deadline)
            except RoutingError as exc:
                # Right after a broker restart the recipient may not have said hello yet:
                # with attempts left, an unknown recipient is waited out like a lost reply.
                if attempt == retries or not isinstance(exc, UnknownRecipient):
                    raise
                self._await_reply(plane, _NO_REQUEST, attempt_deadline)
                continue
            if reply is not None:
                return reply
        raise RequestTimeout(f"no reply from {to!r} within {timeout:g} s "
                             f"({retries + 1} attempt(s), request {uuid.UUID(bytes=request_id)})")

    def request_broker(self, command: str, *, plane: Plane = Plane.CONTROL,
                       timeout: float = 1.0, args: Sequence[str] = ()) -> Message:
        """Send an admin command (hello, ping, status, ...) with ``args`` to the broker
        itself and wait for its answer."""
        spike = envelope.new_spike(command_req=pb.CommandRequest(command=command, args=args))
        request_id = envelope.request_id_bytes(spike)
        header = pack_header(Kind.BROKER, BROKER, request_id, msg_class=MsgClass.CONTROL,
                             sender=self.name)
        try:
            self._sockets[plane].send_multipart([header, spike.SerializeToString()], zmq.NOBLOCK)
        except zmq.Again:  # no connection at all (e.g. its handshake was refused)
            reply = None
        else:
            reply = self._await_reply(plane, request_id, time.monotonic() + timeout)
        if reply is None:
            raise RequestTimeout(f"the broker did not answer {command!r} within {timeout:g} s")
        return reply

    def _await_reply(self, plane: Plane, request_id: bytes, deadline: float) -> Message | None:
        """Receive on ``plane`` until the reply to ``request_id`` (None at ``deadline``).

        A blocking receive with RCVTIMEO is the cheapest wait libzmq offers; other messages
        that arrive meanwhile go to the inbox for ``recv``.
        """
        sock = self._sockets[plane]
        self.loop_watch.waiting(time.monotonic())
        try:
            return self._receive_reply(sock, plane, request_id, deadline)
        finally:
            self.loop_watch.done_waiting(time.monotonic())

    def _receive_reply(self, sock: zmq.Socket, plane: Plane, request_id: bytes,
                       deadline: float) -> Message | None:
        while True:
            remaining = deadline - time.monotonic()
            sock.setsockopt(zmq.RCVTIMEO, max(0, int(remaining * 1000 + 0.999)))
            try:
                frames = _recv_frames(sock)
            except zmq.Again:
                if time.monotonic() >= deadline:
                    return None
                continue
            msg = self._parse(plane, frames)
            if msg is None:
                continue
            if msg.request_id == request_id and msg.kind in (Kind.REPLY, Kind.ERROR):
                if msg.kind is Kind.ERROR:
                    raise _refusal_error(msg)
                return msg
            self._accept(msg)

    def recv(self, timeout: float | None = None) -> Message | None:
        """The next incoming message (control first), or None when ``timeout`` passes.

        ``timeout=None`` waits without limit; 0 only takes what is already there.
        Duplicate requests are answered from the reply cache or dropped; stale ones are dropped.
        """
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        inbox = self._inbox
        watch = self.loop_watch
        watch.waiting(now)  # blocked for a message is not stuck
        try:
            while not inbox:
                if self._heartbeat is not None and self._heartbeat.rejoin_needed():
                    self._rejoin()
                remaining = None if deadline is None else deadline - time.monotonic()
                ready = dict(self._poller.poll(
                    None if remaining is None else max(0, int(remaining * 1000 + 0.999))))
                if ready:
                    self._pump(ready)
                elif remaining is not None and remaining <= 0:
                    return None
            return inbox.popleft()
        finally:
            watch.done_waiting(time.monotonic())

    def assert_alive(self) -> None:
        """Tell the heartbeat this component's loop still runs (manual liveliness).

        ``recv``, ``serve``, ``send`` and ``request`` do it already; call it from a
        computation that runs longer than ``stuck_after_s`` without them.
        """
        self.loop_watch.ran(time.monotonic())

    def _readable_sockets(self) -> list[zmq.Socket]:
        socks = [self.control, self.data]
        if self._sub is not None:
            socks.append(self._sub)
        return socks

    def _make_pollers(self) -> None:
        """Pollers made once (a poller per call costs more than the poll)."""
        self._pollers = {}
        for plane, sock in self._sockets.items():
            self._pollers[plane] = zmq.Poller()
            self._pollers[plane].register(sock, zmq.POLLIN)
        self._poller = zmq.Poller()
        for sock in self._readable_sockets():
            self._poller.register(sock, zmq.POLLIN)

    def _pump(self, ready: dict) -> None:
        """Move what the poll found into the inbox, control first."""
        for plane in (Plane.CONTROL, Plane.DATA):
            sock = self._sockets[plane]
            if sock not in ready:
                continue
            events = sock.get
            while True:
                msg = self._parse(plane, _recv_frames(sock))
                if msg is not None:
                    self._accept(msg)
                if not events(_EVENTS) & _POLLIN:
                    break
        sub = self._sub
        if sub is not None and sub in ready:
            while True:
                frames = _recv_frames(sub)
                if len(frames) != 3:
                    self.counters.drop("bad_frames")
                else:
                    msg = self._parse(Plane.DATA, frames[1:],
                                      topic=frames[0].decode("utf-8", "replace"))
                    if msg is not None:
                        self._accept(msg)
                if not sub.get(_EVENTS) & _POLLIN:
                    break

    def _parse(self, plane: Plane, frames: list[bytes], topic: str | None = None) -> Message | None:
        if len(frames) != 2 or len(frames[0]) != HEADER_SIZE:
            self.counters.drop("bad_frames")
            log.warning("%s: dropped a malformed message on %s (%d frames)", self.name,
                        plane.value, len(frames))
            return None
        try:
            header = unpack_header(frames[0])
        except SpineError as exc:
            self.counters.drop("bad_header")
            log.warning("%s: dropped a message with a bad header: %s", self.name, exc)
            return None
        self.counters.received += 1
        return Message(plane, header, frames[1], topic)

    def _accept(self, msg: Message) -> None:
        if msg.kind is Kind.HEARTBEAT:
            return
        if msg.kind is Kind.REQUEST and (msg.sender, msg.request_id) in self._replies:
            reply_plane, payload = self._replies[(msg.sender, msg.request_id)]
            self.counters.drop("duplicate_request")
            self._send_raw(reply_plane, Kind.REPLY, msg.sender, msg.request_id, payload,
                           msg.header.msg_class)
            return
        try:
            spike = msg.spike
        except EnvelopeError as exc:
            self.counters.drop("bad_envelope")
            log.warning("%s: dropped a message from %s: %s", self.name, msg.sender, exc)
            return
        cls = _COHERENCE_CLASS.get(msg.header.msg_class)
        if cls is not None and not self.coherence.admit(cls, spike_created_ns(spike),
                                                        time.time_ns(), cross_host=True):
            self.counters.drop(f"stale_{cls.value}")
            return
        self._inbox.append(msg)

    # ---------------------------------------------------------------- serving and events

    def serve(self, handler: Callable[[Message], pb.NeuralSpike | None], *,
              should_stop: Callable[[], bool] = lambda: False, poll_s: float = 0.1) -> None:
        """Answer requests with ``handler`` until ``should_stop()``; other messages go to it too."""
        while not should_stop():
            msg = self.recv(timeout=poll_s)
            if msg is None:
                continue
            answer = handler(msg)
            if answer is not None and msg.kind is Kind.REQUEST:
                self.reply(msg, answer)

    def subscribe(self, *topics: str) -> None:
        """Receive events published on ``topics`` (prefix match; "" for all) via ``recv``."""
        if self._sub is None:
            self._sub = tune(self._ctx.socket(zmq.SUB), hwm=self._hwm)
            curve_client(self._sub, self.keys, self.broker_key)
            self._sub.connect(self.endpoints.events)
            self._make_pollers()
        for topic in topics:
            self._sub.setsockopt(zmq.SUBSCRIBE, topic.encode())

    # ---------------------------------------------------------------- asyncio

    async def arecv(self, timeout: float | None = None) -> Message | None:
        """``recv`` for asyncio: waits on the sockets' file descriptors, never blocking the loop."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            msg = self.recv(timeout=0)
            if msg is not None:
                return msg
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self.loop_watch.waiting(time.monotonic())
            try:
                await _readable(self._readable_sockets(), remaining)
            finally:
                self.loop_watch.done_waiting(time.monotonic())

    async def arequest(self, to: str, spike: pb.NeuralSpike, *, timeout: float = 1.0,
                       plane: Plane = Plane.CONTROL) -> Message:
        """``request`` for asyncio (one attempt)."""
        request_id = _stamp_ids(spike)
        self._send_raw(plane, Kind.REQUEST, to, request_id, spike.SerializeToString(),
                       _default_class(plane))
        deadline = time.monotonic() + timeout
        while True:
            reply = self._await_reply(plane, request_id, time.monotonic())
            if reply is not None:
                return reply
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RequestTimeout(f"no reply from {to!r} within {timeout:g} s")
            self.loop_watch.waiting(time.monotonic())
            try:
                await _readable([self._sockets[plane]], remaining)
            finally:
                self.loop_watch.done_waiting(time.monotonic())

    # ---------------------------------------------------------------- reconnection

    def _rejoin(self) -> None:
        """Tell a restarted broker where this component is (hello on both planes, no wait).

        The heartbeat thread has just heard the broker again, but these sockets may sit
        in libzmq's reconnect backoff for up to 2 s more: fresh ones connect at once.
        Messages still queued on the old sockets are dropped: a restarted broker has no
        routes yet and would refuse most of them.
        """
        for plane in Plane:
            self._renew(plane)
            spike = envelope.new_spike(command_req=pb.CommandRequest(command="hello"))
            header = pack_header(Kind.BROKER, BROKER, envelope.request_id_bytes(spike),
                                 sender=self.name)
            try:
                self._sockets[plane].send_multipart([header, spike.SerializeToString()], zmq.NOBLOCK)
            except zmq.Again:
                pass
        log.info("%s: rejoined the broker", self.name)


def _broker_instance(hello: Message) -> str:
    """The broker instance id in its answer to hello (``hello NAME PLANE INSTANCE``), or ''."""
    try:
        words = hello.spike.text_data.split()
    except EnvelopeError:
        return ""
    return words[3] if len(words) == 4 else ""


def _recv_frames(sock: zmq.Socket) -> list[bytes]:
    """All frames of one waiting message (``Frame.more`` instead of a RCVMORE call per frame)."""
    frame = sock.recv(0, copy=False)
    parts = [frame.bytes]
    while frame.more:
        frame = sock.recv(0, copy=False)
        parts.append(frame.bytes)
    return parts


def _default_class(plane: Plane) -> MsgClass:
    return MsgClass.CONTROL if plane is Plane.CONTROL else MsgClass.BULK


def _refusal_error(msg: Message) -> RoutingError:
    """The exception for the broker's ERROR ``msg``: its reason from the ``refusal`` field
    (UNSPECIFIED from a broker that does not send one), its text for people."""
    try:
        spike = msg.spike
    except EnvelopeError:
        return RoutingError("the broker refused the message (its ERROR was unreadable)")
    refusal = spike.refusal
    try:
        reason = RefusalReason(refusal.reason)
    except ValueError:  # a newer broker's reason: still a refusal, without a specific class
        reason = RefusalReason.UNSPECIFIED
    return RoutingError.for_reason(spike.text_data or "the broker refused the message", reason,
                                   refusal.recipient,
                                   refusal.retry_after_ms / 1000 if refusal.retry_after_ms else None)


async def _readable(sockets: Iterable[zmq.Socket], timeout: float | None) -> None:
    """Wait until one of ``sockets`` may have input (edge-triggered FDs: callers re-check)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    fds = [sock.getsockopt(zmq.FD) for sock in sockets]
    for fd in fds:
        loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
    try:
        if any(sock.getsockopt(zmq.EVENTS) & zmq.POLLIN for sock in sockets):
            return
        await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        pass
    finally:
        for fd in fds:
            loop.remove_reader(fd)
