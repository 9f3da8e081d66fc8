"""The vault lock: one writing run (inbox, regenerate) per vault at a time.

A second run exits 2 naming the holder's pid, or waits with --wait. Its own module so that every
command that writes can take it without importing another command.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from summarizer.errors import ConfigError

if TYPE_CHECKING:
    from summarizer.vault import Vault

LOCK_NAME = "inbox.lock"
PID_NAME = "inbox.pid"


@contextmanager
def vault_lock(vault: Vault, wait: bool, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """One writing run per vault: a second one exits 2 naming the holder, or waits with --wait."""
    from filelock import FileLock, Timeout

    vault.state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(vault.state_dir / LOCK_NAME), timeout=0)
    pid_file = vault.state_dir / PID_NAME
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _read_pid(pid_file)
        if not wait:
            raise ConfigError(
                f"another summarizer run holds the vault lock (pid {holder}); "
                "let it finish or pass --wait to queue behind it"
            ) from None
        if on_wait is not None:
            on_wait(f"waiting for the vault lock held by pid {holder}")
        lock.acquire(timeout=-1)
    try:
        from summarizer.vault import write_atomic

        write_atomic(pid_file, str(os.getpid()))  # over any stale pid (a killed run's), never through a link
        yield
    finally:
        if _read_pid(pid_file) == str(os.getpid()):
            pid_file.unlink(missing_ok=True)  # released: no pid file to name a process that has gone
        lock.release()


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
