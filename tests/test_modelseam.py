"""The model seam: the engine is chosen in one place and gets its client, wrappers and HTTP
observers when it is built; nothing is swapped in afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from summarizer.engines import ENGINES, LLMEngine, OfflineEngine, check_engine_choice
from summarizer.errors import ConfigError
from summarizer.llm import Prompt
from summarizer.modelseam import HttpStatus
from summarizer.pipeline import Pipeline
from summarizer.runner import AdaptiveLimiter, LimitedExtractor
from tests import fakeopenai as fo
from tests.fakeopenai import FakeOpenAI
from tests.helpers import make_vault
from tests.test_inbox import extraction


class Seen:
    def __init__(self) -> None:
        self.events: list[HttpStatus] = []

    def http_status(self, event: HttpStatus) -> None:
        self.events.append(event)


def test_the_limiter_and_observers_are_composed_when_the_engine_is_built(
    tmp_path: Path, model_env: FakeOpenAI
) -> None:
    limiter, seen = AdaptiveLimiter(3), Seen()
    pipeline = Pipeline.open(make_vault(tmp_path / "vault"), observers=[limiter, seen], wrappers=[limiter.wrap])
    try:
        engine = pipeline.engine
        assert isinstance(engine, LLMEngine) and isinstance(engine.extractor, LimitedExtractor)
        model_env.enqueue(fo.status(429, {"error": {"type": "requests", "message": "RPM"}}, {"retry-after": "0.01"}))
        model_env.enqueue(fo.reply(extraction("Kiwi review")))

        result = engine.extractor.extract(Prompt("s", "s", "u"), label="x")

        assert result.extraction.title == "Kiwi review"
        assert [(e.status, e.limit) for e in seen.events] == [(429, "requests"), (200, None)]
        assert limiter.rate_limited == 1 and limiter.max_in_flight == 1 and limiter.in_flight == 0
    finally:
        pipeline.close()


def test_engines_are_named_in_one_registry(tmp_path: Path) -> None:
    assert set(ENGINES) == {"openai", "offline"}
    check_engine_choice("auto")
    with pytest.raises(ConfigError, match="--engine must be openai, offline or auto, not 'gpt'"):
        check_engine_choice("gpt")
    pipeline = Pipeline.open(make_vault(tmp_path / "vault"), engine="offline")
    try:
        assert isinstance(pipeline.engine, OfflineEngine)
    finally:
        pipeline.close()
