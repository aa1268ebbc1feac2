"""``spine pair``: join the bus with an invite, or ask the broker to open a pairing window.

``spine pair INVITE --name NAME --kind KIND`` runs on the new component's machine. It
creates (or loads) the component's permanent identity NAME (INF-03), connects to the
broker's pairing endpoint under CURVE with the broker key pinned from the invite, proves it
holds the token by its SHA-256, and on success stores the broker's public key as
``broker.key`` beside its own keys. A connection to anyone but the broker named in the
invite fails its handshake, so nothing is sent to an impostor.

``spine pair open`` asks a running broker, as a whitelisted CLI_CONTROLLER identity, to open
a window; the invite then appears in the broker's log, never on the operator's terminal.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import zmq
from zmq.utils.monitor import recv_monitor_message

from spine import paths
from spine.endpoints import Endpoints
from spine.errors import KeyFileError, PairingError, SpineError
from spine.fsutil import atomic_write
from spine.protocol import neural_spike_pb2 as pb
from spine.security import keys as keyfiles
from spine.security import whitelist
from spine.security.invite import OK, PROTOCOL, Invite
from spine.security.pairing import proof_for
from spine.sockets import curve_client, tune

BROKER_KEY_NAME = "broker"
DEFAULT_TIMEOUT_S = 10.0
MAX_ANSWER_BYTES = 4096


@dataclass(frozen=True, slots=True)
class PairingResult:
    """What the broker answered: ``ok`` and its explanation."""

    ok: bool
    text: str


def pairing_endpoint(runtime_dir: Path | None, tcp: str | None) -> str:
    """The broker's pairing endpoint: ipc in ``runtime_dir``, or TCP control port + 3."""
    if tcp:
        host, sep, port = tcp.rpartition(":")
        if not sep or not port.isdigit():
            raise PairingError(f"--tcp expects HOST:PORT (the broker's control port), got {tcp!r}")
        return Endpoints.tcp(host.strip("[]"), int(port)).pairing
    return Endpoints.ipc(paths.runtime_dir(runtime_dir)).pairing


def pair(invite: Invite, keys: keyfiles.KeyPair, name: str, kind: int, endpoint: str,
         timeout: float = DEFAULT_TIMEOUT_S) -> PairingResult:
    """Present the invite's proof as ``name`` of ``kind`` to the broker pinned by the invite.

    Returns the broker's answer. Raises PairingError when no answer comes: no window open,
    a handshake the broker refused, or a broker that does not hold the invite's key.
    """
    if endpoint.startswith("ipc://") and not Path(endpoint[len("ipc://"):]).exists():
        raise PairingError(f"no pairing window is open: nothing listens at {endpoint} (the "
                           "broker binds it only while a window is open; ask the operator "
                           "to run 'spine pair open' and use the new invite)")
    ctx = zmq.Context()
    sock = tune(ctx.socket(zmq.DEALER), hwm=10, max_bytes=MAX_ANSWER_BYTES)
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED
                                       | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                       | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                       | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                                       | zmq.EVENT_DISCONNECTED)
    try:
        curve_client(sock, keys, invite.broker_key)
        sock.connect(endpoint)
        sock.send_multipart([PROTOCOL, name.encode("utf-8"),
                             pb.ComponentID.Name(kind).encode("ascii"), proof_for(invite.token)])
        return _await_answer(sock, monitor, endpoint, timeout)
    finally:
        sock.disable_monitor()
        monitor.close(linger=0)
        sock.close(linger=0)
        ctx.term()


def _await_answer(sock: zmq.Socket, monitor: zmq.Socket, endpoint: str,
                  timeout: float) -> PairingResult:
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    deadline = time.monotonic() + timeout
    shook_hands = False
    while (remaining := deadline - time.monotonic()) > 0:
        ready = dict(poller.poll(int(remaining * 1000) + 1))
        if sock in ready:
            frames = sock.recv_multipart()
            if len(frames) != 3 or frames[0] != PROTOCOL:
                raise PairingError(f"the broker at {endpoint} answered something that is not a "
                                   "pairing answer; is it a spine broker of this version?")
            return PairingResult(frames[1] == OK, frames[2].decode("utf-8", "replace"))
        if monitor in ready:
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                shook_hands = True
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                raise PairingError(f"the broker at {endpoint} refused the connection: its "
                                   "pairing window has closed, or this key is revoked")
            elif not shook_hands:  # dropped during the handshake: the pinned key did not match
                raise PairingError(f"the CURVE handshake with {endpoint} failed: the peer there "
                                   "does not hold the broker key in the invite, so nothing "
                                   "was sent. Check that the invite comes from this broker")
    raise PairingError(f"no answer from the broker at {endpoint} within {timeout:g} s: is a "
                       "pairing window open, and does the invite come from this broker?")


def store_broker_key(keys_dir: Path, broker_key: bytes) -> Path:
    """Store the pinned broker key as ``broker.key`` (0644, atomic); return its path.

    An existing ``broker.key`` with another key is not replaced (KeyFileError): the
    operator decides whether the broker's identity really changed.
    """
    path = keyfiles.public_path(keys_dir, BROKER_KEY_NAME)
    if path.exists():
        if keyfiles.load_public(path) == broker_key:
            return path
        raise KeyFileError(f"{path} holds another broker key than the invite; if the broker's "
                           "identity really changed, remove that file and pair again")
    text = ("#   ZeroMQ CURVE Public Certificate of the spine broker, pinned by 'spine pair'\n\n"
            "metadata\n    name = \"broker\"\ncurve\n"
            f"    public-key = \"{broker_key.decode('ascii')}\"\n")
    atomic_write(path, text.encode("ascii"), 0o644)
    return path


def _join(args: argparse.Namespace) -> int:
    invite = Invite.parse(args.invite)
    name = keyfiles.check_name(args.name)
    if name == BROKER_KEY_NAME:
        raise PairingError("the name 'broker' is reserved for the broker's own key")
    kind = whitelist.parse_kind(args.kind)
    keys_dir = paths.keys_dir(args.keys_dir)
    keys = keyfiles.load_or_create(keys_dir, name)
    endpoint = pairing_endpoint(args.runtime_dir, args.tcp)
    try:
        result = pair(invite, keys, name, kind, endpoint,
                      getattr(args, "timeout", None) or DEFAULT_TIMEOUT_S)
    except PairingError as exc:
        print(f"pairing FAILED for {name}: {exc}")
        return 1
    if not result.ok:
        print(f"pairing REFUSED for {name}: {result.text}")
        return 1
    broker_file = store_broker_key(keys_dir, invite.broker_key)
    print(f"paired {name} ({pb.ComponentID.Name(kind)}): {result.text}")
    print(f"  own key     {keyfiles.public_path(keys_dir, name)}")
    print(f"  broker key  {broker_file} (pinned from the invite)")
    return 0


def _kinds(admit: str | None) -> list[str]:
    """``--admit KIND[,KIND...]`` as canonical kind names (empty: the broker's default)."""
    if not admit:
        return []
    return [pb.ComponentID.Name(whitelist.parse_kind(k.strip()))
            for k in admit.split(",") if k.strip()]


def _open(args: argparse.Namespace) -> int:
    from spine.client.component import Component
    from spine.errors import RoutingError

    endpoints = None
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not port.isdigit():
            raise PairingError(f"--tcp expects HOST:PORT, got {args.tcp!r}")
        endpoints = Endpoints.tcp(host.strip("[]"), int(port))
    comp = Component(args.name or "cli", keys_dir=args.keys_dir, runtime_dir=args.runtime_dir,
                     endpoints=endpoints, heartbeat=False)
    try:
        comp.connect(timeout=getattr(args, "timeout", None) or 5.0)
        answer = comp.request_broker("pair-open", timeout=5.0,
                                     args=_kinds(getattr(args, "admit", None)))
    except RoutingError as exc:
        print(f"the broker refused to open a pairing window for {comp.name}: {exc} (only a "
              "whitelisted CLI_CONTROLLER identity may open one)")
        return 1
    finally:
        comp.close()
    print(answer.spike.text_data)
    return 0


def run_pair(args: argparse.Namespace) -> int:
    """``spine pair``: ``args.action`` is "join" (with ``invite``, ``name``, ``kind``) or "open"."""
    action = getattr(args, "action", None) or ("open" if args.invite == "open" else "join")
    try:
        return _open(args) if action == "open" else _join(args)
    except SpineError as exc:
        if action == "open":
            raise
        print(f"pairing FAILED: {exc}")
        return 1
