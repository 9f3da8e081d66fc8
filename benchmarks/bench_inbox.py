"""`summarizer inbox` as a user runs it, from a cold start, against a provider's concurrency limit.

    python benchmarks/bench_inbox.py [--sizes 1,16,100] [--runs 3] [--latency 1.0] [--slots 8]

For each size N and each run: a fresh temp vault (fresh state and caches) whose Inbox holds N whole
corpus transcripts (`../shared/corpus/*.txt`, cycled; each copy starts with its own header line so
the contents differ; `tests/data/corpus` when the shared corpus is absent), then `summarizer inbox
--concurrency SLOTS` as a new process against the loopback OpenAI server of `tests/fakeopenai.py`,
run in this process. The server answers after `--latency` seconds and admits at most `--slots`
requests at once, answering 429 with retry-after beyond that, as a provider's concurrency limit
does.

Columns:
- bound: the ideal time for the requests the transcripts really needed (from the run's `--json`
  report: 1 per transcript, or its parts then a merge): every request admitted the moment a slot is
  free, in rounds of `latency`;
- wall: process start to exit (median of the runs), and ratio = wall / bound;
- first req: process start to the server receiving the first chat request;
- slots busy: share of slot-time in use between the first request's arrival and the last's answer
  (of min(slots, requests) slots);
- CPU s: user + system CPU time of the process (of the whole loop, for llm);
- peak RSS: the process's maximum resident set (wait4's rusage; the largest single process, for llm);
- slot wait ms: p50/p90 of how long a slot freed by an answer stayed free while requests remained;
- 429s: requests the server turned away (the client asked for more than the limit).

Before timing, the package is byte-compiled, as `pip install` does: a user's cold start reads bytecode
(a machine with PYTHONDONTWRITEBYTECODE, like this one, would otherwise compile our modules from source
on every run, about 0.1 s). For size 1 the table also times the floor any OpenAI-SDK tool pays: a
script that imports typer, jinja2, pydantic and `openai`, builds a client and sends one request
("SDK floor"); `first req` of the two rows, measured in alternation, is what our own start-up costs.

When the `llm` CLI is on PATH (`pip install llm`), the user's alternative is timed too on the same
server: a shell loop `for f in Inbox/*.txt; do llm -m bench -s PROMPT < "$f" > note; done`, pointed at
the server by an `extra-openai-models.yaml` with `api_base` in a temp `LLM_USER_PATH` (once per
size up to `--llm-max`, `--llm-runs` times). Nothing is downloaded; nothing is written outside the temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The shared folder sits beside the repository (or beside the folder of worktrees).
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared" / "corpus").is_dir()), ROOT.parent / "shared")
if "TIKTOKEN_CACHE_DIR" not in os.environ and (SHARED / "tiktoken").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED / "tiktoken")

from tests import fakeopenai as fo  # noqa: E402

CORPUS = SHARED / "corpus"
FALLBACK_CORPUS = ROOT / "tests" / "data" / "corpus"
HEADER = re.compile(r"Benchmark copy (\d+) of ([\w.-]+)")
LLM_PROMPT = "Summarise this meeting transcript as a note: title, summary, decisions, action items with owners."


class TimedFake(fo.FakeOpenAI):
    """The loopback server, recording when each chat request arrived and was answered."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[tuple[float, float, int]] = []  # (arrived, answered, status), time.monotonic()

    def _count(self, body: fo.JSON) -> int:
        # No TPM window or context limit here, so a rough count will do: it keeps the server's own CPU
        # (exact tiktoken counts of 20k-token prompts) from competing with the process being measured.
        return sum(len(text) // 4 for text in fo._message_texts(body))

    def _http_chat(self, record: fo.RecordedRequest) -> fo.Outcome:
        arrived = time.monotonic()
        outcome = super()._http_chat(record)
        with self._lock:
            self.spans.append((arrived, time.monotonic(), outcome.status))
        return outcome


def answer(body: dict[str, Any]) -> fo.Behaviour:
    text = " ".join(str(m.get("content")) for m in body.get("messages", []))
    found = HEADER.search(text)
    title = f"Meeting {found.group(1)} ({found.group(2)})" if found else "Meeting"
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


def corpus_files() -> list[Path]:
    folder = CORPUS if CORPUS.is_dir() else FALLBACK_CORPUS
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise SystemExit(f"no corpus transcripts (*.txt) in {folder}")
    return files


def make_vault(root: Path, n: int) -> Path:
    """A fresh vault whose Inbox holds n whole corpus transcripts, each copy with its own first line."""
    (root / ".obsidian").mkdir(parents=True)
    (root / ".summarizer.toml").write_text('owner = "Alice Moreau"\n', encoding="utf-8")
    inbox = root / "Inbox"
    inbox.mkdir()
    files = corpus_files()
    for i in range(n):
        source = files[i % len(files)]
        text = source.read_text(encoding="utf-8")
        header = f"Alice Moreau: Benchmark copy {i} of {source.stem}.\n"
        name = f"2026-02-{1 + i % 28:02d} - {source.stem} {i:04d}.txt"
        (inbox / name).write_text(header + text, encoding="utf-8")
        earlier = time.time() - 3600  # dropped in an hour ago: settled, as in a user's inbox
        os.utime(inbox / name, (earlier, earlier))
    return root


def rounds_bound(calls: list[int], slots: int, merge_call: bool = False) -> int:
    """Rounds of one latency each for these transcripts' requests with `slots` at once: a transcript
    of one call is one request; of k > 1 calls, k parts that can go together (parts joined here, the
    default), or with `merge_call` (`merge_parts = "model"`) k - 1 parts, then its merge."""
    extra = 1 if merge_call else 0
    parts = [c - extra if c > 1 else 1 for c in calls]
    merges = [extra if c > 1 else 0 for c in calls]
    rounds = 0
    while any(parts) or any(merges):
        free = slots
        for i in [i for i, p in enumerate(parts) if p == 0 and merges[i]][:free]:
            merges[i] -= 1
            free -= 1
        for i in sorted(range(len(parts)), key=lambda j: -parts[j]):  # most left first
            take = min(parts[i], free)
            parts[i] -= take
            free -= take
        rounds += 1
    return rounds


@dataclass
class Run:
    wall: float
    cpu: float
    first_request: float | None
    busy: float | None
    peak_rss_mb: float
    requests: int
    rejected: int
    calls: list[int] = field(default_factory=list)
    slot_waits: list[float] = field(default_factory=list)
    done: int = 0
    failed: int = 0


def summarizer_command(given: str | None = None) -> list[str]:
    if given:
        return shlex.split(given)
    script = Path(sys.executable).parent / "summarizer"
    return [str(script)] if script.exists() else [sys.executable, "-m", "summarizer.cli"]


def run_process(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float, float, str]:
    """Run to completion: (start in time.monotonic(), wall s, CPU s, peak RSS in MB, stdout)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} exited {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return started, wall, cpu, usage.ru_maxrss / 1024, out.decode("utf-8", "replace")


def slot_figures(fake: TimedFake, started: float, slots: int) -> tuple[float | None, float | None, list[float]]:
    """Time to the first request, share of slot-time busy, and how long each freed slot stayed free
    (the k-th answer frees the slot the (k + slots in use)-th admitted request takes)."""
    admitted = [(a, b) for a, b, status in fake.spans if status == 200]
    if not fake.spans or not admitted:
        return None, None, []
    first = min(a for a, _, _ in fake.spans) - started
    span = max(b for _, b in admitted) - min(a for a, _ in admitted)
    usable = min(slots, len(admitted))  # one transcript alone can keep only one slot busy
    busy = sum(b - a for a, b in admitted) / (usable * span) if span > 0 else None
    starts = sorted(a for a, _ in admitted)
    ends = sorted(b for _, b in admitted)
    used = max(1, min(slots, fake.stats.max_in_flight))  # a sequential client only ever frees one slot
    waits = [max(starts[k + used] - ends[k], 0.0) for k in range(len(starts) - used)]
    return first, busy, waits


def base_env(home: Path, fake: TimedFake) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SUMMARIZER_", "OPENAI_", "LLM_"))}
    return {
        **keep,
        "HOME": str(home),
        "SUMMARIZER_USER_CONFIG": str(home / "no-user-config.toml"),
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-bench",
        "SUMMARIZER_MODEL": "gpt-4o-mini",
        "SUMMARIZER_MAX_RETRIES": "8",
    }


@contextmanager
def bench_server(args: argparse.Namespace) -> Iterator[TimedFake]:
    """The loopback server with the benchmark's latency and slots, answering every transcript."""
    fake = TimedFake()
    with fake:
        fake.default = fo.responder(answer)
        fake.latency = args.latency
        fake.max_concurrency = args.slots
        yield fake


def timed(
    fake: TimedFake, argv: list[str], env: dict[str, str], work: Path, args: argparse.Namespace
) -> tuple[Run, str]:
    """One process from a cold start against `fake`: its figures (calls and outcomes left to the caller)."""
    started, wall, cpu, rss, out = run_process(argv, env, work)
    first, busy, waits = slot_figures(fake, started, args.slots)
    return Run(wall, cpu, first, busy, rss, fake.stats.requests, fake.stats.limit_rejections, slot_waits=waits), out


def run_inbox(n: int, args: argparse.Namespace, work: Path) -> Run:
    vault = make_vault(work / "vault", n)
    with bench_server(args) as fake:
        options = ["--vault", str(vault), "--json", "--concurrency", str(args.concurrency)]
        argv = [*summarizer_command(args.command), "inbox", *options]
        run, out = timed(fake, argv, base_env(work, fake), work, args)
    report = json.loads(out)
    run.calls = [int(item["usage"]["calls"]) for item in report["items"] if item["status"] == "done"]
    run.done, run.failed = report["totals"]["done"], report["totals"]["failed"]
    return run


FLOOR_SCRIPT = """
import gc, os
gc.set_threshold(100_000, 10, 10)
import jinja2, pydantic, typer  # noqa: F401 - what any tool built on this stack imports
import openai
client = openai.OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key="sk-bench", max_retries=0)
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Benchmark copy 0 of x"}])
"""


def run_floor(n: int, args: argparse.Namespace, work: Path) -> Run:
    """The least any OpenAI-SDK client does before its first request, as a process from a cold start."""
    with bench_server(args) as fake:
        run, _ = timed(fake, [sys.executable, "-c", FLOOR_SCRIPT], base_env(work, fake), work, args)
    run.calls, run.done = [1], 1
    return run


def byte_compile() -> None:
    """What `pip install` does for the installed package, so that a cold start reads bytecode."""
    import compileall

    for package in ("summarizer", "prompts"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


def llm_config(home: Path, fake: TimedFake) -> dict[str, str]:
    """An llm config dir pointing a model id `bench` at the loopback server."""
    config = home / "llm"
    config.mkdir(exist_ok=True)
    (config / "extra-openai-models.yaml").write_text(
        f"- model_id: bench\n  model_name: gpt-4o-mini\n  api_base: {fake.base_url}\n  api_key_name: bench\n",
        encoding="utf-8",
    )
    (config / "keys.json").write_text(json.dumps({"bench": "sk-bench"}), encoding="utf-8")
    (config / "logs-off").write_text("", encoding="utf-8")  # `llm logs off`: no SQLite log per call
    return {**base_env(home, fake), "LLM_USER_PATH": str(config)}


def run_llm_loop(n: int, args: argparse.Namespace, work: Path) -> Run:
    vault = make_vault(work / "vault", n)
    out = work / "notes"
    out.mkdir()
    with bench_server(args) as fake:
        loop = (
            f"for f in {shlex.quote(str(vault / 'Inbox'))}/*.txt; do "
            f'llm -m bench -s {shlex.quote(LLM_PROMPT)} < "$f" > {shlex.quote(str(out))}/"$(basename "$f" .txt).md" '
            "|| exit 3; done"
        )
        run, _ = timed(fake, ["/bin/sh", "-c", loop], llm_config(work, fake), work, args)
    run.calls = [1] * n
    run.done = sum(1 for p in out.glob("*.md") if p.stat().st_size > 0)
    return run


def percentiles(values: list[float]) -> str:
    """p50/p90 in milliseconds."""
    if len(values) < 2:
        return "-"
    cuts = statistics.quantiles(values, n=10)
    return f"{1000 * statistics.median(values):.0f}/{1000 * cuts[8]:.0f}"


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,16,100", help="transcript counts, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per size for `summarizer inbox` (median)")
    parser.add_argument("--llm-runs", type=int, default=1, help="runs per size for the llm loop (0: skip)")
    parser.add_argument(
        "--llm-max", type=int, default=16, help="largest size the llm loop runs (it is sequential: ~2 s a transcript)"
    )
    parser.add_argument("--latency", type=float, default=1.0, help="server seconds per request")
    parser.add_argument("--slots", type=int, default=8, help="requests the server admits at once")
    parser.add_argument("--concurrency", type=int, default=8, help="`summarizer inbox --concurrency`")
    parser.add_argument(
        "--command", help="the summarizer to time, e.g. 'python -m summarizer.cli' with PYTHONPATH at another checkout"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    have_llm = shutil.which("llm") is not None and args.llm_runs > 0
    if not args.command:
        byte_compile()
    rows: list[tuple[str, int, float, Run, list[Run]]] = []
    for n in sizes:
        tools: list[tuple[str, Any, int]] = [("summarizer inbox", run_inbox, args.runs)]
        if n == 1:
            tools.append(("SDK floor", run_floor, args.runs))
        if have_llm and n <= args.llm_max:
            tools.append(("llm loop", run_llm_loop, args.llm_runs))
        measured: dict[str, list[Run]] = {tool: [] for tool, _, _ in tools}
        for round_ in range(max(runs for _, _, runs in tools)):
            for tool, fn, runs in tools:  # in alternation: a slower spell of the machine hits each alike
                if round_ < runs:
                    with tempfile.TemporaryDirectory(prefix="bench-inbox-") as tmp:
                        measured[tool].append(fn(n, args, Path(tmp)))
        for tool, _, _ in tools:
            median = sorted(measured[tool], key=lambda r: r.wall)[len(measured[tool]) // 2]
            first_requests = [r.first_request for r in measured[tool] if r.first_request is not None]
            if first_requests:
                median.first_request = statistics.median(first_requests)
            bound = args.latency * rounds_bound(median.calls, args.slots)
            rows.append((tool, n, bound, median, measured[tool]))
            walls = ", ".join(f"{r.wall:.2f}" for r in measured[tool])
            print(f"  {tool:<16} n={n:<4} walls {walls} s", file=sys.stderr)

    print(
        f"\n{os.cpu_count()} CPUs, server latency {args.latency:g} s, {args.slots} requests at once "
        f"(429 beyond), `--concurrency {args.concurrency}`, median of {args.runs} cold runs"
        + (f" ({args.llm_runs} for llm)" if have_llm else "; llm loop not run (not on PATH, or --llm-runs 0)")
        + "\n"
    )
    columns = [
        ("tool", 16),
        ("transcripts", 11),
        ("requests", 8),
        ("bound s", 7),
        ("wall s", 7),
        ("ratio", 6),
        ("first req s", 11),
        ("slots busy", 10),
        ("slot wait ms", 12),
        ("CPU s", 6),
        ("peak RSS MB", 11),
        ("429s", 5),
        ("ok", 4),
    ]
    header = " ".join(f"{name:<{width}}" if i == 0 else f"{name:>{width}}" for i, (name, width) in enumerate(columns))
    print(header)
    print("-" * len(header))
    for tool, n, bound, r, _ in rows:
        cells = [
            tool,
            str(n),
            str(sum(r.calls)),
            f"{bound:.1f}",
            f"{r.wall:.2f}",
            f"{r.wall / bound:.2f}" if bound else "-",
            fmt(r.first_request, ".2f"),
            "-" if r.busy is None else f"{100 * r.busy:.0f}%",
            percentiles(r.slot_waits),
            f"{r.cpu:.2f}",
            f"{r.peak_rss_mb:.0f}",
            str(r.rejected),
            str(r.done),
        ]
        print(
            " ".join(
                f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, (_, w)) in enumerate(zip(cells, columns, strict=True))
            )
        )
    if have_llm:
        print("\nllm loop / summarizer inbox (wall):")
        for n in sizes:
            ours = next(r for tool, m, _, r, _ in rows if tool == "summarizer inbox" and m == n)
            theirs = next((r for tool, m, _, r, _ in rows if tool == "llm loop" and m == n), None)
            if theirs is not None:
                print(f"  {n:>4} transcripts: {theirs.wall / ours.wall:.1f}x")


if __name__ == "__main__":
    main()
