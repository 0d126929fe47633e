"""Where an export writes: the node `-o` names, whatever kind of node it is.

A regular file (or a new name) is written beside itself and renamed into place at the
end, so a failed export never leaves a truncated file that looks complete. Anything
else is never replaced: a symlink is followed and its target written (the link stays
a link), a FIFO or a character device (/dev/stdout, /dev/null, a pipe someone reads)
gets the bytes streamed straight into it, and a directory is an error.
"""

from __future__ import annotations

import gzip
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from archive.db import ArchiveError

STDOUT = "-"


class TargetError(ArchiveError):
    """`-o` names something an export cannot write to (a directory, a socket, ...)."""


class TargetExistsError(ArchiveError):
    """A regular file is there and --force was not given."""


@contextmanager
def open_target(
    name: str, *, force: bool = False, gzip_by_name: bool = False
) -> Iterator[IO[bytes]]:
    """A binary stream to the export's target; the bytes are in place when the block
    ends without an exception. `gzip_by_name` compresses when the name given, or the
    file a symlink points at, ends in `.gz`."""
    if name == STDOUT:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    given = Path(name)
    try:
        mode = given.stat().st_mode  # through symlinks, /dev/stdout's /proc links too
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise TargetError(f"{name} is a directory: give a file name, e.g. -o {name}/export.jsonl")
    if mode is not None and (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)):
        compress = gzip_by_name and given.suffix == ".gz"
        with _stream(given, name) as raw, _compressed(raw, given, compress) as out:
            yield out
        return
    if mode is not None and not stat.S_ISREG(mode):
        raise TargetError(f"{name} is not a regular file, a FIFO or a character device")
    if mode is not None and not force:
        raise TargetExistsError(f"{name} exists; pass --force to overwrite it")
    target = Path(os.path.realpath(given))  # what a symlink points at, even a missing file
    compress = gzip_by_name and (given.suffix == ".gz" or target.suffix == ".gz")
    keep = None if mode is None else stat.S_IMODE(mode)
    with _replacing(target, keep) as raw, _compressed(raw, target, compress) as out:
        yield out


@contextmanager
def _stream(path: Path, name: str) -> Iterator[IO[bytes]]:
    """Open a FIFO or device for writing as it is: no O_CREAT, no O_TRUNC, so nothing
    is made or replaced even if the node changed since it was looked at. A FIFO's open
    waits for its reader, as any writer's does."""
    fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
    if not (stat.S_ISFIFO(os.fstat(fd).st_mode) or stat.S_ISCHR(os.fstat(fd).st_mode)):
        os.close(fd)
        raise TargetError(f"{name} changed while it was opened; run the export again")
    with os.fdopen(fd, "wb") as out:
        yield out


@contextmanager
def _replacing(target: Path, mode: int | None) -> Iterator[IO[bytes]]:
    """A new file beside `target`, renamed over it once complete and on disk. It keeps
    the permissions of the file it replaces; a new one gets the umask's, as open() would."""
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def _compressed(raw: IO[bytes], target: Path, compress: bool) -> Iterator[IO[bytes]]:
    if not compress:
        yield raw
        return
    # The name in the gzip header is the target's, not the temporary file's.
    with gzip.GzipFile(filename=target.name, mode="wb", fileobj=raw) as out:
        yield out  # type: ignore[misc]  # GzipFile is a binary stream
