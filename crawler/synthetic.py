"""Gate-shaped mirrors of any size, for benchmarks and for the crash tests, which need
more pages than the recordings hold.

`generate` fills one recorded page with short generated articles; `generate_recorded`
serves the recorded articles and list items themselves, cycled, with only their ids
changed: the real pages' sizes and bodies, as a crawl of the real site meets them."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from crawler.mirror import Route
from crawler.sources import gate

TEMPLATES = Path(__file__).with_name("mirrors") / "gate"
PAGE = 15  # the list endpoint's page size on Gate's site
FIRST_ID = 200_000
START = 1_780_000_000  # release time of the newest generated article (unix seconds)
NEXT_DATA = re.compile(r'(<script id="__NEXT_DATA__"[^>]*>)(.*?)(</script>)', re.S)
HTML = {"Content-Type": "text/html; charset=utf-8"}


def _next_data(page: str) -> Any:
    """The JSON a recorded page holds in its __NEXT_DATA__ script."""
    match = NEXT_DATA.search(page)
    assert match is not None
    return json.loads(match.group(2))


def _with_next_data(page: str, data: object) -> str:
    return NEXT_DATA.sub(lambda m: m.group(1) + json.dumps(data) + m.group(3), page)


def _noise(article: int, paragraphs: int) -> str:
    """Paragraphs that do not compress away (for tests that must fill a disk)."""
    rng = random.Random(article)  # noqa: S311 - test data, not secrets
    return "".join(f"<p>{rng.randbytes(300).hex()}</p>" for _ in range(paragraphs))


def generate(
    n: int, *, paragraphs: int = 20, incompressible: bool = False
) -> tuple[list[Route], list[str]]:
    """Routes of a Gate mirror with n articles (newest first, ten minutes apart), and the
    path of every page a full crawl fetches besides robots.txt and the list endpoint."""
    template = (TEMPLATES / "article_51322.html").read_text()
    data = _next_data(template)
    routes = [Route("GET", "/robots.txt", content=(TEMPLATES / "robots.txt").read_bytes())]
    items = []
    for k in range(n):
        article = FIRST_ID + k
        released = START - 600 * k
        title = f"Gate Will List Benchmark Token {article} (BT{article})"
        filler = _noise(article, paragraphs) if incompressible else "<p>Details.</p>" * paragraphs
        desc = f"<p>Gate will list <strong>BT{article}</strong>.</p>{filler}"
        tags = f"BT{article}"
        items.append(
            {"id": article, "title": title, "brief": title, "cate_id": 38,
             "url": f"/announcements/article/{article}", "created_t": released,
             "release_timestamp": str(released), "tags": tags, "views": 1}
        )  # fmt: skip
        data["props"]["pageProps"]["detail"] = {
            "id": article, "title": title, "desc": desc, "created_t": released,
            "cate_id": 38, "release_timestamp": str(released), "tags": tags,
        }  # fmt: skip
        page = _with_next_data(template, data).encode()
        routes.append(Route("GET", f"/announcements/article/{article}", content=page, headers=HTML))
    return _with_listings(routes, items)


def _with_listings(
    routes: list[Route], items: list[dict[str, object]]
) -> tuple[list[Route], list[str]]:
    """The routes plus the list endpoint's pages and the three listing screens of `items`,
    and the paths a full crawl fetches besides robots.txt and the list endpoint."""
    n = len(items)
    for number in range(1, (n + PAGE - 1) // PAGE + 2):  # and the empty page past the end
        chunk = items[(number - 1) * PAGE : number * PAGE]
        body = {"code": 0, "message": "success", "data": {"total": n, "list": chunk}}
        routes.append(
            Route("POST", gate.SOURCE.list_path, content=json.dumps(body).encode(),
                  headers={"Content-Type": "application/json"}, body={"page": number})
        )  # fmt: skip
    hub = (TEMPLATES / "announcements.html").read_text()
    hub_data = _next_data(hub)
    hub_data["props"]["pageProps"]["listData"] = {"list": items[:PAGE], "total": n}
    screen = _with_next_data(hub, hub_data).encode()
    listings = ("/announcements", "/announcements/newlisted", "/announcements/delisted")
    routes += [Route("GET", path, content=screen, headers=HTML) for path in listings]
    paths = [*listings, *(str(item["url"]) for item in items)]
    return routes, paths


def generate_recorded(n: int) -> tuple[list[Route], list[str]]:
    """Like `generate`, from the recorded English articles (cycled) and their recorded list
    items: article FIRST_ID + k is recorded article k mod 5 with every mention of its id
    changed, and nothing else; listings and the list endpoint as in `generate`."""
    answers = [json.loads(path.read_text()) for path in TEMPLATES.glob("list_article_p*.json")]
    listed = {item["id"]: item for answer in answers for item in answer["data"]["list"]}
    pages = sorted(TEMPLATES.glob("article_*.html"))
    templates = [(int(path.stem.removeprefix("article_")), path.read_text()) for path in pages]
    routes = [Route("GET", "/robots.txt", content=(TEMPLATES / "robots.txt").read_bytes())]
    items = []
    for k in range(n):
        article = FIRST_ID + k
        original, page = templates[k % len(templates)]
        renamed = re.sub(rf"(?<!\d){original}(?!\d)", str(article), page).encode()
        path = f"/announcements/article/{article}"
        routes.append(Route("GET", path, content=renamed, headers=HTML))
        items.append({**listed[original], "id": article, "url": path})
    return _with_listings(routes, items)
