"""What is waiting in the inbox: regular transcript files, settled, each keyed by its content hash."""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from summarizer.runner import ItemResult

if TYPE_CHECKING:
    from summarizer.vault import Vault

FORMATS = frozenset({".txt", ".md", ".vtt", ".srt", ".json"})
ARCHIVE_DIRNAME = "_archive"


def file_hash(path: Path) -> str:
    """The key of the journal: the file's bytes, so a renamed copy is recognised without parsing.

    Only a regular file is read: a symlink is not followed, and a FIFO or device is refused
    (OSError) instead of blocking the run forever.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        digest = hashlib.sha256()
        for block in iter(lambda: os.read(fd, 1 << 20), b""):
            digest.update(block)
        return digest.hexdigest()
    finally:
        os.close(fd)


def is_regular(path: Path) -> bool:
    """A regular file itself (never through a symlink)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def holds(path: Path, content_hash: str) -> bool:
    """`path` is a regular file (not a symlink) with exactly this content."""
    if not is_regular(path):
        return False
    try:
        return file_hash(path) == content_hash
    except OSError:
        return False


def _describe(err: OSError) -> str:
    return str(err.strerror or err)



@dataclass
class InboxOptions:
    concurrency: int | None = None
    settle: float = 10.0  # seconds since the last modification before a file counts as complete
    limit: int | None = None
    only: str | None = None
    dry_run: bool = False
    batch: bool = False
    collect: bool = False
    wait: bool = False
    model: str | None = None
    engine: str | None = None


@dataclass
class Candidate:
    """One inbox file, as seen by the scan."""

    path: Path
    rel: str  # vault-relative
    name: str  # inbox-relative, for display and --only
    size: int
    mtime_ns: int
    content_hash: str = ""


@dataclass
class Scan:
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[ItemResult] = field(default_factory=list)
    why_empty: str | None = None  # when nothing is waiting: why, in words (no inbox folder, --only...)
    settles_in: float | None = None  # seconds until the first file still being written has settled


def scan_inbox(vault: Vault, inbox_rel: str, archive_rel: str, options: InboxOptions, ignore: set[str]) -> Scan:
    """Regular files waiting in the inbox: not hidden, not archived, not a note we wrote, a known
    format, no longer being written. Symlinks and other non-regular files are skipped with a reason;
    a file that cannot be read is reported and the rest go on."""
    inbox = vault.inside(inbox_rel)
    result = Scan()
    if not inbox.is_dir():
        result.why_empty = f"no inbox folder at {inbox_rel}/ (create it, or set `inbox` in .summarizer.toml)"
        return result
    archive = vault.inside(archive_rel)
    now = time.time()
    found: list[tuple[str, Path]] = []
    matched = 0
    for folder, dirs, files in os.walk(inbox):  # never descends into symlinked folders
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != ARCHIVE_DIRNAME and here / d != archive)
        for name in files:
            if name.startswith("."):
                continue
            path = here / name
            found.append((path.relative_to(inbox).as_posix(), path))
    for shown, path in sorted(found):
        # `inbox` is resolved and inside the vault, and os.walk followed no symlink: this is the
        # file's own vault-relative path, never where a symlink points.
        rel = path.relative_to(vault.root).as_posix()
        if rel in ignore:
            continue
        if options.only and not (fnmatch.fnmatch(shown, options.only) or fnmatch.fnmatch(path.name, options.only)):
            continue
        matched += 1
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        except OSError as err:
            result.skipped.append(ItemResult(shown, "failed", error=f"cannot read {rel}: {_describe(err)}"))
            continue
        if stat.S_ISLNK(info.st_mode):
            result.skipped.append(ItemResult(shown, "skipped", "a symbolic link; not followed, left in place"))
            continue
        if not stat.S_ISREG(info.st_mode):
            result.skipped.append(ItemResult(shown, "skipped", "not a regular file; left in place"))
            continue
        if path.suffix.lower() not in FORMATS:
            result.skipped.append(ItemResult(shown, "skipped", f"not a transcript format ({path.suffix or 'none'})"))
            continue
        age = now - info.st_mtime
        if age < options.settle:
            wait = options.settle - max(age, 0.0)
            result.settles_in = wait if result.settles_in is None else min(result.settles_in, wait)
            result.skipped.append(
                ItemResult(
                    shown,
                    "skipped",
                    f"still being written (modified {age:.0f}s ago); next run",
                    fields={"path": rel, "settling": True},
                )
            )
            continue
        result.candidates.append(Candidate(path, rel, shown, info.st_size, info.st_mtime_ns))
    if options.limit is not None:
        if options.limit <= 0 and result.candidates:
            result.why_empty = f"--limit {options.limit}: nothing to process"
        result.candidates = result.candidates[: max(options.limit, 0)]
    if not matched:
        if options.only:
            result.why_empty = f"--only {options.only!r} matched no file in {inbox_rel}/"
        else:
            result.why_empty = f"nothing waiting in {inbox_rel}/"
    hashed: list[Candidate] = []
    for candidate in result.candidates:
        try:
            candidate.content_hash = file_hash(candidate.path)
        except FileNotFoundError:
            result.skipped.append(ItemResult(candidate.name, "skipped", "gone from the inbox before it was read"))
            continue
        except OSError as err:
            error = f"cannot read {candidate.rel}: {_describe(err)}"
            result.skipped.append(ItemResult(candidate.name, "failed", error=error, fields={"path": candidate.rel}))
            continue
        hashed.append(candidate)
    result.candidates = hashed
    return result
