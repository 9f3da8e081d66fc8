"""Token counting loads tiktoken only when a count can change a decision (summarizer.tokens)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from summarizer.tokens import TokenCounter
from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import make_vault

ROOT = Path(__file__).resolve().parent.parent
COUNTER = TokenCounter("gpt-4o-mini")
texts = st.text(min_size=0, max_size=300)


@settings(deadline=None)
@given(text=texts, limit=st.integers(min_value=0, max_value=400))
def test_count_at_most_decides_like_an_exact_count(text: str, limit: int) -> None:
    exact = COUNTER.count(text)
    bounded = COUNTER.count_at_most(text, limit)
    assert bounded >= exact
    assert (bounded <= limit) == (exact <= limit) == COUNTER.fits(text, limit)


@settings(deadline=None)
@given(
    messages=st.lists(st.fixed_dictionaries({"role": st.just("user"), "content": texts}), max_size=3),
    limit=st.integers(min_value=0, max_value=400),
)
def test_count_messages_at_most_decides_like_an_exact_count(messages: list[dict[str, str]], limit: int) -> None:
    exact = COUNTER.count_messages(messages)
    bounded = COUNTER.count_messages(messages, at_most=limit)
    assert bounded >= exact and (bounded <= limit) == (exact <= limit)


@settings(deadline=None)
@given(lines=st.lists(texts, max_size=30), limit=st.integers(min_value=0, max_value=600))
def test_running_cost_keeps_the_lines_exact_counting_keeps(lines: list[str], limit: int) -> None:
    def kept(cost: object) -> int:
        used = 0
        for index, line in enumerate(lines):
            step = cost(line)  # type: ignore[operator]
            if used + step > limit:
                return index
            used += step
        return len(lines)

    assert kept(COUNTER.running(limit)) == kept(COUNTER.count)


def run_cli(args: list[str], env: dict[str, str]) -> tuple[int, str, bool]:
    """Run the CLI in a fresh interpreter; report whether a tiktoken encoding was loaded (the 0.3 s, 84 MB step;
    importing the package to look up a model's encoding name costs ~12 ms)."""
    code = (
        "import sys\n"
        "from summarizer.cli import main\n"
        f"sys.argv = ['summarizer', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\nelse:\n    code = 0\n"
        "registry = sys.modules.get('tiktoken.registry')\n"
        "loaded = bool(registry and registry.ENCODINGS)\n"
        "print('TIKTOKEN-IMPORTED' if loaded else 'NO-TIKTOKEN', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    return out.returncode, out.stdout + out.stderr, "TIKTOKEN-IMPORTED" in out.stderr


@pytest.fixture
def short_meeting(tmp_path: Path) -> Path:
    vault = make_vault(tmp_path / "vault")
    (vault / "Inbox").mkdir()
    (vault / "Inbox" / "2026-03-02 - Sync.txt").write_text(
        "Alice Moreau: Let's ship the report on Friday.\nBob Chen: I will draft it by Thursday.\n", encoding="utf-8"
    )
    return vault


def cli_env(fake: FakeOpenAI, model: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SUMMARIZER_", "OPENAI_"))}
    return {
        **keep,
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-test",
        "SUMMARIZER_MODEL": model,
        "SUMMARIZER_USER_CONFIG": os.environ["SUMMARIZER_USER_CONFIG"],
    }


ANSWER = {
    "title": "Sync",
    "meeting_date": None,
    "note_type": "internal",
    "account": None,
    "account_category": None,
    "participants": ["Alice Moreau", "Bob Chen"],
    "summary": "The report ships on Friday.",
    "action_items": [],
    "decisions": [],
    "key_information": [],
    "related": [],
}


def test_a_transcript_far_below_the_window_loads_no_tokenizer(short_meeting: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.default = fo.reply(ANSWER)
    transcript = short_meeting / "Inbox" / "2026-03-02 - Sync.txt"
    code, output, imported = run_cli(
        ["summarise", str(transcript), "--vault", str(short_meeting)], cli_env(fake_openai, "gpt-4o-mini")
    )
    assert code == 0, output
    assert len(fake_openai.chat_requests()) == 1
    assert not imported, "the prompt's byte length fits a 128k window: no exact count needed"


def test_dry_run_still_counts_exactly(short_meeting: Path, fake_openai: FakeOpenAI) -> None:
    transcript = short_meeting / "Inbox" / "2026-03-02 - Sync.txt"
    code, output, imported = run_cli(
        ["summarise", str(transcript), "--vault", str(short_meeting), "--dry-run"], cli_env(fake_openai, "gpt-4o-mini")
    )
    assert code == 0, output
    assert imported and re.search(r"prompt tokens: \d+; input budget", output), output
    assert fake_openai.chat_requests() == []


def test_a_prompt_whose_bytes_exceed_the_budget_is_counted_exactly(
    short_meeting: Path, fake_openai: FakeOpenAI
) -> None:
    """An unknown model is assumed to have an 8k window: the instructions and schema alone are more
    bytes than its budget, so the count decides, and tiktoken loads (the prompt still fits in tokens)."""
    fake_openai.default = fo.reply(ANSWER)
    transcript = short_meeting / "Inbox" / "2026-03-02 - Sync.txt"
    code, output, imported = run_cli(
        ["summarise", str(transcript), "--vault", str(short_meeting)], cli_env(fake_openai, "local-model")
    )
    assert code == 0, output
    assert imported and len(fake_openai.chat_requests()) == 1
