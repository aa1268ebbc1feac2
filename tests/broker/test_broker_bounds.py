"""What the broker keeps of what it parses: bounded metrics, a bounded status answer."""

from __future__ import annotations

import copy
import json

from spine.broker.loop import (MAX_METRIC_KEY_BYTES, MAX_METRICS, STATUS_MAX_BYTES, Broker,
                               bounded_metrics)
from spine.protocol import neural_spike_pb2 as pb


def report_metrics(metrics: dict[str, float]):
    return pb.StatusReport(metrics=metrics).metrics  # the protobuf map the broker sees


def test_a_report_keeps_at_most_max_metrics_and_counts_the_rest():
    kept, dropped = bounded_metrics(report_metrics({f"m{i}": float(i) for i in range(5000)}))
    assert len(kept) == MAX_METRICS
    assert dropped == 5000 - MAX_METRICS


def test_the_clients_own_counters_are_kept_first():
    metrics = {f"m{i}": 1.0 for i in range(200)} | {"sent": 7.0, "received": 8.0, "dropped": 0.0}
    kept, _ = bounded_metrics(report_metrics(metrics))
    assert kept["sent"] == 7.0 and kept["received"] == 8.0 and kept["dropped"] == 0.0
    assert len(kept) == MAX_METRICS


def test_a_metric_with_a_long_key_is_dropped_and_counted():
    longest = "k" * MAX_METRIC_KEY_BYTES
    multibyte = "é" * (MAX_METRIC_KEY_BYTES // 2 + 1)  # few characters, too many bytes
    kept, dropped = bounded_metrics(report_metrics(
        {longest: 1.0, "x" * (MAX_METRIC_KEY_BYTES + 1): 2.0, multibyte: 3.0, "ok": 4.0}))
    assert kept == {longest: 1.0, "ok": 4.0}
    assert dropped == 2


def test_a_small_report_is_kept_whole():
    kept, dropped = bounded_metrics(report_metrics({"sent": 1.0, "latency_ms": 0.25}))
    assert kept == {"sent": 1.0, "latency_ms": 0.25} and dropped == 0


class _StatusOnly(Broker):
    """A broker reduced to its status dictionary, to test how the answer is cut."""

    def __init__(self, status: dict) -> None:  # no sockets, no config
        self._fixed = status

    def status(self) -> dict:
        return copy.deepcopy(self._fixed)


def status_with(components: int, metrics: int) -> dict:
    return {"broker": "broker", "components_omitted": 0, "truncated": False,
            "components": [{"name": f"c{i}", "metrics": {f"metric-{j}": 1.5 for j in range(metrics)}}
                           for i in range(components)]}


def test_a_small_status_is_answered_whole():
    status = status_with(3, 10)
    assert json.loads(_StatusOnly(status).status_json()) == status


def test_a_large_status_loses_the_metrics_first_and_says_truncated():
    answer = json.loads(_StatusOnly(status_with(400, MAX_METRICS)).status_json())
    assert answer["truncated"] is True
    assert len(answer["components"]) == 400 and answer["components_omitted"] == 0
    assert all(c["metrics"] == {} for c in answer["components"])


def test_a_huge_status_loses_components_too_and_counts_them():
    data = _StatusOnly(status_with(20_000, 0)).status_json()
    answer = json.loads(data)
    assert len(data) <= STATUS_MAX_BYTES
    assert answer["truncated"] is True
    assert len(answer["components"]) + answer["components_omitted"] == 20_000
    assert answer["components"][0]["name"] == "c0"
