"""Benchmark: crawl a generated mirror of N Gate articles with annals, and in the same run
with a bare Scrapy spider that fetches the same URLs and neither parses nor stores.

Run: python -m bench.crawl [--articles 5000] [--runs 3] [--mirror synthetic,recorded].
Writes bench/out/crawl.json (or --out). Two mirrors: "synthetic" (crawler.synthetic.generate: one
recorded page around short generated articles) and "recorded" (generate_recorded: the
recorded articles and list items themselves, cycled, ids changed). Each crawl is its
own process against one local server, with the same concurrency and no delays; the
pair is alternated `--runs` times (the machine may be shared: CPU seconds, from each
child's getrusage, user + system, are the number that load does not move much; each
pair records the load average before and after it).

Per run: pages per second (responses over the process's wall time) and its ratio
annals / bare, and CPU milliseconds per page and their ratio annals / bare. `--again`
also re-crawls (--full) the archive the first crawl made, every page unchanged: what a
cron run that re-checks pages costs. Each mirror ends with the medians of the ratios over
its runs: one pair moves by 0.2 between two runs on a quiet machine (the bare spider's
CPU a page varies more than annals'), so a goal is judged on the median.

`--compare DIR` crawls with another checkout of annals too, in every pair, before this
one (DIR/.venv/bin/python, run in DIR): the code before a change beside the code after,
each against the same bare run, under the same load.

`--instructions` runs every crawl under valgrind (`--tool=cachegrind --cache-sim=no`) and
adds the instructions a request and their ratio annals / bare: a count that load does not
move, where CPU seconds of the same code vary by a third between pairs on a shared
machine. It runs about 30 times slower; wall and CPU figures are then valgrind's.

`--profile py-spy` (or `cprofile`) instead runs annals once per mirror under that profiler
and prints its top entries by own time and by inclusive time (bench/out/crawl-<mirror>.*).
py-spy samples from outside the process (cProfile's hooks slow a crawl down by half);
it is no dependency of annals: `pip install py-spy`.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crawler.mirror import Mirror, MirrorServer, Route
from crawler.sources import gate
from crawler.synthetic import PAGE, generate, generate_recorded

MIRRORS: dict[str, Callable[[int], tuple[list[Route], list[str]]]] = {
    "synthetic": generate,
    "recorded": generate_recorded,
}

SETTINGS = {
    "CONCURRENT_REQUESTS": "16",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "DOWNLOAD_DELAY": "0",
    "AUTOTHROTTLE_ENABLED": "False",
    "LOG_LEVEL": "WARNING",
}


# Issue 15's goals for a first crawl, judged on the median over the runs.
CPU_GOAL, WALL_GOAL = 1.25, 0.8

BARE_SPIDER = """
import json, sys
import scrapy
from scrapy.crawler import AsyncCrawlerProcess

base, pages, settings = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
paths = json.loads(sys.stdin.read())

class Bare(scrapy.Spider):
    name = "bare"
    async def start(self):
        for path in paths:
            yield scrapy.Request(base + path, callback=self.noop)
        for page in range(1, pages + 2):
            yield scrapy.http.JsonRequest(base + "%s", data={"page": page}, callback=self.noop)
    def noop(self, response):
        return None

process = AsyncCrawlerProcess({**settings, "ROBOTSTXT_OBEY": True})
process.crawl(Bare)
process.start()
"""


@dataclass
class Crawl:
    """One crawler process: what it asked of the mirror, its wall time and CPU time."""

    requests: int
    wall_s: float
    cpu_s: float
    instructions: int | None = None  # under valgrind (--instructions)

    def summary(self) -> dict[str, float]:
        found = {
            "requests": self.requests,
            "wall_s": round(self.wall_s, 2),
            "pages_per_s": round(self.requests / self.wall_s, 1),
            "cpu_s": round(self.cpu_s, 2),
            "cpu_ms_per_page": round(1000 * self.cpu_s / self.requests, 3),
        }
        if self.instructions is not None:
            found["m_instructions_per_page"] = round(self.instructions / self.requests / 1e6, 3)
        return found


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# Instructions only: cachegrind without its cache simulation is the fastest count valgrind has.
VALGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
_INSTRUCTIONS = re.compile(r"I\s+refs:\s+([\d,]+)")


def timed(
    mirror: Mirror,
    cmd: list[str],
    stdin: str | None = None,
    cwd: Path | None = None,
    *,
    instructions: bool = False,
) -> Crawl:
    """Run one crawler process to its end; its CPU is what it adds to the children's.
    With `instructions`, under valgrind, which counts them."""
    mirror.hits.clear()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "valgrind.log"
        if instructions:
            cmd = [*VALGRIND, f"--log-file={log}", *cmd]
        cpu0, t0 = children_cpu(), time.perf_counter()
        result = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, check=False, cwd=cwd
        )
        elapsed, cpu = time.perf_counter() - t0, children_cpu() - cpu0
        if result.returncode != 0:
            raise SystemExit(f"{cmd[:4]} failed ({result.returncode}): {result.stderr[-2000:]}")
        counted = _INSTRUCTIONS.search(log.read_text()) if instructions else None
    if instructions and counted is None:
        raise SystemExit(f"valgrind gave no instruction count for {cmd[:8]}")
    count = int(counted[1].replace(",", "")) if counted else None
    return Crawl(len(mirror.hits), elapsed, cpu, count)


def annals_cmd(base_url: str, db: Path, python: list[str]) -> list[str]:
    cmd = [*python, "-m", "archive", "crawl", "gate_announcements", "--full",
           "--db", str(db), "--base-url", base_url]  # fmt: skip
    for key, value in SETTINGS.items():
        cmd += ["-s", f"{key}={value}"]
    return cmd


def bare_cmd(base_url: str, pages: int) -> list[str]:
    bare = BARE_SPIDER % gate.SOURCE.list_path
    return [sys.executable, "-c", bare, base_url, str(pages), json.dumps(SETTINGS)]


def pair(
    mirror: Mirror,
    url: str,
    paths: list[str],
    pages: int,
    tmp: Path,
    *,
    again: bool,
    compare: Path | None = None,
    instructions: bool = False,
) -> dict[str, Any]:
    """annals into a fresh archive, then the bare spider, on the same mirror; with `again`,
    annals once more into that archive (every page unchanged), the bare spider between.
    With `compare`, that checkout's annals first, into an archive of its own."""
    db = tmp / f"bench-{time.monotonic_ns()}.db"
    load = os.getloadavg()[0]
    other = None
    if compare is not None:
        python = [str(compare / ".venv" / "bin" / "python")]
        other = timed(
            mirror,
            annals_cmd(url, db.with_suffix(".compare.db"), python),
            cwd=compare,
            instructions=instructions,
        )
    annals = timed(mirror, annals_cmd(url, db, [sys.executable]), instructions=instructions)
    bare = timed(mirror, bare_cmd(url, pages), stdin=json.dumps(paths), instructions=instructions)
    result = {"annals": annals.summary(), "bare": bare.summary(), **ratios(annals, bare)}
    if other is not None:
        result["compare"] = {**other.summary(), **ratios(other, bare)}
    # The machine may be shared: its load average (1 min) before and after the pair.
    result["load"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    if again:
        recrawl = timed(mirror, annals_cmd(url, db, [sys.executable]), instructions=instructions)
        result["annals_again"] = recrawl.summary()
        result["again"] = ratios(recrawl, bare)
    return result


def ratios(annals: Crawl, bare: Crawl) -> dict[str, float]:
    found = {
        "wall_ratio": round((annals.requests / annals.wall_s) / (bare.requests / bare.wall_s), 3),
        "cpu_ratio": round((annals.cpu_s / annals.requests) / (bare.cpu_s / bare.requests), 3),
    }
    if annals.instructions is not None and bare.instructions is not None:
        per_page = annals.instructions / annals.requests, bare.instructions / bare.requests
        found["instruction_ratio"] = round(per_page[0] / per_page[1], 3)
    return found


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each ratio over a mirror's runs, and whether it meets its goal."""
    found: dict[str, Any] = {"runs": len(runs)}
    for part in ("", "compare", "again"):
        rows = [run.get(part, {}) if part else run for run in runs]
        for key in ("cpu_ratio", "wall_ratio", "instruction_ratio"):
            values = [row[key] for row in rows if key in row]
            if values:
                found[f"{part}_{key}".lstrip("_")] = round(statistics.median(values), 3)
    found["goals_met"] = found["cpu_ratio"] <= CPU_GOAL and found["wall_ratio"] >= WALL_GOAL
    return found


def profile(profiler: str, mirror: Mirror, url: str, out: Path, top: int) -> None:
    """One annals crawl under the profiler; its top functions printed."""
    db = out.with_suffix(".db")
    db.unlink(missing_ok=True)
    if profiler == "cprofile":
        stats_file = out.with_suffix(".prof")
        python = [sys.executable, "-m", "cProfile", "-o", str(stats_file)]
        print(json.dumps(timed(mirror, annals_cmd(url, db, python)).summary()))
        stats = pstats.Stats(str(stats_file))
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        return
    stacks = out.with_suffix(".stacks")
    spy = ["py-spy", "record", "--format", "raw", "--rate", "250", "--function",
           "--output", str(stacks), "--"]  # fmt: skip
    print(json.dumps(timed(mirror, annals_cmd(url, db, [*spy, sys.executable])).summary()))
    print_sampled(stacks, top)


def print_sampled(stacks: Path, top: int) -> None:
    """Top functions of py-spy's raw stacks ("frame;frame;... count" lines)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        samples = int(count)
        names = frames.split(";")
        total += samples
        own[names[-1]] += samples
        for name in set(names):
            inclusive[name] += samples
    for title, counter in (("own time", own), ("inclusive time", inclusive)):
        print(f"\n{total} samples, top {top} by {title}:")
        for name, samples in counter.most_common(top):
            print(f"{100 * samples / total:6.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mirror", default=",".join(MIRRORS), help="synthetic,recorded")
    parser.add_argument("--again", action="store_true", help="and a re-crawl of the archive")
    parser.add_argument("--profile", choices=("py-spy", "cprofile"), help="profile one crawl")
    parser.add_argument("--top", type=int, default=40, help="entries of the profile shown")
    parser.add_argument("--compare", type=Path, help="another checkout, crawled in each pair")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions too (valgrind, ~30x slower)"
    )
    parser.add_argument("--out", type=Path, help="the JSON written (bench/out/crawl.json)")
    args = parser.parse_args()
    names = [name.strip() for name in args.mirror.split(",") if name.strip()]
    pages = (args.articles + PAGE - 1) // PAGE
    results: dict[str, Any] = {"articles": args.articles, "mirrors": {}}
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    for name in names:
        routes, paths = MIRRORS[name](args.articles)
        mirror = Mirror(routes=routes)
        with MirrorServer(mirror) as server, tempfile.TemporaryDirectory() as tmp:
            if args.profile:
                profile(args.profile, mirror, server.url, out / f"crawl-{name}", args.top)
                continue
            runs = []
            for run in range(args.runs):
                found = pair(
                    mirror, server.url, paths, pages, Path(tmp),
                    again=args.again, compare=args.compare, instructions=args.instructions,
                )  # fmt: skip
                runs.append(found)
                print(name, run + 1, json.dumps(runs[-1]), flush=True)
            results["mirrors"][name] = {"runs": runs, "median": medians(runs)}
            print(name, "median", json.dumps(results["mirrors"][name]["median"]), flush=True)
    if args.profile:
        return
    (args.out or out / "crawl.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
