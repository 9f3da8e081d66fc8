"""Counting tokens before a call, with tiktoken, without ever hanging, and only when it matters.

tiktoken downloads its encodings on first use with no timeout and does not
remember failures. We load each encoding once, in a worker thread with a time
limit, remember a failure, say so once, and fall back to an estimate.

Loading an encoding costs about 0.3 s and 84 MB, so `TokenCounter` loads it lazily: o200k_base,
cl100k_base and the other byte-level BPE encodings never make a token shorter than one byte, so a
text whose UTF-8 length fits a budget fits it in tokens too. `count_at_most` and `count_messages(...,
at_most=budget)` answer from the byte length when that settles the decision and count exactly
otherwise; `count` always counts exactly (`--dry-run`, cost estimates).
"""

from __future__ import annotations

import functools
import json
import math
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

LOAD_TIMEOUT = 15.0
DEFAULT_ENCODING = "o200k_base"

_lock = threading.Lock()
_encoders: dict[str, Any] = {}
_failed: dict[str, str] = {}


def _print_warning(message: str) -> None:
    print(message, file=sys.stderr)


_warn: Callable[[str], None] = _print_warning


def set_warning_sink(sink: Callable[[str], None]) -> None:
    global _warn
    _warn = sink


def encoding_name_for(model: str | None) -> str:
    """tiktoken's encoding for a model name; unknown names (local models) get o200k_base."""
    if not model:
        return DEFAULT_ENCODING
    try:
        import tiktoken.model

        return str(tiktoken.model.encoding_name_for_model(model))
    except (KeyError, ImportError):
        return DEFAULT_ENCODING


def has_own_encoding(model: str | None) -> bool:
    """tiktoken knows this model's tokenizer (an OpenAI model), so counts are exact, not an o200k guess."""
    if not model:
        return False
    try:
        import tiktoken.model

        tiktoken.model.encoding_name_for_model(model)
        return True
    except (KeyError, ImportError):
        return False


def _load(name: str) -> Any:
    import tiktoken

    box: dict[str, Any] = {}

    def worker() -> None:
        try:
            box["enc"] = tiktoken.get_encoding(name)
        except Exception as err:  # network, hash mismatch, missing plugin: all mean "no encoder"
            box["err"] = f"{type(err).__name__}: {err}"

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    thread.join(LOAD_TIMEOUT)
    if "enc" in box:
        return box["enc"]
    raise RuntimeError(box.get("err", f"timed out after {LOAD_TIMEOUT:.0f}s"))


def encoder(name: str) -> Any | None:
    with _lock:
        if name in _encoders:
            return _encoders[name]
        if name in _failed:
            return None
        try:
            _encoders[name] = _load(name)
            return _encoders[name]
        except Exception as err:
            _failed[name] = str(err).splitlines()[0][:200]
            _warn(
                f"warning: tiktoken encoding {name!r} could not be loaded ({_failed[name]}); token counts "
                "are estimates. Set TIKTOKEN_CACHE_DIR to a folder holding the encoding files "
                "to count exactly."
            )
            return None


def byte_length(text: str) -> int:
    """An upper bound on the tokens of `text` in any byte-level BPE encoding (no token is shorter than a byte)."""
    return len(text.encode("utf-8"))


class TokenCounter:
    """Counts tokens for one model; exact with tiktoken, else about 4 characters a token.

    Nothing is imported or loaded until a count needs it (see the module docstring).
    """

    def __init__(self, model: str | None) -> None:
        self.model = model

    @functools.cached_property
    def encoding(self) -> str:
        return encoding_name_for(self.model)

    @property
    def exact(self) -> bool:
        """Whether `count` is exact (loads the encoding to find out)."""
        return encoder(self.encoding) is not None

    def count(self, text: str) -> int:
        """Exact tokens of `text` (an estimate of bytes / 4 if the encoding cannot be loaded)."""
        enc = encoder(self.encoding)
        if enc is None:
            return math.ceil(byte_length(text) / 4)
        return len(enc.encode(text, disallowed_special=()))

    def count_at_most(self, text: str, limit: int) -> int:
        """A count that decides `<= limit` exactly, loading the encoding only if the bytes do not.

        Returns the UTF-8 byte length (an upper bound) when it is within `limit`, else `count(text)`.
        So `count_at_most(t, n) <= n` exactly when `count(t) <= n`, and the result is never below it.
        """
        size = byte_length(text)
        return size if size <= limit else self.count(text)

    def fits(self, text: str, limit: int) -> bool:
        return self.count_at_most(text, limit) <= limit

    def count_messages(
        self,
        messages: Sequence[dict[str, str]],
        schema: dict[str, Any] | None = None,
        *,
        at_most: int | None = None,
    ) -> int:
        """The cookbook's rule (3 per message + 3 for the reply primer), plus the schema if sent.

        With `at_most`, the result is the byte-length bound when that is within `at_most` (no
        encoding loaded), else the exact count: it decides `<= at_most` exactly either way.
        """
        parts = [value for message in messages for value in message.values()]
        if schema is not None:
            parts.append(json.dumps(schema, separators=(",", ":")))
        overhead = 3 + 3 * len(messages)
        if at_most is not None:
            bound = overhead + sum(byte_length(part) for part in parts)
            if bound <= at_most:
                return bound
        return overhead + sum(self.count(part) for part in parts)

    def running(self, limit: int) -> Callable[[str], int]:
        """A cost function for a caller that adds up the costs of consecutive texts against `limit`
        and stops before the total would exceed it (e.g. `linking.candidates_for_prompt`).

        Costs are byte lengths while their total stays within `limit`; at the first text that would
        take the byte total past it, the encoding is loaded and that text's cost is corrected so the
        caller's running total becomes the exact token total. Every decision the caller makes is the
        one exact counting would make.
        """
        return _RunningCost(self, limit)


class _RunningCost:
    def __init__(self, counter: TokenCounter, limit: int) -> None:
        self.counter = counter
        self.limit = limit
        self.byte_total = 0
        self.seen: list[str] | None = []  # None once counting exactly

    def __call__(self, text: str) -> int:
        if self.seen is None:
            return self.counter.count(text)
        size = byte_length(text)
        if self.byte_total + size <= self.limit:
            self.byte_total += size
            self.seen.append(text)
            return size
        overcounted = self.byte_total - sum(self.counter.count(t) for t in self.seen)
        self.seen = None
        return self.counter.count(text) - overcounted
