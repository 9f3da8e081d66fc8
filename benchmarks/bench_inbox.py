"""How close `summarizer inbox` gets to the bound a provider's limits impose, and what a no-op re-run costs.

    python benchmarks/bench_inbox.py [--n 100] [--latency 0.25] [--archived 1000]

Builds a vault in a temp dir with N corpus-like transcripts (slices of `../shared/corpus/*.txt` when
present, else synthetic dialogue; generated at run time, nothing is copied into the repository) and
runs the real inbox command against the loopback OpenAI server in several scenarios: a server
concurrency cap with the client asking for twice as much (the adaptive limiter has to find the cap),
then RPM and TPM windows (compressed with `time_scale`). For each it prints the wall time next to the
ideal, i.e. the lower bound those limits impose, plus requests, 429s and tokens.

Then it fills a vault with `--archived` processed transcripts (notes and archive in place) and times a
re-run with nothing new, in-process and as a fresh `summarizer inbox` process, counting HTTP requests.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "TIKTOKEN_CACHE_DIR" not in os.environ and (ROOT.parent / "shared" / "tiktoken").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(ROOT.parent / "shared" / "tiktoken")

from summarizer.inbox import InboxOptions, run_inbox  # noqa: E402
from tests import fakeopenai as fo  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
TOPIC = re.compile(r"Meeting number (\d+)")
LINES_PER_TRANSCRIPT = 40


def corpus_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted(CORPUS.glob("*.txt")) if CORPUS.is_dir() else []:
        lines += [ln for ln in path.read_text(encoding="utf-8").splitlines() if ":" in ln[:40] and len(ln) > 20]
    if lines:
        return lines
    rng = random.Random(7)
    words = ["budget", "launch", "design", "review", "hiring", "roadmap", "customer", "pricing", "risk"]
    people = ["Alice Moreau", "Bob Chen", "Carla Diaz", "Dev Patel"]
    return [f"{rng.choice(people)}: " + " ".join(rng.choice(words) for _ in range(14)) for _ in range(4000)]


def make_inbox(vault: Path, n: int, start: int = 0) -> None:
    lines = corpus_lines()
    inbox = vault / "Inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        offset = (i * 37) % max(len(lines) - LINES_PER_TRANSCRIPT, 1)
        body = "\n".join(lines[offset : offset + LINES_PER_TRANSCRIPT])
        day = 1 + i % 28
        text = f"Alice Moreau: Meeting number {i} starts now.\n{body}\n"
        (inbox / f"2026-02-{day:02d} - meeting {i:04d}.txt").write_text(text, encoding="utf-8")


def new_vault(root: Path) -> Path:
    (root / ".obsidian").mkdir(parents=True)
    (root / ".summarizer.toml").write_text('owner = "Alice Moreau"\n', encoding="utf-8")
    return root


def answer(body: dict[str, Any]) -> fo.Behaviour:
    text = " ".join(str(m.get("content")) for m in body.get("messages", []))
    found = TOPIC.findall(text)
    title = f"Meeting {found[-1]}" if found else "Meeting"
    return fo.reply(
        {
            "title": title,
            "meeting_date": None,
            "note_type": "internal",
            "account": None,
            "account_category": None,
            "participants": ["Alice Moreau"],
            "summary": f"{title} was held.",
            "action_items": [],
            "decisions": [],
            "key_information": [],
            "related": [],
        },
        completion_tokens=300,
    )


@dataclass
class Scenario:
    name: str
    concurrency: int
    server_concurrency: int | None = None
    rpm: int | None = None
    tpm: int | None = None


@dataclass
class Measured:
    scenario: Scenario
    wall: float
    ideal: float
    requests: int
    rate_limited: int
    tokens_in: int
    tokens_out: int
    done: int
    failed: int


def ideal_seconds(s: Scenario, latency: float, window: float, requested: list[int]) -> float:
    """The bound the limits impose: admit each request at the earliest moment the concurrency cap
    (slots free `latency` after admission), the RPM window and the TPM window all allow, never
    wasting a slot or a retry; the answer is when the last request completes."""
    cap = min(s.concurrency, s.server_concurrency or s.concurrency)
    slots = [0.0] * cap  # when each slot is next free
    admitted: list[tuple[float, int]] = []
    for tokens in requested:
        slots.sort()
        t = slots[0]
        if s.rpm and len(admitted) >= s.rpm:
            t = max(t, admitted[-s.rpm][0] + window)
        if s.tpm:
            while sum(k for at, k in admitted if at > t - window) + tokens > s.tpm:
                t = min(at for at, _ in admitted if at > t - window) + window
        admitted.append((t, tokens))
        slots[0] = t + latency
    return max(slots)


def run_scenario(s: Scenario, n: int, latency: float, time_scale: float, work: Path) -> Measured:
    vault = new_vault(work / s.name.replace(" ", "-"))
    make_inbox(vault, n)
    with fo.FakeOpenAI() as fake:
        fake.default = fo.responder(answer)
        fake.latency = latency
        fake.time_scale = time_scale
        fake.max_concurrency = s.server_concurrency
        fake.rpm = s.rpm
        fake.tpm = s.tpm
        env = {
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "sk-bench",
            "SUMMARIZER_MODEL": "gpt-4o-mini",
            "SUMMARIZER_MAX_RETRIES": "8",
        }
        os.environ.update(env)
        started = time.perf_counter()
        report = run_inbox(vault, InboxOptions(concurrency=s.concurrency, settle=0))
        wall = time.perf_counter() - started
        admitted = [r.prompt_tokens_counted or 0 for r in fake.requests if r.response_status == 200]
        body_limits = [
            int((r.json or {}).get("max_completion_tokens") or (r.json or {}).get("max_tokens") or 0)
            for r in fake.requests
            if r.response_status == 200
        ]
        requested = [t + m for t, m in zip(admitted, body_limits, strict=True)]
        ideal = ideal_seconds(s, latency, 60 * time_scale, requested)
        return Measured(
            s,
            wall,
            ideal,
            fake.stats.requests,
            fake.stats.rate_limited,
            fake.stats.prompt_tokens,
            fake.stats.completion_tokens,
            report.count("done"),
            report.count("failed"),
        )


def noop_rerun(archived: int, work: Path) -> tuple[float, float, int, int]:
    """Process `archived` transcripts, then time a run with nothing new (in-process and as a CLI process)."""
    vault = new_vault(work / "archived")
    make_inbox(vault, archived)
    with fo.FakeOpenAI() as fake:
        fake.default = fo.responder(answer)
        os.environ.update({"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-bench"})
        report = run_inbox(vault, InboxOptions(concurrency=8, settle=0))
        assert report.count("done") == archived, report.to_dict()["totals"]
        before = len(fake.requests)
        started = time.perf_counter()
        again = run_inbox(vault, InboxOptions(concurrency=8, settle=0))
        in_process = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "summarizer.cli", "inbox", "--vault", str(vault), "--json"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
            capture_output=True,
        )
        process = time.perf_counter() - started
        assert again.count("done") == 0
        notes = sum(1 for _ in (vault / "Meetings").glob("*.md"))
        return in_process, process, len(fake.requests) - before, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="transcripts per scenario")
    parser.add_argument("--latency", type=float, default=1.0, help="server seconds per request")
    parser.add_argument("--time-scale", type=float, default=0.1, help="1 minute of RPM/TPM window = 60*scale s")
    parser.add_argument("--archived", type=int, default=1000, help="notes in place for the no-op re-run")
    args = parser.parse_args()
    n = args.n
    window = 60 * args.time_scale
    scenarios = [
        Scenario("concurrency cap 8, ask 8", 8, server_concurrency=8),
        Scenario("concurrency cap 8, ask 16", 16, server_concurrency=8),
        Scenario(f"rpm {n // 3} per {window:.0f}s", 8, rpm=n // 3),
        Scenario(f"tpm per {window:.0f}s, cap 8", 8, server_concurrency=8, tpm=120_000),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # Warm-up: imports, the tiktoken encoding and the first vault index are paid once per
        # process (about a second); the scenarios below measure the steady state.
        run_scenario(Scenario("warm-up", 8), 8, 0.0, args.time_scale, work)
        results = [run_scenario(s, n, args.latency, args.time_scale, work) for s in scenarios]
        print(f"\n{n} transcripts, server latency {args.latency}s, rate window {window:.1f}s\n")
        header = (
            f"{'scenario':<28} {'done':>4} {'fail':>4} {'wall s':>7} {'ideal s':>7} {'ratio':>6} "
            f"{'requests':>8} {'429s':>5} {'tokens in':>10} {'out':>7}"
        )
        print(header)
        print("-" * len(header))
        for m in results:
            print(
                f"{m.scenario.name:<28} {m.done:>4} {m.failed:>4} {m.wall:>7.2f} {m.ideal:>7.2f} "
                f"{m.wall / m.ideal:>6.2f} {m.requests:>8} {m.rate_limited:>5} {m.tokens_in:>10} {m.tokens_out:>7}"
            )
        in_process, process, calls, notes = noop_rerun(args.archived, work)
        print(f"\nre-run with nothing new, {notes} archived notes in the vault:")
        print(
            f"  in-process {in_process * 1000:.0f} ms, as a fresh CLI process {process * 1000:.0f} ms, "
            f"HTTP requests {calls}"
        )


if __name__ == "__main__":
    main()
