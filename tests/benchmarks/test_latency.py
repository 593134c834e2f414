"""``python -m benchmarks latency`` (the serial benchmark's latency tolerance) on a tiny
workload: two latencies, three devkit pages each, through the lab's relay. Plumbing only:
no rate, ratio or fault count is asserted (the firmware's, not the benchmark's)."""

from __future__ import annotations

import pytest

from benchmarks import _latency, print_result


def test_a_tiny_run_fills_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_latency, "LATENCIES_MS", (0, 10))
    result = _latency.run(scale=0.01)
    assert result["name"] == "latency"
    rows = result["latency_tolerance"]
    assert [(r["board"], r["latency_ms"]) for r in rows] == [("devkit", 0), ("devkit", 10)]
    for row in rows:
        assert row["pages"] == _latency.MIN_PAGES
        assert row["outcome"] in ("completed", "failed", "stalled", "timeout")
        assert set(row["fault_events"]) == {"misfeed", "jam", "fuser_error"}
        assert row["faults"] == sum(row["fault_events"].values())
    assert rows[0]["vs_0ms"] in (1.0, None)
    assert set(result["targets_met"]) == {"devkit_zero_faults_at_every_latency",
                                          "devkit_keeps_90pct_up_to_10ms"}
    assert any("lp-2000 left out" in note for note in result["notes"])
    assert len(result["table"]["rows"]) == len(rows)
    print_result(result)
