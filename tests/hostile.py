"""Hostile hosts for the end-to-end tests: routes put in front of a mirror's own that
answer "come back later" for a while, or never answer at all."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crawler.mirror import Hit, Mirror, Route


class Window:
    """A span of `seconds` that opens at the first request it is asked about."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.opened: float | None = None
        self._lock = threading.Lock()

    def open(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if self.opened is None:
                self.opened = now
            return now < self.opened + self.seconds


@dataclass
class Refusing(Route):
    """Answers its status (429, 503...) to every request of its path while the shared
    window is open; the window opens at the first request of a path marked `opens`."""

    window: Window = field(default_factory=lambda: Window(10.0))
    opens: bool = True

    def matches(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> bool:
        if not super().matches(method, path, query, body):
            return False
        if self.window.opened is None and not self.opens:
            return False
        return self.window.open()


class Gate:
    """Lets the first `free` requests through, then holds every other one (shared)."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.released = threading.Event()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            self.free -= 1
            return self.free < 0


@dataclass
class Hanging(Route):
    """After the gate's free requests, accepts the request and never answers (until the
    test ends): a host that hangs."""

    gate: Gate = field(default_factory=lambda: Gate(0))

    def matches(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> bool:
        return super().matches(method, path, query, body) and self.gate.take()

    def payload(self, query: dict[str, str] | None = None) -> bytes:
        self.gate.released.wait(120)
        return b""


def article_paths(mirror: Mirror, prefix: str) -> list[str]:
    """Every path of the mirror's routes under `prefix`, once each."""
    return sorted({r.path for r in mirror.routes if r.path.startswith(prefix)})


def _key(hit: Hit) -> tuple[Any, ...]:
    return (hit.path, tuple(sorted(hit.query.items())))


def retried(mirror: Mirror, status: int, since: float, until: float) -> list[tuple[Hit, bool]]:
    """Each hit in (since, until), with whether it repeats a request answered `status`
    earlier (a retry) rather than asking for something new."""
    refused: set[tuple[Any, ...]] = set()
    out = []
    for hit in sorted(mirror.hits, key=lambda h: h.at):
        if since < hit.at < until:
            out.append((hit, _key(hit) in refused))
        if hit.status == status:
            refused.add(_key(hit))
    return out


def start_crawl(db: Path, base_url: str, *args: str) -> subprocess.Popen[str]:
    """`annals crawl` in its own process, as cron would start it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    env.pop("ANNALS_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "archive", "crawl", *args, "--db", str(db), "--base-url", base_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
