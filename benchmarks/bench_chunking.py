"""Long-meeting overhead: what splitting costs, per corpus transcript and context window.

    python benchmarks/bench_chunking.py [--corpus DIR] [--windows 8192,32768]

Runs the real pipeline against the loopback OpenAI server (tests/fakeopenai.py) with a context
limit equal to the configured window, and prints per transcript: transcript tokens, parts, calls,
prompt tokens sent (as the server counted them) and the overhead ratio (sent / transcript).
Default corpus: ../shared/corpus when present, else tests/data/corpus.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The shared folder sits beside the repository (or beside the folder of worktrees).
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared" / "corpus").is_dir()), ROOT.parent / "shared")
if "TIKTOKEN_CACHE_DIR" not in os.environ and (SHARED / "tiktoken").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED / "tiktoken")

from summarizer.models import MeetingExtraction, Transcript  # noqa: E402
from summarizer.pipeline import Pipeline  # noqa: E402
from summarizer.tokens import TokenCounter  # noqa: E402
from tests import fakeopenai as fo  # noqa: E402

TRANSCRIPT_SUFFIXES = (".txt", ".vtt", ".srt", ".json", ".md")


def answer(body: dict[str, Any]) -> fo.Behaviour:
    user = body["messages"][1]["content"]
    match = re.search(r"This is part (\d+)", user)
    label = f"part {match.group(1)}" if match else "whole"
    return fo.reply(
        MeetingExtraction(
            title=f"Meeting {label}",
            meeting_date=None,
            note_type="internal",
            account=None,
            account_category=None,
            participants=[],
            summary=f"Summary of {label}: " + "the group discussed progress and next steps. " * 4,
            action_items=[],
            decisions=[],
            key_information=[f"Point from {label}"],
            related=[],
        ).model_dump(),
        completion_tokens=200,
    )


def corpus_files(folder: Path) -> list[Path]:
    files = [
        p
        for p in sorted(folder.iterdir())
        if p.suffix in TRANSCRIPT_SUFFIXES and not p.name.endswith((".reference.json", "ATTRIBUTION.md", "README.md"))
    ]
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = SHARED / "corpus"
    parser.add_argument("--corpus", type=Path, default=default if default.is_dir() else ROOT / "tests/data/corpus")
    parser.add_argument("--windows", default="8192,32768")
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    counter = TokenCounter("test-model")
    rows: list[tuple[str, int, int, int, str, int, int, float]] = []
    with fo.FakeOpenAI() as server, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            OPENAI_BASE_URL=server.base_url,
            OPENAI_API_KEY="bench",
            SUMMARIZER_MODEL="test-model",
            SUMMARIZER_USER_CONFIG=str(Path(tmp) / "none.toml"),
        )
        server.default = fo.responder(answer)
        for window in windows:
            vault = Path(tmp) / f"vault-{window}"
            (vault / ".obsidian").mkdir(parents=True)
            (vault / ".summarizer.toml").write_text(f'context_window = {window}\nunsupported_evidence = "keep"\n')
            pipeline = Pipeline.open(vault)
            server.context_limit = window
            try:
                for path in corpus_files(args.corpus):
                    transcript = pipeline.read(path)
                    tokens = counter.count(transcript.as_text())
                    before = len(server.requests)
                    plan = pipeline.plan(transcript)
                    pipeline.summarise(path, transcript=transcript, to_stdout=True)
                    sent = [r for r in server.requests[before:] if r.path.endswith("/chat/completions")]
                    assert all(r.response_status == 200 for r in sent), f"{path.name}: a request failed"
                    total = sum(r.prompt_tokens_counted or 0 for r in sent)
                    parts = len(plan.chunks)
                    sizes = [counter.count(Transcript(utterances=c).as_text()) for c in plan.chunks]
                    spread = f"{min(sizes):,}-{max(sizes):,}" if parts > 1 else "-"
                    rows.append((path.name, window, tokens, parts, spread, len(sent), total, total / max(tokens, 1)))
            finally:
                pipeline.close()
    header = (
        f"{'transcript':<48} {'window':>7} {'tokens':>7} {'parts':>5} {'part tokens':>13} {'calls':>5} {'sent':>8} "
        f"{'overhead':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, window, tokens, parts, spread, calls, total, ratio in rows:
        print(f"{name[:48]:<48} {window:>7} {tokens:>7} {parts:>5} {spread:>13} {calls:>5} {total:>8} {ratio:>8.2f}")


if __name__ == "__main__":
    main()
