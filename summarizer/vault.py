"""Everything that touches the vault's files.

Writes are atomic (temp file in the same folder, fsync, rename), never land
outside the vault, never clobber a note silently, and keep a backup when the
user forces an overwrite.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from summarizer.config import STATE_DIR, vault_folder
from summarizer.errors import VaultError
from summarizer.markdown import safe_filename
from summarizer.models import MeetingNote

MAX_SUFFIX = 999


@dataclass(frozen=True)
class Vault:
    root: Path

    @classmethod
    def open(cls, root: Path) -> Vault:
        """The vault at `root`; a missing folder or a file is a usage error (exit 2) naming it."""
        return cls(vault_folder(root).resolve())

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def contains(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.root)
        except ValueError:
            return False
        return True

    def relative(self, path: Path) -> str:
        """Vault-relative POSIX path (what notes and links use); absolute when outside the vault."""
        resolved = path.resolve()
        try:
            return resolved.relative_to(self.root).as_posix()
        except ValueError:
            return resolved.as_posix()

    def inside(self, relative: str | PurePosixPath) -> Path:
        """The absolute path of a vault-relative one; refuses anything that escapes the vault."""
        candidate = (self.root / str(relative)).resolve()
        if not self.contains(candidate):
            raise VaultError("path escapes the vault", str(relative))
        return candidate

    def note_path(self, template: str, note: MeetingNote) -> Path:
        """Where a note goes, from the path template (`Meetings/{date} - {title}.md`).

        Each folder and the file name are made safe separately, so a title can never
        add a folder or climb out of the vault.
        """
        date = note.date.isoformat() if note.date else "undated"
        fields = {
            "date": date,
            "year": note.date.strftime("%Y") if note.date else "undated",
            "month": note.date.strftime("%m") if note.date else "undated",
            "title": note.title,
            "account": note.account or "No account",
            "type": note.note_type,
            "source": note.source_name,
        }
        posix = template.replace("\\", "/")
        parts = [p for p in posix.split("/") if p not in ("", ".")]
        if posix.startswith("/") or ".." in parts:
            # Settings refuse such a template when they load; never remap one silently here.
            raise VaultError("note_path template must stay inside the vault", template)
        if not parts:
            raise VaultError("note_path template is empty", template)
        rendered: list[str] = []
        for index, part in enumerate(parts):
            try:
                text = part.format(**fields)
            except (KeyError, IndexError, ValueError, AttributeError) as err:
                raise VaultError(
                    f"note_path template has an unknown field {err}; known: {', '.join(fields)}", template
                ) from err
            last = index == len(parts) - 1
            if last:
                stem = text[:-3] if text.lower().endswith(".md") else text
                rendered.append(safe_filename(stem) + ".md")
            else:
                rendered.append(safe_filename(text, max_length=120))
        return self.inside("/".join(rendered))

    def free_path(self, path: Path) -> Path:
        """`path`, or `name (2).md`, `name (3).md`... when taken: notes are never overwritten silently."""
        if not path.exists():
            return path
        for n in range(2, MAX_SUFFIX + 1):
            candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
            if not candidate.exists():
                return candidate
        raise VaultError(f"more than {MAX_SUFFIX} notes with this name", path)

    def backup(self, path: Path) -> Path:
        """Copy a note under `.summarizer/backups/<timestamp>/` before it is overwritten."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        target = self.state_dir / "backups" / stamp / self.relative(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        return target

    def write_atomic(self, path: Path, text: str) -> None:
        if not self.contains(path):
            raise VaultError("refusing to write outside the vault", path)
        write_atomic(path, text)


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new temp file next to `path`, created as any new file is (mode 0o666 less the umask)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


def write_atomic(path: Path, text: str) -> None:
    """Write `text` so that a crash leaves either the old file or the new one, never half of one.

    A new file gets the mode the user's umask gives any new file; a file written over keeps its mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(handle.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
