"""The mirror re-pages a recorded listing to the page size a request asks (crawler.mirror)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from crawler import mirror as mirror_module
from crawler.mirror import Mirror, MirrorServer

PATH = "/api/list"
RECORDED = 10


def _item(n: int) -> dict[str, Any]:
    return {"id": n, "title": f"item {n}"}


@pytest.fixture
def listing(tmp_path: Path) -> Path:
    """70 items recorded as 7 pages of 10, an empty 8th page, and the routes that serve
    them: one flat list with echoed counters, and one list per group (as Binance's)."""
    names = []
    for page in range(1, 9):
        items = [_item(n) for n in range((page - 1) * RECORDED, min(page * RECORDED, 70))]
        answer = {
            "data": {"page": page, "size": RECORDED, "pages": "7", "items": items},
            "groups": [{"name": "a", "total": 70, "list": items}, {"name": "b", "list": items[:1]}],
        }
        name = f"p{page}.json"
        (tmp_path / name).write_text(json.dumps(answer))
        names.append(name)
    pages = {"number": "pageNo", "size": "pageSize", "recorded": RECORDED, "files": names}
    routes = [
        {"path": PATH, "query": {"flat": "1"}, "headers": {"Content-Type": "application/json"},
         "pages": pages | {"items": "data.items",
                           "echo": {"data.page": "number", "data.size": "size", "data.pages": "pages"}}},
        {"path": PATH, "headers": {"Content-Type": "application/json"},
         "pages": pages | {"items": "groups[].list"}},
    ]  # fmt: skip
    (tmp_path / "routes.json").write_text(json.dumps(routes))
    return tmp_path


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.status == 200
        return json.loads(answer.read())


def test_a_page_of_50_is_the_first_50_recorded_items_in_order(listing):
    with MirrorServer(Mirror(listing)) as server:
        first = get(f"{server.url}{PATH}?flat=1&pageNo=1&pageSize=50")["data"]
        second = get(f"{server.url}{PATH}?flat=1&pageNo=2&pageSize=50")["data"]
        past = get(f"{server.url}{PATH}?flat=1&pageNo=3&pageSize=50")["data"]

    assert first["items"] == [_item(n) for n in range(50)]
    assert second["items"] == [_item(n) for n in range(50, 70)]
    assert past["items"] == []
    # The counters the answer repeats follow the request, in their recorded types.
    assert (first["page"], first["size"], first["pages"]) == (1, 50, "2")
    assert (past["page"], past["size"]) == (3, 50)


def test_each_list_of_a_page_is_re_paged_on_its_own(listing):
    mirror = Mirror(listing)
    with MirrorServer(mirror) as server:
        page = get(f"{server.url}{PATH}?pageNo=1&pageSize=20")
    assert page["groups"][0]["list"] == [_item(n) for n in range(20)]
    assert page["groups"][0]["total"] == 70  # the rest of the answer is the first page's
    # Group b has one item on each of the seven full recorded pages: all seven, in order.
    assert page["groups"][1]["list"] == [_item(n) for n in range(0, 70, RECORDED)]
    assert [hit.query for hit in mirror.hits] == [{"pageNo": "1", "pageSize": "20"}]


def test_the_recorded_size_or_no_size_answers_the_recorded_file(listing):
    mirror = Mirror(listing)
    third = (listing / "p3.json").read_bytes()
    for query in ({"pageNo": "3", "pageSize": "10"}, {"pageNo": "3"}):
        route = mirror.route_for("GET", f"{PATH}?pageNo={query['pageNo']}")
        assert route is not None
        assert route.payload(query) == third
        assert route.file_for(query) == listing / "p3.json"
    route = mirror.route_for("GET", PATH)
    assert route is not None
    assert route.file_for({"pageNo": "1", "pageSize": "50"}) is None  # an answer it makes


def test_an_answer_that_is_a_bare_array_is_re_paged_too(tmp_path):
    """WordPress answers a bare array: an empty `items` path is the answer itself."""
    names = []
    for page in range(1, 4):
        name = f"bare{page}.json"
        items = [_item(n) for n in range((page - 1) * RECORDED, min(page * RECORDED, 25))]
        (tmp_path / name).write_text(json.dumps(items))
        names.append(name)
    pages = {"number": "page", "size": "per_page", "recorded": RECORDED, "files": names}
    routes = [{"path": PATH, "headers": {"Content-Type": "application/json"},
               "pages": pages | {"items": ""}}]  # fmt: skip
    (tmp_path / "routes.json").write_text(json.dumps(routes))
    with MirrorServer(Mirror(tmp_path)) as server:
        whole = get(f"{server.url}{PATH}?page=1&per_page=100")
        second = get(f"{server.url}{PATH}?page=2&per_page=20")
        recorded = get(f"{server.url}{PATH}?page=3&per_page=10")
    assert whole == [_item(n) for n in range(25)]
    assert second == [_item(n) for n in range(20, 25)]
    assert recorded == [_item(n) for n in range(20, 25)]


def test_the_mirror_sends_without_waiting_for_acks(monkeypatch):
    # With Nagle's algorithm on, each body waited for the client's delayed ACK of its
    # headers (40 ms on loopback), which capped a crawl of the mirror at ~290 pages/s.
    seen: list[int] = []
    setup = mirror_module._Handler.setup

    def recording_setup(handler: Any) -> None:
        setup(handler)
        seen.append(handler.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(mirror_module._Handler, "setup", recording_setup)
    with MirrorServer(Mirror(routes=[])) as server, pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(server.url + "/nothing", timeout=5)
    assert seen
    assert all(seen)
