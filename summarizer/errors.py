"""Errors the CLI turns into one-line messages and exit codes.

Every error names the file it is about, so a user running over a whole inbox
knows which transcript or note to look at.
"""

from __future__ import annotations

from pathlib import Path


class SummarizerError(Exception):
    """Base class: `str(err)` is the one line the user sees."""

    exit_code = 1

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = message
        super().__init__(f"{path}: {message}" if path is not None else message)

    def for_row(self, name: str) -> str:
        """The message for a report row that already names the file `name`: without it when it is that
        file's, with the file it concerns (a template set, a note) when it is another's."""
        return self.reason if self.path is not None and self.path.name == name else str(self)


class ConfigError(SummarizerError):
    """Bad or missing configuration, or bad command-line usage."""

    exit_code = 2


class TranscriptError(SummarizerError):
    """A transcript that cannot be read or holds no speech."""


class ModelError(SummarizerError):
    """The model could not produce a valid extraction."""


class VaultError(SummarizerError):
    """A write that would be unsafe: outside the vault, clobbering a note, a busy vault."""


class NoteParseError(SummarizerError):
    """A note that does not follow the vault's format closely enough to be read back."""
