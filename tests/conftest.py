"""Shared fixtures: a real SQLite archive in a temporary directory and a record factory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from archive.db import open_archive, resolve_url
from archive.records import Record
from archive.store import Store
from crawler.mirror import Mirror, MirrorServer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "annals.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[sa.Engine]:
    engine = open_archive(resolve_url(str(db_path)), create=True)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: sa.Engine) -> Store:
    return Store(engine)


RecordFactory = Callable[..., Record]


@pytest.fixture
def make_record() -> RecordFactory:
    def make(external_id: str = "51322", **fields: Any) -> Record:
        defaults: dict[str, Any] = {
            "source": "gate",
            "kind": "announcement",
            "external_id": external_id,
            "language": "en",
            "url": f"https://www.gate.com/announcements/article/{external_id}",
            "title": "Gate Will List Velora (VLR) for Spot Trading",
            "body_html": "<p>Dear Gate users,</p><p>Gate will list <b>VLR/USDT</b>.</p>",
            "published_at": datetime(2026, 5, 22, 6, 30, tzinfo=UTC),
            "category": "New Spot Listings",
            "tags": ["VLR"],
            "extra": {"views": 10},
        }
        defaults.update(fields)
        return Record(**defaults)

    return make


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


# --- end-to-end: a local mirror on 127.0.0.1 and `annals crawl` in a subprocess ---------------

FAST = [
    # A local mirror needs no politeness; blocks are retried quickly to keep tests short.
    "-s", "DOWNLOAD_DELAY=0",
    "-s", "AUTOTHROTTLE_ENABLED=False",
    "-s", "ANNALS_BLOCK_BACKOFF=0.05",
]  # fmt: skip


def annals(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the `annals` command as a user would, in its own process."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    env.pop("ANNALS_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "archive", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        check=False,
    )


@pytest.fixture
def mirror_dir(tmp_path: Path) -> Path:
    """A private copy of the recorded Gate pages, free to edit between crawls."""
    target = tmp_path / "mirror" / "gate"
    shutil.copytree(FIXTURES / "gate", target)
    return target


@pytest.fixture
def gate_mirror(mirror_dir: Path) -> Iterator[tuple[Mirror, str]]:
    mirror = Mirror(mirror_dir)
    with MirrorServer(mirror) as server:
        yield mirror, server.url


def crawl(db: Path, base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return annals("crawl", *args, "--db", str(db), "--base-url", base_url, *FAST)
