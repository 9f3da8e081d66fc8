"""A real OpenAI-compatible HTTP server on 127.0.0.1 for the test suite.

Team rule: tests never touch the network and never mock the `openai` client. Instead the
client talks to this server, which speaks enough of the OpenAI API (chat completions, files,
batches, models) for the real SDK to work against it, serves scripted answers, and can
misbehave on purpose (429s, 5xx, dropped connections, refusals, truncation, context overflow).

Standard library only: `http.server.ThreadingHTTPServer`, HTTP/1.1 keep-alive, Content-Length.

Typical use::

    with FakeOpenAI() as fake:
        fake.enqueue(rate_limited(0.01), reply({"title": "Weekly sync"}))
        client = openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=2)
        ...
        assert len(fake.chat_requests()) == 2

Chat requests are answered, in this order, by:
1. the server-wide limits (`max_concurrency`, `rpm`, `tpm`): 429 with `retry-after`;
2. `context_limit`: 400 `context_length_exceeded` (in the words of `server`, when set);
3. `server`: a `response_format` that server refuses gets its documented answer (see `SERVERS`);
4. the next queued behaviour (FIFO), else `default`, else a 500 that says nothing was scripted
   (sent with `x-should-retry: false` so the SDK does not retry it).
Steps 1-3 do not consume a queued behaviour.

Server personalities (`fake.server = "llama-cpp-python"` etc.) imitate the known answers of the
local servers people run (`../shared/reference/conventions.md` section 4): which `response_format`
types they refuse and how (llama-cpp-python: a 500; LM Studio: a 400), their context-overflow
wording, and their metadata routes (llama.cpp `/props` and `/tokenize`, llama-cpp-python
`/extras/tokenize`, vLLM `/tokenize` and `max_model_len`, LM Studio `/api/v0/models`, Ollama
`/api/show`). `token_ratio` makes the server count more tokens than o200k, as real models' own
tokenizers do.
"""

from __future__ import annotations

import abc
import contextlib
import email.parser
import email.policy
import itertools
import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from pydantic import BaseModel

__all__ = [
    "SERVERS",
    "Behaviour",
    "ChatCall",
    "FakeOpenAI",
    "Outcome",
    "RecordedRequest",
    "Stats",
    "bad_request",
    "content_filter",
    "count_prompt_tokens",
    "delayed",
    "drop_connection",
    "invalid_json",
    "rate_limited",
    "refusal",
    "reject_response_format",
    "reply",
    "responder",
    "schema_violation",
    "server_error",
    "status",
    "truncated",
]

JSON = dict[str, Any]

# Personalities for `FakeOpenAI.server`: how each answers response_format types (conventions.md §4).
SERVERS = ("openai", "llama-server", "llama-cpp-python", "ollama", "lmstudio", "vllm")

# --------------------------------------------------------------------------------------------
# Token counting
# --------------------------------------------------------------------------------------------

_encoding_lock = threading.Lock()
_encoding: Any = None


def _o200k() -> Any:
    """The tiktoken `o200k_base` encoding, loaded once (needs TIKTOKEN_CACHE_DIR offline)."""
    global _encoding
    with _encoding_lock:
        if _encoding is None:
            import tiktoken

            _encoding = tiktoken.get_encoding("o200k_base")
        return _encoding


def _message_texts(body: JSON) -> list[str]:
    texts: list[str] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    texts.append(part["text"])
    return texts


def count_prompt_tokens(body: JSON) -> int:
    """Tokens the fake charges for a chat request: o200k_base over every message's text
    content plus `json.dumps(response_format)` when present. No per-message overhead."""
    enc = _o200k()
    total = sum(len(enc.encode(text, disallowed_special=())) for text in _message_texts(body))
    response_format = body.get("response_format")
    if response_format is not None:
        total += len(enc.encode(json.dumps(response_format), disallowed_special=()))
    return int(total)


def _rough_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


# --------------------------------------------------------------------------------------------
# Behaviours
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatCall:
    """What a behaviour gets to see about one chat request."""

    body: JSON
    prompt_tokens_counted: int | None
    completion_id: str
    request_id: str
    created: int

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "fake-model")


@dataclass(frozen=True)
class Outcome:
    """An HTTP answer (or a dropped connection) produced by a behaviour."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False
    delay: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _json_outcome(status_code: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> Outcome:
    return Outcome(status_code, json.dumps(body).encode(), (("content-type", "application/json"), *headers))


def _error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> JSON:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class Behaviour(abc.ABC):
    """How the server answers one chat request. Build them with the functions below."""

    @abc.abstractmethod
    def outcome(self, call: ChatCall) -> Outcome: ...


@dataclass(frozen=True, repr=False)
class _Reply(Behaviour):
    content: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    finish_reason: str = "stop"
    model: str | None = None
    refusal: str | None = None
    label: str = "reply"

    def __repr__(self) -> str:
        shown = self.refusal if self.content is None else self.content
        return f"{self.label}({shown!r:.60}, finish_reason={self.finish_reason!r})"

    def outcome(self, call: ChatCall) -> Outcome:
        prompt = self.prompt_tokens
        if prompt is None:
            prompt = _rough_tokens("".join(_message_texts(call.body)))
        completion = self.completion_tokens
        if completion is None:
            limit = call.body.get("max_completion_tokens") or call.body.get("max_tokens")
            if self.finish_reason == "length" and isinstance(limit, int):
                completion = limit
            else:
                completion = _rough_tokens(self.content or self.refusal or "")
        body = {
            "id": call.completion_id,
            "object": "chat.completion",
            "created": call.created,
            "model": self.model or call.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": self.content,
                        "refusal": self.refusal,
                        "annotations": [],
                    },
                    "finish_reason": self.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fakeopenai",
        }
        out = _json_outcome(200, body)
        return Outcome(out.status, out.body, out.headers, prompt_tokens=prompt, completion_tokens=completion)


@dataclass(frozen=True)
class _Status(Behaviour):
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()

    def outcome(self, call: ChatCall) -> Outcome:
        if isinstance(self.body, bytes | str):
            raw = self.body.encode() if isinstance(self.body, str) else self.body
            return Outcome(self.status, raw, (("content-type", "text/plain"), *self.headers))
        return _json_outcome(self.status, self.body, self.headers)


@dataclass(frozen=True)
class _Drop(Behaviour):
    def outcome(self, call: ChatCall) -> Outcome:
        return Outcome(0, drop=True)


@dataclass(frozen=True)
class _Delayed(Behaviour):
    seconds: float
    inner: Behaviour

    def outcome(self, call: ChatCall) -> Outcome:
        out = self.inner.outcome(call)
        return Outcome(
            out.status,
            out.body,
            out.headers,
            out.drop,
            out.delay + self.seconds,
            out.prompt_tokens,
            out.completion_tokens,
        )


@dataclass(frozen=True)
class _Responder(Behaviour):
    fn: Callable[[JSON], Behaviour]

    def outcome(self, call: ChatCall) -> Outcome:
        chosen = self.fn(call.body)
        if not isinstance(chosen, Behaviour):
            raise TypeError(f"responder function returned {chosen!r}, not a Behaviour")
        return chosen.outcome(call)


def _content_text(content: str | JSON | BaseModel) -> str:
    if isinstance(content, BaseModel):
        return content.model_dump_json()
    if isinstance(content, dict):
        return json.dumps(content, ensure_ascii=False)
    return content


def reply(
    content: str | JSON | BaseModel,
    *,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    cached_tokens: int = 0,
    finish_reason: str = "stop",
    model: str | None = None,
) -> Behaviour:
    """A normal ChatCompletion; dicts and pydantic models are sent as their JSON text.
    Usage defaults: prompt = message characters / 4, completion = len(content) / 4."""
    return _Reply(
        _content_text(content),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        finish_reason=finish_reason,
        model=model,
    )


def schema_violation(content: JSON) -> Behaviour:
    """Valid JSON that does not match the requested schema (a `reply` under a clearer name)."""
    return _Reply(_content_text(content), label="schema_violation")


def invalid_json(content: str = 'Sure! Here is the summary: {"title": ') -> Behaviour:
    """200 whose message.content is not JSON."""
    return _Reply(content, label="invalid_json")


def refusal(text: str = "I can't help with that.") -> Behaviour:
    """200 with message.content None and message.refusal set."""
    return _Reply(None, refusal=text, label="refusal")


def truncated(partial: str = '{"title": "Weekly sy') -> Behaviour:
    """200 with finish_reason "length" (completion_tokens = the request's token limit if set)."""
    return _Reply(partial, finish_reason="length", label="truncated")


def content_filter(partial: str | None = None) -> Behaviour:
    """200 with finish_reason "content_filter"."""
    return _Reply(partial, finish_reason="content_filter", label="content_filter")


def rate_limited(retry_after: float | None = 0.01, *, ms: bool = False) -> Behaviour:
    """429 with `retry-after` seconds (or `retry-after-ms` when ms=True; no header if None)."""
    headers: tuple[tuple[str, str], ...] = ()
    if retry_after is not None:
        headers = (
            (("retry-after-ms", _num(retry_after * 1000)),) if ms else (("retry-after", _num(retry_after)),)
        )
    body = _error_body(
        "Rate limit reached for requests (fake). Please try again later.",
        "rate_limit_exceeded",
        code="rate_limit_exceeded",
    )
    return _Status(429, body, headers)


def server_error(status: int = 500, *, retry_after: float | None = None) -> Behaviour:
    """A 5xx (the SDK retries these; with its own ~0.5 s backoff unless retry_after is given)."""
    headers = (("retry-after", _num(retry_after)),) if retry_after is not None else ()
    body = _error_body("The server had an error while processing your request.", "server_error")
    return _Status(status, body, headers)


def drop_connection() -> Behaviour:
    """Close the socket without sending anything (the SDK raises APIConnectionError)."""
    return _Drop()


def reject_response_format(kind: str = "json_schema") -> Behaviour:
    """400 the way a model without structured-output support rejects `response_format`."""
    return bad_request(
        f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model.",
        param="response_format",
    )


def bad_request(message: str, param: str | None = None, code: str | None = None) -> Behaviour:
    """400 invalid_request_error."""
    return _Status(400, _error_body(message, "invalid_request_error", param, code))


def status(code: int, body: Any, headers: dict[str, str] | None = None) -> Behaviour:
    """Any status; `body` is JSON-encoded unless it is str/bytes (sent as text/plain)."""
    return _Status(code, body, tuple((headers or {}).items()))


def delayed(seconds: float, behaviour: Behaviour) -> Behaviour:
    """Wait `seconds` before answering with `behaviour` (ignored in batches)."""
    return _Delayed(seconds, behaviour)


def responder(fn: Callable[[JSON], Behaviour]) -> Behaviour:
    """Choose the behaviour from the request body, e.g. by what the user message contains."""
    return _Responder(fn)


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


# --------------------------------------------------------------------------------------------
# Server state
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One HTTP request as received. `headers` keys are lowercase; repr hides authorization."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    raw: bytes
    prompt_tokens_counted: int | None = None
    response_status: int | None = None  # None until answered, 0 for a dropped connection

    @property
    def body(self) -> Any:
        return self.json

    def __repr__(self) -> str:
        safe = {
            k: ("<redacted>" if k in ("authorization", "api-key") else v) for k, v in self.headers.items()
        }
        return (
            f"RecordedRequest({self.method} {self.path} -> {self.response_status}, headers={safe}, "
            f"json={self.json!r:.200}, prompt_tokens_counted={self.prompt_tokens_counted})"
        )


@dataclass
class Stats:
    requests: int = 0  # chat requests received over HTTP
    rate_limited: int = 0  # 429 answers (server-wide limits and rate_limited() behaviours)
    limit_rejections: int = 0  # 429s produced by rpm/tpm/max_concurrency
    in_flight: int = 0
    max_in_flight: int = 0
    prompt_tokens: int = 0  # counted prompt tokens of admitted chat requests
    completion_tokens: int = 0  # completion tokens of successful replies


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; and never print headers

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        raw = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = self.server.fake._dispatch(self.command, self.path, headers, raw)
        if outcome.delay > 0:
            self.server.fake._stopping.wait(outcome.delay)
        if outcome.drop or self.server.fake._stopping.is_set():
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(outcome.status)
        for name, value in outcome.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(outcome.body)))
        self.end_headers()
        self.wfile.write(outcome.body)
        self.wfile.flush()

    do_GET = _handle
    do_POST = _handle
    do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeOpenAI


_CHAT_PATH = "/v1/chat/completions"


class FakeOpenAI:
    """The loopback OpenAI server. See the module docstring."""

    def __init__(self) -> None:
        self.base_url: str = ""
        self.requests: list[RecordedRequest] = []
        self.default: Behaviour | None = None
        self.context_limit: int | None = None
        self.server: str | None = None  # a personality from SERVERS; None = plain OpenAI
        self.token_ratio: float = 1.0  # the server's tokenizer counts this many times o200k
        self.slots: int = 1  # parallel requests the server says it runs (llama.cpp /props)
        self.rpm: int | None = None
        self.tpm: int | None = None
        self.max_concurrency: int | None = None
        self.latency: float = 0.0
        self.time_scale: float = 1.0
        self.api_key: str | None = None  # when set, other bearer tokens get 401
        self.batch_seed: int = 0
        self.batch_errors_to_error_file: bool = False  # True: non-200 lines go to error_file_id
        self.stats = Stats()
        self.batch_lines: list[JSON] = []  # input lines processed by complete_batches()
        self.errors: list[str] = []  # exceptions raised while answering (e.g. in a responder)
        self.files: dict[str, _File] = {}
        self.batches: dict[str, JSON] = {}
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._window: deque[tuple[float, int]] = deque()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("FakeOpenAI already started")
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeOpenAI", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---- scripting ---------------------------------------------------------------------------

    def enqueue(self, *behaviours: Behaviour) -> None:
        for behaviour in behaviours:
            if not isinstance(behaviour, Behaviour):
                raise TypeError(f"not a Behaviour: {behaviour!r}")
        with self._lock:
            self._queue.extend(behaviours)

    def pending(self) -> int:
        """How many queued behaviours have not been used yet."""
        with self._lock:
            return len(self._queue)

    def chat_requests(self) -> list[JSON]:
        with self._lock:
            return [
                r.json
                for r in self.requests
                if r.method == "POST" and r.path == _CHAT_PATH and isinstance(r.json, dict)
            ]

    # ---- batches -----------------------------------------------------------------------------

    def complete_batches(self) -> list[str]:
        """Process every validating/in_progress batch; returns the ids completed."""
        with self._lock:
            todo = [b for b in self.batches.values() if b["status"] in ("validating", "in_progress")]
            for batch in self.batches.values():
                if batch["status"] == "cancelling":
                    batch.update(status="cancelled", cancelled_at=int(time.time()))
        done = []
        for batch in todo:
            self._run_batch(batch)
            done.append(batch["id"])
        return done

    def fail_batch(self, batch_id: str, message: str = "Batch failed (fake).", code: str = "failed") -> None:
        with self._lock:
            batch = self.batches[batch_id]
            batch.update(
                status="failed",
                failed_at=int(time.time()),
                errors={
                    "object": "list",
                    "data": [{"code": code, "message": message, "line": None, "param": None}],
                },
            )

    def expire_batch(self, batch_id: str) -> None:
        with self._lock:
            self.batches[batch_id].update(status="expired", expired_at=int(time.time()))

    # ---- internals ---------------------------------------------------------------------------

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _dispatch(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Outcome:
        path = target.split("?", 1)[0]
        body: Any = None
        if raw and "json" in headers.get("content-type", ""):
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        record = RecordedRequest(method, path, headers, body, raw)
        with self._lock:
            self.requests.append(record)
        try:
            outcome = self._route(method, path, headers, raw, record)
        except Exception as exc:  # surface bugs in responders/tests as a clear, non-retried 500
            message = f"FakeOpenAI: {type(exc).__name__}: {exc}"
            with self._lock:
                self.errors.append(message)
            outcome = _json_outcome(
                500, _error_body(message, "fake_openai_error"), (("x-should-retry", "false"),)
            )
        if not outcome.drop:
            request_id = f"req_fake{self._next_id():06d}"
            outcome = Outcome(
                outcome.status,
                outcome.body,
                (*outcome.headers, ("x-request-id", request_id)),
                delay=outcome.delay,
            )
        record.response_status = 0 if outcome.drop else outcome.status
        return outcome

    def _route(
        self, method: str, path: str, headers: dict[str, str], raw: bytes, record: RecordedRequest
    ) -> Outcome:
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return _json_outcome(
                401,
                _error_body("Incorrect API key provided.", "invalid_request_error", code="invalid_api_key"),
            )
        parts = path.rstrip("/").split("/")
        if method == "POST" and path == _CHAT_PATH:
            if not isinstance(record.json, dict):
                return _json_outcome(
                    400, _error_body("We could not parse the JSON body.", "invalid_request_error")
                )
            return self._http_chat(record)
        personal = self._personal_route(method, path, record)
        if personal is not None:
            return personal
        if method == "GET" and path == "/v1/models":
            return _json_outcome(
                200,
                {
                    "object": "list",
                    "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}],
                },
            )
        if method == "POST" and path == "/v1/files":
            return self._upload(headers, raw)
        if len(parts) >= 4 and parts[1:3] == ["v1", "files"]:
            with self._lock:
                file = self.files.get(parts[3])
            if file is None:
                return _not_found(f"No such File object: {parts[3]}")
            if method == "GET" and len(parts) == 4:
                return _json_outcome(200, file.to_json())
            if method == "GET" and len(parts) == 5 and parts[4] == "content":
                return Outcome(200, file.data, (("content-type", "application/octet-stream"),))
        if method == "POST" and path == "/v1/batches":
            return self._create_batch(record.json)
        if method == "GET" and path == "/v1/batches":
            with self._lock:
                data = [dict(b) for b in reversed(self.batches.values())]
            first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
            return _json_outcome(
                200, {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": False}
            )
        if len(parts) >= 4 and parts[1:3] == ["v1", "batches"]:
            with self._lock:
                batch = self.batches.get(parts[3])
                if batch is None:
                    return _not_found(f"No such Batch object: {parts[3]}")
                if method == "GET" and len(parts) == 4:
                    if batch["status"] == "validating":
                        batch.update(status="in_progress", in_progress_at=int(time.time()))
                    elif batch["status"] == "cancelling":
                        batch.update(status="cancelled", cancelled_at=int(time.time()))
                    return _json_outcome(200, dict(batch))
                if method == "POST" and len(parts) == 5 and parts[4] == "cancel":
                    if batch["status"] in ("validating", "in_progress"):
                        batch.update(status="cancelling", cancelling_at=int(time.time()))
                    return _json_outcome(200, dict(batch))
        return _not_found(f"FakeOpenAI: unknown route {method} {path}")

    # -- chat --

    def _count(self, body: JSON) -> int:
        if self.server not in (None, "openai"):  # local servers turn a schema into a grammar, not prompt text
            body = {k: v for k, v in body.items() if k != "response_format"}
        counted = count_prompt_tokens(body)
        return counted if self.token_ratio == 1.0 else int(counted * self.token_ratio + 0.999)

    def _personal_route(self, method: str, path: str, record: RecordedRequest) -> Outcome | None:
        """Metadata and tokenizer routes of the chosen server personality."""
        server, limit = self.server, self.context_limit or 4096
        body = record.json if isinstance(record.json, dict) else {}

        def tokens(text: Any) -> list[int]:
            count = self._count({"messages": [{"role": "user", "content": str(text or "")}]})
            return list(range(count))

        if server in ("llama-server", "llama-cpp-python") and method == "GET" and path == "/v1/models":
            meta = {"n_ctx_train": limit * 4, "n_params": 1_000_000} if server == "llama-server" else None
            model = {"id": "local-model", "object": "model", "owned_by": "me", "meta": meta}
            return _json_outcome(200, {"object": "list", "data": [model]})
        if server == "llama-server" and method == "GET" and path == "/props":
            return _json_outcome(
                200, {"default_generation_settings": {"n_ctx": limit, "params": {}}, "total_slots": self.slots}
            )
        if server == "llama-server" and method == "POST" and path == "/tokenize":
            return _json_outcome(200, {"tokens": tokens(body.get("content"))})
        if server == "llama-cpp-python" and method == "POST" and path == "/extras/tokenize":
            return _json_outcome(200, {"tokens": tokens(body.get("input"))})
        if server == "vllm" and method == "GET" and path == "/v1/models":
            model = {"id": "local-model", "object": "model", "owned_by": "vllm", "max_model_len": limit}
            return _json_outcome(200, {"object": "list", "data": [model]})
        if server == "vllm" and method == "POST" and path == "/tokenize":
            counted = tokens(body.get("prompt") or json.dumps(body.get("messages")))
            return _json_outcome(200, {"count": len(counted), "max_model_len": limit, "tokens": counted})
        if server == "lmstudio" and method == "GET" and path == "/api/v0/models":
            model = {
                "id": "local-model",
                "type": "llm",
                "state": "loaded",
                "max_context_length": limit * 4,
                "loaded_context_length": limit,
            }
            return _json_outcome(200, {"object": "list", "data": [model]})
        if server == "ollama" and method == "POST" and path == "/api/show":
            info = {"model_info": {"llama.context_length": limit * 4}, "parameters": f"num_ctx {limit}"}
            return _json_outcome(200, info)
        return None

    def _refusal(self, body: JSON) -> Outcome | None:
        """The documented answer of `server` to a response_format it does not take."""
        response_format = body.get("response_format")
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if self.server == "llama-cpp-python" and kind == "json_schema":
            message = (
                "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input should be "
                "'text' or 'json_object' [type=literal_error, input_value='json_schema', input_type=str]"
            )
            error = {"message": message, "type": "internal_server_error", "param": None, "code": None}
            return _json_outcome(500, {"error": error})
        if self.server == "lmstudio" and kind == "json_object":
            return _json_outcome(400, {"error": "'response_format.type' must be 'json_schema' or 'text'"})
        return None

    def _overflow(self, tokens: int) -> Outcome:
        limit = self.context_limit or 0
        if self.server == "llama-server":
            error = {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": tokens,
                "n_ctx": limit,
            }
            return _json_outcome(400, {"error": error})
        if self.server == "llama-cpp-python":
            message = f"Requested tokens ({tokens}) exceed context window of {limit}"
        else:
            message = (
                f"This model's maximum context length is {limit} tokens. However, your "
                f"messages resulted in {tokens} tokens. Please reduce the length of the messages."
            )
        return _json_outcome(
            400, _error_body(message, "invalid_request_error", "messages", "context_length_exceeded")
        )

    def _http_chat(self, record: RecordedRequest) -> Outcome:
        body: JSON = record.json
        tokens = self._count(body)
        record.prompt_tokens_counted = tokens
        requested = tokens + int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
        with self._lock:
            self.stats.requests += 1
            limited = self._check_limits(requested)
            if limited is not None:
                self.stats.rate_limited += 1
                self.stats.limit_rejections += 1
                return limited
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            self.stats.prompt_tokens += tokens
        try:
            if self.latency > 0:
                self._stopping.wait(self.latency)
            outcome = self._chat(body, tokens)
        finally:
            with self._lock:
                self.stats.in_flight -= 1
        with self._lock:
            if outcome.status == 429:
                self.stats.rate_limited += 1
            self.stats.completion_tokens += outcome.completion_tokens
        return outcome

    def _check_limits(self, requested_tokens: int) -> Outcome | None:
        """Called with the lock held. Sliding window of 60*time_scale seconds."""
        now = time.monotonic()
        window = 60.0 * self.time_scale
        while self._window and self._window[0][0] <= now - window:
            self._window.popleft()
        if self.max_concurrency is not None and self.stats.in_flight >= self.max_concurrency:
            wait = self.latency if self.latency > 0 else 0.01
            return _limit_429(
                "requests", f"Too many concurrent requests (limit {self.max_concurrency}).", wait
            )
        if self.rpm is not None and len(self._window) >= self.rpm:
            wait = self._window[len(self._window) - self.rpm][0] + window - now
            return _limit_429("requests", f"Rate limit reached for requests: Limit {self.rpm} RPM.", wait)
        if self.tpm is not None:
            if requested_tokens > self.tpm:
                return _limit_429(
                    "tokens",
                    f"Request too large: Limit {self.tpm} TPM, Requested {requested_tokens}.",
                    None,
                )
            used = sum(t for _, t in self._window)
            if used + requested_tokens > self.tpm:
                freed, wait = used, window
                for ts, t in self._window:
                    freed -= t
                    if freed + requested_tokens <= self.tpm:
                        wait = ts + window - now
                        break
                return _limit_429(
                    "tokens",
                    f"Rate limit reached for tokens: Limit {self.tpm} TPM, Used {used}, "
                    f"Requested {requested_tokens}.",
                    wait,
                )
        self._window.append((now, requested_tokens))
        return None

    def _chat(self, body: JSON, tokens: int) -> Outcome:
        """Shared by HTTP and batch: context limit, then queue/default."""
        answer = int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
        limit = self.context_limit
        if limit is not None and (tokens > limit or (self.server is not None and tokens + answer > limit)):
            return self._overflow(tokens)  # local servers refuse prompt + answer beyond n_ctx
        refused = self._refusal(body) if self.server is not None else None
        if refused is not None:
            return refused
        with self._lock:
            behaviour = self._queue.popleft() if self._queue else self.default
            n = next(self._ids)
        if behaviour is None:
            message = (
                f"FakeOpenAI: no behaviour queued for POST {_CHAT_PATH} and no default set "
                f"(chat request #{len(self.chat_requests())}; use fake.enqueue(...) or fake.default = ...)"
            )
            return _json_outcome(
                500, _error_body(message, "fake_openai_unscripted"), (("x-should-retry", "false"),)
            )
        call = ChatCall(body, tokens, f"chatcmpl-fake{n:06d}", f"req_fake{n:06d}", int(time.time()))
        return behaviour.outcome(call)

    # -- files and batches --

    def _upload(self, headers: dict[str, str], raw: bytes) -> Outcome:
        content_type = headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return _json_outcome(400, _error_body("Expected multipart/form-data.", "invalid_request_error"))
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = (part.get_filename(), payload)
        if "file" not in fields or "purpose" not in fields:
            return _json_outcome(
                400, _error_body("Missing required parameter: 'file' or 'purpose'.", "invalid_request_error")
            )
        filename, data = fields["file"]
        file = _File(
            f"file-fake{self._next_id():06d}",
            filename or "upload",
            fields["purpose"][1].decode(),
            data,
            int(time.time()),
        )
        with self._lock:
            self.files[file.id] = file
        return _json_outcome(200, file.to_json())

    def _create_batch(self, body: Any) -> Outcome:
        if not isinstance(body, dict):
            return _json_outcome(
                400, _error_body("We could not parse the JSON body.", "invalid_request_error")
            )
        input_file_id = body.get("input_file_id")
        with self._lock:
            if input_file_id not in self.files:
                return _not_found(f"No such File object: {input_file_id}")
        if body.get("endpoint") != _CHAT_PATH:
            return _json_outcome(
                400,
                _error_body(
                    f"FakeOpenAI only supports endpoint {_CHAT_PATH}", "invalid_request_error", "endpoint"
                ),
            )
        if body.get("completion_window") != "24h":
            return _json_outcome(
                400,
                _error_body("completion_window must be '24h'", "invalid_request_error", "completion_window"),
            )
        now = int(time.time())
        batch: JSON = {
            "id": f"batch_fake{self._next_id():06d}",
            "object": "batch",
            "endpoint": _CHAT_PATH,
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        with self._lock:
            self.batches[batch["id"]] = batch
        return _json_outcome(200, dict(batch))

    def _run_batch(self, batch: JSON) -> None:
        with self._lock:
            data = self.files[batch["input_file_id"]].data
        lines: list[JSON] = []
        seen: set[str] = set()
        for number, text in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
            if not text.strip():
                continue
            problem = None
            try:
                line = json.loads(text)
            except ValueError:
                line, problem = None, "Line is not valid JSON."
            if line is not None:
                if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
                    problem = "Missing custom_id."
                elif line["custom_id"] in seen:
                    problem = f"Duplicate custom_id {line['custom_id']!r}."
                elif line.get("url") != _CHAT_PATH or line.get("method") != "POST":
                    problem = f"Line must be POST {_CHAT_PATH}."
                elif not isinstance(line.get("body"), dict):
                    problem = "Missing body."
            if problem is not None or line is None:
                self.fail_batch(batch["id"], f"Line {number}: {problem}", code="invalid_request")
                with self._lock:
                    batch["errors"]["data"][0]["line"] = number
                return
            seen.add(line["custom_id"])
            lines.append(line)

        outputs: list[JSON] = []
        ok = failed = prompt_total = completion_total = cached_total = 0
        for line in lines:
            with self._lock:
                self.batch_lines.append(line)
            body = line["body"]
            tokens = self._count(body)
            try:
                outcome = self._chat(body, tokens)
            except Exception as exc:
                with self._lock:
                    self.errors.append(f"FakeOpenAI batch: {type(exc).__name__}: {exc}")
                outcome = _json_outcome(500, _error_body(str(exc), "fake_openai_error"))
            request_id = f"req_fake{self._next_id():06d}"
            out: JSON = {"id": f"batch_req_fake{self._next_id():06d}", "custom_id": line["custom_id"]}
            if outcome.drop:
                out.update(
                    response=None, error={"code": "server_error", "message": "Connection dropped (fake)."}
                )
            else:
                out.update(
                    response={
                        "status_code": outcome.status,
                        "request_id": request_id,
                        "body": outcome.json(),
                    },
                    error=None,
                )
            if not outcome.drop and outcome.status == 200:
                ok += 1
                usage = (outcome.json() or {}).get("usage") or {}
                prompt_total += int(usage.get("prompt_tokens") or 0)
                completion_total += int(usage.get("completion_tokens") or 0)
                cached_total += int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
            else:
                failed += 1
            outputs.append(out)

        random.Random(f"{self.batch_seed}:{batch['id']}").shuffle(outputs)
        if self.batch_errors_to_error_file:
            good = [o for o in outputs if o["response"] is not None and o["response"]["status_code"] == 200]
            bad = [o for o in outputs if o not in good]
        else:
            good, bad = outputs, []
        output_id = self._store_output(batch["id"], "output", good) if good else None
        error_id = self._store_output(batch["id"], "error", bad) if bad else None
        now = int(time.time())
        with self._lock:
            if batch["status"] not in ("validating", "in_progress"):
                return  # cancelled/failed/expired while we were working
            batch.update(
                status="completed",
                in_progress_at=batch["in_progress_at"] or now,
                finalizing_at=now,
                completed_at=now,
                output_file_id=output_id,
                error_file_id=error_id,
                request_counts={"total": len(lines), "completed": ok, "failed": failed},
                usage={
                    "input_tokens": prompt_total,
                    "input_tokens_details": {"cached_tokens": cached_total},
                    "output_tokens": completion_total,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": prompt_total + completion_total,
                },
            )

    def _store_output(self, batch_id: str, kind: str, lines: list[JSON]) -> str:
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        file = _File(
            f"file-fake{self._next_id():06d}",
            f"{batch_id}_{kind}.jsonl",
            "batch_output",
            data,
            int(time.time()),
        )
        with self._lock:
            self.files[file.id] = file
        return file.id

    def iter_output_lines(self, file_id: str) -> Iterator[JSON]:
        """Convenience for tests: the parsed JSONL lines of a stored file."""
        with self._lock:
            data = self.files[file_id].data
        for text in data.decode().splitlines():
            if text.strip():
                yield json.loads(text)


def _not_found(message: str) -> Outcome:
    return _json_outcome(404, _error_body(message, "invalid_request_error", code="not_found"))


def _limit_429(kind: str, message: str, retry_after: float | None) -> Outcome:
    headers: tuple[tuple[str, str], ...] = ()
    if retry_after is not None:
        headers = (("retry-after", _num(max(retry_after, 0.001))),)
    return _json_outcome(429, _error_body(message, kind, code="rate_limit_exceeded"), headers)
