"""Template sets per kind of meeting, through the CLI: what is sent, what is written, what is stale."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault, snapshot
from tests.test_summarise import GOOD, TRANSCRIPT

STANDUP = "one item per person who reported"  # from the standup preset's instructions
CUSTOMER = "the customer's requirements, pain points"  # from the customer-call preset
ONE_TO_ONE = "The summary follows the other person"  # from the one-to-one preset
RULES = """
[[templates.rules]]
set = "standup"
match = "name:*standup*"

[[templates.rules]]
set = "customer-call"
match = "folder:Inbox/Customers"
"""
TYPE_RULES = """
[[templates.rules]]
set = "one-to-one"
match = "type:people"

[[templates.rules]]
set = "customer-call"
match = "type:customer"
"""


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests write their inbox files just before the run: no waiting for them to settle."""
    monkeypatch.setenv("SUMMARIZER_INBOX_SETTLE", "0")


def vault_with(tmp_path: Path, config: str = "", files: dict[str, str] | None = None) -> Path:
    return make_vault(tmp_path / "vault", 'owner = "Alice Moreau"\n' + config, files)


def system_text(body: Any) -> str:
    return str(body["messages"][0]["content"])


def only_note(vault: Path) -> str:
    (note,) = sorted((vault / "Meetings").glob("*.md"))
    return note.read_text(encoding="utf-8")


def prompt_version(stderr: str) -> str:
    found = re.search(r"prompts (\S+):", stderr) or re.search(r"offline engine \((\S+)\)", stderr)
    assert found, stderr
    return found.group(1)


def test_template_flag_sends_the_sets_emphasis_and_keeps_the_base_format(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = vault_with(tmp_path, files={"Inbox/2026-03-02 - Budget review.txt": TRANSCRIPT})
    model_env.default = fo.reply(GOOD)
    plain = cli("summarise", vault / "Inbox/2026-03-02 - Budget review.txt", "--vault", vault, "--out", "-")
    result = cli("summarise", vault / "Inbox/2026-03-02 - Budget review.txt", "--vault", vault, "--template", "standup")
    assert plain.exit_code == 0 and result.exit_code == 0, result.stderr
    base, chosen = model_env.chat_requests()
    assert STANDUP not in system_text(base) and "Emphasis" not in system_text(base)
    assert STANDUP in system_text(chosen)
    assert system_text(chosen).startswith(system_text(base).rstrip()), "the base instructions stay, the set adds"
    assert base["messages"][1] == chosen["messages"][1], "the per-meeting user message is the same"
    assert "+" not in prompt_version(plain.stderr)
    assert prompt_version(result.stderr).startswith(prompt_version(plain.stderr) + "+standup.")
    note = only_note(vault)
    # The base format: same frontmatter, sections, Tasks line, Source and Related; one header line more.
    assert note.replace("**Meeting**: Stand-up\n", "") == plain.stdout.removesuffix("\n")
    assert "**Attendees**: Alice Moreau, Bob Chen\n**Meeting**: Stand-up\n" in note


def test_schema_in_prompt_mode_puts_the_emphasis_before_the_schema(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = vault_with(tmp_path, files={"Inbox/a.txt": TRANSCRIPT})
    model_env.enqueue(fo.reject_response_format("json_schema"), fo.reject_response_format("json_object"))
    model_env.default = fo.reply(GOOD)
    result = cli("summarise", vault / "Inbox/a.txt", "--vault", vault, "--template", "interview")
    assert result.exit_code == 0, result.stderr
    system = system_text(model_env.chat_requests()[-1])
    # The server refused structured output: the schema went into the prompt, after the set's emphasis.
    assert system.index("hiring interview") < system.index("Reply with ONE JSON object") < system.index('"$defs"')


def test_unknown_template_is_a_usage_error_naming_the_known_sets(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = vault_with(tmp_path, files={"Inbox/a.txt": TRANSCRIPT})
    before = snapshot(vault)
    result = cli("summarise", vault / "Inbox/a.txt", "--vault", vault, "--template", "retro")
    assert result.exit_code == 2
    assert "unknown template set 'retro'" in result.stderr
    assert "customer-call, interview, one-to-one, standup" in result.stderr
    assert model_env.chat_requests() == [] and snapshot(vault) == before


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[[templates.rules]]\nset = "retro"\nmatch = "name:*retro*"\n', "unknown template set 'retro'"),
        ('[[templates.rules]]\nset = "standup"\nmatch = "*standup*"\n', "match must be name:GLOB"),
        ('[[templates.rules]]\nset = "standup"\nmatch = "type:standup"\n', "type must be one of people"),
        ("[templates]\nrule = []\n", "templates"),
    ],
)
def test_bad_rules_are_refused_before_any_call(
    tmp_path: Path, model_env: FakeOpenAI, config: str, message: str
) -> None:
    vault = vault_with(tmp_path, config, {"Inbox/a.txt": TRANSCRIPT})
    result = cli("summarise", vault / "Inbox/a.txt", "--vault", vault)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "templates" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert model_env.chat_requests() == []
    inbox = cli("inbox", "--vault", vault)
    assert inbox.exit_code == 2 and message in inbox.stderr
    assert model_env.chat_requests() == []


def test_rules_choose_by_file_name_and_by_inbox_subfolder(tmp_path: Path, model_env: FakeOpenAI) -> None:
    files = {
        "Inbox/2026-03-02 - Daily standup.txt": "Bob Chen: standup words.\n" + TRANSCRIPT,
        "Inbox/Customers/2026-03-02 - Acme.txt": "Bob Chen: customer words.\n" + TRANSCRIPT,
        "Inbox/2026-03-02 - Budget review.txt": "Bob Chen: plain words.\n" + TRANSCRIPT,
    }
    vault = vault_with(tmp_path, RULES, files)

    def answer(body: Any) -> fo.Behaviour:
        user = str(body["messages"][1]["content"])
        kind = next(k for k in ("standup", "customer", "plain") if f"{k} words" in user)
        return fo.reply({**GOOD, "title": f"{kind} meeting"})

    model_env.default = fo.responder(answer)
    result = cli("inbox", "--vault", vault)
    assert result.exit_code == 0, result.stderr + result.stdout
    sent = {
        next(k for k in ("standup", "customer", "plain") if f"{k} words" in body["messages"][1]["content"]): body
        for body in model_env.chat_requests()
    }
    assert set(sent) == {"standup", "customer", "plain"}
    assert STANDUP in system_text(sent["standup"]) and CUSTOMER not in system_text(sent["standup"])
    assert CUSTOMER in system_text(sent["customer"]) and STANDUP not in system_text(sent["customer"])
    assert "Emphasis" not in system_text(sent["plain"])
    notes = {p.name: p.read_text(encoding="utf-8") for p in (vault / "Meetings").glob("*.md")}
    assert "**Meeting**: Stand-up" in notes["2026-03-02 - standup meeting.md"]
    assert "**Meeting**: Customer call" in notes["2026-03-02 - customer meeting.md"]
    assert "**Meeting**" not in notes["2026-03-02 - plain meeting.md"]


@pytest.mark.parametrize(
    ("note_type", "meeting_line"),
    [("people", "**Meeting**: One-to-one"), ("customer", "**Meeting**: Customer call"), ("internal", None)],
)
def test_type_rules_ask_per_detected_type_and_pick_the_note_template(
    tmp_path: Path, model_env: FakeOpenAI, note_type: str, meeting_line: str | None
) -> None:
    vault = vault_with(tmp_path, TYPE_RULES, {"Inbox/a.txt": TRANSCRIPT})
    model_env.enqueue(fo.reply({**GOOD, "note_type": note_type, "account": "Bob Chen"}))
    result = cli("summarise", vault / "Inbox/a.txt", "--vault", vault)
    assert result.exit_code == 0, result.stderr
    (body,) = model_env.chat_requests()
    system = system_text(body)
    # Both type rules' emphasis travel in the one call, each for its note_type.
    assert '<emphasis note_type="people">' in system and ONE_TO_ONE in system
    assert '<emphasis note_type="customer">' in system and CUSTOMER in system
    assert "+@type." in prompt_version(result.stderr)
    note = only_note(vault)
    if meeting_line:
        assert meeting_line in note
    else:
        assert "**Meeting**" not in note
    assert f"type: {note_type}\n" in note


def test_a_name_rule_beats_type_rules(tmp_path: Path, model_env: FakeOpenAI) -> None:
    config = TYPE_RULES + '[[templates.rules]]\nset = "standup"\nmatch = "name:*standup*"\n'
    vault = vault_with(tmp_path, config, {"Inbox/team standup.txt": TRANSCRIPT})
    model_env.enqueue(fo.reply({**GOOD, "note_type": "people", "account": "Bob Chen"}))
    result = cli("summarise", vault / "Inbox/team standup.txt", "--vault", vault)
    assert result.exit_code == 0, result.stderr
    system = system_text(model_env.chat_requests()[0])
    assert STANDUP in system and "<emphasis" not in system
    assert "**Meeting**: Stand-up" in only_note(vault)


def test_vault_sets_add_and_replace_presets(tmp_path: Path, model_env: FakeOpenAI) -> None:
    files = {
        "Inbox/a.txt": TRANSCRIPT,
        ".summarizer/templates/retro/set.toml": (
            'description = "Retrospective"\ninstructions = "Ask {{ owner }} what went well and what did not."\n'
        ),
        ".summarizer/templates/retro/note.md.j2": "---\n{{ frontmatter }}---\n\n# Retro: {{ title }}\n",
        ".summarizer/templates/standup/set.toml": 'instructions = "Our own stand-up rules."\n',
    }
    vault = vault_with(tmp_path, "", files)
    model_env.default = fo.reply(GOOD)
    retro = cli("summarise", vault / "Inbox/a.txt", "--vault", vault, "--template", "retro", "--out", "-")
    standup = cli("summarise", vault / "Inbox/a.txt", "--vault", vault, "--template", "standup", "--out", "-")
    assert retro.exit_code == 0 and standup.exit_code == 0, retro.stderr + standup.stderr
    first, second = model_env.chat_requests()
    assert "Ask Alice Moreau what went well" in system_text(first)
    assert "# Retro: Q3 budget review\n" in retro.stdout
    assert "Our own stand-up rules." in system_text(second) and STANDUP not in system_text(second)
    assert "**Meeting**" not in standup.stdout, "the vault's set has no label: the base template as is"
    bad = cli("summarise", vault / "Inbox/a.txt", "--vault", vault, "--template", "nope")
    assert bad.exit_code == 2 and "known: customer-call, interview, one-to-one, retro, standup" in bad.stderr


def test_regenerate_stale_finds_notes_whose_set_changed_and_keeps_their_set(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    config = '[[templates.rules]]\nset = "weekly"\nmatch = "folder:Inbox/Weekly"\n'
    files = {
        "Inbox/Weekly/2026-03-02 - Budget review.txt": TRANSCRIPT,
        "Inbox/2026-03-03 - Other.txt": TRANSCRIPT.replace("Q3", "Q4"),
        ".summarizer/templates/weekly/set.toml": 'label = "Weekly"\ninstructions = "Weekly rules, first draft."\n',
    }
    vault = vault_with(tmp_path, config, files)

    def answer(body: Any) -> fo.Behaviour:
        quarter = "Q4" if "Q4" in str(body["messages"][1]["content"]) else "Q3"
        return fo.reply({**GOOD, "title": f"{quarter} budget review"})

    model_env.default = fo.responder(answer)
    assert cli("inbox", "--vault", vault).exit_code == 0
    weekly = vault / "Meetings/2026-03-02 - Q3 budget review.md"
    assert "**Meeting**: Weekly" in weekly.read_text(encoding="utf-8")
    nothing = cli("regenerate", "--stale", "--vault", vault, "--json")
    assert nothing.exit_code == 0 and json.loads(nothing.stdout)["items"] == []
    assert len(model_env.chat_requests()) == 2, "nothing stale: no call"

    (vault / ".summarizer/templates/weekly/set.toml").write_text(
        'label = "Weekly"\ninstructions = "Weekly rules, second draft."\n', encoding="utf-8"
    )
    result = cli("regenerate", "--stale", "--vault", vault, "--json")
    assert result.exit_code == 0, result.stderr
    assert [item["name"] for item in json.loads(result.stdout)["items"]] == [weekly.relative_to(vault).as_posix()]
    (body,) = model_env.chat_requests()[2:]
    # The transcript is archived now (its Inbox/Weekly folder is gone): the recorded set is kept.
    assert "Weekly rules, second draft." in system_text(body)
    assert "**Meeting**: Weekly" in weekly.read_text(encoding="utf-8")
    again = cli("regenerate", "--stale", "--vault", vault, "--json")
    assert json.loads(again.stdout)["items"] == [] and len(model_env.chat_requests()) == 3


def test_offline_engine_follows_the_sets_note_template(tmp_path: Path) -> None:
    vault = vault_with(tmp_path, RULES, {"Inbox/2026-03-02 - Daily standup.txt": TRANSCRIPT})
    plain = cli(
        "summarise",
        vault / "Inbox/2026-03-02 - Daily standup.txt",
        "--vault",
        vault,
        "--out",
        "-",
        "--template",
        "standup",
        "--engine",
        "offline",
    )
    assert plain.exit_code == 0, plain.stderr
    assert "**Meeting**: Stand-up" in plain.stdout
    assert "+standup." in prompt_version(plain.stderr)
    by_rule = cli("summarise", vault / "Inbox/2026-03-02 - Daily standup.txt", "--vault", vault, "--engine", "offline")
    assert by_rule.exit_code == 0, by_rule.stderr
    assert "**Meeting**: Stand-up" in only_note(vault)
    other = cli(
        "summarise",
        vault / "Inbox/2026-03-02 - Daily standup.txt",
        "--vault",
        vault,
        "--out",
        "-",
        "--engine",
        "offline",
        "--template",
        "interview",
    )
    assert "**Meeting**: Interview" in other.stdout
    assert prompt_version(other.stderr) != prompt_version(plain.stderr)


def test_dry_run_names_the_set_a_transcript_would_get(tmp_path: Path, model_env: FakeOpenAI) -> None:
    files = {"Inbox/2026-03-02 - Daily standup.txt": TRANSCRIPT, "Inbox/2026-03-02 - Budget.txt": TRANSCRIPT}
    vault = vault_with(tmp_path, RULES, files)
    chosen = cli("summarise", vault / "Inbox/2026-03-02 - Daily standup.txt", "--vault", vault, "--dry-run")
    plain = cli("summarise", vault / "Inbox/2026-03-02 - Budget.txt", "--vault", vault, "--dry-run")
    assert chosen.exit_code == 0 and plain.exit_code == 0, chosen.stderr + plain.stderr
    assert "template set: standup" in chosen.stdout and "template set" not in plain.stdout
    tokens = [re.findall(r"prompt tokens: (\d+)", r.stdout) for r in (chosen, plain)]
    assert int(tokens[0][0]) > int(tokens[1][0]), "the set's instructions are counted"
    assert model_env.chat_requests() == []


@pytest.mark.parametrize(
    ("path", "text", "message"),
    [
        ("retro/set.toml", 'instructions = "Ask {{ owner"\n', "template error"),
        ("retro/set.toml", 'instructions = "Ask {{ title }}"\n', "'title' is undefined"),
        ("retro/set.toml", 'description = "x"\n', "'instructions' is missing"),
        ("retro/set.toml", 'instructions = "x"\ncolour = "red"\n', "unknown key 'colour'"),
        ("Retro/set.toml", 'instructions = "x"\n', "folder name must be lowercase"),
    ],
)
def test_a_broken_vault_set_is_a_config_error_naming_its_file(
    tmp_path: Path, model_env: FakeOpenAI, path: str, text: str, message: str
) -> None:
    vault = vault_with(tmp_path, "", {"Inbox/a.txt": TRANSCRIPT, f".summarizer/templates/{path}": text})
    result = cli("summarise", vault / "Inbox/a.txt", "--vault", vault, "--template", "standup")
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and ".summarizer/templates/" in result.stderr
    assert model_env.chat_requests() == []


def test_a_small_window_keeps_the_sets_emphasis_in_its_compact_prompt(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = vault_with(tmp_path, "context_window = 4096\n", {"Inbox/2026-03-02 - Budget review.txt": TRANSCRIPT})
    model_env.default = fo.reply(GOOD)
    plain = cli("summarise", vault / "Inbox/2026-03-02 - Budget review.txt", "--vault", vault, "--out", "-")
    result = cli("summarise", vault / "Inbox/2026-03-02 - Budget review.txt", "--vault", vault, "--template", "standup")
    assert plain.exit_code == 0 and result.exit_code == 0, result.stderr
    base, chosen = model_env.chat_requests()
    assert len(system_text(base)) < 4000, "a 4k window gets the compact system prompt"
    assert STANDUP not in system_text(base) and STANDUP in system_text(chosen)


def test_a_set_broken_while_a_run_is_open_fails_its_transcripts_not_the_run(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    """`watch` keeps one run open for hours: a set file saved half-written must not stop it."""
    from summarizer.inbox import InboxOptions, InboxRun, open_pipeline
    from summarizer.vault import Vault

    vault = vault_with(tmp_path, "", {"Inbox/2026-03-02 - Budget review.txt": TRANSCRIPT})
    model_env.default = fo.reply(GOOD)
    options = InboxOptions(settle=0)
    pipeline, _ = open_pipeline(Vault.open(vault), options, lambda _line: None)
    try:
        (vault / ".summarizer/templates/retro").mkdir(parents=True)
        (vault / ".summarizer/templates/retro/set.toml").write_text('instructions = "Ask {{ owner"\n')
        run = InboxRun(pipeline, options)
        report = run.execute(run.prepare(run.scan().candidates), None)
    finally:
        pipeline.close()
    [item] = report.results
    assert item.status == "failed" and ".summarizer/templates/retro/set.toml" in str(item.error)
    assert model_env.chat_requests() == []


def test_a_dry_run_finds_a_set_transcripts_cached_extraction(tmp_path: Path, model_env: FakeOpenAI) -> None:
    """The cache is keyed with the set's prompts: a dry run must look there, as the real run will."""
    name = "2026-03-02 - Team standup.txt"
    vault = vault_with(tmp_path, RULES, {f"Inbox/{name}": TRANSCRIPT})
    model_env.default = fo.reply(GOOD)
    printed = cli("summarise", vault / "Inbox" / name, "--vault", vault, "--out", "-")  # extracts, writes nothing
    assert printed.exit_code == 0 and STANDUP in system_text(model_env.chat_requests()[0])
    plan = cli("inbox", "--vault", vault, "--dry-run", "--json")
    assert plan.exit_code == 0, plan.stderr
    [item] = json.loads(plan.stdout)["items"]
    assert item["detail"] == "would write the note from the cache (no call)"
    assert len(model_env.chat_requests()) == 1
