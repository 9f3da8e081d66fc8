"""The loopback OpenAI server, exercised through the real `openai` SDK."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pydantic
import pytest
from openai.lib import type_to_response_format_param
from pydantic import BaseModel, ConfigDict

from tests.fakeopenai import (
    Behaviour,
    FakeOpenAI,
    bad_request,
    content_filter,
    count_prompt_tokens,
    delayed,
    drop_connection,
    invalid_json,
    rate_limited,
    refusal,
    reject_response_format,
    reply,
    responder,
    schema_violation,
    server_error,
    status,
    truncated,
)

MODEL = "gpt-4o-mini"


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    points: list[str]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def client(fake: FakeOpenAI, max_retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=max_retries, timeout=5)


def parse(c: openai.OpenAI, text: str = "Transcript: we met.") -> Any:
    return c.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "system", "content": "Summarise."}, {"role": "user", "content": text}],
        response_format=Summary,
    )


def test_reply_parses_into_the_pydantic_model_and_looks_like_the_api(fake: FakeOpenAI) -> None:
    fake.enqueue(reply(Summary(title="Weekly sync", points=["a"]), cached_tokens=7))
    completion = parse(client(fake))
    message = completion.choices[0].message
    assert message.parsed == Summary(title="Weekly sync", points=["a"])
    assert message.refusal is None
    assert completion.model == MODEL
    assert completion.object == "chat.completion"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 7
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # default prompt_tokens: characters of the messages / 4
    assert usage.prompt_tokens == len("Summarise." + "Transcript: we met.") // 4
    assert completion._request_id is not None and completion._request_id.startswith("req_")


def test_requests_are_recorded_with_body_headers_and_counted_tokens(fake: FakeOpenAI) -> None:
    fake.enqueue(reply({"title": "t", "points": []}, prompt_tokens=11, completion_tokens=3))
    completion = parse(client(fake), "hello there")
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 3)
    [request] = fake.requests
    assert (request.method, request.path, request.response_status) == ("POST", "/v1/chat/completions", 200)
    assert request.headers["authorization"] == "Bearer test-key"
    assert "test-key" not in repr(request)
    assert request.json == fake.chat_requests()[0]
    assert json.loads(request.raw) == request.json
    assert request.json["response_format"]["json_schema"]["name"] == "Summary"
    assert request.prompt_tokens_counted == count_prompt_tokens(request.json)
    assert request.prompt_tokens_counted is not None and request.prompt_tokens_counted > 10
    assert fake.pending() == 0


def test_queue_is_fifo_then_default(fake: FakeOpenAI) -> None:
    fake.enqueue(reply({"title": "one", "points": []}), reply({"title": "two", "points": []}))
    fake.default = reply({"title": "default", "points": []})
    c = client(fake)
    titles = [parse(c).choices[0].message.parsed.title for _ in range(4)]
    assert titles == ["one", "two", "default", "default"]


def test_unscripted_request_is_a_clear_500_that_the_sdk_does_not_retry(fake: FakeOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        parse(client(fake, max_retries=2))
    assert "no behaviour queued" in str(info.value)
    assert len(fake.requests) == 1


def test_refusal(fake: FakeOpenAI) -> None:
    fake.enqueue(refusal())
    message = parse(client(fake)).choices[0].message
    assert message.parsed is None
    assert message.content is None
    assert message.refusal == "I can't help with that."


def test_truncated_raises_length_finish_reason_error(fake: FakeOpenAI) -> None:
    fake.enqueue(truncated())
    c = client(fake)
    with pytest.raises(openai.LengthFinishReasonError) as info:
        c.chat.completions.parse(
            model=MODEL,
            messages=[{"role": "user", "content": "x"}],
            response_format=Summary,
            max_completion_tokens=50,
        )
    assert info.value.completion.choices[0].message.content == '{"title": "Weekly sy'
    assert info.value.completion.usage is not None
    assert info.value.completion.usage.completion_tokens == 50


def test_content_filter_raises(fake: FakeOpenAI) -> None:
    fake.enqueue(content_filter())
    with pytest.raises(openai.ContentFilterFinishReasonError):
        parse(client(fake))


def test_invalid_json_and_schema_violation_fail_pydantic_validation(fake: FakeOpenAI) -> None:
    fake.enqueue(invalid_json(), schema_violation({"title": 3}))
    c = client(fake)
    with pytest.raises(pydantic.ValidationError):
        parse(c)
    with pytest.raises(pydantic.ValidationError):
        parse(c)
    assert len(fake.requests) == 2


@pytest.mark.parametrize("ms", [False, True])
def test_rate_limited_is_retried_by_the_sdk_then_succeeds(fake: FakeOpenAI, ms: bool) -> None:
    # The header asks for 1 s: more than the SDK's own first backoff (0.375-0.5 s), so a wait of at
    # least 1 s between the two requests can only come from honouring it (a lower bound, not a timing race).
    fake.enqueue(rate_limited(1.0, ms=ms), reply({"title": "ok", "points": []}))
    started = time.monotonic()
    assert parse(client(fake, max_retries=2)).choices[0].message.parsed.title == "ok"
    assert time.monotonic() - started >= 1.0
    assert [r.response_status for r in fake.requests] == [429, 200]
    assert fake.requests[1].headers["x-stainless-retry-count"] == "1"
    first = fake.requests[0]
    assert first.response_status == 429
    assert fake.stats.rate_limited == 1


def test_rate_limited_error_body(fake: FakeOpenAI) -> None:
    fake.enqueue(rate_limited(0.01))
    with pytest.raises(openai.RateLimitError) as info:
        parse(client(fake))
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.response.headers["retry-after"] == "0.01"


def test_server_error_is_retried(fake: FakeOpenAI) -> None:
    fake.enqueue(server_error(503), server_error(retry_after=0.01), reply({"title": "ok", "points": []}))
    c = client(fake).with_options(max_retries=2)
    assert parse(c).choices[0].message.parsed.title == "ok"
    assert [r.response_status for r in fake.requests] == [503, 500, 200]


def test_drop_connection_raises_api_connection_error(fake: FakeOpenAI) -> None:
    fake.enqueue(drop_connection())
    with pytest.raises(openai.APIConnectionError):
        parse(client(fake, max_retries=0))
    assert [r.response_status for r in fake.requests] == [0]


def test_drop_connection_then_retry_succeeds(fake: FakeOpenAI) -> None:
    fake.enqueue(drop_connection(), reply({"title": "ok", "points": []}))
    assert parse(client(fake, max_retries=1)).choices[0].message.parsed.title == "ok"
    assert len(fake.chat_requests()) == 2


def test_reject_response_format_and_bad_request(fake: FakeOpenAI) -> None:
    fake.enqueue(reject_response_format(), bad_request("nope", param="temperature", code="bad_temp"))
    c = client(fake, max_retries=2)
    with pytest.raises(openai.BadRequestError) as info:
        parse(c)
    assert info.value.param == "response_format"
    assert "'json_schema' is not supported" in info.value.message
    with pytest.raises(openai.BadRequestError) as info2:
        parse(c)
    assert (info2.value.param, info2.value.code) == ("temperature", "bad_temp")
    assert len(fake.requests) == 2  # 400s are not retried


def test_generic_status(fake: FakeOpenAI) -> None:
    fake.enqueue(status(403, {"error": {"message": "region", "type": "x"}}, {"x-should-retry": "false"}))
    with pytest.raises(openai.PermissionDeniedError) as info:
        parse(client(fake))
    assert info.value.status_code == 403
    assert info.value.response.headers["x-should-retry"] == "false"


def test_responder_answers_from_the_prompt(fake: FakeOpenAI) -> None:
    def answer(body: dict[str, Any]) -> Behaviour:
        user = body["messages"][-1]["content"]
        return reply({"title": user.upper(), "points": []}) if "alpha" in user else refusal("no")

    fake.default = responder(answer)
    c = client(fake)
    assert parse(c, "alpha").choices[0].message.parsed.title == "ALPHA"
    assert parse(c, "beta").choices[0].message.refusal == "no"


def test_responder_exception_is_reported_not_swallowed(fake: FakeOpenAI) -> None:
    def broken(body: dict[str, Any]) -> Behaviour:
        raise KeyError("oops")

    fake.enqueue(responder(broken))
    with pytest.raises(openai.InternalServerError):
        parse(client(fake, max_retries=2))
    assert len(fake.requests) == 1
    assert fake.errors == ["FakeOpenAI: KeyError: 'oops'"]


def test_context_limit_gives_context_length_exceeded(fake: FakeOpenAI) -> None:
    fake.context_limit = 200
    fake.default = reply({"title": "ok", "points": []})
    c = client(fake, max_retries=2)
    assert parse(c, "short").choices[0].message.parsed.title == "ok"
    with pytest.raises(openai.BadRequestError) as info:
        parse(c, "word " * 200)
    assert info.value.code == "context_length_exceeded"
    assert info.value.param == "messages"
    counted = fake.requests[1].prompt_tokens_counted
    assert counted is not None and counted > 200
    assert f"maximum context length is 200 tokens. However, your messages resulted in {counted} tokens" in (
        info.value.message
    )
    assert fake.requests[0].prompt_tokens_counted is not None
    assert fake.requests[0].prompt_tokens_counted <= 200


def test_count_prompt_tokens_counts_messages_and_response_format() -> None:
    plain = {"messages": [{"role": "user", "content": "hello world"}]}
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}]}
    with_format = {**plain, "response_format": type_to_response_format_param(Summary)}
    assert count_prompt_tokens(plain) == 2
    assert count_prompt_tokens(parts) == 2
    assert count_prompt_tokens(with_format) > count_prompt_tokens(plain) + 20


def test_delayed_waits_before_answering(fake: FakeOpenAI) -> None:
    fake.enqueue(delayed(0.2, reply({"title": "late", "points": []})))
    started = time.monotonic()
    assert parse(client(fake)).choices[0].message.parsed.title == "late"
    assert time.monotonic() - started >= 0.2


def test_rpm_limit_answers_429_with_scaled_retry_after(fake: FakeOpenAI) -> None:
    fake.rpm = 2
    fake.time_scale = 0.005  # the minute window is 0.3 s
    fake.default = reply({"title": "ok", "points": []})
    c = client(fake, max_retries=0)
    parse(c)
    parse(c)
    with pytest.raises(openai.RateLimitError) as info:
        parse(c)
    retry_after = float(info.value.response.headers["retry-after"])
    assert 0 < retry_after <= 0.3
    assert fake.stats.requests == 3
    assert fake.stats.limit_rejections == 1
    # the SDK honours the header and gets through once the window slides
    assert parse(client(fake, max_retries=3)).choices[0].message.parsed.title == "ok"


def test_tpm_limit(fake: FakeOpenAI) -> None:
    fake.time_scale = 0.01
    fake.default = reply({"title": "ok", "points": []})
    c = client(fake, max_retries=0)
    parse(c)
    fake.tpm = fake.stats.prompt_tokens + 1  # room for the first request only
    with pytest.raises(openai.RateLimitError) as info:
        parse(c)
    assert "tokens" in info.value.message
    assert float(info.value.response.headers["retry-after"]) <= 0.6
    fake.tpm = 1
    with pytest.raises(openai.RateLimitError) as info:
        parse(c)
    assert "Request too large" in info.value.message


def test_max_concurrency_and_in_flight_stats(fake: FakeOpenAI) -> None:
    fake.max_concurrency = 2
    release = threading.Event()

    def hold(body: dict[str, Any]) -> Behaviour:
        release.wait(5)  # admitted requests stay in flight until the 429s are in
        return reply({"title": "ok", "points": []})

    fake.default = responder(hold)
    c = client(fake, max_retries=0)

    def attempt(_: int) -> str:
        try:
            parse(c)
            return "ok"
        except openai.RateLimitError as exc:
            if exc.response.headers.get("retry-after"):
                rejected.append(exc)
            if len(rejected) == 2:
                release.set()
            return "429"

    rejected: list[openai.RateLimitError] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, range(4)))
    assert sorted(outcomes) == ["429", "429", "ok", "ok"]
    assert fake.stats.max_in_flight == 2
    assert fake.stats.limit_rejections == 2
    assert fake.stats.in_flight == 0
    assert fake.stats.requests == 4


def test_latency_is_added_to_each_chat_request(fake: FakeOpenAI) -> None:
    fake.latency = 0.05
    fake.default = reply({"title": "ok", "points": []})
    c = client(fake)
    started = time.monotonic()
    parse(c)
    parse(c)
    assert time.monotonic() - started >= 0.1


def test_api_key_check(fake: FakeOpenAI) -> None:
    fake.api_key = "right"
    fake.default = reply({"title": "ok", "points": []})
    with pytest.raises(openai.AuthenticationError):
        parse(client(fake))
    c = openai.OpenAI(base_url=fake.base_url, api_key="right", max_retries=0)
    assert parse(c).choices[0].message.parsed.title == "ok"


def test_models_list_and_unknown_route(fake: FakeOpenAI) -> None:
    c = client(fake)
    assert [m.id for m in c.models.list()] == ["fake-model"]
    with pytest.raises(openai.NotFoundError):
        c.embeddings.create(model="x", input="y")


def test_batch_round_trip(fake: FakeOpenAI) -> None:
    fake.batch_errors_to_error_file = False
    fake.context_limit = 500

    def answer(body: dict[str, Any]) -> Behaviour:
        return reply({"title": body["messages"][0]["content"], "points": []})

    fake.default = responder(answer)
    fake.enqueue(reply({"title": "first queued", "points": []}))
    response_format = type_to_response_format_param(Summary)
    ids = [f"meeting-{i}" for i in range(8)]
    lines = [
        {
            "custom_id": cid,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": MODEL,
                "messages": [{"role": "user", "content": cid if cid != "meeting-7" else "long " * 600}],
                "response_format": response_format,
            },
        }
        for cid in ids
    ]
    payload = "".join(json.dumps(line) + "\n" for line in lines).encode()
    c = client(fake)
    uploaded = c.files.create(file=("batch.jsonl", io.BytesIO(payload)), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(payload)
    assert c.files.content(uploaded.id).content == payload

    batch = c.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": "test"},
    )
    assert batch.status == "validating"
    assert batch.metadata == {"run": "test"}
    assert c.batches.retrieve(batch.id).status == "in_progress"
    assert fake.chat_requests() == []

    assert fake.complete_batches() == [batch.id]
    done = c.batches.retrieve(batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (8, 7, 1)
    assert done.output_file_id is not None and done.error_file_id is None

    out = [json.loads(x) for x in c.files.content(done.output_file_id).text.splitlines()]
    assert sorted(o["custom_id"] for o in out) == ids
    assert [o["custom_id"] for o in out] != ids  # shuffled, as real batches are
    by_id = {o["custom_id"]: o for o in out}
    titles = {
        cid: Summary.model_validate_json(
            openai.types.chat.ChatCompletion.model_validate(o["response"]["body"]).choices[0].message.content
            or ""
        ).title
        for cid, o in by_id.items()
        if o["response"]["status_code"] == 200
    }
    assert titles["meeting-0"] == "first queued"  # queued behaviours apply to batch lines, in input order
    assert titles["meeting-3"] == "meeting-3"
    too_long = by_id["meeting-7"]["response"]
    assert too_long["status_code"] == 400
    assert too_long["body"]["error"]["code"] == "context_length_exceeded"
    assert all(o["id"].startswith("batch_req_") and o["error"] is None for o in out)
    assert len(fake.batch_lines) == 8


def test_batch_output_order_is_deterministic() -> None:
    orders = []
    for _ in range(2):
        with FakeOpenAI() as fake:
            fake.default = reply({"title": "x", "points": []})
            c = client(fake)
            payload = "".join(
                json.dumps(
                    {
                        "custom_id": f"c{i}",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": {"model": MODEL, "messages": []},
                    }
                )
                + "\n"
                for i in range(10)
            )
            f = c.files.create(file=("in.jsonl", payload.encode()), purpose="batch")
            b = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
            fake.complete_batches()
            out_id = c.batches.retrieve(b.id).output_file_id
            assert out_id is not None
            orders.append([o["custom_id"] for o in fake.iter_output_lines(out_id)])
    assert orders[0] == orders[1]
    assert sorted(orders[0]) == sorted(f"c{i}" for i in range(10))


def test_batch_errors_to_error_file_drop_cancel_fail_expire(fake: FakeOpenAI) -> None:
    fake.batch_errors_to_error_file = True
    fake.enqueue(reply({"title": "a", "points": []}), server_error(500), drop_connection())
    c = client(fake)

    def make_batch(n: int) -> str:
        payload = "".join(
            json.dumps(
                {
                    "custom_id": f"c{i}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                }
            )
            + "\n"
            for i in range(n)
        )
        f = c.files.create(file=("in.jsonl", payload.encode()), purpose="batch")
        return c.batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
        ).id

    first = make_batch(3)
    fake.complete_batches()
    done = c.batches.retrieve(first)
    assert done.output_file_id is not None and done.error_file_id is not None
    assert [o["custom_id"] for o in fake.iter_output_lines(done.output_file_id)] == ["c0"]
    errors = {o["custom_id"]: o for o in fake.iter_output_lines(done.error_file_id)}
    assert errors["c1"]["response"]["status_code"] == 500
    assert errors["c2"]["response"] is None and errors["c2"]["error"]["code"] == "server_error"

    cancelled = make_batch(1)
    assert c.batches.cancel(cancelled).status == "cancelling"
    assert c.batches.retrieve(cancelled).status == "cancelled"

    failed = make_batch(1)
    fake.fail_batch(failed, "boom")
    got = c.batches.retrieve(failed)
    assert got.status == "failed"
    assert got.errors is not None and got.errors.data is not None and got.errors.data[0].message == "boom"

    expired = make_batch(1)
    fake.expire_batch(expired)
    assert c.batches.retrieve(expired).status == "expired"
    assert fake.complete_batches() == []


def test_batch_with_a_bad_line_fails(fake: FakeOpenAI) -> None:
    c = client(fake)
    f = c.files.create(file=("in.jsonl", b'{"custom_id": "a"}\nnot json\n'), purpose="batch")
    b = c.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    fake.complete_batches()
    got = c.batches.retrieve(b.id)
    assert got.status == "failed"
    assert got.errors is not None and got.errors.data is not None
    assert got.errors.data[0].line == 1


def test_stop_is_prompt_even_with_open_keepalive_connections_and_pending_delay() -> None:
    fake = FakeOpenAI()
    fake.start()
    c = client(fake)
    arrived = threading.Event()

    def slow_answer(body: dict[str, Any]) -> Behaviour:
        arrived.set()
        return delayed(30, reply({"title": "never", "points": []}))

    fake.enqueue(reply({"title": "warm", "points": []}), responder(slow_answer))
    parse(c)  # leaves a keep-alive connection open
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            parse(c)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    assert arrived.wait(5)
    fake.stop()
    thread.join(5)
    assert not thread.is_alive()  # stopping the server ended the hanging request
    assert len(errors) == 1 and isinstance(errors[0], openai.APIConnectionError)
    with pytest.raises(openai.APIConnectionError):
        parse(c)
