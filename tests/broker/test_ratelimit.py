"""The log limiter fed a fake clock: bursts, refills, the shared bucket, the key bound."""

from __future__ import annotations

import logging

import pytest

from spine.errors import ConfigError
from spine.ratelimit import LogLimiter, log_limited


def allowed(limiter: LogLimiter, key, now: float, times: int) -> list[int | None]:
    return [limiter.allow(key, now) for _ in range(times)]


def test_a_key_logs_its_burst_then_is_held_back():
    limiter = LogLimiter(burst=3, every_s=10.0)
    assert allowed(limiter, "a", 0.0, 5) == [0, 0, 0, None, None]
    assert limiter.suppressed_total == 2


def test_a_held_back_key_logs_again_after_every_s_and_says_how_many_it_held():
    limiter = LogLimiter(burst=2, every_s=10.0)
    allowed(limiter, "a", 0.0, 7)          # 2 logged, 5 held back
    assert limiter.allow("a", 9.9) is None  # not yet a whole token
    assert limiter.allow("a", 10.0) == 6    # the 5, and the one at 9.9
    assert limiter.allow("a", 10.0) is None
    assert limiter.allow("a", 20.0) == 1


def test_a_quiet_key_gets_its_whole_burst_back_but_no_more():
    limiter = LogLimiter(burst=3, every_s=1.0)
    allowed(limiter, "a", 0.0, 3)
    assert allowed(limiter, "a", 1000.0, 4) == [0, 0, 0, None]


def test_keys_are_limited_separately():
    limiter = LogLimiter(burst=1, every_s=10.0)
    assert limiter.allow(("peer-1", "unknown key"), 0.0) == 0
    assert limiter.allow(("peer-1", "unknown key"), 0.0) is None
    assert limiter.allow(("peer-2", "unknown key"), 0.0) == 0
    assert limiter.allow(("peer-1", "revoked key"), 0.0) == 0


def test_the_shared_bucket_bounds_a_peer_that_changes_key_every_time():
    limiter = LogLimiter(burst=10, every_s=10.0, total_burst=5, total_every_s=1.0)
    logged = [limiter.allow(f"key-{i}", 0.0) for i in range(100)]
    assert sum(x is not None for x in logged) == 5
    assert limiter.allow("key-100", 0.5) is None
    assert limiter.allow("key-101", 1.0) == 0  # one shared token a second


def test_a_key_held_back_by_the_shared_bucket_keeps_its_own_tokens():
    limiter = LogLimiter(burst=2, every_s=100.0, total_burst=1, total_every_s=1.0)
    assert limiter.allow("noisy", 0.0) == 0
    assert limiter.allow("quiet", 0.0) is None   # shared bucket empty
    assert limiter.allow("quiet", 1.0) == 1      # its own token was not spent meanwhile
    assert limiter.allow("quiet", 2.0) == 0      # and it still had a second one


def test_the_limiter_remembers_at_most_max_keys():
    limiter = LogLimiter(burst=1, every_s=10.0, max_keys=3, total_burst=10_000)
    for i in range(1000):
        limiter.allow(i, float(i))
    assert limiter.tracked_keys == 3


def test_the_least_recently_seen_key_is_forgotten_first():
    limiter = LogLimiter(burst=1, every_s=100.0, max_keys=2, total_burst=100)
    limiter.allow("a", 0.0)
    limiter.allow("b", 0.0)
    assert limiter.allow("a", 0.0) is None  # "a" is now the most recent
    limiter.allow("c", 0.0)                 # forgets "b"
    assert limiter.allow("a", 0.0) is None  # still remembered: still held back
    assert limiter.allow("b", 0.0) == 0     # forgotten: a fresh burst


@pytest.mark.parametrize("kwargs", [{"burst": 0}, {"every_s": 0.0}, {"max_keys": 0},
                                    {"total_burst": 0}, {"total_every_s": -1.0},
                                    {"every_s": float("nan")}])
def test_nonsense_limits_are_refused(kwargs):
    with pytest.raises(ConfigError):
        LogLimiter(**kwargs)


def test_log_limited_writes_the_burst_then_a_line_counting_what_it_held(caplog):
    logger = logging.getLogger("spine.test.ratelimit")
    limiter = LogLimiter(burst=2, every_s=5.0)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for i in range(10):
            log_limited(logger, logging.WARNING, limiter, "k", 0.0, "refused %d", i)
        assert log_limited(logger, logging.WARNING, limiter, "k", 5.0, "refused %d", 10)
    assert [r.getMessage() for r in caplog.records] == [
        "refused 0", "refused 1", "refused 10 (8 similar lines suppressed)"]
