"""Socket settings every spine socket gets (SPEC §1), for the broker and for components."""

from __future__ import annotations

import zmq

from spine.security.keys import KeyPair

TCP_KEEPALIVE_IDLE_S = 10
TCP_KEEPALIVE_INTVL_S = 5
TCP_KEEPALIVE_CNT = 3


def tune(sock: zmq.Socket, *, hwm: int = 10_000, max_bytes: int | None = None) -> zmq.Socket:
    """LINGER 0, SNDHWM = RCVHWM = ``hwm``, TCP keepalive on, MAXMSGSIZE when given."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
    sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, TCP_KEEPALIVE_IDLE_S)
    sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, TCP_KEEPALIVE_INTVL_S)
    sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, TCP_KEEPALIVE_CNT)
    if max_bytes is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, max_bytes)
    return sock


def curve_server(sock: zmq.Socket, keys: KeyPair, domain: str) -> zmq.Socket:
    """Make ``sock`` a CURVE server whose peers are checked by ZAP in ``domain``."""
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode())
    return sock


def curve_client(sock: zmq.Socket, keys: KeyPair, server_public: bytes) -> zmq.Socket:
    """Make ``sock`` a CURVE client that only talks to the server holding ``server_public``."""
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_public)
    return sock
