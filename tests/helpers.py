"""Small helpers for driving the real CLI in tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from summarizer.cli import app


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def cli(*args: str | Path) -> Result:
    """Run `summarizer ARGS` in-process, exactly as the console script would."""
    runner = CliRunner()
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


def make_vault(root: Path, config: str = "", files: dict[str, str] | None = None) -> Path:
    (root / ".obsidian").mkdir(parents=True, exist_ok=True)
    (root / ".summarizer.toml").write_text(config, encoding="utf-8")
    for rel, text in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def copy_tree(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes below root, except the state store (for 'nothing was written')."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".summarizer/" not in p.relative_to(root).as_posix() + "/"
    }
