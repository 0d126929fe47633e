"""ruff and mypy stay clean: the checks the README promises, run as tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_lint_is_clean():
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean():
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_archive_never_imports_scrapy():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "archive").rglob("*.py")
        if any(
            line.strip().startswith(
                ("import scrapy", "from scrapy", "from crawler", "import crawler")
            )
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []
