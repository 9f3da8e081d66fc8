"""The vault lock: one writing run (inbox, regenerate, watch) per vault at a time.

A second run exits 2 naming the holder's pid, or waits with --wait. Its own module so that every
command that writes can take it without importing another command.

Whoever takes the lock first removes the temp files a killed run left behind (`write_atomic`'s
`.<name>.<8 hex>.tmp`, older than the lock) in `.summarizer/` and in the folders of the notes we wrote.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from summarizer.errors import ConfigError, VaultError

if TYPE_CHECKING:
    from summarizer.vault import Vault

LOCK_NAME = "inbox.lock"
PID_NAME = "inbox.pid"
# What `vault.write_atomic` names its temp file next to `<name>`: `.<name>.<8 hex digits>.tmp`.
TEMP_FILE = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")


@contextmanager
def vault_lock(
    vault: Vault, wait: bool, on_wait: Callable[[str], None] | None = None, *, clean: bool = True
) -> Iterator[None]:
    """One writing run per vault: a second one exits 2 naming the holder, or waits with --wait.

    With `clean` (not for a dry run), stray temp files of killed runs are removed once it is held.
    """
    vault.state_dir.mkdir(parents=True, exist_ok=True)
    lock = _FileLock(vault.state_dir / LOCK_NAME)
    pid_file = vault.state_dir / PID_NAME
    if not lock.acquire(blocking=False):
        holder = _read_pid(pid_file)
        if not wait:
            raise ConfigError(
                f"another summarizer run holds the vault lock (pid {holder}); "
                "let it finish or pass --wait to queue behind it"
            ) from None
        if on_wait is not None:
            on_wait(f"waiting for the vault lock held by pid {holder}")
        lock.acquire(blocking=True)
    try:
        acquired = time.time()
        from summarizer.vault import write_atomic

        write_atomic(pid_file, str(os.getpid()))  # over any stale pid (a killed run's), never through a link
        # Holding the lock, no other run of ours is writing: a temp file from before now is a killed run's.
        if clean:
            remove_stray_temp_files([vault.state_dir, *_note_folders(vault)], before=acquired)
        yield
    finally:
        if _read_pid(pid_file) == str(os.getpid()):
            pid_file.unlink(missing_ok=True)  # released: no pid file to name a process that has gone
        lock.release()


class _FileLock:
    """An exclusive lock on a file, held by this process until released. On POSIX it is `fcntl.flock`,
    which is what filelock's `UnixFileLock` does too (so runs of older versions, and filelock users,
    see the same lock), without the 25-30 ms filelock's import adds to every writing command's start;
    elsewhere (Windows) it is filelock's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._other: Any = None

    def acquire(self, *, blocking: bool) -> bool:
        """Take the lock, waiting for it when `blocking`; whether it was taken."""
        try:
            import fcntl
        except ImportError:
            return self._acquire_elsewhere(blocking)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as err:
            raise VaultError(f"cannot open the vault lock: {err.strerror or err}", self.path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                return False  # held by another process
            if err.errno == errno.ENOSYS:
                return self._acquire_elsewhere(blocking)  # a file system without flock: filelock's soft lock
            raise VaultError(f"cannot take the vault lock: {err.strerror or err}", self.path) from None
        except BaseException:  # interrupted while waiting (Ctrl-C with --wait)
            os.close(fd)
            raise
        self._fd = fd
        return True

    def _acquire_elsewhere(self, blocking: bool) -> bool:
        from filelock import FileLock, Timeout

        self._other = FileLock(str(self.path))
        try:
            self._other.acquire(timeout=-1 if blocking else 0)
        except Timeout:
            return False
        except OSError as err:
            self._other = None
            raise VaultError(f"cannot take the vault lock: {err.strerror or err}", self.path) from None
        return True

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        elif self._other is not None:
            self._other.release()
            self._other = None


def lock_holder(vault: Vault) -> str | None:
    """The pid of the live process holding the vault lock (a writing run now), else None."""
    pid = _read_pid(vault.state_dir / PID_NAME)
    return None if pid == "unknown" else pid


def _read_pid(path: Path) -> str:
    """The pid in the file when that process is still alive; else "unknown" (never a dead pid)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return "unknown"
    if not text.isdigit() or not _alive(int(text)):
        return "unknown"
    return text


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stray_temp_files(folders: Iterable[Path], before: float) -> list[Path]:
    """`write_atomic` temp files in these folders (not below them) last modified before `before`.

    Only regular files whose names match the temp pattern exactly are removed; a folder that is
    missing or unreadable is passed over. Returns what was removed.
    """
    removed: list[Path] = []
    for folder in dict.fromkeys(folders):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not TEMP_FILE.fullmatch(entry.name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_mtime < before:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except OSError:
                continue  # gone meanwhile, or not ours to remove: never fail the run over it
    return removed


def _note_folders(vault: Vault) -> list[Path]:
    """The folders of the notes the state store says we wrote (none before the first run)."""
    from summarizer.store import Store

    if not (vault.state_dir / "state.db").is_file():
        return []
    store = Store(vault.state_dir / "state.db")
    try:
        notes = store.note_paths_under("")
    finally:
        store.close()
    folders: list[Path] = []
    for rel in sorted({PurePosixPath(note).parent.as_posix() for note in notes}):
        try:
            folder = vault.inside(rel)  # resolved, and refused if it leads out of the vault
        except VaultError:
            continue
        if folder.is_dir():
            folders.append(folder)
    return folders
