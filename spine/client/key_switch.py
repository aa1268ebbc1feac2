"""A running component switches to its rotated key without losing a message.

After ``spine keys rotate NAME`` the key directory holds NAME's next keypair, admitted by
the broker beside the current one (:mod:`spine.security.rotation`). The component notices
with :func:`rotation_pending` and calls :func:`switch_keys`, which makes before it breaks
and keeps serving with ``handler`` (as :meth:`Component.serve` does) all along:

1. the next keypair is installed as NAME's permanent key (a restart from now on loads it);
2. a probe connection proves the broker admits the new key. Its handshake is the moment the
   broker sees the new key and drops the old one from the whitelist; the old connections
   stay up and keep serving meanwhile;
3. a ping on each old connection: once answered, everything sent through it has been routed
   (a connection is first in, first out); from here on answers wait for the new connections;
4. a new :class:`Component` connects under the new key; its hello takes NAME's routing id
   over at the broker (ROUTER_HANDOVER);
5. what reached the old connections before the handover is drained and answered through
   the new ones, then the old connections are closed.

If the new key is not admitted within the timeout, the old key is put back in place and
the old component keeps working.
"""

from __future__ import annotations

import time
from typing import Callable

import zmq
from zmq.utils.monitor import recv_monitor_message

from spine.client.component import Component, Message, Plane
from spine.errors import BrokerUnavailable, KeyFileError, SpineError
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.framing import Kind
from spine.security import rotation
from spine.security.keys import KeyPair
from spine.sockets import curve_client, tune

Handler = Callable[[Message], pb.NeuralSpike | None]
DRAIN_QUIET_S = 0.05  # the old connections are closed after this long without a message
PROBE_RETRY_S = 0.1  # a refused probe is made anew this often
PROBE_POLL_S = 0.005  # how long the old component waits for a message between probe checks


def rotation_pending(component: Component) -> bool:
    """True when a next key for ``component`` is staged (``spine keys rotate`` ran)."""
    return rotation.pending(component.keys_dir, component.name)


def switch_keys(old: Component, handler: Handler, *, timeout: float = 10.0,
                heartbeat: bool = True, quiet_s: float = DRAIN_QUIET_S) -> Component:
    """Move ``old`` to its staged next key, make-before-break; return the new component.

    ``handler`` answers what arrives meanwhile, as in :meth:`Component.serve`. ``old`` is
    closed on success. Raises KeyFileError when no next key is staged, and BrokerUnavailable
    (or the error of the failed step) when the switch could not be made: ``old`` then keeps
    working under its old key, which is back in place. Subscriptions are not carried over:
    subscribe the new component to the same topics.
    """
    if not rotation.pending(old.keys_dir, old.name):
        raise KeyFileError(f"no next key staged for {old.name!r} in "
                           f"{rotation.staging_dir(old.keys_dir)}; run 'spine keys rotate "
                           f"{old.name}' first")
    deadline = time.monotonic() + timeout
    new_keys = rotation.install(old.keys_dir, old.name)
    new: Component | None = None
    try:
        _wait_until_admitted(old, new_keys, handler, deadline)
        for plane in Plane:
            old.request_broker("ping", plane=plane, timeout=max(0.1, deadline - time.monotonic()))
        new = Component(old.name, keys_dir=old.keys_dir, endpoints=old.endpoints,
                        broker_key=old.broker_key, heartbeat=heartbeat)
        new.connect(timeout=max(0.1, deadline - time.monotonic()))
    except SpineError:
        if new is not None:
            new.close()
        rotation.restore(old.keys_dir, old.name)
        raise
    quiet_until = time.monotonic() + quiet_s
    while (now := time.monotonic()) < quiet_until:
        msg = old.recv(timeout=quiet_until - now)
        if msg is not None:
            _handle(new, msg, handler)
            quiet_until = time.monotonic() + quiet_s
    old.close()
    rotation.forget_previous(old.keys_dir, old.name)
    return new


def _handle(comp: Component, msg: Message, handler: Handler) -> None:
    answer = handler(msg)
    if answer is not None and msg.kind is Kind.REQUEST:
        comp.reply(msg, answer)


def _wait_until_admitted(old: Component, keys: KeyPair, handler: Handler,
                         deadline: float) -> None:
    """Probe the broker with ``keys`` until a handshake succeeds, serving ``old`` meanwhile.

    The probe has no routing id of its own, so it takes nothing over; a refused handshake
    is not retried by libzmq, so each refusal makes a new probe (the broker re-reads its
    whitelist every fraction of a second).
    """
    ctx = zmq.Context()
    probe: tuple[zmq.Socket, zmq.Socket] | None = None
    retry_at = 0.0
    try:
        while (now := time.monotonic()) < deadline:
            if probe is None and now >= retry_at:
                probe = _probe(ctx, keys, old)
            if probe is not None and probe[1].poll(0):
                if recv_monitor_message(probe[1])["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    return
                _close_probe(probe)
                probe, retry_at = None, now + PROBE_RETRY_S
            msg = old.recv(timeout=PROBE_POLL_S)
            if msg is not None:
                _handle(old, msg, handler)
        raise BrokerUnavailable(f"the broker did not admit the new key of {old.name!r} "
                                f"({keys.public.decode()}) in time: is its 'next' line in the "
                                "whitelist the broker reads?")
    finally:
        if probe is not None:
            _close_probe(probe)
        ctx.term()


def _probe(ctx: zmq.Context, keys: KeyPair, old: Component) -> tuple[zmq.Socket, zmq.Socket]:
    """A DEALER under ``keys`` towards the broker's control plane, and its handshake monitor."""
    sock = tune(ctx.socket(zmq.DEALER), hwm=1)
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED
                                      | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                      | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                      | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    curve_client(sock, keys, old.broker_key)
    sock.connect(old.endpoints.control)
    return sock, monitor


def _close_probe(probe: tuple[zmq.Socket, zmq.Socket]) -> None:
    sock, monitor = probe
    sock.disable_monitor()
    monitor.close(linger=0)
    sock.close(linger=0)
