"""Golden cases: the real CLI, the loopback model server, byte-for-byte notes.

Each folder in golden/ is a case: `case.toml` (where the transcript sits in the
vault, vault settings, extra CLI args), the input transcript, `response.json`
(what the model answers), optional `vault/` files, and `expected.md`.
`pytest --update-golden` rewrites expected.md for review; nothing else does.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from summarizer.models import MeetingExtraction
from tests.fakeopenai import FakeOpenAI, reply
from tests.helpers import cli, copy_tree

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.toml").is_file())


def _toml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def build_case_vault(case_dir: Path, vault: Path) -> tuple[dict[str, Any], Path]:
    case = tomllib.loads((case_dir / "case.toml").read_text(encoding="utf-8"))
    (vault / ".obsidian").mkdir(parents=True)
    settings = case.get("settings", {})
    (vault / ".summarizer.toml").write_text(
        "".join(f"{key} = {_toml_value(value)}\n" for key, value in settings.items()), encoding="utf-8"
    )
    copy_tree(case_dir / "vault", vault)
    transcript = vault / case["transcript"]
    transcript.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(case_dir / case["input"], transcript)
    return case, transcript


@pytest.mark.parametrize("name", CASES)
def test_golden_case(name: str, tmp_path: Path, model_env: FakeOpenAI, update_golden: bool) -> None:
    case_dir = GOLDEN / name
    vault = tmp_path / "vault"
    case, transcript = build_case_vault(case_dir, vault)
    response = json.loads((case_dir / "response.json").read_text(encoding="utf-8"))
    MeetingExtraction.model_validate(response)  # the case itself must be a valid model answer
    model_env.enqueue(reply(response))

    result = cli("summarise", transcript, "--vault", vault, *case.get("args", []))
    assert result.exit_code == 0, result.stderr
    written = Path(result.stdout.strip())
    assert written == vault / case["expected_path"]
    actual = written.read_text(encoding="utf-8")
    expected_file = case_dir / "expected.md"
    if update_golden:
        if not expected_file.exists() or expected_file.read_text(encoding="utf-8") != actual:
            expected_file.write_text(actual, encoding="utf-8", newline="")
            print(f"updated {expected_file.relative_to(ROOT)}: review it with git diff")
        return
    assert actual == expected_file.read_text(encoding="utf-8")
    assert transcript.exists(), "summarise must leave the transcript where it is"
    assert len(model_env.chat_requests()) == 1


def test_reference_case_is_the_seed_note() -> None:
    """--update-golden must never drift the reference case away from the vault's own format."""
    seed = ROOT / "tests" / "data" / "seed" / "consistent-note.md"
    assert (GOLDEN / "reference-note" / "expected.md").read_bytes() == seed.read_bytes()
