"""bench/crawl runs end to end on a few articles: annals, the code it is compared with
(`--compare`, here the same code from another directory) and the bare spider, on the
recorded mirror; its JSON holds each pair and the medians the goals are judged on. No
speed is asserted (benchmarks measure, tests do not time)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_the_crawl_bench_reports_each_pair_and_the_medians(tmp_path):
    other = tmp_path / "other"
    (other / ".venv" / "bin").mkdir(parents=True)
    python = other / ".venv" / "bin" / "python"  # this interpreter, its venv and all
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    out = tmp_path / "crawl.json"
    command = [sys.executable, "-m", "bench.crawl", "--articles", "12", "--runs", "3",
               "--mirror", "recorded", "--compare", str(other), "--out", str(out)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

    found = json.loads(out.read_text())
    assert set(found["mirrors"]) == {"recorded"}
    for mirror in found["mirrors"].values():
        runs = mirror["runs"]
        assert len(runs) == 3
        for run in runs:
            # Every crawler fetched every page: the 12 articles and more (lists, robots.txt).
            requests = run["bare"]["requests"]
            assert requests > 12
            assert run["annals"]["requests"] == run["compare"]["requests"] == requests
        median = mirror["median"]
        for key in ("cpu_ratio", "wall_ratio", "compare_cpu_ratio"):
            values = sorted(run["compare"][key[8:]] if key.startswith("compare_") else run[key]
                            for run in runs)  # fmt: skip
            assert median[key] == values[1]
        assert median["goals_met"] == (median["cpu_ratio"] <= 1.25 and median["wall_ratio"] >= 0.8)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_the_crawl_bench_counts_instructions_under_valgrind(tmp_path):
    out = tmp_path / "crawl.json"
    command = [sys.executable, "-m", "bench.crawl", "--articles", "3", "--runs", "1",
               "--mirror", "recorded", "--instructions", "--out", str(out)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

    recorded = json.loads(out.read_text())["mirrors"]["recorded"]
    (run,) = recorded["runs"]
    annals, bare = run["annals"]["m_instructions_per_page"], run["bare"]["m_instructions_per_page"]
    # Python's start-up alone is tens of millions of instructions.
    assert annals > 10
    assert bare > 10
    assert run["instruction_ratio"] == pytest.approx(annals / bare, rel=0.01)
    assert recorded["median"]["instruction_ratio"] == run["instruction_ratio"]
