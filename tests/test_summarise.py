"""`summarizer summarise` against a misbehaving model server: every failure path the user can meet.

Each failure test checks the one-line message the user sees, the exit code, and that
nothing was written to the vault.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault, snapshot

TRANSCRIPT = """\
Alice Moreau: Thanks for joining. We need the Q3 budget locked this week.
Bob Chen: I'll send the revised forecast by Friday.
Alice Moreau: Great. Then we agreed to cut the travel budget by ten percent.
Bob Chen: Understood, I will tell the regional leads tomorrow.
"""

GOOD: dict[str, Any] = {
    "title": "Q3 budget review",
    "meeting_date": None,
    "note_type": "internal",
    "account": None,
    "account_category": None,
    "participants": ["Alice Moreau", "Bob Chen"],
    "summary": "Alice and Bob reviewed the Q3 budget and agreed to cut travel spending.",
    "action_items": [
        {
            "text": "Send the revised forecast",
            "owner": "Bob Chen",
            "due": "2026-03-06",
            "priority": "high",
            "evidence": "I'll send the revised forecast by Friday.",
        }
    ],
    "decisions": [
        {"text": "Cut the travel budget by 10%.", "evidence": "we agreed to cut the travel budget by ten percent"}
    ],
    "key_information": ["The Q3 budget must be locked this week."],
    "related": [],
}
NAME = "2026-03-02 - Budget review.txt"


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    return make_vault(tmp_path / "vault", 'owner = "Alice Moreau"\n', {f"Inbox/{NAME}": TRANSCRIPT})


def summarise(vault: Path, *extra: str) -> Any:
    return cli("summarise", vault / "Inbox" / NAME, "--vault", vault, *extra)


def notes(vault: Path) -> list[Path]:
    return sorted((vault / "Meetings").glob("*.md")) if (vault / "Meetings").exists() else []


def test_writes_note_and_prints_its_path(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.enqueue(fo.reply(GOOD, prompt_tokens=1200, cached_tokens=1024, completion_tokens=150))
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == vault / "Meetings" / "2026-03-02 - Q3 budget review.md"
    text = path.read_text(encoding="utf-8")
    assert "- [?] Send the revised forecast @Bob Chen 📅 2026-03-06 ⏫ #task #proposed" in text
    assert "source_ref: Inbox/2026-03-02 - Budget review.txt" in text
    assert (vault / "Inbox" / NAME).exists(), "the transcript stays where it is"
    assert "1200 tokens in (1024 cached), 150 out" in result.stderr


def test_request_shape_prompt_cache_order_and_strict_schema(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.enqueue(fo.reply(GOOD))
    assert summarise(vault).exit_code == 0
    (body,) = model_env.chat_requests()
    assert body["model"] == "test-model"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    system, user = (m["content"] for m in body["messages"])
    assert "Alice Moreau" in system and TRANSCRIPT.splitlines()[0] not in system
    assert "2026-03-02" not in system, "per-meeting values must not break the cacheable prefix"
    # transcript first, per-meeting details last
    assert user.index("Bob Chen: I'll send") < user.index("Date: 2026-03-02 (Monday)")
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 2048, "a quarter of an unknown model's 8k window is kept for the answer"


def test_out_dash_prints_note_and_writes_nothing(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.enqueue(fo.reply(GOOD))
    before = snapshot(vault)
    result = summarise(vault, "--out", "-")
    assert result.exit_code == 0
    assert result.stdout.startswith("---\ntype: internal\n")
    assert snapshot(vault) == before


def test_dry_run_counts_tokens_and_makes_no_call(vault: Path, model_env: FakeOpenAI) -> None:
    before = snapshot(vault)
    result = summarise(vault, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "prompt tokens:" in result.stdout and "calls: 1" in result.stdout
    tokens = int(result.stdout.split("prompt tokens: ")[1].split(";")[0].split()[0])
    assert 500 < tokens < 3000
    assert model_env.chat_requests() == []
    assert snapshot(vault) == before


def test_a_transcript_with_a_note_says_where_it_is_force_rewrites_it_and_new_writes_another(
    vault: Path, model_env: FakeOpenAI
) -> None:
    model_env.default = fo.reply(GOOD)
    first = Path(summarise(vault).stdout.strip())
    edited = first.read_text(encoding="utf-8") + "\n\nmy edits\n"
    first.write_text(edited, encoding="utf-8")

    again = summarise(vault)
    assert again.exit_code == 0, again.stderr
    assert Path(again.stdout.strip()) == first
    assert f"already summarised: {first}" in again.stderr
    assert notes(vault) == [first] and first.read_text(encoding="utf-8") == edited
    assert f"already summarised: {first}" in summarise(vault, "--dry-run").stdout

    forced = summarise(vault, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert Path(forced.stdout.strip()) == first
    assert "my edits" not in first.read_text(encoding="utf-8")
    backups = list((vault / ".summarizer" / "backups").rglob("*.md"))
    assert [b.read_text(encoding="utf-8") for b in backups] == [edited]
    assert "previous note kept at" in forced.stderr
    assert notes(vault) == [first]

    second = Path(summarise(vault, "--new").stdout.strip())
    assert second.name == "2026-03-02 - Q3 budget review (2).md"
    assert notes(vault) == sorted([first, second])
    assert len(model_env.chat_requests()) == 1, "same transcript, same prompts, same model: answered from cache"


def test_a_note_that_was_renamed_and_moved_is_still_found(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.default = fo.reply(GOOD)
    first = Path(summarise(vault).stdout.strip())
    moved = vault / "Archive" / "2026" / "Budget, renamed.md"
    moved.parent.mkdir(parents=True)
    first.rename(moved)
    # The same words under another name are the same transcript.
    copy = vault / "Inbox" / "budget copy.txt"
    copy.write_text(TRANSCRIPT, encoding="utf-8")

    again = cli("summarise", copy, "--vault", vault)

    assert again.exit_code == 0, again.stderr
    assert f"already summarised: {moved}" in again.stderr
    assert notes(vault) == [] and len(model_env.chat_requests()) == 1
    with sqlite3.connect(vault / ".summarizer" / "state.db") as db:
        assert db.execute("SELECT note_path FROM notes").fetchall() == [("Archive/2026/Budget, renamed.md",)]


def test_force_cannot_rewrite_the_note_at_another_place(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.default = fo.reply(GOOD)
    first = Path(summarise(vault).stdout.strip())
    before = snapshot(vault)
    refused = summarise(vault, "--force", "--out", str(vault / "Elsewhere.md"))
    assert refused.exit_code == 2
    assert "already summarised in Meetings/2026-03-02 - Q3 budget review.md" in refused.stderr
    assert snapshot(vault) == before and first.exists()


def test_a_running_inbox_holds_summarise_off(vault: Path, model_env: FakeOpenAI) -> None:
    from summarizer.vault import Vault
    from summarizer.vaultlock import vault_lock

    model_env.default = fo.reply(GOOD)
    before = snapshot(vault)
    with vault_lock(Vault.open(vault), wait=False):
        held = summarise(vault)
        printed = summarise(vault, "--out", "-")  # writes nothing, so needs no lock
    assert held.exit_code == 2
    assert "another summarizer run holds the vault lock" in held.stderr and "--wait" in held.stderr
    assert printed.exit_code == 0 and printed.stdout.startswith("---\n")
    assert snapshot(vault) == before


def test_an_unlinkable_file_name_is_warned_about(tmp_path: Path, model_env: FakeOpenAI) -> None:
    name = "2026-03-02 - a|b pipe.txt"
    vault = make_vault(tmp_path / "vault", "", {f"Inbox/{name}": TRANSCRIPT})
    model_env.default = fo.reply(GOOD)
    result = cli("summarise", vault / "Inbox" / name, "--vault", vault)
    assert result.exit_code == 0, result.stderr
    assert f"warning: {name}: Obsidian cannot link a file name with" in result.stderr
    assert Path(result.stdout.strip()).is_file()
    plain = cli("summarise", vault / "Inbox" / name, "--vault", vault, "--out", "-")
    assert "warning" not in plain.stderr, "nothing is written, so nothing will link to it"


def test_out_outside_vault_is_refused(vault: Path, model_env: FakeOpenAI, tmp_path: Path) -> None:
    model_env.enqueue(fo.reply(GOOD))
    result = summarise(vault, "--out", str(tmp_path / "elsewhere.md"))
    assert result.exit_code == 2
    assert "--out must be inside the vault" in result.stderr
    assert not (tmp_path / "elsewhere.md").exists()


@pytest.mark.parametrize(
    "misbehaviour",
    [
        pytest.param(fo.rate_limited(0.01), id="429-retry-after"),
        pytest.param(fo.rate_limited(0.01, ms=True), id="429-retry-after-ms"),
        pytest.param(fo.server_error(500), id="500"),
        pytest.param(fo.server_error(503), id="503"),
        pytest.param(fo.drop_connection(), id="dropped-connection"),
    ],
)
def test_transient_errors_are_retried(vault: Path, model_env: FakeOpenAI, misbehaviour: fo.Behaviour) -> None:
    model_env.enqueue(misbehaviour, fo.reply(GOOD))
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    assert len(model_env.chat_requests()) == 2
    assert len(notes(vault)) == 1


@pytest.mark.parametrize(
    ("misbehaviour", "expected"),
    [
        pytest.param(fo.rate_limited(0.01), "rate limited by the model server (429) after 2 retries", id="429"),
        pytest.param(fo.server_error(500), "the model server failed (500) after 2 retries", id="500"),
        pytest.param(fo.drop_connection(), "could not reach the model server", id="dropped"),
    ],
)
def test_persistent_transport_errors_fail_cleanly(
    vault: Path, model_env: FakeOpenAI, misbehaviour: fo.Behaviour, expected: str
) -> None:
    model_env.default = misbehaviour
    before = snapshot(vault)
    result = summarise(vault)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and NAME in line and expected in line
    assert len(model_env.chat_requests()) == 3
    assert snapshot(vault) == before


@pytest.mark.parametrize(
    ("bad", "hint"),
    [
        pytest.param(fo.invalid_json(), "Reply again with ONE JSON object", id="invalid-json"),
        pytest.param(fo.schema_violation({**GOOD, "action_items": "none"}), "action_items", id="schema"),
        pytest.param(fo.refusal(), "You declined", id="refusal"),
        pytest.param(fo.truncated(), "cut off at the output token limit", id="truncated"),
        pytest.param(fo.content_filter(), "content filter", id="content-filter"),
    ],
)
def test_one_repair_attempt_tells_the_model_what_was_wrong(
    vault: Path, model_env: FakeOpenAI, bad: fo.Behaviour, hint: str
) -> None:
    model_env.enqueue(bad, fo.reply(GOOD))
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    first, second = model_env.chat_requests()
    assert hint in second["messages"][-1]["content"]
    if "truncated" in repr(bad).lower() or hint.startswith("cut off"):
        assert second["max_tokens"] == 2 * first["max_tokens"]
    assert len(notes(vault)) == 1


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        pytest.param(fo.invalid_json(), "unusable twice", id="invalid-json"),
        pytest.param(fo.schema_violation({"title": 3}), "unusable twice", id="schema"),
        pytest.param(fo.refusal("No."), "refusal: No.", id="refusal"),
        pytest.param(fo.truncated(), "truncated", id="truncated"),
    ],
)
def test_second_bad_answer_is_a_clear_error_and_nothing_is_written(
    vault: Path, model_env: FakeOpenAI, bad: fo.Behaviour, expected: str
) -> None:
    model_env.default = bad
    before = snapshot(vault)
    result = summarise(vault)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert NAME in line and expected in line and "no note written" in line
    assert len(model_env.chat_requests()) == 2
    assert snapshot(vault) == before


def test_unsupported_response_format_falls_back_and_is_remembered(vault: Path, model_env: FakeOpenAI) -> None:
    strict_refused = fo.bad_request(
        "Invalid schema for response_format 'MeetingExtraction': 'default' is not permitted.", "response_format"
    )
    model_env.enqueue(strict_refused, fo.reject_response_format("json_schema"), fo.reply(GOOD))
    assert summarise(vault).exit_code == 0
    kinds = [r.get("response_format", {}).get("type") for r in model_env.chat_requests()]
    assert kinds == ["json_schema", "json_schema", "json_object"], "json_schema refused as a type: on to json_object"
    schema_request = model_env.chat_requests()[1]
    assert schema_request["response_format"]["json_schema"]["strict"] is False
    assert '"properties"' in model_env.chat_requests()[2]["messages"][0]["content"], "schema moves into the prompt"
    # the next run starts from what worked
    (vault / "Inbox" / "2026-03-03 - Other.txt").write_text(TRANSCRIPT + "Bob Chen: One more thing.\n")
    model_env.enqueue(fo.reply(GOOD))
    assert cli("summarise", vault / "Inbox" / "2026-03-03 - Other.txt", "--vault", vault).exit_code == 0
    assert model_env.chat_requests()[-1]["response_format"]["type"] == "json_object"
    assert len(model_env.chat_requests()) == 4


def test_fenced_json_without_response_format_is_accepted(vault: Path, model_env: FakeOpenAI) -> None:
    for _ in range(3):
        model_env.enqueue(fo.reject_response_format())
    model_env.enqueue(fo.reply("Here you go:\n```json\n" + json.dumps(GOOD) + "\n```"))
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    assert "response_format" not in model_env.chat_requests()[-1]


def test_bad_api_key_is_a_configuration_error(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.api_key = "sk-the-right-one"
    result = summarise(vault)
    assert result.exit_code == 2
    assert "rejected the API key (401)" in result.stderr and "OPENAI_API_KEY" in result.stderr
    assert "sk-test-secret-key-123" not in result.stderr


def test_no_model_and_openai_engine_says_exactly_what_to_set(vault: Path) -> None:
    result = summarise(vault, "--engine", "openai")
    assert result.exit_code == 2
    assert "SUMMARIZER_MODEL" in result.stderr and "OPENAI_API_KEY" in result.stderr


def test_no_model_falls_back_to_offline_engine_with_a_notice(vault: Path) -> None:
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    assert "no model configured, using the offline engine" in result.stderr
    assert Path(result.stdout.strip()).is_file()


def test_secret_never_reaches_notes_logs_or_state(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.enqueue(fo.server_error(500), fo.reply(GOOD))
    assert summarise(vault).exit_code == 0
    cfg = cli("config", "--vault", vault)
    assert "sk-test-secret-key-123" not in cfg.stdout
    for path in vault.rglob("*"):
        if path.is_file():
            assert b"sk-test-secret-key-123" not in path.read_bytes(), path
    db = sqlite3.connect(vault / ".summarizer" / "state.db")
    assert db.execute("SELECT count(*) FROM calls").fetchone()[0] >= 1


def test_every_call_is_logged_with_usage(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.enqueue(fo.reply(GOOD, prompt_tokens=900, completion_tokens=120))
    assert summarise(vault).exit_code == 0
    db = sqlite3.connect(vault / ".summarizer" / "state.db")
    rows = db.execute("SELECT model, mode, prompt_tokens, completion_tokens, prompt_version FROM calls").fetchall()
    assert len(rows) == 1
    model, mode, prompt, completion, version = rows[0]
    assert (model, mode, prompt, completion) == ("test-model", "strict", 900, 120)
    assert len(version) == 12


def test_cost_uses_the_price_table_and_user_prices(vault: Path, model_env: FakeOpenAI) -> None:
    (vault / ".summarizer.toml").write_text(
        'owner = "Alice Moreau"\n[prices.test-model]\ninput = 1.0\ncached_input = 0.5\noutput = 2.0\n'
    )
    model_env.enqueue(fo.reply(GOOD, prompt_tokens=1_000_000, cached_tokens=500_000, completion_tokens=100_000))
    result = summarise(vault)
    assert "estimated cost $0.9500" in result.stderr  # 0.5M*1 + 0.5M*0.5 + 0.1M*2


def test_unreadable_transcript_is_one_line_naming_the_file(vault: Path) -> None:
    bad = vault / "Inbox" / "broken.txt"
    bad.write_bytes(b"\x00\x01\x02binary")
    result = cli("summarise", bad, "--vault", vault)
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"error: {bad}: looks like a binary file (contains NUL bytes), not a text transcript"


def test_missing_file(vault: Path) -> None:
    result = cli("summarise", vault / "Inbox" / "nope.txt", "--vault", vault)
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_transcript_path_relative_to_vault(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.enqueue(fo.reply(GOOD))
    result = cli("summarise", f"Inbox/{NAME}", "--vault", vault)
    assert result.exit_code == 0, result.stderr


def test_tiktoken_unavailable_warns_once_and_estimates(
    vault: Path, model_env: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "broken-tiktoken"
    cache.mkdir()
    (cache / "fb374d419588a4632f3f557e76b4b70aebbca790").write_bytes(b"corrupt")  # hash mismatch, no download
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    import tiktoken.registry

    from summarizer import tokens

    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.setattr(tokens, "_encoders", {})
    monkeypatch.setattr(tokens, "_failed", {})
    result = summarise(vault, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("could not be loaded") == 1
    assert "estimate: tiktoken encoding unavailable" in result.stdout


def test_unsupported_evidence_is_flagged_or_dropped(vault: Path, model_env: FakeOpenAI) -> None:
    invented = {
        **GOOD,
        "action_items": [
            *GOOD["action_items"],
            {**GOOD["action_items"][0], "text": "Buy a yacht", "evidence": "I will buy the company a yacht next year."},
        ],
        "decisions": [{"text": "Move to Mars.", "evidence": "We all agreed to relocate the office to Mars."}],
    }
    model_env.default = fo.reply(invented)
    result = summarise(vault)
    text = Path(result.stdout.strip()).read_text(encoding="utf-8")
    assert "- [?] Buy a yacht @Bob Chen 📅 2026-03-06 ⏫ #task #proposed #unverified" in text
    assert "- [?] Send the revised forecast @Bob Chen 📅 2026-03-06 ⏫ #task #proposed\n" in text
    assert "- Move to Mars. #unverified" in text
    assert "2 of 3 items have evidence not found" in result.stderr

    (vault / ".summarizer.toml").write_text('owner = "Alice Moreau"\nunsupported_evidence = "drop"\n')
    dropped = Path(summarise(vault, "--force").stdout.strip()).read_text(encoding="utf-8")
    assert "yacht" not in dropped and "Mars" not in dropped and "Send the revised forecast" in dropped


def test_vault_prompt_override_is_used_and_changes_the_version(vault: Path, model_env: FakeOpenAI) -> None:
    model_env.default = fo.reply(GOOD)
    assert summarise(vault, "--out", "-").exit_code == 0
    override = vault / ".summarizer" / "prompts" / "system.j2"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text("Custom house instructions for {{ owner }}.")
    assert summarise(vault, "--out", "-").exit_code == 0
    _, second = model_env.chat_requests()
    assert second["messages"][0]["content"].startswith("Custom house instructions for Alice Moreau.")
    db = sqlite3.connect(vault / ".summarizer" / "state.db")
    versions = {row[0] for row in db.execute("SELECT prompt_version FROM calls")}
    assert len(versions) == 2, "a changed template is a new prompt version (and a cache miss)"


def test_note_path_template_cannot_escape_the_vault(vault: Path, model_env: FakeOpenAI) -> None:
    (vault / ".summarizer.toml").write_text('note_path = "{title}/{date}/{title}.md"\n')
    model_env.enqueue(fo.reply({**GOOD, "title": "../../../etc/evil"}))
    result = summarise(vault)
    assert result.exit_code == 0, result.stderr
    written = Path(result.stdout.strip())
    assert written.resolve().is_relative_to(vault.resolve())
