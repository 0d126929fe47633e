"""Benchmark: crawl a generated mirror of N Gate articles with annals, and in the same run
with a bare Scrapy spider that fetches the same URLs and neither parses nor stores.

Run: python -m bench.crawl [--articles 5000]. Writes bench/out/crawl.json. Both crawls
run as their own process against one local server, with the same concurrency and no
delays; pages per second is responses over the process's wall time.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crawler.mirror import Mirror, MirrorServer, Route
from crawler.spiders import gate

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "gate"
PAGE = 15  # the list endpoint's page size on Gate's site
FIRST_ID = 200_000
START = 1_780_000_000  # release time of the newest generated article (unix seconds)
SETTINGS = {
    "CONCURRENT_REQUESTS": "16",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "DOWNLOAD_DELAY": "0",
    "AUTOTHROTTLE_ENABLED": "False",
    "LOG_LEVEL": "WARNING",
}
NEXT_DATA = re.compile(r'(<script id="__NEXT_DATA__"[^>]*>)(.*?)(</script>)', re.S)


def generate(n: int) -> tuple[list[Route], list[str]]:
    """Routes of a Gate mirror with n articles, and every URL a full crawl fetches."""
    template = (FIXTURES / "article_51322.html").read_text()
    data = json.loads(NEXT_DATA.search(template).group(2))  # type: ignore[union-attr]
    html = {"Content-Type": "text/html; charset=utf-8"}
    routes: list[Route] = [
        Route("GET", "/robots.txt", content=(FIXTURES / "robots.txt").read_bytes())
    ]
    items = []
    for k in range(n):
        article = FIRST_ID + k
        released = START - 600 * k
        title = f"Gate Will List Benchmark Token {article} (BT{article})"
        desc = f"<p>Gate will list <strong>BT{article}</strong>.</p>" + "<p>Details.</p>" * 20
        items.append(
            {"id": article, "title": title, "brief": title, "cate_id": 38,
             "url": f"/announcements/article/{article}", "created_t": released,
             "release_timestamp": str(released), "tags": f"BT{article}", "views": 1}
        )  # fmt: skip
        data["props"]["pageProps"]["detail"] = {
            "id": article, "title": title, "desc": desc, "created_t": released,
            "cate_id": 38, "release_timestamp": str(released), "tags": f"BT{article}",
        }  # fmt: skip
        page = NEXT_DATA.sub(lambda m: m.group(1) + json.dumps(data) + m.group(3), template)
        routes.append(
            Route("GET", f"/announcements/article/{article}", content=page.encode(), headers=html)
        )
    pages = (n + PAGE - 1) // PAGE
    for number in range(1, pages + 2):  # and the empty page past the end
        chunk = items[(number - 1) * PAGE : number * PAGE]
        body = {"code": 0, "message": "success", "data": {"total": n, "list": chunk}}
        routes.append(
            Route("POST", gate.LIST_API_PATH, content=json.dumps(body).encode(),
                  headers={"Content-Type": "application/json"}, body={"page": number})
        )  # fmt: skip
    hub = (FIXTURES / "announcements.html").read_text()
    hub_data = json.loads(NEXT_DATA.search(hub).group(2))  # type: ignore[union-attr]
    hub_data["props"]["pageProps"]["listData"] = {"list": items[:PAGE], "total": n}
    hub = NEXT_DATA.sub(lambda m: m.group(1) + json.dumps(hub_data) + m.group(3), hub)
    for path in ("/announcements", "/announcements/newlisted", "/announcements/delisted"):
        routes.append(Route("GET", path, content=hub.encode(), headers=html))
    urls = [
        *(f"/announcements{p}" for p in ("", "/newlisted", "/delisted")),
        *(f"/announcements/article/{FIRST_ID + k}" for k in range(n)),
    ]
    return routes, urls


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
