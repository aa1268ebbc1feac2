"""Torture: a full-speed writer process and several reader processes; no reader ever sees a torn frame."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from shmtest_support import cleanup, torture_reader, torture_writer, unique_name

SLOT_SIZE = 4096
SLOT_COUNT = 3  # few slots: the writer laps readers often, so the seqlock is exercised hard
READERS = [("latest", 350_000), ("view", 350_000), ("next", 350_000)]


@pytest.fixture
def torture_segment():
    name = unique_name("torture")
    ctx = mp.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    writer = ctx.Process(target=torture_writer, args=(name, SLOT_SIZE, SLOT_COUNT, ready, stop), daemon=True)
    writer.start()
    procs = [writer]
    try:
        assert ready.wait(10), "torture writer did not start"
        yield name, ctx, procs
    finally:
        stop.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
        cleanup(name)


@pytest.mark.timeout(120)
def test_no_torn_frame_in_a_million_reads_by_concurrent_readers(torture_segment):
    name, ctx, procs = torture_segment
    results = ctx.Queue()
    for mode, reads in READERS:
        p = ctx.Process(target=torture_reader, args=(name, SLOT_SIZE, reads, mode, results), daemon=True)
        p.start()
        procs.append(p)
    reports = [results.get(timeout=100) for _ in READERS]
    good = sum(r["good"] for r in reports)
    torn = sum(r["torn"] for r in reports)
    print("torture:", reports)
    assert good >= 1_000_000
    assert torn == 0
