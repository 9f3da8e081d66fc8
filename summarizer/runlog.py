"""One command run in the state store: what it did to each item, and what that cost.

`RunLedger.begin` records the run in the store; from then on every call the store logs carries the
run's id and the item (transcript or note) it was made for. An item's usage, as reported, is what
the call log holds for it: failed attempts, repairs, retries and the part calls of a long meeting
included, whether the item then succeeded or not. The run's totals are the sum of its items, plus
any call logged for no item of the report (say a batch result for a file no longer in the inbox),
shown apart. So the report, `--json` and the call log agree by construction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from summarizer.models import Usage
from summarizer.runner import STATUSES, ItemResult, RunReport

if TYPE_CHECKING:
    from summarizer.store import Store


class EngineLike(Protocol):
    """What a run records about its engine (any `summarizer.engines.Engine` has these)."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def prompt_version(self) -> str: ...


@dataclass
class RunLedger:
    store: Store
    run_id: int
    _recorded: set[int] = field(default_factory=set, repr=False)
    _keys: set[str] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def begin(cls, store: Store, command: str, engine: EngineLike | None) -> RunLedger:
        if engine is None:
            return cls(store, store.run_begin(command, None, None, None))
        return cls(store, store.run_begin(command, engine.name, engine.model, engine.prompt_version))

    def usage(self, item: str) -> Usage:
        """Every call logged for `item` in this run."""
        return self.store.run_usage(self.run_id, item)

    def item(
        self, key: str, result: ItemResult, *, transcript: str | None = None, note: str | None = None
    ) -> ItemResult:
        """Record one finished item; its usage becomes what was logged for it. Returns `result`."""
        result.usage = self.usage(key)
        fields = result.fields
        note = note or _text(fields.get("note"))
        self.store.run_item(
            self.run_id,
            key,
            name=result.name,
            status=result.status,
            transcript=transcript or _text(fields.get("path")),
            note=note,
            detail=result.detail,
            error=result.error,
            seconds=round(result.seconds, 3),
        )
        with self._lock:
            self._recorded.add(id(result))
            self._keys.add(key)
        return result

    def fail(self, error: BaseException) -> None:
        """Record the run as ended by `error` (one line)."""
        self.finish(None, error=" ".join(str(error).split()) or type(error).__name__)

    def finish(self, report: RunReport | None, *, error: str | None = None) -> None:
        """Record the items no worker recorded (skipped at the scan, recovered), the calls logged
        for none of them, and the run's outcome."""
        counts: dict[str, int] = {status: 0 for status in STATUSES}
        if report is not None:
            for result in report.results:
                if id(result) not in self._recorded:
                    self.item(_text(result.fields.get("path")) or result.name, result)
            by_item = self.store.run_usage_by_item(self.run_id)
            report.other = sum((u for k, u in by_item.items() if k not in self._keys), Usage())
            report.extra["run"] = self.run_id
            counts = {str(status): report.count(status) for status in STATUSES}
        status = "error" if error else ("failed" if counts["failed"] else "done")
        self.store.run_finish(self.run_id, status, counts, error)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
