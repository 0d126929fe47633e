"""`annals export -o` writes where it is told: a symlink's target, into a FIFO or a
character device as it is, never over a directory; a temporary file and a rename only
for a regular file."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.cli import Exit, app

runner = CliRunner()
FORMATS = ["jsonl", "parquet"]
REFS = ["gate:post:21716532:en", "gate:announcement:51310:en", "gate:announcement:51322:en"]


def export(archive: str, *args: str):
    return runner.invoke(app, ["export", "--db", archive, *args])


def refs_in(data: bytes, fmt: str) -> list[str]:
    """The documents an export's bytes hold, read as a user would read them."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return [row["ref"] for row in pq.read_table(io.BytesIO(data)).to_pylist()]
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [json.loads(line)["ref"] for line in data.splitlines()]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name)


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_to_a_symlink_writes_its_target_and_keeps_the_link(
    archive: str, tmp_path: Path, fmt: str
):
    target = tmp_path / "data" / f"2026.{fmt}"
    target.parent.mkdir()
    target.write_bytes(b"last month's export")
    link = tmp_path / f"latest.{fmt}"
    link.symlink_to(target)
    refused = export(archive, "-f", fmt, "-o", str(link))
    assert refused.exit_code == Exit.REFUSED  # the target exists: --force, as for a file
    assert target.read_bytes() == b"last month's export"
    result = export(archive, "-f", fmt, "-o", str(link), "--force")
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert link.readlink() == target
    assert refs_in(target.read_bytes(), fmt) == REFS
    assert leftovers(tmp_path) == leftovers(target.parent) == []


def test_export_to_a_dangling_symlink_creates_its_target(archive: str, tmp_path: Path):
    link = tmp_path / "latest.jsonl.gz"
    link.symlink_to("2026-12.jsonl.gz")
    result = export(archive, "-o", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert refs_in((tmp_path / "2026-12.jsonl.gz").read_bytes(), "jsonl") == REFS


def test_export_over_a_file_keeps_its_permissions(archive: str, tmp_path: Path):
    out = tmp_path / "shared.jsonl"
    out.write_text("old\n")
    out.chmod(0o640)
    result = export(archive, "-o", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert refs_in(out.read_bytes(), "jsonl") == REFS


class FifoReader(threading.Thread):
    """A reader at the other end of a FIFO, as `gzip -d < fifo` or a loader would be."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.data = b""

    def run(self) -> None:
        with self.path.open("rb") as fifo:
            self.data = fifo.read()

    def finish(self) -> bytes:
        self.join(timeout=20)
        if self.is_alive():  # nobody opened the FIFO for writing: unblock the reader
            os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
            self.join(timeout=5)
        return self.data


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("name", ["export.jsonl", "export.jsonl.gz", "export.parquet"])
def test_export_to_a_fifo_streams_into_it(archive: str, tmp_path: Path, name: str, force: bool):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    reader.start()
    fmt = "parquet" if name.endswith(".parquet") else "jsonl"
    result = export(archive, "-f", fmt, "-o", str(fifo), *(["--force"] if force else []))
    data = reader.finish()
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert refs_in(data, fmt) == REFS
    assert (data[:2] == b"\x1f\x8b") == name.endswith(".gz")
    assert leftovers(tmp_path) == []


def character_device(tmp_path: Path, name: str, system: str, minor: int) -> Path:
    """A character device to export into. As root, a private node of the kernel's
    memory devices (1, minor) in tmp_path: an export that replaced it would replace a
    test file, never the machine's own /dev/null or /dev/full. Others cannot replace
    /dev/*, so they use the system's."""
    if os.geteuid() != 0:
        return Path(system)
    node = tmp_path / name
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    return node


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_into_a_character_device_streams_and_keeps_the_device(
    archive: str, tmp_path: Path, fmt: str
):
    null = character_device(tmp_path, "null", "/dev/null", 3)
    before = null.stat()
    result = export(archive, "-f", fmt, "-o", str(null), "--force")
    assert result.exit_code == 0, result.output
    assert "exported 3 documents" in result.stderr
    after = null.stat()
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_rdev, after.st_ino) == (before.st_rdev, before.st_ino)
    assert leftovers(tmp_path) == []


def test_export_into_a_full_device_fails_clearly_and_keeps_the_device(archive: str, tmp_path: Path):
    full = character_device(tmp_path, "full", "/dev/full", 7)
    before = full.stat()
    result = export(archive, "-o", str(full), "--force")
    assert result.exit_code == Exit.FAILED
    assert "No space left on device" in result.stderr
    assert "Traceback" not in result.output
    after = full.stat()
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_rdev, after.st_ino) == (before.st_rdev, before.st_ino)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
def test_export_to_a_directory_is_a_clear_error(
    archive: str, tmp_path: Path, fmt: str, force: bool
):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    result = export(archive, "-f", fmt, "-o", str(folder), *(["--force"] if force else []))
    assert result.exit_code == Exit.USAGE
    assert "is a directory" in result.stderr
    assert "Traceback" not in result.output
    assert folder.is_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    assert leftovers(tmp_path) == []


def annals_export(archive: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    return subprocess.Popen(
        [sys.executable, "-m", "archive", "export", "--db", archive, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def test_export_to_stdout_whose_reader_left_says_so_without_a_traceback(archive: str):
    """`annals export | head -1`, the reader gone before the export is done: the export
    stops with one clear line and exit 1, not a traceback at interpreter exit."""
    process = annals_export(archive, "-o", "-", "--all-versions")
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # the reader went away before the first line
    errors = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == Exit.FAILED
    assert "Broken pipe" in errors
    assert "Traceback" not in errors
    assert "Exception ignored" not in errors
