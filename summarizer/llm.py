"""The model client: one structured extraction per call, whatever the server.

Strategy (see docs in README, "Pointing it at other servers"):
1. `chat.completions.parse` with the pydantic model as a strict `json_schema`.
2. A server that rejects that `response_format` is asked again with a
   non-strict schema, then JSON mode with the schema in the prompt, then plain
   text with the schema in the prompt. What worked is remembered per base URL
   and model, so the next run starts there.
3. Whatever mode, the answer is validated with pydantic. A refusal, truncation,
   content filter, invalid JSON or schema violation gets ONE repair attempt
   that tells the model what was wrong; then a clear error.
Transport errors are the SDK's job: it retries 408/409/429/5xx and dropped
connections with backoff, honouring `retry-after`; we set its timeout and
retry count on purpose instead of its 10-minute default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import ValidationError

from summarizer.config import ResolvedSettings
from summarizer.errors import ConfigError, ModelError
from summarizer.models import MeetingExtraction, Usage
from summarizer.modelseam import HttpObserver, HttpStatus, RateLimitedError, ServerUnavailableError
from summarizer.pricing import estimate_cost

if TYPE_CHECKING:
    import openai

Mode = Literal["strict", "schema", "json", "prompt"]
LADDER: tuple[Mode, ...] = ("strict", "schema", "json", "prompt")
OPENAI_URL = "https://api.openai.com/v1"
MAX_REPAIR_TOKENS = 16384
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")
_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|structured output|strict", re.I)


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
    extraction: MeetingExtraction | None = None


class FormatRejected(Exception):
    """The server does not accept this response_format: try the next rung of the ladder."""


@dataclass
class ModelClient:
    """The OpenAI-compatible provider: an `Extractor` (see `summarizer.modelseam`)."""

    resolved: ResolvedSettings
    log: CallLog | None = None
    prompt_version: str = ""
    output_tokens: int | None = None
    observers: Sequence[HttpObserver] = ()  # told every HTTP status, retried ones included
    _client: openai.OpenAI | None = field(default=None, init=False, repr=False)

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
        return (self.resolved.settings.base_url or OPENAI_URL).rstrip("/")

    @property
    def is_openai(self) -> bool:
        return "api.openai.com" in self.base_url or "openai.azure.com" in self.base_url

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}|{self.model}"

    def client(self) -> openai.OpenAI:
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
            hooks = {"response": [self._observe]} if self.observers else {}
            http = httpx2.Client(
                timeout=httpx2.Timeout(settings.timeout, connect=10.0),
                event_hooks=hooks,
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
        start = self._start_mode()
        ladder = LADDER[LADDER.index(start) :]
        for position, mode in enumerate(ladder):
            try:
                result = self._extract_in_mode(prompt, mode, label)
            except FormatRejected as err:
                if position == len(ladder) - 1:
                    raise ModelError(f"the model server rejected every response format: {err}", label) from err
                continue
            if self.log is not None and mode != start:
                self.log.set_mode(self.endpoint, mode)
            return result
        raise AssertionError("unreachable")

    def _start_mode(self) -> Mode:
        remembered = self.log.get_mode(self.endpoint) if self.log is not None else None
        for mode in LADDER:
            if remembered == mode:
                return mode
        return "strict"

    # ------------------------------------------------------------------ one mode, with one repair

    def _extract_in_mode(self, prompt: Prompt, mode: Mode, label: str) -> CallResult:
        messages = prompt.messages(mode)
        max_tokens = self.output_tokens or self.resolved.settings.max_output_tokens
        usage = Usage()
        attempt = self._call(messages, mode, max_tokens, label)
        usage = usage + attempt.usage
        if attempt.extraction is None:
            messages = [*messages, *self._repair_messages(attempt)]
            if attempt.kind == "length":
                max_tokens = min(max_tokens * 2, MAX_REPAIR_TOKENS)
            first_problem = attempt.problem
            attempt = self._call(messages, mode, max_tokens, label)
            usage = usage + attempt.usage
            if attempt.extraction is None:
                raise ModelError(
                    f"the model's answer was unusable twice ({first_problem}; then {attempt.problem}); no note written",
                    label,
                )
        assert attempt.extraction is not None
        return CallResult(attempt.extraction, usage, mode, attempt.content or "")

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
                f"Your reply could not be used: {attempt.problem}. Reply again with ONE JSON object that "
                "follows the schema exactly: every field present, no extra fields, no text around it."
            )
        repair: list[dict[str, str]] = []
        if previous and attempt.kind not in ("refusal", "content_filter"):
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

    def _call(self, messages: list[dict[str, str]], mode: Mode, max_tokens: int, label: str) -> _Attempt:
        import openai

        client = self.client()
        params = self.request_params(max_tokens)
        record: dict[str, Any] = {
            "label": label,
            "model": self.model,
            "mode": mode,
            "endpoint": self.base_url,
        }
        raw: Any
        try:
            if mode == "strict":
                raw = client.chat.completions.with_raw_response.parse(
                    messages=messages,  # type: ignore[arg-type]
                    response_format=MeetingExtraction,
                    **params,
                )
            else:
                raw = client.chat.completions.with_raw_response.create(
                    messages=messages,  # type: ignore[arg-type]
                    **params,
                    **self._format_param(mode),
                )
        except openai.BadRequestError as err:
            self._log(record, error=_one_line(err))
            if mode != "prompt" and _is_format_rejection(err):
                raise FormatRejected(_one_line(err)) from err
            if err.code == "context_length_exceeded" or "context length" in str(err).lower():
                raise ModelError(
                    "the request is larger than the model's context window "
                    "(set context_window in .summarizer.toml to the server's real limit)",
                    label,
                ) from err
            raise ModelError(f"the model server refused the request (400): {_one_line(err)}", label) from err
        except openai.APIError as err:
            self._log(record, error=_one_line(err))
            raise self._transport_error(err, label) from err
        body = json.loads(raw.text)
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
                if mode == "strict":
                    parsed = raw.parse().choices[0].message.parsed
                    attempt.extraction = parsed if isinstance(parsed, MeetingExtraction) else None
                else:
                    attempt.extraction = MeetingExtraction.model_validate_json(_json_text(content))
                if attempt.extraction is None:
                    attempt.kind, attempt.problem = "invalid", "the answer held no extraction"
            except ValidationError as err:
                attempt.kind, attempt.problem = "invalid", _validation_summary(err)
            except (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError) as err:
                attempt.kind, attempt.problem = "invalid", _one_line(err)
        self._log(record, usage=usage, response=content, error=attempt.problem)
        return attempt

    def _format_param(self, mode: Mode) -> dict[str, Any]:
        if mode == "schema":
            from summarizer.prompting import extraction_schema

            schema = extraction_schema()
            return {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "MeetingExtraction", "schema": schema, "strict": False},
                }
            }
        if mode == "json":
            return {"response_format": {"type": "json_object"}}
        return {}

    def _usage(self, body: dict[str, Any]) -> Usage:
        raw = body.get("usage") or {}
        prompt = int(raw.get("prompt_tokens") or 0)
        completion = int(raw.get("completion_tokens") or 0)
        cached = int(((raw.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
        cost = estimate_cost(self.model, prompt, completion, cached, self.resolved.settings.prices)
        return Usage(calls=1, prompt_tokens=prompt, cached_tokens=cached, completion_tokens=completion, cost=cost)

    def _transport_error(self, err: Exception, label: str) -> Exception:
        import openai

        retries = self.resolved.settings.max_retries
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
        if isinstance(err, openai.APITimeoutError):
            return ServerUnavailableError(
                f"the model server did not answer within {self.resolved.settings.timeout:.0f}s "
                f"({retries} retries); raise `timeout`",
                label,
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


def _is_format_rejection(err: Any) -> bool:
    return bool(getattr(err, "param", None) == "response_format" or _FORMAT_WORDS.search(str(err)))


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
    problems = []
    for item in err.errors()[:5]:
        where = ".".join(str(part) for part in item["loc"]) or "the answer"
        problems.append(f"{where}: {item['msg']}")
    more = f" (+{err.error_count() - 5} more)" if err.error_count() > 5 else ""
    return "; ".join(problems) + more


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:300]
