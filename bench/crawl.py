"""Benchmark: crawl a generated mirror of N Gate articles with annals, and in the same run
with a bare Scrapy spider that fetches the same URLs and neither parses nor stores.

Run: python -m bench.crawl [--articles 5000]. Writes bench/out/crawl.json. Both crawls
run as their own process against one local server, with the same concurrency and no
delays; pages per second is responses over the process's wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crawler.mirror import Mirror, MirrorServer
from crawler.spiders import gate
from crawler.synthetic import PAGE, generate

SETTINGS = {
    "CONCURRENT_REQUESTS": "16",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "DOWNLOAD_DELAY": "0",
    "AUTOTHROTTLE_ENABLED": "False",
    "LOG_LEVEL": "WARNING",
}


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


def timed(cmd: list[str], stdin: str | None = None) -> float:
    t0 = time.perf_counter()
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if result.returncode not in (0,):
        raise SystemExit(f"{cmd[:4]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=5000)
    args = parser.parse_args()
    routes, urls = generate(args.articles)
    pages = (args.articles + PAGE - 1) // PAGE
    mirror = Mirror(routes=routes)
    results: dict[str, Any] = {"articles": args.articles}
    with MirrorServer(mirror) as server, tempfile.TemporaryDirectory() as tmp:
        settings = [f"{k}={v}" for k, v in SETTINGS.items()]
        cmd = [sys.executable, "-m", "archive", "crawl", "gate_announcements", "--full",
               "--db", str(Path(tmp) / "bench.db"), "--base-url", server.url]  # fmt: skip
        for setting in settings:
            cmd += ["-s", setting]
        annals_s = timed(cmd)
        annals_hits = len(mirror.hits)
        mirror.hits.clear()
        bare = BARE_SPIDER % gate.LIST_API_PATH
        bare_s = timed(
            [sys.executable, "-c", bare, server.url, str(pages), json.dumps(SETTINGS)],
            stdin=json.dumps(urls),
        )
        bare_hits = len(mirror.hits)
    results.update(
        {
            "annals_requests": annals_hits,
            "annals_s": round(annals_s, 2),
            "annals_pages_per_s": round(annals_hits / annals_s, 1),
            "bare_requests": bare_hits,
            "bare_s": round(bare_s, 2),
            "bare_pages_per_s": round(bare_hits / bare_s, 1),
        }
    )
    results["ratio_annals_vs_bare"] = round(
        results["annals_pages_per_s"] / results["bare_pages_per_s"], 3
    )
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    (out / "crawl.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
