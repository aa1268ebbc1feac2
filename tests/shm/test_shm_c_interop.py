"""The header alone is enough for a C or C++ program to write frames Python reads, and to read Python's."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from shmtest_support import NATIVE, cleanup, compile_tool, pattern_frame, unique_name
from spine.shm import WaveformReader, WaveformWriter

SLOTS, SIZE, FRAMES = 4, 65536, 50


@pytest.fixture(scope="module", params=["c11", "c++20"])
def tool(request, tmp_path_factory):
    return compile_tool(tmp_path_factory.mktemp(request.param), cplusplus=request.param == "c++20")


@pytest.fixture
def name():
    n = unique_name("interop")
    yield n
    cleanup(n)


def test_python_reads_what_a_c_writer_wrote(tool, name):
    proc = subprocess.Popen([str(tool), "write", name, str(SLOTS), str(SIZE), str(FRAMES)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        with WaveformReader(name) as reader:
            assert (reader.slot_count, reader.slot_size) == (SLOTS, SIZE)
            assert reader.writer_alive()
            for frame_index in range(FRAMES - SLOTS, FRAMES):
                out = np.empty(SIZE // 8, dtype=np.uint64)
                frame = reader.read_frame(frame_index, out)
                assert frame.timestamp_ns == frame_index
                np.testing.assert_array_equal(out, pattern_frame(frame_index, SIZE))
        proc.stdin.write("\n")
        proc.stdin.close()
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_c_reader_follows_what_python_writes(tool, name):
    with WaveformWriter(name, SIZE, SLOTS) as writer:
        reader = subprocess.Popen([str(tool), "read", name, str(FRAMES)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            for frame_index in range(FRAMES):
                writer.write(pattern_frame(frame_index, SIZE))
            out, err = reader.communicate(timeout=20)
        finally:
            reader.kill()
            reader.wait()
    assert reader.returncode == 0, err
    status, got, skipped = out.split()
    assert status == "ok" and int(got) + int(skipped) == FRAMES and int(got) >= 1


@pytest.mark.parametrize("compiler", [["gcc", "-std=c11"], ["g++", "-std=c++20", "-x", "c++"]], ids=["c11", "c++20"])
def test_header_compiles_on_its_own_under_strict_standards(compiler, tmp_path):
    source = tmp_path / "only_the_header.c"
    source.write_text('#include "spine_shm.h"\nint main(void) { return 0; }\n')
    subprocess.run([*compiler, "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(NATIVE), str(source),
                    "-o", str(tmp_path / "only_the_header")], check=True, capture_output=True, text=True)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0),
                    reason="the cross-core copy test pins threads to CPUs 0 and 1")
@pytest.mark.parametrize("opt", ["-O2", "-O3"])
def test_cross_core_copy_tool_builds_from_the_header_and_runs(opt, tmp_path):
    exe = tmp_path / "copy_cross_core"
    subprocess.run(["gcc", "-std=c11", opt, "-pthread", "-Wall", "-Wextra", "-Werror", "-I", str(NATIVE),
                    str(NATIVE / "bench" / "copy_cross_core.c"), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    run = subprocess.run([str(exe), "20"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == ["relaxed", "plain"]
    assert all(float(v) > 0 for row in rows for v in row[-2:])
    bad = subprocess.run([str(exe), "0"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "rounds must be" in bad.stderr
