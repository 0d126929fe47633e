"""Shared fixtures: a real SQLite archive in a temporary directory and a record factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from archive.db import open_archive, resolve_url
from archive.records import Record
from archive.store import Store

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
