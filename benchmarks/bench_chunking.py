"""Long-meeting overhead: what splitting costs, per corpus transcript and context window.

    python benchmarks/bench_chunking.py [--corpus DIR] [--windows 8192,32768]
    python benchmarks/bench_chunking.py --latency 1.0 [--meeting icsi_Bmr005] [--windows 8192] [--slots 8]

Runs the real pipeline against the loopback OpenAI server (tests/fakeopenai.py) with a context
limit equal to the configured window, and prints per transcript: transcript tokens, parts, calls,
prompt tokens sent (as the server counted them) and the overhead ratio (sent / transcript).
Default corpus: ../shared/corpus when present, else tests/data/corpus.

With `--latency`, one meeting's wall time instead: the server answers after that many seconds and
admits `--slots` requests at once (429 beyond); `summarise` runs in this process (warm: no start-up)
with default settings except as each row says: how the parts are merged (`merge_parts`: `local`, the
default, joins them here; `model` sends one more request) and where the request limit comes from (the
`server_slots` setting, the server stating its slots on llama.cpp's `/props`, or nothing: a local
server that says nothing gets `concurrency`, default 4). The table gives parts, calls, the most
requests in flight, the wall time, and its ratio to one call (a meeting that fits) and to one round
per wave of requests the configuration needs at best.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
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


def wall_times(args: argparse.Namespace, windows: list[int]) -> None:
    """One long meeting against a slow server with a concurrency limit: how long its parts take."""
    path = next((p for p in corpus_files(args.corpus) if p.stem == args.meeting), None)
    if path is None:
        raise SystemExit(f"no transcript {args.meeting!r} in {args.corpus}")
    configs = [  # (merge_parts, where the request limit comes from)
        ("local", f"server_slots = {args.slots}"),
        ("local", "stated (/props)"),
        ("local", "none: concurrency 4"),
        ("model", f"server_slots = {args.slots}"),
    ]
    rows: list[tuple[int, str, str, int, int, int, int, float, int]] = []
    with fo.FakeOpenAI() as server, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            OPENAI_BASE_URL=server.base_url,
            OPENAI_API_KEY="bench",
            SUMMARIZER_MODEL="gpt-4o-mini",  # its tokenizer is known: the plan has no 15% margin
            SUMMARIZER_USER_CONFIG=str(Path(tmp) / "none.toml"),
        )
        server.default = fo.responder(answer)
        server.latency = args.latency
        server.max_concurrency = args.slots
        warm = Path(tmp) / "warm-up"  # untimed, in a vault of its own (its result is cached there)
        (warm / ".obsidian").mkdir(parents=True)
        (warm / ".summarizer.toml").write_text(f"context_window = {windows[0]}\n")
        pipeline = Pipeline.open(warm)
        try:
            pipeline.summarise(path, to_stdout=True)  # loads the tokenizer and the SDK
        finally:
            pipeline.close()
        for window in windows:
            for number, (merge, limit) in enumerate(configs):
                vault = Path(tmp) / f"vault-{window}-{number}"
                (vault / ".obsidian").mkdir(parents=True)
                setting = f"{limit}\n" if limit.startswith("server_slots") else ""
                (vault / ".summarizer.toml").write_text(
                    f'context_window = {window}\nmerge_parts = "{merge}"\n{setting}unsupported_evidence = "keep"\n'
                )
                server.context_limit = window
                server.server = "llama-server" if limit.startswith("stated") else "openai"
                server.slots = args.slots
                pipeline = Pipeline.open(vault)
                try:
                    transcript = pipeline.read(path)
                    parts = len(pipeline.plan(transcript).chunks)
                    before = len(server.requests)
                    server.stats.max_in_flight = 0
                    rejected = server.stats.limit_rejections
                    started = time.perf_counter()
                    pipeline.summarise(path, transcript=transcript, to_stdout=True)
                    wall = time.perf_counter() - started
                    slots = pipeline.engine.request_slots
                finally:
                    pipeline.close()
                calls = sum(r.path.endswith("/chat/completions") for r in server.requests[before:])
                rejected = server.stats.limit_rejections - rejected
                waves = -(-parts // min(slots, args.slots)) + (merge == "model")
                rows.append((window, merge, limit, parts, calls, server.stats.max_in_flight, rejected, wall, waves))
    print(
        f"{args.meeting}, server latency {args.latency:g} s, {args.slots} requests at once (429 beyond); "
        "summarise in-process, after an untimed run (no start-up, no tokenizer load)\n"
    )
    header = (
        f"{'window':>7} {'merge':>5} {'request limit from':<20} {'parts':>5} {'calls':>5} {'max in flight':>13} "
        f"{'429s':>4} {'wall s':>7} {'x one call':>10} {'rounds':>6} {'x rounds':>8}"
    )
    print(header)
    print("-" * len(header))
    for window, merge, limit, parts, calls, in_flight, rejected, wall, waves in rows:
        print(
            f"{window:>7} {merge:>5} {limit:<20} {parts:>5} {calls:>5} {in_flight:>13} {rejected:>4} {wall:>7.2f} "
            f"{wall / args.latency:>10.2f} {waves:>6} {wall / (waves * args.latency):>8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = SHARED / "corpus"
    parser.add_argument("--corpus", type=Path, default=default if default.is_dir() else ROOT / "tests/data/corpus")
    parser.add_argument("--windows", default=None, help="context windows (default 8192,32768; 8192 with --latency)")
    parser.add_argument("--latency", type=float, help="time one meeting against a server this slow (seconds)")
    parser.add_argument("--meeting", default="icsi_Bmr005", help="the corpus transcript --latency times")
    parser.add_argument("--slots", type=int, default=8, help="requests the server admits at once, with --latency")
    args = parser.parse_args()
    windows = [int(w) for w in (args.windows or ("8192" if args.latency else "8192,32768")).split(",")]
    if args.latency:
        wall_times(args, windows)
        return
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
