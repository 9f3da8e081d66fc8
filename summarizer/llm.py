"""The model client: one structured extraction per call, whatever the server.

Strategy (see docs in README, "Pointing it at other servers"):
1. `chat.completions.parse` with the pydantic model as a strict `json_schema`.
2. A server that refuses that `response_format` (whatever the status and wording: llama-cpp-python
   answers with a 500) is asked again in the next mode: a non-strict schema, llama.cpp's
   `json_object` + `schema`, JSON mode with the schema in the prompt, then plain text with the
   schema in the prompt; types the server says it never takes are skipped. What worked is
   remembered per base URL and model (in the client and the vault's store); the
   `structured_output` setting pins a mode instead.
3. Whatever mode, the answer is validated with pydantic. A refusal, truncation (more answer
   tokens, within the window), content filter, invalid JSON or schema violation gets ONE repair
   attempt that tells the model what was wrong; then a short, clear error.
Retries are ours (the SDK's are off), so each is logged and a generation that timed out is never
sent again while a local server may still be working on it; the wait grows with `max_tokens`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import ValidationError

from summarizer import servers
from summarizer.config import ResolvedSettings
from summarizer.errors import ConfigError, ModelError
from summarizer.models import MeetingExtraction, Usage, unchecked_extraction
from summarizer.modelseam import (
    ContextOverflowError,
    HttpObserver,
    HttpStatus,
    RateLimitedError,
    ServerUnavailableError,
)
from summarizer.pricing import estimate_cost
from summarizer.turns import yield_turn

if TYPE_CHECKING:
    import openai

Mode = Literal["strict", "schema", "json_object_schema", "json", "prompt"]
LADDER: tuple[Mode, ...] = ("strict", "schema", "json_object_schema", "json", "prompt")
# The `response_format.type` each mode sends: a server that refuses a type is not asked in it again.
MODE_TYPES: dict[Mode, str | None] = {
    "strict": "json_schema",
    "schema": "json_schema",
    "json_object_schema": "json_object",
    "json": "json_object",
    "prompt": None,
}
MAX_REPAIR_TOKENS = 16384
REPAIR_OVERHEAD = 100  # tokens of the repair request added to a truncated answer's prompt
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")
_LEARNED_LOCK = threading.Lock()


class CallLog(Protocol):
    def get_mode(self, endpoint: str) -> str | None: ...
    def set_mode(self, endpoint: str, mode: str) -> None: ...
    def log_call(self, record: dict[str, Any]) -> None: ...


@dataclass
class Prompt:
    """The messages of one request; the schema goes into the text only when the server won't take it."""

    system: str
    system_with_schema: str
    user: str

    def messages(self, mode: Mode) -> list[dict[str, str]]:
        system = self.system if mode == "strict" else self.system_with_schema
        return [{"role": "system", "content": system}, {"role": "user", "content": self.user}]


@dataclass
class CallResult:
    extraction: MeetingExtraction
    usage: Usage
    mode: Mode
    raw: str


@dataclass
class _Attempt:
    """What one HTTP exchange gave back, before we judge it."""

    content: str | None
    usage: Usage
    problem: str | None = None  # why the answer cannot be used, for the repair message
    kind: str | None = None  # refusal | length | content_filter | invalid
    details: str | None = None  # everything that was wrong, for the call log (problem is one short line)
    extraction: MeetingExtraction | None = None
    shape_only: MeetingExtraction | None = None  # the answer, when only names/accounts/titles were off-shape


class FormatRejected(Exception):
    """The server does not accept this response_format: try the next rung of the ladder."""

    def __init__(self, mode: str, reason: str, types: set[str] | None = None) -> None:
        super().__init__(reason)
        self.mode = mode
        self.reason = reason
        self.types = types or set()


class _Suspect(Exception):
    """An error in a format not yet seen to work on this server: maybe a refusal in unknown words."""

    def __init__(self, mode: Mode, reason: str) -> None:
        super().__init__(reason)
        self.mode: Mode = mode
        self.reason = reason


@dataclass
class ModelClient:
    """The OpenAI-compatible provider: an `Extractor` (see `summarizer.modelseam`)."""

    resolved: ResolvedSettings
    log: CallLog | None = None
    prompt_version: str = ""
    output_tokens: int | None = None
    observers: Sequence[HttpObserver] = ()  # told every HTTP status, retried ones included
    _client: openai.OpenAI | None = field(default=None, init=False, repr=False)
    _learned: dict[str, Any] = field(default_factory=dict, init=False, repr=False)  # the mode that worked
    learned_window: int | None = None  # the server's window as learned (engines.LLMEngine sets it)
    slots: threading.BoundedSemaphore | None = None  # the server's own parallel slots, once known
    _no_retries: openai.OpenAI | None = field(default=None, init=False, repr=False)
    _building: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def model(self) -> str:
        model = self.resolved.settings.model
        if not model:
            raise ConfigError(
                "no model configured: set SUMMARIZER_MODEL (or `model` in .summarizer.toml, or --model), "
                "and OPENAI_API_KEY; for a local server also OPENAI_BASE_URL"
            )
        return model

    @property
    def base_url(self) -> str:
        return (self.resolved.settings.base_url or servers.OPENAI_URL).rstrip("/")

    @property
    def is_openai(self) -> bool:
        return servers.is_openai_api(self.base_url)

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}|{self.model}"

    def prepare(self) -> None:
        """Import the SDK, build the client, its chat resource and the strict response format now (e.g. on
        a background thread while transcripts are read), so that the first request does not wait for
        them; threads that need the client meanwhile wait in `client()`. A failure here is left for the
        first real call to raise, with its label."""
        try:
            self._request_client().chat.completions  # noqa: B018 - the SDK imports its resources on first use
            strict_response_format()
        except Exception:  # e.g. no API key
            return

    def client(self) -> openai.OpenAI:
        with self._building:  # built once, by whichever thread gets here first
            return self._build_client()

    def _request_client(self) -> openai.OpenAI:
        """The client without the SDK's retries (ours are logged and never re-send a running generation)."""
        with self._building:
            if self._no_retries is None:
                self._no_retries = self._build_client().with_options(max_retries=0)
            return self._no_retries

    def _build_client(self) -> openai.OpenAI:
        if self._client is None:
            import httpx2
            import openai

            settings = self.resolved.settings
            key = self.resolved.api_key
            if key is None:
                if self.is_openai:
                    raise ConfigError(
                        "OPENAI_API_KEY is not set: export it (or point OPENAI_BASE_URL at a local server)"
                    )
                key = "not-needed"  # local servers ignore it, the SDK insists on one
            hooks: dict[str, list[Any]] = {"request": [_request_on_its_way]}
            if self.observers:
                hooks["response"] = [self._observe]
            http = httpx2.Client(
                timeout=httpx2.Timeout(settings.timeout, connect=10.0),
                event_hooks=hooks,
                verify=servers.tls_verification(self.base_url),
            )
            self._client = openai.OpenAI(
                api_key=key,
                base_url=self.base_url,
                timeout=settings.timeout,
                max_retries=settings.max_retries,
                http_client=http,
            )
        return self._client

    def _observe(self, response: Any) -> None:
        status = int(response.status_code)
        kind = None
        if status == 429:  # which limit was hit: OpenAI says "requests" or "tokens" in error.type
            try:
                response.read()
                kind = (json.loads(response.text).get("error") or {}).get("type")
            except (ValueError, AttributeError, OSError):
                kind = None
        event = HttpStatus(status, kind if isinstance(kind, str) else None)
        for observer in self.observers:
            observer.http_status(event)

    # ------------------------------------------------------------------ public

    def extract(self, prompt: Prompt, *, label: str) -> CallResult:
        """One extraction; raises ModelError/ConfigError with a message naming `label`."""
        slots = self.slots  # never more requests in flight than the server runs at once
        if slots is None:
            return self._extract(prompt, label)
        with slots:
            return self._extract(prompt, label)

    def _extract(self, prompt: Prompt, label: str) -> CallResult:
        pinned = self.resolved.settings.structured_output
        if pinned != "auto":
            ladder: tuple[Mode, ...] = (pinned,)
            known = True
        else:
            start, known = self._start_mode()
            ladder = LADDER[LADDER.index(start) :]
        refused: list[str] = []
        ruled_out: set[str] = set()
        suspect: _Suspect | None = None
        for mode in ladder:
            if MODE_TYPES[mode] in ruled_out:
                continue
            try:
                result = self._extract_in_mode(prompt, mode, label, probe=not known and mode != "prompt")
            except FormatRejected as err:
                refused.append(f"{mode} ({err.reason})")
                ruled_out |= err.types
                known = False  # the rungs below are untried on this server: probe them too
                continue
            except _Suspect as err:
                if suspect is not None:
                    # Two formats failed alike: the server is failing, not refusing a format.
                    # Finish with the usual retries in the first one.
                    return self._finish_after_suspects(prompt, suspect, label)
                suspect = err
                refused.append(f"{mode} ({err.reason})")
                known = False
                continue
            self._remember(mode, changed=bool(refused) or not known)
            return result
        if pinned != "auto":
            raise ModelError(
                f"the model server refused the response format {pinned!r} chosen by the structured_output "
                f"setting: {'; '.join(refused) or 'no reason given'}; set structured_output = \"auto\"",
                label,
            )
        if suspect is not None and len(refused) == 1:
            return self._finish_after_suspects(prompt, suspect, label)
        raise ModelError(f"the model server refused every response format: {'; '.join(refused)}", label)

    def try_mode(self, prompt: Prompt, mode: Mode, *, label: str) -> CallResult:
        """One extraction in exactly `mode` (for `doctor`): FormatRejected when the server will not take it."""
        try:
            return self._extract_in_mode(prompt, mode, label, probe=mode != "prompt")
        except _Suspect as err:
            raise FormatRejected(mode, err.reason) from err

    def _finish_after_suspects(self, prompt: Prompt, suspect: _Suspect, label: str) -> CallResult:
        spent = 2  # the two probes
        return self._extract_in_mode(prompt, suspect.mode, label, probe=False, retries_spent=spent)

    def _start_mode(self) -> tuple[Mode, bool]:
        """Where to start on the ladder, and whether that mode is known to work on this server."""
        with _LEARNED_LOCK:
            remembered: str | None = self._learned.get("mode")
        if remembered is None and self.log is not None:
            remembered = self.log.get_mode(self.endpoint)
        for mode in LADDER:
            if remembered == mode:
                return mode, True
        # api.openai.com takes strict schemas; any other server is probed before we trust a format.
        return "strict", self.is_openai

    def _remember(self, mode: Mode, *, changed: bool) -> None:
        """Per server and model: in this client (eval keeps no store) and in the vault's store."""
        with _LEARNED_LOCK:
            self._learned["mode"] = mode
        if self.log is not None and changed:
            self.log.set_mode(self.endpoint, mode)

    # ------------------------------------------------------------------ one mode, with one repair

    def _extract_in_mode(
        self, prompt: Prompt, mode: Mode, label: str, *, probe: bool = False, retries_spent: int = 0
    ) -> CallResult:
        messages = prompt.messages(mode)
        max_tokens = self.output_tokens or self.resolved.settings.max_output_tokens
        usage = Usage()
        attempt = self._call(messages, mode, max_tokens, label, probe=probe, retries_spent=retries_spent)
        usage = usage + attempt.usage
        if attempt.extraction is None:
            messages = [*messages, *self._repair_messages(attempt)]
            if attempt.kind == "length":
                max_tokens = self._repair_tokens(max_tokens, attempt, messages, mode)
            first_problem = attempt.problem
            attempt = self._call(messages, mode, max_tokens, label)
            usage = usage + attempt.usage
            if attempt.extraction is None and attempt.shape_only is not None:
                # Twice a name, account or title of the wrong shape: keep the answer; building the note
                # drops what is still off-shape (rules.py) rather than losing the whole transcript.
                attempt.extraction = attempt.shape_only
            if attempt.extraction is None:
                problems = attempt.problem
                if problems != first_problem:
                    problems = f"{first_problem}; then {problems}"
                raise ModelError(f"the model's answer was unusable twice ({problems}); no note written", label)
        assert attempt.extraction is not None
        return CallResult(attempt.extraction, usage, mode, attempt.content or "")

    def _repair_tokens(self, max_tokens: int, attempt: _Attempt, messages: list[dict[str, str]], mode: Mode) -> int:
        """More room for a truncated answer, but never past the window: prompt + answer must fit."""
        from summarizer.prompting import extraction_schema
        from summarizer.tokens import TokenCounter

        counter = TokenCounter(self.model)
        schema = extraction_schema() if mode in ("strict", "schema", "json_object_schema") else None
        ours = counter.count_messages(messages, schema)
        prompt = max(ours, attempt.usage.prompt_tokens + REPAIR_OVERHEAD)  # the server's count when it is higher
        window = servers.context_window(self.model, self.resolved.settings.context_window or self.learned_window)
        room = int(window * (1 - servers.safety_margin(self.model))) - prompt
        return min(max_tokens * 2, MAX_REPAIR_TOKENS, max(room, 1))

    def _repair_messages(self, attempt: _Attempt) -> list[dict[str, str]]:
        previous = attempt.content or ""
        if attempt.kind == "refusal":
            text = (
                f"You declined ({attempt.problem}). This transcript is the user's own record of a meeting "
                "they attended, and they asked for their notes of it. Please reply with the JSON object."
            )
        elif attempt.kind == "length":
            text = (
                "Your reply was cut off at the output token limit. Reply again, more concisely: a shorter "
                "summary, fewer and shorter key_information items, evidence quotes of at most 15 words."
            )
        elif attempt.kind == "content_filter":
            text = (
                "Your reply was stopped by the content filter. Reply again, describing any sensitive "
                "content neutrally and briefly."
            )
        else:
            text = (
                f"Your reply could not be used: {attempt.details or attempt.problem}. Reply again with ONE "
                "JSON object that follows the schema exactly: every field present, no extra fields, no text around it."
            )
        repair: list[dict[str, str]] = []
        if previous and attempt.kind not in ("refusal", "content_filter", "length"):  # a cut-off echo only eats room
            repair.append({"role": "assistant", "content": previous[:4000]})
        repair.append({"role": "user", "content": text})
        return repair

    def request_params(self, max_tokens: int) -> dict[str, Any]:
        """Model, temperature, token limit and cache key exactly as a live request sends them."""
        settings = self.resolved.settings
        params: dict[str, Any] = {"model": self.model}
        reasoning = bool(_REASONING_MODEL.match(self.model)) and self.is_openai
        if settings.temperature is not None and not reasoning:
            params["temperature"] = settings.temperature
        params["max_completion_tokens" if self.is_openai else "max_tokens"] = max_tokens
        if self.is_openai and self.prompt_version:
            params["prompt_cache_key"] = f"summarizer-{self.prompt_version}"
        return params

    def _call(
        self,
        messages: list[dict[str, str]],
        mode: Mode,
        max_tokens: int,
        label: str,
        *,
        probe: bool = False,
        retries_spent: int = 0,
    ) -> _Attempt:
        record: dict[str, Any] = {
            "label": label,
            "model": self.model,
            "mode": mode,
            "endpoint": self.base_url,
        }
        raw = self._send(messages, mode, max_tokens, label, record, probe=probe, retries_spent=retries_spent)
        try:
            body = json.loads(raw.text)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._log(record, error=f"not a JSON object: {raw.text[:300]}")
            raise ServerUnavailableError(f"the model server answered with no JSON object: {raw.text[:200]!r}", label)
        usage = self._usage(body)
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        content = message.get("content")
        attempt = _Attempt(content=content, usage=usage)
        finish = choice.get("finish_reason")
        if message.get("refusal"):
            attempt.kind, attempt.problem = "refusal", f"refusal: {str(message['refusal'])[:200]}"
        elif finish == "length":
            attempt.kind, attempt.problem = "length", "the answer was truncated at the token limit"
        elif finish == "content_filter":
            attempt.kind, attempt.problem = "content_filter", "the answer was stopped by the content filter"
        elif not content:
            attempt.kind, attempt.problem = "invalid", "the answer was empty"
        else:
            try:
                # strict: the answer is the bare JSON object (what `parse` would validate), else it may be wrapped
                text = content if mode == "strict" else _json_text(content)
                attempt.extraction = MeetingExtraction.model_validate_json(text)
                if attempt.extraction is None:
                    attempt.kind, attempt.problem = "invalid", "the answer held no extraction"
            except ValidationError as err:
                attempt.kind, attempt.problem = "invalid", _validation_summary(err)
                attempt.details = _validation_details(err)
                if all(e["type"] == "model_text_shape" for e in err.errors()):
                    attempt.shape_only = unchecked_extraction(text)
        self._log(record, usage=usage, response=content, error=attempt.details or attempt.problem)
        return attempt

    def _send(
        self,
        messages: list[dict[str, str]],
        mode: Mode,
        max_tokens: int,
        label: str,
        record: dict[str, Any],
        *,
        probe: bool,
        retries_spent: int,
    ) -> Any:
        """One request, with our own retries so that each is logged and none re-sends a running generation.

        The SDK's retries are off for these calls: it would re-send a generation that timed out (a
        local server keeps working on the first copy) and retry a 500 that refuses the format.
        """
        client = self._request_client()  # first: waits for a warm-up that is still importing the SDK
        import httpx2
        import openai

        settings = self.resolved.settings
        params = self.request_params(max_tokens)
        wait_for = servers.generation_timeout(settings.timeout, max_tokens)
        timeout = httpx2.Timeout(wait_for, connect=min(10.0, settings.timeout))
        retries = max(settings.max_retries - retries_spent, 0)
        retry = 0
        while True:
            try:
                return client.chat.completions.with_raw_response.create(
                    messages=messages,  # type: ignore[arg-type]
                    timeout=timeout,
                    **params,
                    **self._format_param(mode),
                )
            except openai.APIStatusError as err:
                status, text = err.status_code, _error_text(err)
                if mode != "prompt" and servers.is_format_refusal(status, text, getattr(err, "param", None)):
                    self._log(record, error=f"{status}: the server refused this response format: {text[:300]}")
                    raise FormatRejected(mode, f"{status}: {text[:200]}", servers.refused_types(text)) from err
                if probe and status in (400, 422, 500) and not servers.is_context_overflow(text):
                    # Unknown wording on a format not yet seen to work here: try the next format once.
                    # 502/503/504 say the server (or a proxy) is down, never that it refused the format.
                    self._log(record, error=f"{status} with a format not yet tried on this server: {text[:300]}")
                    raise _Suspect(mode, f"{status}: {text[:200]}") from err
                # 504/408: a gateway gave up waiting, but the server behind it may still be generating.
                retryable = status in (409, 429) or (status >= 500 and status != 504)
                overflow = servers.is_context_overflow(text)
                delay = None
                if retryable and not overflow and retry < retries:
                    delay = servers.retry_delay(retry, err.response.headers)
                if delay is None:
                    self._log(record, error=f"{status}: {text[:300]}")
                    if status in (400, 422) or overflow:
                        raise self._request_error(err, text, label, messages) from err
                    raise self._transport_error(err, label, retried=retries_spent + retry) from err
                error = f"{status}: {text[:200]}"
            except openai.APITimeoutError as err:
                connect = isinstance(err.__cause__, httpx2.ConnectTimeout)
                if not connect or retry >= retries:
                    said = "could not connect" if connect else f"no answer within {wait_for:.0f}s; not re-sent"
                    self._log(record, error=said)
                    raise self._timeout_error(wait_for, label, connect=connect, retried=retries_spent + retry) from err
                delay, error = servers.retry_delay(retry, None) or 0.0, "connect timeout"
            except openai.APIConnectionError as err:
                if retry >= retries:
                    self._log(record, error=f"connection failed: {_one_line(err)}")
                    raise self._transport_error(err, label, retried=retries_spent + retry) from err
                delay, error = servers.retry_delay(retry, None) or 0.0, f"connection failed: {_one_line(err)}"
            retry += 1
            self._log(record, error=f"{error}; retry {retry} of {retries} in {delay:.1f}s")
            time.sleep(delay)

    def _format_param(self, mode: Mode) -> dict[str, Any]:
        if mode == "strict":
            return {"response_format": strict_response_format()}
        if mode in ("schema", "json_object_schema"):
            from summarizer.prompting import extraction_schema

            schema = extraction_schema()
            if mode == "json_object_schema":  # llama.cpp's and llama-cpp-python's schema-constrained JSON
                return {"response_format": {"type": "json_object", "schema": schema}}
            return {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "MeetingExtraction", "schema": schema, "strict": False},
                }
            }
        if mode == "json":
            return {"response_format": {"type": "json_object"}}
        return {}

    def _request_error(
        self, err: Exception, text: str, label: str, messages: list[dict[str, str]] | None = None
    ) -> Exception:
        code = getattr(err, "code", None)
        if code == "context_length_exceeded" or servers.is_context_overflow(text):
            limit = servers.context_limit_from_error(text)
            said = f" (the server says its window is {limit} tokens)" if limit else ""
            server_tokens = servers.prompt_tokens_from_error(text)
            ours = None
            if server_tokens and messages:  # to compare its tokenizer with ours
                from summarizer.tokens import TokenCounter

                ours = TokenCounter(self.model).count_messages(messages)
            return ContextOverflowError(
                f"the request is larger than the model's context window{said} "
                "(set context_window in .summarizer.toml to the server's real limit)",
                label,
                limit=limit,
                server_tokens=server_tokens,
                our_tokens=ours,
            )
        status = getattr(err, "status_code", 400)
        return ModelError(f"the model server refused the request ({status}): {text[:300]}", label)

    def _timeout_error(self, waited: float, label: str, *, connect: bool, retried: int) -> ServerUnavailableError:
        """An outage, not the transcript's fault: `watch` backs off and tries it again."""
        if connect:
            return ServerUnavailableError(
                f"could not reach the model server at {self.base_url} after {retried} retries", label
            )
        return ServerUnavailableError(
            f"the model server did not answer within {waited:.0f}s; not re-sent, since it may still be "
            "generating (raise `timeout`, or lower max_output_tokens)",
            label,
        )

    def _usage(self, body: dict[str, Any]) -> Usage:
        raw = body.get("usage") or {}
        prompt = int(raw.get("prompt_tokens") or 0)
        completion = int(raw.get("completion_tokens") or 0)
        cached = int(((raw.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
        cost = estimate_cost(self.model, prompt, completion, cached, self.resolved.settings.prices)
        return Usage(calls=1, prompt_tokens=prompt, cached_tokens=cached, completion_tokens=completion, cost=cost)

    def _transport_error(self, err: Exception, label: str, *, retried: int | None = None) -> Exception:
        import openai

        retries = self.resolved.settings.max_retries if retried is None else retried
        if isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
            return ConfigError(
                f"the model server at {self.base_url} rejected the API key ({err.status_code}); check OPENAI_API_KEY"
            )
        if isinstance(err, openai.NotFoundError):
            return ConfigError(f"model {self.model!r} was not found at {self.base_url} (404); check --model")
        if isinstance(err, openai.RateLimitError):
            return RateLimitedError(
                f"rate limited by the model server (429) after {retries} retries; try again later", label
            )
        if isinstance(err, openai.APIConnectionError):
            return ServerUnavailableError(
                f"could not reach the model server at {self.base_url} after {retries} retries", label
            )
        if isinstance(err, openai.APIStatusError):
            failed = ServerUnavailableError if err.status_code >= 500 else ModelError
            return failed(f"the model server failed ({err.status_code}) after {retries} retries", label)
        return ModelError(f"model call failed: {_one_line(err)}", label)

    def _log(self, record: dict[str, Any], **extra: Any) -> None:
        if self.log is None:
            return
        usage = extra.pop("usage", None)
        if isinstance(usage, Usage):
            extra.update(usage.model_dump())
        self.log.log_call({**record, "prompt_version": self.prompt_version, **extra})


def endpoint_of(resolved: ResolvedSettings) -> str:
    """What learned facts (response mode, window, tokenizer, slots) are kept under: base URL and model."""
    settings = resolved.settings
    return f"{(settings.base_url or servers.OPENAI_URL).rstrip('/')}|{settings.model}"


def _request_on_its_way(request: Any) -> None:
    """The SDK has built the request and it is about to be sent: a batch run's next worker may take its turn."""
    yield_turn()


@cache
def strict_response_format() -> dict[str, Any]:
    """The strict `json_schema` response format exactly as `chat.completions.parse(response_format=
    MeetingExtraction)` sends it, built once per process (treat as read-only: it is shared)."""
    from openai.lib import type_to_response_format_param

    built: Any = type_to_response_format_param(MeetingExtraction)
    return dict(built)


def _error_text(err: Any) -> str:
    response = getattr(err, "response", None)
    try:
        raw = response.text if response is not None else ""
    except Exception:  # a streamed or closed body: the SDK's own message will do
        raw = ""
    return servers.error_text(raw, _one_line(err)) if raw else _one_line(err)


def _json_text(content: str) -> str:
    """The JSON object inside a reply that may wrap it in fences or prose."""
    text = content.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    if not text.startswith("{"):
        start, end = text.find("{"), text.rfind("}")
        if start != -1 and end > start:
            text = text[start : end + 1]
    return text


def _validation_summary(err: ValidationError) -> str:
    """One short line for the user and the repair request: the first problem and how many more."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the answer"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    message = " ".join(first["msg"].split())
    return f"{where}: {message if len(message) <= 48 else message[:47] + '…'}{more}"


def _validation_details(err: ValidationError) -> str:
    problems = []
    for item in err.errors()[:20]:
        where = ".".join(str(part) for part in item["loc"]) or "the answer"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:300]
