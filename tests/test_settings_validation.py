"""Every setting is checked when settings load, from every source, through the real CLI.

A bad value exits 2 with one line naming the setting, where it was set and what is allowed,
before any model call or file write; `summarizer config` shows the same line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakeopenai import FakeOpenAI
from tests.helpers import cli, make_vault, snapshot

TRANSCRIPT = "Alice Moreau: We lock the budget this week.\nBob Chen: I'll send the forecast by Friday.\n"
NAME = "2026-03-02 - Budget review.txt"


def vault_with(tmp_path: Path, config: str) -> Path:
    return make_vault(tmp_path / "vault", config, {f"Inbox/{NAME}": TRANSCRIPT})


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def assert_refused_before_anything(vault: Path, fake: FakeOpenAI, *args: str | Path) -> str:
    """The command exits 2 with one line, without a model call or a file written (not even state)."""
    before = snapshot(vault)
    result = cli(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    line = one_error_line(result.stderr)
    assert fake.requests == []
    assert snapshot(vault) == before
    assert not (vault / ".summarizer").exists()
    return line


BAD_VAULT_CONFIG = [
    ("timeout = -5", 'timeout = -5: timeout must be a number of seconds > 0 and <= 86400'),
    ("timeout = true", "timeout = true: timeout must be a number of seconds"),
    (
        'note_path = "{nope}.md"',
        'note_path = "{nope}.md": unknown field {nope} (known: {date}, {year}, {month}, {title}, '
        "{account}, {type}, {source})",
    ),
    ('note_path = "{title.upper}.md"', "unknown field {title.upper}"),
    ('note_path = "{title"', 'note_path = "{title": note_path is not a valid template'),
    ('note_path = "Meetings/"', "note_path must end with a file name"),
    ('note_path = "../outside/{title}.md"', "the note_path template must name a file inside the vault (no '..')"),
    ('note_path = "/tmp/{title}.md"', "the note_path template must name a file inside the vault: a path relative"),
    ('archive = "/tmp/archive"', "the archive setting must name a folder inside the vault: a path relative"),
    ('stub_folder = "../stubs"', "the stub_folder setting must name a folder inside the vault (no '..')"),
    ('inbox = "../outside"', "the inbox setting must name a folder inside the vault (no '..')"),
    ('inbox = ".summarizer/in"', "the inbox setting must name a folder inside the vault, not in .summarizer/"),
    ('archive = "Inbox"', "the archive must not be the inbox or hold it"),
    ("max_output_tokens = 0", "max_output_tokens = 0: max_output_tokens must be a whole number of tokens >= 1"),
    ("concurrency = 0", "concurrency = 0: concurrency must be a whole number from 1 to 64"),
    ("concurrency = -1", "concurrency = -1: concurrency must be a whole number from 1 to 64"),
    ("concurrency = 2.5", "concurrency must be a whole number"),
    ("max_retries = -1", "max_retries must be a whole number from 0 to 20"),
    ("context_window = 100", "context_window must be a whole number of tokens >= 1024"),
    ("chunk_overlap = -3", "chunk_overlap must be a whole number of utterances from 0 to 100"),
    ("temperature = 5", "temperature must be a number from 0 to 2"),
    ('engine = "gpt"', "engine must be one of auto, openai, offline"),
    ('unsupported_evidence = "hide"', "unsupported_evidence must be one of flag, drop, keep"),
    ('model = " "', "model must not be empty"),
    ('base_url = "localhost:11434"', "base_url must be an http:// or https:// URL"),
    ('task_status = "??"', "task_status must be one character"),
    ('task_tags = "task"', "'task' is not a tag"),
    ('note_tags = ["#generated"]', "write frontmatter tags without '#'"),
    ('note_tags = ["1984"]', "'1984' is not a tag"),
    ('prices = {m = {input = -1, output = 1}}', "prices: m.input must be a number >= 0"),
    ('prices = {m = {input = 1}}', "prices: m.output is missing"),
]


@pytest.mark.parametrize(("config", "expected"), BAD_VAULT_CONFIG, ids=[c for c, _ in BAD_VAULT_CONFIG])
def test_a_bad_vault_setting_stops_summarise_and_config_with_the_same_line(
    tmp_path: Path, model_env: FakeOpenAI, config: str, expected: str
) -> None:
    vault = vault_with(tmp_path, config + "\n")
    line = assert_refused_before_anything(vault, model_env, "summarise", vault / "Inbox" / NAME, "--vault", vault)
    assert line.startswith(f"error: {vault / '.summarizer.toml'}: ")
    assert expected in line
    shown = cli("config", "--vault", vault)
    assert shown.exit_code == 2 and one_error_line(shown.stderr) == line


@pytest.mark.parametrize(
    "config", ["timeout = -5", 'inbox = "../outside"', 'stub_folder = "../stubs"', 'note_path = "{nope}.md"']
)
def test_a_bad_setting_stops_the_inbox_before_any_call_or_move(
    tmp_path: Path, model_env: FakeOpenAI, config: str
) -> None:
    vault = vault_with(tmp_path, config + "\n")
    before = snapshot(vault)
    result = cli("inbox", "--vault", vault)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert config.split(" = ")[0] in one_error_line(result.stderr)
    assert model_env.requests == [] and snapshot(vault) == before


def test_environment_values_are_named_by_their_variable(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = vault_with(tmp_path, "")
    monkeypatch.setenv("SUMMARIZER_TIMEOUT", "-5")
    line = assert_refused_before_anything(vault, model_env, "summarise", vault / "Inbox" / NAME, "--vault", vault)
    assert line == (
        "error: SUMMARIZER_TIMEOUT=-5 (environment): timeout must be a number of seconds > 0 and <= 86400"
    )
    monkeypatch.setenv("SUMMARIZER_TIMEOUT", "10")
    monkeypatch.setenv("SUMMARIZER_CONCURRENCY", "0")
    result = cli("inbox", "--vault", vault)
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == (
        "error: SUMMARIZER_CONCURRENCY=0 (environment): concurrency must be a whole number from 1 to 64"
    )
    monkeypatch.delenv("SUMMARIZER_CONCURRENCY")
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:8080/v1")
    result = cli("config", "--vault", vault)
    assert result.exit_code == 2
    assert one_error_line(result.stderr).startswith("error: OPENAI_BASE_URL=localhost:8080/v1 (environment): base_url")


def test_flags_are_named_as_typed(tmp_path: Path, model_env: FakeOpenAI) -> None:
    vault = vault_with(tmp_path, "")
    line = assert_refused_before_anything(
        vault, model_env, "summarise", vault / "Inbox" / NAME, "--vault", vault, "--model", " "
    )
    assert line == 'error: --model " " (flag): model must not be empty'


def test_a_bad_user_config_value_is_reported_even_when_a_higher_source_overrides_it(
    tmp_path: Path, model_env: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = tmp_path / "user.toml"
    user.write_text("concurrency = 0\n")
    monkeypatch.setenv("SUMMARIZER_USER_CONFIG", str(user))
    vault = vault_with(tmp_path, "concurrency = 2\n")
    line = assert_refused_before_anything(vault, model_env, "summarise", vault / "Inbox" / NAME, "--vault", vault)
    assert line == f"error: {user}: concurrency = 0: concurrency must be a whole number from 1 to 64"


def test_an_inbox_inside_the_default_archive_names_the_inbox_setting(tmp_path: Path) -> None:
    vault = vault_with(tmp_path, 'inbox = "Inbox/_archive/new"\n')
    result = cli("config", "--vault", vault)
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert line.startswith(f'error: {vault / ".summarizer.toml"}: inbox = "Inbox/_archive/new": ')
    assert 'archive = "Inbox/_archive"' in line


def test_good_values_load_and_paths_are_normalised(tmp_path: Path) -> None:
    config = (
        'inbox = "./Drop\\\\In/"\narchive = "Filed"\nstub_folder = ""\ntask_status = " "\n'
        'task_tags = "#task #team/ops"\nnote_tags = ["generated", "meeting/notes"]\ntimeout = 0.5\n'
        'note_path = "{year}/{month}/{date} {type} {account} {source} - {title}.md"\n'
        'base_url = "http://localhost:11434/v1"\nprices = {m = {input = 0.15, output = 0.6}}\n'
    )
    result = cli("config", "--vault", make_vault(tmp_path / "v", config))
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "  Drop/In  " in rows["inbox"]
    assert "  {year}/{month}/{date} {type} {account} {source} - {title}.md  " in rows["note_path"]


def test_every_note_path_field_renders(tmp_path: Path) -> None:
    fields = "{date} {year} {month} {title} {account} {type} {source}"
    vault = vault_with(tmp_path, f'note_path = "Notes/{fields}.md"\nengine = "offline"\n')
    result = cli("summarise", vault / "Inbox" / NAME, "--vault", vault)
    assert result.exit_code == 0, result.stderr
    written = Path(result.stdout.strip())
    assert written.parent == vault / "Notes"
    assert written.name.startswith("2026-03-02 2026 03 ") and "{" not in written.name
