"""Reading servers' error texts: format refusals and context limits, in each server's own words."""

from __future__ import annotations

import pytest

from summarizer.servers import context_limit_from_error, error_text, is_format_refusal, refused_types, retry_delay

LLAMA_CPP_PYTHON_500 = (
    '{"error": {"message": "1 validation error for CreateChatCompletionRequest\\nresponse_format.type\\n  Input '
    "should be 'text' or 'json_object' [type=literal_error, input_value='json_schema', input_type=str]\", "
    '"type": "internal_server_error", "param": null, "code": null}}'
)


@pytest.mark.parametrize(
    ("status", "body", "refused"),
    [
        pytest.param(500, LLAMA_CPP_PYTHON_500, {"json_schema"}, id="llama-cpp-python"),
        pytest.param(
            400,
            "{\"error\": \"'response_format.type' must be 'json_schema' or 'text'\"}",
            {"json_object"},
            id="lm-studio",
        ),
        pytest.param(
            400,
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
            {"json_schema"},
            id="openai-old-model",
        ),
        pytest.param(
            400, 'Either "json_schema" or "grammar" can be specified, but not both', set(), id="llama-server-old"
        ),
        pytest.param(
            422, "Invalid schema for response_format 'X': 'default' is not permitted.", set(), id="strict-only"
        ),
    ],
)
def test_format_refusals_in_each_servers_words(status: int, body: str, refused: set[str]) -> None:
    text = error_text(body)
    assert is_format_refusal(status, text)
    assert refused_types(text) == refused


@pytest.mark.parametrize(
    "text",
    [
        "The server had an error while processing your request.",
        "Rate limit reached for requests",
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
    ],
)
def test_other_errors_are_not_format_refusals(text: str) -> None:
    assert not is_format_refusal(500, text)


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        pytest.param(
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
            8192,
            id="openai",
        ),
        pytest.param(
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
            "(3000 in the messages, 2000 in the completion).",
            4096,
            id="vllm",
        ),
        pytest.param(
            error_text(
                '{"error": {"code": 400, "message": "the request exceeds the available context size, '
                'try increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 5000, '
                '"n_ctx": 2048}}'
            ),
            2048,
            id="llama-server",
        ),
        pytest.param("Requested tokens (5000) exceed context window of 3072", 3072, id="llama-cpp-python"),
        pytest.param(
            "Trying to keep the first 5000 tokens when context the overflows. However, the model is loaded "
            "with context length of only 4096 tokens",
            4096,
            id="lm-studio",
        ),
        pytest.param("the server had an error", None, id="not-an-overflow"),
    ],
)
def test_context_limit_from_error(text: str, limit: int | None) -> None:
    assert context_limit_from_error(text) == limit


def test_retry_delay_follows_the_servers_headers() -> None:
    assert retry_delay(0, {"retry-after-ms": "250"}) == 0.25
    assert retry_delay(0, {"Retry-After": "3"}) == 3.0
    assert retry_delay(0, {"retry-after": "600"}) is None, "longer than the SDK would wait: no retry"
    assert retry_delay(0, {"x-should-retry": "false"}) is None
    backoff = retry_delay(2, {})
    assert backoff is not None and 1.5 <= backoff <= 2.0


@pytest.mark.parametrize(
    ("base_url", "openai"),
    [
        (None, True),
        ("https://api.openai.com/v1", True),
        ("https://my-resource.openai.azure.com/openai/v1/", True),
        ("http://127.0.0.1:8080/v1", False),
        ("http://100.101.102.103:11434/v1", False),  # Ollama over Tailscale: may queue, never 429
        ("https://llm.example.com/v1", False),
        ("https://api.groq.com/openai/v1", False),
    ],
)
def test_only_openais_own_api_is_taken_to_answer_429_when_full(base_url: str | None, openai: bool) -> None:
    from summarizer.servers import is_openai_api

    assert is_openai_api(base_url) is openai


@pytest.mark.parametrize(
    ("values", "learned_slots", "expected"),
    [
        pytest.param({"concurrency": 2}, None, 16, id="OpenAI: 16, cut on its 429s"),
        pytest.param({"concurrency": 2, "base_url": "http://127.0.0.1:8080/v1"}, None, 2, id="other, silent"),
        pytest.param({"concurrency": 2, "base_url": "https://llm.example.com/v1"}, None, 2, id="remote, silent"),
        pytest.param({"concurrency": 2, "base_url": "http://127.0.0.1:8080/v1"}, 6, 6, id="stated slots"),
        pytest.param({"concurrency": 2, "server_slots": 3}, 6, 3, id="the setting wins"),
    ],
)
def test_request_slots_come_from_the_setting_then_the_server_then_the_kind_of_server(
    values: dict[str, object], learned_slots: int | None, expected: int
) -> None:
    from summarizer.config import ResolvedSettings, Settings
    from summarizer.engines import request_slots
    from summarizer.servers import ServerLimits

    resolved = ResolvedSettings(Settings.model_validate({"model": "gpt-4o-mini", **values}))
    assert request_slots(resolved, ServerLimits(slots=learned_slots)) == expected


def test_a_plain_http_client_loads_no_certificates_and_https_verifies_as_usual() -> None:
    import ssl

    from summarizer.servers import tls_verification

    context = tls_verification("http://127.0.0.1:8080/v1")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname, "never an unchecked TLS connection"
    assert context.cert_store_stats()["x509_ca"] == 0, "no CA bundle loaded: any TLS connection would fail"
    assert tls_verification("https://api.openai.com/v1") is True


def test_a_models_list_gives_our_models_window_or_its_only_ones_never_another_models() -> None:
    """LM Studio lists its embedding model too, a gateway several backends: another model's window
    would be planned in, and stored, for good."""
    import httpx2

    from summarizer.servers import server_facts
    from tests.fakeopenai import FakeOpenAI

    with FakeOpenAI() as fake, httpx2.Client() as http:
        fake.server = "lmstudio"
        fake.context_limit = 8192
        only = server_facts(http, fake.base_url, "test-model")
        assert (only.kind, only.window) == ("LM Studio", 8192), "the only model listed"

    listed = {"data": [{"id": "other", "max_model_len": 2048}, {"id": "ours", "max_model_len": 32768}]}

    def gateway(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=listed) if request.url.path == "/v1/models" else httpx2.Response(404)

    with httpx2.Client(transport=httpx2.MockTransport(gateway)) as http:
        assert server_facts(http, "http://gw/v1", "ours").window == 32768
        assert server_facts(http, "http://gw/v1", "unlisted").window is None
