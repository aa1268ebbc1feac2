"""The component's heartbeat thread: a StatusReport every second, and the broker's pulse.

The thread owns its own DEALER on the control endpoint (routing id ``NAME/hb``, the same
CURVE key), so it never touches the component's sockets and never blocks its loop. The
broker answers each report; silence for ``broker_dead_after`` seconds marks the broker
dead, and a new broker instance (restart) makes the component say hello again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING

import psutil
import zmq

from spine.client.liveliness import Beat
from spine.protocol import envelope
from spine.protocol import neural_spike_pb2 as pb
from spine.protocol.framing import BROKER, HEADER_SIZE, Kind, MsgClass, pack_header
from spine.sockets import curve_client, tune

if TYPE_CHECKING:
    from spine.client.component import Component

log = logging.getLogger("spine.client")


class HeartbeatThread:
    """Sends the component's StatusReport every ``interval`` s and watches the broker's answers."""

    def __init__(self, component: "Component", interval: float = 1.0,
                 broker_dead_after: float = 3.0, broker_instance: str | None = None) -> None:
        self.component = component
        self.interval = interval
        self.broker_dead_after = broker_dead_after
        self.state = pb.StatusReport.READY
        self.metrics: dict[str, float] = {}
        self.broker_alive = True
        # the instance the component said hello to: an answer from another one is a restart
        self.broker_instance: str | None = broker_instance
        self._rejoin = threading.Event()
        self._last_beat = Beat.READY
        self._started = time.monotonic()
        self._process = psutil.Process()
        self._process.cpu_percent(None)
        self._wake_addr = f"inproc://spine-hb-{uuid.uuid4().hex}"
        self._wake = component._ctx.socket(zmq.PAIR)
        self._wake.bind(self._wake_addr)
        self._thread = threading.Thread(target=self._run, name=f"spine-heartbeat-{component.name}",
                                        daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it; its socket is closed by then."""
        if self._thread.is_alive():
            self._wake.send(b"stop")
            self._thread.join()
        self._wake.close(linger=0)

    def rejoin_needed(self) -> bool:
        """True once after the broker restarted (the component then says hello again)."""
        if self._rejoin.is_set():
            self._rejoin.clear()
            return True
        return False

    def _judge(self, now: float) -> Beat:
        """What this beat says about the component's loop; logged when that changes."""
        beat = self.component.loop_watch.beat(now)
        if beat is not self._last_beat:
            stalled = self.component.loop_watch.stalled(now)
            if beat is Beat.READY:
                log.info("%s: its loop runs again; heartbeats say READY", self.component.name)
            elif beat is Beat.DEGRADED:
                log.warning("%s: its loop has not run for %.1f s; heartbeats say DEGRADED",
                            self.component.name, stalled)
            else:
                log.error("%s: its loop has not run for %.1f s; heartbeats stop, so the broker "
                          "declares it DEAD", self.component.name, stalled)
            self._last_beat = beat
        return beat

    def _report(self, state: int) -> pb.NeuralSpike:
        comp = self.component
        try:
            cpu = self._process.cpu_percent(None)
            rss = self._process.memory_info().rss
        except psutil.Error:
            cpu, rss = 0.0, 0
        metrics = dict(self.metrics)
        metrics.update(sent=comp.counters.sent, received=comp.counters.received,
                       dropped=sum(comp.counters.dropped.values()),
                       loop_stalled_s=round(comp.loop_watch.stalled(time.monotonic()), 3))
        return envelope.new_spike(status=pb.StatusReport(
            state=state, pid=os.getpid(), cpu_percent=cpu, memory_rss_bytes=rss,
            uptime_s=time.monotonic() - self._started, metrics=metrics, instance=comp.name))

    def _run(self) -> None:
        comp = self.component
        wake = comp._ctx.socket(zmq.PAIR)
        wake.connect(self._wake_addr)
        sock = tune(comp._ctx.socket(zmq.DEALER), hwm=100)
        sock.setsockopt(zmq.ROUTING_ID, comp.name.encode() + b"/hb")
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)  # back off, yet hear a new broker within 1 s
        curve_client(sock, comp.keys, comp.broker_key)
        sock.connect(comp.endpoints.control)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(wake, zmq.POLLIN)
        next_beat = time.monotonic()
        last_answer = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if now >= next_beat:
                    beat = self._judge(now)
                    if beat is not Beat.SILENT:
                        state = pb.StatusReport.DEGRADED if beat is Beat.DEGRADED else self.state
                        spike = self._report(state)
                        header = pack_header(Kind.HEARTBEAT, BROKER,
                                             envelope.request_id_bytes(spike),
                                             msg_class=MsgClass.CONTROL, sender=comp.name)
                        try:
                            sock.send_multipart([header, spike.SerializeToString()], zmq.NOBLOCK)
                        except zmq.Again:
                            pass  # the broker is not draining us: its silence will tell
                    next_beat = now + self.interval
                if self.broker_alive and now - last_answer >= self.broker_dead_after:
                    self.broker_alive = False
                    log.warning("%s: no heartbeat from the broker for %.1f s; reconnecting",
                                comp.name, now - last_answer)
                timeout = max(0.0, min(next_beat, last_answer + self.broker_dead_after) - now) \
                    if self.broker_alive else max(0.0, next_beat - now)
                events = dict(poller.poll(int(timeout * 1000) + 1))
                if wake in events:
                    return
                if sock in events:
                    while True:
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        if len(frames) != 2 or len(frames[0]) != HEADER_SIZE:
                            continue
                        last_answer = time.monotonic()
                        self._answered(frames[1])
        finally:
            sock.close(linger=0)
            wake.close(linger=0)

    def _answered(self, payload: bytes) -> None:
        spike = pb.NeuralSpike()
        try:
            spike.ParseFromString(payload)
        except Exception:
            return
        instance = spike.text_data.partition(" ")[2]
        if not self.broker_alive:
            log.info("%s: the broker answers again", self.component.name)
            self.broker_alive = True
            self._rejoin.set()
        if self.broker_instance is not None and instance != self.broker_instance:
            log.info("%s: the broker restarted (instance %s)", self.component.name, instance)
            self._rejoin.set()
        self.broker_instance = instance
