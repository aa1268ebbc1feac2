"""Reliable send: the pure retry policy, then real ZeroMQ sockets whose peer stopped reading."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import zmq

from spine.errors import ConfigError, SendFailed
from spine.protocol import neural_spike_pb2 as pb
from spine.resilience.dedup import DedupWindow
from spine.resilience.reliable_send import ReliableSender
from spine.resilience.retry import RetryPolicy


def test_policy_retries_after_10_20_30_ms_then_gives_up() -> None:
    policy = RetryPolicy()
    assert policy.max_retries == 3
    assert policy.next_attempt_at(0, 5.0) == pytest.approx(5.010)
    assert policy.next_attempt_at(1, 5.010) == pytest.approx(5.030)
    assert policy.next_attempt_at(2, 5.030) == pytest.approx(5.060)
    assert policy.next_attempt_at(3, 5.060) is None


def test_policy_rejects_negative_or_infinite_delays() -> None:
    for delays in ((-0.01,), (float("inf"),), (float("nan"),)):
        with pytest.raises(ConfigError):
            RetryPolicy(delays)


class FlakySocket:
    """Raises zmq.Again for the first ``full_for`` sends, then accepts."""

    def __init__(self, full_for: int, error: Exception | None = None) -> None:
        self.full_for = full_for
        self.error = error
        self.sent: list[list[Any]] = []
        self.attempts = 0

    def send_multipart(self, msg_parts: Sequence[Any], flags: int = 0) -> None:
        assert flags & zmq.NOBLOCK
        self.attempts += 1
        if self.error is not None:
            raise self.error
        if self.attempts <= self.full_for:
            raise zmq.Again()
        self.sent.append(list(msg_parts))


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_message_that_finds_room_on_a_retry_goes_and_the_retries_are_counted() -> None:
    fake = FakeTime()
    socket = FlakySocket(full_for=2)
    sender = ReliableSender(socket, clock=fake.clock, sleep=fake.sleep)
    assert sender.send([b"to", b"payload"]) is True
    assert socket.sent == [[b"to", b"payload"]]
    assert fake.slept == pytest.approx([0.010, 0.020])
    assert (sender.counters.sent, sender.counters.retries, sender.counters.give_ups) == (1, 2, 0)


def test_a_single_frame_is_sent_as_a_one_part_message() -> None:
    socket = FlakySocket(full_for=0)
    assert ReliableSender(socket).send(b"one")
    assert socket.sent == [[b"one"]]


def test_errors_other_than_eagain_are_raised_at_once() -> None:
    socket = FlakySocket(full_for=0, error=zmq.ZMQError(zmq.EHOSTUNREACH))
    sender = ReliableSender(socket)
    with pytest.raises(zmq.ZMQError) as raised:
        sender.send([b"x"])
    assert raised.value.errno == zmq.EHOSTUNREACH
    assert socket.attempts == 1 and sender.counters.retries == 0


class RecordingSocket:
    """Passes sends to a real socket and notes when each attempt was made."""

    def __init__(self, socket: zmq.Socket) -> None:
        self.socket = socket
        self.attempts: list[float] = []

    def send_multipart(self, msg_parts: Sequence[Any], flags: int = 0) -> Any:
        self.attempts.append(time.monotonic())
        return self.socket.send_multipart(msg_parts, flags=flags)


@pytest.fixture(params=["inproc", "ipc"])
def stalled_dealer(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[zmq.Socket]:
    """A DEALER whose ROUTER peer never reads, with HWMs of 1 and the queue already full.

    Over ipc the kernel buffers fill too; the queue counts as full once no room has
    appeared for 200 ms after an EAGAIN.
    """
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    dealer = ctx.socket(zmq.DEALER)
    try:
        for sock in (router, dealer):
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, 1)
            sock.setsockopt(zmq.RCVHWM, 1)
            sock.setsockopt(zmq.SNDBUF, 4096)
            sock.setsockopt(zmq.RCVBUF, 4096)
        if request.param == "inproc":
            endpoint = f"inproc://stalled-{uuid.uuid4()}"
        else:
            endpoint = f"ipc://{tmp_path}/stalled.sock"
        router.bind(endpoint)
        dealer.connect(endpoint)
        filler = b"f" * 65536
        deadline = time.monotonic() + 10
        while True:
            assert time.monotonic() < deadline, "the queue never filled"
            try:
                dealer.send(filler, zmq.NOBLOCK)
            except zmq.Again:
                if not dealer.poll(200, zmq.POLLOUT):
                    break
        yield dealer
    finally:
        dealer.close(linger=0)
        router.close(linger=0)
        ctx.term()


def test_send_to_a_peer_that_stopped_reading_retries_at_10_20_30_ms_then_reports_failure(
        stalled_dealer: zmq.Socket) -> None:
    recorder = RecordingSocket(stalled_dealer)
    sender = ReliableSender(recorder)
    assert sender.send([b"spike"]) is False
    times = recorder.attempts
    assert len(times) == 4, "one send and three retry attempts"
    assert times == sorted(times)
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    for gap, stated in zip(gaps, (0.010, 0.020, 0.030)):
        assert gap >= stated
    assert (sender.counters.sent, sender.counters.retries, sender.counters.give_ups) == (0, 3, 1)
    with pytest.raises(SendFailed, match="gave up after 3 retries"):
        sender.send_or_raise([b"spike"])
    assert sender.counters.give_ups == 2


def test_send_with_room_goes_at_once_without_retries() -> None:
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    dealer = ctx.socket(zmq.DEALER)
    try:
        endpoint = f"inproc://room-{uuid.uuid4()}"
        router.bind(endpoint)
        dealer.connect(endpoint)
        sender = ReliableSender(dealer)
        assert sender.send([b"hello"]) is True
        assert router.poll(5000) and router.recv_multipart()[1:] == [b"hello"]
        assert (sender.counters.sent, sender.counters.retries) == (1, 0)
    finally:
        dealer.close(linger=0)
        router.close(linger=0)
        ctx.term()


def test_receiver_discards_a_retried_request_with_the_same_request_id() -> None:
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    dealer = ctx.socket(zmq.DEALER)
    try:
        endpoint = f"inproc://dedup-{uuid.uuid4()}"
        router.bind(endpoint)
        dealer.connect(endpoint)
        sender = ReliableSender(dealer)
        request = pb.NeuralSpike(request_id=str(uuid.uuid4()), timestamp=1, text_data="embed this")
        other = pb.NeuralSpike(request_id=str(uuid.uuid4()), timestamp=2, text_data="and this")
        for spike in (request, request, other, request):  # the request is resent twice after "timeouts"
            assert sender.send([spike.SerializeToString()])

        window = DedupWindow()
        handled: list[str] = []
        deadline = time.monotonic() + 10
        received = 0
        while received < 4 and time.monotonic() < deadline:
            if not router.poll(100):
                continue
            _, payload = router.recv_multipart()
            received += 1
            spike = pb.NeuralSpike.FromString(payload)
            if not window.is_duplicate(spike.request_id, time.monotonic()):
                handled.append(spike.text_data)
        assert received == 4
        assert handled == ["embed this", "and this"]
        assert window.duplicates == 2
    finally:
        dealer.close(linger=0)
        router.close(linger=0)
        ctx.term()
