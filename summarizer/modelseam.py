"""The seam between the engines and a model provider, with nothing provider-specific in it.

A provider module (today `summarizer.llm`, for OpenAI-compatible servers) offers an `Extractor`:
one structured extraction per call. What sits on top of it (the adaptive rate limiter, say) is an
`Extractor` wrapping another, composed when the engine is built (`summarizer.engines.build_engine`),
the way httpx takes a transport. HTTP statuses reach whoever needs them (the limiter) as typed
`HttpStatus` events through `HttpObserver`s handed to the provider at construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from summarizer.errors import ModelError

if TYPE_CHECKING:
    from summarizer.llm import CallResult, Prompt


@dataclass(frozen=True)
class HttpStatus:
    """One HTTP response from the model server; `limit` is which limit a 429 hit ("requests",
    "tokens") when the server says."""

    status: int
    limit: str | None = None


class HttpObserver(Protocol):
    def http_status(self, event: HttpStatus) -> None: ...


@runtime_checkable
class SlotsObserver(Protocol):
    """Told the request limit when the engine learns it mid-run (a local server stating its slots)."""

    def request_slots(self, slots: int) -> None: ...


class Extractor(Protocol):
    """One structured extraction per call; raises ModelError/ConfigError naming `label`."""

    @property
    def model(self) -> str: ...

    def extract(self, prompt: Prompt, *, label: str) -> CallResult: ...


Wrapper = Callable[[Extractor], Extractor]


class RateLimitedError(ModelError):
    """The provider gave up on rate limits (after its own retries): the caller may try again later."""


class ServerUnavailableError(ModelError):
    """The model server could not be reached, timed out or failed (5xx) after the retries: not the
    transcript's fault, so a long-running caller (`watch`) may try the same transcript again later."""


class ContextOverflowError(ModelError):
    """The server refused a request as larger than its context window; `limit` is the window it
    stated (None when its words name none). The engine re-plans with it once."""

    def __init__(
        self,
        message: str,
        path: str | None = None,
        *,
        limit: int | None = None,
        server_tokens: int | None = None,
        our_tokens: int | None = None,
    ) -> None:
        super().__init__(message, path)
        self.limit = limit
        self.server_tokens = server_tokens  # the server's count of the refused prompt, when it says
        self.our_tokens = our_tokens  # our count of the same messages
