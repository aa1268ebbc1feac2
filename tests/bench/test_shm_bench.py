"""`spine bench shm` runs end to end on a small workload and reports what its docstring promises."""

from __future__ import annotations

import json
import math

from spine.bench.shm import HANDOFF_KEYS, RATIO_DEFINITIONS, SIZES, main


def test_small_run_reports_every_figure_with_zero_torn_frames(tmp_path, capsys):
    out = tmp_path / "shm.json"
    assert main(["--frames", "30", "--sustain", "0.2", "--nodes", "100000", "--periodic", "0.1",
                 "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["torn"] == 0
    assert set(results["ratios"]) == set(RATIO_DEFINITIONS)
    assert all(math.isfinite(v) and v > 0 for v in results["ratios"].values())
    for key in (*HANDOFF_KEYS.values(), "memcpy_us", "memcpy_back_to_back_us", "zmq_ipc_us"):
        assert set(results[key]) == set(SIZES)
        assert all(results[key][size]["n"] > 0 for size in SIZES)
    assert results["sustained_4.8mb_1khz"]["frames_written"] == 200
    printed = capsys.readouterr().out
    assert "memcpy_1mb" in printed and "torn 0" in printed
