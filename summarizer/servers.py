"""What OpenAI-compatible servers say, read without any I/O.

Pure functions over status codes, error texts and headers, so the model
client, `summarizer doctor` and later re-splitting share one reading:

- is an error a refusal of the `response_format`, and which formats does the
  server say it does take (llama-cpp-python answers `json_schema` with a 500
  "Input should be 'text' or 'json_object'", LM Studio answers `json_object`
  with a 400 "must be 'json_schema' or 'text'");
- does an error say the request overflowed the context window, and what
  limit it names (OpenAI and vLLM "maximum context length is N tokens",
  llama.cpp "exceeds the available context size" with `n_ctx`,
  llama-cpp-python "exceed context window of N");
- how long to wait before retrying, the way the openai SDK reads
  `retry-after-ms` / `retry-after`;
- how long a generation may take before we stop waiting for it;
- what was learned about a server (`ServerLimits`: window, tokenizer ratio, slots) and the window
  budgets then plan in (`fitted_window`).

The two functions that do ask a server (`server_token_count`, `probe_limits`: its tokenize and
`/props` routes) never raise: a route a server lacks just tells nothing.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx2

# A generation is given the configured timeout plus this much per requested answer token,
# so a small CPU-bound server (llama-cpp-python on 2 cores ran at ~30 tokens/s) is not cut off
# while it is still writing. We never re-send a generation that timed out (the server would
# keep working on the first copy), so this is the only wait there is.
SLOWEST_TOKENS_PER_SECOND = 10.0
MAX_RETRY_AFTER = 120.0
PROBE_TIMEOUT = 3.0  # a metadata route that takes longer is not worth waiting for

_RESPONSE_FORMAT_TYPES = ("json_schema", "json_object", "text")
_FORMAT_WORDS = re.compile(
    r"response_format|json_schema|json_object|structured.output|\bgrammar\b|\bstrict\b|"
    r"input should be '(?:text|json_object|json_schema)'",
    re.I,
)
_QUOTED_TYPE = re.compile(r"'(json_schema|json_object|text)'|\"(json_schema|json_object|text)\"")
_ALLOWED_LIST = re.compile(
    r"(?:should be|must be|expected|one of|allowed)\s*:?\s*((?:['\"]\w+['\"](?:\s*(?:,|\bor\b|\band\b)\s*)?)+)",
    re.I,
)
_UNSUPPORTED_TYPE = re.compile(
    r"(?:type\s*)?'?(json_schema|json_object)'?[^.;\n]{0,40}(?:not supported|unsupported|is not allowed)",
    re.I,
)

_CONTEXT_PATTERNS = (
    re.compile(r"maximum context length is (\d+)", re.I),  # OpenAI, vLLM, LM Studio (OpenAI wording)
    re.compile(r"context window of (\d+)", re.I),  # llama-cpp-python
    re.compile(r"context length of (?:only )?(\d+)", re.I),  # LM Studio
    re.compile(r'"?n_ctx"?\s*[:=]\s*(\d+)', re.I),  # llama.cpp server error body, /props
    re.compile(r"context size \((\d+)\)", re.I),
)
_CONTEXT_WORDS = re.compile(
    r"context_length_exceeded|context length|context window|context size|exceed_context_size|n_ctx",
    re.I,
)


def error_text(body: Any, fallback: str = "") -> str:
    """The readable part of an error body: `error.message` (plus any extra fields), else the text."""
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return " ".join(body.split()) or fallback
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            message = inner.get("message")
            if not isinstance(message, str):
                return " ".join(json.dumps(dict(inner), ensure_ascii=False, default=str).split())
            extra = [
                f"{key}={value}"
                for key, value in inner.items()
                if key not in ("message", "type", "param", "code") and isinstance(value, int | float | str)
            ]
            return " ".join(message.split()) + (f" ({', '.join(extra)})" if extra else "")
        if isinstance(inner, str):
            detail = body.get("detail")
            return " ".join(f"{inner} {detail or ''}".split())
        detail = body.get("detail")
        if detail is not None:
            return " ".join(json.dumps(detail, ensure_ascii=False, default=str).split())
    if isinstance(body, list):
        return " ".join(json.dumps(body, ensure_ascii=False, default=str).split())
    return fallback


def is_format_refusal(status: int, text: str, param: str | None = None) -> bool:
    """The server will not take the `response_format` we sent (whatever the status code)."""
    if status in (401, 403, 404, 408, 409, 429) or is_context_overflow(text):
        return False
    return param == "response_format" or bool(_FORMAT_WORDS.search(text))


def refused_types(text: str) -> set[str]:
    """`response_format` types an error rules out as a whole (not just the way we used them).

    "Input should be 'text' or 'json_object'" rules out json_schema; "'response_format.type' must be
    'json_schema' or 'text'" rules out json_object; "'json_schema' is not supported" rules out that.
    """
    refused: set[str] = set()
    for match in _ALLOWED_LIST.finditer(text):
        allowed = {a or b for a, b in _QUOTED_TYPE.findall(match.group(1))}
        if allowed and allowed <= set(_RESPONSE_FORMAT_TYPES):
            refused |= set(_RESPONSE_FORMAT_TYPES) - allowed - {"text"}
    for match in _UNSUPPORTED_TYPE.finditer(text):
        refused.add(match.group(1).lower())
    return refused


def is_context_overflow(text: str) -> bool:
    return bool(_CONTEXT_WORDS.search(text)) and bool(
        re.search(r"exceed|maximum|too (?:long|large|many)|greater than|overflow|reduce", text, re.I)
    )


def context_limit_from_error(text: str) -> int | None:
    """The context window an overflow error names, if it names one (pure; for re-splitting)."""
    if not is_context_overflow(text):
        return None
    for pattern in _CONTEXT_PATTERNS:
        match = pattern.search(text)
        if match:
            value = int(match.group(1))
            if value > 0:
                return value
    return None


_PROMPT_COUNT_PATTERNS = (
    re.compile(r"resulted in (\d+) tokens", re.I),  # OpenAI, vLLM
    re.compile(r"\((\d+) in the messages", re.I),  # OpenAI's newer wording
    re.compile(r"n_prompt_tokens\W+(\d+)", re.I),  # llama.cpp server
    re.compile(r"requested tokens \((\d+)\)", re.I),  # llama-cpp-python
)


def prompt_tokens_from_error(text: str) -> int | None:
    """The server's own count of the refused prompt, where an overflow error states it."""
    if not is_context_overflow(text):
        return None
    for pattern in _PROMPT_COUNT_PATTERNS:
        match = pattern.search(text)
        if match and int(match.group(1)) > 0:
            return int(match.group(1))
    return None


def retry_delay(retry: int, headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait before retry number `retry` (0-based), or None when the server says not to.

    Same rules as the openai SDK: `x-should-retry: false` forbids it; `retry-after-ms`, then
    `retry-after` (seconds or an HTTP date) when 0 < value <= 120 s; a longer wait is no retry;
    otherwise exponential backoff from 0.5 s up to 8 s, with up to 25% jitter.
    """
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if lowered.get("x-should-retry", "").lower() == "false":
        return None
    wait: float | None = None
    if "retry-after-ms" in lowered:
        try:
            wait = float(lowered["retry-after-ms"]) / 1000
        except ValueError:
            wait = None
    if wait is None and "retry-after" in lowered:
        raw = lowered["retry-after"]
        try:
            wait = float(raw)
        except ValueError:
            parsed = email.utils.parsedate_tz(raw)
            if parsed is not None:
                wait = float(email.utils.mktime_tz(parsed)) - time.time()
    if wait is not None:
        if wait > MAX_RETRY_AFTER:
            return None
        if wait > 0:
            return wait
    return min(0.5 * 2.0**retry, 8.0) * (1 - 0.25 * random.random())


def tls_verification(base_url: str) -> ssl.SSLContext | bool:
    """httpx's `verify` for a client of `base_url`. Over plain HTTP no certificate is ever checked, so
    loading the CA bundle (about 20 ms per client, on the way to the first request) buys nothing: such a
    client gets a context that trusts no certificate at all (a redirect to HTTPS would fail, never go
    unchecked). HTTPS gets the default verification."""
    if not base_url.casefold().startswith("http://"):
        return True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies hostnames and requires a certificate
    return context


def server_token_count(
    base_url: str,
    model: str,
    text: str,
    timeout: float = 3.0,
    headers: Mapping[str, str] | None = None,
    client: httpx2.Client | None = None,
) -> tuple[int, str | None] | None:
    """The server's own token count of `text`, from its tokenize route, and the server kind it implies.

    llama.cpp `POST /tokenize {"content"}` and vLLM `POST /tokenize {"model", "prompt"}` (both at the root),
    llama-cpp-python `POST /extras/tokenize {"input"}`. None when the server has no such route. `client`:
    an HTTP client to reuse (the model client's), else one is made for the call.
    """
    import httpx2

    if client is None:
        with httpx2.Client(verify=tls_verification(base_url)) as own:
            return server_token_count(base_url, model, text, timeout, headers, own)
    root = base_url.rstrip("/").removesuffix("/v1")
    for url, body, kind in (
        (f"{root}/tokenize", {"content": text, "model": model, "prompt": text}, None),
        (f"{root}/extras/tokenize", {"input": text, "model": model}, "llama-cpp-python"),
    ):
        try:
            response = client.post(url, json=body, timeout=timeout, headers=dict(headers or {}))
            answer = response.json() if response.status_code == 200 else None
        except Exception:  # no such route or not JSON: try the next
            continue
        if isinstance(answer, dict):
            if isinstance(answer.get("count"), int):
                return int(answer["count"]), kind
            if isinstance(answer.get("tokens"), list):
                return len(answer["tokens"]), kind
    return None


def generation_timeout(base: float, max_tokens: int) -> float:
    """Read timeout for a request that may generate `max_tokens` tokens on a slow server."""
    return base + max_tokens / SLOWEST_TOKENS_PER_SECOND


# ---------------------------------------------------------------------------- context windows

UNKNOWN_MODEL_CONTEXT = 8192

# Context windows (input + output tokens) of known models; unknown names are assumed small.
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4.1": 1_047_576,
    "gpt-5": 400_000,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
}


def context_window(model: str | None, configured: int | None) -> int:
    if configured:
        return configured
    if model:
        prefixes = [name for name in CONTEXT_WINDOWS if model.startswith(name)]
        if prefixes:
            return CONTEXT_WINDOWS[max(prefixes, key=len)]
    return UNKNOWN_MODEL_CONTEXT


# Our counts use OpenAI's tokenizers; other models' own tokenizers counted 7-11% more on meeting
# transcripts (llama-cpp-python with a small instruct model), so they get a wider margin.
OPENAI_TOKENIZER_MARGIN = 0.05
OTHER_TOKENIZER_MARGIN = 0.15


def safety_margin(model: str | None) -> float:
    """The share of the window kept free for counting errors: small when we count with the model's own tokenizer."""
    from summarizer.tokens import has_own_encoding

    return OPENAI_TOKENIZER_MARGIN if has_own_encoding(model) else OTHER_TOKENIZER_MARGIN


# ---------------------------------------------------------------------------- learned facts


@dataclass(frozen=True)
class ServerLimits:
    """What was learned about one server and model: its window, its tokenizer against ours, its slots."""

    context_window: int | None = None
    token_ratio: float | None = None  # the server's token count / ours, on the same text
    slots: int | None = None  # requests it runs at once (llama.cpp `total_slots`)
    probed: bool = False  # its metadata routes were asked once: never again


HOSTED_SLOTS = 16  # requests in flight at first against OpenAI's API; its 429s halve it (runner.AdaptiveLimiter)
OPENAI_URL = "https://api.openai.com/v1"


def is_openai_api(base_url: str | None) -> bool:
    """OpenAI's own API or Azure OpenAI (no base URL means OpenAI's). Any other server, local or remote
    (llama.cpp, Ollama, vLLM, a gateway), may queue what it cannot run instead of answering 429."""
    url = (base_url or OPENAI_URL).casefold()
    return any(host in url for host in ("api.openai.com", "openai.azure.com", "cognitiveservices.azure.com"))


def fitted_window(window: int, ratio: float | None, margin: float) -> int:
    """The window in our tokens: a server whose tokenizer counts more than the margin covers gets less."""
    if ratio is not None and ratio > 1 + margin:
        return int(window * (1 + margin) / ratio)
    return window


def _llama_props(props: object) -> tuple[int | None, int | None]:
    """llama.cpp's `GET /props`: its window (`default_generation_settings.n_ctx`) and `total_slots`, where
    it states them (None for anything else, another server's answer included)."""
    if not isinstance(props, dict):
        return None, None
    settings = props.get("default_generation_settings")
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    total = props.get("total_slots")
    window = n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None
    return window, (total if isinstance(total, int) and total > 0 else None)


@dataclass(frozen=True)
class ServerFacts:
    """What a server's own metadata routes say about it (all None: it says nothing)."""

    kind: str | None = None  # "llama.cpp server", "vLLM", "LM Studio", "Ollama"
    window: int | None = None
    window_source: str | None = None  # the route and field it came from
    slots: int | None = None
    ollama_default_window: bool = False  # Ollama, with no num_ctx set: its window depends on the machine


def _get_json(
    http: httpx2.Client, method: str, url: str, headers: Mapping[str, str] | None, timeout: float, body: Any = None
) -> Any:
    try:
        response = http.request(method, url, json=body, headers=dict(headers or {}), timeout=timeout)
        return response.json() if response.status_code == 200 else None
    except Exception:  # no such route, not JSON, no server: nothing learned
        return None


def _ours(
    entries: object, model: str, field: str, keep: Callable[[dict[str, Any]], bool] = lambda _: True
) -> int | None:
    """`field` of our model's entry in a models list; of the only entry when the list holds one model
    (a server serving one model under another name); else nothing (another model's window is not ours)."""
    listed = [e for e in entries if isinstance(e, dict) and keep(e)] if isinstance(entries, list) else []
    entry = next((e for e in listed if e.get("id") == model), listed[0] if len(listed) == 1 else None)
    value = entry.get(field) if entry is not None else None
    return value if isinstance(value, int) and value > 0 else None


def server_facts(
    http: httpx2.Client,
    base_url: str,
    model: str,
    headers: Mapping[str, str] | None = None,
    timeout: float = PROBE_TIMEOUT,
) -> ServerFacts:
    """Ask, in turn, the routes where local servers state their window: llama.cpp `/props` (and its
    slots), vLLM `/v1/models` `max_model_len`, LM Studio `/api/v0/models` `loaded_context_length`, Ollama
    `/api/show` `num_ctx`; stop at the first that says. Only our model's entry of a list counts (or the
    only one). Routes a server lacks answer 404; never raises."""
    root = base_url.rstrip("/").removesuffix("/v1")
    props = _get_json(http, "GET", f"{root}/props", headers, timeout)
    window, slots = _llama_props(props)
    if isinstance(props, dict) and isinstance(props.get("default_generation_settings"), dict):
        return ServerFacts("llama.cpp server", window, "/props n_ctx" if window else None, slots)
    models = _get_json(http, "GET", f"{base_url.rstrip('/')}/models", headers, timeout)
    length = _ours(models.get("data") if isinstance(models, dict) else None, model, "max_model_len")
    if length is not None:
        return ServerFacts("vLLM", length, "/v1/models max_model_len")
    lm = _get_json(http, "GET", f"{root}/api/v0/models", headers, timeout)
    chat_models = lm.get("data") if isinstance(lm, dict) else None  # not its embedding models
    length = _ours(chat_models, model, "loaded_context_length", lambda e: e.get("type", "llm") in ("llm", "vlm"))
    if length is not None:
        return ServerFacts("LM Studio", length, "/api/v0/models loaded_context_length")
    show = _get_json(http, "POST", f"{root}/api/show", headers, timeout, {"model": model})
    if isinstance(show, dict) and ("model_info" in show or "parameters" in show):
        for line in str(show.get("parameters") or "").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "num_ctx" and parts[1].isdigit() and int(parts[1]) > 0:
                return ServerFacts("Ollama", int(parts[1]), "/api/show num_ctx")
        return ServerFacts("Ollama", ollama_default_window=True)
    return ServerFacts()


def probe_limits(
    base_url: str,
    model: str,
    sample: str,
    our_count: Callable[[], int],
    headers: Mapping[str, str] | None = None,
) -> ServerLimits:
    """One look at a server's own routes (not OpenAI's): where it states its window and slots
    (`server_facts`), then its tokenize route.

    Routes a server does not have answer 404 and tell nothing; this never raises. One HTTP client (one
    connection) asks them all: this runs before a first request, once per endpoint.
    """
    import httpx2

    with httpx2.Client(verify=tls_verification(base_url)) as http:
        facts = server_facts(http, base_url, model, headers)
        counted = server_token_count(base_url, model, sample, PROBE_TIMEOUT, headers, http)
    ratio: float | None = None
    ours = our_count() if counted is not None else 0  # our tokenizer is loaded only when there is a count to compare
    if counted is not None and counted[0] > 0 and ours > 0:
        ratio = round(counted[0] / ours, 3)
    return ServerLimits(facts.window, ratio, facts.slots, probed=True)
