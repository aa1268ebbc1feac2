"""``spine bench shm``'s command line: run every scenario, derive the ratios, print and write the figures."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack

from spine.bench.realtime import FifoScope, PmQos
from spine.bench.shm.common import SIZES
from spine.bench.shm.descriptor import descriptor_handoff
from spine.bench.shm.handoff import memcpy_latency, shm_handoffs
from spine.bench.shm.periodic import PERIODIC_MODES, PERIODIC_WARMUP, periodic_handoffs
from spine.bench.shm.sparse_encoding import sparse_vs_abs
from spine.bench.shm.sustained import sustained
from spine.bench.shm.zmq_ipc import zmq_ipc_latency
from spine.errors import HarnessError
from spine.shm import FramePredictor
from spine.shm.predict import LEAD_NS, WINDOW_NS

RT_PRIORITY = 80  # --rt: SCHED_FIFO priority of every process of the run

RATIO_DEFINITIONS = {
    "memcpy_1mb": "copying hand-off p50 / np.copyto p50, 1 MB, the copy timed in the hand-off loop after each "
                  "frame (right after an untimed copy), so both meet the same background load (target <= 2.5)",
    "memcpy_1mb_inplace": "in-place hand-off p50 / np.copyto p50, 1 MB",
    "memcpy_1mb_vs_back_to_back": "copying hand-off p50 / np.copyto p50 of 200 back-to-back copies timed "
                                  "before the hand-offs, 1 MB",
    "vs_zmq_ipc_1mb": "zmq ipc one-way p50 / in-place hand-off p50, 1 MB: the frame is read in place "
                      "(zero-copy view, validated after use), as the channel is meant to be used (target >= 10)",
    "vs_zmq_ipc_1mb_copy": "zmq ipc one-way p50 / copying hand-off p50, 1 MB (the reader copies the frame out)",
    "vs_zmq_ipc_1mb_inplace_full_read": "zmq ipc one-way p50 / in-place hand-off p50 reading every word, 1 MB",
    "vs_zmq_ipc_1mb_inplace_incl_write": "zmq ipc one-way p50 / (writer's write() + in-place hand-off) p50, "
                                         "1 MB: both sides' copy-in counted, as zmq's send() counts its own",
    "memcpy_1mb_spinning_reader": "copying hand-off p50 with a reader polling instead of sleeping / np.copyto p50",
    "vs_zmq_ipc_1mb_copy_spinning_reader": "zmq ipc one-way p50 / copying hand-off p50 with a polling reader",
    "vs_zmq_ipc_1mb_predictive": "zmq ipc one-way p50 (closed loop, above) / in-place hand-off p50 of a "
                                 "periodic 1 MB stream at 1 kHz read with the predictive wait (wait_view(predict=True)"
                                 ": futex sleep until shortly before the frame is due, then polling the counter); "
                                 "not the headline vs_zmq_ipc_1mb, which uses a reader sleeping on the futex",
    "memcpy_1mb_predictive": "copying hand-off p50 of the periodic 1 MB stream at 1 kHz with the predictive wait "
                             "(wait_next(out=..., predict=True)) / np.copyto p50",
    "vs_zmq_ipc_1mb_periodic_futex": "zmq ipc one-way p50 / in-place hand-off p50 of the same periodic 1 kHz stream, "
                                     "reader sleeping on the futex (the predictive figure's same-run baseline)",
    "sparse_vs_abs": "sparse.encode / one np.abs pass, 10 M-node complex128 grid at ~1 % density (target <= 3)",
}
HANDOFF_KEYS = {"copy": "handoff_copy_us", "copy_spinning": "handoff_copy_spinning_reader_us",
                "inplace": "handoff_inplace_us", "inplace_full_read": "handoff_inplace_full_read_us"}


def main(argv: list[str] | None = None) -> int:
    """Run the waveform-channel benchmark, print a summary and optionally write --json FILE."""
    import spine.bench.shm  # the package's docstring describes the benchmark

    parser = argparse.ArgumentParser(prog="spine bench shm", description=spine.bench.shm.__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON to FILE")
    parser.add_argument("--frames", type=int, default=400, help="frames per hand-off measurement (default 400)")
    parser.add_argument("--sustain", type=float, default=3.0, help="seconds of 4.8 MB frames at 1 kHz (default 3)")
    parser.add_argument("--nodes", type=int, default=10_000_000, help="sparse grid size (default 10 M)")
    parser.add_argument("--periodic", type=float, default=2.0,
                        help="seconds of the periodic 1 MB stream at 1 kHz, per reader kind (default 2)")
    parser.add_argument("--lead-us", type=int, default=LEAD_NS // 1000,
                        help="predictive wait: start polling this long before the frame is due (default %(default)s)")
    parser.add_argument("--window-us", type=int, default=WINDOW_NS // 1000,
                        help="predictive wait: poll at most this long per frame (default %(default)s)")
    parser.add_argument("--pm-qos", action="store_true",
                        help="hold /dev/cpu_dma_latency at 0 during the run (needs root): no CPU halts when idle")
    parser.add_argument("--rt", action="store_true",
                        help=f"run the writer, the readers and the baselines under SCHED_FIFO priority "
                             f"{RT_PRIORITY} (needs root or CAP_SYS_NICE)")
    args = parser.parse_args(argv)

    try:
        with ExitStack() as held:
            if args.pm_qos:
                held.enter_context(PmQos())
            if args.rt:
                held.enter_context(FifoScope(RT_PRIORITY))  # every process the run forks inherits it
            results = _run(args)
    except HarnessError as exc:
        print(f"spine bench shm: {exc}")
        return 2
    results["pm_qos_cpu_dma_latency_us"] = 0 if args.pm_qos else None
    results["sched_fifo_priority"] = RT_PRIORITY if args.rt else None
    _print_summary(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def _run(args: argparse.Namespace) -> dict:
    results: dict = {key: {} for key in HANDOFF_KEYS.values()}
    results.update(memcpy_us={}, memcpy_back_to_back_us={}, zmq_ipc_us={}, handoff_page_faults={})
    for label, size in SIZES.items():
        results["memcpy_back_to_back_us"][label] = memcpy_latency(size, 200)
        by_mode, faults = shm_handoffs(size, args.frames)
        results["memcpy_us"][label] = by_mode["memcpy"]
        for mode, key in HANDOFF_KEYS.items():
            results[key][label] = by_mode[mode]
        results["handoff_page_faults"][label] = faults
        results["zmq_ipc_us"][label] = zmq_ipc_latency(size, args.frames)
    results["descriptor_via_broker_us"] = {"1mb": descriptor_handoff(SIZES["1mb"], args.frames)}
    results["sustained_4.8mb_1khz"] = sustained(SIZES["4.8mb"], 1000, args.sustain)
    periodic_frames = max(int(args.periodic * 1000), PERIODIC_WARMUP + 20)
    results["periodic_1mb_1khz"] = {
        "futex": periodic_handoffs(SIZES["1mb"], 1000, periodic_frames, None),
        "predictive": periodic_handoffs(SIZES["1mb"], 1000, periodic_frames,
                                        FramePredictor(args.lead_us * 1000, args.window_us * 1000)),
    }
    results["sparse"] = sparse_vs_abs(args.nodes, 0.01, 5)

    p50 = {key: results[key]["1mb"]["p50"] for key in (*HANDOFF_KEYS.values(), "memcpy_us", "zmq_ipc_us")}
    zmq_1mb, memcpy_1mb = p50["zmq_ipc_us"], p50["memcpy_us"]
    results["ratios"] = {
        "memcpy_1mb": p50["handoff_copy_us"] / memcpy_1mb,
        "memcpy_1mb_inplace": p50["handoff_inplace_us"] / memcpy_1mb,
        "memcpy_1mb_vs_back_to_back": p50["handoff_copy_us"] / results["memcpy_back_to_back_us"]["1mb"]["p50"],
        "vs_zmq_ipc_1mb": zmq_1mb / p50["handoff_inplace_us"],
        "vs_zmq_ipc_1mb_copy": zmq_1mb / p50["handoff_copy_us"],
        "vs_zmq_ipc_1mb_inplace_full_read": zmq_1mb / p50["handoff_inplace_full_read_us"],
        "vs_zmq_ipc_1mb_inplace_incl_write":
            zmq_1mb / results["handoff_inplace_us"]["1mb"]["write_plus_handoff"]["p50"],
        "memcpy_1mb_spinning_reader": p50["handoff_copy_spinning_reader_us"] / memcpy_1mb,
        "vs_zmq_ipc_1mb_copy_spinning_reader": zmq_1mb / p50["handoff_copy_spinning_reader_us"],
        "vs_zmq_ipc_1mb_predictive": zmq_1mb / results["periodic_1mb_1khz"]["predictive"]["inplace"]["p50"],
        "memcpy_1mb_predictive": results["periodic_1mb_1khz"]["predictive"]["copy"]["p50"] / memcpy_1mb,
        "vs_zmq_ipc_1mb_periodic_futex": zmq_1mb / results["periodic_1mb_1khz"]["futex"]["inplace"]["p50"],
        "sparse_vs_abs": results["sparse"]["encode_ms"] / results["sparse"]["abs_ms"],
    }
    results["ratio_definitions"] = RATIO_DEFINITIONS
    results["torn"] = (sum(results[key][k]["torn"] for key in HANDOFF_KEYS.values() for k in SIZES)
                       + sum(results["zmq_ipc_us"][k]["torn"] for k in SIZES)
                       + results["descriptor_via_broker_us"]["1mb"]["torn"]
                       + results["sustained_4.8mb_1khz"]["torn"]
                       + sum(p[m]["torn"] for p in results["periodic_1mb_1khz"].values() for m in PERIODIC_MODES))
    return results


def _print_summary(r: dict) -> None:
    print("hand-off p50 / p99 µs  in place      in place, all read  copy           copy, polling   memcpy"
          "   zmq ipc p50 / p99")
    for label in SIZES:
        cols = [r[key][label] for key in ("handoff_inplace_us", "handoff_inplace_full_read_us", "handoff_copy_us",
                                          "handoff_copy_spinning_reader_us")]
        m, z = r["memcpy_us"][label], r["zmq_ipc_us"][label]
        print(f"  {label:>6}             " + "".join(f"{c['p50']:6.1f} /{c['p99']:6.1f}   " for c in cols)
              + f"{m['p50']:6.1f}   {z['p50']:7.1f} / {z['p99']:7.1f}")
    print("writer, commit -> write() returned, p50 µs (waking the sleeping reader): "
          + ", ".join(f"{k} {r['handoff_copy_us'][k]['commit_to_return']['p50']:.1f}" for k in SIZES)
          + "; with a polling reader (no wake-up): "
          + ", ".join(f"{k} {r['handoff_copy_spinning_reader_us'][k]['commit_to_return']['p50']:.1f}" for k in SIZES))
    print("memcpy p50 µs, timed in the hand-off loop / back to back before it: "
          + ", ".join(f"{k} {r['memcpy_us'][k]['p50']:.1f} / {r['memcpy_back_to_back_us'][k]['p50']:.1f}"
                      for k in SIZES)
          + f" (memcpy_1mb against back to back: {r['ratios']['memcpy_1mb_vs_back_to_back']:.2f})")
    pf = r["handoff_page_faults"]
    print("page faults during the hand-offs (reader / writer process, whole process): "
          + ", ".join(f"{k} {v['reader']} / {v['writer']} in {v['frames']} frames" for k, v in pf.items()))
    d = r["descriptor_via_broker_us"]["1mb"]
    print(f"descriptor through the broker, 1 MB (write() called -> reader component holds the frame in place): "
          f"p50 {d['p50']:.1f} / p99 {d['p99']:.1f} / max {d['max']:.1f} µs, {d['overwritten']} overwritten")
    s = r["sustained_4.8mb_1khz"]
    print(f"4.8 MB @ 1 kHz: {s['frames_written']} frames at {s['achieved_hz']:.1f} Hz, write p50 "
          f"{s['write_us']['p50']:.0f} µs p99 {s['write_us']['p99']:.0f} µs, reader read {s['read']} skipped "
          f"{s['skipped']} -> sustained: {s['sustained']}")
    for kind, p in r["periodic_1mb_1khz"].items():
        print(f"1 MB @ 1 kHz, reader {'predicting' if kind == 'predictive' else 'sleeping on the futex'}: "
              + ", ".join(f"{m} p50 {p[m]['p50']:.1f} / p99 {p[m]['p99']:.1f} µs ({p[m]['over_113us']} > 113 µs)"
                          for m in PERIODIC_MODES)
              + f"; skipped {p['skipped']}; reader CPU {p['reader_cpu_percent_of_one_core']:.1f} % of one core")
    sp = r["sparse"]
    print(f"sparse: {sp['nodes']} nodes -> {sp['kept']} kept, encode {sp['encode_ms']:.1f} ms vs np.abs "
          f"{sp['abs_ms']:.1f} ms; to_proto {sp['to_proto_ms']:.1f} ms, {sp['dense_bytes'] / 1e6:.0f} MB -> "
          f"{sp['wire_bytes'] / 1e6:.2f} MB on the wire")
    ra = r["ratios"]
    print(f"ratios: vs_zmq_ipc_1mb {ra['vs_zmq_ipc_1mb']:.1f} (in place; target >= 10), vs_zmq_ipc_1mb_copy "
          f"{ra['vs_zmq_ipc_1mb_copy']:.1f} (copying), memcpy_1mb {ra['memcpy_1mb']:.2f} (copying; target <= 2.5), "
          f"sparse_vs_abs {ra['sparse_vs_abs']:.2f} (target <= 3); torn {r['torn']} (target 0)")
    print(f"        in place reading every word: vs_zmq_ipc_1mb {ra['vs_zmq_ipc_1mb_inplace_full_read']:.1f}; "
          f"counting the writer's write() too: {ra['vs_zmq_ipc_1mb_inplace_incl_write']:.1f}; "
          f"copying with a polling reader: memcpy_1mb {ra['memcpy_1mb_spinning_reader']:.2f}, "
          f"vs_zmq_ipc_1mb {ra['vs_zmq_ipc_1mb_copy_spinning_reader']:.1f}")
    print(f"        periodic 1 kHz stream, predictive wait (not the headline): vs_zmq_ipc_1mb_predictive "
          f"{ra['vs_zmq_ipc_1mb_predictive']:.1f} (in place), memcpy_1mb_predictive "
          f"{ra['memcpy_1mb_predictive']:.2f} (copying); same stream, futex: "
          f"vs_zmq_ipc_1mb {ra['vs_zmq_ipc_1mb_periodic_futex']:.1f}")
    if r.get("pm_qos_cpu_dma_latency_us") == 0:
        print("        (run with /dev/cpu_dma_latency held at 0: idle CPUs polled instead of halting)")
    if r.get("sched_fifo_priority"):
        print(f"        (run under SCHED_FIFO priority {r['sched_fifo_priority']}, every process of it)")
