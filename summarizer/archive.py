"""Moving transcripts into the archive: never over an existing file, never losing one.

`Archiver.move` hard-links the transcript at its archive name (which fails when the name is taken,
so nothing is ever overwritten), then removes the inbox entry; where hard links are impossible it
copies to a hidden temp file first. Names are claimed per run so two items never pick the same one.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from summarizer.errors import VaultError
from summarizer.noteformat import linkable_filename
from summarizer.vault import Vault

# Errors from os.link meaning "no hard link possible here", not "something is in the way".
NO_HARD_LINK = frozenset(
    getattr(errno, name)
    for name in ("EXDEV", "EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK", "ENOSYS")
    if hasattr(errno, name)
)


class Archiver:
    """Free names (on disk and not promised to another item of this run) and safe moves."""

    def __init__(self, vault: Vault, archive_rel: str) -> None:
        self.vault = vault
        self.archive_rel = archive_rel
        self._claims: set[Path] = set()
        self._claim_lock = threading.Lock()

    def claim(self, path: Path) -> Path:
        """`path`, else `name (2).ext`...: free on disk and not promised to another item of this run."""
        with self._claim_lock:
            candidate, n = path, 1
            while os.path.lexists(candidate) or candidate in self._claims:
                n += 1
                candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
            self._claims.add(candidate)
            return candidate

    def forget_claims(self) -> None:
        """Between batches: a claim only keeps two items of one batch off the same name."""
        with self._claim_lock:
            self._claims.clear()

    def at(self, rel: str | None) -> Path:
        """A journal path in the vault: its folders go through `vault.inside` (which refuses an
        escape), its last part is not resolved, so a symlink there is seen, never followed."""
        pure = PurePosixPath(rel or "")
        if not rel or pure.is_absolute() or ".." in pure.parts or pure.name in ("", "."):
            raise VaultError("not a path inside the vault", rel or "(none)")
        return self.vault.inside(pure.parent) / pure.name

    def rel(self, path: Path) -> str:
        """Vault-relative, without resolving the last part (paths here come from `vault.inside`)."""
        return path.relative_to(self.vault.root).as_posix()

    def target(self, source: Path) -> Path:
        """Where a transcript goes today: `<archive>/<YYYY-MM-DD>/<its name>`, claimed. A name a
        wikilink cannot point at (`a|b.txt`) is made linkable (`a b.txt`); the note keeps the original."""
        day = dt.date.today().isoformat()
        return self.claim(self.vault.inside(f"{self.archive_rel}/{day}") / linkable_filename(source.name))

    def move(self, source: Path, planned: Path, on_clash: Callable[[Path], None] | None = None) -> Path:
        """Move `source` into the archive at `planned`; returns where it went.

        Never over an existing file: a hard link fails when the name is taken, and then the next
        free name is claimed (`on_clash` journals it before anything lands there). Only once the
        archive holds the file is the inbox entry removed, so a kill in between leaves two names
        for one content, which recovery resolves. Where hard links are impossible (another
        device, some file systems) the file is copied to a hidden temp file first.
        """
        planned.parent.mkdir(parents=True, exist_ok=True)
        target, moving = planned, source
        try:
            while True:
                try:
                    linked = _place(moving, target)
                    break
                except FileExistsError:
                    target = self.claim(planned)
                    if on_clash is not None:
                        on_clash(target)
                except OSError as err:
                    if err.errno != errno.EXDEV or moving is not source:
                        raise
                    moving = _stage_copy(source, planned)
            fsync_dir(target.parent)
        finally:
            if moving is not source:
                moving.unlink(missing_ok=True)
        if linked or moving is not source:
            source.unlink()
        fsync_dir(source.parent)
        return target


def remove_temp_files(note: Path) -> None:
    """`write_atomic` temp files a kill left next to a planned note."""
    if note.parent.is_dir():
        for stray in note.parent.glob(f".{note.name}.*.tmp"):
            stray.unlink(missing_ok=True)


def _place(source: Path, target: Path) -> bool:
    """Give `source` the name `target`, never replacing a file there (FileExistsError instead).

    True when `source` was hard-linked (the caller removes it), False when it was renamed.
    """
    try:
        os.link(source, target, follow_symlinks=False)
        return True
    except FileExistsError:
        raise
    except OSError as err:
        if err.errno not in NO_HARD_LINK:
            raise
    # No hard links here: check, then rename (a file could only slip in during the instant between).
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "already exists", str(target))
    os.rename(source, target)
    return False


def _stage_copy(source: Path, planned: Path) -> Path:
    """A durable copy of `source` next to `planned` (for a move across devices), under a hidden name."""
    tmp = planned.with_name(f".{planned.name}.moving.tmp")
    tmp.unlink(missing_ok=True)  # a killed run's; never written through (it could be a link)
    with source.open("rb") as src, tmp.open("xb") as dst:
        shutil.copyfileobj(src, dst)
        dst.flush()
        os.fsync(dst.fileno())
    shutil.copystat(source, tmp)
    return tmp


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
