"""The harness's figure: latency distributions, percentile curves and a timeline (matplotlib, Agg)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from spine.bench.harness.config import DEADLINE_NS, SHM_BUDGET_NS
from spine.bench.harness.report import LABELS, LoopResult
from spine.bench.stats import distribution, percentile_curve
from spine.fsutil import atomic_write

COLOURS = {"tick_jitter": "tab:blue", "tick_total": "tab:cyan", "control_rtt": "tab:red",
           "control_service": "tab:pink", "shm_handoff": "tab:green", "descriptor": "tab:olive",
           "raw_echo_loaded_rtt": "tab:brown", "raw_echo_rtt": "tab:purple", "timer_jitter": "tab:gray"}
TIMELINE = ("control_rtt", "raw_echo_loaded_rtt", "tick_jitter", "shm_handoff")


def write_plot(result: LoopResult, path: str | os.PathLike) -> Path:
    """Draw the run into a PNG at ``path`` (written atomically) and return the path."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    measures = {name: m for name, m in result.measures.items() if m.count}
    fig, (dist, curves, timeline) = plt.subplots(3, 1, figsize=(11, 13))
    c = result.config
    fig.suptitle(f"spine bench loop — {c.duration_s:g} s, {c.tick_hz} Hz ticks, {c.control_hz} Hz control, "
                 f"{c.frame_bytes} B frames ({c.read_mode}), {c.transport}, CURVE on"
                 + (", SCHED_FIFO" if c.rt else "") + (", pinned" if c.pin else "")
                 + (", PM QoS 0 µs" if c.pm_qos else "") + "\n"
                 f"{result.machine.get('cpu')} ×{result.machine.get('cpus')}, load "
                 f"{result.machine.get('loadavg_before')} → {result.machine.get('loadavg_after')}", fontsize=10)

    top = max(m.histogram.get_max_value() for m in measures.values()) / 1e3 if measures else 1e3
    edges = np.logspace(-1, np.log10(max(top * 1.1, 2e3)), 120)
    for name, m in measures.items():
        counts = distribution(m, edges)
        dist.step(edges[:-1], np.where(counts > 0, counts, np.nan), where="post",
                  color=COLOURS.get(name), label=LABELS.get(name, name))
    dist.set(xscale="log", yscale="log", xlabel="latency, µs", ylabel="samples per bin",
             title="latency distributions (coordinated-omission samples included)")

    for name, m in measures.items():
        percentiles, values = percentile_curve(m)
        curves.plot(1.0 / (1.0 - percentiles / 100.0), values, color=COLOURS.get(name),
                    label=LABELS.get(name, name))
    ticks = [1, 2, 10, 100, 1000, 10000, 100000]
    curves.set_xscale("log")
    curves.set_xticks(ticks, ["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%"])
    curves.set(yscale="log", xlabel="percentile", ylabel="latency, µs", title="percentile curves")

    for name in TIMELINE:
        m = measures.get(name)
        if m is not None:
            timeline.scatter(m.sample_times_ns / 1e9, np.maximum(m.samples_ns, 100) / 1e3, s=2,
                             color=COLOURS.get(name), label=LABELS.get(name, name), alpha=0.5)
    timeline.set(yscale="log", xlabel="time into the system phase, s", ylabel="latency, µs",
                 title="timeline (measured samples)")

    for ax in (dist, curves, timeline):
        vertical = ax is dist
        line = ax.axvline if vertical else ax.axhline
        line(DEADLINE_NS / 1e3, color="black", linestyle="--", linewidth=0.8, label="1 ms tick budget")
        line(SHM_BUDGET_NS / 1e3, color="green", linestyle=":", linewidth=0.8, label="113 µs shm budget")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    png = io.BytesIO()
    try:
        fig.savefig(png, format="png", dpi=100)
    finally:
        plt.close(fig)
    path = Path(path)
    atomic_write(path, png.getvalue())
    return path
