"""``python -m benchmarks network`` on a tiny workload: its plumbing (the rig, the
polling clients, the ingest), never its timings."""

from __future__ import annotations

from benchmarks import print_result
from benchmarks._network import pwg_page, run
from firmware.net import DocumentReader


def test_the_synthetic_page_is_pwg_raster_the_printer_measures() -> None:
    for bits in (1, 8):
        page, raw_bytes = pwg_page(bits=bits, height_px=300)
        reader = DocumentReader("application/octet-stream")
        reader.feed(page)
        (coverage,) = reader.close()
        assert reader.detected_format == "image/pwg-raster"
        assert 1.0 < coverage < 20.0
        assert raw_bytes == (5100 * bits + 7) // 8 * 300


def test_a_tiny_run_fills_every_figure() -> None:
    result = run(scale=0.02)
    assert result["name"] == "network" and result["pages"] == 5
    assert result["ppm_unpolled"] > 0 and result["ppm_polled"] > 0
    assert result["status_queries_per_s"] > 0 and result["status_failures"] == 0
    assert result["status_p99_ms"] >= result["status_p50_ms"] > 0
    assert result["ingest_sgray8_mb_s"] > 0 and result["ingest_black1_mb_s"] > 0
    assert set(result["targets"]) == {"same_ppm_while_polled", "status_p99_under_10ms"}
    print_result(result)
