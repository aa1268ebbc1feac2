"""The broker: one loop that owns every socket and serves the control plane first.

Each turn drains the control socket, answers ZAP requests, then serves a bounded batch of
data messages, looking at the control socket again before each one, so a waiting control
message never queues behind the data backlog (CTL-01). Then it runs what is due: the
watchdog, whitelist reloads, the supervisor, sd_notify. The poll timeout is the time to
the next deadline; nothing sleeps.

The broker reads only the 84-byte routing header and forwards the payload frame untouched
(zero-copy). The sender name it stamps comes from the CURVE key (ZAP User-Id), never from
what a peer wrote into its header.

What the broker parses itself (its commands and heartbeats) is bounded so that no message
costs the loop more than a small fixed time: heartbeats and commands belong on the control
plane (the data plane takes only ``hello`` and ``ping``, no heartbeat), a payload over
``BROKER_PAYLOAD_MAX_BYTES`` is never parsed, a component's report is parsed at most once
per ``REPORT_EVERY_S`` (more heartbeats only prove it alive) and keeps at most
``MAX_METRICS`` metrics with keys of at most ``MAX_METRIC_KEY_BYTES``, and the ``status``
answer is cut to ``STATUS_MAX_BYTES`` (``"truncated": true``). Everything cut is counted;
log lines about drops are rate-limited per peer and reason (:class:`~spine.ratelimit.LogLimiter`).
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import zmq
from zmq.backend import Socket as _RawSocket
from zmq.utils.monitor import parse_monitor_message

from spine.broker.config import BrokerConfig
from spine.broker.notify import SystemdNotify
from spine.broker.pairing_endpoint import PairingEndpoint
from spine.broker.queues import Outcome, RecipientQueues
from spine.broker.routing import RoutingTable
from spine.broker.spin import AdaptiveSpin
from spine.broker.watchdog import Liveness, Watchdog
from spine.endpoints import Endpoints
from spine.errors import ConfigError, RefusalReason, WhitelistError
from spine.fsutil import open_nofollow, private_dir
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.envelope import now_ms
from spine.protocol.framing import (BROKER, HEADER_SIZE, FORMAT_VERSION, Flag, Kind, MsgClass,
                                    NAME_SIZE, pack_header)
from spine.ratelimit import LogLimiter, log_limited
from spine.security import keys as keyfiles
from spine.security import rotation
from spine.security.pairing import OpenReason, PairingMachine
from spine.security.revocation import RevocationList
from spine.security.whitelist import Whitelist, parse_kind
from spine.security.zap import DOMAIN_MAIN, ZAP_ENDPOINT, ZapHandler
from spine.sockets import curve_server, tune

log = logging.getLogger("spine.broker")

CONTROL, DATA = "control", "data"
CONTROL_IO, DATA_IO = 1, 2  # ZMQ_AFFINITY bitmasks: I/O thread 0 and I/O thread 1
DATA_IO_THREAD_NAME = "ZMQbg/IO/1"  # libzmq's name for its second I/O thread
HEARTBEAT_SUFFIX = b"/hb"
BROKER_TOPICS = frozenset({b"watchdog", b"supervisor"})  # only the broker publishes on these
QUEUE_RETRY_S = 0.001  # how soon a full recipient's pipe is tried again
# What the broker parses itself. A legitimate report (64 metrics with 64-byte keys) is
# about 5.3 KiB and a command about 100 bytes; parsing 8 KiB costs some 70 us.
BROKER_PAYLOAD_MAX_BYTES = 8 * 1024
MAX_METRICS = 64               # per StatusReport; the rest are dropped and counted
REPORT_EVERY_S = 0.1           # a component's report is read at most this often (1 s is normal)
MAX_METRIC_KEY_BYTES = 64      # a longer key is dropped and counted (values are doubles)
KEPT_FIRST_METRICS = ("sent", "received", "dropped")  # the client's own counters
DATA_PLANE_COMMANDS = frozenset({"hello", "ping"})    # registering and probing the data plane
STATUS_MAX_COMPONENTS = 512    # components listed by ``status``; the rest are counted
STATUS_MAX_BYTES = 256 * 1024  # the JSON of ``status``; over it, metrics and then rows go
_K_REPLY, _K_ERROR = Kind.REPLY, Kind.ERROR
_K_PUBLISH, _K_BROKER, _K_HEARTBEAT = Kind.PUBLISH, Kind.BROKER, Kind.HEARTBEAT
_STAMP = [bytes([i | Flag.STAMPED]) for i in range(256)]
# The per-message path uses plain ints and the backend's send: pyzmq's enum flags and its
# Python-level send wrapper cost more than the forwarding itself.
_NOBLOCK, _SNDMORE, _EVENTS, _POLLIN = int(zmq.NOBLOCK), int(zmq.SNDMORE), int(zmq.EVENTS), int(zmq.POLLIN)
_NOBLOCK_SNDMORE = _NOBLOCK | _SNDMORE
_MAX_CLASS = max(MsgClass)
_UNKNOWN_FLAGS = 0xFF & ~Flag.STAMPED
_send = _RawSocket.send
_MONITORED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
              | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_DISCONNECTED)
_HANDSHAKE_WHY = {
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol error (no CURVE, or the wrong broker key)",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "authentication refused",
}


@dataclass
class PlaneCounters:
    """Messages in, out and dropped (by reason) on one plane."""

    received: int = 0
    forwarded: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """A JSON-ready copy."""
        return {"in": self.received, "out": self.forwarded, "dropped": dict(self.dropped)}


@dataclass
class PeerStatus:
    """The last StatusReport of a component, for ``spine status``."""

    pid: int = 0
    cpu_percent: float = 0.0
    memory_rss_bytes: int = 0
    state: str = ""
    uptime_s: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)  # its own counters (sent, ...)


class Broker:
    """The spine broker. ``start()`` binds, ``serve_forever()`` runs, ``close()`` cleans up.

    ``request_stop()`` may be called from a signal handler or another thread.
    """

    def __init__(self, config: BrokerConfig, *, notify: SystemdNotify | None = None) -> None:
        self.config = config
        self.notify = notify or SystemdNotify()
        self.counters = {CONTROL: PlaneCounters(), DATA: PlaneCounters()}
        self.routes = RoutingTable((CONTROL, DATA))
        self._present = {plane: self.routes.present(plane) for plane in (CONTROL, DATA)}
        self.watchdog = Watchdog(config.degrade_after_s, config.dead_after_s)
        self.spin = AdaptiveSpin(config.spin_us / 1e6)
        self.peer_status: dict[str, PeerStatus] = {}
        # what the broker cut from the reports it parses (see MAX_METRICS)
        self.heartbeat_counters = {"reports": 0, "oversized": 0, "unparsable": 0,
                                   "too_frequent": 0, "metrics_dropped": 0}
        self._report_due: dict[str, float] = {}  # name -> when its next report is read
        self.drop_log = LogLimiter()  # per (plane, routing id, reason)
        self.started_at = time.monotonic()
        self.instance_id = uuid.uuid4().hex[:16]  # changes on every start: components see restarts
        self._stopping = False
        self._ctx: zmq.Context | None = None
        self._sockets: list[zmq.Socket] = []
        # what a recipient could not take yet: (stamped header, payload, sender rid, sender,
        # original header), in that recipient's own bounded queue (spine.broker.queues)
        self.queues = RecipientQueues(config.queue_max_messages, config.queue_max_bytes,
                                      config.queues_max_bytes, config.slow_consumer_after_s)
        # Keyed by the authenticated CURVE key (ZAP User-Id): the key, not a name, is who
        # sent a message, so a removed, revoked or rotated-out key loses its routes at once.
        self._key_names: dict[str, str] = {}
        self._key_rids: dict[str, bytes] = {}
        self._key_pads: dict[str, bytes] = {}
        self._rotating_keys: set[str] = set()
        self._logged_whitelist_error: str | None = None
        self._hellos: set[tuple[str, bytes]] = set()
        self._admitted: set[str] = set()
        self._kinds: dict[str, int] = {}
        self._lock_fd: int | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._next_whitelist_check = 0.0
        self._next_status_line = 0.0
        self._reload_requested = False
        self.supervisor = None
        self.endpoints: list[Endpoints] = []

    # ---------------------------------------------------------------- lifecycle

    @property
    def wakeup_fd(self) -> int:
        """A socket fd to pass to ``signal.set_wakeup_fd`` so signals wake the loop at once."""
        return self._wake_w.fileno()

    def request_stop(self) -> None:
        """Ask the loop to finish its turn and return (safe from signal handlers)."""
        self._stopping = True
        try:
            self._wake_w.send(b"s")
        except (BlockingIOError, OSError):
            pass

    def request_reload(self) -> None:
        """Ask the loop to re-read the whitelist and tell systemd (SIGHUP)."""
        self._reload_requested = True
        try:
            self._wake_w.send(b"r")
        except (BlockingIOError, OSError):
            pass

    def start(self) -> None:
        """Load keys and whitelist, take the runtime-directory lock, bind every socket."""
        cfg = self.config
        private_dir(cfg.runtime_dir)
        self._take_lock(cfg.runtime_dir)
        self.keys = keyfiles.load_or_create(cfg.keys_dir, cfg.name)
        self.revoked = RevocationList(cfg.keys_dir)
        self.whitelist = Whitelist(cfg.keys_dir)
        self._apply_whitelist()
        self.zap = ZapHandler(self.whitelist, is_revoked=self.revoked.contains)
        ctx = self._ctx = zmq.Context(io_threads=2)
        self._zap_sock = self._socket(zmq.REP, max_bytes=None)
        self._zap_sock.bind(ZAP_ENDPOINT)
        # Control and data get an I/O thread each (ZMQ_AFFINITY), so decrypting a data flood
        # never delays a control frame before it even reaches this loop.
        self._ctl = self._router(cfg.control_max_bytes, io_thread=CONTROL_IO)
        self._data = self._router(cfg.data_max_bytes, io_thread=DATA_IO)
        self._pub = curve_server(tune(ctx.socket(zmq.PUB), hwm=cfg.hwm), self.keys, DOMAIN_MAIN)
        self._pub.setsockopt(zmq.AFFINITY, DATA_IO)
        self._sockets.append(self._pub)
        self._monitors = {}
        for plane, sock in ((CONTROL, self._ctl), (DATA, self._data)):
            monitor = sock.get_monitor_socket(_MONITORED)
            monitor.setsockopt(zmq.LINGER, 0)
            self._monitors[monitor] = plane
        self.handshake_failures: dict[str, int] = {}
        _renice_io_thread(DATA_IO_THREAD_NAME, cfg.data_io_nice)
        self.endpoints = [cfg.ipc_endpoints()]
        if cfg.tcp_endpoints():
            self.endpoints.append(cfg.tcp_endpoints())
        for eps in self.endpoints:
            for path in eps.ipc_paths():
                path.unlink(missing_ok=True)  # stale file of a crashed broker; we hold the lock
            try:
                self._ctl.bind(eps.control)
                self._data.bind(eps.data)
                self._pub.bind(eps.events)
            except zmq.ZMQError as exc:
                raise ConfigError(f"cannot bind {eps}: {exc}") from None
        self._pairing = PairingEndpoint(ctx, self.keys, cfg.keys_dir,
                                        [eps.pairing for eps in self.endpoints],
                                        PairingMachine(cfg.pairing_window_s))
        self.zap.pairing_policy = self._pairing.admits
        if self.whitelist.is_empty():
            self._pairing.open(time.monotonic(), OpenReason.EMPTY_WHITELIST)
        if cfg.components_file:
            from spine.broker.supervisor import Supervisor, load_config
            self.supervisor = Supervisor.from_config(load_config(cfg.components_file))
            for event in self.supervisor.start(time.monotonic()):
                self._supervisor_event(event)
        log.info("broker %s ready: public key %s; control %s; data %s; events %s; whitelist %d "
                 "entries in %s", cfg.name, self.keys.public.decode(),
                 " ".join(e.control for e in self.endpoints), " ".join(e.data for e in self.endpoints),
                 " ".join(e.events for e in self.endpoints), len(self._admitted), self.whitelist.path)
        self.notify.ready(self._status_line())

    def _router(self, max_bytes: int, io_thread: int) -> zmq.Socket:
        sock = self._socket(zmq.ROUTER, max_bytes=max_bytes)
        sock.setsockopt(zmq.AFFINITY, io_thread)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        return curve_server(sock, self.keys, DOMAIN_MAIN)

    def _socket(self, kind: int, *, max_bytes: int | None) -> zmq.Socket:
        sock = tune(self._ctx.socket(kind), hwm=self.config.hwm, max_bytes=max_bytes)
        self._sockets.append(sock)
        return sock

    def _take_lock(self, runtime_dir: Path) -> None:
        path = runtime_dir / "broker.lock"
        try:
            fd = open_nofollow(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open {path} ({exc.strerror}); a symlink there is "
                              f"refused: remove it (rm {path}) and start again") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(f"another broker is running on {runtime_dir} (it holds {path}); "
                              "stop it or use another --runtime-dir") from None
        self._lock_fd = fd

    def close(self) -> None:
        """Stop supervised children, close every socket (LINGER 0), end the context, unlock."""
        self.notify.stopping()
        if self.supervisor is not None:
            for event in self.supervisor.close():
                (log.error if event.alert else log.info)("supervisor: %s", event)
        for monitor in getattr(self, "_monitors", {}):
            monitor.close(linger=0)
        if getattr(self, "_pairing", None) is not None:
            self._pairing.close()
        for sock in self._sockets:
            sock.close(linger=0)
        self._sockets.clear()
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        for eps in self.endpoints:
            for path in eps.ipc_paths():
                path.unlink(missing_ok=True)
        if self._lock_fd is not None:
            (self.config.runtime_dir / "broker.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None
        self._wake_r.close()
        self._wake_w.close()
        self.notify.close()
        log.info("broker stopped")

    # ---------------------------------------------------------------- the loop

    def serve_forever(self) -> None:
        """Run the loop until ``request_stop()``."""
        poller = zmq.Poller()
        # Each zmq socket in a poll costs a ZMQ_EVENTS query per poll: the monitors, which
        # are never urgent, are drained on a timer instead (see _run_due).
        for sock in (self._ctl, self._zap_sock, self._data):
            poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        wake_fd = self._wake_r.fileno()
        pairing = None
        due_at = last_busy = 0.0
        spin = self.spin
        spin_s = spin.window_s
        while not self._stopping:
            if self._pairing.socket is not pairing:  # it exists only while a window is open
                if pairing is not None:
                    poller.unregister(pairing)
                pairing = self._pairing.socket
                if pairing is not None:
                    poller.register(pairing, zmq.POLLIN)
            now = time.monotonic()
            if now >= due_at:
                self._run_due(now)
                due_at = self._next_deadline(now)
            timeout = min(due_at - now, QUEUE_RETRY_S) if self.queues else due_at - now
            events = None
            if spin_s and now - last_busy < spin_s and spin.should_spin():
                while not events and time.monotonic() - last_busy < spin_s:
                    events = dict(poller.poll(0))
                spin.record(bool(events))
            if not events:
                events = dict(poller.poll(max(0, int(timeout * 1000 + 0.999))))
            if events:
                last_busy = time.monotonic()
                self._turn(events, pairing)
                if wake_fd in events:
                    due_at = 0.0  # a signal: stop or reload now
            elif self.queues:
                self._flush_queues()

    def _turn(self, events: dict, pairing: zmq.Socket | None) -> None:
        """Serve what the poll found: control first, then ZAP and pairing, then data."""
        if self._ctl in events:
            self._drain_control()
        if self._zap_sock in events:
            self._drain_zap()
        if pairing is not None and pairing in events:
            self._pairing.handle(time.monotonic())
        if self.queues:
            self._flush_queues()
        if self._data in events:
            self._serve_data(self.config.data_batch)

    def _drain_control(self) -> None:
        ctl, take, events = self._ctl, self._take, self._ctl.get
        while events(_EVENTS) & _POLLIN:
            take(ctl, CONTROL)

    def _serve_data(self, batch: int) -> None:
        data, take, control_events = self._data, self._take, self._ctl.get
        for _ in range(batch):
            if control_events(_EVENTS) & _POLLIN:
                self._drain_control()
            if not take(data, DATA):
                return

    def _take(self, sock: zmq.Socket, plane: str) -> bool:
        """Receive and handle one message; False when none is waiting.

        Frames are taken one by one (``Frame.more``): ``recv_multipart`` would ask the
        socket for RCVMORE after each part, which costs more than the rest of the work.
        """
        recv = sock.recv
        try:
            rid = recv(_NOBLOCK)
        except zmq.Again:
            return False
        header = recv(0, copy=False)
        if not header.more:
            self.counters[plane].received += 1
            self._drop(plane, "frame_count", rid, "1 frame, expected routing header and payload")
            return True
        payload = recv(0, copy=False)
        if payload.more:
            count = 3
            while recv(0, copy=False).more:
                count += 1
            self.counters[plane].received += 1
            self._drop(plane, "frame_count", rid,
                       f"{count} frames, expected routing header and payload")
            return True
        self._handle(rid, header, payload, plane, sock)
        return True

    def _drain_zap(self) -> None:
        while True:
            try:
                frames = self._zap_sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            reply = self.zap.handle(frames)
            if reply is None:  # REP must answer something to stay usable
                reply = [b"1.0", frames[1] if len(frames) > 1 else b"", b"500", b"malformed",
                         b"", b""]
            self._zap_sock.send_multipart(reply)

    def _key_seen(self, key: str) -> None:
        """A message came under a rotation's next key: the component has switched over, so
        its old key is retired (make-before-break: never before the new key is in use)."""
        entry = self.whitelist.lookup(key.encode())
        if entry is None or not entry.rotating:
            return
        try:
            promoted = rotation.promote(self.config.keys_dir, entry.public_key)
        except (WhitelistError, OSError, UnicodeDecodeError) as exc:
            log_limited(log, logging.ERROR, self.drop_log, ("promote", str(exc)),
                        time.monotonic(), "%s connected with its new key but the whitelist "
                        "cannot be rewritten (%s): both keys stay admitted until the file is "
                        "fixed", entry.name, exc)
            return
        if promoted:
            log.warning("%s connected with its new key %s: its old key is dropped",
                        entry.name, entry.public_key.decode())
            self.whitelist.refresh(force=True)
            self._apply_whitelist()

    def _drain_monitors(self) -> None:
        """Log and count failed handshakes (no CURVE, wrong broker key) and disconnections."""
        for monitor, plane in self._monitors.items():
            while True:
                try:
                    event = parse_monitor_message(monitor.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    log.info("a connection to the %s plane closed", plane)
                    continue
                why = _HANDSHAKE_WHY.get(event["event"], "handshake failed")
                self.handshake_failures[why] = self.handshake_failures.get(why, 0) + 1
                if event["event"] != zmq.EVENT_HANDSHAKE_FAILED_AUTH:  # ZAP logged those
                    log.warning("refused a connection on %s (%s plane): %s, code %s",
                                event["endpoint"].decode(errors="replace"), plane, why,
                                event["value"])

    # ---------------------------------------------------------------- one message

    def _handle(self, rid: bytes, header_frame: zmq.Frame, payload: zmq.Frame, plane: str,
                sock: zmq.Socket) -> None:
        counters = self.counters[plane]
        counters.received += 1
        header = header_frame.bytes
        try:
            key = header_frame.get("User-Id")
        except zmq.ZMQError:
            return self._drop(plane, "unauthenticated", rid, "no User-Id on message")
        if len(header) != HEADER_SIZE or header[0] != FORMAT_VERSION or header[1] > _MAX_CLASS \
                or header[3] & _UNKNOWN_FLAGS:
            return self._drop(plane, "bad_header", rid, f"header of {len(header)} bytes: "
                              f"{header[:4].hex() if len(header) >= 4 else header.hex()}")
        kind = header[2]
        present = self._present[plane]
        if self._key_rids.get(key) != rid or rid not in present:
            if not self._admit(plane, rid, key, kind):
                return
        user = self._key_names[key]
        if kind == _K_BROKER:
            return self._admin(plane, sock, rid, user, header, payload)
        if kind == _K_HEARTBEAT:
            if plane == DATA:
                return self._refuse(plane, sock, rid, user, header, RefusalReason.HEARTBEAT_ON_DATA,
                                    "heartbeats belong on the control plane")
            return self._heartbeat(sock, rid, user, header, payload)
        if kind > _K_HEARTBEAT:
            return self._drop(plane, "bad_kind", rid, f"message kind {kind}")
        stamped = header[:3] + _STAMP[header[3]] + header[4:20] + self._key_pads[key] + header[52:]
        recipient = header[52:].rstrip(b"\0")
        if kind == _K_PUBLISH:
            if recipient in BROKER_TOPICS:
                return self._drop(plane, "reserved_topic", rid,
                                  f"{user!r} may not publish on the broker's topic {recipient!r}")
            pub = self._pub
            _send(pub, recipient, _SNDMORE)
            _send(pub, stamped, _SNDMORE)
            _send(pub, payload, 0, False)
            counters.forwarded += 1
            return
        dest = recipient if recipient in present else self.routes.resolve(plane, recipient)
        if dest is None:
            return self._refuse(plane, sock, rid, user, header, RefusalReason.UNKNOWN_RECIPIENT,
                                f"no component {recipient.decode('utf-8', 'replace')!r} is "
                                f"connected on the {plane} plane")
        if plane == DATA and dest in self.queues:  # behind what already waits: keep order
            return self._enqueue(sock, dest, stamped, payload, rid, user, header)
        try:
            _send(sock, dest, _NOBLOCK_SNDMORE)  # ROUTER_MANDATORY refuses here, or never
        except zmq.Again:
            if plane == DATA:
                return self._enqueue(sock, dest, stamped, payload, rid, user, header)
            return self._refuse(plane, sock, rid, user, header, RefusalReason.RECIPIENT_BUSY,
                                f"{recipient.decode('utf-8', 'replace')!r} is not reading its "
                                "control queue")
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self.routes.leave(dest)
            return self._refuse(plane, sock, rid, user, header, RefusalReason.UNREACHABLE,
                                f"{recipient.decode('utf-8', 'replace')!r} has disconnected")
        _send(sock, stamped, _SNDMORE)
        _send(sock, payload, 0, False)
        counters.forwarded += 1

    def _admit(self, plane: str, rid: bytes, key: str, kind: int) -> bool:
        """Slow path for a routing id not yet known on this plane, or not its key's name."""
        user = self._key_names.get(key)
        if user is None:
            self._drop(plane, "not_whitelisted", rid,
                       f"key {key} is no longer whitelisted (removed, revoked or rotated out)")
            return False
        if key in self._rotating_keys:
            self._key_seen(key)
        name = user.encode()
        if rid == name + HEARTBEAT_SUFFIX and kind == _K_HEARTBEAT:
            return True
        if rid != name:
            self._drop(plane, "spoofed_identity", rid,
                       f"SECURITY: key of {user!r} used routing id {rid!r}")
            return False
        self.routes.join(plane, rid, user, self._kinds.get(user, 0))
        return True

    def _drop(self, plane: str, reason: str, rid: bytes, detail: str) -> None:
        dropped = self.counters[plane].dropped
        n = dropped[reason] = dropped.get(reason, 0) + 1
        log_limited(log, logging.WARNING, self.drop_log, (plane, rid, reason), time.monotonic(),
                    "dropped %s message from %r: %s: %s (%d so far)", plane, rid, reason, detail, n)

    def _refuse(self, plane: str, sock: zmq.Socket, rid: bytes, user: str, header: bytes,
                reason: RefusalReason, text: str, retry_after: float | None = None) -> None:
        """Drop a message and tell its sender why, with the request id it sent: the reason
        as data (``refusal``, with ``retry_after`` seconds when trying later may succeed)
        and in words (``text_data``)."""
        self._drop(plane, reason.label, rid, text)
        if header[2] in (_K_REPLY, _K_ERROR):
            return  # never answer an answer: two peers could ping-pong errors forever
        refusal = pb.Refusal(reason=int(reason),
                             recipient=header[52:].rstrip(b"\0").decode("utf-8", "replace"),
                             retry_after_ms=round(retry_after * 1000) if retry_after else 0)
        self._reply(sock, rid, user, header, Kind.ERROR,
                    pb.NeuralSpike(text_data=f"{reason.label}: {text}", refusal=refusal))

    def _reply(self, sock: zmq.Socket, rid: bytes, user: str, header: bytes, kind: Kind,
               spike: pb.NeuralSpike) -> None:
        request_id = header[4:20]
        spike.request_id = str(uuid.UUID(bytes=request_id))
        spike.timestamp = now_ms()
        reply_header = pack_header(kind, user, request_id, msg_class=MsgClass(header[1])
                                   if header[1] <= MsgClass.TELEMETRY else MsgClass.CONTROL,
                                   sender=BROKER, flags=Flag.STAMPED)
        try:
            sock.send_multipart([rid, reply_header, spike.SerializeToString()], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # a peer not reading its answers: one line now and then
            log_limited(log, logging.INFO, self.drop_log, (rid, "unanswered"), time.monotonic(),
                        "could not answer %r: %s", rid, exc)

    def _enqueue(self, sock: zmq.Socket, dest: bytes, stamped: bytes, payload, rid: bytes,
                 user: str, header: bytes) -> None:
        """``dest`` cannot take a data message now: queue it in ``dest``'s own queue, or
        refuse, drop or conflate it by class when that queue is full (spine.broker.queues)."""
        size = len(stamped) + len(payload)
        cls = MsgClass(header[1])
        outcome = self.queues.offer(dest, (stamped, payload, rid, user, header), size, cls,
                                    time.monotonic())
        if outcome is Outcome.QUEUED:
            return
        name = dest.decode("utf-8", "replace")
        if outcome is Outcome.CONFLATED:
            dropped = self.counters[DATA].dropped
            dropped["conflated"] = dropped.get("conflated", 0) + 1
        elif outcome is Outcome.REFUSED:
            stats = self.queues.stats()[dest]
            self._refuse(DATA, sock, rid, user, header, RefusalReason.QUEUE_FULL,
                         f"{name!r} is not keeping up: its queue is full ({stats.depth} "
                         f"messages, {stats.queued_bytes} bytes)",
                         retry_after=self.config.slow_consumer_after_s)
        else:
            self._drop(DATA, "queue_full", rid, f"{cls.name} message to {name!r}: its queue "
                       "is full")

    def _flush_queues(self) -> None:
        """Hand queued messages to recipients that read again, oldest first, until a pipe
        is full; a recipient that left loses its queue (counted, its senders told)."""
        data, queues, counters = self._data, self.queues, self.counters[DATA]
        now = time.monotonic()
        for dest in queues.waiting():
            while dest in queues:
                stamped, payload, rid, user, header = queues.peek(dest)
                try:
                    _send(data, dest, _NOBLOCK_SNDMORE)
                except zmq.Again:
                    break
                except zmq.ZMQError as exc:
                    if exc.errno != zmq.EHOSTUNREACH:
                        raise
                    self.routes.leave(dest)
                    lost = queues.discard(dest, now)
                    self._refuse(DATA, data, rid, user, header, RefusalReason.UNREACHABLE,
                                 f"{dest.decode('utf-8', 'replace')!r} has disconnected with "
                                 f"{lost} messages queued")
                    break
                _send(data, stamped, _SNDMORE)
                _send(data, payload, 0, False)
                queues.pop(dest, now)
                counters.forwarded += 1

    def _slow_consumer(self, event) -> None:
        name = event.recipient.decode("utf-8", "replace")
        if event.slow:
            log.warning("%s is a slow consumer: its queue has been full for %.1f s (%d messages, "
                        "%d bytes); its senders are refused until it reads again", name,
                        self.config.slow_consumer_after_s, event.depth, event.queued_bytes)
        else:
            log.warning("%s is reading again: its queue has drained", name)
        self.publish_event("routing", pb.NeuralSpike(text_data=json.dumps(
            {"name": name, "event": "slow_consumer" if event.slow else "recovered",
             "depth": event.depth, "bytes": event.queued_bytes})))

    # ---------------------------------------------------------------- the broker's own messages

    def _admin(self, plane: str, sock: zmq.Socket, rid: bytes, user: str, header: bytes,
               payload) -> None:
        size = len(payload)
        if size > self._payload_limit:
            return self._refuse(plane, sock, rid, user, header, RefusalReason.OVERSIZED_COMMAND,
                                f"a broker command of {size} bytes (at most "
                                f"{self._payload_limit}); it was not read")
        spike = pb.NeuralSpike()
        try:
            spike.ParseFromString(payload.bytes)
        except Exception:  # protobuf raises DecodeError and, for some inputs, others
            return self._drop(plane, "bad_payload", rid, "admin message is not a NeuralSpike")
        command = spike.command_req.command if spike.HasField("command_req") else ""
        if plane == DATA and command not in DATA_PLANE_COMMANDS:
            return self._refuse(plane, sock, rid, user, header, RefusalReason.CONTROL_ONLY,
                                f"the broker takes {command[:64]!r} on the control plane only")
        if command == "hello" and (plane, rid) in self._hellos:
            log_limited(log, logging.WARNING, self.drop_log, (plane, rid, "hello again"),
                        time.monotonic(), "%s said hello again on the %s plane: a new connection "
                        "replaces the earlier one (one identity, one connection)", user, plane)
        if command == "hello":
            self._hellos.add((plane, rid))
        if command in ("hello", "ping"):
            # the instance id lets a component tell a restarted broker from the one it greeted
            answer = pb.NeuralSpike(text_data=f"{command} {user} {plane} {self.instance_id}")
        elif command == "status":
            answer = pb.NeuralSpike(rich_payload=pb.RichPayload(
                mime_type="application/json", data=self.status_json()))
        elif command == "pair-open" and self._kinds.get(user) == pb.CLI_CONTROLLER:
            try:  # args: the kinds to admit (default: all but CLI_CONTROLLER)
                kinds = frozenset(parse_kind(k[:40]) for k in spike.command_req.args) or None
            except WhitelistError as exc:
                return self._refuse(plane, sock, rid, user, header, RefusalReason.BAD_COMMAND,
                                    f"pair-open: {exc}")
            answer = pb.NeuralSpike(text_data=self._pairing.open_for(user, time.monotonic(),
                                                                     kinds))
        elif command == "shutdown" and self._kinds.get(user) == pb.CLI_CONTROLLER:
            log.warning("shutdown requested by %s", user)
            self.request_stop()
            answer = pb.NeuralSpike(text_data="shutting down")
        else:
            return self._refuse(plane, sock, rid, user, header, RefusalReason.BAD_COMMAND,
                                f"the broker does not accept {command[:64]!r} from {user!r}")
        self.counters[plane].forwarded += 1
        self._reply(sock, rid, user, header, Kind.REPLY, answer)

    def _heartbeat(self, sock: zmq.Socket, rid: bytes, user: str, header: bytes, payload) -> None:
        """A component's heartbeat (control plane): it is alive; keep a bounded copy of its
        report. An oversized or unreadable report still proves the component alive."""
        now = time.monotonic()
        stuck = False  # the component says its own loop is stuck (manual liveliness)
        counts = self.heartbeat_counters
        size = len(payload)
        if size > self._payload_limit:
            counts["oversized"] += 1
            log_limited(log, logging.WARNING, self.drop_log, (CONTROL, rid, "oversized report"),
                        now, "%s sent a heartbeat of %d bytes (at most %d): its report was not "
                        "read", user, size, self._payload_limit)
        elif now < self._report_due.get(user, 0.0):
            counts["too_frequent"] += 1
        else:
            self._report_due[user] = now + REPORT_EVERY_S
            spike = pb.NeuralSpike()
            try:
                spike.ParseFromString(payload.bytes)
            except Exception:
                spike.Clear()
            if spike.HasField("status"):
                report = spike.status
                stuck = report.state == pb.StatusReport.DEGRADED
                metrics, dropped = bounded_metrics(report.metrics)
                counts["reports"] += 1
                if dropped:
                    counts["metrics_dropped"] += dropped
                    log_limited(log, logging.WARNING, self.drop_log,
                                (CONTROL, rid, "metrics dropped"), now,
                                "%s reported %d metrics: kept %d (at most %d, keys of at most %d "
                                "bytes)", user, len(report.metrics), len(metrics), MAX_METRICS,
                                MAX_METRIC_KEY_BYTES)
                self.peer_status[user] = PeerStatus(
                    report.pid, report.cpu_percent, report.memory_rss_bytes,
                    pb.StatusReport.State.Name(report.state) if report.state in
                    pb.StatusReport.State.values() else str(report.state), report.uptime_s,
                    metrics)
            else:
                counts["unparsable"] += 1
        if stuck:
            transition = self.watchdog.reported_degraded(user, now)
        elif self.watchdog.state(user) is Liveness.DEGRADED and now < self._report_due.get(user, 0.0):
            transition = None  # an unread beat between reports: keep what the last one said
        else:
            transition = self.watchdog.heard_from(user, now)
        if transition is not None:
            self._liveness_changed(transition)
        self._reply(sock, rid, user, header, Kind.HEARTBEAT, pb.NeuralSpike(text_data=f"alive {self.instance_id}"))

    @property
    def _payload_limit(self) -> int:
        """The largest broker command or report the broker parses (never more than the
        control plane admits, whichever plane it came on)."""
        limit = self.config.control_max_bytes
        return BROKER_PAYLOAD_MAX_BYTES if limit is None or limit < 0 \
            else min(limit, BROKER_PAYLOAD_MAX_BYTES)

    def _liveness_changed(self, transition) -> None:
        log.warning("%s is now %s (silent %.1f s)", transition.name, transition.new.value,
                    transition.at - transition.last_seen)
        self.routes.set_degraded(transition.name, transition.new is not Liveness.ALIVE)
        self.publish_event("watchdog", pb.NeuralSpike(text_data=json.dumps(
            {"name": transition.name, "from": transition.old.value, "to": transition.new.value})))
        if transition.new is Liveness.DEAD and self.supervisor is not None:
            for event in self.supervisor.declare_dead(transition.name, transition.at):
                self._supervisor_event(event)

    def _supervisor_event(self, event) -> None:
        from spine.broker.supervisor import EventKind
        (log.error if event.alert else log.info)("supervisor: %s", event)
        if event.kind is EventKind.STARTED:
            revived = self.watchdog.expect(event.name, event.at)
            if revived is not None:  # DEAD -> ALIVE: publish it and route to it again
                self._liveness_changed(revived)
        self.publish_event("supervisor", pb.NeuralSpike(text_data=json.dumps(
            {"name": event.name, "event": event.kind.value, "pid": event.pid,
             "detail": event.detail, "alert": event.alert})))

    def publish_event(self, topic: str, spike: pb.NeuralSpike) -> None:
        """Broadcast a broker event (e.g. a liveness change) on the event socket."""
        spike.request_id = str(uuid.uuid4())
        spike.timestamp = now_ms()
        header = pack_header(Kind.PUBLISH, topic, uuid.UUID(spike.request_id).bytes,
                             msg_class=MsgClass.TELEMETRY, sender=BROKER, flags=Flag.STAMPED)
        self._pub.send_multipart([topic.encode(), header, spike.SerializeToString()])

    # ---------------------------------------------------------------- what is due

    def _next_deadline(self, now: float) -> float:
        deadlines = [self._next_whitelist_check, now + 0.5]
        for candidate in (self.watchdog.next_deadline(now), self.notify.next_watchdog_deadline(now),
                          self.queues.next_deadline(),
                          self.supervisor.next_deadline(now) if self.supervisor else None,
                          self._pairing.next_deadline()):
            if candidate is not None:
                deadlines.append(candidate)
        return min(deadlines)

    def _run_due(self, now: float) -> None:
        if self._stopping:
            return
        self._drain_wakeups()
        if self._reload_requested:
            self._reload_requested = False
            self.notify.reloading()
            self.revoked.refresh(force=True)
            self.whitelist.refresh(force=True)
            self._logged_whitelist_error = None  # asked for explicitly: say it again
            self._apply_whitelist()
            log.info("reloaded (SIGHUP): whitelist %s, revocation list %s",
                     "unchanged, its edit has an error" if self.whitelist.reload_error else "read",
                     "unchanged, it has an error" if self.revoked.reload_error else "read")
            self.notify.ready(self._status_line())
        if now >= self._next_whitelist_check:
            self._next_whitelist_check = now + self.config.whitelist_poll_s
            self._drain_monitors()
            if self.revoked.refresh() | self.whitelist.refresh():
                self._apply_whitelist()
            else:
                self._report_whitelist_error()
        self._pairing.check(now)
        for event in self.queues.check(now):
            self._slow_consumer(event)
        for transition in self.watchdog.check(now):
            self._liveness_changed(transition)
        if self.supervisor is not None:
            for event in self.supervisor.poll(now):
                self._supervisor_event(event)
        if self.notify.watchdog_due(now):
            self.notify.ping(now)
        if now >= self._next_status_line:
            self._next_status_line = now + 5.0
            self.notify.status(self._status_line())

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(64):
                pass
        except (BlockingIOError, OSError):
            pass

    def _report_whitelist_error(self) -> None:
        """Log a failed re-read of the whitelist once per distinct error (file and line)."""
        error = self.whitelist.reload_error
        if error and error != self._logged_whitelist_error:
            log.error("whitelist edit ignored, previous entries stay in force: %s", error)
        self._logged_whitelist_error = error

    def _apply_whitelist(self) -> None:
        self._report_whitelist_error()
        entries = []
        for entry in self.whitelist.entries:
            if entry.public_key in self.revoked:
                log.error("SECURITY: whitelist entry %s ignored: its key %s is revoked",
                          entry.name, entry.public_key.decode())
            else:
                entries.append(entry)
        admitted = {e.name for e in entries}
        for new in sorted(admitted - self._admitted):
            log.info("whitelist admits %s", new)
        for gone in self._admitted - admitted:
            log.warning("%s removed from the whitelist: its messages are refused from now on", gone)
            self.routes.leave(gone.encode())
        self._admitted = admitted
        self._kinds = {e.name: e.kind for e in entries}
        keys = {e.public_key.decode(): e.name for e in entries}
        for key in self._key_names.keys() - keys.keys():
            log.warning("key %s of %s left the whitelist: refused from now on", key,
                        self._key_names[key])
        self._key_names = keys
        # A rotation's next key stays off the fast path until its first message retires
        # the old key (see _key_seen).
        self._key_rids = {e.public_key.decode(): e.name.encode() for e in entries if not e.rotating}
        rotating = {e.public_key.decode(): e.name for e in entries if e.rotating}
        for key in sorted(rotating.keys() - self._rotating_keys):
            log.info("whitelist admits the next key %s of %s (a rotation)", key, rotating[key])
        self._rotating_keys = set(rotating)
        self._key_pads = {e.public_key.decode(): e.name.encode().ljust(NAME_SIZE, b"\0")
                          for e in entries}

    def _status_line(self) -> str:
        c, d = self.counters[CONTROL], self.counters[DATA]
        return (f"{len(self.routes.peers)} components; control {c.received} in/{c.forwarded} out; "
                f"data {d.received} in/{d.forwarded} out; "
                f"{sum(self.zap.stats.denied.values())} denied")

    def status_json(self) -> bytes:
        """``status()`` as JSON of at most ``STATUS_MAX_BYTES``: if it is larger, the
        components' metrics go first, then components from the end (``"truncated": true``)."""
        status = self.status()
        data = json.dumps(status).encode()
        if len(data) <= STATUS_MAX_BYTES:
            return data
        status["truncated"] = True
        for component in status["components"]:
            component["metrics"] = {}
        data = json.dumps(status).encode()
        rows = status["components"]
        while len(data) > STATUS_MAX_BYTES and rows:
            cut = max(1, len(rows) // 2)
            status["components_omitted"] += cut
            del rows[-cut:]
            data = json.dumps(status).encode()
        return data

    def _queue_status(self) -> dict:
        """Recipient queues for ``status``: totals, and per recipient that ever queued (at
        most ``STATUS_MAX_COMPONENTS``) its depth, bytes, losses and slow-consumer state."""
        stats = sorted(self.queues.stats().items())[:STATUS_MAX_COMPONENTS]
        return {"total_bytes": self.queues.total_bytes,
                "max_bytes": self.queues.total_max_bytes,
                "recipients": {rid.decode("utf-8", "replace"): {
                    "depth": st.depth, "bytes": st.queued_bytes, "refused": st.refused,
                    "dropped": st.dropped, "conflated": st.conflated, "slow": st.slow,
                    "slow_events": st.slow_events} for rid, st in stats}}

    def status(self) -> dict:
        """Counters, components and authentication figures, as ``spine status`` shows them.

        At most ``STATUS_MAX_COMPONENTS`` components are listed (``components_omitted``
        counts the others, ``truncated`` says whether anything was left out).
        """
        now = time.monotonic()
        components = []
        liveness = {r.name: r for r in self.watchdog.snapshot(now)}
        peers = sorted(self.routes.peers.items())
        omitted = max(0, len(peers) - STATUS_MAX_COMPONENTS)
        for rid, peer in peers[:STATUS_MAX_COMPONENTS]:
            record = liveness.get(peer.name)
            st = self.peer_status.get(peer.name, PeerStatus())
            components.append({
                "name": peer.name, "kind": pb.ComponentID.Name(peer.kind)
                if peer.kind in pb.ComponentID.values() else str(peer.kind),
                "state": record.state.value if record else "connected",
                "last_seen_s": round(record.silent_for, 3) if record else None,
                "pid": st.pid, "cpu_percent": st.cpu_percent, "memory_rss_bytes": st.memory_rss_bytes,
                "reported_state": st.state, "metrics": st.metrics,
                "planes": sorted(peer.planes)})
        return {
            "broker": self.config.name, "public_key": self.keys.public.decode(),
            "uptime_s": round(now - self.started_at, 3),
            "planes": {p: c.as_dict() for p, c in self.counters.items()},
            "auth": {"allowed": self.zap.stats.allowed, "denied": dict(self.zap.stats.denied),
                     "handshake_failures": dict(self.handshake_failures),
                     "last_denied": [list(x) for x in self.zap.stats.last_denied]},
            "whitelist": {"entries": len(self._admitted), "path": str(self.whitelist.path),
                          "reload_error": self.whitelist.reload_error},
            "components": components,
            "components_omitted": omitted,
            "truncated": omitted > 0,
            "heartbeats": dict(self.heartbeat_counters),
            "log_lines_suppressed": self.drop_log.suppressed_total
            + self.zap.log_limiter.suppressed_total,
            "queues": self._queue_status(),
            "supervised": [] if self.supervisor is None else [
                {"name": c.name, "state": c.state.value, "pid": c.pid,
                 "recent_restarts": c.recent_restarts} for c in self.supervisor.status(now)],
        }


def _renice_io_thread(name: str, nice: int) -> None:
    """Lower the CPU priority of libzmq's I/O thread ``name`` (bulk work yields to control).

    Raising a thread's niceness needs no privilege; on systems without /proc it is skipped.
    """
    if nice <= 0:
        return
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/comm") as fh:
                if fh.read().strip() == name:
                    os.setpriority(os.PRIO_PROCESS, int(tid), nice)
                    log.info("data-plane I/O thread %s runs at nice %d", tid, nice)
        except OSError:
            continue


def bounded_metrics(metrics) -> tuple[dict[str, float], int]:
    """At most ``MAX_METRICS`` of a report's ``metrics`` (the client's own counters first),
    without keys over ``MAX_METRIC_KEY_BYTES``; and how many were dropped."""
    kept: dict[str, float] = {}
    for key in KEPT_FIRST_METRICS:
        if key in metrics:
            kept[key] = metrics[key]
    for key, value in itertools.islice(metrics.items(), 4 * MAX_METRICS):
        if len(kept) >= MAX_METRICS:
            break
        if len(key) <= MAX_METRIC_KEY_BYTES and len(key.encode()) <= MAX_METRIC_KEY_BYTES:
            kept[key] = value
    return kept, len(metrics) - len(kept)
