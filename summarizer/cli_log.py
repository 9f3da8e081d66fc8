"""`summarizer log`: what was done and what it cost, from the state store, newest first.

Views: what each run did to each transcript or note (the default), `--runs`, `--calls`, and
`--totals` (cost and tokens per day and per model). Only typer is imported at load; the store and
rich load when the command runs. Read-only: it takes no vault lock and never creates a state store.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from summarizer.cli_options import JsonOpt, VaultOpt

if TYPE_CHECKING:
    from rich.console import Console

    from summarizer.models import Usage
    from summarizer.store import CallRow, LogItem, LogQuery, RunRow, Store

DEFAULT_ROWS = 20


def register(app: typer.Typer) -> None:
    app.command("log")(log)


def log(
    vault: VaultOpt = None,
    runs: Annotated[bool, typer.Option("--runs", help="One row per command run.")] = False,
    calls: Annotated[bool, typer.Option("--calls", help="One row per model call.")] = False,
    totals: Annotated[bool, typer.Option("--totals", help="Cost and tokens summed per day and per model.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Only from this UTC date (YYYY-MM-DD) on.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Only for notes whose path contains this text.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failures (failed items, runs, calls).")] = False,
    run: Annotated[int | None, typer.Option("--run", help="Only this run (its number in --runs).")] = None,
    count: Annotated[int, typer.Option("-n", "--count", help="At most this many rows (0: all).")] = DEFAULT_ROWS,
    json_out: JsonOpt = False,
) -> None:
    """List past runs, what they did to each transcript and note, their model calls and what they cost.

    By default one row per transcript or note a run handled: when, run, outcome, transcript and
    note, model and prompt version, tokens in/cached/out, cost, error. Newest first.
    """
    from summarizer.cli_common import run as run_action

    def action() -> None:
        from summarizer.cli_common import parse_date_option
        from summarizer.errors import ConfigError
        from summarizer.pipeline import resolve_vault
        from summarizer.store import LogQuery
        from summarizer.vault import Vault

        if sum((runs, calls, totals)) > 1:
            raise ConfigError("--runs, --calls and --totals are different views: use one at a time")
        if count < 0:
            raise ConfigError(f"-n must be 0 (all) or more, got {count}")
        start = parse_date_option(since, "--since")
        query = LogQuery(
            since=start.isoformat() if start else None, note=note, failed=failed, run=run, limit=count
        )
        root = Vault.open(resolve_vault(vault, [Path.cwd()]))
        view = "runs" if runs else "calls" if calls else "totals" if totals else "items"
        state = root.state_dir / "state.db"
        data = _query(state, view, query) if state.is_file() else _empty(view)
        if view == "runs":
            from summarizer.vaultlock import lock_holder

            data["runs"] = _mark_running(data["runs"], lock_holder(root) is not None, failed_only=failed)
        if json_out:
            typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        from rich.console import Console

        console = Console(file=sys.stdout, highlight=False)
        _show(view, data, console, root.root)

    run_action(action)


# ---------------------------------------------------------------------------- data


def _query(state: Path, view: str, query: LogQuery) -> dict[str, Any]:
    from summarizer.store import Store

    store = Store(state)
    try:
        return _data(store, view, query)
    finally:
        store.close()


def _data(store: Store, view: str, query: LogQuery) -> dict[str, Any]:
    if view == "runs":
        return {"runs": [_run_json(r) for r in store.log_runs(query)]}
    if view == "calls":
        return {"calls": [_call_json(c) for c in store.log_calls(query)]}
    if view == "totals":
        from summarizer.models import Usage

        days = store.log_totals(query, "day")
        return {
            "totals": {
                "per_day": [{"day": day, **_usage_json(u)} for day, u in days],
                "per_model": [{"model": model, **_usage_json(u)} for model, u in store.log_totals(query, "model")],
                "total": _usage_json(sum((u for _, u in days), Usage())),
            }
        }
    return {"items": [_item_json(i) for i in store.log_items(query)]}


def _mark_running(rows: list[dict[str, Any]], someone_writes: bool, *, failed_only: bool) -> list[dict[str, Any]]:
    """A run that never finished was killed, unless it is the newest and a live process holds the vault
    lock: then it is running now (and not a failure)."""
    unfinished = [row["run"] for row in rows if row["status"] == "unfinished"]
    live = max(unfinished) if unfinished and someone_writes else None
    for row in rows:
        if row["run"] == live:
            row["status"] = "running"
    return [row for row in rows if not (failed_only and row["status"] == "running" and not row["failed"])]


def _empty(view: str) -> dict[str, Any]:
    if view == "totals":
        zero = {"calls": 0, "tokens_in": 0, "tokens_cached": 0, "tokens_out": 0, "cost": None}
        return {"totals": {"per_day": [], "per_model": [], "total": zero}}
    return {view: []}


def _usage_json(u: Usage) -> dict[str, Any]:
    return {
        "calls": u.calls,
        "tokens_in": u.prompt_tokens,
        "tokens_cached": u.cached_tokens,
        "tokens_out": u.completion_tokens,
        "cost": None if u.cost is None else round(u.cost, 6),
    }


def _run_json(r: RunRow) -> dict[str, Any]:
    return {
        "run": r.id,
        "command": r.command,
        "started": r.started,
        "finished": r.finished,
        "status": r.status if r.finished or r.status != "running" else "unfinished",
        "engine": r.engine,
        "model": r.model,
        "prompt_version": r.prompt_version,
        "done": r.done,
        "skipped": r.skipped,
        "failed": r.failed,
        "error": r.error,
        **_usage_json(r.usage),
    }


def _item_json(i: LogItem) -> dict[str, Any]:
    return {
        "run": i.run_id,
        "when": i.ts,
        "command": i.command,
        "item": i.item,
        "transcript": i.transcript,
        "note": i.note,
        "engine": i.engine,
        "model": i.model,
        "prompt_version": i.prompt_version,
        "outcome": i.status,
        "detail": i.detail,
        "error": i.error,
        **_usage_json(i.usage),
    }


def _call_json(c: CallRow) -> dict[str, Any]:
    return {
        "id": c.id,
        "when": c.ts,
        "run": c.run_id,
        "item": c.item,
        "label": c.label,
        "model": c.model,
        "mode": c.mode,
        "prompt_version": c.prompt_version,
        "outcome": "failed" if c.error else "ok",
        "error": c.error,
        **_usage_json(c.usage),
    }


# ---------------------------------------------------------------------------- output


def _when(ts: str | None) -> str:
    """`2026-03-02T10:00:00+00:00` -> `2026-03-02 10:00` (UTC)."""
    return (ts or "")[:16].replace("T", " ")


def _tokens(row: dict[str, Any]) -> str:
    return f"{row['tokens_in']}/{row['tokens_cached']}/{row['tokens_out']}" if row["calls"] else "-"


def _cost(row: dict[str, Any]) -> str:
    from summarizer.runner import format_cost

    return format_cost(row["cost"]) if row["calls"] else "-"


def _model(row: dict[str, Any]) -> str:
    return " ".join(str(v) for v in (row.get("model"), row.get("prompt_version")) if v) or "-"


def _columns(view: str, data: dict[str, Any], root: str) -> tuple[list[str], list[list[str]], list[str | None]]:
    """Headers, cells and a per-row error (shown under the row) for one view; paths inside the
    vault `root` are shown relative to it."""
    if view == "runs":
        heads = ["run", "started", "command", "outcome", "done/skipped/failed", "model", "calls", "tokens", "cost"]
        cells = [
            [
                f"#{r['run']}",
                _when(r["started"]),
                r["command"],
                r["status"],
                f"{r['done'] or 0}/{r['skipped'] or 0}/{r['failed'] or 0}",
                _model(r),
                str(r["calls"]),
                _tokens(r),
                _cost(r),
            ]
            for r in data["runs"]
        ]
        return heads, cells, [r["error"] for r in data["runs"]]
    if view == "calls":
        heads = ["when", "run", "item", "model", "mode", "tokens", "cost", "outcome"]
        cells = [
            [
                _when(c["when"]),
                f"#{c['run']}" if c["run"] is not None else "-",
                (c["label"] or "-").removeprefix(root),
                _model(c),
                c["mode"] or "-",
                _tokens(c),
                _cost(c),
                c["outcome"],
            ]
            for c in data["calls"]
        ]
        return heads, cells, [c["error"] for c in data["calls"]]
    heads = ["when", "run", "outcome", "transcript -> note", "model", "tokens", "cost"]
    cells = [
        [
            _when(i["when"]),
            f"#{i['run']} {i['command']}",
            i["outcome"],
            f"{i['transcript'] or i['item']}" + (f" -> {i['note']}" if i["note"] and i["note"] != i["item"] else ""),
            _model(i) if i["calls"] else (i["engine"] or "-"),
            _tokens(i),
            _cost(i),
        ]
        for i in data["items"]
    ]
    return heads, cells, [i["error"] for i in data["items"]]


def _show(view: str, data: dict[str, Any], console: Console, root: Path) -> None:
    if view == "totals":
        _show_totals(data["totals"], console)
        return
    heads, cells, errors = _columns(view, data, f"{root}/")
    if not cells:
        typer.echo("nothing logged (yet, or matching these filters)")
        return
    if console.is_terminal:
        from rich.table import Table
        from rich.text import Text

        table = Table(show_lines=False)
        for head in heads:
            right = head in ("tokens", "cost", "calls")
            table.add_column(head, justify="right" if right else "left", overflow="fold")
        for row, error in zip(cells, errors, strict=True):
            table.add_row(*(Text(c) for c in row))
            if error:  # under the widest column: the transcript (or item, or command)
                at = {"items": 3, "calls": 2}.get(view, 2)
                table.add_row(*[""] * at, Text(error, style="red"), *[""] * (len(heads) - at - 1))
        console.print(table)
        return
    widths = [max(len(row[n]) for row in cells) for n in range(len(heads))]
    for row, error in zip(cells, errors, strict=True):
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if error:
            typer.echo(f"    error: {error}")


def _show_totals(totals: dict[str, Any], console: Console) -> None:
    sections = (("day", totals["per_day"]), ("model", totals["per_model"]))
    if console.is_terminal:
        from rich.table import Table
        from rich.text import Text

        for key, rows in sections:
            table = Table(title=f"per {key}", title_justify="left")
            for head in (key, "calls", "tokens in", "cached", "out", "cost"):
                table.add_column(head, justify="left" if head == key else "right")
            for r in rows:
                cells = [r[key], r["calls"], r["tokens_in"], r["tokens_cached"], r["tokens_out"], _cost(r)]
                table.add_row(*(Text(str(c)) for c in cells))
            console.print(table)
    else:
        for key, rows in sections:
            typer.echo(f"per {key}:")
            for r in rows:
                typer.echo(
                    f"  {r[key]}  {r['calls']} call(s)  tokens in {r['tokens_in']} (cached {r['tokens_cached']})"
                    f"  out {r['tokens_out']}  {_cost(r)}"
                )
    t = totals["total"]
    typer.echo(
        f"total: {t['calls']} call(s), tokens in {t['tokens_in']} (cached {t['tokens_cached']}), "
        f"out {t['tokens_out']}, cost {_cost(t)}"
    )
