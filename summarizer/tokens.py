"""Counting tokens before a call, with tiktoken, without ever hanging.

tiktoken downloads its encodings on first use with no timeout and does not
remember failures. We load each encoding once, in a worker thread with a time
limit, remember a failure, say so once, and fall back to an estimate.
"""

from __future__ import annotations

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


class TokenCounter:
    """Counts tokens for one model; exact with tiktoken, else about 4 characters a token."""

    def __init__(self, model: str | None) -> None:
        self.encoding = encoding_name_for(model)

    @property
    def exact(self) -> bool:
        return encoder(self.encoding) is not None

    def count(self, text: str) -> int:
        enc = encoder(self.encoding)
        if enc is None:
            return math.ceil(len(text.encode("utf-8")) / 4)
        return len(enc.encode(text, disallowed_special=()))

    def count_messages(self, messages: Sequence[dict[str, str]], schema: dict[str, Any] | None = None) -> int:
        """The cookbook's rule (3 per message + 3 for the reply primer), plus the schema if sent."""
        total = 3
        for message in messages:
            total += 3 + sum(self.count(value) for value in message.values())
        if schema is not None:
            total += self.count(json.dumps(schema, separators=(",", ":")))
        return total
