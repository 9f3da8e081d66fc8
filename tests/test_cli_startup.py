"""The console script itself: installed, fast to start, and README's first command works."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python(code: str) -> str:
    """What a fresh interpreter prints running `code`."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys, summarizer.cli as c\n"
        "heavy = [m for m in ('openai', 'tiktoken', 'httpx2', 'rapidfuzz', 'rouge_score', 'summarizer.pipeline')"
        " if m in sys.modules]\n"
        "print(heavy)"
    )
    assert python(code) == "[]"


def test_readme_first_command_on_the_bundled_example(tmp_path: Path) -> None:
    """The example runs with no model configured (offline engine) and prints a vault note."""
    vault = tmp_path / "vault"
    shutil.copytree(ROOT / "examples" / "vault", vault, ignore=shutil.ignore_patterns(".summarizer"))
    script = Path(sys.executable).parent / "summarizer"
    transcript = vault / "Inbox" / "2026-03-02 - Website relaunch planning with Northwind.md"
    env = {"PATH": str(script.parent), "HOME": str(tmp_path), "SUMMARIZER_USER_CONFIG": str(tmp_path / "none")}
    out = subprocess.run(
        [str(script), "summarise", str(transcript), "--out", "-"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("---\ntype: ")
    assert "## Action Items" in out.stdout and "@Myself" in out.stdout
    assert "no model configured, using the offline engine" in out.stderr


def test_a_transcripts_way_to_its_request_imports_nothing_it_needs_only_later() -> None:
    """Every module on the way to the first request costs start-up time: these load after the answer."""
    code = (
        "import sys\n"
        "import summarizer.cli, summarizer.cli_inbox, summarizer.inbox, summarizer.pipeline, summarizer.engines\n"
        "import summarizer.llm, summarizer.reader, summarizer.linking, summarizer.notefind, summarizer.vault_index\n"
        "import summarizer.vaultlock, summarizer.runner, summarizer.templatesets, summarizer.store\n"
        "later = ('yaml', 'rich', 'filelock', 'ftfy', 'summarizer.grounding', 'summarizer.merge')\n"
        "print([m for m in later if m in sys.modules])"
    )
    assert python(code) == "[]"


def test_the_collector_runs_rarely_while_held_and_as_before_once_released() -> None:
    code = (
        "import gc\n"
        "from summarizer import collector\n"
        "before = gc.get_threshold()\n"
        "collector.hold(); held = gc.get_threshold()\n"
        "collector.release(); after = gc.get_threshold()\n"
        "collector.release()\n"
        "print(held[0] == collector.START_UP_THRESHOLD, after == before, gc.get_threshold() == before)"
    )
    assert python(code).split() == ["True", "True", "True"]
