"""What users expect of any CLI: --version, shell completion, flags that read as flags in --help."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.helpers import cli

SCRIPT = Path(sys.executable).parent / "summarizer"
COMMANDS = ("summarise", "config", "inbox", "regenerate", "eval")


def run_script(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "SHELL": "/bin/bash", **env}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=environ, cwd=home)


def test_version_prints_the_installed_version() -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"summarizer {version('summarizer')}"


@pytest.mark.parametrize("command", COMMANDS)
def test_boolean_flags_read_as_flags_in_help(command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert any(line.startswith("--help ") and "Show this message" in line for line in lines)


def test_summarise_help_shows_value_options_with_their_type() -> None:
    lines = [line.strip() for line in cli("summarise", "--help").stdout.splitlines()]
    assert any(line.startswith("--dry-run ") and "Say where the note would go" in line for line in lines)
    assert any(line.startswith("--template <str>") for line in lines)


def test_help_and_version_import_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from summarizer.cli import app\n"
        "for args in (['--help'], ['--version'], ['summarise', '--help']):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('openai', 'tiktoken', 'summarizer.pipeline') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_shell_completion_completes_commands_and_options(tmp_path: Path) -> None:
    commands = run_script(
        home=tmp_path, _SUMMARIZER_COMPLETE="complete_bash", COMP_WORDS="summarizer reg", COMP_CWORD="1"
    )
    assert commands.stdout.split() == ["regenerate"]
    options = run_script(
        home=tmp_path, _SUMMARIZER_COMPLETE="complete_bash", COMP_WORDS="summarizer summarise --te", COMP_CWORD="2"
    )
    assert options.stdout.split() == ["--template"]


def test_install_completion_writes_the_script_for_the_shell(tmp_path: Path) -> None:
    shown = run_script("--show-completion", "bash", home=tmp_path)
    assert shown.returncode == 0 and "_SUMMARIZER_COMPLETE" in shown.stdout
    installed = run_script("--install-completion", "bash", home=tmp_path)
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "summarizer.sh"
    assert script.read_text(encoding="utf-8").strip() == shown.stdout.strip()
    assert str(script) in (tmp_path / ".bashrc").read_text(encoding="utf-8")
