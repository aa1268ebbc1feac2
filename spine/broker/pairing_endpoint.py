"""The broker's pairing door: the PAIRING socket, bound only while a window is open.

The pure :class:`~spine.security.pairing.PairingMachine` decides; this class does the I/O
for the broker loop. Opening a window binds a CURVE ROUTER (ZAP domain ``spine-pairing``)
on the pairing endpoints and logs the *invite* once; closing it (paired, expired, lockout)
unbinds and closes the socket, so outside a window there is nothing to connect to.

The wire contract and the invite are in :mod:`spine.security.invite`. The newcomer's
public key is the one its CURVE handshake proved (ZAP User-Id ``pairing:KEY``), never
anything it writes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import zmq

from spine.errors import KeyFileError, PairingError, WhitelistError
from spine.ratelimit import LogLimiter, log_limited
from spine.protocol import neural_spike_pb2 as pb
from spine.security import whitelist
from spine.security.invite import OK, PROTOCOL, REFUSED, Invite
from spine.security.keys import KeyPair, check_name
from spine.security.pairing import (Admit, CloseReason, OpenReason, PairingMachine,
                                    PairingRequest, Refusal, Refuse, WindowClosed)
from spine.security.zap import DOMAIN_PAIRING
from spine.sockets import curve_server, tune

log = logging.getLogger("spine.pairing")

MAX_MESSAGE_BYTES = 4096  # a pairing request is ~100 bytes; this bounds what a peer can send
MAX_REQUESTS_PER_TURN = 64
CLOSE_GRACE_S = 0.5  # the socket outlives its window this long, so the last answer gets out


class PairingEndpoint:
    """Owns the pairing socket of one broker and feeds its requests to a PairingMachine.

    The broker loop polls :attr:`socket` while it is not None, calls :meth:`handle` when it
    is readable, :meth:`check` when :meth:`next_deadline` has passed, and :meth:`close` on
    shutdown. Admitted keys are appended to ``whitelist.txt`` atomically. When a window
    closes, new handshakes are refused at once (ZAP) and the socket itself is closed
    ``CLOSE_GRACE_S`` later, so the answer that closed it is not thrown away (LINGER is 0).
    """

    def __init__(self, context: zmq.Context, keys: KeyPair, keys_dir: Path,
                 endpoints: list[str], machine: PairingMachine, *, hwm: int = 1000) -> None:
        self._ctx = context
        self._keys = keys
        self._keys_dir = Path(keys_dir)
        self._endpoints = list(endpoints)
        self.machine = machine
        self._hwm = hwm
        self.socket: zmq.Socket | None = None
        self.paired: list[whitelist.Entry] = []
        self._retire_at: float | None = None
        self._refusal_log = LogLimiter()  # per (address, reason): a peer cannot fill the journal

    # ---------------------------------------------------------------- the window

    @property
    def window_open(self) -> bool:
        """True while a window is open (its socket is bound)."""
        return self.machine.window_open

    def admits(self, public_key: bytes, address: str) -> bool:
        """ZAP policy of the pairing domain: any key may try while a window is open."""
        return self.machine.window_open

    def open(self, now: float, reason: OpenReason, kinds: frozenset[int] | None = None) -> None:
        """Open a window for newcomers of ``kinds`` (default: every kind but CLI_CONTROLLER):
        draw the token, bind the socket, log the invite once.

        Raises PairingError if a window is already open.
        """
        token = self.machine.open_window(now, reason, kinds)
        self._unbind()  # the socket of a window closed a moment ago
        try:
            self._bind()
        except zmq.ZMQError as exc:
            self.machine.close_window(now)
            raise PairingError(f"cannot bind the pairing endpoint {self._endpoints}: {exc}") \
                from None
        invite = Invite(self._keys.public, token).text()
        del token
        log.warning("PAIRING WINDOW OPEN (%s) for %.0f s on %s, admitting %s. Invite, valid "
                    "once:\n\n    %s\n\nOn the new component run: spine pair INVITE --name NAME "
                    "--kind KIND", reason.value, self.machine.window_seconds,
                    " ".join(self._endpoints), self.admitted(), invite)

    def admitted(self) -> str:
        """The kinds the open window admits, by name ("" when none is open)."""
        return ", ".join(pb.ComponentID.Name(k) for k in sorted(self.machine.admitted_kinds))

    def open_for(self, operator: str, now: float, kinds: frozenset[int] | None = None) -> str:
        """An authorised operator asks for a window admitting ``kinds`` (default: every
        kind but CLI_CONTROLLER): open one unless one is open.

        Returns what to tell the operator, which never includes the invite: that goes to the
        broker's log only.
        """
        if not self.machine.window_open:
            log.warning("pairing window requested by %s", operator)
            try:
                self.open(now, OpenReason.OPERATOR, kinds)
            except PairingError as exc:
                log.error("%s", exc)
                return f"could not open a pairing window: {exc}"
            return f"{self.describe(now)} (opened for {operator})"
        return self.describe(now)

    def describe(self, now: float) -> str:
        """One line for an operator: whether a window is open and for how long (no secret)."""
        if not self.machine.window_open:
            return "no pairing window is open"
        return (f"pairing window open, {self.machine.remaining(now):.0f} s left, admitting "
                f"{self.admitted()}; the invite is in the broker's log")

    def next_deadline(self) -> float | None:
        """When the open window expires or a closed window's socket goes, or None."""
        deadlines = [d for d in (self.machine.next_deadline(), self._retire_at) if d is not None]
        return min(deadlines, default=None)

    def check(self, now: float) -> None:
        """Close the window if it has expired at ``now``; close a closed window's socket."""
        closed = self.machine.check(now)
        if closed is not None:
            self._closed(closed)
        if self._retire_at is not None and now >= self._retire_at:
            self._unbind()

    def close(self) -> None:
        """Close the socket (LINGER 0) whatever the machine's state; for broker shutdown."""
        self._unbind()

    # ---------------------------------------------------------------- requests

    def handle(self, now: float) -> None:
        """Answer the pairing requests waiting on the socket (a bounded batch per turn)."""
        for _ in range(MAX_REQUESTS_PER_TURN):
            sock = self.socket
            if sock is None:
                return
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._answer(sock, frames, now)

    def _answer(self, sock: zmq.Socket, frames: list, now: float) -> None:
        rid = frames[0].bytes
        key, address = _peer(frames[-1])
        parsed = _parse(frames[1:], key, address)
        if isinstance(parsed, str):
            decision: Admit | Refuse = self.machine.malformed(key, address, parsed, now)
        else:
            clash = self._clash(parsed, now)
            if clash:
                decision = self.machine.malformed(key, address, clash, now)
            else:
                decision = self.machine.attempt(parsed, now)
        if isinstance(decision, Admit):
            self._admit(sock, rid, decision, now)
        else:
            if decision.window_closed:  # a lockout: always worth its line
                log.warning("%s", decision.alert)
            else:
                log_limited(log, logging.WARNING, self._refusal_log,
                            (decision.address, decision.reason), now, "%s", decision.alert)
            text = f"pairing refused: {decision.reason.value}"
            if decision.detail:
                text += f" ({decision.detail})"
            self._send(sock, rid, REFUSED, text)
            if decision.window_closed:
                why = CloseReason.EXPIRED if decision.reason is Refusal.EXPIRED \
                    else CloseReason.LOCKOUT
                self._closed(WindowClosed(why, now))

    def _clash(self, request: PairingRequest, now: float) -> str:
        """Why ``request`` cannot be admitted whatever its proof, or ''.

        A whitelist that cannot be read refuses every request (nothing can be added to it
        safely) and keeps the broker running on the entries it loaded last.
        """
        try:
            entries = whitelist.read_entries(self._keys_dir)
        except (WhitelistError, OSError, UnicodeDecodeError) as exc:
            log_limited(log, logging.ERROR, self._refusal_log, ("whitelist", str(exc)), now,
                        "pairing refused: the whitelist cannot be read (%s); fix the file, the "
                        "entries loaded last stay in force", exc)
            return f"the broker's whitelist cannot be read ({exc}); ask its operator to fix it"
        for entry in entries:
            if entry.name == request.name:
                return f"the name {request.name!r} is already in the whitelist"
            if entry.public_key.decode("ascii") == request.public_key:
                return f"this key is already in the whitelist as {entry.name!r}"
        return ""

    def _admit(self, sock: zmq.Socket, rid: bytes, decision: Admit, now: float) -> None:
        request = decision.request
        entry = whitelist.Entry(request.public_key.encode("ascii"), request.name, request.kind)
        try:
            whitelist.add_entry(self._keys_dir, entry)
        except (WhitelistError, OSError) as exc:
            log.error("SECURITY: pairing of %s (key %s from %s) matched but the whitelist "
                      "could not be written: %s", request.name, request.public_key,
                      request.address, exc)
            self._send(sock, rid, REFUSED, f"the broker could not write its whitelist: {exc}; "
                                           "ask the operator to open a new window")
        else:
            self.paired.append(entry)
            log.warning("paired %s (%s) with key %s from %s; path %s", entry.name,
                        entry.kind_name(), request.public_key, request.address,
                        " -> ".join(s.value for s in decision.path))
            self._send(sock, rid, OK, f"paired as {entry.name} ({entry.kind_name()}); "
                                      "the whitelist admits this key from now on")
        self._closed(WindowClosed(CloseReason.PAIRED, now))

    def _send(self, sock: zmq.Socket, rid: bytes, status: bytes, text: str) -> None:
        try:
            sock.send_multipart([rid, PROTOCOL, status, text.encode("utf-8")], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.info("could not answer a pairing request: %s", exc)

    # ---------------------------------------------------------------- the socket

    def _bind(self) -> None:
        sock = tune(self._ctx.socket(zmq.ROUTER), hwm=self._hwm, max_bytes=MAX_MESSAGE_BYTES)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        curve_server(sock, self._keys, DOMAIN_PAIRING)
        try:
            for endpoint in self._endpoints:
                if endpoint.startswith("ipc://"):
                    Path(endpoint[len("ipc://"):]).unlink(missing_ok=True)
                sock.bind(endpoint)
        except zmq.ZMQError:
            sock.close(linger=0)
            raise
        self.socket = sock

    def _unbind(self) -> None:
        sock, self.socket, self._retire_at = self.socket, None, None
        if sock is None:
            return
        sock.close(linger=0)
        for endpoint in self._endpoints:
            if endpoint.startswith("ipc://"):
                Path(endpoint[len("ipc://"):]).unlink(missing_ok=True)

    def _closed(self, closed: WindowClosed) -> None:
        if self.socket is not None:
            self._retire_at = closed.at + CLOSE_GRACE_S
        log.warning("pairing window closed: %s; the pairing endpoint goes with it",
                    closed.reason.value)


def _peer(frame) -> tuple[str, str]:
    """The newcomer's key (from its CURVE handshake) and address, as ZAP reported them."""
    try:
        user = frame.get("User-Id")
    except zmq.ZMQError:
        user = ""
    key = user[len("pairing:"):] if user.startswith("pairing:") else "-"
    try:
        address = frame.get("Peer-Address") or "ipc"
    except zmq.ZMQError:
        address = "ipc"
    return key, address


def _parse(frames: list, key: str, address: str) -> PairingRequest | str:
    """A PairingRequest, or a string saying what is malformed."""
    if key == "-":
        return "no authenticated key on the request"
    if len(frames) != 4:
        return f"{len(frames)} frames, expected 4"
    proto, name, kind, proof = (f.bytes for f in frames)
    if proto != PROTOCOL:
        return f"protocol {proto[:32]!r}, expected {PROTOCOL!r}"
    try:
        text_name = check_name(name.decode("utf-8"))
        kind_value = whitelist.parse_kind(kind.decode("ascii"))
    except (UnicodeDecodeError, KeyFileError, WhitelistError) as exc:
        return str(exc)
    if text_name == "broker":
        return "the name 'broker' is reserved for the broker's own key"
    return PairingRequest(key, address, text_name, kind_value, proof)
