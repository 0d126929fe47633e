"""bench/latency runs end to end with a few items: three real watches (Deribit's push,
Gate's push and its completions, OKX polled), the mirror, the alerts' endpoint; its
JSON and table are what the RESULTS section is made of. No speed is asserted
(benchmarks measure, tests do not time)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_the_latency_bench_measures_each_item_pushed_and_polled(tmp_path):
    out = tmp_path / "latency.json"
    command = [sys.executable, "-m", "bench.latency", "--push", "3", "--gate", "3", "--poll", "3",
               "--interval", "1", "--out", str(out)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

    found = json.loads(out.read_text())
    for case in ("push", "gate", "poll"):
        assert found[case]["n"] == 3
        assert len(found[case]["items"]) == 3
        measures = ("commit", "alert", "first_seen", *(("completion",) if case == "gate" else ()))
        for item in found[case]["items"]:
            assert set(item) == set(measures), item  # every item measured on each
        for measure in measures:
            stats = found[case][measure]
            assert stats["p50"] <= stats["p99"] <= stats["max"]
        for item in found[case]["items"]:
            # first_seen_at is stored to the millisecond, truncated.
            assert min(item.values()) > -0.002, item
    for item in found["gate"]["items"]:
        # The article completing a push is fetched once the push is committed.
        assert item["completion"] > item["commit"], item
    assert "| push (Deribit) | 3 | publish -> commit |" in result.stdout
    assert "| push (Gate) | 3 | publish -> completion committed |" in result.stdout
    assert "| poll every 1 s (OKX) | 3 | publish -> alert |" in result.stdout
