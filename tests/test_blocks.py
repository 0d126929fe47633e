"""Block recognition and the waits before a retry."""

from __future__ import annotations

import pytest
from scrapy.http import HtmlResponse

from crawler.backoff import HostBackoff, backoff_wait
from crawler.blocks import classify, headers_of, retry_after
from crawler.spiders.api import BybitAnnouncementsSpider, OkxAnnouncementsSpider
from tests.helpers import FIXTURES, annals_crawler

HTML = {"content-type": "text/html"}


@pytest.mark.parametrize(
    ("status", "headers", "body", "kind"),
    [
        (
            403,
            {"server": "AkamaiGHost"},
            (FIXTURES / "gate" / "blocked_akamai.html").read_bytes(),
            "akamai",
        ),
        (200, HTML, (FIXTURES / "gate" / "challenge_edgeone.html").read_bytes(), "challenge"),
        (567, {}, b"", "edgeone"),
        (429, {}, b"", "rate_limited"),
        (429, {"content-type": "text/plain"}, b"Too many API requests.", "rate_limited"),
        (418, {}, b"", "banned"),
        (403, {}, b'{"retCode":10006,"retMsg":"403 access too frequent"}', "too_frequent"),
        (403, HTML, b"<html><body>Forbidden</body></html>", "forbidden"),
        (
            503,
            HTML,
            b"<html><head><title>Just a moment...</title></head><body></body></html>",
            "challenge",
        ),
    ],
)
def test_blocks_are_recognised(status, headers, body, kind):
    assert classify(status, headers, body) == kind


@pytest.mark.parametrize(
    "name",
    ["article_51322.html", "square_post_21716532.html", "square_feed.html", "list_article_p1.json"],
)
def test_real_pages_are_not_taken_for_blocks(name):
    body = (FIXTURES / "gate" / name).read_bytes()
    assert classify(200, HTML, body) is None


def test_a_page_that_mentions_a_captcha_is_still_a_page():
    body = (
        b"<html><body><article>"
        + b"Our new captcha-free login is live. " * 40
        + b"</article></body></html>"
    )
    assert classify(200, HTML, body) is None


def test_retry_after_in_seconds_or_as_a_date_is_capped():
    assert retry_after("30", cap=600) == 30
    assert retry_after("100000", cap=600) == 600
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", cap=600) == 0
    assert retry_after("soon", cap=600) is None
    assert retry_after(None, cap=600) is None


def _backoff(spider_cls, **settings) -> HostBackoff:
    crawler = annals_crawler(spider_cls, ANNALS_BLOCK_BACKOFF=1.0, **settings)
    crawler.spider = spider_cls()
    return HostBackoff(crawler)


def test_bybit_access_too_frequent_waits_the_documented_ten_minutes():
    assert _backoff(BybitAnnouncementsSpider).wait("too_frequent", {}, 0) == 600
    # Other sources, and other kinds, back off as usual.
    assert _backoff(OkxAnnouncementsSpider).wait("too_frequent", {}, 0) < 2
    assert _backoff(BybitAnnouncementsSpider).wait("rate_limited", {}, 0) < 2


def test_backoff_grows_and_retry_after_wins():
    middleware = _backoff(OkxAnnouncementsSpider)
    assert 0.75 <= middleware.wait("challenge", {}, 0) <= 1.25
    assert 3.0 <= middleware.wait("challenge", {}, 2) <= 5.0
    assert middleware.wait("rate_limited", {"retry-after": "7"}, 0) == 7


def test_every_wait_is_capped_and_retry_after_is_taken_as_given():
    assert 450.0 <= backoff_wait(10, base=5.0, cap=600.0) <= 600.0
    assert backoff_wait(0, base=5.0, cap=600.0, asked=3600.0) == 600.0
    assert backoff_wait(0, base=5.0, cap=600.0, asked=0.0) == 0.0
    assert backoff_wait(0, base=5.0, cap=600.0, asked=2.0, floor=30.0) == 30.0


def test_response_headers_read_as_the_whole_lower_case_dict():
    response = HtmlResponse(
        "https://www.gate.com/",
        headers=[("Server", "AkamaiGHost"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2")],
        body=b"",
    )
    response.headers.setlist("X-Empty", [])
    eager = {
        key.decode("latin-1").lower(): b", ".join(values).decode("latin-1")
        for key, values in response.headers.items()
    }
    headers = headers_of(response)
    assert dict(headers) == eager
    assert headers.get("set-cookie") == "a=1, b=2" == headers["SET-COOKIE"]
    assert headers.get("x-empty", "none") == ""
    assert headers.get("retry-after") is None
    assert headers.get("cf-mitigated", "") == ""
    with pytest.raises(KeyError):
        headers["retry-after"]
