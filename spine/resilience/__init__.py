"""Resilience: circuit breaker (RES-02) and its store, reliable send, SEC-01 framing, temporal coherence."""

from spine.resilience.breaker import (Admission, Breaker, BreakerConfig, BreakerSnapshot, BreakerState,
                                      BreakerTransition)
from spine.resilience.breaker_store import BreakerStore
from spine.resilience.clock import Clock, SystemClock
from spine.resilience.coherence import (CoherenceChecker, CoherenceLimits, DropReason, MessageClass,
                                        spike_created_ns)
from spine.resilience.dedup import DedupWindow
from spine.resilience.guard import CircuitBreaker
from spine.resilience.paths import default_state_dir
from spine.resilience.reliable_send import ReliableSender, SendCounters
from spine.resilience.retry import RetryPolicy
from spine.resilience.secure_channel import ChannelFrame, FrameDecoder, FrameEncoder, encode_frame

__all__ = [
    "Admission", "Breaker", "BreakerConfig", "BreakerSnapshot", "BreakerState", "BreakerStore",
    "CircuitBreaker", "Clock", "CoherenceChecker", "CoherenceLimits", "DedupWindow", "DropReason",
    "ChannelFrame", "FrameDecoder", "FrameEncoder", "MessageClass", "ReliableSender", "RetryPolicy",
    "SendCounters", "SystemClock", "BreakerTransition", "default_state_dir", "encode_frame", "spike_created_ns",
]
